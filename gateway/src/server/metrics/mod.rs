//! The server's metrics (`docs/metrics.md`): OpenTelemetry instruments on a meter provider of
//! this server's own, read two ways — pushed to the OTLP collector every
//! `metrics.export_interval_ms` when `telemetry.otlp_endpoint` is set, and rendered as Prometheus
//! text on `GET /metrics` of the admin listener (`metrics.listen`).
//!
//! The hot path only touches atomics: a call adds to a counter and a histogram, a committed
//! write batch to a histogram. What needs SQL (feed backlog, certificate expiry, overdue counts)
//! is read by a slow periodic task and by a scrape into a [`Snapshot`] that the observable
//! gauges read; the exchange-log gauges come from the readiness probe, which reads them anyway.
//! Labels are bounded: method (known methods only), gRPC code, agency.

pub mod admin;
pub mod layer;
pub mod readiness;
pub mod render;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, PeriodicReader, Pipeline, SdkMeterProvider, Temporality,
};
use yrd_client::code_name;
use yrd_domain::clock::Clock;
use yrd_store::Store;

use crate::server::telemetry::{OtlpChannel, TelemetryError};

/// The instrumentation scope of the exchange's metrics.
const SCOPE: &str = "yrd-exchange";

/// Call latency buckets, seconds.
const DURATION_BOUNDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Group-commit batch size buckets, writes per transaction (the default maximum is 64).
const BATCH_BOUNDS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The values the observable gauges report, refreshed off the hot path.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Size of the newest signed tree head.
    pub tree_size: u64,
    /// Seconds the oldest leaf not yet in a signed head has waited (0 when none waits).
    pub integration_delay_s: f64,
    /// Per agency: unacknowledged feed events, and the age of the oldest (seconds).
    pub feeds: Vec<(String, u64, f64)>,
    /// Per agency: seconds until its soonest active client certificate expires.
    pub certificate_expiry_s: Vec<(String, f64)>,
    /// Per handling agency: open referrals flagged overdue.
    pub overdue_referrals: Vec<(String, u64)>,
    /// Per issuing agency: licence applications flagged overdue.
    pub overdue_applications: Vec<(String, u64)>,
}

/// The server's metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: SdkMeterProvider,
    reader: Arc<ManualReader>,
    calls: Counter<u64>,
    durations: Histogram<f64>,
    batch_sizes: Histogram<u64>,
    snapshot: Arc<Mutex<Snapshot>>,
    /// The sequencer's leadership flag, once the sequencer exists.
    leader: Arc<OnceLock<Arc<AtomicBool>>>,
    /// 1 while this replica is ready.
    ready: Arc<AtomicBool>,
    /// The OTLP channel the periodic exporter uses (shared with the span pipeline,
    /// `telemetry`); released after the provider has flushed.
    _otlp: Option<Arc<OtlpChannel>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "metrics provider shut down");
        }
    }
}

/// The Prometheus side's reader, shared between the provider and the scrape handler.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

