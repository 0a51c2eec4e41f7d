//! When a call may be sent again, and how long to wait first.
//!
//! A call is retried only when sending it twice cannot do anything twice:
//!
//! * reads (every method whose response carries no `receipt`: `Get…`, `List…`, `Search…`,
//!   `Subscribe`, `TokenService`'s methods …);
//! * writes that carry a `request_id`: the exchange answers a repeated id with the first
//!   call's outcome and changes nothing again;
//! * `FeedService.Ack`, which only moves a position forward.
//!
//! Any other method (none in v1 today, but a future write without `request_id` would be one)
//! is sent once. The classification is read from the contract itself
//! ([`yrd_proto::FILE_DESCRIPTOR_SET`]), so a new method is classified the day it is added.
//!
//! Only `UNAVAILABLE` (the server is down, restarting or draining) and `RESOURCE_EXHAUSTED`
//! (a rate or concurrency limit) are retried. The wait before attempt *n + 1* is the server's
//! `google.rpc.RetryInfo.retry_delay` when it sent one, otherwise "full jitter" exponential
//! backoff: a uniformly random duration between zero and
//! `min(max_delay, initial_delay × 2^(n−1))`.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use prost::Message as _;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// How often and how patiently a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry.
    pub initial_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// The longest server-requested delay (`RetryInfo`) the client is willing to wait; a
    /// longer one ends the retries and the status is returned to the caller.
    pub max_server_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, backoff from 100 ms up to 5 s, server delays up to 30 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_server_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The backoff ceiling after `failures` failed attempts (1 after the first):
    /// `min(max_delay, initial_delay × 2^(failures−1))`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// A full-jitter backoff after `failures` failed attempts: uniform in `[0, ceiling]`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let ceiling = self.ceiling(failures);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    /// How long to wait before attempt `failures + 1` after `status`, or `None` when the call
    /// must not be sent again: a code other than `UNAVAILABLE` or `RESOURCE_EXHAUSTED`, the
    /// attempts used up, or a server-requested delay beyond [`Self::max_server_delay`].
    pub fn delay_after(&self, status: &Status, failures: u32) -> Option<Duration> {
        if !retryable_code(status.code()) || failures >= self.max_attempts {
            return None;
        }
        match server_delay(status) {
            Some(wait) if wait > self.max_server_delay => None,
            Some(wait) => Some(wait),
            None => Some(self.backoff(failures)),
        }
    }
}

/// `UNAVAILABLE` and `RESOURCE_EXHAUSTED`: the only codes after which an idempotent call is
/// sent again.
pub fn retryable_code(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::ResourceExhausted)
}

/// The delay a `google.rpc.RetryInfo` detail of `status` asks for, if any.
pub fn server_delay(status: &Status) -> Option<Duration> {
    status.get_error_details().retry_info()?.retry_delay
}

/// Whether sending a call twice is harmless, by method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// A read: no `receipt` in its response.
    Read,
    /// A write whose request carries a `request_id`.
    RequestId,
    /// A write that is idempotent by its nature (`FeedService.Ack`).
    Natural,
    /// Anything else: sent once.
    Never,
}

impl Idempotency {
    /// Whether a call of this kind may be retried.
    pub fn retryable(self) -> bool {
        !matches!(self, Idempotency::Never)
    }
}

/// Writes without a `request_id` that are idempotent by their nature.
const NATURALLY_IDEMPOTENT: &[&str] = &["/yrd.exchange.v1.FeedService/Ack"];

/// The v1 methods by HTTP/2 path (`/yrd.exchange.v1.FeedService/Ack`), classified.
static METHODS: LazyLock<HashMap<String, Idempotency>> = LazyLock::new(|| {
    let Ok(set) = prost_types::FileDescriptorSet::decode(yrd_proto::FILE_DESCRIPTOR_SET) else {
        return HashMap::new();
    };
    let mut messages = HashMap::new();
    for file in &set.file {
        for message in &file.message_type {
            let fields: Vec<&str> = message.field.iter().map(|f| f.name()).collect();
            let has = |name: &str| fields.contains(&name);
            messages.insert(
                format!(".{}.{}", file.package(), message.name()),
                (has("request_id"), has("receipt")),
            );
        }
    }
    let mut methods = HashMap::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                let (request_id, _) = messages
                    .get(method.input_type())
                    .copied()
                    .unwrap_or_default();
                let (_, receipt) = messages
                    .get(method.output_type())
                    .copied()
                    .unwrap_or_default();
                let kind = if method.client_streaming() {
                    Idempotency::Never
                } else if request_id {
                    Idempotency::RequestId
                } else if NATURALLY_IDEMPOTENT.contains(&path.as_str()) {
                    Idempotency::Natural
                } else if !receipt {
                    Idempotency::Read
                } else {
                    Idempotency::Never
                };
                methods.insert(path, kind);
            }
        }
    }
    methods
});

