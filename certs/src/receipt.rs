//! Receipts: the exchange's signed promise that a call's audit leaf will be covered by a signed
//! tree head within the maximum merge delay. Signed with the log key; with a receipt and a later
//! tree head a partner fetches an inclusion proof and checks it on its own.
//!
//! The signed bytes are `yrd_domain::audit::receipt_signing_input` (the layout `common.proto`
//! documents on `Receipt`).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use yrd_domain::audit::receipt_signing_input;
use yrd_domain::merkle::Hash;

use crate::{Es256Key, PkiError, verify_es256};

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
    /// The log key's id.
    pub key_id: String,
}

/// Signs receipts with the log key.
#[derive(Debug, Clone)]
pub struct ReceiptSigner {
    key: Arc<Es256Key>,
    max_merge_delay: Duration,
}

impl ReceiptSigner {
    /// Receipts promising inclusion within `max_merge_delay`.
    pub fn new(key: Arc<Es256Key>, max_merge_delay: Duration) -> Self {
        ReceiptSigner {
            key,
            max_merge_delay,
        }
    }

    /// The receipt of the leaf with `leaf_hash`, accepted at `at` (millisecond precision).
    pub fn sign(&self, leaf_hash: &Hash, at: OffsetDateTime) -> SignedReceipt {
        let timestamp_ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let max_merge_delay_ms =
            u64::try_from(self.max_merge_delay.as_millis()).unwrap_or(u64::MAX);
        let signature = self.key.sign_der(&receipt_signing_input(
            leaf_hash,
            timestamp_ms,
            max_merge_delay_ms,
        ));
        SignedReceipt {
            leaf_hash: *leaf_hash,
            timestamp_ms,
            max_merge_delay_ms,
            signature,
            key_id: self.key.kid().to_owned(),
        }
    }
}

impl SignedReceipt {
    /// Checks the signature against the log key's public coordinates (JWK `x`, `y`).
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

    #[test]
    fn a_receipt_verifies_and_a_changed_one_does_not() {
        let key = Arc::new(Es256Key::generate());
        let signer = ReceiptSigner::new(key.clone(), Duration::from_secs(5));
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let mut receipt = signer.sign(&Hash([3; 32]), at);
        let (x, y) = key.public_coordinates();
        assert!(receipt.verify(x, y).is_ok());
        receipt.leaf_hash = Hash([4; 32]);
        assert!(receipt.verify(x, y).is_err());
    }
}
