//! The token verifier on untrusted bytes: the entry point of the fuzz target `token` and of
//! its corpus regression test (docs/reliability.md). A fixed ring (one key from a fixed
//! secret), the default names and a fixed instant, so a corpus input always replays the same.

use std::sync::LazyLock;

use p256::ecdsa::SigningKey as EcSigningKey;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use time::OffsetDateTime;

use super::TokenSettings;
use super::keys::{KeyRing, SigningKey};
use super::verify::{TokenRefusal, TokenVerifier, VerifiedToken};

/// The instant every input is verified at (2023-11-14T22:13:20Z).
pub const VERIFIED_AT: i64 = 1_700_000_000;

/// The SHA-256 (hex) of the client certificate of the connection the token is presented on.
pub const CONNECTION_FINGERPRINT: &str =
    "5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5";

/// The ring: one key from a fixed secret, active from a day before [`VERIFIED_AT`].
static RING: LazyLock<KeyRing> = LazyLock::new(|| {
    let secret = EcSigningKey::from_slice(&[7; 32]).expect("a valid P-256 scalar");
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .expect("a P-256 key encodes as PKCS#8");
    let not_before =
        OffsetDateTime::from_unix_timestamp(VERIFIED_AT - 86_400).expect("a time in range");
    KeyRing::new(SigningKey::from_pkcs8_pem(&pem, not_before, None).expect("the fixed key"))
});

/// Verifies `data` as the verifier of every call does. Its first byte picks what the rest is:
/// even, the token's text as presented (not UTF-8: decoded lossily, as no header value is);
/// odd, the JSON claims of a token the ring's key signs, so that the checks after the
/// signature also see hostile claims. A refusal must say what is wrong; nothing may panic.
pub fn verify_untrusted(data: &[u8]) -> Result<VerifiedToken, TokenRefusal> {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let ring = &*RING;
    let token = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let claims: serde_json::Value = serde_json::from_slice(rest)
            .map_err(|_| TokenRefusal::Malformed("claims are not JSON"))?;
        ring.keys()[0]
            .sign(&claims)
            .map_err(|_| TokenRefusal::Malformed("claims do not serialise"))?
    };
    let settings = TokenSettings::default();
    let now = OffsetDateTime::from_unix_timestamp(VERIFIED_AT).expect("a time in range");
    let verdict = TokenVerifier::new(&settings, ring).verify(&token, CONNECTION_FINGERPRINT, now);
    if let Err(refusal) = &verdict {
        assert!(
            !refusal.to_string().trim().is_empty(),
            "a refusal without a reason"
        );
    }
    verdict
}
