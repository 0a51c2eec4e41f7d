//! The token refusal matrix, rotation and JWKS, against a manual clock: the fixture here, the
//! tests in a module per topic.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};
use yrd_domain::roles::{Role, granted_roles};
use yrd_domain::{AgencyId, AgencyIdentity, Profile};

use super::*;

mod accepted;
mod issuing;
mod jwks;
mod persistence;
mod refusals;
mod rotation;

/// 2025-06-15T14:13:20Z, an arbitrary fixed "now".
pub(super) const T0: i64 = 1_750_000_000;

pub(super) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).expect("time in range")
}

/// The hex SHA-256 of a stand-in certificate, as the identity layer would give it.
pub(super) fn fingerprint(cert: &str) -> String {
    hex::encode(Sha256::digest(cert.as_bytes()))
}

pub(super) struct Fixture {
    pub(super) settings: TokenSettings,
    pub(super) ring: KeyRing,
    pub(super) identity: AgencyIdentity,
}

impl Fixture {
    pub(super) fn new() -> Self {
        Fixture {
            settings: TokenSettings::default(),
            ring: KeyRing::generate(at(T0 - 3600)).expect("key generation"),
            identity: AgencyIdentity {
                agency: AgencyId::parse("370000-AMR").expect("agency id"),
                profile: Profile::System,
                cert_fingerprint: fingerprint("certificate A"),
            },
        }
    }

    pub(super) fn issue_at(&self, now: OffsetDateTime) -> IssuedToken {
        TokenIssuer::new(&self.settings, &self.ring)
            .issue(
                &self.identity,
                &granted_roles(Profile::System, false),
                Some("SD-ZF-0042"),
                now,
                MAX_TOKEN_LIFETIME,
            )
            .expect("token issued")
    }

    /// A token granting `roles` for `lifetime` from [`T0`], with no acting officer.
    pub(super) fn issue_without_officer(
        &self,
        roles: &[Role],
        lifetime: time::Duration,
    ) -> IssuedToken {
        TokenIssuer::new(&self.settings, &self.ring)
            .issue(&self.identity, roles, None, at(T0), lifetime)
            .expect("issued")
    }

    fn verify_at(&self, token: &str, now: OffsetDateTime) -> Result<VerifiedToken, TokenRefusal> {
        TokenVerifier::new(&self.settings, &self.ring).verify(
            token,
            &self.identity.cert_fingerprint,
            now,
        )
    }

    /// Why `token` is refused at `T0`, or `None` when it is accepted.
    fn refusal(&self, token: &str) -> Option<TokenRefusal> {
        self.verify_at(token, at(T0)).err()
    }

    /// A token issued at `T0` under `settings` (another issuer or audience than the
    /// verifier's), with the `ReadResults` role and no officer.
    fn issue_under(&self, settings: &TokenSettings) -> IssuedToken {
        TokenIssuer::new(settings, &self.ring)
            .issue(
                &self.identity,
                &[Role::ReadResults],
                None,
                at(T0),
                MAX_TOKEN_LIFETIME,
            )
            .expect("issued")
    }

    /// Claims of a good token issued at `T0`, as JSON to tamper with.
    fn claims_json(&self) -> serde_json::Value {
        json!({
            "iss": DEFAULT_ISSUER,
            "sub": "spiffe://yrd-exchange/agency/370000-AMR/system",
            "aud": DEFAULT_AUDIENCE,
            "exp": T0 + 600,
            "iat": T0,
            "nbf": T0,
            "jti": "6f1c1b3e-5d0a-4c39-9a55-0d6d0c3f3f10",
            "roles": ["results:read"],
            "cnf": { "x5t#S256": x5t_s256_from_hex(&self.identity.cert_fingerprint).expect("fp") },
            "agency": "370000-AMR",
            "profile": "system",
        })
    }

    /// `claims` signed with the ring's current key (ES256, right kid).
    fn sign(&self, claims: &serde_json::Value) -> String {
        self.ring
            .signing_key(at(T0))
            .expect("active key")
            .sign(claims)
            .expect("signed")
    }
}

fn b64_json(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}
