//! What `yrd audit` checks on its own, without taking the server's word: tree-head signatures
//! against the published log key, receipts, and a whole exported file against a tree head.
//!
//! # Why it is shaped so
//!
//! An auditor's tool is only worth something if a lying server cannot make it say "verified".
//! So every hash that matters is recomputed here from bytes the auditor holds: tree heads are
//! checked against the tree-head keys from `TokenService.GetJwks` (and may be pinned in a state
//! file from an earlier run), receipts against the receipt keys — each key trusted only for its
//! purpose and only for objects whose signed time lies in the key's published window, proofs with the RFC 9162 algorithms of `yrd_domain::merkle`, and an
//! export by re-hashing every line and rebuilding the root. The server only supplies proofs;
//! a wrong proof can make a check fail, never pass.
//!
//! The parts that need no network live here as plain functions and types, so they are tested
//! without a server; the command module drives them and fetches what they ask for.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use yrd_domain::merkle::{Hash, MerkleError, root_from_leaves};
use yrd_pki::SignedReceipt;
use yrd_proto::v1 as pb;

pub use crate::cli::audit::keys::LogKeys;
pub use crate::cli::audit::verdict::{FileError, VerifiedHead, VerifyFailure};

use crate::cli::audit::entry::{EntryView, LineProblem};

/// A receipt as a file (`yrd audit verify --receipt FILE`): the `Receipt` message of a write
/// response, with hashes and the signature in hex and times in Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptFile {
    /// The leaf hash promised.
    pub leaf_hash: Hash,
    /// The leaf index, when the response already knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// When the exchange accepted the call, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The maximum merge delay, milliseconds.
    pub max_merge_delay_ms: u64,
    /// The ES256 signature, ASN.1 DER, hex.
    pub signature: String,
    /// The log key's id.
    pub key_id: String,
}

/// Why a `Receipt` message or file is not a receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The leaf hash is not 32 bytes.
    #[error("the receipt's leaf hash: {0}")]
    LeafHash(MerkleError),
    /// A time is missing or negative.
    #[error("the receipt has no valid {0}")]
    Time(&'static str),
    /// The signature is not hex.
    #[error("the receipt's signature is not hexadecimal")]
    SignatureHex,
}

impl ReceiptFile {
    /// The file form of a write response's receipt.
    pub fn from_pb(receipt: &pb::Receipt) -> Result<ReceiptFile, ReceiptError> {
        let ms = |seconds: i64, nanos: i32| {
            u64::try_from(i128::from(seconds) * 1_000 + i128::from(nanos) / 1_000_000).ok()
        };
        Ok(ReceiptFile {
            leaf_hash: Hash::try_from(receipt.leaf_hash.as_slice())
                .map_err(ReceiptError::LeafHash)?,
            leaf_index: receipt.leaf_index,
            timestamp_ms: receipt
                .timestamp
                .as_ref()
                .and_then(|t| ms(t.seconds, t.nanos))
                .ok_or(ReceiptError::Time("timestamp"))?,
            max_merge_delay_ms: receipt
                .max_merge_delay
                .as_ref()
                .and_then(|d| ms(d.seconds, d.nanos))
                .ok_or(ReceiptError::Time("max_merge_delay"))?,
            signature: hex::encode(&receipt.signature),
            key_id: receipt.key_id.clone(),
        })
    }

    /// The signed receipt it holds.
    pub fn signed(&self) -> Result<SignedReceipt, ReceiptError> {
        Ok(SignedReceipt {
            leaf_hash: self.leaf_hash,
            timestamp_ms: self.timestamp_ms,
            max_merge_delay_ms: self.max_merge_delay_ms,
            signature: hex::decode(&self.signature).map_err(|_| ReceiptError::SignatureHex)?,
            key_id: self.key_id.clone(),
        })
    }

    /// Reads a receipt file.
    pub fn load(path: &Path) -> Result<ReceiptFile, FileError> {
        let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| FileError::Json {
            path: path.to_owned(),
            line: e.line(),
            what: "a receipt",
            detail: e.to_string(),
        })
    }
}

/// An exported JSON Lines file, read back.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its entries, in file order (blank lines skipped).
    pub entries: Vec<EntryView>,
    /// The line number of each entry, from 1.
    pub line_numbers: Vec<usize>,
}

