//! The admin listener (`metrics.listen`, off by default): plain HTTP/1.1 with
//! `GET /metrics` (Prometheus text), `GET /livez` (200 while the process answers) and
//! `GET /readyz` (200 `ready`, or 503 with the reason). It is bound before the store is
//! migrated, so `/readyz` answers "starting" during migrations. No TLS and no authentication:
//! keep it on loopback or a private network.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};
use yrd_domain::clock::Clock;
use yrd_store::Store;

use crate::server::metrics::Metrics;
use crate::server::metrics::readiness::Readiness;

/// The Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How long a scrape waits for the SQL-backed gauges before answering with the last values.
const SCRAPE_REFRESH_LIMIT: Duration = Duration::from_secs(2);

/// What the handlers read; the store is known once it is open.
#[derive(Clone)]
struct Admin {
    metrics: Metrics,
    readiness: Readiness,
    store: Arc<OnceLock<(Store, Arc<dyn Clock>)>>,
}

/// The running admin listener; dropping it stops it.
#[derive(Debug)]
pub struct AdminListener {
    addr: SocketAddr,
    _stop: DropGuard,
}

impl AdminListener {
    /// The address bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `addr` and serves until the returned listener is dropped. `store` is filled in once
/// the store is open; until then `/metrics` serves what needs no store.
pub async fn start(
    addr: SocketAddr,
    metrics: Metrics,
    readiness: Readiness,
    store: Arc<OnceLock<(Store, Arc<dyn Clock>)>>,
) -> std::io::Result<AdminListener> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let router = axum::Router::new()
        .route("/metrics", get(scrape))
        .route("/livez", get(|| async { "live\n" }))
        .route("/readyz", get(readyz))
        .with_state(Admin {
            metrics,
            readiness,
            store,
        });
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    tracing::info!(%addr, "admin listener: GET /metrics, /livez, /readyz (plain HTTP)");
    Ok(AdminListener {
        addr,
        _stop: stop.drop_guard(),
    })
}

async fn scrape(State(admin): State<Admin>) -> impl IntoResponse {
    if let Some((store, clock)) = admin.store.get() {
        let refresh = admin.metrics.refresh(store, clock.as_ref());
        if tokio::time::timeout(SCRAPE_REFRESH_LIMIT, refresh)
            .await
            .is_err()
        {
            tracing::warn!("metrics: the store did not answer in time; serving the last values");
        }
    }
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        admin.metrics.prometheus_text(),
    )
}

async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    match admin.readiness.state().verdict() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
