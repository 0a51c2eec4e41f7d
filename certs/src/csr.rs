//! Certificate signing requests (证书签名请求, PKCS#10): the partner makes a key and a request
//! on its own side ([`make_csr`], behind `yrd cert request`), and the exchange signs the
//! request ([`CertificateAuthority::sign_csr`]) — so a partner's private key never reaches
//! the exchange.
//!
//! A CSR is untrusted input. From it the exchange takes exactly two things, each checked:
//! the public key (a supported type, proven by the request's self-signature) and the identity
//! (exactly one URI SAN in our SPIFFE form, for a known agency, and the profile the admin
//! approved). Everything else in the request — subject, other SANs, requested key usages or
//! extensions — is ignored: the certificate is built by [`CertificateAuthority`] from scratch,
//! with our serial and the validity the admin chose (never longer than the configured maximum,
//! 90 days by default).
//!
//! Key types: ECDSA P-256 (what `make_csr` makes), ECDSA P-384 and Ed25519 are accepted by
//! default — rcgen writes their public keys cleanly and rustls (ring) verifies all three in a
//! TLS 1.3 client handshake. RSA and anything else is refused. A policy can narrow the set.

use std::fmt;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PublicKeyData, SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use yrd_domain::{AgencyId, Profile, SpiffeId};

use crate::ca::{self, CertificateAuthority, LeafKind, Validity};
use crate::error::PkiError;

/// The longest validity [`CertificateAuthority::sign_csr`] grants unless configured otherwise.
pub const DEFAULT_MAX_CSR_VALIDITY: Duration = Duration::days(90);

/// A public-key type the exchange certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 (secp256r1); what [`make_csr`] generates.
    EcdsaP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// Every supported key type; the default of [`CsrPolicy::allowed_keys`].
    pub const ALL: [KeyAlgorithm; 3] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ];

    /// A short human name, e.g. `ECDSA P-256`.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
            KeyAlgorithm::EcdsaP384 => "ECDSA P-384",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }

    fn of(alg: &rcgen::SignatureAlgorithm) -> Option<KeyAlgorithm> {
        if *alg == PKCS_ECDSA_P256_SHA256 {
            Some(KeyAlgorithm::EcdsaP256)
        } else if *alg == PKCS_ECDSA_P384_SHA384 {
            Some(KeyAlgorithm::EcdsaP384)
        } else if *alg == PKCS_ED25519 {
            Some(KeyAlgorithm::Ed25519)
        } else {
            None
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the exchange is prepared to sign for one CSR: set by the admin's issue request and the
/// exchange's configuration, checked against what the CSR asks for.
#[derive(Clone, Copy)]
pub struct CsrPolicy<'a> {
    /// Whether an agency is registered with the exchange; a CSR for any other is refused.
    pub is_known_agency: &'a dyn Fn(&AgencyId) -> bool,
    /// The agency the admin approved the certificate for, if the request names one; a CSR for
    /// another agency is refused.
    pub approved_agency: Option<&'a AgencyId>,
    /// The profile the admin approved, if the request names one; a CSR asking for another is
    /// refused.
    pub approved_profile: Option<Profile>,
    /// The validity the certificate will have.
    pub validity: Validity,
    /// The longest validity that may be granted ([`DEFAULT_MAX_CSR_VALIDITY`] by default).
    pub max_validity: Duration,
    /// The key types accepted ([`KeyAlgorithm::ALL`] by default).
    pub allowed_keys: &'a [KeyAlgorithm],
}

impl<'a> CsrPolicy<'a> {
    /// A policy with the default maximum validity and key types, no approved agency or profile.
    pub fn new(is_known_agency: &'a dyn Fn(&AgencyId) -> bool, validity: Validity) -> Self {
        CsrPolicy {
            is_known_agency,
            approved_agency: None,
            approved_profile: None,
            validity,
            max_validity: DEFAULT_MAX_CSR_VALIDITY,
            allowed_keys: &KeyAlgorithm::ALL,
        }
    }

    /// Requires the CSR to be for this agency.
    pub fn approved_agency(mut self, agency: &'a AgencyId) -> Self {
        self.approved_agency = Some(agency);
        self
    }

    /// Requires the CSR to ask for this profile.
    pub fn approved_profile(mut self, profile: Profile) -> Self {
        self.approved_profile = Some(profile);
        self
    }

    /// Sets the longest validity that may be granted.
    pub fn max_validity(mut self, max: Duration) -> Self {
        self.max_validity = max;
        self
    }

    /// Narrows the accepted key types.
    pub fn allowed_keys(mut self, keys: &'a [KeyAlgorithm]) -> Self {
        self.allowed_keys = keys;
        self
    }
}

impl fmt::Debug for CsrPolicy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrPolicy")
            .field("approved_agency", &self.approved_agency)
            .field("approved_profile", &self.approved_profile)
            .field("validity", &self.validity)
            .field("max_validity", &self.max_validity)
            .field("allowed_keys", &self.allowed_keys)
            .finish_non_exhaustive()
    }
}

