//! The whole configuration checked at once, and turned into the typed values the server runs
//! with.
//!
//! Every value is looked at and every problem collected before any is reported, so an operator
//! fixes a bad file in one pass instead of one key per start (linkerd's `env.rs` works the same
//! way). What comes out, [`Parsed`], holds the values in the types the server needs (durations,
//! non-zero counts, the operator's id, the licensing rules): nothing past this point converts a
//! setting again, and nothing falls back to a default when a value does not fit.

use std::num::NonZeroU32;
use yrd_domain::case::MatchWindow;

use yrd_audit::log_key::LogKeyRotation;
use yrd_domain::AgencyId;
use yrd_licensing::LicensingSettings;
use yrd_store::StoreOptions;

use crate::server::agency_limits::AgencyLimits;
use crate::server::config::{ConfigError, Settings};

/// The settings in the types the server runs with; made only by [`Settings::check`], so holding
/// one means the whole configuration was accepted.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// `operator_agency`.
    pub operator: AgencyId,
    /// `licensing.*`, built into the rules the licensing service runs on.
    pub licensing: LicensingSettings,
    /// `token.lifetime_s`.
    pub token_lifetime: time::Duration,
    /// `token.key_rotation_hours`.
    pub token_key_rotation: time::Duration,
    /// `audit.receipt_key_rotation_hours` and `audit.tree_head_key_rotation_hours`.
    pub log_key_rotation: LogKeyRotation,
    /// `certificates.max_validity_days`.
    pub certificate_max_validity: time::Duration,
    /// `writes.request_id_retention_hours`.
    pub request_id_retention: time::Duration,
    /// `limits.agency_rate_per_second`, `limits.agency_burst`, `limits.agency_concurrency`.
    pub agency_limits: AgencyLimits,
    /// `disposal.case_match_window_days`.
    pub case_window: MatchWindow,
    /// `store.*`: the store's pool settings.
    pub store: StoreOptions,
}

/// The problems found so far, each under its key, in the order the keys were checked.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn add(&mut self, key: &'static str, problem: impl Into<String>) {
        self.0.push(ConfigError::Invalid {
            key,
            problem: problem.into(),
        });
    }

    /// The value, or `None` once the reason it is unusable has been noted under `key`.
    fn take<T, E: std::fmt::Display>(
        &mut self,
        key: &'static str,
        value: Result<T, E>,
    ) -> Option<T> {
        match value {
            Ok(value) => Some(value),
            Err(problem) => {
                self.add(key, problem.to_string());
                None
            }
        }
    }

    /// One problem as itself, several as one error listing each.
    fn into_error(mut self) -> ConfigError {
        if self.0.len() == 1 {
            self.0.remove(0)
        } else {
            ConfigError::Several(self.0)
        }
    }
}

