//! Idempotency of writes whose answer depends on what the write finds (the administrative
//! writes: an updated agency carries the fields it did not change, a revoked certificate the
//! rest of its record).
//!
//! Spot-check writes build their answer before the transaction and hand it to the store. These
//! writes cannot, so they hand over how to encode the answer instead ([`Answer`]): the request
//! id is claimed by the transaction's first statement (two concurrent retries serialise on that
//! row), the write runs, and the encoded answer replaces the claim's placeholder before the
//! same transaction commits. The claim and the answer use the `idempotency` table and claim of
//! [`crate::results`], so request ids mean the same everywhere.

use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use crate::StoreError;
use crate::results::{IdempotencyKey, ResultWriteError, claim_request};
use crate::time_codec::to_micros;

/// How a write's answer is recorded for retries: the request it answers, and how to encode
/// the answer from what the write produced.
pub struct Answer<'a, T> {
    /// The request.
    pub key: &'a IdempotencyKey,
    /// Encodes the answer (a protobuf response, receipt included) from the written value.
    pub encode: &'a (dyn Fn(&T) -> Vec<u8> + Send + Sync),
}

impl<T> std::fmt::Debug for Answer<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("key", self.key)
            .finish_non_exhaustive()
    }
}

/// What an idempotent write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered<T> {
    /// The write committed and produced this.
    Written(T),
    /// The request was answered before with the same body: that answer, unchanged; nothing
    /// was written.
    Replayed(Vec<u8>),
}

impl<T> Answered<T> {
    /// The written value; `None` for a replay.
    pub fn written(self) -> Option<T> {
        match self {
            Answered::Written(value) => Some(value),
            Answered::Replayed(_) => None,
        }
    }
}

/// Claims the request of `answer` (if any) inside `tx`. `Ok(Some(bytes))`: it was answered
/// before with the same body. A different body is [`StoreError::RequestIdReused`].
pub(crate) async fn claim_in<T>(
    tx: &mut Transaction<'_, Any>,
    answer: Option<&Answer<'_, T>>,
    at: OffsetDateTime,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(answer) = answer else {
        return Ok(None);
    };
    claim_request(tx, answer.key, &[], at)
        .await
        .map_err(|e| match e {
            ResultWriteError::RequestIdReused { request_id } => {
                StoreError::RequestIdReused { request_id }
            }
            ResultWriteError::Store(e) => e,
            other => StoreError::corrupt("idempotency claim", other),
        })
}

/// Records the encoded answer to `value` in place of the claim's placeholder, inside `tx`.
pub(crate) async fn record_in<T>(
    tx: &mut Transaction<'_, Any>,
    answer: Option<&Answer<'_, T>>,
    value: &T,
) -> Result<(), StoreError> {
    let Some(answer) = answer else {
        return Ok(());
    };
    let key = answer.key;
    sqlx::query(
        "UPDATE idempotency SET response = $1 \
         WHERE agency = $2 AND method = $3 AND request_id = $4",
    )
    .bind((answer.encode)(value))
    .bind(key.agency.as_str())
    .bind(&key.method)
    .bind(&key.request_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl crate::Store {
    /// Deletes the idempotency records made before `before`; answers how many went. Request
    /// ids are promised to be kept at least 24 hours (the contract's conventions); the caller
    /// picks the retention.
    pub async fn prune_answers(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
            .bind(to_micros(before))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }
}
