//! Where the exchange's `tracing` output goes: log lines to stderr always, and OpenTelemetry
//! spans to an OTLP/gRPC collector when one is configured (`telemetry.otlp_endpoint` or
//! `YRD_OTLP_ENDPOINT`). With no endpoint nothing is exported and nothing connects anywhere.
//!
//! Two filters, one per output, so that one does not starve the other: `YRD_LOG` decides which
//! log lines are printed (default `info`), while the collector receives every span of the
//! exchange's own crates (`yrd_*` targets) whatever `YRD_LOG` says. The collector gets *spans
//! only*, never log events, and never spans of the libraries below us (tonic, hyper, h2): the
//! exchange's spans are written to carry the agency and method and no personal data (no officer
//! names, no message bodies), and log lines are not held to that rule. Leaving the libraries'
//! spans out also keeps the exporter from tracing its own exports.
//!
//! The exporters' gRPC channel runs on a small runtime of its own (one worker thread), the
//! [`OtlpChannel`]: [`init`] can then be called before the server's runtime exists, and
//! flushing never waits on a runtime that is busy serving or shutting down. The span pipeline
//! and the metrics (`server::metrics`) export to the same collector through one shared
//! [`OtlpChannel`], so a process holds one such runtime and one connection per endpoint.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{FilterFn, Filtered};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use crate::server::config::{LogFormat, TelemetrySettings};

/// The instrumentation scope of the exchange's spans.
const SCOPE: &str = "yrd-exchange";

/// Why telemetry could not be set up or flushed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The exporter's own runtime could not be started.
    #[error("cannot start the OTLP exporter's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The OTLP exporter refused its configuration.
    #[error("cannot build the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        /// The collector endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// Another global `tracing` subscriber was installed first (telemetry is set up once per
    /// process).
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
    /// Spans could not be handed to the collector.
    #[error("exporting spans to the OTLP collector: {0}")]
    Flush(#[source] opentelemetry_sdk::error::OTelSdkError),
}

/// The runtime and the lazily connected gRPC channel that carry every OTLP export of the
/// process to one collector: spans ([`OtlpPipeline`]) and metrics (`server::metrics`). Shared
/// through [`OtlpChannel::shared`]; the runtime stops when the last exporter using it is gone.
#[derive(Debug)]
pub struct OtlpChannel {
    endpoint: String,
    channel: tonic::transport::Channel,
    /// Drives the channel; shut down (without blocking) when the last user drops it.
    runtime: Option<tokio::runtime::Runtime>,
}

impl OtlpChannel {
    /// The process's channel to `endpoint` (`http://host:port`), opened on first use. Connects
    /// lazily: an absent collector costs failed exports (logged by nobody), never a failed start.
    pub fn shared(endpoint: &str) -> Result<Arc<OtlpChannel>, TelemetryError> {
        static OPEN: Mutex<Vec<Weak<OtlpChannel>>> = Mutex::new(Vec::new());
        let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|channel| channel.strong_count() > 0);
        if let Some(channel) = open
            .iter()
            .filter_map(Weak::upgrade)
            .find(|channel| channel.endpoint == endpoint)
        {
            return Ok(channel);
        }
        let channel = Arc::new(OtlpChannel::open(endpoint)?);
        open.push(Arc::downgrade(&channel));
        Ok(channel)
    }

    fn open(endpoint: &str) -> Result<OtlpChannel, TelemetryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("yrd-otlp")
            .enable_all()
            .build()
            .map_err(TelemetryError::Runtime)?;
        let channel = {
            // tonic spawns the channel's worker on the runtime current at build time: ours.
            let _on_our_runtime = runtime.enter();
            tonic::transport::Channel::from_shared(endpoint.to_owned())
                .map_err(|e| TelemetryError::Exporter {
                    endpoint: endpoint.to_owned(),
                    source: opentelemetry_otlp::ExporterBuildError::InvalidUri(
                        endpoint.to_owned(),
                        e.to_string(),
                    ),
                })?
                .timeout(opentelemetry_otlp::OTEL_EXPORTER_OTLP_TIMEOUT_DEFAULT)
                .connect_lazy()
        };
        Ok(OtlpChannel {
            endpoint: endpoint.to_owned(),
            channel,
            runtime: Some(runtime),
        })
    }

    /// An exporter of one signal over this channel: `builder` is the signal's tonic exporter
    /// builder (`SpanExporter::builder().with_tonic()`, `MetricExporter::builder().with_tonic()`),
    /// built on the channel's runtime.
    pub fn exporter<B, E>(
        &self,
        builder: B,
        build: impl FnOnce(B) -> Result<E, opentelemetry_otlp::ExporterBuildError>,
    ) -> Result<E, TelemetryError>
    where
        B: opentelemetry_otlp::WithTonicConfig + opentelemetry_otlp::WithExportConfig,
    {
        let _on_our_runtime = self.runtime.as_ref().map(tokio::runtime::Runtime::enter);
        build(
            builder
                .with_channel(self.channel.clone())
                .with_timeout(opentelemetry_otlp::OTEL_EXPORTER_OTLP_TIMEOUT_DEFAULT),
        )
        .map_err(|source| TelemetryError::Exporter {
            endpoint: self.endpoint.clone(),
            source,
        })
    }
}

