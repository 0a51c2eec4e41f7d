//! The stored Merkle tree: complete subtrees, the sequencer's frontier and commits, signed tree
//! heads, and proofs computed from O(log n) stored nodes.
//!
//! Every read of nodes goes through [`Store::audit_nodes`]: one query for exactly the list the
//! domain says a computation needs, into a map the domain functions read from.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use yrd_domain::merkle::{self, Frontier, Hash, MerkleError, NodeId, NodeWrite};

use super::{AuditError, is_append_only_refusal, to_db};
use crate::decode::{self, FromRow};
use crate::error::is_unique_violation;
use crate::time_codec::to_micros;
use crate::write::{Rows, Write, WriteError};
use crate::{Store, StoreError};

/// A signed tree head: the log's size and root at a moment, signed with the
/// exchange's log key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of leaves the tree covers.
    pub tree_size: u64,
    /// The RFC 6962 root of those leaves.
    pub root: Hash,
    /// When the sequencer published it.
    pub timestamp: OffsetDateTime,
    /// ES256 signature by the log key over the head (the signed form is the caller's
    /// contract; the store keeps the bytes).
    pub signature: Vec<u8>,
    /// Id of the signing key (see [`crate::SigningKeyRecord`]).
    pub key_id: String,
}

/// A tree head to store: the same data as a stored one.
pub type NewTreeHead = TreeHead;

const HEAD_COLUMNS: &str = "tree_size, root_hash, timestamp_us, signature, key_id";

impl FromRow for TreeHead {
    fn from_row(row: &AnyRow) -> Result<TreeHead, StoreError> {
        Ok(TreeHead {
            tree_size: decode::number(row, "tree_size", "tree head size")?,
            root: decode::parsed(row, "root_hash", "tree head root")?,
            timestamp: decode::time(row, "timestamp_us")?,
            signature: row.try_get("signature")?,
            key_id: row.try_get("key_id")?,
        })
    }
}

/// Maps a failed insert or update of the sequencing step: a collision with a stored row (a
/// unique key, or SQLite's append-only insert guard) is `conflict`, anything else the database.
fn conflict_or_database(err: sqlx::Error, conflict: AuditError) -> AuditError {
    if is_unique_violation(&err) || is_append_only_refusal(&err) {
        conflict
    } else {
        err.into()
    }
}

