//! Checking a bearer token on every call: signature, issuer, audience, time, and that it is
//! bound to the certificate of *this* connection.
//!
//! # Order of checks, and why
//!
//! 1. Shape: three base64url parts, a JSON header.
//! 2. **Algorithm first**: the header's `alg` must be exactly `ES256`, before any key is looked
//!    up or any signature computed. This is what stops `alg: none` and the HS256 confusion
//!    attack (a token MAC'd with the public key as HMAC secret) without relying on a library's
//!    defaults; jsonwebtoken cannot even parse `none`, so the header is read here by hand.
//! 3. The `kid` must name a key of the ring that still verifies at `now`.
//! 4. The signature (jsonwebtoken `decode`, ES256 only, all of its claim checks switched off:
//!    they read the system clock, and the exchange's clock is injected).
//! 5. `iss`, `aud`, `exp` (no leeway), `nbf`/`iat` (up to [`CLOCK_SKEW_LEEWAY`] ahead), the
//!    certificate binding `cnf.x5t#S256`, and the coherence of `sub`, `agency`, `profile`
//!    and `act`.
//!
//! Every refusal is a [`TokenRefusal`] whose message says what is wrong with the token without
//! echoing it, the key ids or the expected values.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use time::OffsetDateTime;
use yrd_domain::roles::Role;
use yrd_domain::{AgencyId, Profile, SpiffeId};

use super::claims::{Claims, OfficerId, x5t_s256_from_hex};
use super::keys::KeyRing;
use super::{CLOCK_SKEW_LEEWAY, TokenSettings};

/// Why a token was refused. The gateway answers each with `UNAUTHENTICATED` and this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// No token, or not a well-formed JWT of the exchange; the reason names the defect.
    #[error("access token is malformed: {0}")]
    Malformed(&'static str),
    /// The `kid` names no key the exchange accepts now (unknown, or retired after rotation).
    #[error("access token is signed with a key the exchange does not accept (unknown or retired)")]
    UnknownKey,
    /// The signature does not verify with the key named.
    #[error("access token signature does not verify")]
    BadSignature,
    /// The header's `alg` is not `ES256` (e.g. `none`, `HS256`).
    #[error("access token must be signed with ES256")]
    WrongAlgorithm,
    /// The `iss` is not this exchange.
    #[error("access token was issued by another issuer")]
    WrongIssuer,
    /// The `aud` is not this exchange.
    #[error("access token is meant for another audience")]
    WrongAudience,
    /// `now` is at or after `exp`.
    #[error("access token has expired; request a new one")]
    Expired,
    /// `nbf` or `iat` lies more than the tolerated clock skew after `now`.
    #[error("access token is not valid yet")]
    NotYetValid,
    /// `cnf.x5t#S256` is not the thumbprint of this connection's client certificate: a token
    /// issued to another certificate.
    #[error("access token is bound to another client certificate than this connection's")]
    CertificateMismatch,
    /// The token has no `cnf` binding at all.
    #[error("access token is not bound to a client certificate (no cnf claim)")]
    MissingBinding,
}

impl TokenRefusal {
    /// A stable short code for logs, metrics and the audit entry's outcome.
    pub fn code(&self) -> &'static str {
        match self {
            TokenRefusal::Malformed(_) => "malformed",
            TokenRefusal::UnknownKey => "unknown_key",
            TokenRefusal::BadSignature => "bad_signature",
            TokenRefusal::WrongAlgorithm => "wrong_algorithm",
            TokenRefusal::WrongIssuer => "wrong_issuer",
            TokenRefusal::WrongAudience => "wrong_audience",
            TokenRefusal::Expired => "expired",
            TokenRefusal::NotYetValid => "not_yet_valid",
            TokenRefusal::CertificateMismatch => "certificate_mismatch",
            TokenRefusal::MissingBinding => "missing_binding",
        }
    }
}

/// A token that passed every check, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The claims as signed (`cnf` for the revocation check, `jti` for the audit log).
    pub claims: Claims,
    /// The calling agency.
    pub agency: AgencyId,
    /// The profile of the certificate the token was issued to.
    pub profile: Profile,
    /// The roles the token carries. Role names this build does not know are left out: they
    /// cannot authorize any method it serves, and refusing the whole token for them would
    /// break tokens across a rolling upgrade.
    pub roles: Vec<Role>,
    /// The acting officer (`act.sub`), when the partner named one.
    pub officer: Option<OfficerId>,
    /// The key that signed the token.
    pub kid: String,
}

impl VerifiedToken {
    /// True when the token carries `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Checks access tokens against the ring's keys and the exchange's names. A cheap borrowed
/// view: build one per call.
#[derive(Debug, Clone)]
pub struct TokenVerifier<'a> {
    settings: &'a TokenSettings,
    keys: &'a KeyRing,
    /// ES256 only, signature only: every claim check is done here against the injected clock.
    validation: Validation,
}

