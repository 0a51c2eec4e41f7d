//! A write's client-chosen `request_id`, its idempotency key: one rule for every service, so
//! that the same key is accepted or refused the same way whichever write carries it.

use crate::FieldErrors;

/// The longest client-chosen request id (idempotency key) accepted.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// A write's client-chosen `request_id` (its idempotency key), trimmed; pushes a violation
/// when it is missing or longer than [`MAX_REQUEST_ID_CHARS`].
pub fn request_id(value: &str, errors: &mut FieldErrors) -> String {
    let value = value.trim();
    if value.is_empty() {
        errors.add("request_id", "is required: a client-chosen idempotency key");
    } else if value.chars().count() > MAX_REQUEST_ID_CHARS {
        errors.add(
            "request_id",
            format!("must be at most {MAX_REQUEST_ID_CHARS} characters"),
        );
    }
    value.to_owned()
}
