//! The server's configuration: one typed struct whose defaults serve the embedded case.
//!
//! Loaded in one place, in this order, each layer overriding the one before: the defaults,
//! the TOML file (when one is named), `YRD_*` environment variables (nested keys with a double
//! underscore: `YRD_LIMITS__REQUEST_TIMEOUT_MS`), then command-line flags. Unknown keys are
//! refused, so a typo never silently falls back to a default; the whole configuration is
//! checked before the runtime starts anything.
//!
//! This module holds the settings as they are written (the structs and their defaults);
//! `load` reads them from their sources, and `check` looks at every value at once and turns
//! them into the typed [`Parsed`] values the server runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use yrd_domain::case::MatchWindow;

use serde::{Deserialize, Serialize};
use yrd_domain::AgencyId;

mod check;
mod load;

pub use check::Parsed;

/// Everything `yrd serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where the server listens (TLS only). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the embedded database and the dev PKI live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`. Empty: `sqlite://<data_dir>/yrd.db`.
    pub database_url: String,
    /// The exchange's operator agency, whose admins manage agencies and certificates.
    pub operator_agency: String,
    /// TLS material and handshake bounds.
    pub tls: TlsSettings,
    /// Bounds on what one connection or call may make the server do.
    pub limits: Limits,
    /// The store's connection pools.
    pub store: StoreSettings,
    /// Access tokens.
    pub token: TokenConfig,
    /// Certificates the exchange issues.
    pub certificates: CertificateConfig,
    /// Idempotent writes: how long request ids are remembered.
    pub writes: WritesConfig,
    /// The exchange log.
    pub audit: AuditConfig,
    /// Feed streams (`FeedService.Subscribe`).
    pub feed: FeedConfig,
    /// Disposal referrals: the deadline scheduler and the acknowledgement period.
    pub disposal: DisposalConfig,
    /// How long a shutdown waits for calls in flight.
    pub shutdown_grace_ms: u64,
    /// Distributed tracing: where spans are exported, and under which service name.
    pub telemetry: TelemetrySettings,
    /// Hu-Lu joint processing (沪鲁通办): catalogue, working calendar, time limits, scheduler.
    pub licensing: yrd_licensing::LicensingConfig,
    /// Metrics and the admin listener (`docs/metrics.md`).
    pub metrics: MetricsSettings,
    /// Log lines: human-readable or JSON.
    pub log: LogSettings,
}

/// Metrics and the admin listener of `GET /metrics`, `/livez` and `/readyz`. Metrics also go
/// to the OTLP collector when `telemetry.otlp_endpoint` is set, listener or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Where the admin listener serves plain HTTP (no TLS: keep it on loopback or a private
    /// network). Unset (the default): no admin listener.
    pub listen: Option<SocketAddr>,
    /// How often metrics are pushed to the OTLP collector (when one is configured).
    pub export_interval_ms: u64,
    /// How often the gauges read from the database (feed backlog, certificate expiry, overdue
    /// counts, tree size) are refreshed; a scrape of `/metrics` also refreshes them.
    pub refresh_interval_ms: u64,
    /// How often readiness probes the store and the sequencer's progress.
    pub readiness_interval_ms: u64,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: None,
            export_interval_ms: 60_000,
            refresh_interval_ms: 15_000,
            readiness_interval_ms: 1_000,
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `human` (the default) or `json`: one JSON object a line, with the current span's
    /// `trace_id` and `span_id`.
    pub format: LogFormat,
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable text lines.
    #[default]
    Human,
    /// One JSON object a line.
    Json,
}

/// OpenTelemetry export. With no endpoint nothing is exported and nothing is connected to; the
/// trace layer still continues partners' trace ids and answers `x-trace-id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// The OTLP/gRPC collector, `http://host:4317`. Unset: `YRD_OTLP_ENDPOINT` when that is
    /// set (the name operators know from the issue), else no export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: None,
            service_name: "yrd-exchange".to_owned(),
        }
    }
}

/// TLS material. Empty paths mean the dev PKI under `<data_dir>/pki`, created on first start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// The exchange CA certificate (PEM) that client certificates must chain to.
    pub ca_cert: Option<PathBuf>,
    /// The exchange CA private key (PKCS#8 PEM), needed to issue certificates.
    pub ca_key: Option<PathBuf>,
    /// The server certificate (PEM).
    pub server_cert: Option<PathBuf>,
    /// The server private key (PKCS#8 PEM).
    pub server_key: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the dev server certificate, beyond localhost.
    pub server_names: Vec<String>,
    /// A client that has not finished its TLS handshake by then is dropped.
    pub handshake_timeout_ms: u64,
    /// Connections waiting for their TLS handshake, all sources together; beyond it a new
    /// connection is closed at once. Each holds a file descriptor while anonymous.
    pub max_pending_handshakes: usize,
    /// Connections waiting for their TLS handshake from one source address (IPv4 address,
    /// IPv6 /64); beyond it a new connection from that source is closed at once.
    pub max_pending_handshakes_per_source: usize,
}

