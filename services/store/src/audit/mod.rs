//! The exchange log in the database: leaves, the complete subtrees of its RFC 6962
//! Merkle tree, signed tree heads, and the sequencer's lock.
//!
//! # Why it is shaped so
//!
//! * **Appending is cheap and transactional; sequencing is separate.** A call's business rows
//!   and its leaf commit together (`append_leaves_in` inside the write's transaction), but a
//!   leaf gets its Merkle index later, from one sequencer that takes unsequenced leaves in
//!   insertion order, extends the tree and publishes a signed tree head in one transaction
//!   ([`crate::Store::commit_sequence`]). So concurrent writers never contend on the tree, and on
//!   PostgreSQL a leaf whose transaction commits late is simply sequenced in a later batch —
//!   insertion ids may commit out of order, leaf indexes never have gaps.
//! * **Append-only is the database's rule** (migration `0003_audit_log.sql`): triggers refuse
//!   every delete, every change of a stored row except the one-time `leaf_index` assignment,
//!   and every insert that would replace a stored row. Their messages start with
//!   `append-only:`.
//! * **Proofs read O(log n) rows in one query.** The tree is stored as complete subtrees
//!   (`audit_nodes`), which never change once written; the domain's
//!   `nodes_needed_for_inclusion/consistency` list exactly the nodes a proof needs, the store
//!   fetches them in one query into a map, and the domain computes the RFC 9162 proof from it.
//! * **One sequencer at a time.** On PostgreSQL several replicas share the log; the sequencer
//!   holds a session-level advisory lock on a connection of its own ([`SequencerLock`]). The
//!   unique keys on `leaf_index`, `audit_nodes` and `tree_heads` still refuse a second
//!   sequencer's conflicting commit, whole.
//!
//! Plain reads and appends fail with [`StoreError`]; what can also fail for a Merkle reason or
//! a sequencing conflict fails with [`AuditError`], which wraps it.
//!
//! # Layout
//!
//! * `leaves` — appending leaves (inside a write) and the auditors' queries over them.
//! * `append` — a leaf written alone, through the write primitive.
//! * `tree` — nodes, the frontier, sequencing commits, tree heads and proofs.
//! * `lock` — the sequencer lock.

mod append;
pub(crate) mod appended;
pub(crate) mod leaves;
mod lock;
mod tree;

use yrd_domain::merkle::MerkleError;

use crate::StoreError;

pub use leaves::{AppendedLeaf, LeafFilter, StoredLeaf};
pub use lock::{SEQUENCER_LOCK_KEY, SequencerLock};
pub use tree::{NewTreeHead, TreeHead};

/// What went wrong computing a proof or root, or committing a sequencing step.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed underneath.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Merkle computation refused the arguments (an index outside the tree, an old size
    /// above the new one) or found a complete subtree missing from the stored tree.
    #[error("audit log Merkle tree: {0}")]
    Merkle(#[from] MerkleError),
    /// A proof or root was asked for a tree larger than the sequenced log.
    #[error(
        "tree size {requested} is beyond the audit log, which has {sequenced} sequenced leaves"
    )]
    BeyondLog {
        /// The tree size asked for.
        requested: u64,
        /// How many leaves the log has sequenced.
        sequenced: u64,
    },
    /// A sequencing step does not continue the log where it ends.
    #[error(
        "sequencing step does not continue the log: the log has {log_size} leaves, the step \
         assigns {detail}"
    )]
    NotContiguous {
        /// Sequenced leaves before the step.
        log_size: u64,
        /// What the step assigns instead.
        detail: String,
    },
    /// A leaf to sequence does not exist or already has its index.
    #[error("audit leaf id {id} is not waiting to be sequenced (missing or already sequenced)")]
    LeafNotPending {
        /// Insertion id of the leaf.
        id: i64,
    },
    /// Another leaf already holds this index (another sequencer committed first).
    #[error("leaf index {leaf_index} is already assigned to another audit leaf")]
    IndexTaken {
        /// The index.
        leaf_index: u64,
    },
    /// The complete subtree is already stored (another sequencer committed first).
    #[error("audit node at level {level}, index {index} is already stored")]
    NodeExists {
        /// Its level.
        level: u32,
        /// Its index within the level.
        index: u64,
    },
    /// A tree head of this size is already stored (another sequencer committed first).
    #[error("a tree head of size {tree_size} is already stored")]
    TreeHeadExists {
        /// The size.
        tree_size: u64,
    },
}

crate::error::store_failure!(AuditError);

/// True when the database refused a write through one of the append-only guards of
/// `0003_audit_log.sql` (a trigger whose message starts with `append-only:`).
pub(crate) fn is_append_only_refusal(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.message().contains("append-only:"),
        _ => false,
    }
}

/// A count or index as the `BIGINT` the schema stores, `None` beyond `i64::MAX` (no log gets
/// there, so such a value names nothing stored).
pub(crate) fn to_db(n: u64) -> Option<i64> {
    i64::try_from(n).ok()
}