impl Settings {
    /// Checks every value and returns them typed; when any is unacceptable, the error names
    /// every one that is (not only the first).
    pub fn check(&self) -> Result<Parsed, ConfigError> {
        let mut problems = Problems::default();
        let operator = problems.take("operator_agency", AgencyId::parse(&self.operator_agency));
        let licensing = match self.licensing.build() {
            Ok(licensing) => Some(licensing),
            Err(found) => {
                for problem in found {
                    problems.add("licensing", problem);
                }
                None
            }
        };
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            problems.take("telemetry.otlp_endpoint", check_otlp_endpoint(endpoint));
        }
        if self.telemetry.service_name.trim().is_empty() {
            problems.add("telemetry.service_name", "must not be empty");
        }
        if !self.database_url.is_empty() {
            problems.take(
                "database_url",
                yrd_store::Backend::from_url(&self.database_url),
            );
        }
        let tls = &self.tls;
        let given = [
            tls.ca_cert.is_some(),
            tls.server_cert.is_some(),
            tls.server_key.is_some(),
        ];
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            problems.add(
                "tls",
                "ca_cert, server_cert and server_key are given together or not at all",
            );
        }
        if self.token.lifetime_s > 600 {
            problems.add(
                "token.lifetime_s",
                "must be at most 600 (tokens live ten minutes at most)",
            );
        }
        if self.writes.request_id_retention_hours < 24 {
            problems.add(
                "writes.request_id_retention_hours",
                "must be at least 24 (request ids are kept at least a day)",
            );
        }
        if self.audit.sequencer_interval_ms >= self.audit.max_merge_delay_ms {
            problems.add(
                "audit.sequencer_interval_ms",
                "must be shorter than audit.max_merge_delay_ms",
            );
        }
        if self.store.acquire_timeout_ms >= self.limits.request_timeout_ms {
            problems.add(
                "store.acquire_timeout_ms",
                format!(
                    "{} is not shorter than limits.request_timeout_ms ({}); a call waiting on the \
                     database would be cut before it could be refused UNAVAILABLE",
                    self.store.acquire_timeout_ms, self.limits.request_timeout_ms
                ),
            );
        }
        for &(key, value) in &self.must_be_positive() {
            if value == 0 {
                problems.add(key, "must be greater than zero");
            }
        }
        if tls.max_pending_handshakes_per_source > tls.max_pending_handshakes {
            problems.add(
                "tls.max_pending_handshakes_per_source",
                format!(
                    "{} is more than tls.max_pending_handshakes ({}); one source can never have more than all together",
                    tls.max_pending_handshakes_per_source, tls.max_pending_handshakes
                ),
            );
        }

        // The typed values. Zero is reported once, by the positive-value check above.
        let token_lifetime = seconds(self.token.lifetime_s);
        let token_key_rotation = problems.take(
            "token.key_rotation_hours",
            hours(self.token.key_rotation_hours),
        );
        let receipt_rotation = problems.take(
            "audit.receipt_key_rotation_hours",
            hours(self.audit.receipt_key_rotation_hours),
        );
        let tree_head_rotation = problems.take(
            "audit.tree_head_key_rotation_hours",
            hours(self.audit.tree_head_key_rotation_hours),
        );
        let certificate_max_validity = problems.take(
            "certificates.max_validity_days",
            days(self.certificates.max_validity_days),
        );
        let request_id_retention = problems.take(
            "writes.request_id_retention_hours",
            hours(self.writes.request_id_retention_hours),
        );
        let case_window = problems.take(
            "disposal.case_match_window_days",
            MatchWindow::days(i64::from(self.disposal.case_match_window_days)),
        );
        let rate_per_second = NonZeroU32::new(self.limits.agency_rate_per_second);
        let burst = NonZeroU32::new(self.limits.agency_burst);

        let (
            Some(operator),
            Some(licensing),
            Some(token_lifetime),
            Some(token_key_rotation),
            Some(receipt),
            Some(tree_head),
            Some(certificate_max_validity),
            Some(request_id_retention),
            Some(rate_per_second),
            Some(burst),
            Some(case_window),
        ) = (
            operator,
            licensing,
            token_lifetime,
            token_key_rotation,
            receipt_rotation,
            tree_head_rotation,
            certificate_max_validity,
            request_id_retention,
            rate_per_second,
            burst,
            case_window,
        )
        else {
            return Err(problems.into_error());
        };
        if !problems.0.is_empty() {
            return Err(problems.into_error());
        }
        Ok(Parsed {
            operator,
            licensing,
            token_lifetime,
            token_key_rotation,
            log_key_rotation: LogKeyRotation { receipt, tree_head },
            certificate_max_validity,
            request_id_retention,
            agency_limits: AgencyLimits {
                rate_per_second,
                burst,
                concurrency: self.limits.agency_concurrency,
            },
            case_window,
            store: StoreOptions {
                acquire_timeout: std::time::Duration::from_millis(self.store.acquire_timeout_ms),
                ..StoreOptions::default()
            },
        })
    }

    /// The values that must be greater than zero, by key.
    fn must_be_positive(&self) -> Vec<(&'static str, u64)> {
        let (tls, limits) = (&self.tls, &self.limits);
        let count = |n: usize| n as u64;
        vec![
            (
                "metrics.export_interval_ms",
                self.metrics.export_interval_ms,
            ),
            (
                "metrics.refresh_interval_ms",
                self.metrics.refresh_interval_ms,
            ),
            (
                "metrics.readiness_interval_ms",
                self.metrics.readiness_interval_ms,
            ),
            (
                "disposal.scheduler_interval_ms",
                self.disposal.scheduler_interval_ms,
            ),
            (
                "disposal.acknowledgement_working_days",
                u64::from(self.disposal.acknowledgement_working_days),
            ),
            (
                "feed.heartbeat_interval_ms",
                self.feed.heartbeat_interval_ms,
            ),
            ("feed.read_batch", u64::from(self.feed.read_batch)),
            ("feed.send_buffer", count(self.feed.send_buffer)),
            (
                "feed.slow_subscriber_timeout_ms",
                self.feed.slow_subscriber_timeout_ms,
            ),
            (
                "audit.sequencer_interval_ms",
                self.audit.sequencer_interval_ms,
            ),
            ("limits.idle_timeout_s", limits.idle_timeout_s),
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
                u64::from(limits.agency_rate_per_second),
            ),
            ("limits.agency_burst", u64::from(limits.agency_burst)),
            (
                "limits.agency_concurrency",
                count(limits.agency_concurrency),
            ),
            ("tls.handshake_timeout_ms", tls.handshake_timeout_ms),
            (
                "tls.max_pending_handshakes",
                count(tls.max_pending_handshakes),
            ),
            (
                "tls.max_pending_handshakes_per_source",
                count(tls.max_pending_handshakes_per_source),
            ),
            ("limits.max_message_bytes", count(limits.max_message_bytes)),
            (
                "limits.max_concurrent_streams",
                u64::from(limits.max_concurrent_streams),
            ),
            (
                "limits.concurrency_per_connection",
                count(limits.concurrency_per_connection),
            ),
            ("limits.request_timeout_ms", limits.request_timeout_ms),
            ("store.acquire_timeout_ms", self.store.acquire_timeout_ms),
            ("limits.max_connection_age_s", limits.max_connection_age_s),
        ]
    }
}

