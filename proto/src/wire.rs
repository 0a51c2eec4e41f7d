//! Small helpers every service needs at the wire edge: time conversions, resource names, and
//! the one shape of `INVALID_ARGUMENT` the contract promises (a `google.rpc.BadRequest` that
//! names every bad field). They belong to the contract rather than to any one service, so they
//! live beside it instead of being copied into each service crate.

use prost_types::Timestamp;
use time::OffsetDateTime;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use yrd_pki::SignedReceipt;

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

/// The wire form of a signed receipt (`Receipt` in `common.proto`).
pub fn receipt(signed: &SignedReceipt) -> crate::v1::Receipt {
    let ms = |ms: u64| {
        (
            i64::try_from(ms / 1_000).unwrap_or(i64::MAX),
            i32::try_from((ms % 1_000) * 1_000_000).unwrap_or(0),
        )
    };
    let (seconds, nanos) = ms(signed.timestamp_ms);
    let (delay_seconds, delay_nanos) = ms(signed.max_merge_delay_ms);
    crate::v1::Receipt {
        leaf_index: None,
        leaf_hash: signed.leaf_hash.as_bytes().to_vec(),
        timestamp: Some(Timestamp { seconds, nanos }),
        signature: signed.signature.clone(),
        key_id: signed.key_id.clone(),
        max_merge_delay: Some(prost_types::Duration {
            seconds: delay_seconds,
            nanos: delay_nanos,
        }),
    }
}

/// SHA-256 of a request message as its protobuf encoding, lowercase hex: the request digest of
/// the call's audit leaf.
pub fn request_sha256<M: prost::Message>(message: &M) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(message.encode_to_vec()))
}

/// One bad field of a request: its path in protobuf names (`producer.uscc`,
/// `test_items[2].verdict`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path.
    pub field: String,
    /// What is wrong.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// `INVALID_ARGUMENT` naming every bad field, with `google.rpc.BadRequest` details; the message
/// repeats them for clients that do not decode details.
pub fn bad_request(violations: &[FieldViolation]) -> Status {
    let message = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for v in violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// The id inside a resource name `collection/{id}` (e.g. `agencies/370000-AMR`), or a
/// violation of `field` naming the expected form.
pub fn resource_id<'a>(
    name: &'a str,
    collection: &str,
    field: &str,
) -> Result<&'a str, FieldViolation> {
    match name
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(id) if !id.is_empty() && !id.contains('/') => Ok(id),
        _ => Err(FieldViolation::new(
            field,
            format!("must be a resource name of the form {collection}/{{id}}, got {name:?}"),
        )),
    }
}

/// The longest client-chosen request id (idempotency key) accepted.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// A write's client-chosen `request_id` (its idempotency key), trimmed; pushes a violation
/// when it is missing or longer than [`MAX_REQUEST_ID_CHARS`].
pub fn request_id(value: &str, errors: &mut Vec<FieldViolation>) -> String {
    let value = value.trim();
    if value.is_empty() {
        errors.push(FieldViolation::new(
            "request_id",
            "is required: a client-chosen idempotency key",
        ));
    } else if value.chars().count() > MAX_REQUEST_ID_CHARS {
        errors.push(FieldViolation::new(
            "request_id",
            format!("must be at most {MAX_REQUEST_ID_CHARS} characters"),
        ));
    }
    value.to_owned()
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

    #[test]
    fn resource_ids() {
        assert_eq!(
            resource_id("agencies/370000-AMR", "agencies", "name"),
            Ok("370000-AMR")
        );
        for bad in [
            "agencies/",
            "agency/370000-AMR",
            "agencies/a/b",
            "370000-AMR",
        ] {
            assert!(resource_id(bad, "agencies", "name").is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_request_names_every_field() {
        let status = bad_request(&[
            FieldViolation::new("a.b", "is required"),
            FieldViolation::new("c", "too long"),
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, vec!["a.b".to_owned(), "c".to_owned()]);
        assert!(status.message().contains("a.b: is required"));
    }
}
