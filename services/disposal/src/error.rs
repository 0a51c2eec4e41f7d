//! Why a `DisposalService` call failed, and the one place that turns it into a gRPC status.

use yrd_call::{FieldErrors, Kind};
use yrd_domain::referral::{Refusal, RefusalKind};
use yrd_store::{ReferralWriteError, StoreError};

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
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
    #[error("stored {what} does not decode")]
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

yrd_call::call_error! {
    CallError,
    fields: Invalid,
    internal: "reading a stored referral failed inside the exchange",
    kind: {
        CallError::Invalid(_) => Kind::InvalidArgument,
        CallError::NotFound(_) => Kind::NotFound,
        CallError::Refused(refusal) => match refusal.kind() {
            RefusalKind::PermissionDenied => Kind::PermissionDenied,
            RefusalKind::FailedPrecondition => Kind::FailedPrecondition,
        },
        CallError::NotPublisher { .. } => Kind::PermissionDenied,
        CallError::NotReferable(_) => Kind::FailedPrecondition,
        CallError::AlreadyOpen { .. } | CallError::RequestIdReused(_) => Kind::AlreadyExists,
        CallError::Contended(_) => Kind::Aborted,
        CallError::Store(_) => Kind::Unavailable,
        CallError::Corrupt { .. } => Kind::Internal,
    }
}