impl Store {
    /// The hashes of the stored complete subtrees among `ids`, in **one** query. Nodes not
    /// stored are absent from the map.
    pub async fn audit_nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let mut seen = HashSet::with_capacity(ids.len());
        let wanted: Vec<(i64, i64)> = ids
            .iter()
            .filter(|id| seen.insert(**id))
            .filter_map(|id| Some((i64::from(id.level), to_db(id.index)?)))
            .collect();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let terms: Vec<String> = (0..wanted.len())
            .map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "SELECT level, idx, hash FROM audit_nodes WHERE {}",
            terms.join(" OR ")
        );
        let mut query = sqlx::query(&sql);
        for (level, index) in wanted {
            query = query.bind(level).bind(index);
        }
        let rows = query.fetch_all(&self.read).await?;
        let mut nodes = HashMap::with_capacity(rows.len());
        for row in rows {
            let id = NodeId {
                level: decode::number(&row, "level", "audit node level")?,
                index: decode::number(&row, "idx", "audit node index")?,
            };
            nodes.insert(id, decode::parsed(&row, "hash", "audit node hash")?);
        }
        Ok(nodes)
    }

    /// The number of sequenced leaves: the largest leaf index plus one.
    pub async fn sequenced_size(&self) -> Result<u64, StoreError> {
        log_size(&self.read).await
    }

    /// The sequencer's starting point after a (re)start: the frontier of the sequenced log,
    /// rebuilt from the `popcount(size)` stored nodes it needs, and the size.
    ///
    /// Also checks that the latest tree head covers exactly the sequenced leaves (both are
    /// written by the same commit), so a sequencer never extends a log it cannot vouch for.
    pub async fn load_frontier(&self) -> Result<(Frontier, u64), AuditError> {
        let size = self.sequenced_size().await?;
        let head_size = self.latest_tree_head().await?.map_or(0, |h| h.tree_size);
        if head_size != size {
            return Err(StoreError::corrupt(
                "audit log",
                format!("{size} sequenced leaves but the latest tree head has size {head_size}"),
            )
            .into());
        }
        let needed = if size == 0 {
            Vec::new()
        } else {
            merkle::decompose_range(0, size)?
        };
        let nodes = self.audit_nodes(&needed).await?;
        let frontier = Frontier::from_nodes(size, &nodes)?;
        Ok((frontier, size))
    }

    /// Commits one sequencing step in one transaction: gives each leaf `id` its `leaf_index`,
    /// stores every newly completed subtree (as [`Frontier::append`] returned them) and the
    /// signed tree head. Either all of it is stored or nothing.
    ///
    /// The step must continue the log: the indexes are the log's size, size + 1, … in order,
    /// and the head's size is the size after the step. A collision with stored rows — what a
    /// second sequencer running at the same time would cause — fails with the matching
    /// conflict variant and rolls everything back. Callers hold the [`super::SequencerLock`];
    /// this is not made idempotent for concurrent sequencers.
    pub async fn commit_sequence(
        &self,
        assignments: &[(i64, u64)],
        nodes: &[NodeWrite],
        head: &NewTreeHead,
    ) -> Result<(), AuditError> {
        let rows = SequenceRows {
            assignments: assignments.to_vec(),
            nodes: nodes.to_vec(),
            head: head.clone(),
        };
        match self.commit(Write::new(rows)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(match e.refusal() {
                Ok(refused) => refused,
                Err(e) => AuditError::Store(e),
            }),
        }
    }

    /// The newest signed tree head, if any was published.
    pub async fn latest_tree_head(&self) -> Result<Option<TreeHead>, StoreError> {
        let sql = format!("SELECT {HEAD_COLUMNS} FROM tree_heads ORDER BY tree_size DESC LIMIT 1");
        decode::optional(sqlx::query(&sql), &self.read).await
    }

    /// The signed tree head of exactly `tree_size` leaves, if one was published.
    pub async fn tree_head_at(&self, tree_size: u64) -> Result<Option<TreeHead>, StoreError> {
        let Some(tree_size) = to_db(tree_size) else {
            return Ok(None);
        };
        let sql = format!("SELECT {HEAD_COLUMNS} FROM tree_heads WHERE tree_size = $1");
        decode::optional(sqlx::query(&sql).bind(tree_size), &self.read).await
    }

    /// Tree heads larger than `after_size`, smallest first, at most `limit` (keyset
    /// pagination on the size).
    pub async fn list_tree_heads(
        &self,
        after_size: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TreeHead>, StoreError> {
        let after = match after_size {
            None => -1,
            Some(size) => match to_db(size) {
                Some(size) => size,
                None => return Ok(Vec::new()),
            },
        };
        let sql = format!(
            "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE tree_size > $1 ORDER BY tree_size LIMIT $2"
        );
        let query = sqlx::query(&sql).bind(after).bind(i64::from(limit));
        decode::all(query, &self.read).await
    }

    /// The RFC 9162 inclusion proof (audit path) of leaf `index` in the tree of `tree_size`
    /// leaves, from the O(log n) stored nodes it needs, read in one query.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        tree_size: u64,
    ) -> Result<Vec<Hash>, AuditError> {
        let needed = merkle::nodes_needed_for_inclusion(index, tree_size)?;
        self.with_nodes(&needed, tree_size, |nodes| {
            merkle::inclusion_proof(index, tree_size, nodes)
        })
        .await
    }

    /// The RFC 9162 consistency proof from the tree of `old_size` leaves to the tree of
    /// `new_size`, from the O(log n) stored nodes it needs, read in one query.
    pub async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, AuditError> {
        let needed = merkle::nodes_needed_for_consistency(old_size, new_size)?;
        self.with_nodes(&needed, new_size, |nodes| {
            merkle::consistency_proof(old_size, new_size, nodes)
        })
        .await
    }

    /// The root of the tree of the first `tree_size` leaves, from `popcount(tree_size)` stored
    /// nodes (the empty root for 0).
    pub async fn root_at(&self, tree_size: u64) -> Result<Hash, AuditError> {
        let needed = if tree_size == 0 {
            Vec::new()
        } else {
            merkle::decompose_range(0, tree_size)?
        };
        self.with_nodes(&needed, tree_size, |nodes| {
            merkle::root_at(tree_size, nodes)
        })
        .await
    }

    /// `compute` over the `needed` nodes of the tree of `tree_size` leaves, read in one query;
    /// a node it misses is explained ([`Store::explain`]).
    async fn with_nodes<T>(
        &self,
        needed: &[NodeId],
        tree_size: u64,
        compute: impl FnOnce(&HashMap<NodeId, Hash>) -> Result<T, MerkleError>,
    ) -> Result<T, AuditError> {
        let nodes = self.audit_nodes(needed).await?;
        match compute(&nodes) {
            Ok(value) => Ok(value),
            Err(e) => Err(self.explain(tree_size, e).await),
        }
    }

    /// A missing node means either a tree size beyond the sequenced log (the caller's
    /// mistake) or a stored tree with a hole (the database's fault); tell which.
    async fn explain(&self, tree_size: u64, err: MerkleError) -> AuditError {
        if !matches!(err, MerkleError::MissingNode { .. }) {
            return err.into();
        }
        match self.sequenced_size().await {
            Ok(sequenced) if tree_size > sequenced => AuditError::BeyondLog {
                requested: tree_size,
                sequenced,
            },
            Ok(_) => err.into(),
            Err(e) => e.into(),
        }
    }
}

