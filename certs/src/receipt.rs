//! Receipts: the exchange's signed promise that a call's audit leaf will be covered by a signed
//! tree head within the maximum merge delay. Signed with the log's receipt key of the moment
//! (`KEY_PURPOSE_RECEIPT`, see [`crate::log_keys`]); with a receipt and a later tree head a
//! partner fetches an inclusion proof and checks it on its own.
//!
//! The signed bytes are `yrd_domain::audit::receipt_signing_input` (the layout `common.proto`
//! documents on `Receipt`).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use yrd_domain::audit::receipt_signing_input;
use yrd_domain::merkle::Hash;

use crate::{LogKeyPurpose, PkiError, SharedLogKeys, verify_es256};

/// A signed receipt, independent of the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceipt {
    /// The leaf hash promised.
    pub leaf_hash: Hash,
    /// When the exchange accepted the call, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The maximum merge delay, milliseconds.
    pub max_merge_delay_ms: u64,
    /// ES256 signature, ASN.1 DER.
    pub signature: Vec<u8>,
    /// The receipt key's id.
    pub key_id: String,
}

/// Signs receipts with the receipt key whose window covers the receipt's time.
#[derive(Debug, Clone)]
pub struct ReceiptSigner {
    keys: Arc<SharedLogKeys>,
    max_merge_delay: Duration,
}

impl ReceiptSigner {
    /// Receipts signed with the receipt keys of `keys`, promising inclusion within
    /// `max_merge_delay`.
    pub fn new(keys: Arc<SharedLogKeys>, max_merge_delay: Duration) -> Self {
        ReceiptSigner {
            keys,
            max_merge_delay,
        }
    }

    /// The receipt of the leaf with `leaf_hash`, accepted at `at` (millisecond precision),
    /// signed by the receipt key of that moment.
    pub fn sign(&self, leaf_hash: &Hash, at: OffsetDateTime) -> SignedReceipt {
        let ring = self.keys.ring();
        let key = ring.signing_key(LogKeyPurpose::Receipt, at).key();
        let timestamp_ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let max_merge_delay_ms =
            u64::try_from(self.max_merge_delay.as_millis()).unwrap_or(u64::MAX);
        let signature = key.sign_der(&receipt_signing_input(
            leaf_hash,
            timestamp_ms,
            max_merge_delay_ms,
        ));
        SignedReceipt {
            leaf_hash: *leaf_hash,
            timestamp_ms,
            max_merge_delay_ms,
            signature,
            key_id: key.kid().to_owned(),
        }
    }
}

impl SignedReceipt {
    /// Checks the signature against the receipt key's public coordinates (JWK `x`, `y`).
    pub fn verify(&self, x: &str, y: &str) -> Result<(), PkiError> {
        verify_es256(
            x,
            y,
            &receipt_signing_input(&self.leaf_hash, self.timestamp_ms, self.max_merge_delay_ms),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Es256Key, LogKeyRing};

    #[test]
    fn a_receipt_verifies_and_a_changed_one_does_not() {
        let key = Es256Key::generate();
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let keys = Arc::new(SharedLogKeys::new(LogKeyRing::single(key.clone(), at)));
        let signer = ReceiptSigner::new(keys, Duration::from_secs(5));
        let mut receipt = signer.sign(&Hash([3; 32]), at);
        assert_eq!(receipt.key_id, key.kid());
        let (x, y) = key.public_coordinates();
        assert!(receipt.verify(x, y).is_ok());
        receipt.leaf_hash = Hash([4; 32]);
        assert!(receipt.verify(x, y).is_err());
    }
}
