//! Reading certificates back: what a certificate says about its holder, and the fingerprint
//! that tokens are bound to.
//!
//! Two consumers with different needs share this module. The gateway's identity layer needs
//! one answer fast and strictly — the `(agency, profile)` a peer certificate names, or an
//! error — hence [`agency_identity`]. Admin tooling and the CA itself need a summary of any
//! certificate, including ones that name no agency (the CA, the server), hence [`CertInfo`],
//! whose `spiffe` is simply `None` then.
//!
//! Nothing here verifies a signature or a chain: that is the TLS verifier's job, and these
//! functions are meant for certificates it has already accepted (or that we just issued).

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use yrd_domain::{AgencyId, Profile, SpiffeId};

use crate::error::PkiError;

/// A summary of one X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The exchange identity the certificate names: `Some` when it carries exactly one URI SAN
    /// and that URI is `spiffe://yrd-exchange/agency/<agency>/<profile>`.
    pub spiffe: Option<SpiffeId>,
    /// The serial number, lowercase hex of its magnitude without leading zero bytes — the form
    /// the CRL functions take back.
    pub serial_hex: String,
    /// SHA-256 of the DER certificate, lowercase hex; RFC 8705's `x5t#S256` in hex.
    pub fingerprint_sha256_hex: String,
    /// The subject distinguished name, RFC 4514 style (e.g. `CN=310000-SAMR/system, O=yrd-exchange`).
    pub subject: String,
    /// The issuer distinguished name, same form.
    pub issuer: String,
    /// First instant of validity.
    pub not_before: OffsetDateTime,
    /// Last instant of validity.
    pub not_after: OffsetDateTime,
    /// Whether basic constraints mark it as a CA.
    pub is_ca: bool,
}

impl CertInfo {
    /// Summarises a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let cert = parse_certificate(der)?;
        let validity = cert.validity();
        Ok(CertInfo {
            spiffe: identity_of(&cert).ok(),
            serial_hex: serial_hex(cert.raw_serial()),
            fingerprint_sha256_hex: hex::encode(fingerprint_sha256(der)),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            is_ca: cert.is_ca(),
        })
    }

    /// Summarises the first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        CertInfo::from_der(&der_from_pem(pem)?)
    }

    /// Whether `now` lies within the validity window.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// SHA-256 of a DER certificate: the RFC 8705 `x5t#S256` thumbprint (before base64url).
pub fn fingerprint_sha256(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// The agency and profile a certificate admits its holder as, from its one SPIFFE URI SAN.
///
/// For the gateway's identity layer, on a certificate the TLS verifier already accepted.
/// Fails when the certificate does not parse, carries no URI SAN or several, or its URI is
/// not `spiffe://yrd-exchange/agency/<agency>/<profile>`.
pub fn agency_identity(der: &[u8]) -> Result<(AgencyId, Profile), PkiError> {
    let cert = parse_certificate(der)?;
    let id = identity_of(&cert)?;
    Ok((id.agency, id.profile))
}

/// Decodes the first `CERTIFICATE` block of a PEM text.
pub(crate) fn der_from_pem(pem: &str) -> Result<Vec<u8>, PkiError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.to_vec())
        .map_err(|e| PkiError::CertMalformed(format!("no PEM CERTIFICATE block: {e}")))
}

/// Parses exactly one DER certificate (trailing bytes are refused).
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::CertMalformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::CertMalformed(format!(
            "{} bytes after the certificate",
            rest.len()
        )));
    }
    Ok(cert)
}

/// Every URI SAN of a certificate, in order.
pub(crate) fn uri_sans(cert: &X509Certificate<'_>) -> Result<Vec<String>, PkiError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::CertMalformed(format!("subject alternative names: {e}")))?;
    Ok(san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some((*uri).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The one SPIFFE identity a certificate names.
fn identity_of(cert: &X509Certificate<'_>) -> Result<SpiffeId, PkiError> {
    let mut uris = uri_sans(cert)?;
    match uris.len() {
        0 => Err(PkiError::NoIdentity),
        1 => {
            let uri = uris.remove(0);
            SpiffeId::parse(&uri).map_err(|source| PkiError::NotSpiffe { uri, source })
        }
        _ => Err(PkiError::SeveralIdentities(uris)),
    }
}

/// Lowercase hex of a DER INTEGER's content without leading zero bytes (`"00"` for zero).
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    if start == raw.len() {
        return "00".to_owned();
    }
    hex::encode(&raw[start..])
}

/// Parses a serial in the form [`serial_hex`] writes (upper case, an odd number of digits and
/// leading zeros are accepted) into its magnitude's bytes without leading zeros.
pub(crate) fn serial_bytes(serial_hex: &str) -> Result<Vec<u8>, PkiError> {
    let invalid = || PkiError::InvalidSerial(serial_hex.to_owned());
    let digits = serial_hex.trim();
    if digits.is_empty() {
        return Err(invalid());
    }
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_owned()
    };
    let bytes = hex::decode(padded).map_err(|_| invalid())?;
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    if start == bytes.len() {
        return Ok(vec![0]);
    }
    Ok(bytes[start..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_forms_round_trip() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_bytes("8f01").unwrap(), vec![0x8f, 0x01]);
        assert_eq!(serial_bytes("008F01").unwrap(), vec![0x8f, 0x01]);
        assert_eq!(serial_bytes("f01").unwrap(), vec![0x0f, 0x01]);
        assert!(matches!(serial_bytes(""), Err(PkiError::InvalidSerial(_))));
        assert!(matches!(
            serial_bytes("xyz"),
            Err(PkiError::InvalidSerial(_))
        ));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(
            CertInfo::from_der(b"not a certificate"),
            Err(PkiError::CertMalformed(_))
        ));
        assert!(matches!(
            CertInfo::from_pem("-----BEGIN NOTHING-----\n-----END NOTHING-----\n"),
            Err(PkiError::CertMalformed(_))
        ));
        assert!(matches!(
            agency_identity(&[0x30, 0x03, 0x02, 0x01, 0x01]),
            Err(PkiError::CertMalformed(_))
        ));
    }

    #[test]
    fn fingerprint_is_sha256_of_the_bytes() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hex::encode(fingerprint_sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
