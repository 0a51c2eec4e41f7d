//! The exchange log's signing keys: one ring of ES256 keys, each for one purpose — receipts
//! ([`LogKeyPurpose::Receipt`]) or tree heads ([`LogKeyPurpose::TreeHead`]) — with its
//! validity window.
//!
//! # Why it is shaped so
//!
//! `token.proto` tells a verifier to accept a key only for its purpose, so receipts and tree
//! heads are signed by different keys, published with their purpose by `TokenService.GetJwks`.
//! Keys rotate with an overlap, but unlike access tokens (which live ten minutes) receipts and
//! tree heads must stay verifiable forever: a key is never dropped from the ring, its window
//! only closes. A key signs from `not_before` until a successor takes over and verifies what
//! was signed inside `[not_before, not_after)`; a verifier refuses a signature whose own
//! timestamp lies outside the window of the key it names, so a leaked retired key cannot sign
//! new objects that pass.
//!
//! Until issue 16 one key signed both; that legacy key is kept with both purposes and a window
//! that ends when the dedicated keys took over, which is exactly what it signed.
//!
//! The ring is a plain value; [`SharedLogKeys`] holds the current one behind an `ArcSwap` so
//! the signers (every write's receipt, the sequencer's tree heads) read it without a lock
//! while a background task swaps in a reloaded ring. Window bounds are whole seconds, so a
//! signed timestamp at millisecond precision never falls before the window of the key that
//! chose it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use time::OffsetDateTime;

use crate::Es256Key;

/// What a log key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogKeyPurpose {
    /// Receipts of writes (`Receipt.signature`).
    Receipt,
    /// Signed tree heads of the exchange log (`SignedTreeHead.signature`).
    TreeHead,
}

impl LogKeyPurpose {
    /// The purpose as the contract names it, e.g. `KEY_PURPOSE_RECEIPT`.
    pub fn contract_name(self) -> &'static str {
        match self {
            LogKeyPurpose::Receipt => "KEY_PURPOSE_RECEIPT",
            LogKeyPurpose::TreeHead => "KEY_PURPOSE_TREE_HEAD",
        }
    }
}

/// One log key with its purposes and validity window.
#[derive(Debug, Clone)]
pub struct LogKey {
    key: Arc<Es256Key>,
    /// What it signs: one purpose, or both for the legacy key.
    purposes: Vec<LogKeyPurpose>,
    /// Start of the window: it signs (and its signatures verify) from this time.
    not_before: OffsetDateTime,
    /// End of the window (exclusive), set once a successor exists.
    not_after: Option<OffsetDateTime>,
}

impl LogKey {
    /// A key for `purposes`, valid from `not_before` until `not_after` (open while `None`).
    pub fn new(
        key: Es256Key,
        purposes: &[LogKeyPurpose],
        not_before: OffsetDateTime,
        not_after: Option<OffsetDateTime>,
    ) -> LogKey {
        LogKey {
            key: Arc::new(key),
            purposes: purposes.to_vec(),
            not_before,
            not_after,
        }
    }

    /// The key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// The key pair.
    pub fn key(&self) -> &Es256Key {
        &self.key
    }

    /// What it signs.
    pub fn purposes(&self) -> &[LogKeyPurpose] {
        &self.purposes
    }

    /// Whether it signs `purpose` objects.
    pub fn serves(&self, purpose: LogKeyPurpose) -> bool {
        self.purposes.contains(&purpose)
    }

    /// Start of its window.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of its window (exclusive); `None` while it has no successor.
    pub fn not_after(&self) -> Option<OffsetDateTime> {
        self.not_after
    }

    /// Whether a signature made at `at` lies inside its window.
    pub fn covers(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && self.not_after.is_none_or(|end| at < end)
    }

    /// Whether its window has closed by `now`: it signs nothing more, but stays published.
    pub fn is_retired(&self, now: OffsetDateTime) -> bool {
        self.not_after.is_some_and(|end| end <= now)
    }
}

/// Why a set of log keys is not a usable ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogKeyRingError {
    /// No key signs this purpose.
    #[error("the exchange log has no {} signing key", .0.contract_name())]
    NoKeyFor(LogKeyPurpose),
}

/// Every log key, oldest first; never pruned.
#[derive(Debug, Clone)]
pub struct LogKeyRing {
    keys: Vec<LogKey>,
}

impl LogKeyRing {
    /// A ring of `keys` (any order); refuses a set that lacks a key for either purpose, so a
    /// ring can always sign.
    pub fn new(mut keys: Vec<LogKey>) -> Result<LogKeyRing, LogKeyRingError> {
        for purpose in [LogKeyPurpose::Receipt, LogKeyPurpose::TreeHead] {
            if !keys.iter().any(|k| k.serves(purpose)) {
                return Err(LogKeyRingError::NoKeyFor(purpose));
            }
        }
        keys.sort_by(|a, b| (a.not_before, a.kid()).cmp(&(b.not_before, b.kid())));
        Ok(LogKeyRing { keys })
    }

    /// A ring of one key for both purposes, valid from `now` (tests and tools).
    pub fn single(key: Es256Key, now: OffsetDateTime) -> LogKeyRing {
        LogKeyRing {
            keys: vec![LogKey::new(
                key,
                &[LogKeyPurpose::Receipt, LogKeyPurpose::TreeHead],
                now,
                None,
            )],
        }
    }

