//! W3C Trace Context (level 1): the `traceparent` header every call carries.
//!
//! The exchange continues the caller's trace: its spans, the audit log entry of the call and
//! the feed events the call causes all carry the trace id. A call without a `traceparent` of
//! its own gets a fresh one (a new random trace id per call); to tie several calls into one
//! trace, or to name the trace the partner's own system already runs, put one on the request
//! with [`TraceParent::apply`].

use std::fmt;
use std::str::FromStr;

/// The header name.
pub const TRACEPARENT: &str = "traceparent";

/// A `traceparent` value: version `00`, a 16-byte trace id, an 8-byte parent span id and the
/// sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id; never all zero.
    pub trace_id: u128,
    /// The id of the caller's span; never zero.
    pub parent_id: u64,
    /// Whether the caller records the trace.
    pub sampled: bool,
}

impl TraceParent {
    /// A new trace: random trace and span ids, sampled.
    pub fn random() -> TraceParent {
        TraceParent {
            trace_id: fastrand::u128(1..),
            parent_id: fastrand::u64(1..),
            sampled: true,
        }
    }

    /// A new span of the same trace (what a retry or a follow-up call sends).
    pub fn child(&self) -> TraceParent {
        TraceParent {
            parent_id: fastrand::u64(1..),
            ..*self
        }
    }

    /// The trace id as 32 lower-case hex digits, as the exchange reports it (e.g.
    /// `FeedEvent.trace_id`).
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// Puts this trace context on `request`, replacing any there.
    pub fn apply<T>(&self, request: &mut tonic::Request<T>) {
        if let Ok(value) = self.to_string().parse() {
            request.metadata_mut().insert(TRACEPARENT, value);
        }
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.parent_id,
            u8::from(self.sampled)
        )
    }
}

/// A `traceparent` value that is not version 00 with valid, non-zero ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>): {0:?}")]
pub struct BadTraceParent(pub String);

impl FromStr for TraceParent {
    type Err = BadTraceParent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadTraceParent(s.to_owned());
        let parts: Vec<&str> = s.split('-').collect();
        let [version, trace, parent, flags] = parts.as_slice() else {
            return Err(bad());
        };
        let lower_hex = |p: &str, len: usize| {
            p.len() == len && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if *version != "00"
            || !lower_hex(trace, 32)
            || !lower_hex(parent, 16)
            || !lower_hex(flags, 2)
        {
            return Err(bad());
        }
        let trace_id = u128::from_str_radix(trace, 16).map_err(|_| bad())?;
        let parent_id = u64::from_str_radix(parent, 16).map_err(|_| bad())?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| bad())?;
        if trace_id == 0 || parent_id == 0 {
            return Err(bad());
        }
        Ok(TraceParent {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_traceparent_is_well_formed_and_round_trips() {
        let a = TraceParent::random();
        let text = a.to_string();
        assert_eq!(text.len(), 55, "{text}");
        assert!(text.starts_with("00-") && text.ends_with("-01"), "{text}");
        assert_eq!(text.parse::<TraceParent>(), Ok(a));
        assert_eq!(a.trace_id_hex().len(), 32);
        assert_ne!(TraceParent::random().trace_id, a.trace_id, "fresh per call");
        let child = a.child();
        assert_eq!(child.trace_id, a.trace_id);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad}");
        }
        let ok: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
            .parse()
            .expect("the W3C example");
        assert!(!ok.sampled);
    }
}