/// A certificate signed from a CSR. There is no private key: it stayed with the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The identity the certificate names (the one checked in the CSR).
    pub identity: SpiffeId,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The serial number, lowercase hex without leading zero bytes.
    pub serial_hex: String,
    /// First instant of validity.
    pub not_before: OffsetDateTime,
    /// Last instant of validity.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER certificate, lowercase hex (RFC 8705 `x5t#S256` in hex).
    pub fingerprint_sha256_hex: String,
    /// The certified key's type.
    pub key_algorithm: KeyAlgorithm,
}

/// Makes a fresh ECDSA P-256 key and a PKCS#10 request for `agency`'s `profile` certificate,
/// on the partner's side: subject `CN=<agency>/<profile>` and the URI SAN
/// `spiffe://yrd-exchange/agency/<agency>/<profile>`. Returns `(key_pem, csr_pem)`; the key is
/// PKCS#8 PEM and must stay with the partner.
pub fn make_csr(agency: &AgencyId, profile: Profile) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let identity = SpiffeId::new(agency.clone(), profile);
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{agency}/{profile}"));
    dn.push(DnType::OrganizationName, ca::ORGANIZATION);
    params.distinguished_name = dn;
    params.subject_alt_names = vec![ca::spiffe_san(&identity)?];
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

impl CertificateAuthority {
    /// Signs a partner's PEM CSR under `policy`, or refuses it naming why: the request is
    /// malformed or its self-signature is bad; its key type is not allowed; it has no or
    /// several URI SANs; the URI is not our SPIFFE form; the agency is unknown or not the one
    /// approved; the profile is not the one approved; the validity exceeds the maximum.
    ///
    /// The certificate certifies the CSR's public key and the checked identity only (EKU
    /// clientAuth); nothing else from the request is copied.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        policy: CsrPolicy<'_>,
    ) -> Result<IssuedCertificate, PkiError> {
        let der =
            CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes()).map_err(|e| {
                PkiError::CsrMalformed(format!("no PEM CERTIFICATE REQUEST block: {e}"))
            })?;
        let (rest, csr) = X509CertificationRequest::from_der(der.as_ref())
            .map_err(|e| PkiError::CsrMalformed(format!("not a PKCS#10 request: {e}")))?;
        if !rest.is_empty() {
            return Err(PkiError::CsrMalformed(format!(
                "{} bytes after the request",
                rest.len()
            )));
        }

        let (public_key, key_algorithm) = requested_key(&csr, policy.allowed_keys)?;
        csr.verify_signature()
            .map_err(|_| PkiError::CsrBadSignature)?;
        let identity = requested_identity(&csr)?;

        if let Some(approved) = policy.approved_agency {
            if *approved != identity.agency {
                return Err(PkiError::AgencyMismatch {
                    requested: identity.agency,
                    approved: approved.clone(),
                });
            }
        }
        if !(policy.is_known_agency)(&identity.agency) {
            return Err(PkiError::UnknownAgency(identity.agency));
        }
        if let Some(approved) = policy.approved_profile {
            if approved != identity.profile {
                return Err(PkiError::ProfileMismatch {
                    requested: identity.profile,
                    approved,
                });
            }
        }
        if policy.validity.lifetime() > policy.max_validity {
            return Err(PkiError::ValidityTooLong {
                requested: policy.validity.lifetime(),
                max: policy.max_validity,
            });
        }

        let common_name = format!("{}/{}", identity.agency, identity.profile);
        let sans = vec![ca::spiffe_san(&identity)?];
        let (cert, info) = self.sign_leaf(
            &common_name,
            sans,
            LeafKind::Client,
            policy.validity,
            &public_key,
        )?;
        Ok(IssuedCertificate {
            identity,
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            serial_hex: info.serial_hex,
            not_before: info.not_before,
            not_after: info.not_after,
            fingerprint_sha256_hex: info.fingerprint_sha256_hex,
            key_algorithm,
        })
    }
}

