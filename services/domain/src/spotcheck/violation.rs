//! [`FieldViolation`] and [`FieldErrors`]: every bad field of a result at once, each with its
//! wire path, as the gateway reports them in one `google.rpc.BadRequest`.

use std::fmt;

/// One bad field: its wire path in protobuf snake_case and what is wrong with it.
/// The gateway turns each into a `google.rpc.BadRequest.FieldViolation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Wire path, e.g. `producer.uscc`, `test_items[2].verdict`, `failed_items[0]`.
    pub field: String,
    /// What is wrong, in a sentence a partner's developer can act on.
    pub description: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Every violation found in one [`ResultInput`], in the order of the message's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spot-check result refused, {} bad field(s): {}", .violations.len(), join(.violations))]
pub struct FieldErrors {
    /// The violations; never empty when returned by [`SpotCheckResult::parse`].
    pub violations: Vec<FieldViolation>,
}

impl FieldErrors {
    /// The wire paths of the bad fields, in order (a field may appear more than once).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.violations.iter().map(|v| v.field.as_str())
    }
}

fn join(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
