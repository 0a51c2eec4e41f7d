//! The exchange's log keys as the auditor's tool trusts them: each key published by
//! `TokenService.GetJwks` only for its purpose (`KEY_PURPOSE_RECEIPT` for receipts,
//! `KEY_PURPOSE_TREE_HEAD` for tree heads) and only for an object whose own signed time lies in
//! the key's published window `[not_before, not_after)`.
//!
//! # Why it is shaped so
//!
//! The exchange rotates its log keys and keeps the retired ones published forever, so a
//! signature alone proves little: a retired key that leaked could still sign. Checking the
//! object's time against the window of the key it names closes that, and checking the purpose
//! keeps a tree-head key from vouching for a receipt (and the reverse). The checks are plain
//! functions over the published JWKS, tested without a server.

use yrd_domain::audit::tree_head_signing_input;
use yrd_domain::merkle::Hash;
use yrd_pki::{SignedReceipt, verify_es256};
use yrd_proto::v1::{self as pb, GetJwksResponse, KeyPurpose, SignedTreeHead};

use crate::audit_check::{VerifiedHead, VerifyFailure};
use crate::audit_entry::micros_rfc3339;

/// The exchange's log keys as `TokenService.GetJwks` publishes them: the keys whose purpose is
/// signing tree heads or receipts, with their validity windows. Access-token keys are kept only
/// to name their purpose when a log object claims one of them: a key is trusted only for its
/// purpose, and only for objects signed inside its window.
#[derive(Debug, Clone, Default)]
pub struct LogKeys {
    keys: Vec<pb::Jwk>,
}

impl LogKeys {
    /// The log keys of a JWKS answer.
    pub fn from_jwks(jwks: &GetJwksResponse) -> LogKeys {
        let keys = jwks
            .keys
            .iter()
            .filter(|k| k.kty == "EC" && k.crv == "P-256")
            .cloned()
            .collect();
        LogKeys { keys }
    }

    /// The same keys, keeping only those published for `purpose` (what a verifier that trusts
    /// one purpose holds).
    pub fn only(&self, purpose: KeyPurpose) -> LogKeys {
        LogKeys {
            keys: self
                .keys
                .iter()
                .filter(|k| k.purpose == purpose as i32)
                .cloned()
                .collect(),
        }
    }

    fn log_keys(&self) -> impl Iterator<Item = &pb::Jwk> {
        self.keys.iter().filter(|k| {
            k.purpose == KeyPurpose::TreeHead as i32 || k.purpose == KeyPurpose::Receipt as i32
        })
    }

