//! Building and running the server. `main` and the end-to-end tests start the very same thing:
//! [`Application::build`] binds the listener first (so `port = 0` works and the bound port is
//! known), then [`Application::run_until_stopped`] serves until its shutdown future resolves and
//! the calls in flight have finished.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use yrd_call::periodic::Trigger;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use yrd_domain::clock::{Clock, SystemClock};
use yrd_store::Store;

use crate::server::config::{Limits, Parsed, Settings};

use yrd_admin::token::TokenSettings;
use yrd_admin::{AdminHandler, TokenHandler, TokenKeys};
use yrd_proto::v1::admin_service_server::AdminServiceServer;
use yrd_proto::v1::token_service_server::TokenServiceServer;

use crate::server::agency_limits::AgencyLimitLayer;
use crate::server::audit::AuditLayer;
use crate::server::auth::AuthLayer;
use crate::server::deadline::DeadlineLayer;
pub use crate::server::error::StartupError;
use crate::server::handshake_limit::{HandshakeCaps, HandshakeLimiter};
use crate::server::identity::IdentityLayer;
use crate::server::message_limit::MessageLimitLayer;
use crate::server::metrics::Metrics;
use crate::server::metrics::admin::AdminListener;
use crate::server::metrics::layer::CallMetricsLayer;
use crate::server::metrics::readiness::{READINESS_SERVICE, Readiness};
use crate::server::revocation::{RevocationWatcher, Revocations};
use crate::server::rotation::TlsFiles;
use crate::server::tls::{ServerTls, incoming};
use crate::server::trace::TraceLayer;
use yrd_audit::log_key::LogKeys;
use yrd_audit::{AuditHandler, Sequencer};
use yrd_disposal::{DeadlineScheduler, DisposalHandler, Opener};
use yrd_domain::referral::ReferralRules;
use yrd_feed::{FeedHandler, FeedOptions, SlowDrops};
use yrd_licensing::LicensingHandler;
use yrd_pki::CertificateAuthority;
use yrd_pki::ReceiptSigner;
use yrd_proto::v1::audit_service_server::AuditServiceServer;
use yrd_proto::v1::case_service_server::CaseServiceServer;
use yrd_proto::v1::disposal_service_server::DisposalServiceServer;
use yrd_proto::v1::feed_service_server::FeedServiceServer;
use yrd_proto::v1::licensing_service_server::LicensingServiceServer;
use yrd_proto::v1::spot_check_service_server::SpotCheckServiceServer;
use yrd_spotcheck::{CaseHandler, SpotCheckHandler};

/// A server that is bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    settings: Settings,
    /// The settings in the types the server runs with, checked before the port was bound.
    parsed: Parsed,
    store: Store,
    tls: Arc<ServerTls>,
    clock: Arc<dyn Clock>,
    dev_pki: Option<PathBuf>,
    tls_files: TlsFiles,
    ca: Option<Arc<CertificateAuthority>>,
    revocations: Arc<Revocations>,
    revocation_watcher: Arc<RevocationWatcher>,
    token_keys: Arc<TokenKeys>,
    log_keys: Arc<LogKeys>,
    receipts: Arc<ReceiptSigner>,
    /// Fired for a round of the deadline schedulers at once (see [`Application::schedulers`]).
    schedulers: Trigger,
    /// Counts the feed subscribers dropped as too slow.
    slow_drops: SlowDrops,
    /// Metrics, readiness and the admin listener (`docs/metrics.md`).
    ops: Ops,
}

