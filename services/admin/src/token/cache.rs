//! Verified tokens remembered between calls, so that a token's ES256 signature is checked once
//! and not on every call that presents it.
//!
//! A partner system sends the same token on every call until it renews it (at most
//! [`MAX_TOKEN_LIFETIME`](super::MAX_TOKEN_LIFETIME)), and verifying a P-256 signature is the
//! most expensive thing the token layer does. An entry is keyed by the token's exact text and
//! remembers the certificate it was verified for; on a hit only what can change with time is
//! checked again ([`TokenVerifier::still_valid`]): that the signing key is still accepted
//! (a retired or removed key ends its tokens at once) and that the token has not expired.
//! A token presented over another certificate's connection is never answered from the cache.
//! Revocation and suspension are not token properties: the identity layer checks them on every
//! call, cached or not.

use quick_cache::sync::Cache;
use time::OffsetDateTime;

use super::{TokenRefusal, TokenVerifier, VerifiedToken};

/// The default number of tokens remembered: far more than the live tokens of every agency
/// system of the Delta, and small (a few MB at most).
pub const DEFAULT_CAPACITY: usize = 4096;

/// Tokens that verified, by their text. Shared by every call; cheap to consult.
#[derive(Debug)]
pub struct VerifiedTokens {
    cache: Cache<String, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The connection certificate (hex SHA-256) it verified for.
    fingerprint: String,
    token: VerifiedToken,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        VerifiedTokens::new(DEFAULT_CAPACITY)
    }
}

impl VerifiedTokens {
    /// A cache remembering at most `capacity` tokens (the least used go first).
    pub fn new(capacity: usize) -> Self {
        VerifiedTokens {
            cache: Cache::new(capacity.max(1)),
        }
    }

    /// As [`TokenVerifier::verify`], answered from the cache when `token` verified before for
    /// the same certificate and is still within its validity under a key still accepted.
    pub fn verify(
        &self,
        verifier: &TokenVerifier<'_>,
        token: &str,
        connection_cert_fingerprint_hex: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedToken, TokenRefusal> {
        if let Some(entry) = self.cache.get(token) {
            if entry.fingerprint == connection_cert_fingerprint_hex {
                return match verifier.still_valid(&entry.token, now) {
                    Ok(()) => Ok(entry.token),
                    Err(refusal) => {
                        self.cache.remove(token);
                        Err(refusal)
                    }
                };
            }
        }
        let verified = verifier.verify(token, connection_cert_fingerprint_hex, now)?;
        self.cache.insert(
            token.to_owned(),
            Entry {
                fingerprint: connection_cert_fingerprint_hex.to_owned(),
                token: verified.clone(),
            },
        );
        Ok(verified)
    }

    /// How many tokens are remembered now.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// True when no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::KeyRing;
    use crate::token::tests::{Fixture, T0, at, fingerprint};

    fn verify(
        f: &Fixture,
        cache: &VerifiedTokens,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedToken, TokenRefusal> {
        let verifier = TokenVerifier::new(&f.settings, &f.ring);
        cache.verify(&verifier, token, &f.identity.cert_fingerprint, now)
    }

    #[test]
    fn a_verified_token_is_remembered_and_answered_the_same() {
        let f = Fixture::new();
        let cache = VerifiedTokens::default();
        let issued = f.issue_at(at(T0));
        let first = verify(&f, &cache, &issued.token, at(T0)).expect("verifies");
        assert_eq!(cache.len(), 1);
        let again = verify(&f, &cache, &issued.token, at(T0 + 1)).expect("cached");
        assert_eq!(first, again);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_remembered_token_still_expires_at_its_exp() {
        let f = Fixture::new();
        let cache = VerifiedTokens::default();
        let issued = f.issue_at(at(T0));
        assert!(verify(&f, &cache, &issued.token, at(T0)).is_ok());
        assert!(verify(&f, &cache, &issued.token, at(T0 + 599)).is_ok());
        assert_eq!(
            verify(&f, &cache, &issued.token, at(T0 + 600)),
            Err(TokenRefusal::Expired)
        );
        assert!(cache.is_empty(), "an expired token is forgotten");
    }

    #[test]
    fn a_remembered_token_is_refused_once_its_key_is_gone() {
        let f = Fixture::new();
        let cache = VerifiedTokens::default();
        let issued = f.issue_at(at(T0));
        assert!(verify(&f, &cache, &issued.token, at(T0)).is_ok());
        // The ring as another replica reloaded it: the signing key is no longer in it.
        let rotated = Fixture {
            ring: KeyRing::generate(at(T0 - 3600)).expect("other ring"),
            ..Fixture::new()
        };
        assert_eq!(
            verify(&rotated, &cache, &issued.token, at(T0 + 1)),
            Err(TokenRefusal::UnknownKey)
        );
    }

    #[test]
    fn a_remembered_token_is_not_answered_for_another_certificate() {
        let f = Fixture::new();
        let cache = VerifiedTokens::default();
        let issued = f.issue_at(at(T0));
        assert!(verify(&f, &cache, &issued.token, at(T0)).is_ok());
        let verifier = TokenVerifier::new(&f.settings, &f.ring);
        assert_eq!(
            cache.verify(
                &verifier,
                &issued.token,
                &fingerprint("certificate B"),
                at(T0)
            ),
            Err(TokenRefusal::CertificateMismatch)
        );
    }

    #[test]
    fn a_refused_token_is_not_remembered() {
        let f = Fixture::new();
        let cache = VerifiedTokens::default();
        let issued = f.issue_at(at(T0));
        let mut tampered = issued.token.clone();
        tampered.push('A');
        assert!(verify(&f, &cache, &tampered, at(T0)).is_err());
        assert!(cache.is_empty());
    }
}
