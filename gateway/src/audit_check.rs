//! What `yrd audit` checks on its own, without taking the server's word: tree-head signatures
//! against the published log key, receipts, and a whole exported file against a tree head.
//!
//! # Why it is shaped so
//!
//! An auditor's tool is only worth something if a lying server cannot make it say "verified".
//! So every hash that matters is recomputed here from bytes the auditor holds: tree heads are
//! checked against the log key from `TokenService.GetJwks` (and may be pinned in a state file
//! from an earlier run), proofs with the RFC 9162 algorithms of `yrd_domain::merkle`, and an
//! export by re-hashing every line and rebuilding the root. The server only supplies proofs;
//! a wrong proof can make a check fail, never pass.
//!
//! The parts that need no network live here as plain functions and types, so they are tested
//! without a server; the command module drives them and fetches what they ask for.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use yrd_domain::audit::tree_head_signing_input;
use yrd_domain::merkle::{Hash, MerkleError, root_from_leaves};
use yrd_pki::{SignedReceipt, verify_es256};
use yrd_proto::v1::{self as pb, GetJwksResponse, KeyPurpose, SignedTreeHead};

use crate::audit_entry::{EntryView, LineProblem, micros_rfc3339};

/// Why verification failed: the evidence that the log, a proof, a head or a file is not what
/// it claims. Every variant is a reason to exit non-zero.
#[derive(Debug, thiserror::Error)]
pub enum VerifyFailure {
    /// No published key with this id may sign tree heads or receipts.
    #[error(
        "key {key_id:?} is not a log key the exchange publishes (TokenService.GetJwks lists no \
         tree-head or receipt key with that id)"
    )]
    UnknownKey {
        /// The key id named by the signed object.
        key_id: String,
    },
    /// A tree head's signature does not verify.
    #[error(
        "the signature of the tree head of size {tree_size} does not verify with key {key_id:?}: {detail}"
    )]
    TreeHeadSignature {
        /// The head's size.
        tree_size: u64,
        /// The key it names.
        key_id: String,
        /// What the verifier said.
        detail: String,
    },
    /// A receipt's signature does not verify.
    #[error("the receipt for leaf {leaf_hash} does not verify with key {key_id:?}: {detail}")]
    ReceiptSignature {
        /// The leaf hash it promises.
        leaf_hash: Hash,
        /// The key it names.
        key_id: String,
        /// What the verifier said.
        detail: String,
    },
    /// The receipt's leaf is not in the latest signed tree head.
    #[error(
        "the receipt's leaf {leaf_hash} is not covered by the latest tree head (size {tree_size}); \
         the exchange promised it by {promised_by}{}",
        if *.overdue { ": the promise is broken" } else { ": try again after that" }
    )]
    ReceiptNotCovered {
        /// The leaf hash.
        leaf_hash: Hash,
        /// The latest head's size.
        tree_size: u64,
        /// Receipt time plus the maximum merge delay, RFC 3339.
        promised_by: String,
        /// Whether that moment has passed.
        overdue: bool,
    },
    /// A consistency proof does not prove the older head a prefix of the newer one.
    #[error(
        "the tree of size {old_size} is not proven a prefix of the tree of size {new_size}: {source}"
    )]
    Consistency {
        /// The older size.
        old_size: u64,
        /// The newer size.
        new_size: u64,
        /// Why.
        #[source]
        source: Box<MerkleError>,
    },
    /// The server answered about a different head than the one verified.
    #[error(
        "the server's proof is for a tree head of size {tree_size} with root {got}, but the verified head has root {expected}"
    )]
    HeadChanged {
        /// The size.
        tree_size: u64,
        /// The verified root.
        expected: Hash,
        /// The root the server sent with the proof.
        got: Hash,
    },
    /// An inclusion proof does not prove the leaf in the tree.
    #[error(
        "leaf {index} (hash {leaf_hash}) is not proven in the tree of size {tree_size}: {source}"
    )]
    Inclusion {
        /// The leaf index.
        index: u64,
        /// The leaf hash checked.
        leaf_hash: Hash,
        /// The tree size.
        tree_size: u64,
        /// Why.
        #[source]
        source: Box<MerkleError>,
    },
    /// An entry the server returned is inconsistent in itself.
    #[error("entry {index} as the server returned it: {problem}")]
    Entry {
        /// The entry's index.
        index: u64,
        /// What is wrong.
        problem: LineProblem,
    },
    /// The exported file diverges from the log: the Merkle search named the first bad index.
    #[error(
        "{}: the first bad index is {index}: entries [0, {index}) are the log's, entry {index} is \
         altered, missing or out of order (checked against the tree head of size {tree_size}){}",
        .file.display(),
        line_note(.first_line_problem)
    )]
    FirstBadIndex {
        /// The file.
        file: PathBuf,
        /// The first index whose leaf is not the log's.
        index: u64,
        /// The tree head's size.
        tree_size: u64,
        /// The first line that is also wrong in itself, if any.
        first_line_problem: Option<Box<(u64, LineProblem)>>,
    },
    /// Offline, with only a root: the file's leaves do not give the head's root.
    #[error(
        "{}: the file does not match the tree head of size {tree_size}: its leaves give root \
         {computed}, the head says {expected}{}",
        .file.display(),
        match .first_line_problem {
            Some(_) => line_note(.first_line_problem),
            None => "; every line hashes to its own leaf_hash, so the first bad index needs the \
                     server's consistency proofs (run without --root)".to_owned(),
        }
    )]
    FileDoesNotMatch {
        /// The file.
        file: PathBuf,
        /// The tree head's size.
        tree_size: u64,
        /// The head's root.
        expected: Hash,
        /// The root of the file's first `tree_size` leaves.
        computed: Hash,
        /// The first line that is wrong in itself, if any.
        first_line_problem: Option<Box<(u64, LineProblem)>>,
    },
    /// The Merkle tree matches, but a line's printed fields are not what its leaf says.
    #[error("{}: the entry at index {index} (line {line}): {problem}", .file.display())]
    BadLine {
        /// The file.
        file: PathBuf,
        /// The line's index position.
        index: u64,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        problem: LineProblem,
    },
}

