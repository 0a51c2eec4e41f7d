//! Why a `DisposalService` call failed, and the one place that turns it into a gRPC status.

use tonic::Status;
use yrd_call::FieldErrors;
use yrd_domain::referral::{Refusal, RefusalKind};
use yrd_store::{ReferralWriteError, StoreError};

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call carries no agency identity (the gateway always adds one): `UNAUTHENTICATED`.
    #[error("no client certificate identity on this call")]
    NoIdentity,
    /// The request has bad fields: `INVALID_ARGUMENT` with a `google.rpc.BadRequest`.
    #[error("{} bad field(s)", .0.len())]
    Invalid(FieldErrors),
    /// No such referral or result: `NOT_FOUND`.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The domain refused the step: `PERMISSION_DENIED` (not the caller's step) or
    /// `FAILED_PRECONDITION` (not in this state; the message names the state).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// Opening by hand: the result is another agency's: `PERMISSION_DENIED`.
    #[error("{name} was published by {publisher}; only its publisher may refer it")]
    NotPublisher {
        /// The result.
        name: String,
        /// Its publisher.
        publisher: String,
    },
    /// Opening by hand: the result cannot be referred (withdrawn, conforming):
    /// `FAILED_PRECONDITION`.
    #[error("{0}")]
    NotReferable(String),
    /// One open referral per result and handling agency: `ALREADY_EXISTS`.
    #[error("{result} already has an open referral to agencies/{agency}")]
    AlreadyOpen {
        /// The result.
        result: String,
        /// The handling agency.
        agency: String,
    },
    /// The request id was used before for another body: `ALREADY_EXISTS`.
    #[error("request_id {0:?} was already used for a different request")]
    RequestIdReused(String),
    /// The referral kept changing under the call: `ABORTED`.
    #[error("{0} changed while the step was being written; read it again and retry")]
    Contended(String),
    /// The store failed: `UNAVAILABLE`.
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    /// A stored answer or referral no longer decodes: `INTERNAL`.
    #[error("stored {what} does not decode: {source}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        source: prost::DecodeError,
    },
}

impl CallError {
    /// The error of a refused referral write of `name`.
    pub(crate) fn of_write(name: &str, e: ReferralWriteError) -> CallError {
        match e {
            ReferralWriteError::RequestIdReused { request_id } => {
                CallError::RequestIdReused(request_id)
            }
            ReferralWriteError::NotFound(_) => CallError::NotFound(name.to_owned()),
            ReferralWriteError::Conflict(_) => CallError::Contended(name.to_owned()),
            ReferralWriteError::AlreadyOpen {
                result_id,
                handling_agency,
            } => CallError::AlreadyOpen {
                result: format!("results/{result_id}"),
                agency: handling_agency.to_string(),
            },
            ReferralWriteError::Store(e) => CallError::Store(e),
        }
    }
}

impl From<CallError> for Status {
    fn from(e: CallError) -> Status {
        match &e {
            CallError::NoIdentity => Status::unauthenticated(e.to_string()),
            CallError::Invalid(errors) => Status::from(errors),
            CallError::NotFound(_) => Status::not_found(e.to_string()),
            CallError::Refused(refusal) => match refusal.kind() {
                RefusalKind::PermissionDenied => Status::permission_denied(e.to_string()),
                RefusalKind::FailedPrecondition => Status::failed_precondition(e.to_string()),
            },
            CallError::NotPublisher { .. } => Status::permission_denied(e.to_string()),
            CallError::NotReferable(_) => Status::failed_precondition(e.to_string()),
            CallError::AlreadyOpen { .. } | CallError::RequestIdReused(_) => {
                Status::already_exists(e.to_string())
            }
            CallError::Contended(_) => Status::aborted(e.to_string()),
            CallError::Store(cause) => {
                tracing::error!(error = %cause, "store failure");
                Status::unavailable("the exchange's store is unavailable; retry later")
            }
            CallError::Corrupt { .. } => {
                tracing::error!(error = %e, "stored disposal data is corrupt");
                Status::internal("reading a stored referral failed inside the exchange")
            }
        }
    }
}
