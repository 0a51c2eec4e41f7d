//! Times are stored as Unix microseconds in `BIGINT` columns on both backends.

use time::OffsetDateTime;

use crate::StoreError;

/// An instant as Unix microseconds.
pub(crate) fn to_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// Unix microseconds back to an instant.
pub(crate) fn from_micros(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| StoreError::corrupt("timestamp", e))
}

/// `t` at the microsecond precision the store keeps, so an answer built before a write equals
/// the same row read back afterwards.
pub fn stored_precision(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}
