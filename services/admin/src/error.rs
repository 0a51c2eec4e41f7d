//! Why an `AdminService` or `TokenService` call failed. Each failure says what kind it is
//! ([`CallError::kind`]) and the shared call path makes the gRPC status of it: the caller's
//! faults name what is wrong; the exchange's own failures are logged with their cause and
//! answered with a generic message (docs/architecture.md, "The path of a call").

use yrd_call::{CallError, FieldErrors, Kind, STORE_UNAVAILABLE};
use yrd_domain::AgencyId;
use yrd_store::StoreError;

use crate::enforcement::ApplyError;

/// A cause of a failure of ours, kept for the log.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A failed `AdminService` or `TokenService` call.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request has bad fields: `INVALID_ARGUMENT` with a `google.rpc.BadRequest`.
    #[error("{} bad field(s)", .0.len())]
    Invalid(FieldErrors),
    /// No such agency: `NOT_FOUND`.
    #[error("agencies/{0} not found")]
    AgencyNotFound(AgencyId),
    /// No such certificate: `NOT_FOUND`.
    #[error("certificates/{0} not found")]
    CertificateNotFound(String),
    /// The agency is registered already: `ALREADY_EXISTS`.
    #[error("agency {0} is already registered")]
    AgencyExists(AgencyId),
    /// The request id was used before for another request: `ALREADY_EXISTS`.
    #[error(transparent)]
    Reused(StoreError),
    /// The certificate was revoked before: `FAILED_PRECONDITION`.
    #[error("certificates/{serial} is already revoked (at {at})")]
    AlreadyRevoked {
        /// Its serial.
        serial: String,
        /// When it was revoked.
        at: time::OffsetDateTime,
    },
    /// No certificate is issued to a suspended agency: `FAILED_PRECONDITION`.
    #[error("agency {0} is suspended: no certificate is issued to it")]
    IssueToSuspended(AgencyId),
    /// This exchange has no CA key: `FAILED_PRECONDITION`.
    #[error(
        "this exchange has no CA key configured (tls.ca_key): it cannot issue certificates or sign CRLs"
    )]
    NoCa,
    /// A suspended agency asks for a token: `PERMISSION_DENIED`.
    #[error("agency {0} is suspended")]
    Suspended(AgencyId),
    /// An unregistered agency asks for a token: `PERMISSION_DENIED`.
    #[error("agency {0} is not registered with the exchange")]
    NotRegistered(AgencyId),
    /// The certificate's profile is granted no role: `PERMISSION_DENIED`.
    #[error(
        "{certificate} of {agency} is granted no role at the exchange, so IssueToken has no token to issue"
    )]
    NoRoles {
        /// The kind of certificate presented.
        certificate: &'static str,
        /// Its agency.
        agency: AgencyId,
    },
    /// A revocation or suspension is committed but not yet in force on this replica:
    /// `UNAVAILABLE`, and the caller sends the same request again to confirm it.
    #[error("the {what} is committed, but not yet in force on this replica")]
    NotInForce {
        /// What was changed ("revocation", "suspension or resumption").
        what: &'static str,
        /// Why it could not be applied.
        source: ApplyError,
    },
    /// The store failed: `UNAVAILABLE` (a reused request id: `ALREADY_EXISTS`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something inside the exchange broke: `INTERNAL`.
    #[error("{what}")]
    Internal {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: Cause,
    },
}

impl AdminError {
    /// One bad field.
    pub(crate) fn field(field: &str, description: impl Into<String>) -> AdminError {
        AdminError::Invalid(FieldErrors::of(field, description))
    }

    /// A failure of ours while doing `what`.
    pub(crate) fn internal(what: &'static str, source: impl Into<Cause>) -> AdminError {
        AdminError::Internal {
            what,
            source: source.into(),
        }
    }
}

impl From<FieldErrors> for AdminError {
    fn from(fields: FieldErrors) -> Self {
        AdminError::Invalid(fields)
    }
}

impl CallError for AdminError {
    fn kind(&self) -> Kind {
        match self {
            AdminError::Invalid(_) => Kind::InvalidArgument,
            AdminError::AgencyNotFound(_) | AdminError::CertificateNotFound(_) => Kind::NotFound,
            AdminError::AgencyExists(_) | AdminError::Reused(_) => Kind::AlreadyExists,
            AdminError::AlreadyRevoked { .. }
            | AdminError::IssueToSuspended(_)
            | AdminError::NoCa => Kind::FailedPrecondition,
            AdminError::Suspended(_)
            | AdminError::NotRegistered(_)
            | AdminError::NoRoles { .. } => Kind::PermissionDenied,
            AdminError::NotInForce { .. } => Kind::Unavailable,
            AdminError::Store(StoreError::RequestIdReused { .. }) => Kind::AlreadyExists,
            AdminError::Store(_) => Kind::Unavailable,
            AdminError::Internal { .. } => Kind::Internal,
        }
    }

    fn bad_fields(&self) -> Option<&FieldErrors> {
        match self {
            AdminError::Invalid(fields) => Some(fields),
            _ => None,
        }
    }

    fn public_message(&self) -> String {
        match self {
            AdminError::NotInForce { what, .. } => format!(
                "the {what} is recorded but could not be put in force on this replica yet: \
                 send the same request (same request_id) again to confirm it"
            ),
            AdminError::Internal { what, .. } => format!("{what} failed inside the exchange"),
            _ => STORE_UNAVAILABLE.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use yrd_call::into_status;

    use super::*;

    #[test]
    fn a_callers_fault_keeps_its_words() {
        let id = AgencyId::parse("310000-SAMR").expect("agency id");
        let status = into_status(&AdminError::AgencyNotFound(id.clone()));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "agencies/310000-SAMR not found");
        let status = into_status(&AdminError::NoCa);
        assert_eq!(status.code(), Code::FailedPrecondition);
        let status = into_status(&AdminError::field("name", "is required"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "name: is required");
    }

    #[test]
    fn our_failures_keep_their_cause_out_of_the_answer() {
        let e = AdminError::internal("signing the CRL", "key=secret".to_owned());
        let status = into_status(&e);
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(
            status.message(),
            "signing the CRL failed inside the exchange"
        );
        let e = AdminError::NotInForce {
            what: "revocation",
            source: ApplyError("db at 10.0.0.7 down".to_owned()),
        };
        let status = into_status(&e);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status
                .message()
                .starts_with("the revocation is recorded but")
        );
        assert!(!status.message().contains("10.0.0.7"));
    }
}