impl ExportFile {
    /// Reads every line; the first line that is not an exported entry fails the read, named.
    pub fn read(path: &Path) -> Result<ExportFile, FileError> {
        let read_error = |source| FileError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        ExportFile::from_reader(path, std::io::BufReader::new(file))
    }

    /// Reads every line of `reader`, the content of the file at `path` (named in errors).
    pub fn from_reader(path: &Path, reader: impl BufRead) -> Result<ExportFile, FileError> {
        let read_error = |source| FileError::Read {
            path: path.to_owned(),
            source,
        };
        let mut entries = Vec::new();
        let mut line_numbers = Vec::new();
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(read_error)?;
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(&line).map_err(|e| FileError::Json {
                path: path.to_owned(),
                line: n + 1,
                what: "an exported audit entry (yrd audit export --format jsonl)",
                detail: e.to_string(),
            })?;
            entries.push(entry);
            line_numbers.push(n + 1);
        }
        Ok(ExportFile {
            path: path.to_owned(),
            entries,
            line_numbers,
        })
    }

    /// The leaf hashes recomputed from each line's `leaf_input`, in file order: what the Merkle
    /// check uses (never the hashes the lines state).
    pub fn leaves(&self) -> Vec<Hash> {
        self.entries.iter().map(EntryView::computed_hash).collect()
    }

    /// The first line wrong in itself, as (the index its position calls for, its line number,
    /// the problem): out of sequence (line `i` must carry index `i`), a leaf input that does not
    /// hash to its leaf hash or is not canonical, or decoded fields that differ from it.
    pub fn first_line_problem(&self) -> Option<(u64, usize, LineProblem)> {
        self.entries
            .iter()
            .zip(&self.line_numbers)
            .enumerate()
            .find_map(|(position, (entry, line))| {
                let expected = u64::try_from(position).unwrap_or(u64::MAX);
                let problem = if entry.index != expected {
                    Err(LineProblem::IndexOutOfSequence {
                        expected,
                        found: entry.index,
                    })
                } else {
                    entry.check()
                };
                problem.err().map(|p| (expected, *line, p))
            })
    }

    /// The offline check against `head`: the root of the first `head.tree_size` recomputed
    /// leaves must be the head's root, and no line may be wrong in itself.
    pub fn check_offline(&self, head: &VerifiedHead) -> Result<FileSummary, VerifyFailure> {
        let leaves = self.leaves();
        let first_problem = self.first_line_problem();
        let covered = usize::try_from(head.tree_size).unwrap_or(usize::MAX);
        let computed = if leaves.len() >= covered {
            root_from_leaves(&leaves[..covered])
        } else {
            // Too few lines: the file cannot match; the root of what there is says so.
            root_from_leaves(&leaves)
        };
        if leaves.len() < covered || computed != head.root {
            return Err(VerifyFailure::FileDoesNotMatch {
                file: self.path.clone(),
                tree_size: head.tree_size,
                expected: head.root,
                computed,
                first_line_problem: first_problem.map(|(i, _, p)| Box::new((i, p))),
            });
        }
        self.summary_or_bad_line(head, first_problem)
    }

    /// After the Merkle check passed: a line wrong in itself still fails the file.
    pub fn summary_or_bad_line(
        &self,
        head: &VerifiedHead,
        first_problem: Option<(u64, usize, LineProblem)>,
    ) -> Result<FileSummary, VerifyFailure> {
        if let Some((index, line, problem)) = first_problem {
            return Err(VerifyFailure::BadLine {
                file: self.path.clone(),
                index,
                line,
                problem,
            });
        }
        Ok(FileSummary {
            entries: self.entries.len(),
            tree_size: head.tree_size,
        })
    }
}

