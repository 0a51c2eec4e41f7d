//! One bad field of a request, every bad field of a request, and the one shape of
//! `INVALID_ARGUMENT` the contract promises: a `google.rpc.BadRequest` that names every bad
//! field, so a partner fixes them all in one round trip.
//!
//! Why it is shaped so: each service used to collect its bad fields in a collector of its own
//! and to convert them itself. [`FieldErrors`] is now the one collector; a service's parsers push
//! into it and its error enum carries it, and `Status::from` turns it into the wire error here
//! and nowhere else. A violation is the domain's [`FieldViolation`] (the pure crate reports the
//! bad fields of a spot-check result with it), so there is one field-error type, not a domain
//! one and a wire one.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
pub use yrd_domain::spotcheck::FieldViolation;

/// A violation of `field`.
pub fn violation(field: impl Into<String>, description: impl Into<String>) -> FieldViolation {
    FieldViolation {
        field: field.into(),
        description: description.into(),
    }
}

/// Every bad field of one request, in the order they were found. Empty means the request's
/// fields were all good; a non-empty one becomes `INVALID_ARGUMENT` with `BadRequest` details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldViolation>);

impl FieldErrors {
    /// No bad field yet.
    pub fn new() -> Self {
        FieldErrors(Vec::new())
    }

    /// The one bad field `field`.
    pub fn of(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldErrors(vec![violation(field, description)])
    }

    /// Adds a violation of `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(violation(field, description));
    }

    /// Adds a violation found elsewhere (e.g. by `resource_id`).
    pub fn push(&mut self, violation: FieldViolation) {
        self.0.push(violation);
    }

    /// The violations, in the order they were found.
    pub fn violations(&self) -> &[FieldViolation] {
        &self.0
    }

    /// `Ok` when no field was refused, otherwise these errors.
    pub fn check(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl std::ops::Deref for FieldErrors {
    type Target = [FieldViolation];

    fn deref(&self) -> &[FieldViolation] {
        &self.0
    }
}

impl From<FieldViolation> for FieldErrors {
    fn from(v: FieldViolation) -> Self {
        FieldErrors(vec![v])
    }
}

impl Extend<FieldViolation> for FieldErrors {
    fn extend<I: IntoIterator<Item = FieldViolation>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl FromIterator<FieldViolation> for FieldErrors {
    fn from_iter<I: IntoIterator<Item = FieldViolation>>(iter: I) -> Self {
        FieldErrors(iter.into_iter().collect())
    }
}

impl IntoIterator for FieldErrors {
    type Item = FieldViolation;
    type IntoIter = std::vec::IntoIter<FieldViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl From<&FieldErrors> for Status {
    fn from(errors: &FieldErrors) -> Status {
        bad_request(errors)
    }
}

impl From<FieldErrors> for Status {
    fn from(errors: FieldErrors) -> Status {
        Status::from(&errors)
    }
}

/// `INVALID_ARGUMENT` naming every bad field, with `google.rpc.BadRequest` details; the message
/// repeats them for clients that do not decode details.
pub fn bad_request(violations: &[FieldViolation]) -> Status {
    fields_status(Code::InvalidArgument, violations)
}

/// A status of `code` naming every bad field, with `google.rpc.BadRequest` details (the shape
/// of [`bad_request`], for a caller's fault of another code such as `OUT_OF_RANGE`).
pub fn fields_status(code: Code, violations: &[FieldViolation]) -> Status {
    let message = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for v in violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(code, message, details)
}

/// An optional USCC filter: `None` when blank, the validated code otherwise, or a violation of
/// `field` naming what is wrong with it.
pub fn optional_uscc(field: &str, value: &str, v: &mut FieldErrors) -> Option<String> {
    match value.trim() {
        "" => None,
        text => match yrd_domain::uscc::Uscc::parse(text) {
            Ok(u) => Some(u.as_str().to_owned()),
            Err(e) => {
                v.add(field, e.to_string());
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_request_names_every_field() {
        let mut errors = FieldErrors::new();
        errors.add("a.b", "is required");
        errors.push(violation("c", "too long"));
        let status = Status::from(errors);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, vec!["a.b".to_owned(), "c".to_owned()]);
        assert_eq!(status.message(), "a.b: is required; c: too long");
    }

    #[test]
    fn check_passes_only_when_empty() {
        assert_eq!(FieldErrors::new().check(), Ok(()));
        assert!(FieldErrors::of("x", "bad").check().is_err());
    }
}
