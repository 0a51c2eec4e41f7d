//! Loading the configuration: the defaults, then the TOML file, then `YRD_*` environment
//! variables, then command-line flags, each layer overriding the one before, and the result
//! checked whole ([`Settings::check`]) before anything uses it.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use crate::server::config::{ConfigError, Overrides, Settings};

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
}

#[cfg(test)]
// figment's `Jail` closures must return its (large) `figment::Error`; that is its API.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;
    use std::net::SocketAddr;

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
    fn the_admin_listener_and_log_format_are_read_and_a_bad_format_refused() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "yrd.toml",
                "[metrics]\nlisten = \"127.0.0.1:9090\"\n[log]\nformat = \"json\"\n",
            )?;
            let settings = load(Some("yrd.toml")).expect("loads");
            assert_eq!(
                settings.metrics.listen,
                Some(SocketAddr::from(([127, 0, 0, 1], 9090)))
            );
            assert_eq!(settings.log.format, crate::server::config::LogFormat::Json);
            assert_eq!(Settings::default().metrics.listen, None, "off by default");
            jail.create_file("bad.toml", "[log]\nformat = \"xml\"\n")?;
            let err = load(Some("bad.toml")).expect_err("unknown format refused");
            assert!(err.to_string().contains("format"), "{err}");
            assert!(err.to_string().contains("xml"), "{err}");
            // YRD_LOG stays the log filter; YRD_LOG__FORMAT is the key.
            jail.set_env("YRD_LOG", "debug");
            jail.set_env("YRD_LOG__FORMAT", "json");
            assert_eq!(
                load(None).expect("loads").log.format,
                crate::server::config::LogFormat::Json
            );
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
        for (value, problem) in [
            ("0", "greater than zero"),
            ("30000", "shorter than limits.request_timeout_ms"),
        ] {
            Jail::expect_with(|jail| {
                jail.set_env("YRD_STORE__ACQUIRE_TIMEOUT_MS", value);
                let err = load(None).expect_err("a bad acquire timeout refused");
                let text = err.to_string();
                assert!(
                    text.contains("store.acquire_timeout_ms") && text.contains(problem),
                    "{value}: {err}"
                );
                Ok(())
            });
        }
        Jail::expect_with(|jail| {
            jail.set_env("YRD_STORE__ACQUIRE_TIMEOUT_MS", "750");
            let parsed = load(None)
                .and_then(|settings| settings.check())
                .expect("a short acquire timeout accepted");
            assert_eq!(
                parsed.store.acquire_timeout,
                std::time::Duration::from_millis(750)
            );
            Ok(())
        });
        Jail::expect_with(|_jail| {
            let err = load(Some("nope.toml")).expect_err("missing file refused");
            assert!(err.to_string().contains("nope.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        Jail::expect_with(|jail| {
            jail.set_env("YRD_OPERATOR_AGENCY", "shanghai");
            jail.set_env("YRD_LIMITS__MAX_CONCURRENT_STREAMS", "0");
            jail.set_env("YRD_LIMITS__AGENCY_BURST", "0");
            jail.set_env("YRD_TOKEN__LIFETIME_S", "601");
            jail.set_env("YRD_STORE__ACQUIRE_TIMEOUT_MS", "30000");
            let err = load(None).expect_err("bad values refused");
            let ConfigError::Several(problems) = &err else {
                panic!("expected every problem, got {err}");
            };
            assert_eq!(problems.len(), 5, "{err}");
            for key in [
                "operator_agency",
                "limits.max_concurrent_streams",
                "limits.agency_burst",
                "token.lifetime_s",
                "store.acquire_timeout_ms",
            ] {
                assert!(err.to_string().contains(key), "{key} missing from: {err}");
            }
            Ok(())
        });
    }

    #[test]
    fn a_duration_too_long_to_hold_is_refused_not_capped() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "YRD_AUDIT__RECEIPT_KEY_ROTATION_HOURS",
                "18446744073709551615",
            );
            let err = load(None).expect_err("an absurd period refused");
            assert!(
                err.to_string().contains("audit.receipt_key_rotation_hours"),
                "{err}"
            );
            Ok(())
        });
    }
}