/// What a passed file check covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSummary {
    /// Entries in the file.
    pub entries: usize,
    /// Entries covered by the tree head (the rest are newer than it).
    pub tree_size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::audit::entry::micros_rfc3339;
    use crate::cli::audit::keys::tests::keys_for;
    use yrd_domain::audit::{LEAF_VERSION, LeafData};
    use yrd_pki::{Es256Key, LogKeyRing, ReceiptSigner, SharedLogKeys};
    use yrd_proto::v1::KeyPurpose;

    fn leaf(i: u64) -> LeafData {
        LeafData {
            v: LEAF_VERSION,
            time_us: 1_700_000_000_000_000 + i64::try_from(i).expect("small") * 1_000,
            trace_id: format!("{:032x}", i + 1),
            span_id: format!("{:016x}", i + 1),
            agency: "320000-AMR".into(),
            cert_fingerprint: "ab".repeat(32),
            profile: "system".into(),
            officer: String::new(),
            token_id: String::new(),
            method: "/yrd.exchange.v1.TokenService/GetJwks".into(),
            resources: vec![],
            code: 0,
            message: String::new(),
            request_sha256: String::new(),
            duration_us: 10,
        }
    }

    fn view(i: u64) -> EntryView {
        let fields = leaf(i);
        EntryView {
            index: i,
            leaf_hash: fields.leaf_hash(),
            leaf_input: String::from_utf8(fields.leaf_input()).expect("utf-8"),
            time: micros_rfc3339(fields.time_us),
            fields,
        }
    }

    fn file(entries: Vec<EntryView>) -> ExportFile {
        let line_numbers = (1..=entries.len()).collect();
        ExportFile {
            path: PathBuf::from("export.jsonl"),
            entries,
            line_numbers,
        }
    }

    fn head_of(entries: &[EntryView]) -> VerifiedHead {
        let leaves: Vec<Hash> = entries.iter().map(EntryView::computed_hash).collect();
        VerifiedHead {
            tree_size: entries.len() as u64,
            root: root_from_leaves(&leaves),
            timestamp_ms: 0,
            key_id: String::new(),
        }
    }

    #[test]
    fn an_intact_export_matches_its_head_offline() {
        let entries: Vec<EntryView> = (0..9).map(view).collect();
        let head = head_of(&entries[..7]);
        let summary = file(entries).check_offline(&head).expect("matches");
        assert_eq!(
            summary,
            FileSummary {
                entries: 9,
                tree_size: 7
            }
        );
    }

    #[test]
    fn offline_names_the_first_line_whose_own_hashes_are_wrong() {
        let honest: Vec<EntryView> = (0..8).map(view).collect();
        let head = head_of(&honest);

        let mut sloppy = honest.clone();
        sloppy[5].leaf_input = sloppy[5].leaf_input.replace("\"code\":0", "\"code\":7");
        match file(sloppy).check_offline(&head) {
            Err(VerifyFailure::FileDoesNotMatch {
                first_line_problem: Some(problem),
                ..
            }) if matches!(*problem, (5, LineProblem::HashMismatch { .. })) => {}
            other => panic!("expected a mismatch naming index 5, got {other:?}"),
        }

        // A careful forger keeps each line consistent: offline, only the root says so.
        let mut careful = honest.clone();
        careful[2].fields.code = 7;
        careful[2].leaf_input = String::from_utf8(careful[2].fields.leaf_input()).expect("utf-8");
        careful[2].leaf_hash = careful[2].computed_hash();
        let err = file(careful)
            .check_offline(&head)
            .expect_err("root differs");
        assert!(
            matches!(
                err,
                VerifyFailure::FileDoesNotMatch {
                    first_line_problem: None,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("run without --root"), "{err}");

        let mut deleted = honest.clone();
        deleted.remove(3);
        match file(deleted).check_offline(&head) {
            Err(VerifyFailure::FileDoesNotMatch {
                first_line_problem: Some(problem),
                ..
            }) if *problem
                == (
                    3,
                    LineProblem::IndexOutOfSequence {
                        expected: 3,
                        found: 4,
                    },
                ) => {}
            other => panic!("expected index 3 out of sequence, got {other:?}"),
        }
    }

    #[test]
    fn a_line_whose_fields_were_edited_fails_even_when_the_root_matches() {
        let mut entries: Vec<EntryView> = (0..4).map(view).collect();
        let head = head_of(&entries);
        entries[1].fields.agency = "310000-SAMR".into();
        let err = file(entries).check_offline(&head).expect_err("bad line");
        assert!(
            matches!(
                &err,
                VerifyFailure::BadLine { index: 1, line: 2, problem: LineProblem::FieldDiffers { field }, .. }
                    if field == "agency"
            ),
            "{err:?}"
        );
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
}
