//! The exchange's certificate authority (证书颁发机构): one ECDSA P-256 root that signs the
//! server certificate and every agency certificate, and nothing else.
//!
//! Why a single root with path length 0: the exchange only ever admits certificates it issued
//! itself, so an intermediate would add a file to rotate and a chain to get wrong without
//! protecting anything. The root key signs leaves and CRLs; leaves cannot sign.
//!
//! Every leaf is built here from scratch — subject, SANs, key usages, serial and validity
//! are chosen by the exchange, never copied from a request — so what a certificate admits is
//! decided in one place. Time is passed in ([`Validity`]) so that tests can make expired
//! certificates without waiting; serials come from the system CSPRNG (126 random bits).

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};
use yrd_domain::{AgencyId, Profile, SpiffeId};

use crate::error::PkiError;
use crate::inspect::{self, CertInfo};

/// The organisation (O) written into every subject the exchange issues.
pub const ORGANIZATION: &str = "yrd-exchange";

/// The names every server certificate carries, whatever is configured: the embedded default
/// serves on loopback, and clients on the same host reach it by any of these.
pub const SERVER_DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// When a certificate starts and stops being valid.
///
/// Times are truncated to whole seconds on construction, because that is all an X.509
/// certificate can hold; what a `Validity` reports is therefore exactly what the certificate
/// will say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Validity {
    /// An explicit window, e.g. one wholly in the past for an expired test certificate.
    pub fn new(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Result<Self, PkiError> {
        let not_before = whole_seconds(not_before);
        let not_after = whole_seconds(not_after);
        if not_after <= not_before {
            return Err(PkiError::EmptyValidity {
                not_before,
                not_after,
            });
        }
        Ok(Validity {
            not_before,
            not_after,
        })
    }

    /// Valid from `now` for `lifetime`.
    pub fn starting(now: OffsetDateTime, lifetime: Duration) -> Result<Self, PkiError> {
        Validity::new(now, now + lifetime)
    }

    /// The first instant the certificate is valid.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The last instant the certificate is valid.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// `not_after - not_before`.
    pub fn lifetime(&self) -> Duration {
        self.not_after - self.not_before
    }
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// A certificate together with the private key made for it (server certificates, and agency
/// certificates of the dev PKI and tests). Production agency certificates come from CSRs and
/// never have their key here; see `IssuedCertificate` (module `csr`).
#[derive(Clone)]
pub struct IssuedKeyPair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The serial number, lowercase hex without leading zero bytes (as [`CertInfo`] reports it).
    pub serial_hex: String,
    /// First instant of validity.
    pub not_before: OffsetDateTime,
    /// Last instant of validity.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER certificate, lowercase hex (RFC 8705 `x5t#S256` in hex).
    pub fingerprint_sha256_hex: String,
}