    /// Every key, oldest first, retired ones included.
    pub fn keys(&self) -> &[LogKey] {
        &self.keys
    }

    /// The key that signs `purpose` objects at `at`: the newest whose window covers `at`.
    /// Should none cover it (a clock set back before every window, or a successor not yet
    /// loaded past the overlap) it is the newest key of the purpose already active, else the
    /// oldest one: the signature is still made, and a verifier checking windows tells.
    pub fn signing_key(&self, purpose: LogKeyPurpose, at: OffsetDateTime) -> &LogKey {
        let serving = || self.keys.iter().filter(move |k| k.serves(purpose));
        serving()
            .rev()
            .find(|k| k.covers(at))
            .or_else(|| serving().rev().find(|k| k.not_before <= at))
            .or_else(|| serving().next())
            // `new` and `single` guarantee a key for every purpose.
            .unwrap_or(&self.keys[0])
    }

    /// The newest key of `purpose` (the one a rotation succeeds).
    pub fn newest(&self, purpose: LogKeyPurpose) -> Option<&LogKey> {
        self.keys.iter().rev().find(|k| k.serves(purpose))
    }
}

/// The current ring, swapped whole when reloaded; read lock-free by every signer.
#[derive(Debug)]
pub struct SharedLogKeys {
    ring: ArcSwap<LogKeyRing>,
}

impl SharedLogKeys {
    /// Holds `ring`.
    pub fn new(ring: LogKeyRing) -> SharedLogKeys {
        SharedLogKeys {
            ring: ArcSwap::from_pointee(ring),
        }
    }

    /// The ring as it stands.
    pub fn ring(&self) -> Arc<LogKeyRing> {
        self.ring.load_full()
    }

    /// Swaps in a reloaded ring.
    pub fn replace(&self, ring: LogKeyRing) {
        self.ring.store(Arc::new(ring));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("time")
    }

    fn key(purpose: LogKeyPurpose, from: i64, to: Option<i64>) -> LogKey {
        LogKey::new(Es256Key::generate(), &[purpose], at(from), to.map(at))
    }

    #[test]
    fn a_ring_needs_a_key_for_each_purpose() {
        assert_eq!(
            LogKeyRing::new(vec![key(LogKeyPurpose::Receipt, 0, None)]).err(),
            Some(LogKeyRingError::NoKeyFor(LogKeyPurpose::TreeHead))
        );
        let err = LogKeyRing::new(vec![key(LogKeyPurpose::TreeHead, 0, None)])
            .expect_err("no receipt key");
        assert_eq!(
            err.to_string(),
            "the exchange log has no KEY_PURPOSE_RECEIPT signing key"
        );
    }

    #[test]
    fn each_purpose_signs_with_its_own_key_and_hands_over_at_the_successors_activation() {
        let old_receipt = key(LogKeyPurpose::Receipt, 0, Some(160));
        let new_receipt = key(LogKeyPurpose::Receipt, 100, None);
        let head = key(LogKeyPurpose::TreeHead, 0, None);
        let ring = LogKeyRing::new(vec![new_receipt.clone(), head.clone(), old_receipt.clone()])
            .expect("ring");
        assert_eq!(ring.keys()[0].not_before(), at(0));
        assert_eq!(
            ring.signing_key(LogKeyPurpose::TreeHead, at(50)).kid(),
            head.kid()
        );
        // Before the successor's activation the old key signs; from it on, the new one,
        // although the old window stays open for the overlap.
        assert_eq!(
            ring.signing_key(LogKeyPurpose::Receipt, at(99)).kid(),
            old_receipt.kid()
        );
        assert_eq!(
            ring.signing_key(LogKeyPurpose::Receipt, at(100)).kid(),
            new_receipt.kid()
        );
        assert_eq!(
            ring.newest(LogKeyPurpose::Receipt).map(LogKey::kid),
            Some(new_receipt.kid())
        );
    }

    #[test]
    fn windows_are_half_open_and_retirement_follows_the_end() {
        let k = key(LogKeyPurpose::Receipt, 10, Some(20));
        assert!(!k.covers(at(10) - Duration::milliseconds(1)));
        assert!(k.covers(at(10)));
        assert!(k.covers(at(20) - Duration::milliseconds(1)));
        assert!(!k.covers(at(20)));
        assert!(!k.is_retired(at(19)));
        assert!(k.is_retired(at(20)));
        assert!(!key(LogKeyPurpose::Receipt, 10, None).is_retired(at(1_000_000)));
    }

    #[test]
    fn the_legacy_key_serves_both_purposes() {
        let ring = LogKeyRing::single(Es256Key::generate(), at(0));
        let kid = ring.keys()[0].kid().to_owned();
        assert_eq!(ring.signing_key(LogKeyPurpose::Receipt, at(5)).kid(), kid);
        assert_eq!(ring.signing_key(LogKeyPurpose::TreeHead, at(5)).kid(), kid);
        // A time before every window still gets a key (the verifier's window check tells).
        assert_eq!(ring.signing_key(LogKeyPurpose::Receipt, at(-5)).kid(), kid);
    }

    #[test]
    fn the_shared_ring_is_swapped_whole() {
        let shared = SharedLogKeys::new(LogKeyRing::single(Es256Key::generate(), at(0)));
        let before = shared.ring().keys()[0].kid().to_owned();
        shared.replace(LogKeyRing::single(Es256Key::generate(), at(0)));
        assert_ne!(shared.ring().keys()[0].kid(), before);
    }
}