impl Metrics {
    /// Metrics for one server, exported to `otlp_endpoint` every `export_interval` when given.
    pub fn new(
        service_name: &str,
        otlp_endpoint: Option<&str>,
        export_interval: Duration,
    ) -> Result<Metrics, TelemetryError> {
        let reader = Arc::new(ManualReader::builder().build());
        let mut builder = SdkMeterProvider::builder()
            .with_reader(SharedReader(reader.clone()))
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            );
        let otlp = otlp_endpoint.map(OtlpChannel::shared).transpose()?;
        if let Some(channel) = &otlp {
            let exporter = channel.exporter(
                opentelemetry_otlp::MetricExporter::builder().with_tonic(),
                |builder| builder.build(),
            )?;
            builder = builder.with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(export_interval)
                    .build(),
            );
        }
        let provider = builder.build();
        let meter = provider.meter(SCOPE);
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        let leader = Arc::new(OnceLock::new());
        let ready = Arc::new(AtomicBool::new(false));
        register_gauges(&meter, &snapshot, &leader, &ready);
        let inner = Inner {
            calls: meter
                .u64_counter("yrd_rpc_calls")
                .with_description("gRPC calls answered, by method and gRPC status code")
                .build(),
            durations: meter
                .f64_histogram("yrd_rpc_duration_seconds")
                .with_description(
                    "gRPC call latency (a stream: its whole life), by method and status code",
                )
                .with_unit("s")
                .with_boundaries(DURATION_BOUNDS.to_vec())
                .build(),
            batch_sizes: meter
                .u64_histogram("yrd_store_commit_batch_size")
                .with_description("writes per group-committed transaction")
                .with_boundaries(BATCH_BOUNDS.to_vec())
                .build(),
            provider,
            reader,
            snapshot,
            leader,
            ready,
            _otlp: otlp,
        };
        Ok(Metrics {
            inner: Arc::new(inner),
        })
    }

    /// Counts one call of `method` answered with `code` after `elapsed`.
    pub fn record_call(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let labels = [
            KeyValue::new("method", method.to_owned()),
            KeyValue::new("code", code_name(code)),
        ];
        self.inner.calls.add(1, &labels);
        self.inner.durations.record(elapsed.as_secs_f64(), &labels);
    }

    /// Records the size of every batch `store` commits from now on.
    pub fn observe_store(&self, store: &Store) {
        let sizes = self.inner.batch_sizes.clone();
        store.observe_batch_sizes(Arc::new(move |n| {
            sizes.record(u64::try_from(n).unwrap_or(u64::MAX), &[]);
        }));
    }

    /// Reports the sequencer's leadership flag.
    pub fn observe_leadership(&self, leading: Arc<AtomicBool>) {
        let _ = self.inner.leader.set(leading);
    }

    /// Sets the readiness gauge.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Relaxed);
    }

    /// Replaces part of the snapshot the gauges report.
    pub fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut snapshot = match self.inner.snapshot.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut snapshot);
    }

    /// Reads the SQL-backed gauges (feed backlog, certificate expiry, overdue counts) afresh.
    pub async fn refresh(&self, store: &Store, clock: &dyn Clock) {
        let now = clock.now();
        let read = async {
            Ok::<_, yrd_store::StoreError>((
                store.feed_backlogs().await?,
                store.soonest_certificate_expiry(now).await?,
                store.overdue_referrals().await?,
                store.overdue_applications().await?,
            ))
        };
        match read.await {
            Ok((feeds, certs, referrals, applications)) => self.update(|s| {
                s.feeds = feeds
                    .into_iter()
                    .map(|f| {
                        let lag = f
                            .oldest_unacknowledged
                            .map_or(0.0, |t| seconds_between(t, now));
                        (f.agency, f.unacknowledged, lag)
                    })
                    .collect();
                s.certificate_expiry_s = certs
                    .into_iter()
                    .map(|(agency, t)| (agency, seconds_between(now, t)))
                    .collect();
                s.overdue_referrals = referrals.into_iter().map(|c| (c.agency, c.count)).collect();
                s.overdue_applications = applications
                    .into_iter()
                    .map(|c| (c.agency, c.count))
                    .collect();
            }),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: reading the gauges from the store failed")
            }
        }
    }

    /// Refreshes the SQL-backed gauges every `interval` until `stop`.
    pub fn spawn_refresh(
        &self,
        store: Store,
        clock: Arc<dyn Clock>,
        interval: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let metrics = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => metrics.refresh(&store, clock.as_ref()).await,
                }
            }
        })
    }

    /// Pushes the last values to the OTLP collector (when one is configured) and stops the
    /// export. Blocks up to the exporter's timeout; in async code call it from
    /// `spawn_blocking`. Later calls do nothing.
    pub fn shutdown(&self) {
        if let Err(e) = self.inner.provider.shutdown() {
            tracing::debug!(error = %e, "metrics provider shut down");
        }
    }

    /// Every metric as Prometheus text (exposition format 0.0.4).
    pub fn prometheus_text(&self) -> String {
        let mut collected = ResourceMetrics::default();
        if let Err(e) = self.inner.reader.collect(&mut collected) {
            tracing::warn!(error = %e, "metrics: collecting failed");
        }
        render::prometheus(&collected)
    }
}

