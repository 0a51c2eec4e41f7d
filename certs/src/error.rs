//! The one error type of the certificate authority.
//!
//! Callers need two things from a PKI error: *whose fault it was* (a partner's bad CSR is
//! `INVALID_ARGUMENT`, a disk that failed under the CA is `INTERNAL`) and *what exactly was
//! wrong*, so that an admin reading the refusal can fix the request without a support call.
//! The variants are therefore grouped — the caller's fault first, then ours — and
//! [`PkiError::is_caller_fault`] tells them apart in one place; every message names the
//! offending value.

use std::path::PathBuf;

use time::{Duration, OffsetDateTime};
use yrd_domain::{AgencyId, IdError, Profile};

/// Why the certificate authority refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    // ----- the caller's fault: a request, certificate or argument the caller supplied -----
    /// The CSR is not a PEM-encoded PKCS#10 certification request.
    #[error("certificate signing request is malformed: {0}")]
    CsrMalformed(String),
    /// The CSR's self-signature does not verify against the public key it carries.
    #[error(
        "certificate signing request signature does not verify against the request's own public key (tampered or corrupted request)"
    )]
    CsrBadSignature,
    /// The CSR requests no URI SAN, so it names no exchange identity.
    #[error(
        "certificate signing request carries no URI subject alternative name; it must carry exactly one, spiffe://yrd-exchange/agency/<agency id>/<profile>"
    )]
    CsrNoUri,
    /// The CSR requests more than one URI SAN; a certificate names exactly one identity.
    #[error(
        "certificate signing request carries {} URI subject alternative names ({}); it must carry exactly one", .0.len(), .0.join(", ")
    )]
    CsrSeveralUris(Vec<String>),
    /// The CSR's URI SAN is not the exchange's SPIFFE form.
    #[error("certificate signing request URI {uri:?} is not an exchange identity: {source}")]
    CsrNotSpiffe {
        /// The URI the CSR asked for.
        uri: String,
        /// What is wrong with it.
        #[source]
        source: IdError,
    },
    /// The CSR asks for a certificate of an agency the exchange does not know.
    #[error("agency {0} named in the certificate signing request is not known to the exchange")]
    UnknownAgency(AgencyId),
    /// The CSR names another agency than the one the admin approved the certificate for.
    #[error(
        "certificate signing request is for agency {requested}, but the certificate was approved for agency {approved}"
    )]
    AgencyMismatch {
        /// The agency in the CSR's URI.
        requested: AgencyId,
        /// The agency the admin approved.
        approved: AgencyId,
    },
    /// The CSR asks for another profile than the one the admin approved.
    #[error(
        "certificate signing request asks for profile {requested}, but the certificate was approved for profile {approved}"
    )]
    ProfileMismatch {
        /// The profile in the CSR's URI.
        requested: Profile,
        /// The profile the admin approved.
        approved: Profile,
    },
    /// The CSR's public key is of a type the exchange does not certify.
    #[error(
        "certificate signing request key is {found}; the exchange certifies {allowed} keys only"
    )]
    UnsupportedKey {
        /// The key type found in the CSR.
        found: String,
        /// The key types the policy accepts.
        allowed: String,
    },
    /// The requested lifetime exceeds the configured maximum.
    #[error("requested validity of {requested} exceeds the maximum of {max}")]
    ValidityTooLong {
        /// `not_after - not_before` of the request.
        requested: Duration,
        /// The configured maximum.
        max: Duration,
    },
    /// A validity window that ends before (or when) it starts.
    #[error("validity must end after it starts: not_before {not_before}, not_after {not_after}")]
    EmptyValidity {
        /// The start asked for.
        not_before: OffsetDateTime,
        /// The end asked for.
        not_after: OffsetDateTime,
    },
    /// A certificate would outlive the CA that signs it.
    #[error(
        "certificate would expire at {not_after}, after the CA certificate itself ({ca_not_after}); ask for a shorter validity"
    )]
    OutlivesCa {
        /// The end asked for.
        not_after: OffsetDateTime,
        /// When the CA certificate expires.
        ca_not_after: OffsetDateTime,
    },
    /// A configured server name is neither an IP address nor a DNS name.
    #[error("server name {0:?} is neither an IP address nor a valid DNS name")]
    InvalidServerName(String),
    /// A serial number that is not a non-empty hexadecimal string.
    #[error("certificate serial {0:?} is not a non-empty hexadecimal number")]
    InvalidSerial(String),
    /// A revocation reason that is not one of RFC 5280's.
    #[error(
        "revocation reason {0:?} is not an RFC 5280 reason (unspecified, key_compromise, ca_compromise, affiliation_changed, superseded, cessation_of_operation, certificate_hold, remove_from_crl, privilege_withdrawn, aa_compromise)"
    )]
    UnknownRevocationReason(String),
    /// `removeFromCRL` belongs in delta CRLs only (RFC 5280 §5.3.1); the exchange issues full CRLs.
    #[error(
        "certificate {0} is listed with reason remove_from_crl, which RFC 5280 allows in delta CRLs only; leave it off the CRL instead"
    )]
    RemoveFromCrlInFullCrl(String),
    /// A CRL whose next update is not after its this update.
    #[error("CRL next update {next_update} must be after this update {this_update}")]
    CrlWindow {
        /// The CRL's issue time.
        this_update: OffsetDateTime,
        /// When the next CRL is due.
        next_update: OffsetDateTime,
    },
    /// Bytes that are not one DER (or PEM) X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    CertMalformed(String),
    /// A certificate with no URI SAN: it names no exchange identity.
    #[error(
        "certificate carries no URI subject alternative name, so it names no exchange identity"
    )]
    NoIdentity,
    /// A certificate with several URI SANs: an exchange identity is exactly one.
    #[error(
        "certificate carries {} URI subject alternative names ({}); an exchange identity is exactly one", .0.len(), .0.join(", ")
    )]
    SeveralIdentities(Vec<String>),
    /// A certificate whose URI SAN is not the exchange's SPIFFE form.
    #[error("certificate URI {uri:?} is not an exchange identity: {source}")]
    NotSpiffe {
        /// The URI found.
        uri: String,
        /// What is wrong with it.
        #[source]
        source: IdError,
    },

    // ----- our fault: the CA's own material, the disk, the crypto library -----
    /// The CA certificate cannot be read.
    #[error("CA certificate is not one PEM X.509 certificate: {0}")]
    CaCertMalformed(String),
    /// The CA private key cannot be read.
    #[error("CA private key is not a PKCS#8 PEM key of a supported type: {0}")]
    CaKeyMalformed(String),
    /// The CA private key belongs to another certificate.
    #[error("CA private key does not match the public key of the CA certificate {subject}")]
    CaKeyMismatch {
        /// The CA certificate's subject.
        subject: String,
    },
    /// The certificate given as the CA is not a CA certificate.
    #[error("certificate {subject} is not a CA certificate (basic constraints cA is not set)")]
    NotACa {
        /// The certificate's subject.
        subject: String,
    },
    /// A file of the dev PKI could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `create folder`, …).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Half a dev CA on disk: the certificate without its key, or the key without its certificate.
    #[error(
        "dev PKI is incomplete: {} exists but {} does not; restore it or delete the dev PKI folder to start over",
        present.display(), missing.display()
    )]
    DevCaIncomplete {
        /// The CA file that is there.
        present: PathBuf,
        /// The CA file that is missing.
        missing: PathBuf,
    },
    /// The dev CA on disk has expired.
    #[error("dev CA {} expired at {not_after}; delete the dev PKI folder to make a new one", path.display())]
    DevCaExpired {
        /// The CA certificate file.
        path: PathBuf,
        /// When it expired.
        not_after: OffsetDateTime,
    },
    /// A signature does not verify (a receipt, a tree head), or its key is unusable.
    #[error("signature check failed: {detail}")]
    BadSignature {
        /// What failed.
        detail: String,
    },
    /// A stored signing key is not a PKCS#8 P-256 private key.
    #[error("signing key is not a PKCS#8 PEM P-256 private key: {detail}")]
    BadKey {
        /// What failed.
        detail: String,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// rcgen failed to build, sign or encode something.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
}