/// What operations see: the metrics, readiness, and the admin listener when configured.
struct Ops {
    metrics: Metrics,
    readiness: Readiness,
    admin: Option<AdminListener>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Prepares the data folder, store and TLS material and binds the listener, reading time
    /// from the wall clock.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with an injected clock (tests move time by hand).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, StartupError> {
        // Every value is checked and typed before anything is created or bound; a bad
        // configuration is reported whole, and nothing below converts a setting again.
        let parsed = settings.check()?;
        check_fd_limit(&settings);
        // The admin listener comes up first, so that `/readyz` says "starting" while the store
        // is migrated and the keys are loaded.
        let metrics = Metrics::new(
            &settings.telemetry.service_name,
            settings.telemetry.otlp_endpoint.as_deref(),
            Duration::from_millis(settings.metrics.export_interval_ms),
        )?;
        let readiness = Readiness::new(metrics.clone());
        let ops_store = Arc::new(OnceLock::new());
        let admin = match settings.metrics.listen {
            Some(addr) => Some(
                crate::server::metrics::admin::start(
                    addr,
                    metrics.clone(),
                    readiness.clone(),
                    ops_store.clone(),
                )
                .await
                .map_err(|source| StartupError::Bind { addr, source })?,
            ),
            None => None,
        };
        let prepared =
            crate::server::bootstrap::prepare(&settings, &parsed.store, clock.now()).await?;
        metrics.observe_store(&prepared.store);
        let _ = ops_store.set((prepared.store.clone(), clock.clone()));
        let tls = Arc::new(ServerTls::new(&prepared.tls)?);
        let ca = prepared.ca.map(Arc::new);
        let revocations = Arc::new(Revocations::new());
        let revocation_watcher = Arc::new(RevocationWatcher::new(
            prepared.store.clone(),
            revocations.clone(),
            tls.clone(),
            ca.clone(),
        ));
        // Load the revoked set and sign the first CRL before the first handshake.
        revocation_watcher.refresh().await?;
        let token_keys = Arc::new(
            TokenKeys::load_or_create(
                prepared.store.clone(),
                clock.clone(),
                parsed.token_key_rotation,
            )
            .await?,
        );
        let log_keys = Arc::new(
            LogKeys::load_or_create(
                prepared.store.clone(),
                clock.clone(),
                parsed.log_key_rotation,
            )
            .await?,
        );
        let receipts = Arc::new(ReceiptSigner::new(
            log_keys.shared(),
            Duration::from_millis(settings.audit.max_merge_delay_ms),
        ));
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.listen,
            source,
        })?;
        Ok(Application {
            listener,
            local_addr,
            settings,
            parsed,
            store: prepared.store,
            tls,
            clock,
            dev_pki: prepared.dev_pki,
            tls_files: prepared.tls_files,
            ca,
            revocations,
            revocation_watcher,
            token_keys,
            receipts,
            log_keys,
            schedulers: Trigger::new(),
            slow_drops: SlowDrops::default(),
            ops: Ops {
                metrics,
                readiness,
                admin,
            },
        })
    }

    /// Where the admin listener (`/metrics`, `/livez`, `/readyz`) listens, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.ops.admin.as_ref().map(AdminListener::local_addr)
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The store the server uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The dev PKI folder, when the dev PKI is in use.
    pub fn dev_pki(&self) -> Option<&std::path::Path> {
        self.dev_pki.as_deref()
    }

    /// The exchange CA with its key, when available.
    pub fn ca(&self) -> Option<Arc<CertificateAuthority>> {
        self.ca.clone()
    }

    /// Runs a round of the disposal and licensing deadline schedulers as soon as they are free
    /// when fired: a test that moves its manual clock past a deadline fires it instead of
    /// waiting for the schedulers' interval.
    pub fn schedulers(&self) -> Trigger {
        self.schedulers.clone()
    }

    /// Counts the feed subscribers this server drops for reading too slowly.
    pub fn slow_drops(&self) -> SlowDrops {
        self.slow_drops.clone()
    }

    /// The TLS configuration, swappable while serving.
    pub fn tls(&self) -> Arc<ServerTls> {
        self.tls.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, tells health checkers it is no
    /// longer serving, and returns once the calls in flight have finished.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let limits = &self.settings.limits;
        let max_message = limits.max_message_bytes;

        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        // Readiness is its own service name; the probe below says when this replica is ready.
        health_reporter
            .set_service_status(READINESS_SERVICE, ServingStatus::NotServing)
            .await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(yrd_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(yrd_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let stop = CancellationToken::new();
        let referral_opener = Opener::new(ReferralRules {
            acknowledgement_working_days: self.settings.disposal.acknowledgement_working_days,
            ..ReferralRules::default()
        });
        let parsed = self.parsed;
        let licensing_settings = parsed.licensing;
        let licensing_interval = licensing_settings.scheduler_interval;
        let licensing = LicensingHandler::new(
            self.store.clone(),
            self.clock.clone(),
            self.receipts.clone(),
            Arc::new(licensing_settings),
        );
        let sequencer = Sequencer::new(
            self.store.clone(),
            self.log_keys.shared(),
            self.clock.clone(),
            Duration::from_millis(self.settings.audit.sequencer_interval_ms),
        );
        let ops = self.ops;
        ops.metrics.observe_leadership(sequencer.leadership());
        let metrics_settings = &self.settings.metrics;
        let background = [
            (
                "readiness probe",
                ops.readiness.clone().spawn_probe(
                    self.store.clone(),
                    self.clock.clone(),
                    Duration::from_millis(metrics_settings.readiness_interval_ms),
                    Duration::from_millis(self.settings.audit.max_merge_delay_ms),
                    health_reporter.clone(),
                    stop.clone(),
                ),
            ),
            (
                "metrics refresh",
                ops.metrics.spawn_refresh(
                    self.store.clone(),
                    self.clock.clone(),
                    Duration::from_millis(metrics_settings.refresh_interval_ms),
                    stop.clone(),
                ),
            ),
            (
                "revocation watcher",
                self.revocation_watcher.clone().spawn(stop.clone()),
            ),
            (
                "token key rotation",
                self.token_keys.clone().spawn(stop.clone()),
            ),
            (
                "log key rotation",
                self.log_keys.clone().spawn(stop.clone()),
            ),
            ("sequencer", sequencer.spawn(stop.clone())),
            (
                "certificate reload",
                crate::server::rotation::spawn(
                    self.tls_files.clone(),
                    self.tls.clone(),
                    stop.clone(),
                ),
            ),
            (
                "feed listener",
                spawn_feed_listener(self.store.clone(), stop.clone()),
            ),
            (
                "request-id pruner",
                crate::server::housekeeping::spawn_answer_pruner(
                    self.store.clone(),
                    self.clock.clone(),
                    parsed.request_id_retention,
                    stop.clone(),
                ),
            ),
            (
                "disposal deadlines",
                DeadlineScheduler::new(
                    self.store.clone(),
                    self.clock.clone(),
                    referral_opener.clone(),
                    Duration::from_millis(self.settings.disposal.scheduler_interval_ms),
                )
                .spawn(Some(&self.schedulers), stop.clone()),
            ),
            (
                "licensing deadlines",
                licensing.clone().spawn_scheduler(
                    licensing_interval,
                    Some(&self.schedulers),
                    stop.clone(),
                ),
            ),
        ];
        let (background, failed) = watch_background(background, stop.clone());
        let connections = incoming(
            self.listener,
            self.tls.clone(),
            Duration::from_millis(self.settings.tls.handshake_timeout_ms),
            Duration::from_secs(limits.idle_timeout_s),
            HandshakeLimiter::new(HandshakeCaps {
                total: self.settings.tls.max_pending_handshakes,
                per_source: self.settings.tls.max_pending_handshakes_per_source,
            }),
            stop.clone(),
        );
        let signal = {
            let stop = stop.clone();
            let reporter = health_reporter.clone();
            async move {
                // A failed background task stops the server as a shutdown request does.
                tokio::select! {
                    () = shutdown => {}
                    () = stop.cancelled() => {}
                }
                tracing::info!("shutting down: no new connections; finishing calls in flight");
                reporter
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                stop.cancel();
            }
        };

        let operator = parsed.operator;
        let token_settings = TokenSettings {
            issuer: self.settings.token.issuer.clone(),
            audience: self.settings.token.audience.clone(),
        };
        let token_service = TokenServiceServer::new(
            TokenHandler::new(
                self.store.clone(),
                self.token_keys.clone(),
                token_settings.clone(),
                operator.clone(),
                parsed.token_lifetime,
                self.clock.clone(),
            )
            .with_log_keys(self.log_keys.shared()),
        )
        .max_decoding_message_size(max_message);
        let admin_service = AdminServiceServer::new(AdminHandler::new(
            self.store.clone(),
            self.ca.clone(),
            operator,
            parsed.certificate_max_validity,
            self.clock.clone(),
            self.revocation_watcher.clone(),
            self.receipts.clone(),
        ))
        .max_decoding_message_size(max_message);
        // Feed streams end when `stop` is cancelled, so graceful shutdown never waits on them.
        let feed = &self.settings.feed;
        let feed_service = FeedServiceServer::new(
            FeedHandler::new(
                self.store.clone(),
                self.clock.clone(),
                self.receipts.clone(),
                FeedOptions {
                    heartbeat_interval: Duration::from_millis(feed.heartbeat_interval_ms),
                    read_batch: feed.read_batch,
                    send_buffer: feed.send_buffer,
                    slow_subscriber_timeout: Duration::from_millis(feed.slow_subscriber_timeout_ms),
                },
                stop.clone(),
            )
            .with_slow_drops(self.slow_drops.clone()),
        )
        .max_decoding_message_size(max_message);
        let audit_service = AuditServiceServer::new(AuditHandler::new(self.store.clone()))
            .max_decoding_message_size(max_message);
        let spotcheck_service = SpotCheckServiceServer::new(
            SpotCheckHandler::new(
                self.store.clone(),
                self.clock.clone(),
                self.receipts.clone(),
            )
            .with_referral_rules(referral_opener.rules().clone())
            .with_case_window(parsed.case_window),
        )
        .max_decoding_message_size(max_message);
        let disposal_service = DisposalServiceServer::new(DisposalHandler::new(
            self.store.clone(),
            self.clock.clone(),
            self.receipts.clone(),
            referral_opener,
        ))
        .max_decoding_message_size(max_message);
        let case_service = CaseServiceServer::new(CaseHandler::new(
            self.store.clone(),
            self.clock.clone(),
            self.receipts.clone(),
        ))
        .max_decoding_message_size(max_message);
        let licensing_service =
            LicensingServiceServer::new(licensing).max_decoding_message_size(max_message);
        let agency_limits = parsed.agency_limits;

        // Why the layers sit where they do (outermost first):
        // * trace — every call, refused ones included, gets its span and trace id before any
        //   layer can answer, and the inner layers' log lines and spans belong to it;
        // * audit — inside trace (the leaf carries the trace id) and outside everything that
        //   can refuse, so refused calls are logged too;
        // * deadline — inside audit, so a call cut by the request timeout (or its client's
        //   deadline) is logged and counted with the DEADLINE_EXCEEDED it was answered;
        // * message limit — inside audit, so the leaf of an oversized message records the
        //   RESOURCE_EXHAUSTED it was answered; it watches the body tonic decodes innermost;
        // * identity — nothing runs for a connection whose certificate names no agency, or
        //   whose certificate expired or was revoked since the handshake;
        // * agency limits — before any real work, so a flood (token requests included) is
        //   refused at the cost of a counter, and one agency's flood leaves the others alone;
        // * auth — the bearer token bound to this certificate, and the method's role.
        let audit_layer = AuditLayer::new(self.store.clone(), self.clock.clone());
        let audit_leaves = audit_layer.pending_leaves();
        let mut server = server_builder(limits)
            .layer(CallMetricsLayer::new(
                ops.metrics.clone(),
                &[
                    yrd_proto::FILE_DESCRIPTOR_SET,
                    tonic_health::pb::FILE_DESCRIPTOR_SET,
                    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
                ],
            ))
            .layer(TraceLayer::new())
            .layer(audit_layer)
            .layer(DeadlineLayer::new(Duration::from_millis(
                limits.request_timeout_ms,
            )))
            .layer(MessageLimitLayer::new(max_message))
            .layer(IdentityLayer::new(
                self.clock.clone(),
                self.revocations.clone(),
            ))
            .layer(AgencyLimitLayer::new(agency_limits))
            .layer(AuthLayer::new(
                self.token_keys.clone(),
                token_settings,
                self.clock.clone(),
            ));

        let router = server
            .add_service(token_service)
            .add_service(admin_service)
            .add_service(audit_service)
            .add_service(feed_service)
            .add_service(spotcheck_service)
            .add_service(disposal_service)
            .add_service(case_service)
            .add_service(licensing_service)
            .add_service(health.max_decoding_message_size(max_message))
            .add_service(reflection_v1.max_decoding_message_size(max_message))
            .add_service(reflection_v1alpha.max_decoding_message_size(max_message));

        tracing::info!(addr = %self.local_addr, backend = self.store.backend().as_str(), "serving");
        router
            .serve_with_incoming_shutdown(connections, signal)
            .await?;
        stop.cancel();
        background.wait().await;
        // Streams ended by the shutdown are logged before the store closes.
        audit_leaves.close();
        audit_leaves.wait().await;
        self.store.close().await;
        // The last metrics go to the collector (a blocking export), then the admin listener,
        // which answered until here (`/readyz`: stopping), closes.
        let metrics = ops.metrics.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || metrics.shutdown()).await {
            tracing::warn!(error = %e, "metrics shutdown failed");
        }
        drop(ops);
        tracing::info!("stopped");
        match failed.get().copied() {
            Some(task) => Err(StartupError::BackgroundTask { task }),
            None => Ok(()),
        }
    }
}

