//! The per-agency feed (docs/architecture.md, "Feed"): the exchange never calls partners; each agency
//! reads its own durable feed from a cursor and acknowledges what it has handled.
//!
//! Events are appended inside the transaction of the write that causes them (at the end of its
//! group-committed batch, [`append_feed_events_in`]), each with the next cursor of its
//! recipient, so an event exists if and only if its write committed, and cursor order is commit
//! order. After the commit the
//! writer calls [`Store::feed_committed`], which wakes the subscribers of those agencies on this
//! replica at once (no polling). On PostgreSQL the same transaction also sends
//! `NOTIFY yrd_feed, '<agency>'`, delivered at commit to every replica listening
//! ([`Store::listen_feed`]), so a subscriber on another replica wakes too.
pub(crate) mod append;
pub(crate) mod event;
pub(crate) mod signals;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;

use crate::decode::{self, FromRow};
use crate::time_codec::to_micros;
use crate::write::{NoRows, Rows, Write, WriteError};
use crate::{Backend, Store, StoreError};

pub use append::{FEED_CHANNEL, NewFeedEvent};

/// How long the PostgreSQL feed listener waits before it reconnects after its connection failed.
const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_millis(500);
pub(crate) use signals::{FeedSignals, signals};

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

crate::error::store_failure!(AckError);

fn db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The rows of an acknowledgement: move the agency's acked cursor forward.
#[derive(Debug, Clone)]
pub struct AckRows {
    /// The acknowledging agency.
    pub agency: AgencyId,
    /// The cursor it handled.
    pub cursor: u64,
    /// When.
    pub at: OffsetDateTime,
}

/// Why an acknowledgement's rows were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeyondLatest {
    /// The cursor given.
    pub cursor: u64,
    /// The feed's last cursor.
    pub latest: u64,
}

impl Rows for AckRows {
    type Value = u64;
    type Refusal = BeyondLatest;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<u64, WriteError<BeyondLatest>> {
        let agency = self.agency.as_str();
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT last_cursor FROM feed_heads WHERE agency_id = $1")
                .bind(agency)
                .fetch_optional(&mut *conn)
                .await?;
        let latest = u64::try_from(latest.unwrap_or(0)).unwrap_or(0);
        if self.cursor > latest {
            return Err(WriteError::Refused(BeyondLatest {
                cursor: self.cursor,
                latest,
            }));
        }
        sqlx::query(
            "INSERT INTO feed_positions (agency_id, acked_cursor, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (agency_id) DO UPDATE SET \
               acked_cursor = CASE WHEN excluded.acked_cursor > feed_positions.acked_cursor \
                                   THEN excluded.acked_cursor ELSE feed_positions.acked_cursor END, \
               updated_at = excluded.updated_at",
        )
        .bind(agency)
        .bind(db(self.cursor))
        .bind(to_micros(self.at))
        .execute(&mut *conn)
        .await?;
        let stored: i64 =
            sqlx::query_scalar("SELECT acked_cursor FROM feed_positions WHERE agency_id = $1")
                .bind(agency)
                .fetch_one(&mut *conn)
                .await?;
        Ok(u64::try_from(stored).unwrap_or(0))
    }
}

impl FromRow for FeedEventRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(FeedEventRecord {
            cursor: decode::number(row, "seq", "feed cursor")?,
            event: NewFeedEvent {
                recipient: decode::parsed(row, "agency_id", "feed agency")?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                resource_name: row.try_get("resource_name")?,
                resource_version: row.try_get("resource_version")?,
                event_time: decode::time(row, "event_time")?,
                actor_agency: row.try_get("actor_agency")?,
                trace_id: row.try_get("trace_id")?,
                needs_disposal: decode::flag(row, "needs_disposal")?,
                payload: row.try_get("payload")?,
            },
        })
    }
}

impl Store {
    /// Appends events in their own write (for callers with no business rows, and tests),
    /// then wakes their subscribers.
    pub async fn append_feed_events(
        &self,
        events: &[NewFeedEvent],
    ) -> Result<Vec<(AgencyId, u64)>, StoreError> {
        let done = self
            .commit(Write::new(NoRows).events(events.to_vec()))
            .await
            .map_err(WriteError::into_store)?;
        Ok(done.written().map(|w| w.assigned).unwrap_or_default())
    }

    /// Up to `limit` events of `agency`'s feed after cursor `after`, in cursor order.
    pub async fn feed_events_after(
        &self,
        agency: &AgencyId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<FeedEventRecord>, StoreError> {
        let query = sqlx::query(
            "SELECT agency_id, seq, event_id, event_type, resource_name, resource_version, \
             event_time, actor_agency, trace_id, needs_disposal, payload FROM feed_events \
             WHERE agency_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(agency.as_str())
        .bind(db(after))
        .bind(i64::from(limit));
        decode::all(query, &self.read).await
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
    /// write, so the stored position and its log entry commit together. A refused ack
    /// ([`AckError::BeyondLatest`]) writes neither.
    pub async fn ack_feed_with_leaf(
        &self,
        agency: &AgencyId,
        cursor: u64,
        now: OffsetDateTime,
        leaf: Option<&LeafData>,
    ) -> Result<u64, AckError> {
        let rows = AckRows {
            agency: agency.clone(),
            cursor,
            at: now,
        };
        match self.commit(Write::new(rows).leaf(leaf.cloned())).await {
            Ok(done) => Ok(done.written().map(|w| w.value).unwrap_or(0)),
            Err(e) => Err(match e.refusal() {
                Ok(BeyondLatest { cursor, latest }) => AckError::BeyondLatest { cursor, latest },
                Err(e) => AckError::Store(e),
            }),
        }
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
                        // between is covered by subscribers re-reading on their heartbeat. While
                        // PostgreSQL is down every reconnect fails at once, so the next waits a
                        // moment instead of spinning (docs/reliability.md, "Database outage").
                        Err(e) => {
                            tracing::warn!(error = %e, "feed listener interrupted");
                            tokio::select! {
                                () = &mut stop => return Ok(()),
                                () = tokio::time::sleep(LISTEN_RETRY) => {}
                            }
                        }
                    }
                }
            }
        }
    }
}
