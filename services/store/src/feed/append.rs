//! Appending feed events inside a write, and this replica's wake-ups (docs/architecture.md
//! "Delivery"). Kept apart from the feed's reads and acknowledgements so that the write
//! primitive can append events without depending on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::AnyConnection;
use time::OffsetDateTime;
use tokio::sync::watch;
use yrd_domain::AgencyId;

use crate::time_codec::to_micros;
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

    pub(crate) fn bump(&self, agency: &AgencyId, cursor: Option<u64>) {
        // A wake-up from another replica carries no cursor: it only wakes the watchers
        // (`send_modify` notifies even when the value stays the same).
        self.sender(agency).send_modify(|latest| {
            if let Some(c) = cursor {
                *latest = (*latest).max(c);
            }
        });
    }
}

/// Appends `events` on `conn` (inside a write's transaction), each with the next cursor of its
/// recipient; answers `(recipient, cursor)` per event, in the order given. Each recipient's
/// head is advanced once for all of its events (one row lock per agency and write). The batch
/// that commits the write sends the cross-replica wake-up on PostgreSQL and wakes this
/// replica's subscribers after the commit.
pub(crate) async fn append_feed_events_in(
    conn: &mut AnyConnection,
    _backend: Backend,
    events: &[NewFeedEvent],
) -> Result<Vec<(AgencyId, u64)>, StoreError> {
    // Per recipient, in first-seen order: how many events it receives.
    let mut counts: Vec<(&AgencyId, i64)> = Vec::new();
    for event in events {
        match counts.iter_mut().find(|(a, _)| *a == &event.recipient) {
            Some((_, n)) => *n += 1,
            None => counts.push((&event.recipient, 1)),
        }
    }
    // The next cursor to hand out, per recipient.
    let mut next: HashMap<&AgencyId, i64> = HashMap::with_capacity(counts.len());
    for (agency, n) in counts {
        sqlx::query(
            "INSERT INTO feed_heads (agency_id, last_cursor) VALUES ($1, 0) \
             ON CONFLICT (agency_id) DO NOTHING",
        )
        .bind(agency.as_str())
        .execute(&mut *conn)
        .await?;
        let last: i64 = sqlx::query_scalar(
            "UPDATE feed_heads SET last_cursor = last_cursor + $1 WHERE agency_id = $2 \
             RETURNING last_cursor",
        )
        .bind(n)
        .bind(agency.as_str())
        .fetch_one(&mut *conn)
        .await?;
        next.insert(agency, last - n + 1);
    }
    let mut assigned = Vec::with_capacity(events.len());
    for event in events {
        let slot = next
            .get_mut(&event.recipient)
            .ok_or_else(|| StoreError::corrupt("feed head", "recipient without a head"))?;
        let cursor = *slot;
        *slot += 1;
        sqlx::query(
            "INSERT INTO feed_events (agency_id, seq, event_id, event_type, resource_name, \
             resource_version, event_time, actor_agency, trace_id, needs_disposal, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(event.recipient.as_str())
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
        .execute(&mut *conn)
        .await?;
        let cursor = u64::try_from(cursor).map_err(|e| StoreError::corrupt("feed cursor", e))?;
        assigned.push((event.recipient.clone(), cursor));
    }
    Ok(assigned)
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
}

/// The shared wake-up state, created with the store.
pub(crate) fn signals() -> Arc<FeedSignals> {
    Arc::new(FeedSignals::default())
}
