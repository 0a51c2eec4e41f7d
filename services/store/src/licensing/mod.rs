//! Production-licence applications and licences of Hu-Lu joint processing (沪鲁通办).
//!
//! Why it is shaped so:
//!
//! * **The store writes bytes, the service decides.** An application row carries the columns
//!   lists filter on, the state machine's data as JSON (`machine`) and the application as the
//!   contract shows it (`view`, an encoded message); each step appends its own encoded history
//!   entry. The rules live in `yrd_domain::licensing`, the wire shapes in the service crate.
//! * **One transaction per step.** [`Store::submit_application`] and [`Store::apply_step`]
//!   claim the request id, write the rows (the licence too, when the step issues or changes
//!   one), append the feed events and the call's audit leaf, and store the answer, all in one
//!   transaction, like the spot-check writes.
//! * **Optimistic concurrency, also between replicas.** A step names the `version` of the row
//!   it was computed from; the `UPDATE … WHERE version = $n` matches no row once another call
//!   (or another replica's scheduler) moved it on, and the step is refused as
//!   [`LicensingWriteError::Conflict`] with nothing written. The overdue scheduler relies on it:
//!   two replicas flagging the same deadline race on that update and only one commits its
//!   events.
//! * **Licence numbers never collide.** Serials come from a per-prefix counter advanced in its
//!   own committed transaction ([`Store::next_licence_serial`]; concurrent callers serialise on
//!   the counter row), and the number is the primary key of `licences`, so even a counter
//!   reset could not give one number twice. A step refused after taking a serial leaves a gap,
//!   never a duplicate.
//!
//! [`Store::submit_application`]: crate::Store::submit_application
//! [`Store::apply_step`]: crate::Store::apply_step
//! [`Store::next_licence_serial`]: crate::Store::next_licence_serial

mod read;
mod write;

use time::OffsetDateTime;
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;

use crate::StoreError;
use crate::feed::NewFeedEvent;
use crate::write::IdempotencyKey;

pub use read::{
    ApplicationFilter, LicenceFilter, PageCursor, ProvinceRole, StoredApplication, StoredLicence,
};

/// Why a licensing write was refused.
#[derive(Debug, thiserror::Error)]
pub enum LicensingWriteError {
    /// The request id was used before by this agency for this method with another body.
    #[error("request id {request_id:?} was already used for a different request")]
    RequestIdReused {
        /// The request id.
        request_id: String,
    },
    /// The application moved on since the step was computed (another call or replica).
    #[error("application {id} changed since it was read")]
    Conflict {
        /// The application.
        id: String,
    },
    /// The licence number is taken (never expected: serials come from a counter).
    #[error("licence number {number} is already taken")]
    NumberTaken {
        /// The number.
        number: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::error::store_failure!(LicensingWriteError);

/// What a step changes on an application row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationColumns {
    /// The state's stored name.
    pub state: String,
    /// Whether a time limit passed unmet.
    pub overdue: bool,
    /// The earliest running time limit not yet flagged, `YYYY-MM-DD`.
    pub next_due: Option<String>,
    /// The state machine's data, JSON.
    pub machine: String,
    /// The application as shown, without history, encoded.
    pub view: Vec<u8>,
}

/// A new application.
#[derive(Debug, Clone)]
pub struct NewApplication {
    /// The request it answers.
    pub key: IdempotencyKey,
    /// The id the exchange assigned.
    pub id: String,
    /// The accepting province's agency.
    pub accepting_agency: AgencyId,
    /// The issuing province's agency.
    pub issuing_agency: AgencyId,
    /// The applicant's USCC.
    pub applicant_uscc: String,
    /// The catalogue code of the product.
    pub catalogue_code: String,
    /// State, data and view.
    pub columns: ApplicationColumns,
    /// The first history entry (seq 1), encoded.
    pub step: Vec<u8>,
    /// When.
    pub at: OffsetDateTime,
    /// Its feed events.
    pub events: Vec<NewFeedEvent>,
    /// The call's audit leaf.
    pub leaf: Option<LeafData>,
    /// The encoded answer, returned again to a retry.
    pub response: Vec<u8>,
}

/// A licence row to write with a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenceWrite {
    /// A newly issued licence.
    Issue {
        /// Its number (primary key).
        number: String,
        /// The holder's USCC.
        holder_uscc: String,
        /// The catalogue code.
        catalogue_code: String,
        /// The state's stored name.
        state: String,
        /// The licence, encoded.
        body: Vec<u8>,
    },
    /// A change of an issued licence (revocation, linked change).
    Update {
        /// Its number.
        number: String,
        /// The state's stored name.
        state: String,
        /// The licence, encoded.
        body: Vec<u8>,
    },
}

/// One step on an application: its new row, history entries, licence write and events.
#[derive(Debug, Clone)]
pub struct ApplicationStepWrite {
    /// The request it answers; `None` for the exchange's own steps (the scheduler).
    pub key: Option<IdempotencyKey>,
    /// The application.
    pub id: String,
    /// The row version the step was computed from.
    pub expected_version: i64,
    /// The new state, data and view.
    pub columns: ApplicationColumns,
    /// New history entries `(seq, encoded step)`.
    pub steps: Vec<(u32, Vec<u8>)>,
    /// The licence row to write, if the step issues or changes one.
    pub licence: Option<LicenceWrite>,
    /// When.
    pub at: OffsetDateTime,
    /// Its feed events.
    pub events: Vec<NewFeedEvent>,
    /// The call's audit leaf.
    pub leaf: Option<LeafData>,
    /// The encoded answer (empty for the scheduler).
    pub response: Vec<u8>,
}