/// The CSR's public key, if of an allowed type.
fn requested_key(
    csr: &X509CertificationRequest<'_>,
    allowed: &[KeyAlgorithm],
) -> Result<(SubjectPublicKeyInfo, KeyAlgorithm), PkiError> {
    let spki = &csr.certification_request_info.subject_pki;
    let allowed_names = allowed
        .iter()
        .map(KeyAlgorithm::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let unsupported = |found: String| PkiError::UnsupportedKey {
        found,
        allowed: allowed_names.clone(),
    };
    let describe = || {
        let oid = spki.algorithm.algorithm.to_id_string();
        match oid.as_str() {
            "1.2.840.113549.1.1.1" => format!("RSA ({oid})"),
            "1.2.840.10045.2.1" => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map_or_else(|| "unnamed".to_owned(), |c| c.to_id_string());
                format!("EC on curve {curve}")
            }
            _ => format!("of algorithm {oid}"),
        }
    };
    let key = SubjectPublicKeyInfo::from_der(spki.raw).map_err(|_| unsupported(describe()))?;
    let algorithm = KeyAlgorithm::of(key.algorithm()).ok_or_else(|| unsupported(describe()))?;
    if !allowed.contains(&algorithm) {
        return Err(unsupported(algorithm.as_str().to_owned()));
    }
    Ok((key, algorithm))
}

/// The one SPIFFE identity the CSR asks for, from the URI SANs of every extension request it
/// carries (a second extension request cannot smuggle in a second identity).
fn requested_identity(csr: &X509CertificationRequest<'_>) -> Result<SpiffeId, PkiError> {
    let mut uris: Vec<String> = csr
        .certification_request_info
        .iter_attributes()
        .filter_map(|attr| match attr.parsed_attribute() {
            ParsedCriAttribute::ExtensionRequest(request) => Some(&request.extensions),
            _ => None,
        })
        .flatten()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => Some(&san.general_names),
            _ => None,
        })
        .flatten()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect();
    match uris.len() {
        0 => Err(PkiError::CsrNoUri),
        1 => {
            let uri = uris.remove(0);
            SpiffeId::parse(&uri).map_err(|source| PkiError::CsrNotSpiffe { uri, source })
        }
        _ => Err(PkiError::CsrSeveralUris(uris)),
    }
}

#[cfg(test)]
mod tests {
    use rcgen::SanType;
    use x509_parser::certificate::X509Certificate;

    use super::*;
    use crate::ca::tests::{general_names, one_day, shanghai, test_ca};
    use crate::inspect::{agency_identity, parse_certificate, uri_sans};
    use yrd_domain::clock::{Clock as _, SystemClock};

    /// An RSA-2048 CSR for 310000-SAMR/system, made with
    /// `openssl req -new -newkey rsa:2048 -addext subjectAltName=URI:spiffe://…`.
    const RSA_CSR: &str = include_str!("testdata/rsa.csr");

