//! The exchange's token signing keys: ES256 (ECDSA P-256 with SHA-256) key pairs, the ring
//! that rotates them with an overlap, and their publication as a JWK Set.
//!
//! # Rotation with overlap
//!
//! At any moment exactly one key signs: the newest whose activation (`not_before`) has come.
//! [`KeyRing::rotate_to`] adds a successor and gives every older key a `retire_after` of the
//! successor's activation + [`MAX_TOKEN_LIFETIME`]: no token signed by the old key can outlive
//! that, so the old key keeps verifying exactly as long as it might be needed and no longer.
//! A successor may be activated in the future: it is then published in the JWKS (and verifies)
//! before it signs, which lets offline verifiers pick it up ahead of time.
//!
//! # Key ids
//!
//! A key's `kid` is its RFC 7638 JWK thumbprint (SHA-256 over
//! `{"crv":"P-256","kty":"EC","x":"…","y":"…"}`, base64url): derived from the public key, so
//! replicas that load the same key agree on its id without coordination, and a stored id that
//! does not match its key is detected on load.
//!
//! # Persistence
//!
//! The store persists [`StoredSigningKey`] (PKCS#8 PEM and the two times) so that every replica
//! signs and verifies with the same ring. Neither [`SigningKey`] nor [`StoredSigningKey`]
//! prints its private key in `Debug`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use p256::ecdsa::SigningKey as EcSigningKey;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::MAX_TOKEN_LIFETIME;

/// Why a signing key or the key ring could not be built, stored or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The PEM text is not a PKCS#8 P-256 private key. The cause names the parse step only,
    /// never key material.
    #[error("signing key is not a PKCS#8 PEM P-256 private key: {0}")]
    Pkcs8(String),
    /// Encoding the key as PKCS#8 failed.
    #[error("signing key could not be encoded as PKCS#8: {0}")]
    Encode(String),
    /// The public key could not be turned into a JWT verification key.
    #[error("signing key's public point is unusable for verification: {0}")]
    PublicKey(String),
    /// A stored key's `kid` is not the thumbprint of the key stored with it.
    #[error("stored signing key {stored:?} is really key {actual:?}: kid and key disagree")]
    KidMismatch {
        /// The kid as stored.
        stored: String,
        /// The thumbprint of the key.
        actual: String,
    },
    /// A stored time is outside the range of dates the exchange handles.
    #[error("stored signing key {kid:?} has a time out of range: {seconds} s since the epoch")]
    TimeOutOfRange {
        /// The key concerned.
        kid: String,
        /// The stored value.
        seconds: i64,
    },
    /// A key ring needs at least one key.
    #[error("a key ring needs at least one signing key")]
    EmptyRing,
    /// The same key appears twice in a ring.
    #[error("signing key {0:?} appears twice in the key ring")]
    DuplicateKid(String),
    /// No key of the ring may sign at this time (all activate later or are retired).
    #[error("no signing key of the ring is active at {0}")]
    NoActiveKey(OffsetDateTime),
    /// Signing a token failed.
    #[error("signing the token failed: {0}")]
    Signing(String),
    /// Serialising the JWK Set failed.
    #[error("the JWK Set could not be serialised: {0}")]
    Json(String),
}

/// One public key as a JSON Web Key (RFC 7517; RFC 7518 §6.2 for EC keys), with the standard
/// members only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type, `EC`.
    pub kty: String,
    /// Curve, `P-256`.
    pub crv: String,
    /// The x coordinate, base64url without padding (32 bytes).
    pub x: String,
    /// The y coordinate, base64url without padding (32 bytes).
    pub y: String,
    /// Key id: the RFC 7638 thumbprint of this key.
    pub kid: String,
    /// Algorithm, `ES256`.
    pub alg: String,
    /// Public key use, `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
}

impl Jwk {
    /// The RFC 7638 thumbprint of the key: SHA-256 over the required members in lexicographic
    /// order without whitespace, `{"crv":…,"kty":…,"x":…,"y":…}`, base64url without padding.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.crv, &self.kty, &self.x, &self.y)
    }
}

/// RFC 7638 §3 thumbprint of an EC public key (one implementation, shared with the log key).
fn thumbprint(crv: &str, kty: &str, x: &str, y: &str) -> String {
    yrd_pki::ec_thumbprint(crv, kty, x, y)
}

/// A JSON Web Key Set (RFC 7517 §5): `{"keys": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys, oldest first.
    pub keys: Vec<Jwk>,
}