impl Drop for OtlpChannel {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The span pipeline to a collector: the tracer provider with its batch exporter over the
/// process's [`OtlpChannel`]. Building one installs nothing; [`init`] installs it, and a test
/// may attach [`OtlpPipeline::layer`] to a subscriber of its own instead.
#[derive(Debug)]
pub struct OtlpPipeline {
    provider: SdkTracerProvider,
    /// Carries the exports; released after the provider has flushed.
    _channel: Arc<OtlpChannel>,
}

impl OtlpPipeline {
    /// A pipeline exporting to `endpoint` (`http://host:port`) under `service_name`. Connects
    /// lazily: an absent collector costs failed exports (logged by nobody), never a failed start.
    pub fn new(endpoint: &str, service_name: &str) -> Result<OtlpPipeline, TelemetryError> {
        let channel = OtlpChannel::shared(endpoint)?;
        let exporter = channel.exporter(
            opentelemetry_otlp::SpanExporter::builder().with_tonic(),
            |builder| builder.build(),
        )?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            )
            .build();
        Ok(OtlpPipeline {
            provider,
            _channel: channel,
        })
    }

    /// The `tracing` layer that turns the exchange's spans into OpenTelemetry spans for this
    /// pipeline (spans of `yrd_*` targets only; see the module docs).
    pub fn layer<S>(&self) -> Filtered<OtelLayer<S>, FilterFn, S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(SCOPE))
            .with_filter(exchange_spans_only())
    }

    /// Exports every span ended so far, blocking until the collector has answered. In async
    /// code call it from `spawn_blocking`.
    pub fn force_flush(&self) -> Result<(), TelemetryError> {
        self.provider.force_flush().map_err(TelemetryError::Flush)
    }
}

impl Drop for OtlpPipeline {
    fn drop(&mut self) {
        // Export what is still queued; the channel (and its runtime) goes once its last user has
        // gone too.
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "spans still queued for the OTLP collector were lost");
        }
    }
}

/// The OpenTelemetry layer over the SDK's tracer.
pub type OtelLayer<S> =
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>;

/// Spans (not events) of the exchange's own crates.
fn exchange_spans_only() -> FilterFn {
    FilterFn::new(is_exchange_span as fn(&tracing::Metadata<'_>) -> bool)
}

fn is_exchange_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with("yrd")
}

/// Keeps telemetry running while alive; dropping it flushes the spans still queued and stops
/// the exporter. `main` holds it until the server has stopped.
#[derive(Debug)]
#[must_use = "dropping the guard stops the span export"]
pub struct TelemetryGuard {
    pipeline: Option<OtlpPipeline>,
}

impl TelemetryGuard {
    /// Whether spans are being exported (an endpoint was configured).
    pub fn exporting(&self) -> bool {
        self.pipeline.is_some()
    }

    /// Exports every span ended so far (nothing to do when not exporting). Blocks; in async code
    /// call it from `spawn_blocking`.
    pub fn force_flush(&self) -> Result<(), TelemetryError> {
        match &self.pipeline {
            Some(pipeline) => pipeline.force_flush(),
            None => Ok(()),
        }
    }
}

/// Installs the process's global `tracing` subscriber: log lines to stderr filtered by `YRD_LOG`
/// (default `info`), plus span export to `settings.otlp_endpoint` when one is set. Call once,
/// before anything logs; keep the guard until the end of `main`.
pub fn init(settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    init_with_log(settings, LogFormat::Human)
}

/// As [`init`], with log lines in `format` (`log.format`).
pub fn init_with_log(
    settings: &TelemetrySettings,
    format: LogFormat,
) -> Result<TelemetryGuard, TelemetryError> {
    let pipeline = settings
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| OtlpPipeline::new(endpoint, &settings.service_name))
        .transpose()?;
    let logs = log_layer(format, std::io::stderr)
        .with_filter(EnvFilter::try_from_env("YRD_LOG").unwrap_or_else(|_| EnvFilter::new("info")));
    tracing_subscriber::registry()
        .with(logs)
        .with(pipeline.as_ref().map(OtlpPipeline::layer))
        .try_init()
        .map_err(TelemetryError::AlreadyInstalled)?;
    if let Some(endpoint) = &settings.otlp_endpoint {
        tracing::info!(%endpoint, service = %settings.service_name, "exporting spans over OTLP/gRPC");
    }
    Ok(TelemetryGuard { pipeline })
}

/// The log-line layer in `format`, writing to `writer`: human-readable text, or one JSON object
/// a line with the call's `trace_id` and `span_id` (`server::json_log`).
pub fn log_layer<S, W>(
    format: LogFormat,
    writer: W,
) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Human => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(crate::server::json_log::JsonWithTrace)
            .with_writer(writer)
            .boxed(),
    }
}
