//! Why a `SpotCheckService` call failed, and the one place that turns it into a gRPC status.
//!
//! The caller's faults name what is wrong (the field, the result, the version); the exchange's
//! own failures are logged with their cause and answered with a generic message, so a partner
//! never sees database internals.

use yrd_call::{FieldErrors, Kind};
use yrd_store::{ResultWriteError, StoreError};

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request has bad fields: `INVALID_ARGUMENT` with a `google.rpc.BadRequest`.
    #[error("{} bad field(s)", .0.len())]
    Invalid(FieldErrors),
    /// No such result or version: `NOT_FOUND`.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The result is another agency's: `PERMISSION_DENIED`.
    #[error("{name} was published by {publisher}; only the publisher may correct or withdraw it")]
    NotPublisher {
        /// The result's name.
        name: String,
        /// Its publisher.
        publisher: String,
    },
    /// The result is withdrawn: `FAILED_PRECONDITION`.
    #[error("{0} is withdrawn; a withdrawn result can be neither corrected nor withdrawn again")]
    Withdrawn(String),
    /// The correction was built on an older version: `ABORTED`.
    #[error("{name} is at version {latest}, not {expected}: read it again and retry")]
    Stale {
        /// The result's name.
        name: String,
        /// The version the write was built on.
        expected: u32,
        /// The latest version.
        latest: u32,
    },
    /// The request id was used before for another body: `ALREADY_EXISTS`.
    #[error("request_id {0:?} was already used for a different request")]
    RequestIdReused(String),
    /// Concurrent writes of the same product kept changing its case candidates: `ABORTED`.
    #[error("{0}: other results of the same product were written meanwhile; retry")]
    CasesContended(String),
    /// An unlink asked by an agency that is not in the case: `PERMISSION_DENIED`.
    #[error("{agency} is not an agency of {case}; only its agencies may unlink its results")]
    NotInCase {
        /// The case.
        case: String,
        /// The calling agency.
        agency: String,
    },
    /// The result to unlink is not in the case: `FAILED_PRECONDITION`.
    #[error("{result} is not in {case}")]
    ResultNotInCase {
        /// The case.
        case: String,
        /// The result.
        result: String,
    },
    /// The store failed: `UNAVAILABLE`.
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    /// A stored answer or body no longer decodes: `INTERNAL`.
    #[error("stored {what} does not decode")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        source: prost::DecodeError,
    },
}

impl CallError {
    /// The error of a refused write of result `name`.
    pub(crate) fn of_write(name: &str, e: ResultWriteError) -> CallError {
        match e {
            ResultWriteError::RequestIdReused { request_id } => {
                CallError::RequestIdReused(request_id)
            }
            ResultWriteError::NotFound(_) => CallError::NotFound(name.to_owned()),
            ResultWriteError::NotPublisher { publisher, .. } => CallError::NotPublisher {
                name: name.to_owned(),
                publisher: format!("agencies/{publisher}"),
            },
            ResultWriteError::Withdrawn(_) => CallError::Withdrawn(name.to_owned()),
            ResultWriteError::Stale {
                expected, latest, ..
            } => CallError::Stale {
                name: name.to_owned(),
                expected,
                latest,
            },
            ResultWriteError::CasesMoved(_) => CallError::CasesContended(name.to_owned()),
            ResultWriteError::Store(e) => CallError::Store(e),
        }
    }
}

yrd_call::call_error! {
    CallError,
    fields: Invalid,
    internal: "reading a stored result failed inside the exchange",
    kind: {
        CallError::Invalid(_) => Kind::InvalidArgument,
        CallError::NotFound(_) => Kind::NotFound,
        CallError::NotPublisher { .. } => Kind::PermissionDenied,
        CallError::Withdrawn(_) => Kind::FailedPrecondition,
        CallError::NotInCase { .. } => Kind::PermissionDenied,
        CallError::ResultNotInCase { .. } => Kind::FailedPrecondition,
        CallError::Stale { .. } => Kind::Aborted,
        CallError::CasesContended(_) => Kind::Aborted,
        CallError::RequestIdReused(_) => Kind::AlreadyExists,
        CallError::Store(_) => Kind::Unavailable,
        CallError::Corrupt { .. } => Kind::Internal,
    }
}
