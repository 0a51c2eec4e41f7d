//! Applying one write on the batch's connection: claim, rows, referrals, answer. Its feed
//! events and its leaf are appended with the whole batch's, at the batch's end
//! (the `batch` module, which calls this one).

use sqlx::{AnyConnection, Executor};
use yrd_domain::audit::LeafData;

use super::idempotency::{self, Answered, Claim, Claimed, Response};
use super::{Committed, Rows, Write, WriteError, Written};
use crate::StoreError;
use crate::feed::NewFeedEvent;
use crate::referrals::model::ReferralWriteError;
use crate::referrals::model::insert_referrals_in;

/// Applies `write` on `conn`, inside the transaction, without savepoint handling (the batch
/// wraps it): claim, rows, referrals, answer. The written value's `assigned` and `leaf` stay
/// empty until the batch has appended the events ([`events`]) and the leaf ([`leaf`]) of
/// every member it keeps.
pub(crate) async fn apply<R: Rows>(
    write: &Write<R>,
    conn: &mut AnyConnection,
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
    let value = write.rows.apply(conn).await?;
    insert_referrals_in(conn, &write.referrals)
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
        assigned: Vec::new(),
        leaf: None,
    }))
}

/// The feed events `write` raises, in the order its cursors are assigned: its own, then each
/// referral's.
pub(crate) fn events<R: Rows>(write: &Write<R>) -> impl Iterator<Item = &NewFeedEvent> {
    write
        .events
        .iter()
        .chain(write.referrals.iter().flat_map(|r| r.events.iter()))
}

/// The exchange-log leaf of `write`, if it has one.
pub(crate) fn leaf<R: Rows>(write: &Write<R>) -> Option<&LeafData> {
    write.leaf.as_ref()
}

/// Runs statements of the batch's own bookkeeping (savepoints); `sql` may hold several,
/// separated by `;`, sent in one round trip.
pub(crate) async fn exec(conn: &mut AnyConnection, sql: &str) -> Result<(), sqlx::Error> {
    conn.execute(sql).await.map(|_| ())
}
