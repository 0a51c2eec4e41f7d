//! Issuing an access token to the agency system on the other end of an mTLS connection
//! (client-credentials style, RFC 8705): the identity layer says who it is, the roles table
//! says what it may do, and the token says both, bound to that certificate.
//!
//! What the caller decides before calling: the roles (from
//! [`yrd_domain::roles::granted_roles`], which needs to know whether the agency is the operator)
//! and whether the certificate is revoked (a store question). What is decided here: the
//! lifetime cap, the officer id's validity and the claims.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use yrd_domain::roles::Role;
use yrd_domain::{AgencyIdentity, SpiffeId};

use super::claims::{Actor, ClaimError, Claims, Confirmation, OfficerId, x5t_s256_from_hex};
use super::keys::{KeyError, KeyRing};
use super::{MAX_TOKEN_LIFETIME, TokenSettings};

/// Why no token was issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The requested lifetime is zero or negative (whole seconds).
    #[error("token lifetime must be at least one second, got {0}")]
    NonPositiveLifetime(Duration),
    /// The agency and profile are granted no role, so a token could authorize nothing (an
    /// admin certificate of an agency other than the operator).
    #[error("the {0} certificate of {1} is granted no role at this exchange")]
    NoRoles(&'static str, String),
    /// The officer id or the certificate fingerprint was refused.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// No key could sign (none active, or signing failed).
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A freshly signed access token and what the `IssueTokenResponse` reports of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT, sent as `authorization: Bearer <token>`.
    pub token: String,
    /// Its `iat` (whole seconds).
    pub issued_at: OffsetDateTime,
    /// Its `exp` (whole seconds).
    pub expires_at: OffsetDateTime,
    /// The id of the key that signed it (`kid` header).
    pub kid: String,
    /// Its unique id (`jti` claim).
    pub jti: Uuid,
    /// The roles it carries, in the order given, without duplicates.
    pub roles: Vec<Role>,
}

impl IssuedToken {
    /// Lifetime from issue in whole seconds (OAuth 2.0 `expires_in`).
    pub fn expires_in_seconds(&self) -> i64 {
        (self.expires_at - self.issued_at).whole_seconds()
    }
}

/// Signs access tokens with the ring's current key. A cheap borrowed view: build one per call.
#[derive(Debug, Clone, Copy)]
pub struct TokenIssuer<'a> {
    settings: &'a TokenSettings,
    keys: &'a KeyRing,
}

impl<'a> TokenIssuer<'a> {
    /// An issuer writing `settings`' `iss`/`aud`, signing with `keys`.
    pub fn new(settings: &'a TokenSettings, keys: &'a KeyRing) -> Self {
        TokenIssuer { settings, keys }
    }

    /// Issues a token to `identity` carrying `roles` and, when given, the acting `officer`.
    ///
    /// The lifetime is cut to [`MAX_TOKEN_LIFETIME`] and counted in whole seconds from `now`
    /// (truncated to the second). Refuses a non-positive lifetime, an empty role list, an
    /// officer id that is not 1–64 printable characters, and an identity whose fingerprint is
    /// not a hex SHA-256.
    pub fn issue(
        &self,
        identity: &AgencyIdentity,
        roles: &[Role],
        officer: Option<&str>,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<IssuedToken, IssueError> {
        let seconds = lifetime.min(MAX_TOKEN_LIFETIME).whole_seconds();
        if seconds <= 0 {
            return Err(IssueError::NonPositiveLifetime(lifetime));
        }
        let mut granted: Vec<Role> = Vec::with_capacity(roles.len());
        for role in roles {
            if !granted.contains(role) {
                granted.push(*role);
            }
        }
        if granted.is_empty() {
            return Err(IssueError::NoRoles(
                identity.profile.as_str(),
                identity.agency.to_string(),
            ));
        }
        let officer = officer.map(OfficerId::parse).transpose()?;
        let x5t = x5t_s256_from_hex(&identity.cert_fingerprint)?;
        let key = self.keys.signing_key(now)?;

        let iat = now.unix_timestamp();
        let exp = iat + seconds;
        let jti = Uuid::new_v4();
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: SpiffeId::new(identity.agency.clone(), identity.profile).to_uri(),
            aud: self.settings.audience.clone(),
            exp,
            iat,
            nbf: iat,
            jti,
            roles: granted.iter().map(|r| r.as_str().to_owned()).collect(),
            act: officer.map(|o| Actor {
                sub: o.as_str().to_owned(),
            }),
            cnf: Some(Confirmation { x5t_s256: x5t }),
            agency: identity.agency.clone(),
            profile: identity.profile,
        };
        let token = key.sign(&claims)?;
        let issued_at = now - Duration::nanoseconds(i64::from(now.nanosecond()));
        Ok(IssuedToken {
            token,
            issued_at,
            expires_at: issued_at + Duration::seconds(seconds),
            kid: key.kid().to_owned(),
            jti,
            roles: granted,
        })
    }
}