impl<'a> TokenVerifier<'a> {
    /// A verifier demanding `settings`' `iss`/`aud` and a signature by a key of `keys`.
    pub fn new(settings: &'a TokenSettings, keys: &'a KeyRing) -> Self {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        validation.leeway = 0;
        TokenVerifier {
            settings,
            keys,
            validation,
        }
    }

    /// Verifies `token` (the text after `Bearer `) presented on a connection whose client
    /// certificate has SHA-256 `connection_cert_fingerprint_hex` (hex, as the identity layer
    /// gives it), at `now`. Revocation of the certificate is not checked here.
    pub fn verify(
        &self,
        token: &str,
        connection_cert_fingerprint_hex: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedToken, TokenRefusal> {
        if token.is_empty() {
            return Err(TokenRefusal::Malformed("no token"));
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, _, _] = parts[..] else {
            return Err(TokenRefusal::Malformed(
                "a JWT has three dot-separated parts",
            ));
        };
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| TokenRefusal::Malformed("header is not base64url"))?;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header_bytes)
                .map_err(|_| TokenRefusal::Malformed("header is not a JSON object"))?;
        let alg = header
            .get("alg")
            .and_then(serde_json::Value::as_str)
            .ok_or(TokenRefusal::Malformed("header has no alg"))?;
        if alg != "ES256" {
            return Err(TokenRefusal::WrongAlgorithm);
        }
        if header.contains_key("crit") {
            return Err(TokenRefusal::Malformed(
                "header names critical extensions the exchange does not support",
            ));
        }
        let kid = header
            .get("kid")
            .and_then(serde_json::Value::as_str)
            .ok_or(TokenRefusal::Malformed("header has no kid"))?;
        let key = self
            .keys
            .verifying_key(kid, now)
            .ok_or(TokenRefusal::UnknownKey)?;

        let data = jsonwebtoken::decode::<Claims>(token, key.decoding_key(), &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => TokenRefusal::BadSignature,
                ErrorKind::InvalidAlgorithm => TokenRefusal::WrongAlgorithm,
                ErrorKind::Base64(_) => TokenRefusal::Malformed("a part is not base64url"),
                ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    TokenRefusal::Malformed("claims are not those of an exchange token")
                }
                _ => TokenRefusal::Malformed("token does not decode"),
            })?;
        let claims = data.claims;

        if claims.iss != self.settings.issuer {
            return Err(TokenRefusal::WrongIssuer);
        }
        if claims.aud != self.settings.audience {
            return Err(TokenRefusal::WrongAudience);
        }
        check_times(&claims, now)?;
        let cnf = claims.cnf.as_ref().ok_or(TokenRefusal::MissingBinding)?;
        let connection = x5t_s256_from_hex(connection_cert_fingerprint_hex)
            .map_err(|_| TokenRefusal::CertificateMismatch)?;
        if cnf.x5t_s256 != connection {
            return Err(TokenRefusal::CertificateMismatch);
        }
        if claims.sub != SpiffeId::new(claims.agency.clone(), claims.profile).to_uri() {
            return Err(TokenRefusal::Malformed(
                "sub does not name the token's agency and profile",
            ));
        }
        let officer = claims
            .act
            .as_ref()
            .map(|a| OfficerId::parse(&a.sub))
            .transpose()
            .map_err(|_| TokenRefusal::Malformed("act.sub is not a valid officer id"))?;
        let roles = claims
            .roles
            .iter()
            .filter_map(|r| Role::parse(r).ok())
            .collect();
        Ok(VerifiedToken {
            agency: claims.agency.clone(),
            profile: claims.profile,
            roles,
            officer,
            kid: key.kid().to_owned(),
            claims,
        })
    }

    /// Checks again what may have changed since `token` was verified at an earlier instant:
    /// that its key is still one the ring accepts at `now` and that `now` lies inside its
    /// validity. The signature, issuer, audience and binding cannot change and are not
    /// checked again. Used by the token cache (`VerifiedTokens`).
    pub fn still_valid(
        &self,
        token: &VerifiedToken,
        now: OffsetDateTime,
    ) -> Result<(), TokenRefusal> {
        self.keys
            .verifying_key(&token.kid, now)
            .ok_or(TokenRefusal::UnknownKey)?;
        check_times(&token.claims, now)
    }
}

/// `exp` (no leeway) and `nbf`/`iat` (up to [`CLOCK_SKEW_LEEWAY`] ahead) against `now`.
fn check_times(claims: &Claims, now: OffsetDateTime) -> Result<(), TokenRefusal> {
    if now.unix_timestamp() >= claims.exp {
        return Err(TokenRefusal::Expired);
    }
    let latest = (now + CLOCK_SKEW_LEEWAY).unix_timestamp();
    if claims.nbf > latest || claims.iat > latest {
        return Err(TokenRefusal::NotYetValid);
    }
    Ok(())
}
