//! Instants to and from `google.protobuf.Timestamp`, the contract's one time type (AIP-142),
//! so that every service converts the same way and an out-of-range value is refused, not
//! clamped.

use prost_types::Timestamp;
use time::OffsetDateTime;

/// An instant as a protobuf `Timestamp`.
pub fn timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// A protobuf `Timestamp` as an instant; `None` when it is out of range.
pub fn from_timestamp(t: &Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).expect("valid");
        assert_eq!(from_timestamp(&timestamp(t)), Some(t));
    }
}
