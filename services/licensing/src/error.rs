//! Why a `LicensingService` call failed, and the one place that turns it into a gRPC status.
//!
//! A refusal of the state machine keeps its class: a step the caller's role may not take is
//! `PERMISSION_DENIED`, a step the state does not allow is `FAILED_PRECONDITION` with the
//! current state in the message. The exchange's own failures are logged with their cause and
//! answered generically.

use yrd_call::{FieldErrors, Kind};
use yrd_domain::licensing::{Refusal, RefusalKind};
use yrd_store::{LicensingWriteError, ResultWriteError, StoreError};

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Bad fields: `INVALID_ARGUMENT` with a `google.rpc.BadRequest`.
    #[error("{} bad field(s)", .0.len())]
    Invalid(FieldErrors),
    /// No such application or licence: `NOT_FOUND`.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The caller is not one of the two provinces of the application, or not in the pilot.
    #[error("{0}")]
    Denied(String),
    /// The state machine refused the step.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A condition outside the state machine does not hold: `FAILED_PRECONDITION`.
    #[error("{0}")]
    Precondition(String),
    /// The application moved on meanwhile: `ABORTED`.
    #[error("{0} changed while this call was applied to it: read it again and retry")]
    Conflict(String),
    /// The request id was used before for another body: `ALREADY_EXISTS`.
    #[error("request_id {0:?} was already used for a different request")]
    RequestIdReused(String),
    /// The store failed: `UNAVAILABLE`.
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    /// Stored data no longer decodes: `INTERNAL`.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
}

impl CallError {
    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> CallError {
        CallError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

impl From<LicensingWriteError> for CallError {
    fn from(e: LicensingWriteError) -> Self {
        match e {
            LicensingWriteError::RequestIdReused { request_id } => {
                CallError::RequestIdReused(request_id)
            }
            LicensingWriteError::Conflict { id } => {
                CallError::Conflict(format!("applications/{id}"))
            }
            LicensingWriteError::NumberTaken { number } => {
                CallError::Conflict(format!("licences/{number}"))
            }
            LicensingWriteError::Store(e) => CallError::Store(e),
        }
    }
}

impl From<ResultWriteError> for CallError {
    fn from(e: ResultWriteError) -> Self {
        match e {
            ResultWriteError::RequestIdReused { request_id } => {
                CallError::RequestIdReused(request_id)
            }
            ResultWriteError::Store(e) => CallError::Store(e),
            other => CallError::corrupt("idempotency record", other),
        }
    }
}

yrd_call::call_error! {
    CallError,
    fields: Invalid,
    internal: "reading stored licensing data failed inside the exchange",
    kind: {
        CallError::Invalid(_) => Kind::InvalidArgument,
        CallError::NotFound(_) => Kind::NotFound,
        CallError::Denied(_) => Kind::PermissionDenied,
        CallError::Refused(r) => match r.kind() {
            RefusalKind::PermissionDenied => Kind::PermissionDenied,
            _ => Kind::FailedPrecondition,
        },
        CallError::Precondition(_) => Kind::FailedPrecondition,
        CallError::Conflict(_) => Kind::Aborted,
        CallError::RequestIdReused(_) => Kind::AlreadyExists,
        CallError::Store(_) => Kind::Unavailable,
        CallError::Corrupt { .. } => Kind::Internal,
    }
}