/// A count of seconds as a duration, or `None` past what a duration holds (the caller reports
/// why, having bounded the value already).
fn seconds(s: u64) -> Option<time::Duration> {
    i64::try_from(s).ok().map(time::Duration::seconds)
}

/// A count of hours as a duration; refused rather than capped when it does not fit.
fn hours(h: u64) -> Result<time::Duration, String> {
    i64::try_from(h)
        .ok()
        .and_then(|h| h.checked_mul(3_600))
        .map(time::Duration::seconds)
        .ok_or_else(|| format!("{h} hours is longer than a duration can hold"))
}

/// A count of days as a duration; refused rather than capped when it does not fit.
fn days(d: u64) -> Result<time::Duration, String> {
    i64::try_from(d)
        .ok()
        .and_then(|d| d.checked_mul(86_400))
        .map(time::Duration::seconds)
        .ok_or_else(|| format!("{d} days is longer than a duration can hold"))
}

/// The collector endpoint must be a plain-HTTP/2 URI with a host: `http://collector:4317`.
/// TLS to the collector is not supported yet, so `https://` is refused rather than failing at
/// the first export.
fn check_otlp_endpoint(endpoint: &str) -> Result<(), String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("{endpoint:?} is not a URI: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "{endpoint:?}: TLS to the collector is not supported; use an http:// endpoint (a local collector or sidecar)"
            ));
        }
        _ => {
            return Err(format!(
                "{endpoint:?} must start with http:// (e.g. http://127.0.0.1:4317)"
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{endpoint:?} names no host"));
    }
    Ok(())
}
