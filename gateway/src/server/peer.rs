//! The client certificate of a connection, read once at the handshake.
//!
//! It lives apart from the acceptor (`tls`), which makes it, and from the identity layer,
//! which reads it on every call, so that both depend on it and neither on the other.

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use yrd_domain::AgencyIdentity;

/// The client certificate of a connection, as read at the handshake.
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    /// Who the certificate names, or why it names nobody the exchange knows how to serve.
    pub identity: Result<AgencyIdentity, String>,
    /// Serial number, lowercase hex (empty when the certificate could not be read).
    pub serial: String,
    /// End of validity.
    pub not_after: Option<OffsetDateTime>,
    /// Start of validity.
    pub not_before: Option<OffsetDateTime>,
}

impl PeerCertificate {
    /// Reads the leaf of the chain the client presented. The handshake already verified the
    /// chain against the exchange CA; this only extracts what the certificate says.
    pub fn from_session(chain: Option<&[CertificateDer<'_>]>) -> PeerCertificate {
        let Some(leaf) = chain.and_then(|c| c.first()) else {
            return PeerCertificate::refused("the connection presented no client certificate");
        };
        match yrd_pki::CertInfo::from_der(leaf.as_ref()) {
            Ok(info) => {
                let identity = match info.spiffe {
                    Some(spiffe) => Ok(AgencyIdentity {
                        agency: spiffe.agency,
                        profile: spiffe.profile,
                        cert_fingerprint: info.fingerprint_sha256_hex,
                    }),
                    None => Err(
                        "the client certificate carries no spiffe://yrd-exchange/agency/… identity"
                            .to_owned(),
                    ),
                };
                PeerCertificate {
                    identity,
                    serial: info.serial_hex,
                    not_after: Some(info.not_after),
                    not_before: Some(info.not_before),
                }
            }
            Err(e) => {
                PeerCertificate::refused(&format!("the client certificate is unreadable: {e}"))
            }
        }
    }

    fn refused(why: &str) -> PeerCertificate {
        PeerCertificate {
            identity: Err(why.to_owned()),
            serial: String::new(),
            not_after: None,
            not_before: None,
        }
    }

    /// The identity, if the certificate names one and is valid at `now`.
    pub fn identity_at(&self, now: OffsetDateTime) -> Result<&AgencyIdentity, String> {
        let identity = self.identity.as_ref().map_err(Clone::clone)?;
        if self.not_after.is_some_and(|t| now > t) {
            return Err("the client certificate has expired".to_owned());
        }
        if self.not_before.is_some_and(|t| now < t) {
            return Err("the client certificate is not yet valid".to_owned());
        }
        Ok(identity)
    }
}
