//! Applying one write on the batch's connection: claim, rows, events, referrals, leaf, answer.

use sqlx::{AnyConnection, Executor};

use super::idempotency::{self, Answered, Claim, Claimed, Response};
use super::{Committed, Rows, Write, WriteError, Written};
use crate::audit::leaves::append_leaf_in;
use crate::feed::append::append_feed_events_in;
use crate::referrals::model::ReferralWriteError;
use crate::referrals::model::insert_referrals_in;
use crate::{Backend, StoreError};

/// Applies `write` on `conn`, inside the transaction, without savepoint handling (the batch
/// wraps it): claim, rows, events, referrals, leaf, answer.
pub(crate) async fn apply<R: Rows>(
    write: &Write<R>,
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<Committed<R::Value>, WriteError<R::Refusal>> {
    if let Some(claim) = &write.claim {
        let ready: &[u8] = match &claim.response {
            Response::Ready(bytes) => bytes,
            Response::Encode(_) => &[],
        };
        match idempotency::claim(conn, &claim.key, ready, claim.at).await? {
            Claimed::New => {}
            Claimed::Replayed(answer) => return Ok(Answered::Replayed(answer)),
            Claimed::Reused => {
                return Err(WriteError::RequestIdReused {
                    request_id: claim.key.request_id.clone(),
                });
            }
        }
    }
    let value = write.rows.apply(conn, backend).await?;
    let mut assigned = append_feed_events_in(conn, backend, &write.events).await?;
    let opened = insert_referrals_in(conn, backend, &write.referrals)
        .await
        .map_err(|e| match e {
            ReferralWriteError::AlreadyOpen {
                result_id,
                handling_agency,
            } => WriteError::ReferralAlreadyOpen {
                result_id,
                handling_agency,
            },
            ReferralWriteError::Store(e) => WriteError::Store(e),
            other => WriteError::Store(StoreError::corrupt("referral insert", other)),
        })?;
    assigned.extend(opened);
    let leaf = match &write.leaf {
        Some(leaf) => Some(append_leaf_in(conn, leaf).await?),
        None => None,
    };
    if let Some(Claim {
        key,
        response: Response::Encode(encode),
        ..
    }) = &write.claim
    {
        idempotency::record(conn, key, encode(&value)).await?;
    }
    Ok(Answered::Written(Written {
        value,
        assigned,
        leaf,
    }))
}

/// Runs one statement of the batch's own bookkeeping (savepoints).
pub(crate) async fn exec(conn: &mut AnyConnection, sql: &str) -> Result<(), sqlx::Error> {
    conn.execute(sql).await.map(|_| ())
}
