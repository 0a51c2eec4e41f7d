//! Idempotency of writes: the one place a request id is looked up, claimed and answered.
//!
//! A write that answers a request carries a [`Claim`]: the request ([`IdempotencyKey`]: the
//! calling agency, the method, the client's request id and a digest of the body) and its
//! answer. The answer is either ready before the write ([`Response::Ready`], the spot-check,
//! disposal and licensing writes, which build their answer up front) or encoded from what the
//! write produced ([`Response::Encode`], the administrative writes: an updated agency carries
//! the fields it did not change).
//!
//! * **Pre-read** ([`crate::Store::answered_request`]): a handler asks first, so a retry is
//!   answered before any check that the first call's success would now fail.
//! * **Claim in the write** ([`claim`]): the request id is claimed by the write's first
//!   statement, so two concurrent retries serialise on that row (also when both sit in one
//!   group-committed batch: the second member finds the first's claim). The same digest
//!   answers the stored answer ([`Answered::Replayed`]), another digest is `RequestIdReused`.
//! * **Answer** ([`record`]): an encoded answer replaces the claim's placeholder before the
//!   write commits, so the claim and the answer commit with the write.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use yrd_domain::AgencyId;

use crate::time_codec::to_micros;
use crate::{Store, StoreError};

pub use super::key::IdempotencyKey;

/// What an idempotent write did: the one outcome type of every write that answers a request.
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

    /// The written value mapped by `f`; a replay stays a replay.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answered<U> {
        match self {
            Answered::Written(value) => Answered::Written(f(value)),
            Answered::Replayed(bytes) => Answered::Replayed(bytes),
        }
    }
}

/// What a business write did: written (the feed events went to these `(recipient, cursor)`s)
/// or replayed. The same type as [`Answered`].
pub type WriteOutcome = Answered<Vec<(AgencyId, u64)>>;

/// Encodes a request's answer from the value a write produced.
pub type Encode<T> = Box<dyn Fn(&T) -> Vec<u8> + Send + Sync>;

/// How the answer to a request is recorded for retries.
pub enum Response<T> {
    /// Built before the write (it does not depend on what the write finds).
    Ready(Vec<u8>),
    /// Encoded from the written value (a protobuf response, receipt included).
    Encode(Encode<T>),
}

impl<T> std::fmt::Debug for Response<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Response::Ready(bytes) => write!(f, "Ready({} bytes)", bytes.len()),
            Response::Encode(_) => f.write_str("Encode(..)"),
        }
    }
}

/// The request a write answers and how its answer is recorded.
#[derive(Debug)]
pub struct Claim<T> {
    /// The request.
    pub key: IdempotencyKey,
    /// Its answer.
    pub response: Response<T>,
    /// When the request is claimed (the write's time), for pruning.
    pub at: OffsetDateTime,
}

impl<T> Claim<T> {
    /// A claim of `key` whose answer, `response`, was built before the write.
    pub fn ready(key: IdempotencyKey, response: Vec<u8>, at: OffsetDateTime) -> Claim<T> {
        Claim {
            key,
            response: Response::Ready(response),
            at,
        }
    }
}

/// How an administrative write's answer is recorded: the request, and how to encode the
/// answer from what the write produced. Becomes a [`Claim`] with [`Response::Encode`].
pub struct Answer<T> {
    /// The request.
    pub key: IdempotencyKey,
    /// Encodes the answer (a protobuf response, receipt included) from the written value.
    pub encode: Encode<T>,
}

impl<T> std::fmt::Debug for Answer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<T> Answer<T> {
    /// The claim of this answer's request, made at `at`.
    pub fn into_claim(self, at: OffsetDateTime) -> Claim<T> {
        Claim {
            key: self.key,
            response: Response::Encode(self.encode),
            at,
        }
    }
}

/// What the claim found.
pub(crate) enum Claimed {
    /// The request is new and now claimed: go on.
    New,
    /// Answered before with the same body.
    Replayed(Vec<u8>),
    /// Used before with another body.
    Reused,
}

/// Claims `key` on `conn` (inside the write's transaction). The row is written with `ready`
/// as its answer (empty for an answer encoded later), so the claim and the answer commit
/// together with the write.
pub(crate) async fn claim(
    conn: &mut AnyConnection,
    key: &IdempotencyKey,
    ready: &[u8],
    at: OffsetDateTime,
) -> Result<Claimed, StoreError> {
    let claimed = sqlx::query(
        "INSERT INTO idempotency (agency, method, request_id, request_digest, response, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (agency, method, request_id) DO NOTHING",
    )
    .bind(key.agency.as_str())
    .bind(&key.method)
    .bind(&key.request_id)
    .bind(&key.request_digest)
    .bind(ready)
    .bind(to_micros(at))
    .execute(&mut *conn)
    .await?;
    if claimed.rows_affected() == 1 {
        return Ok(Claimed::New);
    }
    // The claim conflicted, so the row is there.
    let row = stored(&mut *conn, key)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok(match answer_of(key, &row)? {
        Some(answer) => Claimed::Replayed(answer),
        None => Claimed::Reused,
    })
}

/// Records `response` as the answer of the claimed `key` on `conn`.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    key: &IdempotencyKey,
    response: Vec<u8>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE idempotency SET response = $1 \
         WHERE agency = $2 AND method = $3 AND request_id = $4",
    )
    .bind(response)
    .bind(key.agency.as_str())
    .bind(&key.method)
    .bind(&key.request_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored digest and answer of request `key`, as `executor` (the read pool, or a write's
/// connection) sees them.
async fn stored<'e, E>(executor: E, key: &IdempotencyKey) -> Result<Option<AnyRow>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "SELECT request_digest, response FROM idempotency \
         WHERE agency = $1 AND method = $2 AND request_id = $3",
    )
    .bind(key.agency.as_str())
    .bind(&key.method)
    .bind(&key.request_id)
    .fetch_optional(executor)
    .await
}

/// The stored answer of `row` if its digest is `key`'s; `None` for another body.
fn answer_of(key: &IdempotencyKey, row: &AnyRow) -> Result<Option<Vec<u8>>, StoreError> {
    let digest: String = row.try_get("request_digest")?;
    if digest != key.request_digest {
        return Ok(None);
    }
    Ok(Some(row.try_get("response")?))
}

impl Store {
    /// The stored answer to `key` when that request was answered before: `Ok(Some(answer))`
    /// for the same body, [`StoreError::RequestIdReused`] for another one, `Ok(None)` when it
    /// is new. A handler asks first, so a retry is answered before any check that the first
    /// call's success would now fail; the write itself claims the id again.
    pub async fn answered_request(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(row) = stored(&self.read, key).await? else {
            return Ok(None);
        };
        match answer_of(key, &row)? {
            Some(answer) => Ok(Some(answer)),
            None => Err(StoreError::RequestIdReused {
                request_id: key.request_id.clone(),
            }),
        }
    }
}
