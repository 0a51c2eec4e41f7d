//! How this crate's unary failures reach the wire, in one place. The caller's faults name what
//! is wrong; the exchange's own failures are logged with their cause and answered generically.
//! (A stream's terminal statuses are chosen in `subscription`, where its ends are.)

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use yrd_domain::AgencyId;
use yrd_domain::roles::Caller;
use yrd_store::StoreError;

/// A failure of the store, answered as `UNAVAILABLE` (the caller may retry) and logged.
pub(crate) fn store_failure(e: &StoreError) -> Status {
    tracing::error!(error = %e, "store failure");
    Status::unavailable("the exchange's store is unavailable; retry later")
}

/// A cursor past the end of the caller's feed: `OUT_OF_RANGE` (AIP-193: the value is well
/// formed but beyond the range that currently exists, and may become valid as the feed grows),
/// with a `google.rpc.BadRequest` naming `field`, as the error model pairs the two.
pub(crate) fn beyond_latest(field: &str, cursor: u64, latest: u64) -> Status {
    let description =
        format!("cursor {cursor} is beyond the latest cursor of your feed ({latest})");
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, description.clone());
    Status::with_error_details(Code::OutOfRange, format!("{field}: {description}"), details)
}

/// The calling agency: from the token layer's [`Caller`], or the identity layer's
/// certificate identity; never from the message.
pub(crate) fn caller_agency<T>(request: &tonic::Request<T>) -> Result<AgencyId, Status> {
    let extensions = request.extensions();
    if let Some(caller) = extensions.get::<Caller>() {
        return Ok(caller.agency().clone());
    }
    extensions
        .get::<yrd_domain::AgencyIdentity>()
        .map(|identity| identity.agency.clone())
        .ok_or_else(|| Status::unauthenticated("no client certificate identity on this call"))
}
