//! Pruning the idempotency records past their retention, as a write like any other.

use std::convert::Infallible;

use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::{Rows, Write, WriteError};
use crate::time_codec::to_micros;
use crate::{Store, StoreError};

/// The rows of pruning old idempotency records.
#[derive(Debug, Clone, Copy)]
struct PruneRows {
    before: OffsetDateTime,
}

impl Rows for PruneRows {
    type Value = u64;
    type Refusal = Infallible;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<u64, WriteError<Infallible>> {
        let done = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
            .bind(to_micros(self.before))
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// Deletes the idempotency records made before `before`; answers how many went. Request
    /// ids are promised to be kept at least 24 hours (the contract's conventions); the caller
    /// picks the retention.
    pub async fn prune_answers(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = self
            .commit(Write::new(PruneRows { before }))
            .await
            .map_err(WriteError::into_store)?;
        Ok(done.written().map(|w| w.value).unwrap_or(0))
    }
}