/// The rows of one sequencing step (see [`Store::commit_sequence`]).
#[derive(Debug, Clone)]
struct SequenceRows {
    assignments: Vec<(i64, u64)>,
    nodes: Vec<NodeWrite>,
    head: NewTreeHead,
}

impl Rows for SequenceRows {
    type Value = ();
    type Refusal = AuditError;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<(), WriteError<AuditError>> {
        match sequence_in(conn, &self.assignments, &self.nodes, &self.head).await {
            Ok(()) => Ok(()),
            Err(AuditError::Store(e)) => Err(WriteError::Store(e)),
            Err(refused) => Err(WriteError::Refused(refused)),
        }
    }
}

/// The number of sequenced leaves as `executor` sees it: the largest leaf index plus one.
async fn log_size<'e, E>(executor: E) -> Result<u64, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(leaf_index) FROM audit_leaves")
        .fetch_one(executor)
        .await?;
    max.map_or(Ok(0), |m| {
        u64::try_from(m)
            .map(|m| m + 1)
            .map_err(|e| StoreError::corrupt("audit leaf index", e))
    })
}

/// Applies a sequencing step on `conn`: the leaves' indexes, the new subtrees, the head.
async fn sequence_in(
    conn: &mut AnyConnection,
    assignments: &[(i64, u64)],
    nodes: &[NodeWrite],
    head: &NewTreeHead,
) -> Result<(), AuditError> {
    let log_size = log_size(&mut *conn).await?;
    for (offset, &(_, leaf_index)) in assignments.iter().enumerate() {
        if Some(leaf_index) != log_size.checked_add(offset as u64) {
            return Err(AuditError::NotContiguous {
                log_size,
                detail: format!("index {leaf_index} at position {offset} of the step"),
            });
        }
    }
    let new_size = log_size + assignments.len() as u64;
    if head.tree_size != new_size {
        return Err(AuditError::NotContiguous {
            log_size,
            detail: format!(
                "{} leaves with a tree head of size {} (expected {new_size})",
                assignments.len(),
                head.tree_size
            ),
        });
    }

    for &(id, leaf_index) in assignments {
        let db_index = to_db(leaf_index).ok_or(AuditError::IndexTaken { leaf_index })?;
        let updated = sqlx::query(
            "UPDATE audit_leaves SET leaf_index = $1 WHERE id = $2 AND leaf_index IS NULL",
        )
        .bind(db_index)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(|e| conflict_or_database(e, AuditError::IndexTaken { leaf_index }))?;
        if updated.rows_affected() != 1 {
            return Err(AuditError::LeafNotPending { id });
        }
    }
    for node in nodes {
        let conflict = AuditError::NodeExists {
            level: node.level,
            index: node.index,
        };
        let Some(index) = to_db(node.index) else {
            return Err(conflict);
        };
        sqlx::query("INSERT INTO audit_nodes (level, idx, hash) VALUES ($1, $2, $3)")
            .bind(i64::from(node.level))
            .bind(index)
            .bind(node.hash.to_string())
            .execute(&mut *conn)
            .await
            .map_err(|e| conflict_or_database(e, conflict))?;
    }
    let head_conflict = AuditError::TreeHeadExists {
        tree_size: head.tree_size,
    };
    let Some(tree_size) = to_db(head.tree_size) else {
        return Err(head_conflict);
    };
    sqlx::query(&format!(
        "INSERT INTO tree_heads ({HEAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(tree_size)
    .bind(head.root.to_string())
    .bind(to_micros(head.timestamp))
    .bind(head.signature.clone())
    .bind(&head.key_id)
    .execute(&mut *conn)
    .await
    .map_err(|e| conflict_or_database(e, head_conflict))?;
    Ok(())
}