/// What the store persists of a signing key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSigningKey {
    /// The key id (RFC 7638 thumbprint); checked against the key on load.
    pub kid: String,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Secret.
    pub pkcs8_pem: String,
    /// Activation: the key signs from this time (seconds since the Unix epoch).
    pub not_before: i64,
    /// The key verifies until this time (seconds since the Unix epoch); `None` while it has no
    /// successor.
    pub retire_after: Option<i64>,
}

impl fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("pkcs8_pem", &"<redacted>")
            .field("not_before", &self.not_before)
            .field("retire_after", &self.retire_after)
            .finish()
    }
}

/// An ES256 signing key pair of the exchange, with its id and lifetime.
#[derive(Clone)]
pub struct SigningKey {
    /// The RFC 7638 thumbprint of the public key.
    kid: String,
    /// The private key, kept to export it as PKCS#8 for the store.
    secret: EcSigningKey,
    /// The same private key in jsonwebtoken's form (PKCS#8 DER).
    encoding: EncodingKey,
    /// The public key in jsonwebtoken's form.
    decoding: DecodingKey,
    /// The public key as published.
    jwk: Jwk,
    /// Activation: the key signs from this time on (until a successor activates).
    not_before: OffsetDateTime,
    /// End of verification; `None` while the key has no successor.
    retire_after: Option<OffsetDateTime>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("not_before", &self.not_before)
            .field("retire_after", &self.retire_after)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Makes a fresh P-256 key pair from the operating system's random source, active from
    /// `not_before`.
    pub fn generate(not_before: OffsetDateTime) -> Result<Self, KeyError> {
        Self::from_secret(EcSigningKey::random(&mut OsRng), not_before, None)
    }

    /// Loads a key from PKCS#8 PEM with its activation and retirement times.
    pub fn from_pkcs8_pem(
        pem: &str,
        not_before: OffsetDateTime,
        retire_after: Option<OffsetDateTime>,
    ) -> Result<Self, KeyError> {
        let secret =
            EcSigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::Pkcs8(e.to_string()))?;
        Self::from_secret(secret, not_before, retire_after)
    }

    /// Loads a key as the store persisted it, checking that its `kid` is its thumbprint.
    pub fn from_stored(stored: &StoredSigningKey) -> Result<Self, KeyError> {
        let time = |seconds: i64| {
            OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| KeyError::TimeOutOfRange {
                kid: stored.kid.clone(),
                seconds,
            })
        };
        let key = Self::from_pkcs8_pem(
            &stored.pkcs8_pem,
            time(stored.not_before)?,
            stored.retire_after.map(time).transpose()?,
        )?;
        if key.kid != stored.kid {
            return Err(KeyError::KidMismatch {
                stored: stored.kid.clone(),
                actual: key.kid,
            });
        }
        Ok(key)
    }

    fn from_secret(
        secret: EcSigningKey,
        not_before: OffsetDateTime,
        retire_after: Option<OffsetDateTime>,
    ) -> Result<Self, KeyError> {
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let point = secret.verifying_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(KeyError::PublicKey(
                "the public key is the point at infinity".to_owned(),
            ));
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        let decoding = DecodingKey::from_ec_components(&x, &y)
            .map_err(|e| KeyError::PublicKey(e.to_string()))?;
        let kid = thumbprint("P-256", "EC", &x, &y);
        let jwk = Jwk {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x,
            y,
            kid: kid.clone(),
            alg: "ES256".to_owned(),
            key_use: "sig".to_owned(),
        };
        Ok(SigningKey {
            kid,
            secret,
            encoding,
            decoding,
            jwk,
            not_before,
            retire_after,
        })
    }

    /// What the store persists: PKCS#8 PEM and the two times (whole seconds).
    pub fn to_stored(&self) -> Result<StoredSigningKey, KeyError> {
        let pem = self
            .secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(StoredSigningKey {
            kid: self.kid.clone(),
            pkcs8_pem: pem.to_string(),
            not_before: self.not_before.unix_timestamp(),
            retire_after: self.retire_after.map(OffsetDateTime::unix_timestamp),
        })
    }

    /// The key id: the RFC 7638 thumbprint of the public key, base64url.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Activation: the key signs from this time on, until a successor activates.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The end of verification; `None` while the key has no successor.
    pub fn retire_after(&self) -> Option<OffsetDateTime> {
        self.retire_after
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// True when tokens signed by this key are still accepted at `now`.
    pub fn verifies_at(&self, now: OffsetDateTime) -> bool {
        self.retire_after.is_none_or(|retire| now < retire)
    }

    /// The public key for jsonwebtoken's `decode`.
    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Signs `claims` as a compact JWS with header `{"typ":"JWT","alg":"ES256","kid":…}`.
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| KeyError::Signing(e.to_string()))
    }
}

