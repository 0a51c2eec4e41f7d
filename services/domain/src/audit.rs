//! What one entry of the exchange log says, and the exact bytes its Merkle leaf hashes.
//!
//! Every call to the exchange — accepted or refused — becomes one [`LeafData`]. Its
//! [`LeafData::leaf_input`] is a canonical JSON text (fields in a fixed order, no spaces, UTF-8),
//! and the RFC 6962 leaf hash is `SHA-256(0x00 ‖ leaf_input)` ([`crate::merkle::leaf_hash`]).
//! The canonical text is what auditors export and what `yrd audit verify` re-hashes offline, so
//! its shape is part of the contract: the `v` field versions it.

use serde::{Deserialize, Serialize};

use crate::merkle::{Hash, leaf_hash};

/// The version of the leaf encoding written into every leaf.
pub const LEAF_VERSION: u32 = 1;

/// One exchange-log entry as recorded. Field order is the canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafData {
    /// Encoding version ([`LEAF_VERSION`]).
    pub v: u32,
    /// When the call arrived, Unix microseconds.
    pub time_us: i64,
    /// W3C trace id (32 lowercase hex digits).
    pub trace_id: String,
    /// Span id of the exchange's server span (16 lowercase hex digits).
    pub span_id: String,
    /// The calling agency, when the certificate named one ("" otherwise).
    pub agency: String,
    /// SHA-256 of the client certificate, lowercase hex ("" when none was read).
    pub cert_fingerprint: String,
    /// Certificate profile: system, admin, auditor ("" when unknown).
    pub profile: String,
    /// The acting officer the partner named in its token ("" when none).
    pub officer: String,
    /// The access token's id (`jti`, "" when the call carried none).
    pub token_id: String,
    /// Full gRPC method path, e.g. `/yrd.exchange.v1.SpotCheckService/PublishResult`.
    pub method: String,
    /// Resource names the call touched (AIP names), in the order the handler reported them.
    pub resources: Vec<String>,
    /// gRPC status code of the outcome (0 = OK).
    pub code: i32,
    /// The status message of a refused or failed call ("" on success).
    pub message: String,
    /// SHA-256 of the request message as decoded by the handler, lowercase hex ("" when the
    /// call was refused before its message was read).
    pub request_sha256: String,
    /// How long the call took until its response began, microseconds.
    pub duration_us: i64,
}

impl LeafData {
    /// The entry of a step the exchange took by itself (a deadline scheduler): no agency,
    /// certificate or token; `method` names the task (e.g.
    /// `yrd-exchange/LicensingScheduler/MarkOverdue`), `trace_id` (32 hex digits) is the
    /// step's own, so it can be found in the log like any call's.
    pub fn of_exchange(
        method: &str,
        resources: Vec<String>,
        at: time::OffsetDateTime,
        trace_id: String,
    ) -> LeafData {
        let span_id = trace_id.get(16..32).unwrap_or_default().to_owned();
        LeafData {
            v: LEAF_VERSION,
            time_us: i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX),
            trace_id,
            span_id,
            agency: String::new(),
            cert_fingerprint: String::new(),
            profile: String::new(),
            officer: String::new(),
            token_id: String::new(),
            method: method.to_owned(),
            resources,
            code: 0,
            message: String::new(),
            request_sha256: String::new(),
            duration_us: 0,
        }
    }

    /// The canonical bytes the leaf hash covers.
    pub fn leaf_input(&self) -> Vec<u8> {
        // Serialising a struct of strings, integers and a list of strings cannot fail; the
        // empty fallback would only make verification fail loudly, never pass silently.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The RFC 6962 leaf hash of [`LeafData::leaf_input`].
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.leaf_input())
    }

    /// Parses canonical bytes back, refusing anything that is not exactly canonical (so an
    /// exported line re-hashes to the same leaf hash or is rejected).
    pub fn from_leaf_input(bytes: &[u8]) -> Result<LeafData, LeafError> {
        let leaf: LeafData =
            serde_json::from_slice(bytes).map_err(|e| LeafError::Json(e.to_string()))?;
        if leaf.leaf_input() != bytes {
            return Err(LeafError::NotCanonical);
        }
        Ok(leaf)
    }
}

/// The bytes a receipt's ES256 signature covers:
/// `"yrd-exchange receipt v1\0" ‖ leaf_hash ‖ u64be(timestamp ms) ‖ u64be(max_merge_delay ms)`
/// (the encoding `common.proto` documents on `Receipt`).
pub fn receipt_signing_input(
    leaf_hash: &Hash,
    timestamp_ms: u64,
    max_merge_delay_ms: u64,
) -> Vec<u8> {
    let mut input = Vec::with_capacity(24 + 32 + 16);
    input.extend_from_slice(b"yrd-exchange receipt v1\0");
    input.extend_from_slice(leaf_hash.as_bytes());
    input.extend_from_slice(&timestamp_ms.to_be_bytes());
    input.extend_from_slice(&max_merge_delay_ms.to_be_bytes());
    input
}

/// The bytes a signed tree head's ES256 signature covers: RFC 6962 §3.5 `TreeHeadSignature`
/// — version `v1` (0), signature type `tree_hash` (1), `u64be(timestamp ms)`,
/// `u64be(tree_size)`, the 32-byte root hash.
pub fn tree_head_signing_input(tree_size: u64, root: &Hash, timestamp_ms: u64) -> Vec<u8> {
    let mut input = Vec::with_capacity(2 + 8 + 8 + 32);
    input.push(0);
    input.push(1);
    input.extend_from_slice(&timestamp_ms.to_be_bytes());
    input.extend_from_slice(&tree_size.to_be_bytes());
    input.extend_from_slice(root.as_bytes());
    input
}

