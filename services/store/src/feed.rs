//! The per-agency feed (DESIGN.md "Delivery"): the exchange never calls partners; each agency
//! reads its own durable feed from a cursor and acknowledges what it has handled.
//!
//! Events are appended inside the transaction of the write that causes them
//! ([`append_feed_events_in`]), each with the next cursor of its recipient, so an event exists if
//! and only if its write committed, and cursor order is commit order. After the commit the
//! writer calls [`Store::feed_committed`], which wakes the subscribers of those agencies on this
//! replica at once (no polling). On PostgreSQL the same transaction also sends
//! `NOTIFY yrd_feed, '<agency>'`, delivered at commit to every replica listening
//! ([`Store::listen_feed`]), so a subscriber on another replica wakes too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use time::OffsetDateTime;
use tokio::sync::watch;
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;

use crate::audit::append_leaf_in;
use crate::time_codec::{from_micros, to_micros};
use crate::{Backend, Store, StoreError};

/// The PostgreSQL notification channel of feed wake-ups.
pub const FEED_CHANNEL: &str = "yrd_feed";

/// An event to append to one agency's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeedEvent {
    /// The agency whose feed receives it.
    pub recipient: AgencyId,
    /// Unique id of the event (one per recipient).
    pub event_id: String,
    /// The event type's wire name (e.g. `EVENT_TYPE_RESULT_PUBLISHED`).
    pub event_type: String,
    /// The resource concerned (e.g. `results/…`).
    pub resource_name: String,
    /// Its version.
    pub resource_version: i64,
    /// When it happened.
    pub event_time: OffsetDateTime,
    /// The agency whose call caused it.
    pub actor_agency: String,
    /// The trace of that call.
    pub trace_id: String,
    /// A non-conforming result the recipient must handle (disposal).
    pub needs_disposal: bool,
    /// The event as the partner receives it, encoded (cursor left for the reader to fill).
    pub payload: Vec<u8>,
}

/// An event as stored in a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEventRecord {
    /// Its position in the recipient's feed (1, 2, 3, …).
    pub cursor: u64,
    /// The rest, as appended.
    pub event: NewFeedEvent,
}

/// Where an agency's feed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedPosition {
    /// The last cursor the agency acknowledged (0: none).
    pub acked: u64,
    /// The last cursor in its feed (0: empty).
    pub latest: u64,
}

