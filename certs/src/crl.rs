//! Revocation (吊销): the certificate revocation list the TLS acceptor checks at every
//! handshake.
//!
//! The exchange revokes by publishing a complete CRL (RFC 5280 §5) signed by the CA and
//! rebuilding the acceptor's `WebPkiClientVerifier` with it; no OCSP responder and no CRL
//! distribution point are needed, because the only relying party is the exchange itself.
//! The store keeps the revoked serials; this module only turns them into a signed list — a
//! version 2 CRL with the CA's authority key identifier, a CRL number and a reason code per
//! entry (absent for `unspecified`, as RFC 5280 §5.3.1 recommends).

use std::fmt;
use std::str::FromStr;

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use rustls_pki_types::CertificateRevocationListDer;
use time::OffsetDateTime;

use crate::ca::CertificateAuthority;
use crate::error::PkiError;
use crate::inspect;

/// Why a certificate was revoked: the CRL reason codes of RFC 5280 §5.3.1 (code 7 is unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// 0: no reason given.
    Unspecified,
    /// 1: the certificate's private key is, or may be, known to someone else.
    KeyCompromise,
    /// 2: the CA's key is compromised.
    CaCompromise,
    /// 3: the holder's name or affiliation changed (e.g. an agency was reorganised).
    AffiliationChanged,
    /// 4: replaced by a newer certificate.
    Superseded,
    /// 5: the system the certificate was for is no longer operated.
    CessationOfOperation,
    /// 6: temporarily suspended.
    CertificateHold,
    /// 8: only for delta CRLs; the exchange's full CRLs refuse it.
    RemoveFromCrl,
    /// 9: the privileges the certificate granted were withdrawn.
    PrivilegeWithdrawn,
    /// 10: an attribute authority was compromised.
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [RevocationReason; 10] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// The snake_case name, e.g. `key_compromise` (what [`FromStr`] reads back).
    pub fn as_str(&self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key_compromise",
            RevocationReason::CaCompromise => "ca_compromise",
            RevocationReason::AffiliationChanged => "affiliation_changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation_of_operation",
            RevocationReason::CertificateHold => "certificate_hold",
            RevocationReason::RemoveFromCrl => "remove_from_crl",
            RevocationReason::PrivilegeWithdrawn => "privilege_withdrawn",
            RevocationReason::AaCompromise => "aa_compromise",
        }
    }

    /// The RFC 5280 `CRLReason` code.
    pub fn code(&self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::RemoveFromCrl => 8,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }

    /// The reason with this RFC 5280 code, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        RevocationReason::ALL.into_iter().find(|r| r.code() == code)
    }

    fn to_rcgen(self) -> rcgen::RevocationReason {
        match self {
            RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
            RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            RevocationReason::CaCompromise => rcgen::RevocationReason::CaCompromise,
            RevocationReason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
            RevocationReason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
            RevocationReason::CertificateHold => rcgen::RevocationReason::CertificateHold,
            RevocationReason::RemoveFromCrl => rcgen::RevocationReason::RemoveFromCrl,
            RevocationReason::PrivilegeWithdrawn => rcgen::RevocationReason::PrivilegeWithdrawn,
            RevocationReason::AaCompromise => rcgen::RevocationReason::AaCompromise,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationReason {
    type Err = PkiError;

    /// Reads the snake_case name, and also kebab-case and RFC 5280's camelCase
    /// (`keyCompromise`), ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let folded: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        RevocationReason::ALL
            .into_iter()
            .find(|r| r.as_str().replace('_', "") == folded)
            .ok_or_else(|| PkiError::UnknownRevocationReason(s.to_owned()))
    }
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCert {
    /// The revoked certificate's serial, hex as [`crate::CertInfo::serial_hex`] reports it.
    pub serial_hex: String,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// A signed certificate revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    /// DER, as `WebPkiClientVerifier::with_crls` takes it.
    pub der: CertificateRevocationListDer<'static>,
    /// PEM (`-----BEGIN X509 CRL-----`), for files and admins.
    pub pem: String,
}

impl CertificateAuthority {
    /// Signs a complete CRL listing `revoked`, valid from `this_update` until `next_update`,
    /// numbered `crl_number` (strictly increasing from one CRL to the next).
    pub fn crl(
        &self,
        revoked: &[RevokedCert],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        crl_number: u64,
    ) -> Result<Crl, PkiError> {
        if next_update <= this_update {
            return Err(PkiError::CrlWindow {
                this_update,
                next_update,
            });
        }
        let revoked_certs = revoked
            .iter()
            .map(|entry| {
                if entry.reason == RevocationReason::RemoveFromCrl {
                    return Err(PkiError::RemoveFromCrlInFullCrl(entry.serial_hex.clone()));
                }
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&inspect::serial_bytes(
                        &entry.serial_hex,
                    )?),
                    revocation_time: entry.revoked_at,
                    reason_code: match entry.reason {
                        RevocationReason::Unspecified => None,
                        other => Some(other.to_rcgen()),
                    },
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from_slice(&crl_number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            // The authority key identifier must equal the CA certificate's subject key
            // identifier, which a CA loaded from elsewhere may have derived differently.
            key_identifier_method: match self.key_id() {
                Some(id) => KeyIdMethod::PreSpecified(id.to_vec()),
                None => KeyIdMethod::Sha256,
            },
        };
        let crl = params.signed_by(self.issuer())?;
        Ok(Crl {
            pem: crl.pem()?,
            der: crl.der().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{PrivateKeyDer, ServerName};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{
        CertificateError, ClientConfig, ClientConnection, RootCertStore, ServerConfig,
        ServerConnection,
    };
    use time::Duration;
    use x509_parser::prelude::{CertificateRevocationList, FromDer as _, ParsedExtension};

    use super::*;
    use crate::ca::tests::{one_day, shanghai, test_ca};
    use crate::ca::{IssuedKeyPair, Validity};
    use crate::csr::{CsrPolicy, make_csr};
    use crate::inspect::parse_certificate;
    use yrd_domain::Profile;
    use yrd_domain::clock::{Clock as _, SystemClock};

    fn revoked(serial_hex: &str, reason: RevocationReason) -> RevokedCert {
        RevokedCert {
            serial_hex: serial_hex.to_owned(),
            revoked_at: SystemClock.now() - Duration::minutes(1),
            reason,
        }
    }

    fn window() -> (OffsetDateTime, OffsetDateTime) {
        let now = SystemClock.now();
        (now - Duration::minutes(5), now + Duration::days(7))
    }

    #[test]
    fn reasons_parse_in_every_spelling() {
        for reason in RevocationReason::ALL {
            assert_eq!(reason.as_str().parse::<RevocationReason>().unwrap(), reason);
            assert_eq!(RevocationReason::from_code(reason.code()), Some(reason));
            assert_eq!(reason.to_rcgen() as u8, reason.code());
        }
        for spelling in ["keyCompromise", "key-compromise", "KEY_COMPROMISE"] {
            assert_eq!(
                spelling.parse::<RevocationReason>().unwrap(),
                RevocationReason::KeyCompromise
            );
        }
        assert_eq!(RevocationReason::from_code(7), None);
        assert!(matches!(
            "stolen".parse::<RevocationReason>(),
            Err(PkiError::UnknownRevocationReason(s)) if s == "stolen"
        ));
    }

    #[test]
    fn crl_lists_the_serials_signed_by_the_ca() {
        let ca = test_ca();
        let a = ca
            .issue_agency(&shanghai(), Profile::System, one_day())
            .unwrap();
        let b = ca
            .issue_agency(&shanghai(), Profile::Admin, one_day())
            .unwrap();
        let (this_update, next_update) = window();
        let crl = ca
            .crl(
                &[
                    revoked(&a.serial_hex, RevocationReason::KeyCompromise),
                    revoked(&b.serial_hex.to_uppercase(), RevocationReason::Unspecified),
                ],
                this_update,
                next_update,
                42,
            )
            .unwrap();
        assert!(crl.pem.starts_with("-----BEGIN X509 CRL-----"));
        let (rest, parsed) = CertificateRevocationList::from_der(&crl.der).unwrap();
        assert!(rest.is_empty());
        let ca_cert = parse_certificate(ca.cert_der()).unwrap();
        parsed.verify_signature(ca_cert.public_key()).unwrap();
        assert_eq!(parsed.issuer(), ca_cert.subject());
        assert_eq!(
            parsed.crl_number().map(|n| n.to_string()),
            Some("42".to_owned())
        );
        let entries: Vec<_> = parsed.iter_revoked_certificates().collect();
        assert_eq!(entries.len(), 2);
        let a_cert = parse_certificate(&a.cert_der).unwrap();
        assert_eq!(entries[0].raw_serial(), a_cert.raw_serial());
        assert_eq!(entries[0].reason_code().map(|(_, r)| r.0), Some(1));
        assert_eq!(entries[1].reason_code(), None, "unspecified is left out");
        let aki = parsed
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.clone(),
                _ => None,
            })
            .unwrap();
        assert_eq!(Some(aki.0), ca.key_id());
    }

    #[test]
    fn crl_refuses_bad_input() {
        let ca = test_ca();
        let (this_update, next_update) = window();
        assert!(matches!(
            ca.crl(&[], next_update, this_update, 1),
            Err(PkiError::CrlWindow { .. })
        ));
        assert!(matches!(
            ca.crl(&[revoked("zz", RevocationReason::Superseded)], this_update, next_update, 1),
            Err(PkiError::InvalidSerial(s)) if s == "zz"
        ));
        assert!(matches!(
            ca.crl(&[revoked("0a", RevocationReason::RemoveFromCrl)], this_update, next_update, 1),
            Err(PkiError::RemoveFromCrlInFullCrl(s)) if s == "0a"
        ));
        assert!(
            ca.crl(&[], this_update, next_update, 1).is_ok(),
            "an empty CRL is fine"
        );
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// The acceptor of `yrd serve` in miniature: TLS 1.3 only, client certificates required,
    /// verified against the CA with the CRL.
    fn server_config(ca: &CertificateAuthority, crl: &Crl) -> Arc<ServerConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .with_crls([crl.der.clone()])
            .build()
            .unwrap();
        let server = ca.issue_server(&[], one_day()).unwrap();
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![server.cert_der.clone()],
                PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        Arc::new(config)
    }

    fn client_config(
        ca: &CertificateAuthority,
        cert_pem: &str,
        key_pem: &str,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let chain =
            vec![rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                chain,
                PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        Arc::new(config)
    }

    /// Runs a TLS 1.3 handshake in memory and sends one message from client to server.
    /// Returns the server's verdict: its error if it refused the client.
    fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    ) -> Result<(), rustls::Error> {
        let mut client =
            ClientConnection::new(client, ServerName::try_from("localhost").unwrap()).unwrap();
        let mut server = ServerConnection::new(server).unwrap();
        client.writer().write_all(b"ping").unwrap();
        for _ in 0..20 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            let mut slice = wire.as_slice();
            while !slice.is_empty() {
                server.read_tls(&mut slice).unwrap();
                server.process_new_packets()?;
            }
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).unwrap();
            }
            let mut slice = wire.as_slice();
            while !slice.is_empty() {
                client.read_tls(&mut slice).unwrap();
                client.process_new_packets()?;
            }
            let mut got = [0u8; 4];
            if !server.is_handshaking() && server.reader().read_exact(&mut got).is_ok() {
                assert_eq!(&got, b"ping");
                return Ok(());
            }
        }
        Err(rustls::Error::General("handshake did not finish".into()))
    }

    #[test]
    fn webpki_verifier_refuses_the_revoked_certificate_and_admits_the_others() {
        let ca = test_ca();
        let agency = shanghai();
        let revoked_pair: IssuedKeyPair = ca
            .issue_agency(&agency, Profile::System, one_day())
            .unwrap();
        let good_pair = ca.issue_agency(&agency, Profile::Admin, one_day()).unwrap();
        let (partner_key, csr) = make_csr(&agency, Profile::System).unwrap();
        let anyone = |_: &yrd_domain::AgencyId| true;
        let from_csr = ca
            .sign_csr(&csr, CsrPolicy::new(&anyone, one_day()))
            .unwrap();
        let (this_update, next_update) = window();
        let crl = ca
            .crl(
                &[revoked(
                    &revoked_pair.serial_hex,
                    RevocationReason::KeyCompromise,
                )],
                this_update,
                next_update,
                1,
            )
            .unwrap();
        let server = server_config(&ca, &crl);

        let refused = handshake(
            server.clone(),
            client_config(&ca, &revoked_pair.cert_pem, &revoked_pair.key_pem),
        );
        assert!(
            matches!(
                refused,
                Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
            ),
            "{refused:?}"
        );

        handshake(
            server.clone(),
            client_config(&ca, &good_pair.cert_pem, &good_pair.key_pem),
        )
        .unwrap();
        handshake(
            server.clone(),
            client_config(&ca, &from_csr.cert_pem, &partner_key),
        )
        .unwrap();

        // The other key types sign_csr accepts do handshake with ring.
        for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let mut params = rcgen::CertificateParams::default();
            params.subject_alt_names = vec![rcgen::SanType::URI(
                "spiffe://yrd-exchange/agency/310000-SAMR/system"
                    .try_into()
                    .unwrap(),
            )];
            let csr = params.serialize_request(&key).unwrap().pem().unwrap();
            let cert = ca
                .sign_csr(&csr, CsrPolicy::new(&anyone, one_day()))
                .unwrap();
            handshake(
                server.clone(),
                client_config(&ca, &cert.cert_pem, &key.serialize_pem()),
            )
            .unwrap();
        }

        // An expired certificate fails too, CRL or not.
        let now = SystemClock.now();
        let past = Validity::new(now - Duration::days(3), now - Duration::days(1)).unwrap();
        let expired = ca.issue_agency(&agency, Profile::Auditor, past).unwrap();
        let refused = handshake(
            server,
            client_config(&ca, &expired.cert_pem, &expired.key_pem),
        );
        assert!(
            matches!(
                refused,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. }
                ))
            ),
            "{refused:?}"
        );
    }
}