impl PkiError {
    /// True when the caller (a partner's CSR, an admin's arguments, a peer's certificate) is at
    /// fault and can fix the request; false when the exchange itself failed.
    pub fn is_caller_fault(&self) -> bool {
        match self {
            PkiError::CsrMalformed(_)
            | PkiError::CsrBadSignature
            | PkiError::CsrNoUri
            | PkiError::CsrSeveralUris(_)
            | PkiError::CsrNotSpiffe { .. }
            | PkiError::UnknownAgency(_)
            | PkiError::AgencyMismatch { .. }
            | PkiError::ProfileMismatch { .. }
            | PkiError::UnsupportedKey { .. }
            | PkiError::ValidityTooLong { .. }
            | PkiError::EmptyValidity { .. }
            | PkiError::OutlivesCa { .. }
            | PkiError::InvalidServerName(_)
            | PkiError::InvalidSerial(_)
            | PkiError::UnknownRevocationReason(_)
            | PkiError::RemoveFromCrlInFullCrl(_)
            | PkiError::CrlWindow { .. }
            | PkiError::CertMalformed(_)
            | PkiError::NoIdentity
            | PkiError::SeveralIdentities(_)
            | PkiError::NotSpiffe { .. }
            | PkiError::BadSignature { .. } => true,
            PkiError::BadKey { .. }
            | PkiError::CaCertMalformed(_)
            | PkiError::CaKeyMalformed(_)
            | PkiError::CaKeyMismatch { .. }
            | PkiError::NotACa { .. }
            | PkiError::Io { .. }
            | PkiError::DevCaIncomplete { .. }
            | PkiError::DevCaExpired { .. }
            | PkiError::Random
            | PkiError::Rcgen(_) => false,
        }
    }

    /// Wraps an I/O error with what was being done and to which file.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> PkiError {
        let path = path.into();
        move |source| PkiError::Io {
            action,
            path,
            source,
        }
    }
}
