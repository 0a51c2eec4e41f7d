//! The verdicts of `yrd audit`'s checks: a tree head that passed ([`VerifiedHead`]) and the
//! evidence that something did not ([`VerifyFailure`], [`FileError`]).
//!
//! Apart from the checks themselves (`check`, `keys`) because both produce them; each check
//! module depends on this one and on no other check module.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use yrd_domain::merkle::{Hash, MerkleError};

use crate::cli::audit::entry::{LineProblem, micros_rfc3339};

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
    /// The key named is published, but for another purpose than the object it signed.
    #[error(
        "key {key_id:?} is published as a {published} key; a {object} must be signed by a \
         {expected} key (a key is trusted only for its purpose)"
    )]
    WrongPurpose {
        /// The key id named by the signed object.
        key_id: String,
        /// What was signed: "receipt" or "tree head".
        object: &'static str,
        /// The purpose the object needs, as the contract names it.
        expected: &'static str,
        /// The purposes the key is published with.
        published: String,
    },
    /// The object's signed time lies outside the validity window of the key it names.
    #[error(
        "the {} was signed at {signed_at}, outside the validity window of {purpose} key \
         {key_id:?} (from {not_before} {})",
        if *.purpose == "KEY_PURPOSE_RECEIPT" { "receipt" } else { "tree head" },
        match .not_after { Some(end) => format!("until {end}"), None => "on, with no end".to_owned() }
    )]
    OutsideWindow {
        /// Its signed time, RFC 3339.
        signed_at: String,
        /// The key's purpose, as the contract names it (the object is a receipt or a tree head).
        purpose: &'static str,
        /// The key id.
        key_id: String,
        /// Start of the window, RFC 3339.
        not_before: String,
        /// End of the window (exclusive), RFC 3339; `None` while open.
        not_after: Option<String>,
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
