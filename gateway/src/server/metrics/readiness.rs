//! Readiness, apart from liveness (`docs/metrics.md` "Health"). Live means the process answers;
//! ready means this replica can do its work, and a load balancer should send it calls:
//!
//! * **starting** — from the start of the process until the store is migrated, the keys are
//!   loaded and the server is about to serve;
//! * **store unreachable** — the periodic probe (`SELECT 1`, every
//!   `metrics.readiness_interval_ms`) failed or did not answer in time;
//! * **log not sequenced** — an exchange-log leaf has waited longer than
//!   `audit.max_merge_delay_ms` (the delay every receipt promises; 25 sequencer intervals by
//!   default) for a signed tree head: this replica cannot see the sequencer's heads advance;
//! * **stopping** — shutdown has begun;
//! * **ready** — none of the above.
//!
//! The state is served by `/readyz` of the admin listener and, as service `readiness`, by
//! `grpc.health.v1.Health` (service `""` stays liveness: `SERVING` until shutdown).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use yrd_domain::clock::Clock;
use yrd_store::Store;

use crate::server::metrics::Metrics;

/// The `grpc.health.v1` service name whose status is readiness.
pub const READINESS_SERVICE: &str = "readiness";

/// Where this replica stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Migrating the store, loading keys; not serving yet.
    Starting,
    /// Ready for calls.
    Ready,
    /// Not ready, for the reason given.
    NotReady(String),
    /// Shutting down.
    Stopping,
}

impl State {
    /// `Ok` when ready, else why not.
    pub fn verdict(&self) -> Result<(), String> {
        match self {
            State::Ready => Ok(()),
            State::Starting => Err("starting: migrating the store and loading keys".to_owned()),
            State::NotReady(why) => Err(why.clone()),
            State::Stopping => Err("stopping".to_owned()),
        }
    }
}

/// This replica's readiness, shared by the probe, the admin listener and the health service.
#[derive(Debug, Clone)]
pub struct Readiness {
    state: Arc<RwLock<State>>,
    metrics: Metrics,
}

impl Readiness {
    /// Starting.
    pub fn new(metrics: Metrics) -> Self {
        metrics.set_ready(false);
        Readiness {
            state: Arc::new(RwLock::new(State::Starting)),
            metrics,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        match self.state.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Moves to `state`; answers whether it changed.
    pub fn set(&self, state: State) -> bool {
        self.metrics.set_ready(state == State::Ready);
        let mut current = match self.state.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *current == state {
            return false;
        }
        *current = state;
        true
    }

    /// Probes every `interval` until `stop`, telling `health` of each change; a leaf may wait
    /// `max_wait` for its signed head. Also keeps the exchange-log gauges of the metrics.
    pub fn spawn_probe(
        self,
        store: Store,
        clock: Arc<dyn Clock>,
        interval: Duration,
        max_wait: Duration,
        health: HealthReporter,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let state = probe(&store, clock.as_ref(), interval, max_wait, &self.metrics).await;
                if stop.is_cancelled() {
                    break;
                }
                self.apply(state, &health).await;
            }
            self.apply(State::Stopping, &health).await;
        })
    }

    /// Sets `state` and, when it changed, logs it and tells the health service.
    pub async fn apply(&self, state: State, health: &HealthReporter) {
        if !self.set(state.clone()) {
            return;
        }
        match state.verdict() {
            Ok(()) => {
                tracing::info!("ready");
                health
                    .set_service_status(READINESS_SERVICE, ServingStatus::Serving)
                    .await;
            }
            Err(why) => {
                tracing::warn!(reason = %why, "not ready");
                health
                    .set_service_status(READINESS_SERVICE, ServingStatus::NotServing)
                    .await;
            }
        }
    }
}

/// One probe: the store answers, and the log's leaves get signed heads in time.
async fn probe(
    store: &Store,
    clock: &dyn Clock,
    interval: Duration,
    max_wait: Duration,
    metrics: &Metrics,
) -> State {
    // An unreachable database can hang a connection attempt; a probe gives up at its interval
    // (at least a second).
    let patience = interval.max(Duration::from_secs(1));
    match tokio::time::timeout(patience, store.ping()).await {
        Err(_) => {
            return State::NotReady(format!(
                "store unreachable: no answer within {} ms",
                patience.as_millis()
            ));
        }
        Ok(Err(e)) => return State::NotReady(format!("store unreachable: {e}")),
        Ok(Ok(())) => {}
    }
    let read = async {
        Ok::<_, yrd_store::StoreError>((
            store.oldest_unsequenced_leaf().await?,
            store.latest_tree_head().await?,
        ))
    };
    let (oldest, head) = match tokio::time::timeout(patience, read).await {
        Err(_) => {
            return State::NotReady(format!(
                "cannot read the exchange log's tree heads: no answer within {} ms",
                patience.as_millis()
            ));
        }
        Ok(Err(e)) => {
            return State::NotReady(format!("cannot read the exchange log's tree heads: {e}"));
        }
        Ok(Ok(read)) => read,
    };
    let waited = oldest.map_or(Duration::ZERO, |appended| {
        Duration::try_from(clock.now() - appended).unwrap_or(Duration::ZERO)
    });
    metrics.update(|s| {
        s.tree_size = head.as_ref().map_or(0, |h| h.tree_size);
        s.integration_delay_s = waited.as_secs_f64();
    });
    if waited > max_wait {
        return State::NotReady(format!(
            "the exchange log is not being sequenced: a leaf has waited {:.1} s for a signed tree head (limit {:.1} s, audit.max_merge_delay_ms)",
            waited.as_secs_f64(),
            max_wait.as_secs_f64()
        ));
    }
    State::Ready
}