fn line_note(problem: &Option<Box<(u64, LineProblem)>>) -> String {
    match problem.as_deref() {
        Some((index, problem)) => {
            format!("; the first line wrong in itself is index {index}: {problem}")
        }
        None => String::new(),
    }
}

/// Why a file `yrd audit` reads (an export, a receipt, a state file) is unusable.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line or the whole file is not the JSON expected.
    #[error("{path}, line {line}: not {what}: {detail}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The line number, from 1 (1 for a whole-file document).
        line: usize,
        /// What was expected, e.g. "an exported audit entry".
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
}

/// The exchange's log keys as `TokenService.GetJwks` publishes them: the keys whose purpose is
/// signing tree heads or receipts. Access-token keys are ignored: a key is trusted only for
/// its purpose.
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
            .filter(|k| {
                k.kty == "EC"
                    && k.crv == "P-256"
                    && (k.purpose == KeyPurpose::TreeHead as i32
                        || k.purpose == KeyPurpose::Receipt as i32)
            })
            .cloned()
            .collect();
        LogKeys { keys }
    }

    /// How many log keys were published.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key that must have signed `purpose` objects under `kid`. The exchange publishes its
    /// log key once, as the tree-head key, and signs receipts with it too, so a receipt is
    /// accepted from a receipt key or the tree-head key of that id.
    fn key(&self, kid: &str, purpose: KeyPurpose) -> Result<&pb::Jwk, VerifyFailure> {
        self.keys
            .iter()
            .find(|k| {
                k.kid == kid
                    && (k.purpose == purpose as i32
                        || (purpose == KeyPurpose::Receipt
                            && k.purpose == KeyPurpose::TreeHead as i32))
            })
            .ok_or_else(|| VerifyFailure::UnknownKey {
                key_id: kid.to_owned(),
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
        let key = self.key(&sth.key_id, KeyPurpose::TreeHead)?;
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

    /// Checks a receipt's signature.
    pub fn verify_receipt(&self, receipt: &SignedReceipt) -> Result<(), VerifyFailure> {
        let key = self.key(&receipt.key_id, KeyPurpose::Receipt)?;
        receipt
            .verify(&key.x, &key.y)
            .map_err(|e| VerifyFailure::ReceiptSignature {
                leaf_hash: receipt.leaf_hash,
                key_id: receipt.key_id.clone(),
                detail: e.to_string(),
            })
    }
}

/// A tree head whose signature was checked (or, offline, whose root the auditor gave).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedHead {
    /// Number of leaves.
    pub tree_size: u64,
    /// The root.
    pub root: Hash,
    /// When it was signed, Unix milliseconds (0 when the auditor gave the root by hand).
    pub timestamp_ms: u64,
    /// The key that signed it ("" when the auditor gave the root by hand).
    pub key_id: String,
}

impl VerifiedHead {
    /// `size N, root R, signed T by key K`.
    pub fn describe(&self) -> String {
        if self.key_id.is_empty() {
            return format!("size {}, root {} (given)", self.tree_size, self.root);
        }
        let when = i64::try_from(self.timestamp_ms)
            .map(|ms| micros_rfc3339(ms.saturating_mul(1_000)))
            .unwrap_or_default();
        format!(
            "size {}, root {}, signed {when} by key {}",
            self.tree_size, self.root, self.key_id
        )
    }

    /// Reads a head saved by an earlier `yrd audit verify --state FILE`; `None` when the file
    /// does not exist yet (the first run trusts and saves what it sees).
    pub fn load(path: &Path) -> Result<Option<VerifiedHead>, FileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(FileError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| FileError::Json {
                path: path.to_owned(),
                line: e.line(),
                what: "a saved tree head",
                detail: e.to_string(),
            })
    }
}

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
        let mut entries = Vec::new();
        let mut line_numbers = Vec::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
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
    use yrd_domain::audit::{LEAF_VERSION, LeafData};
    use yrd_pki::{Es256Key, ReceiptSigner};

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

    fn keys_for(key: &Es256Key, purpose: KeyPurpose) -> LogKeys {
        let (x, y) = key.public_coordinates();
        LogKeys::from_jwks(&GetJwksResponse {
            keys: vec![pb::Jwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: x.into(),
                y: y.into(),
                kid: key.kid().into(),
                alg: "ES256".into(),
                r#use: "sig".into(),
                purpose: purpose as i32,
            }],
            jwks_json: String::new(),
        })
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
            Err(VerifyFailure::UnknownKey { .. })
        ));
        let other = Es256Key::generate();
        assert!(matches!(
            keys_for(&other, KeyPurpose::TreeHead).verify_tree_head(&sth),
            Err(VerifyFailure::UnknownKey { .. })
        ));
    }

    #[test]
    fn receipts_round_trip_through_their_file_form_and_verify() {
        let key = std::sync::Arc::new(Es256Key::generate());
        let signer = ReceiptSigner::new(key.clone(), std::time::Duration::from_secs(5));
        let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let wire = yrd_proto::wire::receipt(&signer.sign(&Hash([4; 32]), at));
        let file = ReceiptFile::from_pb(&wire).expect("a receipt");
        assert_eq!(file.max_merge_delay_ms, 5_000);
        let json = serde_json::to_string(&file).expect("json");
        let back: ReceiptFile = serde_json::from_str(&json).expect("reads back");
        let signed = back.signed().expect("signed");
        keys_for(&key, KeyPurpose::TreeHead)
            .verify_receipt(&signed)
            .expect("the log key signs receipts");
        let mut forged = signed;
        forged.leaf_hash = Hash([5; 32]);
        assert!(matches!(
            keys_for(&key, KeyPurpose::TreeHead).verify_receipt(&forged),
            Err(VerifyFailure::ReceiptSignature { .. })
        ));
    }
}