/// `later - earlier` in seconds, negative when `later` is earlier.
fn seconds_between(earlier: time::OffsetDateTime, later: time::OffsetDateTime) -> f64 {
    (later - earlier).as_seconds_f64()
}

/// The observable gauges; their callbacks read the snapshot and flags at each collection.
fn register_gauges(
    meter: &Meter,
    snapshot: &Arc<Mutex<Snapshot>>,
    leader: &Arc<OnceLock<Arc<AtomicBool>>>,
    ready: &Arc<AtomicBool>,
) {
    let read = {
        let snapshot = snapshot.clone();
        move || match snapshot.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    };
    let agency = |a: &str| [KeyValue::new("agency", a.to_owned())];
    {
        let read = read.clone();
        meter
            .u64_observable_gauge("yrd_audit_tree_size")
            .with_description("leaves in the newest signed tree head of the exchange log")
            .with_callback(move |o| o.observe(read().tree_size, &[]))
            .build();
    }
    {
        let read = read.clone();
        meter
            .f64_observable_gauge("yrd_audit_integration_delay_seconds")
            .with_description(
                "how long the oldest exchange-log leaf not yet in a signed tree head has waited (0: none waits)",
            )
            .with_unit("s")
            .with_callback(move |o| o.observe(read().integration_delay_s, &[]))
            .build();
    }
    {
        let read = read.clone();
        meter
            .u64_observable_gauge("yrd_feed_backlog_events")
            .with_description("feed events written for an agency that it has not acknowledged")
            .with_callback(move |o| {
                for (a, backlog, _) in read().feeds {
                    o.observe(backlog, &agency(&a));
                }
            })
            .build();
    }
    {
        let read = read.clone();
        meter
            .f64_observable_gauge("yrd_feed_lag_seconds")
            .with_description(
                "age of the oldest feed event an agency has not acknowledged (0: none)",
            )
            .with_unit("s")
            .with_callback(move |o| {
                for (a, _, lag) in read().feeds {
                    o.observe(lag, &agency(&a));
                }
            })
            .build();
    }
    {
        let read = read.clone();
        meter
            .f64_observable_gauge("yrd_certificate_expiry_seconds")
            .with_description(
                "seconds until the soonest-expiring active client certificate of an agency expires",
            )
            .with_unit("s")
            .with_callback(move |o| {
                for (a, s) in read().certificate_expiry_s {
                    o.observe(s, &agency(&a));
                }
            })
            .build();
    }
    {
        let read = read.clone();
        meter
            .u64_observable_gauge("yrd_referrals_overdue")
            .with_description("open disposal referrals flagged overdue, by handling agency")
            .with_callback(move |o| {
                for (a, n) in read().overdue_referrals {
                    o.observe(n, &agency(&a));
                }
            })
            .build();
    }
    {
        let read = read.clone();
        meter
            .u64_observable_gauge("yrd_applications_overdue")
            .with_description("licence applications flagged overdue, by issuing agency")
            .with_callback(move |o| {
                for (a, n) in read().overdue_applications {
                    o.observe(n, &agency(&a));
                }
            })
            .build();
    }
    {
        let leader = leader.clone();
        meter
            .u64_observable_gauge("yrd_audit_sequencer_leader")
            .with_description("1 while this replica holds the sequencer lock and sequences the log")
            .with_callback(move |o| {
                let leading = leader.get().is_some_and(|l| l.load(Ordering::Relaxed));
                o.observe(u64::from(leading), &[]);
            })
            .build();
    }
    {
        let ready = ready.clone();
        meter
            .u64_observable_gauge("yrd_ready")
            .with_description("1 while this replica is ready (see /readyz)")
            .with_callback(move |o| o.observe(u64::from(ready.load(Ordering::Relaxed)), &[]))
            .build();
    }
}
