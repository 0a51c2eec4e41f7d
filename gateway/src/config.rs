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
    /// How long a shutdown waits for calls in flight.
    pub shutdown_grace_ms: u64,
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
    /// Any connection is closed (gracefully) after this long, so none outlives a revocation
    /// check indefinitely.
    pub max_connection_age_s: u64,
    /// HTTP/2 reset-flood guard: streams reset by the client before being accepted.
    pub max_pending_accept_reset_streams: usize,
    /// HTTP/2 reset-flood guard: streams the server had to reset because of client errors.
    pub max_local_error_reset_streams: usize,
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
            shutdown_grace_ms: 10_000,
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
            handshake_timeout_ms: 10_000,
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
            max_connection_age_s: 3_600,
            max_pending_accept_reset_streams: 32,
            max_local_error_reset_streams: 128,
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
        // suite; none of them is a setting.
        figment = figment.merge(
            Env::prefixed("YRD_")
                .ignore(&[
                    "CONFIG",
                    "LOG",
                    "TEST_POSTGRES_URL",
                    "TEST_REQUIRE_POSTGRES",
                ])
                .split("__"),
        );
        let mut settings: Settings = figment.extract().map_err(Box::new)?;
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
        let positive: [(&'static str, u64); 6] = [
            ("tls.handshake_timeout_ms", tls.handshake_timeout_ms),
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
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    problem: "must be greater than zero".into(),
                });
            }
        }
        Ok(())
    }
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
    fn an_unknown_key_is_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.create_file("yrd.toml", "[limits]\nrequest_timout_ms = 5\n")?;
            let err = load(Some("yrd.toml")).expect_err("typo refused");
            assert!(err.to_string().contains("request_timout_ms"), "{err}");
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
        Jail::expect_with(|_jail| {
            let err = load(Some("nope.toml")).expect_err("missing file refused");
            assert!(err.to_string().contains("nope.toml"), "{err}");
            Ok(())
        });
    }
}
