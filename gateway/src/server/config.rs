//! The server's configuration: one typed struct whose defaults serve the embedded case.
//!
//! Loaded in one place, in this order, each layer overriding the one before: the defaults,
//! the TOML file (when one is named), `YRD_*` environment variables (nested keys with a double
//! underscore: `YRD_LIMITS__REQUEST_TIMEOUT_MS`), then command-line flags. Unknown keys are
//! refused, so a typo never silently falls back to a default; the whole configuration is
//! checked before the runtime starts anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use yrd_domain::AgencyId;

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
}

impl Default for DisposalConfig {
    fn default() -> Self {
        DisposalConfig {
            scheduler_interval_ms: 60_000,
            acknowledgement_working_days: 2,
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

/// Hardening bounds. tonic's defaults are "no limit" for several of these (DESIGN.md, "Known
/// facts of the stack"), so every one is set explicitly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request message a service decodes.
    pub max_message_bytes: usize,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// Calls one connection may have in flight at once.
    pub concurrency_per_connection: usize,
    /// A unary call taking longer than this is cut with `DEADLINE_EXCEEDED`.
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
            token: TokenConfig::default(),
            certificates: CertificateConfig::default(),
            writes: WritesConfig::default(),
            audit: AuditConfig::default(),
            feed: FeedConfig::default(),
            disposal: DisposalConfig::default(),
            shutdown_grace_ms: 10_000,
            telemetry: TelemetrySettings::default(),
            licensing: yrd_licensing::LicensingConfig::default(),
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
            agency_rate_per_second: 500,
            agency_burst: 1_000,
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
}

impl Settings {
    /// Loads defaults, then `file` (if any), then the process's `YRD_*` variables, then
    /// `overrides`, and checks the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_owned()));
            }
            figment = figment.merge(Toml::file(file));
        }
        // YRD_CONFIG names the file, YRD_LOG the log filter and YRD_TEST_* configure the test
        // suite; none of them is a setting. YRD_OTLP_ENDPOINT is the short name of
        // `telemetry.otlp_endpoint`, read below.
        figment = figment.merge(
            Env::prefixed("YRD_")
                .ignore(&[
                    "CONFIG",
                    "LOG",
                    "TEST_POSTGRES_URL",
                    "TEST_REQUIRE_POSTGRES",
                    "OTLP_ENDPOINT",
                ])
                .split("__"),
        );
        let mut settings: Settings = figment.extract().map_err(Box::new)?;
        if settings.telemetry.otlp_endpoint.is_none() {
            settings.telemetry.otlp_endpoint = std::env::var("YRD_OTLP_ENDPOINT").ok();
        }
        // An empty endpoint (`YRD_OTLP_ENDPOINT=`) means "no export", as an unset one does.
        settings.telemetry.otlp_endpoint = settings
            .telemetry
            .otlp_endpoint
            .take()
            .filter(|e| !e.trim().is_empty());
        if let Some(dir) = &overrides.data_dir {
            settings.data_dir = dir.clone();
        }
        if let Some(listen) = overrides.listen {
            settings.listen = listen;
        }
        if let Some(url) = &overrides.database_url {
            settings.database_url = url.clone();
        }
        settings.check()?;
        Ok(settings)
    }

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

    fn check(&self) -> Result<(), ConfigError> {
        self.operator()?;
        self.licensing
            .build()
            .map_err(|problems| ConfigError::Invalid {
                key: "licensing",
                problem: problems.join("; "),
            })?;
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            check_otlp_endpoint(endpoint)?;
        }
        if self.telemetry.service_name.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "telemetry.service_name",
                problem: "must not be empty".into(),
            });
        }
        if !self.database_url.is_empty() {
            yrd_store::Backend::from_url(&self.database_url).map_err(|e| ConfigError::Invalid {
                key: "database_url",
                problem: e.to_string(),
            })?;
        }
        let tls = &self.tls;
        let given = [
            tls.ca_cert.is_some(),
            tls.server_cert.is_some(),
            tls.server_key.is_some(),
        ];
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            return Err(ConfigError::Invalid {
                key: "tls",
                problem: "ca_cert, server_cert and server_key are given together or not at all"
                    .into(),
            });
        }
        for (key, value) in [
            (
                "disposal.scheduler_interval_ms",
                self.disposal.scheduler_interval_ms,
            ),
            (
                "disposal.acknowledgement_working_days",
                u64::from(self.disposal.acknowledgement_working_days),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    problem: "must be positive".into(),
                });
            }
        }
        if self.token.lifetime_s > 600 {
            return Err(ConfigError::Invalid {
                key: "token.lifetime_s",
                problem: "must be at most 600 (tokens live ten minutes at most)".into(),
            });
        }
        if self.writes.request_id_retention_hours < 24 {
            return Err(ConfigError::Invalid {
                key: "writes.request_id_retention_hours",
                problem: "must be at least 24 (request ids are kept at least a day)".into(),
            });
        }
        if self.audit.sequencer_interval_ms >= self.audit.max_merge_delay_ms {
            return Err(ConfigError::Invalid {
                key: "audit.sequencer_interval_ms",
                problem: "must be shorter than audit.max_merge_delay_ms".into(),
            });
        }
        let positive: &[(&'static str, u64)] = &[
            (
                "feed.heartbeat_interval_ms",
                self.feed.heartbeat_interval_ms,
            ),
            ("feed.read_batch", u64::from(self.feed.read_batch)),
            ("feed.send_buffer", self.feed.send_buffer as u64),
            (
                "feed.slow_subscriber_timeout_ms",
                self.feed.slow_subscriber_timeout_ms,
            ),
            (
                "audit.sequencer_interval_ms",
                self.audit.sequencer_interval_ms,
            ),
            ("limits.idle_timeout_s", self.limits.idle_timeout_s),
            ("token.lifetime_s", self.token.lifetime_s),
            ("token.key_rotation_hours", self.token.key_rotation_hours),
            (
                "audit.receipt_key_rotation_hours",
                self.audit.receipt_key_rotation_hours,
            ),
            (
                "audit.tree_head_key_rotation_hours",
                self.audit.tree_head_key_rotation_hours,
            ),
            (
                "certificates.max_validity_days",
                self.certificates.max_validity_days,
            ),
            (
                "limits.agency_rate_per_second",
                u64::from(self.limits.agency_rate_per_second),
            ),
            ("limits.agency_burst", u64::from(self.limits.agency_burst)),
            (
                "limits.agency_concurrency",
                self.limits.agency_concurrency as u64,
            ),
            ("tls.handshake_timeout_ms", tls.handshake_timeout_ms),
            (
                "tls.max_pending_handshakes",
                tls.max_pending_handshakes as u64,
            ),
            (
                "tls.max_pending_handshakes_per_source",
                tls.max_pending_handshakes_per_source as u64,
            ),
            (
                "limits.max_message_bytes",
                self.limits.max_message_bytes as u64,
            ),
            (
                "limits.max_concurrent_streams",
                u64::from(self.limits.max_concurrent_streams),
            ),
            (
                "limits.concurrency_per_connection",
                self.limits.concurrency_per_connection as u64,
            ),
            ("limits.request_timeout_ms", self.limits.request_timeout_ms),
            (
                "limits.max_connection_age_s",
                self.limits.max_connection_age_s,
            ),
        ];
        for &(key, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    problem: "must be greater than zero".into(),
                });
            }
        }
        if tls.max_pending_handshakes_per_source > tls.max_pending_handshakes {
            return Err(ConfigError::Invalid {
                key: "tls.max_pending_handshakes_per_source",
                problem: format!(
                    "{} is more than tls.max_pending_handshakes ({}); one source can never have more than all together",
                    tls.max_pending_handshakes_per_source, tls.max_pending_handshakes
                ),
            });
        }
        Ok(())
    }
}

