//! The feed event a write appends, as the write carries it: plain data, below the appends and
//! the write queue that both handle it.

use time::OffsetDateTime;
use yrd_domain::AgencyId;

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