/// The store's connection pools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// How long one database round of a call waits for a pooled connection before the call is
    /// refused `UNAVAILABLE`: while the database is down, how fast calls fail
    /// (docs/reliability.md, "Database outage"). Shorter than `limits.request_timeout_ms`.
    pub acquire_timeout_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            acquire_timeout_ms: 5_000,
        }
    }
}

/// Access tokens (TokenService).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Lifetime of an access token; at most 600 (ten minutes).
    pub lifetime_s: u64,
    /// A new signing key is rotated in when the newest is this old.
    pub key_rotation_hours: u64,
    /// `iss` of the tokens.
    pub issuer: String,
    /// `aud` of the tokens.
    pub audience: String,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            lifetime_s: 600,
            key_rotation_hours: 24 * 7,
            issuer: "yrd-exchange".to_owned(),
            audience: "yrd-exchange".to_owned(),
        }
    }
}

/// The exchange log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The longest a leaf waits for a signed tree head (promised in every receipt).
    pub max_merge_delay_ms: u64,
    /// How often the sequencer looks for new leaves.
    pub sequencer_interval_ms: u64,
    /// A new receipt signing key is rotated in (with an overlap) when the newest is this old.
    pub receipt_key_rotation_hours: u64,
    /// A new tree-head signing key is rotated in (with an overlap) when the newest is this old.
    pub tree_head_key_rotation_hours: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            max_merge_delay_ms: 5_000,
            sequencer_interval_ms: 200,
            receipt_key_rotation_hours: 24 * 30,
            tree_head_key_rotation_hours: 24 * 30,
        }
    }
}

/// Feed streams: heartbeats and how long a subscriber that stops reading is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// An idle stream gets a heartbeat this often; each tick also re-reads the store.
    pub heartbeat_interval_ms: u64,
    /// Events read from the store per query while a backlog is delivered.
    pub read_batch: u32,
    /// Messages that may wait in the exchange for one subscriber.
    pub send_buffer: usize,
    /// A subscriber whose buffer stays full this long is dropped (it resumes from its cursor).
    pub slow_subscriber_timeout_ms: u64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            heartbeat_interval_ms: 10_000,
            read_batch: 256,
            send_buffer: 64,
            slow_subscriber_timeout_ms: 30_000,
        }
    }
}

/// Idempotent writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WritesConfig {
    /// How long the answer to a request id is kept for retries; the contract promises at
    /// least 24 hours. Older ones are pruned hourly.
    pub request_id_retention_hours: u64,
}

impl Default for WritesConfig {
    fn default() -> Self {
        WritesConfig {
            request_id_retention_hours: 24 * 7,
        }
    }
}

/// Disposal referrals (不合格产品联动处置).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisposalConfig {
    /// How often the deadline scheduler looks for referrals whose deadline passed. Each
    /// replica runs it; the store makes each flag count once.
    pub scheduler_interval_ms: u64,
    /// Working days the handling agency has to acknowledge delivery (送达); the administrative
    /// default is 2 (`docs/domain.md` §"Speed and delivery (送达)").
    pub acknowledgement_working_days: u32,
    /// Days two findings of the same product may be apart and still form a case (串案,
    /// `docs/cases.md`), 1 to 3653; 365 by default.
    pub case_match_window_days: u32,
}

impl Default for DisposalConfig {
    fn default() -> Self {
        DisposalConfig {
            scheduler_interval_ms: 60_000,
            acknowledgement_working_days: 2,
            case_match_window_days: u32::from(MatchWindow::DEFAULT_DAYS),
        }
    }
}

/// Certificates the exchange issues from CSRs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CertificateConfig {
    /// Longest validity an admin may give a certificate.
    pub max_validity_days: u64,
}

impl Default for CertificateConfig {
    fn default() -> Self {
        CertificateConfig {
            max_validity_days: 90,
        }
    }
}