    /// A P-256 CSR made with openssl for 320000-AMR/system that also asks for CN "root of all
    /// evil", a DNS SAN `evil.example`, basicConstraints CA:TRUE, keyUsage keyCertSign +
    /// cRLSign and EKU serverAuth + codeSigning — none of which may reach the certificate.
    const GREEDY_CSR: &str = include_str!("testdata/greedy.csr");

    fn anyone(_: &AgencyId) -> bool {
        true
    }

    fn policy() -> CsrPolicy<'static> {
        CsrPolicy::new(&anyone, one_day())
    }

    /// A CSR for arbitrary SANs, signed with `key`.
    fn csr_with(sans: Vec<SanType>, key: &KeyPair) -> String {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().unwrap())
    }

    fn p256() -> KeyPair {
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
    }

    /// Minimal PEM encoder, to re-wrap a tampered DER.
    fn to_pem(label: &str, der: &[u8]) -> String {
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut text = String::new();
        for chunk in der.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    text.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    text.push('=');
                }
            }
        }
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|l| std::str::from_utf8(l).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn spki_of_cert(cert: &X509Certificate<'_>) -> Vec<u8> {
        cert.public_key().raw.to_vec()
    }

    #[test]
    fn make_csr_then_sign_certifies_the_partners_key() {
        let ca = test_ca();
        let agency = shanghai();
        let (key_pem, csr_pem) = make_csr(&agency, Profile::System).unwrap();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));

        let issued = ca
            .sign_csr(
                &csr_pem,
                policy()
                    .approved_profile(Profile::System)
                    .approved_agency(&agency),
            )
            .unwrap();
        assert_eq!(
            issued.identity,
            SpiffeId::new(agency.clone(), Profile::System)
        );
        assert_eq!(issued.key_algorithm, KeyAlgorithm::EcdsaP256);
        let cert = parse_certificate(&issued.cert_der).unwrap();
        let partner_key = KeyPair::from_pem(&key_pem).unwrap();
        assert_eq!(spki_of_cert(&cert), partner_key.subject_public_key_info());
        assert_eq!(
            agency_identity(&issued.cert_der).unwrap(),
            (agency.clone(), Profile::System)
        );
        let ca_cert = parse_certificate(ca.cert_der()).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);

        // Signing the same request again gives another certificate (serial, fingerprint).
        let again = ca.sign_csr(&csr_pem, policy()).unwrap();
        assert_ne!(again.fingerprint_sha256_hex, issued.fingerprint_sha256_hex);
        assert_ne!(again.serial_hex, issued.serial_hex);
        // And a certificate for another key has yet another fingerprint.
        let (_, other_csr) = make_csr(&agency, Profile::System).unwrap();
        let other = ca.sign_csr(&other_csr, policy()).unwrap();
        assert_ne!(other.fingerprint_sha256_hex, issued.fingerprint_sha256_hex);
        assert_ne!(other.fingerprint_sha256_hex, again.fingerprint_sha256_hex);
    }

    #[test]
    fn only_the_checked_identity_reaches_the_certificate() {
        let ca = test_ca();
        let issued = ca.sign_csr(GREEDY_CSR, policy()).unwrap();
        let cert = parse_certificate(&issued.cert_der).unwrap();
        let sans = general_names(&cert);
        assert_eq!(sans.len(), 1, "the DNS SAN was dropped: {sans:?}");
        assert_eq!(
            uri_sans(&cert).unwrap(),
            vec!["spiffe://yrd-exchange/agency/320000-AMR/system".to_owned()]
        );
        assert!(!cert.is_ca());
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_cert_sign() && !ku.crl_sign());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth && !eku.code_signing);
        assert_eq!(
            cert.subject().to_string(),
            "CN=320000-AMR/system, O=yrd-exchange"
        );
    }

    #[test]
    fn other_key_types() {
        let ca = test_ca();
        let uri_san = || vec![uri("spiffe://yrd-exchange/agency/310000-SAMR/system")];
        for (alg, expected) in [
            (&PKCS_ECDSA_P384_SHA384, KeyAlgorithm::EcdsaP384),
            (&PKCS_ED25519, KeyAlgorithm::Ed25519),
        ] {
            let key = KeyPair::generate_for(alg).unwrap();
            let csr = csr_with(uri_san(), &key);
            let issued = ca.sign_csr(&csr, policy()).unwrap();
            assert_eq!(issued.key_algorithm, expected);
            let cert = parse_certificate(&issued.cert_der).unwrap();
            assert_eq!(spki_of_cert(&cert), key.subject_public_key_info());

            let only_p256 = [KeyAlgorithm::EcdsaP256];
            let refused = ca.sign_csr(&csr, policy().allowed_keys(&only_p256));
            assert!(
                matches!(&refused, Err(PkiError::UnsupportedKey { found, .. }) if found == expected.as_str()),
                "{refused:?}"
            );
        }
        let rsa = ca.sign_csr(RSA_CSR, policy());
        assert!(
            matches!(&rsa, Err(PkiError::UnsupportedKey { found, .. }) if found.starts_with("RSA")),
            "{rsa:?}"
        );
    }

    #[test]
    fn refuses_malformed_requests() {
        let ca = test_ca();
        for junk in [
            "",
            "hello",
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        ] {
            let refused = ca.sign_csr(junk, policy());
            assert!(
                matches!(refused, Err(PkiError::CsrMalformed(_))),
                "{junk:?}: {refused:?}"
            );
        }
        // A certificate is not a request.
        let cert = ca
            .issue_agency(&shanghai(), Profile::System, one_day())
            .unwrap();
        assert!(matches!(
            ca.sign_csr(&cert.cert_pem, policy()),
            Err(PkiError::CsrMalformed(_))
        ));
    }

    #[test]
    fn refuses_a_tampered_request() {
        let ca = test_ca();
        let (_, csr_pem) = make_csr(&shanghai(), Profile::System).unwrap();
        let mut der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
            .unwrap()
            .to_vec();
        // Change one byte of the requested URI ("system" → "systen").
        let needle = b"310000-SAMR/system";
        let at = der
            .windows(needle.len())
            .rposition(|w| w == needle)
            .unwrap();
        der[at + needle.len() - 1] = b'n';
        let tampered = to_pem("CERTIFICATE REQUEST", &der);
        assert_ne!(tampered, csr_pem);
        let refused = ca.sign_csr(&tampered, policy());
        assert!(
            matches!(refused, Err(PkiError::CsrBadSignature)),
            "{refused:?}"
        );
    }

    #[test]
    fn refuses_requests_without_exactly_one_uri() {
        let ca = test_ca();
        let key = p256();
        let none = csr_with(
            vec![SanType::DnsName("partner.example".try_into().unwrap())],
            &key,
        );
        assert!(matches!(
            ca.sign_csr(&none, policy()),
            Err(PkiError::CsrNoUri)
        ));
        let bare = csr_with(Vec::new(), &key);
        assert!(matches!(
            ca.sign_csr(&bare, policy()),
            Err(PkiError::CsrNoUri)
        ));

        let two = csr_with(
            vec![
                uri("spiffe://yrd-exchange/agency/310000-SAMR/system"),
                uri("spiffe://yrd-exchange/agency/310000-SAMR/admin"),
            ],
            &key,
        );
        let refused = ca.sign_csr(&two, policy());
        assert!(
            matches!(&refused, Err(PkiError::CsrSeveralUris(uris)) if uris.len() == 2),
            "{refused:?}"
        );
    }

    #[test]
    fn refuses_a_uri_that_is_not_ours() {
        let ca = test_ca();
        let key = p256();
        for bad in [
            "https://yrd-exchange/agency/310000-SAMR/system",
            "spiffe://other-domain/agency/310000-SAMR/system",
            "spiffe://yrd-exchange/agency/310000-SAMR/root",
            "spiffe://yrd-exchange/agency/not-an-agency/system",
        ] {
            let csr = csr_with(vec![uri(bad)], &key);
            let refused = ca.sign_csr(&csr, policy());
            assert!(
                matches!(&refused, Err(PkiError::CsrNotSpiffe { uri, .. }) if uri == bad),
                "{bad}: {refused:?}"
            );
        }
    }

    #[test]
    fn refuses_an_unknown_agency() {
        let ca = test_ca();
        let (_, csr) = make_csr(&AgencyId::parse("440000-AMR").unwrap(), Profile::System).unwrap();
        let delta = |a: &AgencyId| {
            yrd_domain::ids::DELTA_AGENCIES
                .iter()
                .any(|(id, _, _)| *id == a.as_str())
        };
        let refused = ca.sign_csr(&csr, CsrPolicy::new(&delta, one_day()));
        assert!(
            matches!(&refused, Err(PkiError::UnknownAgency(a)) if a.as_str() == "440000-AMR"),
            "{refused:?}"
        );
        assert!(refused.as_ref().is_err_and(PkiError::is_caller_fault));
        // The same check admits a delta agency.
        let (_, ok) = make_csr(&shanghai(), Profile::System).unwrap();
        assert!(ca.sign_csr(&ok, CsrPolicy::new(&delta, one_day())).is_ok());
    }

    #[test]
    fn refuses_another_agency_or_profile_than_approved() {
        let ca = test_ca();
        let (_, csr) = make_csr(&shanghai(), Profile::Admin).unwrap();
        let refused = ca.sign_csr(&csr, policy().approved_profile(Profile::System));
        assert!(matches!(
            refused,
            Err(PkiError::ProfileMismatch {
                requested: Profile::Admin,
                approved: Profile::System
            })
        ));
        let jiangsu = AgencyId::parse("320000-AMR").unwrap();
        let refused = ca.sign_csr(&csr, policy().approved_agency(&jiangsu));
        assert!(
            matches!(&refused, Err(PkiError::AgencyMismatch { requested, approved })
                if *requested == shanghai() && *approved == jiangsu),
            "{refused:?}"
        );
    }

    #[test]
    fn refuses_a_validity_longer_than_the_maximum() {
        let ca = test_ca();
        let (_, csr) = make_csr(&shanghai(), Profile::System).unwrap();
        let ninety = Validity::starting(SystemClock.now(), Duration::days(90)).unwrap();
        let issued = ca.sign_csr(&csr, CsrPolicy::new(&anyone, ninety)).unwrap();
        assert_eq!(issued.not_after - issued.not_before, Duration::days(90));

        let ninety_one = Validity::starting(SystemClock.now(), Duration::days(91)).unwrap();
        let refused = ca.sign_csr(&csr, CsrPolicy::new(&anyone, ninety_one));
        assert!(
            matches!(refused, Err(PkiError::ValidityTooLong { requested, max })
                if requested == Duration::days(91) && max == DEFAULT_MAX_CSR_VALIDITY),
        );
        let refused = ca.sign_csr(&csr, policy().max_validity(Duration::hours(1)));
        assert!(matches!(refused, Err(PkiError::ValidityTooLong { .. })));
    }

    #[test]
    fn every_refusal_is_the_callers_fault_and_says_why() {
        let err = PkiError::UnknownAgency(AgencyId::parse("440000-AMR").unwrap());
        assert!(err.is_caller_fault());
        assert!(err.to_string().contains("440000-AMR"));
        let err = PkiError::ValidityTooLong {
            requested: Duration::days(91),
            max: Duration::days(90),
        };
        assert!(err.is_caller_fault());
        assert!(
            err.to_string().contains("91d") && err.to_string().contains("90d"),
            "{err}"
        );
        assert!(!PkiError::Random.is_caller_fault());
    }
}
