//! One bad field of a request, and the one shape of `INVALID_ARGUMENT` the contract promises:
//! a `google.rpc.BadRequest` that names every bad field, so a partner fixes them all in one
//! round trip.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

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

#[cfg(test)]
mod tests {
    use super::*;

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
