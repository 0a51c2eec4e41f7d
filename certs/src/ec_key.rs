//! ES256 (ECDSA P-256 with SHA-256) signing keys outside X.509: the exchange log's key that
//! signs receipts and tree heads, with its JSON Web Key form and RFC 7638 thumbprint (`kid`).
//! Anyone holding the published JWK verifies with [`verify_es256`].
//!
//! Keys are generated, stored and exported with `p256` (PKCS#8 PEM, JWK coordinates); signing
//! and verifying run on `ring`, already in the tree for TLS, whose P-256 arithmetic is several
//! times faster than the pure-Rust one — a receipt is signed on every write
//! (docs/performance.md).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;

use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use sha2::{Digest as _, Sha256};

use crate::PkiError;

/// RFC 7638 §3 thumbprint of an EC public key: SHA-256 over
/// `{"crv":…,"kty":…,"x":…,"y":…}` (lexicographic, no whitespace), base64url without padding.
pub fn ec_thumbprint(crv: &str, kty: &str, x: &str, y: &str) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let input = format!(
        "{{\"crv\":{},\"kty\":{},\"x\":{},\"y\":{}}}",
        q(crv),
        q(kty),
        q(x),
        q(y)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes()))
}

/// An ES256 key pair.
#[derive(Clone)]
pub struct Es256Key {
    secret: SigningKey,
    /// The same key, for signing.
    signer: Arc<EcdsaKeyPair>,
    x: String,
    y: String,
    kid: String,
}

impl std::fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es256Key")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Es256Key {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Es256Key {
        Self::from_secret(SigningKey::random(&mut rand_core::OsRng))
            .expect("a freshly generated P-256 key is a valid PKCS#8 key for ring")
    }

    /// Loads a PKCS#8 PEM P-256 private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Es256Key, PkiError> {
        let secret = SigningKey::from_pkcs8_pem(pem).map_err(|e| PkiError::BadKey {
            detail: e.to_string(),
        })?;
        Self::from_secret(secret)
    }

    fn from_secret(secret: SigningKey) -> Result<Es256Key, PkiError> {
        let bad = |detail: String| PkiError::BadKey { detail };
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| bad(format!("PKCS#8 encoding: {e}")))?;
        let signer = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            der.as_bytes(),
            &SystemRandom::new(),
        )
        .map_err(|e| bad(format!("P-256 key rejected for signing: {e}")))?;
        let point = secret.verifying_key().to_encoded_point(false);
        let coordinate =
            |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default();
        let x = coordinate(point.x());
        let y = coordinate(point.y());
        let kid = ec_thumbprint("P-256", "EC", &x, &y);
        Ok(Es256Key {
            secret,
            signer: Arc::new(signer),
            x,
            y,
            kid,
        })
    }

    /// The private key as PKCS#8 PEM, for the store.
    pub fn to_pkcs8_pem(&self) -> Result<String, PkiError> {
        self.secret
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| PkiError::BadKey {
                detail: e.to_string(),
            })
    }

    /// The key id: the RFC 7638 thumbprint of its public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key's base64url `x` and `y` coordinates (JWK members).
    pub fn public_coordinates(&self) -> (&str, &str) {
        (&self.x, &self.y)
    }

    /// The public key, SEC1 uncompressed.
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.secret
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// Signs `message` (SHA-256 inside ES256); the signature is ASN.1 DER.
    pub fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        match self.signer.sign(&SystemRandom::new(), message) {
            Ok(signature) => signature.as_ref().to_vec(),
            // ring fails only when the system random source does; a process without one
            // cannot run the exchange's TLS either.
            Err(e) => panic!("ES256 signing failed: the system random source is unavailable ({e})"),
        }
    }
}

/// Verifies an ASN.1 DER ES256 signature of `message` by the key with JWK coordinates `x`, `y`
/// (base64url).
pub fn verify_es256(
    x: &str,
    y: &str,
    message: &[u8],
    der_signature: &[u8],
) -> Result<(), PkiError> {
    let bad = |detail: String| PkiError::BadSignature { detail };
    let x = URL_SAFE_NO_PAD
        .decode(x)
        .map_err(|e| bad(format!("x is not base64url: {e}")))?;
    let y = URL_SAFE_NO_PAD
        .decode(y)
        .map_err(|e| bad(format!("y is not base64url: {e}")))?;
    if x.len() != 32 || y.len() != 32 {
        return Err(bad(format!(
            "public key: coordinates of {} and {} bytes, P-256 has 32",
            x.len(),
            y.len()
        )));
    }
    // The uncompressed SEC1 point: 0x04, then x and y.
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &sec1)
        .verify(message, der_signature)
        .map_err(|_| {
            bad(
                "the signature does not verify (or is not a DER ES256 signature by this key)"
                    .to_owned(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let key = Es256Key::generate();
        let (x, y) = key.public_coordinates();
        let signature = key.sign_der(b"tree head");
        assert!(verify_es256(x, y, b"tree head", &signature).is_ok());
        assert!(verify_es256(x, y, b"tree heaD", &signature).is_err());
        let reloaded = Es256Key::from_pkcs8_pem(&key.to_pkcs8_pem().expect("pem")).expect("load");
        assert_eq!(reloaded.kid(), key.kid());
        assert!(verify_es256(x, y, b"tree head", &reloaded.sign_der(b"tree head")).is_ok());
    }

    /// A partner verifies with whatever ES256 implementation it has: the signatures made here
    /// verify with the pure-Rust `p256` too, and a `p256` signature verifies here.
    #[test]
    fn signatures_interoperate_with_p256() {
        use p256::ecdsa::signature::{Signer as _, Verifier as _};
        use p256::ecdsa::{DerSignature, Signature};

        let key = Es256Key::generate();
        let der = key.sign_der(b"receipt");
        let signature = DerSignature::try_from(der.as_slice()).expect("DER signature");
        assert!(
            key.secret
                .verifying_key()
                .verify(b"receipt", &signature)
                .is_ok()
        );
        let theirs: Signature = key.secret.sign(b"receipt");
        let (x, y) = key.public_coordinates();
        assert!(verify_es256(x, y, b"receipt", theirs.to_der().as_bytes()).is_ok());
        assert!(verify_es256(x, y, b"receipT", theirs.to_der().as_bytes()).is_err());
        assert!(verify_es256(x, &x[1..], b"receipt", &der).is_err());
    }
}
