//! Certificate-bound access tokens: the exchange's signing keys, issuing a token to an agency
//! system, and the check the gateway's token layer runs on every call.
//!
//! # Why tokens on top of mTLS
//!
//! The handshake proves which certificate is on the other end of the connection, not what that
//! system may do right now. A short-lived token (≤ [`MAX_TOKEN_LIFETIME`]) carries the roles of
//! the agency and profile, the officer acting (`act`, RFC 8693) for the audit log, and is bound
//! to the very certificate it was issued over (`cnf.x5t#S256`, RFC 8705): a token copied off one
//! system is useless on a connection made with any other certificate.
//!
//! # Shape
//!
//! * [`keys`] — ES256 (P-256) signing keys named by their RFC 7638 thumbprint, the [`KeyRing`]
//!   that rotates them with an overlap, and the JWKS (RFC 7517) that publishes them.
//! * [`claims`] — the JWT claims, the officer id and the certificate thumbprint conversion.
//! * [`issue`] — [`TokenIssuer`]: identity + roles + officer → signed token.
//! * [`verify`] — [`TokenVerifier`]: token + this connection's certificate → the caller's
//!   roles, or a [`TokenRefusal`] naming the one defect found.
//! * [`cache`] — [`VerifiedTokens`]: a token's signature checked once, its time and key on
//!   every call.
//!
//! Everything is pure: no I/O, no async, and time is always passed in (`now`), never read from
//! the system clock, so tests drive expiry and key rotation with a manual clock. Storage of the
//! keys (several replicas share them) belongs to the store: [`StoredSigningKey`] is what it
//! persists. Revocation is not checked here either; the gateway asks the store with the
//! certificate thumbprint it already holds (also in [`Claims::cnf`]).
//!
//! Issuer and verifier borrow a [`KeyRing`] instead of owning one, so the gateway can keep the
//! ring behind whatever swappable pointer it likes and build either view per call for free.

pub mod cache;
pub mod claims;
pub mod issue;
pub mod keys;
pub mod untrusted;
pub mod verify;

#[cfg(test)]
mod tests;

use time::Duration;

pub use cache::VerifiedTokens;
pub use claims::{Actor, ClaimError, Claims, Confirmation, OfficerId, x5t_s256_from_hex};
pub use issue::{IssueError, IssuedToken, TokenIssuer};
pub use keys::{Jwk, Jwks, KeyError, KeyRing, SigningKey, StoredSigningKey};
pub use verify::{TokenRefusal, TokenVerifier, VerifiedToken};

/// The longest an access token may live; longer requested lifetimes are cut to this.
///
/// It also fixes the key-rotation overlap: a retired key keeps verifying for this long after
/// its successor starts signing, which covers every token it signed.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::minutes(10);

/// Clock skew tolerated between replicas (and partners) for `nbf` and `iat`: a token whose
/// `nbf` or `iat` lies up to 30 s after the verifier's `now` is still accepted. `exp` has no
/// leeway: a token is refused from the second of its `exp` on (RFC 7519 §4.1.4).
pub const CLOCK_SKEW_LEEWAY: Duration = Duration::seconds(30);

/// The default `iss` of the exchange's tokens.
pub const DEFAULT_ISSUER: &str = "yrd-exchange";

/// The default `aud` of the exchange's tokens.
pub const DEFAULT_AUDIENCE: &str = "yrd-exchange";

/// The names the exchange signs into its tokens and demands back. Configuration: the defaults
/// serve the embedded case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `iss` written into every token and required of every token verified.
    pub issuer: String,
    /// `aud` written into every token and required of every token verified. The
    /// `IssueTokenRequest.audience` of the contract may only repeat it: the exchange is the
    /// only party that accepts its tokens, so the handler refuses any other audience asked for.
    pub audience: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
        }
    }
}