/// What the token layer learned of a call: the acting officer the token names and the token's
/// id. The token layer puts it into the extensions of the call's response (success or refusal
/// by the handler alike), where the audit layer reads it after the inner call returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenNote {
    /// The acting officer named in the token ("" when none).
    pub officer: String,
    /// The token's id.
    pub token_id: String,
}

/// What a handler reports of its call: the resources it touched and the digest of its request.
/// It travels back as a value, in the extensions of the handler's response (or with the
/// handler's error status), never through state shared with the layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallNote {
    /// Resource names the call touched.
    pub resources: Vec<String>,
    /// SHA-256 of the request message, lowercase hex.
    pub request_sha256: String,
}

/// The marker a write handler puts into the extensions of its response when it committed the
/// call's leaf in the transaction of its write: the audit layer then appends no second one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written;

/// What the audit layer knows of a call before it runs: when, which trace, who (from the
/// connection's certificate) and which method. It puts one into each request's extensions, so a
/// write handler can build the call's leaf itself ([`CallRecord::leaf`]) and commit it with its
/// write.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// When the call arrived, Unix microseconds.
    pub time_us: i64,
    /// When the call arrived, for its duration.
    pub started: std::time::Instant,
    /// W3C trace id.
    pub trace_id: String,
    /// The exchange's span id.
    pub span_id: String,
    /// The calling agency ("" when the certificate named none).
    pub agency: String,
    /// SHA-256 of the client certificate, lowercase hex.
    pub cert_fingerprint: String,
    /// Certificate profile.
    pub profile: String,
    /// Full gRPC method path.
    pub method: String,
}

impl CallRecord {
    /// The leaf of this call with what the token layer and the handler reported, its outcome
    /// `code` and `message`, and its duration until now.
    pub fn leaf(&self, token: &TokenNote, note: &CallNote, code: i32, message: &str) -> LeafData {
        LeafData {
            v: LEAF_VERSION,
            time_us: self.time_us,
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
            agency: self.agency.clone(),
            cert_fingerprint: self.cert_fingerprint.clone(),
            profile: self.profile.clone(),
            officer: token.officer.clone(),
            token_id: token.token_id.clone(),
            method: self.method.clone(),
            resources: note.resources.clone(),
            code,
            message: message.to_owned(),
            request_sha256: note.request_sha256.clone(),
            duration_us: i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX),
        }
    }
}

/// Why bytes are not a leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    /// Not the JSON of a leaf.
    #[error("leaf input is not a leaf: {0}")]
    Json(String),
    /// Valid JSON of a leaf, but not in canonical form.
    #[error("leaf input is not in canonical form (field order, spacing or escapes differ)")]
    NotCanonical,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LeafData {
        LeafData {
            v: LEAF_VERSION,
            time_us: 1_700_000_000_000_000,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            agency: "310000-SAMR".into(),
            cert_fingerprint: "ab".repeat(32),
            profile: "system".into(),
            officer: "张三".into(),
            token_id: "7d0f…".into(),
            method: "/yrd.exchange.v1.SpotCheckService/PublishResult".into(),
            resources: vec!["results/r1".into(), "results/r1/versions/1".into()],
            code: 0,
            message: String::new(),
            request_sha256: "cd".repeat(32),
            duration_us: 1234,
        }
    }

    #[test]
    fn canonical_round_trip() {
        let leaf = sample();
        let bytes = leaf.leaf_input();
        assert!(bytes.starts_with(b"{\"v\":1,\"time_us\":"));
        assert_eq!(LeafData::from_leaf_input(&bytes), Ok(leaf.clone()));
        assert_eq!(leaf.leaf_hash(), leaf_hash(&bytes));
    }

    #[test]
    fn non_canonical_is_refused() {
        let bytes = sample().leaf_input();
        let spaced = String::from_utf8(bytes)
            .expect("utf-8")
            .replacen(",\"", ", \"", 1);
        assert_eq!(
            LeafData::from_leaf_input(spaced.as_bytes()),
            Err(LeafError::NotCanonical)
        );
        assert!(matches!(
            LeafData::from_leaf_input(b"{}"),
            Err(LeafError::Json(_))
        ));
    }

    #[test]
    fn signing_inputs_have_the_documented_layout() {
        let root = Hash([7u8; 32]);
        let sth = tree_head_signing_input(5, &root, 1_000);
        assert_eq!(sth.len(), 50);
        assert_eq!(&sth[..2], &[0, 1]);
        assert_eq!(&sth[2..10], &1_000u64.to_be_bytes());
        assert_eq!(&sth[10..18], &5u64.to_be_bytes());
        assert_eq!(&sth[18..], root.as_bytes());
        let receipt = receipt_signing_input(&root, 2, 3);
        assert!(receipt.starts_with(b"yrd-exchange receipt v1\0"));
        assert_eq!(receipt.len(), 24 + 32 + 16);
    }

    #[test]
    fn any_change_changes_the_hash() {
        let base = sample().leaf_hash();
        let mut other = sample();
        other.code = 7;
        assert_ne!(other.leaf_hash(), base);
    }
}