/// Why an acknowledgement was refused.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// The cursor is past the end of the feed.
    #[error("cursor {cursor} is beyond the end of the feed ({latest})")]
    BeyondLatest {
        /// The cursor given.
        cursor: u64,
        /// The feed's last cursor.
        latest: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AckError {
    fn from(e: sqlx::Error) -> Self {
        AckError::Store(e.into())
    }
}

/// Per-agency wake-ups: a watch channel holding the latest cursor known on this replica.
#[derive(Debug, Default)]
pub(crate) struct FeedSignals {
    channels: Mutex<HashMap<AgencyId, watch::Sender<u64>>>,
}

impl FeedSignals {
    fn sender(&self, agency: &AgencyId) -> watch::Sender<u64> {
        let mut map = match self.channels.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(agency.clone())
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    fn bump(&self, agency: &AgencyId, cursor: Option<u64>) {
        // A wake-up from another replica carries no cursor: it only wakes the watchers
        // (`send_modify` notifies even when the value stays the same).
        self.sender(agency).send_modify(|latest| {
            if let Some(c) = cursor {
                *latest = (*latest).max(c);
            }
        });
    }
}

fn db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Appends `events` inside `tx`, each with the next cursor of its recipient; answers
/// `(recipient, cursor)` per event. On PostgreSQL also queues the cross-replica wake-up, sent
/// when `tx` commits. The caller commits, then calls [`Store::feed_committed`].
pub(crate) async fn append_feed_events_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    events: &[NewFeedEvent],
) -> Result<Vec<(AgencyId, u64)>, StoreError> {
    let mut assigned = Vec::with_capacity(events.len());
    for event in events {
        let agency = event.recipient.as_str();
        sqlx::query(
            "INSERT INTO feed_heads (agency_id, last_cursor) VALUES ($1, 0) \
             ON CONFLICT (agency_id) DO NOTHING",
        )
        .bind(agency)
        .execute(&mut **tx)
        .await?;
        let cursor: i64 = sqlx::query_scalar(
            "UPDATE feed_heads SET last_cursor = last_cursor + 1 WHERE agency_id = $1 \
             RETURNING last_cursor",
        )
        .bind(agency)
        .fetch_one(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO feed_events (agency_id, seq, event_id, event_type, resource_name, \
             resource_version, event_time, actor_agency, trace_id, needs_disposal, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(agency)
        .bind(cursor)
        .bind(&event.event_id)
        .bind(&event.event_type)
        .bind(&event.resource_name)
        .bind(event.resource_version)
        .bind(to_micros(event.event_time))
        .bind(&event.actor_agency)
        .bind(&event.trace_id)
        .bind(i64::from(event.needs_disposal))
        .bind(&event.payload)
        .execute(&mut **tx)
        .await?;
        if backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(FEED_CHANNEL)
                .bind(agency)
                .execute(&mut **tx)
                .await?;
        }
        let cursor = u64::try_from(cursor).map_err(|e| StoreError::corrupt("feed cursor", e))?;
        assigned.push((event.recipient.clone(), cursor));
    }
    Ok(assigned)
}

impl FeedEventRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let agency: String = row.try_get("agency_id")?;
        Ok(FeedEventRecord {
            cursor: u64::try_from(row.try_get::<i64, _>("seq")?)
                .map_err(|e| StoreError::corrupt("feed cursor", e))?,
            event: NewFeedEvent {
                recipient: AgencyId::parse(&agency)
                    .map_err(|e| StoreError::corrupt("feed agency", e))?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                resource_name: row.try_get("resource_name")?,
                resource_version: row.try_get("resource_version")?,
                event_time: from_micros(row.try_get("event_time")?)?,
                actor_agency: row.try_get("actor_agency")?,
                trace_id: row.try_get("trace_id")?,
                needs_disposal: row.try_get::<i64, _>("needs_disposal")? != 0,
                payload: row.try_get("payload")?,
            },
        })
    }
}

impl Store {
    /// Wakes this replica's subscribers of the agencies that just received events (call after
    /// the commit that appended them).
    pub fn feed_committed(&self, assigned: &[(AgencyId, u64)]) {
        for (agency, cursor) in assigned {
            self.feed.bump(agency, Some(*cursor));
        }
    }

    /// A receiver that changes whenever `agency`'s feed may have grown on this replica.
    pub fn watch_feed(&self, agency: &AgencyId) -> watch::Receiver<u64> {
        self.feed.sender(agency).subscribe()
    }

    /// Appends events in their own transaction (for callers with no business rows, and tests),
    /// then wakes their subscribers.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "append_feed_events", db.system = self.backend().as_str()))]
    pub async fn append_feed_events(
        &self,
        events: &[NewFeedEvent],
    ) -> Result<Vec<(AgencyId, u64)>, StoreError> {
        let mut tx = self.write.begin().await?;
        let assigned = append_feed_events_in(&mut tx, self.backend(), events).await?;
        tx.commit().await?;
        self.feed_committed(&assigned);
        Ok(assigned)
    }

    /// Up to `limit` events of `agency`'s feed after cursor `after`, in cursor order.
    pub async fn feed_events_after(
        &self,
        agency: &AgencyId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<FeedEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT agency_id, seq, event_id, event_type, resource_name, resource_version, \
             event_time, actor_agency, trace_id, needs_disposal, payload FROM feed_events \
             WHERE agency_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(agency.as_str())
        .bind(db(after))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(FeedEventRecord::from_row).collect()
    }

