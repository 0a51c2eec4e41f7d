//! The bulk load of published results: many version-1 results in one transaction, with the
//! same rows a publish writes (`results`, `result_versions`, `result_places`,
//! `result_name_grams`, built by the same [`SearchColumns`]), in multi-row INSERTs.
//!
//! It exists to fill a database with a large corpus quickly, for measuring searches at scale
//! (docs/performance.md "Search at 1,000,000 results"); it is not a publish: it claims no
//! request id, raises no feed event, opens no referral and appends no exchange-log leaf, so it
//! is never reachable from the contract.

use sqlx::Executor;
use time::OffsetDateTime;
use yrd_domain::AgencyId;
use yrd_domain::spotcheck::SpotCheckResult;

use super::write::{
    RESULT_INSERT_COLUMNS, RESULT_INSERT_WIDTH, SearchColumns, bind_result, insert_search_rows,
};
use crate::multirow::placeholders;
use crate::time_codec::to_micros;
use crate::{Backend, Store, StoreError};

/// Rows per multi-row INSERT: far below both backends' limit on bound values (SQLite 32,766,
/// PostgreSQL 65,535) at the widest row (`results`, 19 values).
const ROWS_PER_STATEMENT: usize = 500;

/// A published result (version 1) for [`Store::load_results`].
#[derive(Debug, Clone)]
pub struct LoadedResult {
    /// The result id (32 lower-case hex digits, as the exchange assigns them).
    pub id: String,
    /// The publishing agency.
    pub publisher: AgencyId,
    /// The validated content, for the search columns.
    pub result: SpotCheckResult,
    /// The encoded content stored as version 1 (what a publish stores).
    pub body: Vec<u8>,
    /// The publication time.
    pub at: OffsetDateTime,
}

impl Store {
    /// Writes `results` as published results (version 1), in one transaction: the rows and
    /// search helpers a publish writes, without its claim, feed events, referrals and leaf.
    /// Fails, writing nothing, when an id is already taken.
    pub async fn load_results(&self, results: &[LoadedResult]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let columns: Vec<SearchColumns> = results
            .iter()
            .map(|r| SearchColumns::of(&r.result))
            .collect();
        let at: Vec<i64> = results.iter().map(|r| to_micros(r.at)).collect();
        let mut tx = self.write.begin().await?;

        for (chunk, (cols, ats)) in results.chunks(ROWS_PER_STATEMENT).zip(
            columns
                .chunks(ROWS_PER_STATEMENT)
                .zip(at.chunks(ROWS_PER_STATEMENT)),
        ) {
            let rows = placeholders(chunk.len(), RESULT_INSERT_WIDTH);
            let sql = format!("INSERT INTO results ({RESULT_INSERT_COLUMNS}) VALUES {rows}");
            let mut query = sqlx::query(&sql);
            for ((r, c), at) in chunk.iter().zip(cols).zip(ats) {
                query = bind_result(query, &r.id, &r.publisher, c, *at);
            }
            tx.execute(query).await?;

            let rows = (0..chunk.len())
                .map(|i| format!("(${}, 1, ${}, NULL, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO result_versions (result_id, version, body, reason, created_at) \
                 VALUES {rows}"
            );
            let mut query = sqlx::query(&sql);
            for (r, at) in chunk.iter().zip(ats) {
                query = query.bind(r.id.as_str()).bind(r.body.as_slice()).bind(*at);
            }
            tx.execute(query).await?;
        }

        let search: Vec<(&str, i64, &SearchColumns)> = results
            .iter()
            .zip(&at)
            .zip(&columns)
            .map(|((r, at), c)| (r.id.as_str(), *at, c))
            .collect();
        insert_search_rows(&mut tx, &search, ROWS_PER_STATEMENT).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Refreshes the planner's statistics, as after a bulk load: SQLite has none until asked
    /// (`ANALYZE`), and PostgreSQL's autovacuum would gather them, and mark the loaded pages
    /// all-visible so that index-only scans skip the table, only some time later
    /// (`VACUUM ANALYZE`).
    pub async fn analyze(&self) -> Result<(), StoreError> {
        let sql = match self.backend() {
            Backend::Sqlite => "ANALYZE",
            Backend::Postgres => "VACUUM ANALYZE",
        };
        self.write.execute(sql).await?;
        Ok(())
    }
}
