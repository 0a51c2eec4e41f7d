//! How this crate's failures reach the wire: one place mapping each error to a gRPC status.
//! The caller's faults name what is wrong; the exchange's own failures are logged with their
//! cause and answered with a generic message.

use tonic::Status;

/// A failure of the store, answered as `UNAVAILABLE` (the caller may retry) and logged; a
/// request id reused for another request is the caller's `ALREADY_EXISTS`.
pub(crate) fn store_failure(e: &yrd_store::StoreError) -> Status {
    if let yrd_store::StoreError::RequestIdReused { .. } = e {
        return Status::already_exists(e.to_string());
    }
    tracing::error!(error = %e, "store failure");
    Status::unavailable("the exchange's store is unavailable; retry later")
}

/// An internal failure that is not the caller's, logged and answered as `INTERNAL`.
pub(crate) fn internal(what: &str, e: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %e, "{what}");
    Status::internal(format!("{what} failed inside the exchange"))
}

/// The caller's identity, which the gateway's identity layer always puts in the extensions.
pub(crate) fn identity<T>(
    request: &tonic::Request<T>,
) -> Result<yrd_domain::AgencyIdentity, Status> {
    request
        .extensions()
        .get::<yrd_domain::AgencyIdentity>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no client certificate identity on this call"))
}