/// Puts the background tasks under one [`TaskTracker`], which the shutdown waits on. A task
/// that panics is logged with its name and cancels `stop`, which stops the whole server: a
/// replica whose sequencer or revocation watcher died must not go on answering as if it were
/// whole. The first task to fail is returned in the cell, for the error `run_until_stopped`
/// ends with.
fn watch_background(
    tasks: impl IntoIterator<Item = (&'static str, JoinHandle<()>)>,
    stop: CancellationToken,
) -> (TaskTracker, Arc<OnceLock<&'static str>>) {
    let tracker = TaskTracker::new();
    let failed = Arc::new(OnceLock::new());
    for (task, handle) in tasks {
        let stop = stop.clone();
        let failed = failed.clone();
        tracker.spawn(async move {
            match handle.await {
                Ok(()) => {}
                Err(e) if e.is_panic() => {
                    tracing::error!(task, error = %e, "background task panicked; stopping the server");
                    // Only the first failure is kept; later ones are in the log.
                    if failed.set(task).is_err() {
                        tracing::debug!(task, "an earlier background task failed first");
                    }
                    stop.cancel();
                }
                Err(e) => tracing::debug!(task, error = %e, "background task cancelled"),
            }
        });
    }
    tracker.close();
    (tracker, failed)
}

/// File descriptors kept for what is not a connection waiting for its handshake: established
/// connections, the database pool, files, the listener.
const FD_RESERVE: u64 = 256;

/// Raises the soft open-file limit to the hard limit (once per process) and logs both; warns
/// when the handshake cap would leave fewer than [`FD_RESERVE`] descriptors for the rest.
fn check_fd_limit(settings: &Settings) {
    match crate::server::fd_limit::raise_soft_to_hard() {
        Ok(fd) => {
            tracing::info!(
                soft_before = fd.soft_before,
                soft = fd.soft,
                hard = fd.hard,
                "open-file limit (RLIMIT_NOFILE): soft limit raised to the hard limit"
            );
            let cap = u64::try_from(settings.tls.max_pending_handshakes).unwrap_or(u64::MAX);
            if cap.saturating_add(FD_RESERVE) > fd.soft {
                tracing::warn!(
                    soft = fd.soft,
                    max_pending_handshakes = cap,
                    "tls.max_pending_handshakes leaves fewer than {FD_RESERVE} of the {} file descriptors allowed for established connections and the database; lower it or raise the hard limit",
                    fd.soft
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "open-file limit (RLIMIT_NOFILE) left as it is"),
    }
}

/// Listens for other replicas' feed wake-ups (PostgreSQL `LISTEN`; nothing to do on SQLite)
/// until `stop`. Should the listener fail to connect it retries every few seconds; meanwhile
/// subscribers still see other replicas' events at their next heartbeat re-read.
fn spawn_feed_listener(store: Store, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            match store.listen_feed(stop.clone().cancelled_owned()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, "feed wake-up listener failed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        }
    })
}

/// The gRPC server builder of `yrd serve` with the HTTP/2 and call limits of `limits` applied,
/// before any layer or service (the bench serves its echo baseline from the same settings).
/// The request timeout is not tonic's (which answers `CANCELLED`) but [`DeadlineLayer`]'s,
/// among the layers.
pub fn server_builder(limits: &Limits) -> Server {
    Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .http2_keepalive_interval(Some(Duration::from_millis(limits.keepalive_interval_ms)))
        .http2_keepalive_timeout(Some(Duration::from_millis(limits.keepalive_timeout_ms)))
        .max_connection_age(Duration::from_secs(limits.max_connection_age_s))
        .http2_max_pending_accept_reset_streams(Some(limits.max_pending_accept_reset_streams))
        .http2_max_local_error_reset_streams(Some(limits.max_local_error_reset_streams))
        .load_shed(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_background_task_is_named_and_stops_the_others() {
        let stop = CancellationToken::new();
        let quiet = {
            let stop = stop.clone();
            tokio::spawn(async move { stop.cancelled().await })
        };
        let failing = tokio::spawn(async { panic!("a scheduler bug") });
        let (tracker, failed) =
            watch_background([("quiet", quiet), ("failing", failing)], stop.clone());
        tokio::time::timeout(Duration::from_secs(5), tracker.wait())
            .await
            .expect("every task ends once one panicked");
        assert!(stop.is_cancelled(), "the panic stops the server");
        assert_eq!(failed.get().copied(), Some("failing"));
    }
}
