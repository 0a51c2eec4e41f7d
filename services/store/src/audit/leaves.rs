//! Appending leaves, and the auditors' reads over sequenced leaves.
//!
//! A leaf is stored twice over: as columns (what auditors filter on) and as the canonical
//! `leaf_input` text its hash covers. Reads decode [`LeafData`] from the columns *and* return
//! the stored text, so a verifier can tell a row whose columns were altered from its input.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use yrd_domain::audit::LeafData;
use yrd_domain::merkle::{Hash, leaf_hash};

use super::to_db;
use crate::conditions::Conditions;
use crate::decode::{self, FromRow};
use crate::multirow::{MAX_PARAMS, placeholders};
use crate::{Store, StoreError};

pub use super::appended::AppendedLeaf;

/// A sequenced leaf as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLeaf {
    /// Its Merkle leaf index.
    pub index: u64,
    /// Its insertion id.
    pub id: i64,
    /// The leaf decoded from the stored columns.
    pub leaf: LeafData,
    /// The stored canonical input text the leaf hash covers. Equal to
    /// `leaf.leaf_input()` unless the row was altered.
    pub leaf_input: String,
    /// The stored leaf hash.
    pub leaf_hash: Hash,
}

/// The prefix of a case's name (串案, docs/cases.md).
const CASE_PREFIX: &str = "cases/";

/// Keeps the leaves of the whole story of case `name` (`cases/{id}`, docs/cases.md "The
/// exchange log"): those naming the case, and those naming a result that is or was in it or a
/// referral of such a result, resolved when the query runs. The log is append-only, so the
/// publication of a case's first result, made before the case existed, names the result
/// alone; this is how a query by the case still finds it.
fn case_story(q: &mut Conditions, name: &str) {
    let case = q.bind(name);
    let id = q.bind(&name[CASE_PREFIX.len()..]);
    let results = format!(
        "SELECT result_id FROM case_results WHERE case_id = {id} \
         UNION SELECT result_id FROM case_unlinks WHERE case_id = {id}"
    );
    q.add(format!(
        "id IN (SELECT leaf_id FROM audit_leaf_resources WHERE resource = {case} \
         OR resource IN (SELECT 'results/' || result_id FROM ({results}) k) \
         OR resource IN (SELECT 'referrals/' || r.id FROM referrals r \
         WHERE r.result_id IN ({results})))"
    ));
}

/// Which sequenced leaves an auditor asks for; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeafFilter {
    /// Calls that arrived at or after this instant (Unix microseconds).
    pub from_us: Option<i64>,
    /// Calls that arrived before this instant (Unix microseconds).
    pub to_us: Option<i64>,
    /// The calling agency, e.g. `310000-SAMR`.
    pub agency: Option<String>,
    /// The full gRPC method path.
    pub method: Option<String>,
    /// The gRPC status code of the outcome.
    pub code: Option<i32>,
    /// A resource name the call touched.
    pub resource: Option<String>,
    /// The W3C trace id.
    pub trace_id: Option<String>,
}

const LEAF_COLUMNS: &str = "id, leaf_index, leaf_version, time_us, trace_id, span_id, agency, \
                            cert_fingerprint, profile, officer, token_id, method, resources, \
                            code, message, request_sha256, duration_us, leaf_input, leaf_hash";

impl FromRow for StoredLeaf {
    fn from_row(row: &AnyRow) -> Result<StoredLeaf, StoreError> {
        let index: Option<i64> = row.try_get("leaf_index")?;
        let index = index
            .ok_or_else(|| StoreError::corrupt("audit leaf index", "NULL in a sequenced read"))?;
        let resources: String = row.try_get("resources")?;
        let leaf = LeafData {
            v: decode::number(row, "leaf_version", "audit leaf version")?,
            time_us: row.try_get("time_us")?,
            trace_id: row.try_get("trace_id")?,
            span_id: row.try_get("span_id")?,
            agency: row.try_get("agency")?,
            cert_fingerprint: row.try_get("cert_fingerprint")?,
            profile: row.try_get("profile")?,
            officer: row.try_get("officer")?,
            token_id: row.try_get("token_id")?,
            method: row.try_get("method")?,
            resources: serde_json::from_str(&resources)
                .map_err(|e| StoreError::corrupt("audit leaf resources", e))?,
            code: decode::number(row, "code", "audit leaf code")?,
            message: row.try_get("message")?,
            request_sha256: row.try_get("request_sha256")?,
            duration_us: row.try_get("duration_us")?,
        };
        Ok(StoredLeaf {
            index: u64::try_from(index).map_err(|e| StoreError::corrupt("audit leaf index", e))?,
            id: row.try_get("id")?,
            leaf,
            leaf_input: row.try_get("leaf_input")?,
            leaf_hash: decode::parsed(row, "leaf_hash", "audit leaf hash")?,
        })
    }
}