    /// How many log keys (receipt and tree-head entries) were published.
    pub fn len(&self) -> usize {
        self.log_keys().count()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key published under `kid` for `purpose` whose window covers `signed_ms` (Unix
    /// milliseconds, the object's own signed time). A key of that id published only for
    /// another purpose, or whose window does not cover the time, is refused, named.
    fn key(
        &self,
        kid: &str,
        purpose: KeyPurpose,
        signed_ms: u64,
    ) -> Result<&pb::Jwk, VerifyFailure> {
        let object = match purpose {
            KeyPurpose::Receipt => "receipt",
            _ => "tree head",
        };
        let named: Vec<&pb::Jwk> = self.keys.iter().filter(|k| k.kid == kid).collect();
        let for_purpose: Vec<&pb::Jwk> = named
            .iter()
            .copied()
            .filter(|k| k.purpose == purpose as i32)
            .collect();
        if for_purpose.is_empty() {
            if named.is_empty() {
                return Err(VerifyFailure::UnknownKey {
                    key_id: kid.to_owned(),
                });
            }
            let published = named
                .iter()
                .map(|k| purpose_name(k.purpose))
                .collect::<Vec<_>>()
                .join(" and ");
            return Err(VerifyFailure::WrongPurpose {
                key_id: kid.to_owned(),
                object,
                expected: purpose.as_str_name(),
                published,
            });
        }
        if let Some(key) = for_purpose.iter().find(|k| window_covers(k, signed_ms)) {
            return Ok(key);
        }
        let key = for_purpose[0];
        let rfc3339 = |t: &prost_types::Timestamp| {
            micros_rfc3339(t.seconds.saturating_mul(1_000_000) + i64::from(t.nanos / 1_000))
        };
        Err(VerifyFailure::OutsideWindow {
            signed_at: i64::try_from(signed_ms)
                .map(|ms| micros_rfc3339(ms.saturating_mul(1_000)))
                .unwrap_or_default(),
            purpose: purpose.as_str_name(),
            key_id: kid.to_owned(),
            not_before: key
                .not_before
                .as_ref()
                .map(rfc3339)
                .unwrap_or_else(|| "the beginning".to_owned()),
            not_after: key.not_after.as_ref().map(rfc3339),
        })
    }

    /// Checks a signed tree head's signature and returns what it vouches for.
    pub fn verify_tree_head(&self, sth: &SignedTreeHead) -> Result<VerifiedHead, VerifyFailure> {
        let fail = |detail: String| VerifyFailure::TreeHeadSignature {
            tree_size: sth.tree_size,
            key_id: sth.key_id.clone(),
            detail,
        };
        let root = Hash::try_from(sth.root_hash.as_slice()).map_err(|e| fail(e.to_string()))?;
        let timestamp_ms = sth
            .timestamp
            .as_ref()
            .and_then(|t| {
                let ms = i128::from(t.seconds) * 1_000 + i128::from(t.nanos) / 1_000_000;
                u64::try_from(ms).ok()
            })
            .ok_or_else(|| fail("the head has no valid timestamp".to_owned()))?;
        let key = self.key(&sth.key_id, KeyPurpose::TreeHead, timestamp_ms)?;
        verify_es256(
            &key.x,
            &key.y,
            &tree_head_signing_input(sth.tree_size, &root, timestamp_ms),
            &sth.signature,
        )
        .map_err(|e| fail(e.to_string()))?;
        Ok(VerifiedHead {
            tree_size: sth.tree_size,
            root,
            timestamp_ms,
            key_id: sth.key_id.clone(),
        })
    }

    /// Checks a receipt's signature, by a receipt key whose window covers its time.
    pub fn verify_receipt(&self, receipt: &SignedReceipt) -> Result<(), VerifyFailure> {
        let key = self.key(&receipt.key_id, KeyPurpose::Receipt, receipt.timestamp_ms)?;
        receipt
            .verify(&key.x, &key.y)
            .map_err(|e| VerifyFailure::ReceiptSignature {
                leaf_hash: receipt.leaf_hash,
                key_id: receipt.key_id.clone(),
                detail: e.to_string(),
            })
    }
}

/// The contract's name of a purpose given as its number.
fn purpose_name(purpose: i32) -> String {
    KeyPurpose::try_from(purpose)
        .map(|p| p.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("purpose {purpose}"))
}

/// Unix milliseconds of a timestamp, `None` before 1970 or malformed.
fn millis(t: &prost_types::Timestamp) -> Option<i128> {
    (t.nanos >= 0).then(|| i128::from(t.seconds) * 1_000 + i128::from(t.nanos) / 1_000_000)
}

/// Whether `signed_ms` lies in the key's window `[not_before, not_after)`; an unset bound is
/// open.
fn window_covers(key: &pb::Jwk, signed_ms: u64) -> bool {
    let at = i128::from(signed_ms);
    // A bound that is set but malformed covers nothing.
    let after_start = match &key.not_before {
        None => true,
        Some(start) => millis(start).is_some_and(|start| start <= at),
    };
    let before_end = match &key.not_after {
        None => true,
        Some(end) => millis(end).is_some_and(|end| at < end),
    };
    after_start && before_end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit_check::ReceiptFile;
    use yrd_pki::{Es256Key, LogKeyRing, ReceiptSigner, SharedLogKeys};

    fn jwk(key: &Es256Key, purpose: KeyPurpose, window: (i64, Option<i64>)) -> pb::Jwk {
        let (x, y) = key.public_coordinates();
        let at = |seconds: i64| prost_types::Timestamp { seconds, nanos: 0 };
        pb::Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: x.into(),
            y: y.into(),
            kid: key.kid().into(),
            alg: "ES256".into(),
            r#use: "sig".into(),
            purpose: purpose as i32,
            not_before: Some(at(window.0)),
            not_after: window.1.map(at),
            retired: false,
        }
    }

    fn keys_of(keys: Vec<pb::Jwk>) -> LogKeys {
        LogKeys::from_jwks(&GetJwksResponse {
            keys,
            jwks_json: String::new(),
        })
    }

    /// `key` published for `purpose` with a window open since 2023.
    fn keys_for(key: &Es256Key, purpose: KeyPurpose) -> LogKeys {
        keys_of(vec![jwk(key, purpose, (1_690_000_000, None))])
    }

    fn signed_head(key: &Es256Key, size: u64, root: Hash, ms: u64) -> SignedTreeHead {
        SignedTreeHead {
            tree_size: size,
            root_hash: root.as_bytes().to_vec(),
            timestamp: Some(prost_types::Timestamp {
                seconds: i64::try_from(ms / 1_000).expect("small"),
                nanos: i32::try_from((ms % 1_000) * 1_000_000).expect("small"),
            }),
            signature: key.sign_der(&tree_head_signing_input(size, &root, ms)),
            key_id: key.kid().into(),
        }
    }

    #[test]
    fn tree_heads_verify_only_with_a_log_key_and_unchanged() {
        let key = Es256Key::generate();
        let keys = keys_for(&key, KeyPurpose::TreeHead);
        let sth = signed_head(&key, 5, Hash([9; 32]), 1_700_000_000_123);
        let head = keys.verify_tree_head(&sth).expect("verifies");
        assert_eq!(
            (head.tree_size, head.root, head.timestamp_ms),
            (5, Hash([9; 32]), 1_700_000_000_123)
        );

        let mut grown = sth.clone();
        grown.tree_size = 6;
        assert!(matches!(
            keys.verify_tree_head(&grown),
            Err(VerifyFailure::TreeHeadSignature { tree_size: 6, .. })
        ));
        // The same key published for access tokens only is not trusted for heads.
        assert!(matches!(
            keys_for(&key, KeyPurpose::AccessToken).verify_tree_head(&sth),
            Err(VerifyFailure::WrongPurpose { .. })
        ));
        let other = Es256Key::generate();
        assert!(matches!(
            keys_for(&other, KeyPurpose::TreeHead).verify_tree_head(&sth),
            Err(VerifyFailure::UnknownKey { .. })
        ));
    }

    #[test]
    fn receipts_round_trip_through_their_file_form_and_verify() {
        let key = Es256Key::generate();
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let ring = SharedLogKeys::new(LogKeyRing::single(key.clone(), at));
        let signer =
            ReceiptSigner::new(std::sync::Arc::new(ring), std::time::Duration::from_secs(5));
        let wire = yrd_call::receipt(&signer.sign(&Hash([4; 32]), at));
        let file = ReceiptFile::from_pb(&wire).expect("a receipt");
        assert_eq!(file.max_merge_delay_ms, 5_000);
        let json = serde_json::to_string(&file).expect("json");
        let back: ReceiptFile = serde_json::from_str(&json).expect("reads back");
        let signed = back.signed().expect("signed");
        keys_for(&key, KeyPurpose::Receipt)
            .verify_receipt(&signed)
            .expect("a receipt key signs receipts");
        let mut forged = signed;
        forged.leaf_hash = Hash([5; 32]);
        assert!(matches!(
            keys_for(&key, KeyPurpose::Receipt).verify_receipt(&forged),
            Err(VerifyFailure::ReceiptSignature { .. })
        ));
    }

    #[test]
    fn a_key_is_trusted_only_for_its_purpose() {
        let key = Es256Key::generate();
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let ring = SharedLogKeys::new(LogKeyRing::single(key.clone(), at));
        let receipt =
            ReceiptSigner::new(std::sync::Arc::new(ring), std::time::Duration::from_secs(5))
                .sign(&Hash([4; 32]), at);
        // The same key published as a tree-head key (or a token key) does not vouch for it.
        for purpose in [KeyPurpose::TreeHead, KeyPurpose::AccessToken] {
            let err = keys_for(&key, purpose)
                .verify_receipt(&receipt)
                .expect_err("wrong purpose");
            assert!(
                matches!(
                    &err,
                    VerifyFailure::WrongPurpose {
                        expected: "KEY_PURPOSE_RECEIPT",
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains(purpose.as_str_name()), "{err}");
        }
        let sth = signed_head(&key, 3, Hash([1; 32]), 1_700_000_000_000);
        let err = keys_for(&key, KeyPurpose::Receipt)
            .verify_tree_head(&sth)
            .expect_err("a receipt key does not sign heads");
        assert_eq!(
            err.to_string(),
            format!(
                "key {:?} is published as a KEY_PURPOSE_RECEIPT key; a tree head must be signed \
                 by a KEY_PURPOSE_TREE_HEAD key (a key is trusted only for its purpose)",
                key.kid()
            )
        );
        // The legacy key, published once per purpose, verifies both.
        let both = keys_of(vec![
            jwk(&key, KeyPurpose::Receipt, (1_690_000_000, None)),
            jwk(&key, KeyPurpose::TreeHead, (1_690_000_000, None)),
        ]);
        both.verify_receipt(&receipt).expect("receipt");
        both.verify_tree_head(&sth).expect("head");
        assert!(
            both.only(KeyPurpose::TreeHead)
                .verify_receipt(&receipt)
                .is_err()
        );
    }

    #[test]
    fn a_signature_counts_only_inside_its_keys_window() {
        let key = Es256Key::generate();
        // The window is [1_700_000_000 s, 1_700_000_100 s).
        let keys = keys_of(vec![jwk(
            &key,
            KeyPurpose::TreeHead,
            (1_700_000_000, Some(1_700_000_100)),
        )]);
        for ms in [1_700_000_000_000, 1_700_000_099_999] {
            keys.verify_tree_head(&signed_head(&key, 2, Hash([2; 32]), ms))
                .expect("inside");
        }
        for ms in [1_699_999_999_999, 1_700_000_100_000] {
            let err = keys
                .verify_tree_head(&signed_head(&key, 2, Hash([2; 32]), ms))
                .expect_err("outside");
            assert!(
                matches!(
                    &err,
                    VerifyFailure::OutsideWindow {
                        purpose: "KEY_PURPOSE_TREE_HEAD",
                        ..
                    }
                ),
                "{err:?}"
            );
        }
        let err = keys
            .verify_tree_head(&signed_head(&key, 2, Hash([2; 32]), 1_700_000_100_000))
            .expect_err("outside");
        assert_eq!(
            err.to_string(),
            format!(
                "the tree head was signed at 2023-11-14T22:15:00.000000Z, outside the validity \
                 window of KEY_PURPOSE_TREE_HEAD key {:?} (from 2023-11-14T22:13:20.000000Z \
                 until 2023-11-14T22:15:00.000000Z)",
                key.kid()
            )
        );
        // An open window has no end; a malformed bound covers nothing.
        let open = keys_for(&key, KeyPurpose::TreeHead);
        open.verify_tree_head(&signed_head(&key, 2, Hash([2; 32]), 4_000_000_000_000))
            .expect("no end");
        let mut bad = jwk(&key, KeyPurpose::TreeHead, (1_700_000_000, None));
        bad.not_before = Some(prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        });
        assert!(
            keys_of(vec![bad])
                .verify_tree_head(&signed_head(&key, 2, Hash([2; 32]), 1_700_000_000_000))
                .is_err()
        );
    }
}
