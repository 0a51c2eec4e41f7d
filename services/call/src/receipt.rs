//! The wire form of a signed receipt (`Receipt` in `common.proto`). The signing lives in
//! `yrd-pki`; this is only the encoding, kept out of the contract crate so that `yrd-proto`
//! depends on no crate of ours.

use prost_types::Timestamp;
use yrd_pki::SignedReceipt;
use yrd_proto::v1 as pb;

/// The wire form of a signed receipt (`Receipt` in `common.proto`).
pub fn receipt(signed: &SignedReceipt) -> pb::Receipt {
    let ms = |ms: u64| {
        (
            i64::try_from(ms / 1_000).unwrap_or(i64::MAX),
            i32::try_from((ms % 1_000) * 1_000_000).unwrap_or(0),
        )
    };
    let (seconds, nanos) = ms(signed.timestamp_ms);
    let (delay_seconds, delay_nanos) = ms(signed.max_merge_delay_ms);
    pb::Receipt {
        leaf_index: None,
        leaf_hash: signed.leaf_hash.as_bytes().to_vec(),
        timestamp: Some(Timestamp { seconds, nanos }),
        signature: signed.signature.clone(),
        key_id: signed.key_id.clone(),
        max_merge_delay: Some(prost_types::Duration {
            seconds: delay_seconds,
            nanos: delay_nanos,
        }),
    }
}