/// Appends `leaves` (and their resource-name rows) on `conn`, unsequenced, in one multi-row
/// `INSERT` (and one for their resource names); answers what was stored, in the order given.
///
/// This is how a business write and its audit leaf commit together: the write primitive
/// ([`crate::write`]) appends the leaves of a batch's kept writes in the batch's transaction.
/// If the transaction is rolled back, the leaves go with it.
pub(crate) async fn append_leaves_in(
    conn: &mut AnyConnection,
    leaves: &[&LeafData],
) -> Result<Vec<AppendedLeaf>, StoreError> {
    const COLUMNS: usize = 17;
    let mut appended = Vec::with_capacity(leaves.len());
    for chunk in leaves.chunks(MAX_PARAMS / COLUMNS) {
        // serde_json always writes UTF-8, so the lossy conversion is exact; the hash is taken
        // over the very text stored, so the two can never disagree.
        let inputs: Vec<String> = chunk
            .iter()
            .map(|leaf| String::from_utf8_lossy(&leaf.leaf_input()).into_owned())
            .collect();
        let hashes: Vec<Hash> = inputs.iter().map(|i| leaf_hash(i.as_bytes())).collect();
        let sql = format!(
            "INSERT INTO audit_leaves (leaf_version, time_us, trace_id, span_id, agency, \
             cert_fingerprint, profile, officer, token_id, method, resources, code, message, \
             request_sha256, duration_us, leaf_input, leaf_hash) VALUES {} RETURNING id",
            placeholders(chunk.len(), COLUMNS)
        );
        let mut insert = sqlx::query_scalar::<_, i64>(&sql);
        for ((leaf, input), hash) in chunk.iter().zip(&inputs).zip(&hashes) {
            insert = insert
                .bind(i64::from(leaf.v))
                .bind(leaf.time_us)
                .bind(&leaf.trace_id)
                .bind(&leaf.span_id)
                .bind(&leaf.agency)
                .bind(&leaf.cert_fingerprint)
                .bind(&leaf.profile)
                .bind(&leaf.officer)
                .bind(&leaf.token_id)
                .bind(&leaf.method)
                .bind(serde_json::Value::from(leaf.resources.clone()).to_string())
                .bind(i64::from(leaf.code))
                .bind(&leaf.message)
                .bind(&leaf.request_sha256)
                .bind(leaf.duration_us)
                .bind(input)
                .bind(hash.to_string());
        }
        // Both backends draw the ids of one statement's rows in the order of its VALUES
        // (an identity column, SQLite's rowid), but neither promises the order of RETURNING:
        // sorted, the ids match the rows again.
        let mut ids = insert.fetch_all(&mut *conn).await?;
        if ids.len() != chunk.len() {
            return Err(StoreError::corrupt(
                "audit leaf insert",
                format!("{} ids for {} leaves", ids.len(), chunk.len()),
            ));
        }
        ids.sort_unstable();
        appended.extend(
            ids.into_iter()
                .zip(hashes)
                .map(|(id, leaf_hash)| AppendedLeaf { id, leaf_hash }),
        );
    }

    // The resource names of every leaf: `(leaf_id, position, resource)` rows.
    let resources: Vec<(i64, i64, &str)> = leaves
        .iter()
        .zip(&appended)
        .flat_map(|(leaf, stored)| {
            leaf.resources
                .iter()
                .enumerate()
                .map(|(position, resource)| {
                    (
                        stored.id,
                        i64::try_from(position).unwrap_or(i64::MAX),
                        resource.as_str(),
                    )
                })
        })
        .collect();
    for chunk in resources.chunks(MAX_PARAMS / 3) {
        let sql = format!(
            "INSERT INTO audit_leaf_resources (leaf_id, position, resource) VALUES {}",
            placeholders(chunk.len(), 3)
        );
        let mut insert = sqlx::query(&sql);
        for (id, position, resource) in chunk {
            insert = insert.bind(*id).bind(*position).bind(*resource);
        }
        insert.execute(&mut *conn).await?;
    }
    Ok(appended)
}

