//! Appending feed events inside a write, and waking this replica's subscribers after it
//! (docs/architecture.md "Delivery"; the wake-up state is `feed::signals`). Kept apart from
//! the feed's reads and acknowledgements so that the write primitive can append events
//! without depending on them.

use std::collections::{BTreeMap, HashMap};

use sqlx::{AnyConnection, Row};
use tokio::sync::watch;
use yrd_domain::AgencyId;

use crate::multirow::{MAX_PARAMS, placeholders};
use crate::time_codec::to_micros;
use crate::{Store, StoreError};

pub use super::event::NewFeedEvent;

/// The PostgreSQL notification channel of feed wake-ups.
pub const FEED_CHANNEL: &str = "yrd_feed";

/// Appends the feed events of a whole batch on `conn` (inside the batch's transaction, after
/// every member has been applied), each with the next cursor of its recipient; answers
/// `(recipient, cursor)` per event, in the order given.
///
/// The heads are advanced by one statement for the batch, one row per recipient **in sorted
/// order**: concurrent batches on PostgreSQL lock the `feed_heads` rows they share in the same
/// order (no deadlock), and only from here to their commit. The row lock is held until the
/// commit, so a batch that appends to the same agency waits for it and takes the cursors after
/// its own: cursors are dense, and cursor order is commit order per agency. The events follow
/// in multi-row `INSERT`s. The batch sends the cross-replica wake-up on PostgreSQL and wakes
/// this replica's subscribers after the commit.
pub(crate) async fn append_feed_events_in(
    conn: &mut AnyConnection,
    events: &[&NewFeedEvent],
) -> Result<Vec<(AgencyId, u64)>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // Per recipient, sorted: how many events it receives.
    let mut counts: BTreeMap<&AgencyId, i64> = BTreeMap::new();
    for event in events {
        *counts.entry(&event.recipient).or_insert(0) += 1;
    }
    let values: Vec<String> = (0..counts.len())
        .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
        .collect();
    let sql = format!(
        "INSERT INTO feed_heads (agency_id, last_cursor) VALUES {} \
         ON CONFLICT (agency_id) DO UPDATE SET last_cursor = feed_heads.last_cursor + \
         excluded.last_cursor RETURNING agency_id, last_cursor",
        values.join(", ")
    );
    let mut heads = sqlx::query(&sql);
    for (agency, n) in &counts {
        heads = heads.bind(agency.as_str()).bind(*n);
    }
    let rows = heads.fetch_all(&mut *conn).await?;
    // The next cursor to hand out, per recipient.
    let mut next: HashMap<&str, i64> = HashMap::with_capacity(counts.len());
    for row in &rows {
        let agency: String = row.try_get("agency_id")?;
        let last: i64 = row.try_get("last_cursor")?;
        let (&recipient, &n) = counts
            .iter()
            .find(|(a, _)| a.as_str() == agency)
            .ok_or_else(|| StoreError::corrupt("feed head", "a head the batch did not advance"))?;
        next.insert(recipient.as_str(), last - n + 1);
    }
    let mut assigned = Vec::with_capacity(events.len());
    let mut cursors = Vec::with_capacity(events.len());
    for event in events {
        let slot = next
            .get_mut(event.recipient.as_str())
            .ok_or_else(|| StoreError::corrupt("feed head", "recipient without a head"))?;
        cursors.push(*slot);
        let cursor = u64::try_from(*slot).map_err(|e| StoreError::corrupt("feed cursor", e))?;
        assigned.push((event.recipient.clone(), cursor));
        *slot += 1;
    }
    const COLUMNS: usize = 11;
    let rows: Vec<(&NewFeedEvent, i64)> = events.iter().copied().zip(cursors).collect();
    for chunk in rows.chunks(MAX_PARAMS / COLUMNS) {
        let sql = format!(
            "INSERT INTO feed_events (agency_id, seq, event_id, event_type, resource_name, \
             resource_version, event_time, actor_agency, trace_id, needs_disposal, payload) \
             VALUES {}",
            placeholders(chunk.len(), COLUMNS)
        );
        let mut insert = sqlx::query(&sql);
        for (event, cursor) in chunk {
            insert = insert
                .bind(event.recipient.as_str())
                .bind(*cursor)
                .bind(&event.event_id)
                .bind(&event.event_type)
                .bind(&event.resource_name)
                .bind(event.resource_version)
                .bind(to_micros(event.event_time))
                .bind(&event.actor_agency)
                .bind(&event.trace_id)
                .bind(i64::from(event.needs_disposal))
                .bind(&event.payload);
        }
        insert.execute(&mut *conn).await?;
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