/// The collector endpoint must be a plain-HTTP/2 URI with a host: `http://collector:4317`.
/// TLS to the collector is not supported yet, so `https://` is refused rather than failing at
/// the first export.
fn check_otlp_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        key: "telemetry.otlp_endpoint",
        problem,
    };
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| invalid(format!("{endpoint:?} is not a URI: {e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(invalid(format!(
                "{endpoint:?}: TLS to the collector is not supported; use an http:// endpoint (a local collector or sidecar)"
            )));
        }
        _ => {
            return Err(invalid(format!(
                "{endpoint:?} must start with http:// (e.g. http://127.0.0.1:4317)"
            )));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(format!("{endpoint:?} names no host")));
    }
    Ok(())
}

#[cfg(test)]
// figment's `Jail` closures must return its (large) `figment::Error`; that is its API.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load(file: Option<&str>) -> Result<Settings, ConfigError> {
        Settings::load(file.map(Path::new), &Overrides::default())
    }

    #[test]
    fn defaults_serve_the_embedded_case() {
        Jail::expect_with(|_jail| {
            let s = load(None).expect("defaults load");
            assert_eq!(s.listen, SocketAddr::from(([127, 0, 0, 1], 50051)));
            assert_eq!(s.effective_database_url(), "sqlite://yrd-data/yrd.db");
            assert!(s.uses_dev_pki());
            assert_eq!(s.tls.handshake_timeout_ms, 3_000);
            assert_eq!(s.tls.max_pending_handshakes, 512);
            assert_eq!(s.tls.max_pending_handshakes_per_source, 32);
            Ok(())
        });
    }

    #[test]
    fn file_then_environment_then_flags() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "yrd.toml",
                "listen = \"127.0.0.1:7000\"\n[limits]\nrequest_timeout_ms = 5000\n",
            )?;
            jail.set_env("YRD_LIMITS__REQUEST_TIMEOUT_MS", "7000");
            jail.set_env("YRD_DATABASE_URL", "postgres://u@h/db");
            let s = load(Some("yrd.toml")).expect("loads");
            assert_eq!(s.listen.port(), 7000);
            assert_eq!(
                s.limits.request_timeout_ms, 7000,
                "environment beats the file"
            );
            assert_eq!(s.database_url, "postgres://u@h/db");
            let flags = Overrides {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 9000))),
                ..Overrides::default()
            };
            let s = Settings::load(Some(Path::new("yrd.toml")), &flags).expect("loads");
            assert_eq!(s.listen.port(), 9000, "flags beat everything");
            Ok(())
        });
    }

    #[test]
    fn the_otlp_endpoint_comes_from_the_key_or_the_short_variable() {
        Jail::expect_with(|_jail| {
            let s = load(None).expect("defaults load");
            assert_eq!(s.telemetry.otlp_endpoint, None, "no export by default");
            assert_eq!(s.telemetry.service_name, "yrd-exchange");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("YRD_OTLP_ENDPOINT", "http://127.0.0.1:4317");
            let s = load(None).expect("loads");
            assert_eq!(
                s.telemetry.otlp_endpoint.as_deref(),
                Some("http://127.0.0.1:4317")
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("YRD_OTLP_ENDPOINT", "http://short:4317");
            jail.set_env("YRD_TELEMETRY__OTLP_ENDPOINT", "http://keyed:4317");
            let s = load(None).expect("loads");
            assert_eq!(
                s.telemetry.otlp_endpoint.as_deref(),
                Some("http://keyed:4317"),
                "the config key beats the short variable"
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("YRD_OTLP_ENDPOINT", "");
            let s = load(None).expect("loads");
            assert_eq!(s.telemetry.otlp_endpoint, None, "empty means no export");
            Ok(())
        });
        for bad in ["collector:4317", "https://collector:4317", "http://"] {
            Jail::expect_with(|jail| {
                jail.set_env("YRD_TELEMETRY__OTLP_ENDPOINT", bad);
                let err = load(None).expect_err("bad endpoint refused");
                assert!(
                    err.to_string().contains("telemetry.otlp_endpoint"),
                    "{bad}: {err}"
                );
                Ok(())
            });
        }
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.create_file("yrd.toml", "[limits]\nrequest_timout_ms = 5\n")?;
            let err = load(Some("yrd.toml")).expect_err("typo refused");
            assert!(err.to_string().contains("request_timout_ms"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_licensing_limit_is_refused_by_its_key_and_unit() {
        Jail::expect_with(|jail| {
            jail.create_file("yrd.toml", "[licensing]\nverification_calendar_days = 45\n")?;
            let err = load(Some("yrd.toml")).expect_err("beyond the statute refused");
            assert!(
                err.to_string()
                    .contains("licensing.verification_calendar_days must be between 1 and 30"),
                "{err}"
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("YRD_LICENSING__VERIFICATION_WORKING_DAYS", "30");
            let err = load(None).expect_err("the old key refused");
            assert!(
                err.to_string()
                    .contains("now licensing.verification_calendar_days"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        Jail::expect_with(|jail| {
            jail.set_env("YRD_DATABASE_URL", "mysql://x");
            let err = load(None).expect_err("mysql refused");
            assert!(err.to_string().contains("database_url"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("YRD_OPERATOR_AGENCY", "shanghai");
            let err = load(None).expect_err("bad agency refused");
            assert!(err.to_string().contains("operator_agency"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("YRD_TLS__CA_CERT", "/etc/ca.pem");
            let err = load(None).expect_err("partial TLS refused");
            assert!(err.to_string().contains("given together"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("YRD_LIMITS__MAX_CONCURRENT_STREAMS", "0");
            let err = load(None).expect_err("zero refused");
            assert!(
                err.to_string().contains("limits.max_concurrent_streams"),
                "{err}"
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("YRD_WRITES__REQUEST_ID_RETENTION_HOURS", "23");
            let err = load(None).expect_err("less than a day refused");
            assert!(
                err.to_string()
                    .contains("writes.request_id_retention_hours"),
                "{err}"
            );
            Ok(())
        });
        for (variable, value, key) in [
            (
                "YRD_TLS__MAX_PENDING_HANDSHAKES",
                "0",
                "tls.max_pending_handshakes",
            ),
            (
                "YRD_TLS__MAX_PENDING_HANDSHAKES_PER_SOURCE",
                "0",
                "tls.max_pending_handshakes_per_source",
            ),
            (
                "YRD_TLS__MAX_PENDING_HANDSHAKES_PER_SOURCE",
                "513",
                "tls.max_pending_handshakes_per_source",
            ),
            (
                "YRD_TLS__MAX_PENDING_HANDSHAKES",
                "-1",
                "max_pending_handshakes",
            ),
            (
                "YRD_TLS__HANDSHAKE_TIMEOUT_MS",
                "0",
                "tls.handshake_timeout_ms",
            ),
        ] {
            Jail::expect_with(|jail| {
                jail.set_env(variable, value);
                let err = load(None).expect_err("bad handshake bound refused");
                // figment names an environment key in its own case: TLS.MAX_PENDING_HANDSHAKES.
                assert!(
                    err.to_string().to_lowercase().contains(key),
                    "{variable}={value}: {err}"
                );
                Ok(())
            });
        }
        Jail::expect_with(|_jail| {
            let err = load(Some("nope.toml")).expect_err("missing file refused");
            assert!(err.to_string().contains("nope.toml"), "{err}");
            Ok(())
        });
    }
}