impl Store {
    /// Up to `limit` leaves still without an index, by insertion id: `(id, leaf hash)`, what
    /// the sequencer appends to the tree next.
    pub async fn unsequenced_leaves(&self, limit: u32) -> Result<Vec<(i64, Hash)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, leaf_hash FROM audit_leaves WHERE leaf_index IS NULL ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    decode::parsed(row, "leaf_hash", "audit leaf hash")?,
                ))
            })
            .collect()
    }

    /// Sequenced leaves matching `filter`, in index order, after `after_index` (keyset
    /// pagination: pass the last index of the previous page), at most `limit`.
    pub async fn query_leaves(
        &self,
        filter: &LeafFilter,
        after_index: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredLeaf>, StoreError> {
        let mut q = Conditions::default();
        q.add("leaf_index IS NOT NULL".to_owned());
        if let Some(after) = after_index {
            let Some(after) = to_db(after) else {
                return Ok(Vec::new());
            };
            q.when("leaf_index > ?", Some(after));
        }
        q.when("time_us >= ?", filter.from_us);
        q.when("time_us < ?", filter.to_us);
        q.when("agency = ?", filter.agency.as_deref());
        q.when("method = ?", filter.method.as_deref());
        q.when("code = ?", filter.code.map(i64::from));
        q.when("trace_id = ?", filter.trace_id.as_deref());
        match filter.resource.as_deref() {
            Some(resource) if resource.starts_with(CASE_PREFIX) => case_story(&mut q, resource),
            resource => q.when(
                "id IN (SELECT leaf_id FROM audit_leaf_resources WHERE resource = ?)",
                resource,
            ),
        }
        let limit = q.bind(i64::from(limit));
        let sql = format!(
            "SELECT {LEAF_COLUMNS} FROM audit_leaves{} ORDER BY leaf_index LIMIT {limit}",
            q.clause()
        );
        decode::all(q.query(&sql), &self.read).await
    }

    /// The Merkle index of the sequenced leaf with `hash` (a receipt's leaf hash), if any.
    pub async fn leaf_index_by_hash(&self, hash: &Hash) -> Result<Option<u64>, StoreError> {
        let index: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT leaf_index FROM audit_leaves WHERE leaf_hash = $1 AND leaf_index IS NOT NULL \
             ORDER BY leaf_index LIMIT 1",
        )
        .bind(hash.to_string())
        .fetch_optional(&self.read)
        .await?;
        index
            .flatten()
            .map(|i| u64::try_from(i).map_err(|e| StoreError::corrupt("audit leaf index", e)))
            .transpose()
    }

    /// The leaf at Merkle index `index`, if sequenced.
    pub async fn leaf_by_index(&self, index: u64) -> Result<Option<StoredLeaf>, StoreError> {
        let Some(index) = to_db(index) else {
            return Ok(None);
        };
        let sql = format!("SELECT {LEAF_COLUMNS} FROM audit_leaves WHERE leaf_index = $1");
        decode::optional(sqlx::query(&sql).bind(index), &self.read).await
    }

    /// The sequenced leaves with indexes in `[start, end)`, in index order: one page of an
    /// export. The caller bounds the page (an export walks the log in pages of a few thousand).
    pub async fn leaves_range(&self, start: u64, end: u64) -> Result<Vec<StoredLeaf>, StoreError> {
        let Some(start) = to_db(start) else {
            return Ok(Vec::new());
        };
        let end = to_db(end).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {LEAF_COLUMNS} FROM audit_leaves \
             WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index"
        );
        decode::all(sqlx::query(&sql).bind(start).bind(end), &self.read).await
    }
}