/// Hardening bounds. tonic's defaults are "no limit" for several of these, so every one
/// is set explicitly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request message a service decodes.
    pub max_message_bytes: usize,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// Calls one connection may have in flight at once.
    pub concurrency_per_connection: usize,
    /// A call whose answer (a stream: its opening) takes longer than this is cut with
    /// `DEADLINE_EXCEEDED`; so is one past the deadline its client sent (`grpc-timeout`).
    pub request_timeout_ms: u64,
    /// HTTP/2 keepalive ping interval.
    pub keepalive_interval_ms: u64,
    /// A connection whose keepalive ping is unanswered this long is closed.
    pub keepalive_timeout_ms: u64,
    /// A connection with no call in flight and none begun for this long is closed.
    pub idle_timeout_s: u64,
    /// Any connection is closed (gracefully) after this long, so none outlives a revocation
    /// check indefinitely.
    pub max_connection_age_s: u64,
    /// HTTP/2 reset-flood guard: streams reset by the client before being accepted.
    pub max_pending_accept_reset_streams: usize,
    /// HTTP/2 reset-flood guard: streams the server had to reset because of client errors.
    pub max_local_error_reset_streams: usize,
    /// Sustained calls per second one agency may make (all its connections together).
    pub agency_rate_per_second: u32,
    /// Calls one agency may make in a burst above its sustained rate.
    pub agency_burst: u32,
    /// Calls one agency may have in flight at once.
    pub agency_concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("yrd-data"),
            database_url: String::new(),
            operator_agency: yrd_domain::ids::DEFAULT_OPERATOR.to_owned(),
            tls: TlsSettings::default(),
            limits: Limits::default(),
            store: StoreSettings::default(),
            token: TokenConfig::default(),
            certificates: CertificateConfig::default(),
            writes: WritesConfig::default(),
            audit: AuditConfig::default(),
            feed: FeedConfig::default(),
            disposal: DisposalConfig::default(),
            shutdown_grace_ms: 10_000,
            telemetry: TelemetrySettings::default(),
            licensing: yrd_licensing::LicensingConfig::default(),
            metrics: MetricsSettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            ca_cert: None,
            ca_key: None,
            server_cert: None,
            server_key: None,
            server_names: Vec::new(),
            // A real client finishes in milliseconds; a silent one holds a slot until then.
            handshake_timeout_ms: 3_000,
            max_pending_handshakes: 512,
            max_pending_handshakes_per_source: 32,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_streams: 128,
            concurrency_per_connection: 256,
            request_timeout_ms: 30_000,
            keepalive_interval_ms: 30_000,
            keepalive_timeout_ms: 10_000,
            idle_timeout_s: 300,
            max_connection_age_s: 3_600,
            max_pending_accept_reset_streams: 32,
            max_local_error_reset_streams: 128,
            // Sized from the benchmark (docs/performance.md): one agency alone may use about
            // all of what one replica serves for handler calls on the reference machine; the
            // per-agency concurrency bound, not the rate, shares the server when several
            // agencies are busy, and the rate stops a runaway client.
            agency_rate_per_second: 2_000,
            agency_burst: 4_000,
            agency_concurrency: 128,
        }
    }
}

/// Command-line values that override the file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--database-url`.
    pub database_url: Option<String>,
}

/// Why the configuration was refused. The message names the key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is unknown or its value has the wrong type (figment names the key and source).
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// The configuration file named does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    /// A value is of the right type but not acceptable.
    #[error("configuration: {key}: {problem}")]
    Invalid {
        /// The key, dotted (`limits.max_message_bytes`).
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Several values are not acceptable: each one, so that all are fixed in one pass.
    #[error("configuration: {} values are not acceptable:\n{}", .0.len(), list(.0))]
    Several(Vec<ConfigError>),
}

/// One problem a line, indented under the summary.
fn list(problems: &[ConfigError]) -> String {
    problems
        .iter()
        .map(|p| format!("  {}", p.to_string().trim_start_matches("configuration: ")))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Settings {
    /// The database URL in effect: the configured one, or the embedded SQLite file.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("yrd.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The operator agency, parsed.
    pub fn operator(&self) -> Result<AgencyId, ConfigError> {
        AgencyId::parse(&self.operator_agency).map_err(|e| ConfigError::Invalid {
            key: "operator_agency",
            problem: e.to_string(),
        })
    }

    /// Where the dev PKI lives when no TLS paths are configured.
    pub fn dev_pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    /// True when TLS material comes from the dev PKI rather than configured paths.
    pub fn uses_dev_pki(&self) -> bool {
        self.tls.ca_cert.is_none()
            && self.tls.server_cert.is_none()
            && self.tls.server_key.is_none()
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}