impl fmt::Debug for IssuedKeyPair {
    /// Everything but the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKeyPair")
            .field("serial_hex", &self.serial_hex)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("fingerprint_sha256_hex", &self.fingerprint_sha256_hex)
            .field("key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

/// What a leaf certificate is for; decides its extended key usage.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LeafKind {
    /// The exchange's TLS server certificate (EKU serverAuth).
    Server,
    /// An agency system's client certificate (EKU clientAuth).
    Client,
}

/// The exchange's certificate authority: the root certificate and its signing key.
pub struct CertificateAuthority {
    /// Signs leaves and CRLs; holds the CA subject, key usages and key identifier.
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
    /// The CA's subject key identifier, written as the authority key identifier of its CRLs.
    key_id: Option<Vec<u8>>,
    not_after: OffsetDateTime,
}

impl fmt::Debug for CertificateAuthority {
    /// The certificate's identity, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field(
                "fingerprint_sha256",
                &hex::encode(self.fingerprint_sha256()),
            )
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Makes a new self-signed ECDSA P-256 root: basic constraints cA (path length 0), key
    /// usage keyCertSign + cRLSign, a subject key identifier, subject `CN=<common_name>,
    /// O=yrd-exchange`.
    pub fn create(common_name: &str, validity: Validity) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial()?);
        params.not_before = validity.not_before();
        params.not_after = validity.not_after();
        let cert = params.self_signed(&key)?;
        CertificateAuthority::from_parts(cert.der().clone(), cert.pem(), key)
    }

    /// Loads a CA from its PEM certificate and PKCS#8 PEM key, checking that the certificate is
    /// a CA and that the key is its key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| PkiError::CaCertMalformed(e.to_string()))?;
        let key =
            KeyPair::from_pem(key_pem).map_err(|e| PkiError::CaKeyMalformed(e.to_string()))?;
        CertificateAuthority::from_parts(der, cert_pem.to_owned(), key)
    }

    fn from_parts(
        der: CertificateDer<'static>,
        cert_pem: String,
        key: KeyPair,
    ) -> Result<Self, PkiError> {
        let cert = inspect::parse_certificate(&der)
            .map_err(|e| PkiError::CaCertMalformed(e.to_string()))?;
        let subject = cert.subject().to_string();
        if !cert.is_ca() {
            return Err(PkiError::NotACa { subject });
        }
        if cert.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(PkiError::CaKeyMismatch { subject });
        }
        let key_id = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                    Some(id.0.to_vec())
                }
                _ => None,
            });
        let not_after = cert.validity().not_after.to_datetime();
        let key_pem = key.serialize_pem();
        let issuer = Issuer::from_ca_cert_der(&der, key)?;
        Ok(CertificateAuthority {
            issuer,
            cert_der: der,
            cert_pem,
            key_pem,
            key_id,
            not_after,
        })
    }

    /// The CA certificate, PEM: the trust anchor partners and the server configure.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 PEM. Keep it off shared disks.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the CA certificate's DER.
    pub fn fingerprint_sha256(&self) -> [u8; 32] {
        inspect::fingerprint_sha256(&self.cert_der)
    }

    /// When the CA certificate expires; no certificate it issues may outlive it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Issues the exchange's TLS server certificate with a fresh P-256 key: SANs `localhost`,
    /// `127.0.0.1`, `::1` and each configured name (an IP SAN when it parses as an address, a
    /// DNS SAN otherwise), EKU serverAuth.
    pub fn issue_server(
        &self,
        names: &[String],
        validity: Validity,
    ) -> Result<IssuedKeyPair, PkiError> {
        let mut sans: Vec<SanType> = Vec::new();
        let all = SERVER_DEFAULT_NAMES
            .iter()
            .copied()
            .chain(names.iter().map(String::as_str));
        for name in all {
            let san = server_san(name)?;
            if !sans.contains(&san) {
                sans.push(san);
            }
        }
        let common_name = names.first().map_or("localhost", String::as_str);
        self.issue_with_new_key(common_name, sans, LeafKind::Server, validity)
    }

    /// Issues an agency certificate with a fresh P-256 key (for the dev PKI and tests; partners
    /// use `make_csr` and `CertificateAuthority::sign_csr` (module `csr`) so their key never
    /// leaves them): URI SAN `spiffe://yrd-exchange/agency/<agency>/<profile>`,
    /// CN `<agency>/<profile>`, EKU clientAuth.
    pub fn issue_agency(
        &self,
        agency: &AgencyId,
        profile: Profile,
        validity: Validity,
    ) -> Result<IssuedKeyPair, PkiError> {
        let identity = SpiffeId::new(agency.clone(), profile);
        let sans = vec![spiffe_san(&identity)?];
        let common_name = format!("{agency}/{profile}");
        self.issue_with_new_key(&common_name, sans, LeafKind::Client, validity)
    }

    fn issue_with_new_key(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        kind: LeafKind,
        validity: Validity,
    ) -> Result<IssuedKeyPair, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let (cert, info) = self.sign_leaf(common_name, sans, kind, validity, &key)?;
        Ok(IssuedKeyPair {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
            serial_hex: info.serial_hex,
            not_before: info.not_before,
            not_after: info.not_after,
            fingerprint_sha256_hex: info.fingerprint_sha256_hex,
        })
    }

    /// Signs a leaf for `public_key`. Everything in it is chosen here: subject, the given SANs,
    /// key usage digitalSignature, the EKU of `kind`, basic constraints cA=false, subject and
    /// authority key identifiers, a random serial. Returns the certificate and what it reads
    /// back as.
    pub(crate) fn sign_leaf(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        kind: LeafKind,
        validity: Validity,
        public_key: &impl PublicKeyData,
    ) -> Result<(rcgen::Certificate, CertInfo), PkiError> {
        if validity.not_after() > self.not_after {
            return Err(PkiError::OutlivesCa {
                not_after: validity.not_after(),
                ca_not_after: self.not_after,
            });
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(common_name);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match kind {
            LeafKind::Server => ExtendedKeyUsagePurpose::ServerAuth,
            LeafKind::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        params.not_before = validity.not_before();
        params.not_after = validity.not_after();
        let cert = params.signed_by(public_key, &self.issuer)?;
        // Read back what was written, so that what we report is what the certificate says.
        let info = CertInfo::from_der(cert.der())?;
        Ok((cert, info))
    }

    /// The signer, for the CRL module.
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// The CA's subject key identifier, when its certificate has one.
    pub(crate) fn key_id(&self) -> Option<&[u8]> {
        self.key_id.as_deref()
    }
}

/// `CN=<common_name>, O=yrd-exchange`.
fn subject(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn
}

/// A server name as a SAN: an IP SAN when it parses as an address, else a checked DNS name.
fn server_san(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = || PkiError::InvalidServerName(name.to_owned());
    rustls_pki_types::DnsName::try_from(name).map_err(|_| invalid())?;
    Ok(SanType::DnsName(name.try_into().map_err(|_| invalid())?))
}

/// The URI SAN naming an agency system.
pub(crate) fn spiffe_san(identity: &SpiffeId) -> Result<SanType, PkiError> {
    Ok(SanType::URI(identity.to_uri().try_into()?))
}

/// A random positive serial of 16 bytes: the top bit cleared (positive) and the next one set
/// (so the DER encoding is always exactly 16 bytes), 126 bits from the system CSPRNG —
/// above the CA/Browser Forum's 64-bit minimum and within RFC 5280's 20 octets.
pub(crate) fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
pub(crate) mod tests {
    use x509_parser::certificate::X509Certificate;
    use x509_parser::extensions::{GeneralName, ParsedExtension};

    use super::*;
    use crate::inspect::{agency_identity, parse_certificate, uri_sans};
    use yrd_domain::clock::{Clock as _, SystemClock};

    /// The subject alternative names of a certificate that has some.
    pub(crate) fn general_names<'a>(cert: &X509Certificate<'a>) -> Vec<GeneralName<'a>> {
        cert.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .clone()
    }

    /// A fresh CA valid from a day ago for a year.
    pub(crate) fn test_ca() -> CertificateAuthority {
        let now = SystemClock.now();
        CertificateAuthority::create(
            "test CA",
            Validity::new(now - Duration::days(1), now + Duration::days(365)).unwrap(),
        )
        .unwrap()
    }

    pub(crate) fn shanghai() -> AgencyId {
        AgencyId::parse("310000-SAMR").unwrap()
    }

    pub(crate) fn one_day() -> Validity {
        Validity::starting(SystemClock.now(), Duration::days(1)).unwrap()
    }

    fn eku(cert: &X509Certificate<'_>) -> (bool, bool) {
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        (eku.server_auth, eku.client_auth)
    }

    #[test]
    fn ca_is_a_p256_root_that_signs_certificates_and_crls() {
        let ca = test_ca();
        let cert = parse_certificate(ca.cert_der()).unwrap();
        assert!(cert.is_ca());
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert!(!ku.digital_signature());
        assert!(cert.iter_extensions().any(|e| matches!(
            e.parsed_extension(),
            ParsedExtension::SubjectKeyIdentifier(_)
        )));
        assert_eq!(
            cert.public_key()
                .algorithm
                .parameters
                .as_ref()
                .unwrap()
                .as_oid()
                .unwrap()
                .to_id_string(),
            "1.2.840.10045.3.1.7",
            "P-256 curve"
        );
        cert.verify_signature(None).unwrap();
        assert!(ca.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(ca.key_id().is_some());
    }

    #[test]
    fn ca_loads_back_from_pem_and_refuses_a_foreign_key_or_a_leaf() {
        let ca = test_ca();
        let loaded = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        assert_eq!(loaded.fingerprint_sha256(), ca.fingerprint_sha256());
        // What the loaded CA issues verifies under the original certificate.
        let issued = loaded
            .issue_agency(&shanghai(), Profile::System, one_day())
            .unwrap();
        let ca_cert = parse_certificate(ca.cert_der()).unwrap();
        parse_certificate(&issued.cert_der)
            .unwrap()
            .verify_signature(Some(ca_cert.public_key()))
            .unwrap();

        let other = test_ca();
        assert!(matches!(
            CertificateAuthority::from_pem(ca.cert_pem(), other.key_pem()),
            Err(PkiError::CaKeyMismatch { .. })
        ));
        assert!(matches!(
            CertificateAuthority::from_pem(&issued.cert_pem, &issued.key_pem),
            Err(PkiError::NotACa { .. })
        ));
        assert!(matches!(
            CertificateAuthority::from_pem("junk", ca.key_pem()),
            Err(PkiError::CaCertMalformed(_))
        ));
        assert!(matches!(
            CertificateAuthority::from_pem(ca.cert_pem(), "junk"),
            Err(PkiError::CaKeyMalformed(_))
        ));
    }

    #[test]
    fn agency_certificate_carries_exactly_its_spiffe_uri() {
        let ca = test_ca();
        let agency = AgencyId::parse("370000-AMR").unwrap();
        let issued = ca
            .issue_agency(&agency, Profile::Auditor, one_day())
            .unwrap();
        let cert = parse_certificate(&issued.cert_der).unwrap();
        assert_eq!(
            uri_sans(&cert).unwrap(),
            vec!["spiffe://yrd-exchange/agency/370000-AMR/auditor".to_owned()]
        );
        let all_sans = cert.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(all_sans.general_names.len(), 1, "no other SAN");
        assert_eq!(
            agency_identity(&issued.cert_der).unwrap(),
            (agency.clone(), Profile::Auditor)
        );
        let info = CertInfo::from_pem(&issued.cert_pem).unwrap();
        assert_eq!(info.spiffe, Some(SpiffeId::new(agency, Profile::Auditor)));
        assert_eq!(info.subject, "CN=370000-AMR/auditor, O=yrd-exchange");
        assert!(!info.is_ca);
        assert_eq!(eku(&cert), (false, true), "clientAuth only");
        assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
        // Authority key identifier = the CA's subject key identifier.
        let aki = cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.clone(),
                _ => None,
            })
            .unwrap();
        assert_eq!(Some(aki.0), ca.key_id());
        // The reported facts are the certificate's.
        assert_eq!(issued.serial_hex, info.serial_hex);
        assert_eq!(issued.fingerprint_sha256_hex, info.fingerprint_sha256_hex);
        assert_eq!(
            issued.fingerprint_sha256_hex,
            hex::encode(crate::fingerprint_sha256(&issued.cert_der))
        );
        assert_eq!(issued.not_after, info.not_after);
        // A random positive 16-byte serial, different every time.
        assert_eq!(issued.serial_hex.len(), 32);
        assert!(u8::from_str_radix(&issued.serial_hex[..2], 16).unwrap() < 0x80);
        let again = ca
            .issue_agency(&shanghai(), Profile::Auditor, one_day())
            .unwrap();
        assert_ne!(again.serial_hex, issued.serial_hex);
        assert_ne!(again.key_pem, issued.key_pem);
    }

    #[test]
    fn server_certificate_names_loopback_and_configured_names() {
        let ca = test_ca();
        let names = vec![
            "exchange.example.gov.cn".to_owned(),
            "10.1.2.3".to_owned(),
            "localhost".to_owned(),
        ];
        let issued = ca.issue_server(&names, one_day()).unwrap();
        let cert = parse_certificate(&issued.cert_der).unwrap();
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        for san in general_names(&cert) {
            match san {
                GeneralName::DNSName(d) => dns.push(d.to_owned()),
                GeneralName::IPAddress(ip) => ips.push(ip.to_vec()),
                other => panic!("unexpected SAN {other:?}"),
            }
        }
        assert_eq!(dns, vec!["localhost", "exchange.example.gov.cn"]);
        let mut v6_loopback = vec![0u8; 16];
        v6_loopback[15] = 1;
        assert_eq!(
            ips,
            vec![vec![127, 0, 0, 1], v6_loopback, vec![10, 1, 2, 3]]
        );
        assert_eq!(eku(&cert), (true, false), "serverAuth only");
        assert!(
            CertInfo::from_der(&issued.cert_der)
                .unwrap()
                .spiffe
                .is_none()
        );

        assert!(matches!(
            ca.issue_server(&["bad name!".to_owned()], one_day()),
            Err(PkiError::InvalidServerName(n)) if n == "bad name!"
        ));
    }

    #[test]
    fn expired_certificate_really_ended_in_the_past() {
        let ca = test_ca();
        let now = SystemClock.now();
        let past = Validity::new(now - Duration::days(10), now - Duration::days(1)).unwrap();
        let issued = ca.issue_agency(&shanghai(), Profile::System, past).unwrap();
        let info = CertInfo::from_der(&issued.cert_der).unwrap();
        assert!(info.not_after < now);
        assert_eq!(info.not_after, past.not_after());
        assert!(!info.is_valid_at(now));
    }

    #[test]
    fn validity_windows_are_checked() {
        let now = SystemClock.now();
        assert!(matches!(
            Validity::new(now, now),
            Err(PkiError::EmptyValidity { .. })
        ));
        assert!(matches!(
            Validity::starting(now, Duration::days(-1)),
            Err(PkiError::EmptyValidity { .. })
        ));
        let v = Validity::starting(now, Duration::days(90)).unwrap();
        assert_eq!(v.lifetime(), Duration::days(90));
        assert_eq!(v.not_before().nanosecond(), 0);

        let ca = test_ca();
        let too_long = Validity::starting(now, Duration::days(400)).unwrap();
        assert!(matches!(
            ca.issue_agency(&shanghai(), Profile::Admin, too_long),
            Err(PkiError::OutlivesCa { .. })
        ));
    }
}