    /// Where `agency`'s feed stands.
    pub async fn feed_position(&self, agency: &AgencyId) -> Result<FeedPosition, StoreError> {
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT last_cursor FROM feed_heads WHERE agency_id = $1")
                .bind(agency.as_str())
                .fetch_optional(&self.read)
                .await?;
        let acked: Option<i64> =
            sqlx::query_scalar("SELECT acked_cursor FROM feed_positions WHERE agency_id = $1")
                .bind(agency.as_str())
                .fetch_optional(&self.read)
                .await?;
        let unsigned = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
        Ok(FeedPosition {
            acked: unsigned(acked),
            latest: unsigned(latest),
        })
    }

    /// Records that `agency` handled its feed up to `cursor`. The position only moves forward:
    /// an older cursor (a retried or reordered ack) leaves it where it is. Answers the position
    /// now stored.
    pub async fn ack_feed(
        &self,
        agency: &AgencyId,
        cursor: u64,
        now: OffsetDateTime,
    ) -> Result<u64, AckError> {
        self.ack_feed_with_leaf(agency, cursor, now, None).await
    }

    /// As [`Store::ack_feed`], appending `leaf` (the `Ack` call's audit leaf) in the same
    /// transaction, so the stored position and its log entry commit together. A refused ack
    /// ([`AckError::BeyondLatest`]) writes neither.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "ack_feed_with_leaf", db.system = self.backend().as_str()))]
    pub async fn ack_feed_with_leaf(
        &self,
        agency: &AgencyId,
        cursor: u64,
        now: OffsetDateTime,
        leaf: Option<&LeafData>,
    ) -> Result<u64, AckError> {
        let mut tx = self.write.begin().await?;
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT last_cursor FROM feed_heads WHERE agency_id = $1")
                .bind(agency.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let latest = u64::try_from(latest.unwrap_or(0)).unwrap_or(0);
        if cursor > latest {
            return Err(AckError::BeyondLatest { cursor, latest });
        }
        sqlx::query(
            "INSERT INTO feed_positions (agency_id, acked_cursor, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (agency_id) DO UPDATE SET \
               acked_cursor = CASE WHEN excluded.acked_cursor > feed_positions.acked_cursor \
                                   THEN excluded.acked_cursor ELSE feed_positions.acked_cursor END, \
               updated_at = excluded.updated_at",
        )
        .bind(agency.as_str())
        .bind(db(cursor))
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        let stored: i64 =
            sqlx::query_scalar("SELECT acked_cursor FROM feed_positions WHERE agency_id = $1")
                .bind(agency.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if let Some(leaf) = leaf {
            append_leaf_in(&mut tx, leaf).await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(stored).unwrap_or(0))
    }

    /// On PostgreSQL, listens for other replicas' feed wake-ups and wakes this replica's
    /// subscribers; returns when `stop` resolves. On SQLite there is one process: nothing to do.
    pub async fn listen_feed(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), StoreError> {
        if self.backend() != Backend::Postgres {
            stop.await;
            return Ok(());
        }
        let url = self.url.clone();
        let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
        listener.listen(FEED_CHANNEL).await?;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return Ok(()),
                notification = listener.recv() => {
                    match notification {
                        Ok(n) => {
                            if let Ok(agency) = AgencyId::parse(n.payload()) {
                                self.feed.bump(&agency, None);
                            }
                        }
                        // PgListener reconnects by itself on the next recv; a wake-up missed in
                        // between is covered by subscribers re-reading on their heartbeat.
                        Err(e) => tracing::warn!(error = %e, "feed listener interrupted"),
                    }
                }
            }
        }
    }
}

/// The shared wake-up state, created with the store.
pub(crate) fn signals() -> Arc<FeedSignals> {
    Arc::new(FeedSignals::default())
}