/// The exchange's signing keys: the one that signs now and the older ones still accepted.
///
/// Keys are kept in activation order, oldest first; the signing key is the newest one whose
/// activation has come. The ring is a plain value: rotate a copy and swap it in.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// Oldest first, ordered by `not_before`.
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A ring holding one key.
    pub fn new(key: SigningKey) -> Self {
        KeyRing { keys: vec![key] }
    }

    /// A ring with one freshly generated key active from `now`.
    pub fn generate(now: OffsetDateTime) -> Result<Self, KeyError> {
        Ok(Self::new(SigningKey::generate(now)?))
    }

    /// A ring of the given keys (in any order); refuses an empty list and duplicate keys.
    pub fn from_keys(mut keys: Vec<SigningKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::EmptyRing);
        }
        keys.sort_by_key(|k| k.not_before);
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.kid == key.kid) {
                return Err(KeyError::DuplicateKid(key.kid.clone()));
            }
        }
        Ok(KeyRing { keys })
    }

    /// The ring as the store persisted it.
    pub fn from_stored(stored: &[StoredSigningKey]) -> Result<Self, KeyError> {
        Self::from_keys(
            stored
                .iter()
                .map(SigningKey::from_stored)
                .collect::<Result<_, _>>()?,
        )
    }

    /// Every key of the ring in the form the store persists.
    pub fn to_stored(&self) -> Result<Vec<StoredSigningKey>, KeyError> {
        self.keys.iter().map(SigningKey::to_stored).collect()
    }

    /// Every key held, oldest first (including keys that activate later and retired keys not
    /// yet pruned).
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The key that signs at `now`: the newest one already active and not retired.
    pub fn signing_key(&self, now: OffsetDateTime) -> Result<&SigningKey, KeyError> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.not_before <= now && k.verifies_at(now))
            .ok_or(KeyError::NoActiveKey(now))
    }

    /// The key named `kid` if tokens it signed are accepted at `now`.
    pub fn verifying_key(&self, kid: &str, now: OffsetDateTime) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|k| k.kid == kid && k.verifies_at(now))
    }

    /// Generates a successor that signs from `now` on; see [`KeyRing::rotate_to`].
    pub fn rotate(&mut self, now: OffsetDateTime) -> Result<&SigningKey, KeyError> {
        self.rotate_to(SigningKey::generate(now)?, now)
    }

    /// Adds `successor`, which signs from its own `not_before` on (`now` or later). Every key
    /// without a retirement so far retires at the successor's activation +
    /// [`MAX_TOKEN_LIFETIME`], and keys retired by `now` are dropped. Returns the successor.
    pub fn rotate_to(
        &mut self,
        mut successor: SigningKey,
        now: OffsetDateTime,
    ) -> Result<&SigningKey, KeyError> {
        if self.keys.iter().any(|k| k.kid == successor.kid) {
            return Err(KeyError::DuplicateKid(successor.kid));
        }
        let retire = successor.not_before + MAX_TOKEN_LIFETIME;
        for key in &mut self.keys {
            if key.retire_after.is_none() {
                key.retire_after = Some(retire);
            }
        }
        successor.retire_after = None;
        self.keys.push(successor);
        self.keys.sort_by_key(|k| k.not_before);
        self.prune(now);
        let newest = self.keys.len() - 1;
        Ok(&self.keys[newest])
    }

    /// Drops the keys retired by `now`; the newest key always stays.
    pub fn prune(&mut self, now: OffsetDateTime) {
        let newest = self.keys.len().saturating_sub(1);
        let mut i = 0;
        self.keys.retain(|k| {
            let keep = i == newest || k.verifies_at(now);
            i += 1;
            keep
        });
    }

    /// The public keys of the ring as a JWK Set (RFC 7517), oldest first: every key held,
    /// so during an overlap both the old and the new key. Prune first to leave out retired
    /// keys.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.keys.iter().map(|k| k.jwk.clone()).collect(),
        }
    }

    /// [`KeyRing::jwks`] as RFC 7517 JSON text, `{"keys":[…]}`.
    pub fn jwks_json(&self) -> Result<String, KeyError> {
        serde_json::to_string(&self.jwks()).map_err(|e| KeyError::Json(e.to_string()))
    }
}