/// How the method at HTTP/2 `path` is classified; methods outside the v1 contract (health
/// checks, reflection) are [`Idempotency::Never`].
pub fn idempotency(path: &str) -> Idempotency {
    METHODS.get(path).copied().unwrap_or(Idempotency::Never)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn the_backoff_ceiling_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.ceiling(1), Duration::from_millis(100));
        assert_eq!(policy.ceiling(2), Duration::from_millis(200));
        assert_eq!(policy.ceiling(4), Duration::from_millis(800));
        assert_eq!(policy.ceiling(7), Duration::from_secs(5));
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling_and_spreads() {
        let policy = RetryPolicy::default();
        for failures in 1..=8 {
            let ceiling = policy.ceiling(failures);
            let draws: Vec<Duration> = (0..2_000).map(|_| policy.backoff(failures)).collect();
            assert!(
                draws.iter().all(|d| *d <= ceiling),
                "{failures}: {ceiling:?}"
            );
            // Full jitter: draws fill the whole range, not just its top (2,000 uniform draws
            // all above 10 % or all below 90 % of the ceiling would be a broken generator).
            assert!(draws.iter().any(|d| *d < ceiling / 10), "{failures}");
            assert!(draws.iter().any(|d| *d > ceiling * 9 / 10), "{failures}");
        }
    }

    #[test]
    fn only_unavailable_and_resource_exhausted_are_retried_within_the_attempts() {
        let policy = RetryPolicy::default();
        let unavailable = Status::unavailable("restarting");
        for failures in 1..policy.max_attempts {
            let wait = policy.delay_after(&unavailable, failures).expect("retried");
            assert!(wait <= policy.ceiling(failures));
        }
        assert_eq!(policy.delay_after(&unavailable, policy.max_attempts), None);
        assert!(
            policy
                .delay_after(&Status::resource_exhausted("limit"), 1)
                .is_some()
        );
        for status in [
            Status::invalid_argument("bad"),
            Status::internal("bug"),
            Status::unauthenticated("expired"),
            Status::deadline_exceeded("slow"),
            Status::aborted("conflict"),
        ] {
            assert_eq!(policy.delay_after(&status, 1), None, "{status:?}");
        }
        assert_eq!(
            RetryPolicy::none().delay_after(&unavailable, 1),
            None,
            "one attempt means no retry"
        );
    }

    #[test]
    fn a_server_retry_delay_is_honoured_exactly_unless_too_long() {
        let policy = RetryPolicy::default();
        let asked = Duration::from_millis(1_234);
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "over the rate limit",
            ErrorDetails::with_retry_info(Some(asked)),
        );
        assert_eq!(server_delay(&status), Some(asked));
        // Far above the first backoff ceiling (100 ms): the server's word wins.
        assert_eq!(policy.delay_after(&status, 1), Some(asked));
        assert_eq!(policy.delay_after(&status, 4), Some(asked));

        let too_long = Status::with_error_details(
            Code::Unavailable,
            "maintenance",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(3_600))),
        );
        assert_eq!(policy.delay_after(&too_long, 1), None);
    }

    #[test]
    fn methods_are_classified_from_the_contract() {
        assert_eq!(
            idempotency("/yrd.exchange.v1.SpotCheckService/PublishResult"),
            Idempotency::RequestId
        );
        assert_eq!(
            idempotency("/yrd.exchange.v1.SpotCheckService/SearchResults"),
            Idempotency::Read
        );
        assert_eq!(
            idempotency("/yrd.exchange.v1.FeedService/Subscribe"),
            Idempotency::Read
        );
        assert_eq!(
            idempotency("/yrd.exchange.v1.FeedService/Ack"),
            Idempotency::Natural
        );
        assert_eq!(
            idempotency("/yrd.exchange.v1.TokenService/IssueToken"),
            Idempotency::Read
        );
        assert_eq!(
            idempotency("/grpc.health.v1.Health/Check"),
            Idempotency::Never
        );
        assert_eq!(
            idempotency("/yrd.exchange.v1.SpotCheckService/NoSuchMethod"),
            Idempotency::Never
        );
        // Every write with a receipt in v1 carries a request_id or is Ack.
        assert!(METHODS.len() >= 40, "{}", METHODS.len());
        assert!(METHODS.values().all(|kind| kind.retryable()));
    }
}
