//! What a referral is in the store: the rows to insert, the rows as stored, the list filters,
//! and inserting new referrals inside a write (the write primitive opens a write's referrals
//! with this, so it depends on nothing that writes).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime, Time};
use yrd_domain::AgencyId;
use yrd_domain::calendar::CHINA_STANDARD_TIME;
use yrd_domain::referral::{Referral, ReferralState};
use yrd_domain::spotcheck::SpotCheckResult;

use crate::StoreError;
use crate::decode::{self, FromRow};
use crate::error::refuse_duplicate;
use crate::feed::NewFeedEvent;
use crate::text::fold_name;
use crate::time_codec::to_micros;

/// A referral to insert: opened by hand, or automatically with the result that needs it.
#[derive(Debug, Clone)]
pub struct NewReferral {
    /// The referral id the exchange assigned.
    pub id: String,
    /// The referred result.
    pub result_id: String,
    /// The referred version of it.
    pub result_version: u32,
    /// The result's product name, for the product filter.
    pub product_name: String,
    /// The result's nominal producer USCC, for the producer filter.
    pub producer_uscc: String,
    /// The state machine as opened.
    pub machine: Referral,
    /// The encoded `yrd.exchange.v1.Referral` as opened.
    pub body: Vec<u8>,
    /// When it was opened.
    pub at: OffsetDateTime,
    /// The feed events of the opening.
    pub events: Vec<NewFeedEvent>,
}

/// A referral as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReferral {
    /// The referral id.
    pub id: String,
    /// The referred result.
    pub result_id: String,
    /// The referred version.
    pub result_version: u32,
    /// The state machine.
    pub machine: Referral,
    /// The encoded `yrd.exchange.v1.Referral`.
    pub body: Vec<u8>,
    /// The revision to name in a change.
    pub revision: u32,
    /// When it was opened.
    pub created_at: OffsetDateTime,
    /// The case (串案) its result is in, if any (docs/cases.md).
    pub case_id: Option<String>,
}

/// A referral of a result, in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultReferral {
    /// The referral id.
    pub id: String,
    /// Its handling agency now.
    pub handling_agency: AgencyId,
    /// Whether it is still open.
    pub open: bool,
}

/// Why a referral write was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReferralWriteError {
    /// The request id was used before by this agency for this method with another body.
    #[error("request id {request_id:?} was already used for a different request")]
    RequestIdReused {
        /// The request id.
        request_id: String,
    },
    /// No referral has this id.
    #[error("referral {0} does not exist")]
    NotFound(String),
    /// The referral changed since it was read.
    #[error("referral {0} changed since it was read")]
    Conflict(String),
    /// The result already has an open referral to that handling agency.
    #[error("result {result_id} already has an open referral to {handling_agency}")]
    AlreadyOpen {
        /// The result.
        result_id: String,
        /// The handling agency.
        handling_agency: AgencyId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::error::store_failure!(ReferralWriteError);

/// The caller's part in the referrals a list asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReferralParty {
    /// Sampling or handling agency.
    #[default]
    SamplingOrHandling,
    /// Sampling agency.
    Sampling,
    /// Handling agency (now).
    Handling,
    /// An agency that reacted.
    Reacting,
}

/// Which referrals a list asks for; `None` fields do not filter, the others combine with AND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralFilter {
    /// The listing agency.
    pub agency: AgencyId,
    /// Its part in the referrals.
    pub party: ReferralParty,
    /// The stored state name ([`state_name`]).
    pub state: Option<&'static str>,
    /// Overdue or not.
    pub overdue: Option<bool>,
    /// Flagged for the announcement or not.
    pub announcement_required: Option<bool>,
    /// Text the product name contains, compared case-insensitively.
    pub product_name_contains: Option<String>,
    /// The nominal producer's USCC.
    pub producer_uscc: Option<String>,
}

/// Where a page of a list ends: the last referral's opening time and id; the next page holds
/// the referrals strictly older in `(created_at, id)` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralCursor {
    /// Opening time, Unix microseconds.
    pub created_at_us: i64,
    /// Referral id.
    pub id: String,
}

impl StoredReferral {
    /// The cursor that continues a list after this referral.
    pub fn cursor(&self) -> ReferralCursor {
        ReferralCursor {
            created_at_us: to_micros(self.created_at),
            id: self.id.clone(),
        }
    }
}

impl FromRow for StoredReferral {
    fn from_row(row: &AnyRow) -> Result<StoredReferral, StoreError> {
        let machine: String = row.try_get("machine")?;
        Ok(StoredReferral {
            id: row.try_get("id")?,
            result_id: row.try_get("result_id")?,
            result_version: decode::number(row, "result_version", "referral number")?,
            machine: serde_json::from_str(&machine)
                .map_err(|e| StoreError::corrupt("referral machine", e))?,
            body: row.try_get("body")?,
            revision: decode::number(row, "revision", "referral number")?,
            created_at: decode::time(row, "created_at")?,
            case_id: row.try_get("case_id")?,
        })
    }
}

/// The stored name of a state (an objection's resume state and a closure's outcome live in
/// the machine, not in the column).
pub fn state_name(state: &ReferralState) -> &'static str {
    match state {
        ReferralState::Opened => "opened",
        ReferralState::Delivered => "delivered",
        ReferralState::InProgress => "in_progress",
        ReferralState::Rectifying => "rectifying",
        ReferralState::ObjectionPending { .. } => "objection_pending",
        ReferralState::Announced => "announced",
        ReferralState::Returned => "returned",
        ReferralState::Closed(_) => "closed",
    }
}

/// The instant a deadline due on `due` (inclusive, a China Standard Time day) has passed: the
/// start of the next day in China.
pub fn passes_at(due: Date) -> OffsetDateTime {
    due.next_day()
        .unwrap_or(due)
        .with_time(Time::MIDNIGHT)
        .assume_offset(CHINA_STANDARD_TIME)
}

/// The derived columns of a machine.
pub(crate) struct Columns {
    pub(crate) handling_agency: String,
    pub(crate) state: &'static str,
    pub(crate) is_open: i64,
    pub(crate) overdue: i64,
    pub(crate) announcement_required: i64,
    pub(crate) next_due_at: Option<i64>,
    pub(crate) revision: i64,
    pub(crate) machine: String,
}

impl Columns {
    pub(crate) fn of(m: &Referral) -> Result<Columns, StoreError> {
        Ok(Columns {
            handling_agency: m.handling_agency.as_str().to_owned(),
            state: state_name(&m.state),
            is_open: i64::from(!matches!(m.state, ReferralState::Closed(_))),
            overdue: i64::from(!m.flags.overdue.is_empty()),
            announcement_required: i64::from(m.flags.announcement_required),
            next_due_at: m.next_deadline().map(|d| to_micros(passes_at(d.due))),
            revision: i64::from(m.timeline_len),
            machine: serde_json::to_string(m)
                .map_err(|e| StoreError::corrupt("referral machine", e))?,
        })
    }
}

pub(crate) const REFERRAL_COLUMNS: &str = "r.id, r.result_id, r.result_version, r.machine, r.body, \
     r.revision, r.created_at, \
     (SELECT cr.case_id FROM case_results cr WHERE cr.result_id = r.result_id) AS case_id";

/// Inserts `referrals` inside the write's transaction (their feed events are appended with the
/// batch's, [`crate::write`]). A second open referral of a result to the same agency is
/// `AlreadyOpen`.
pub(crate) async fn insert_referrals_in(
    conn: &mut AnyConnection,
    referrals: &[NewReferral],
) -> Result<(), ReferralWriteError> {
    for r in referrals {
        let c = Columns::of(&r.machine)?;
        let at = to_micros(r.at);
        let inserted = sqlx::query(
            "INSERT INTO referrals (id, result_id, result_version, sampling_agency, \
             handling_agency, state, is_open, product_name_fold, producer_uscc, overdue, \
             announcement_required, next_due_at, revision, machine, body, created_at, \
             updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
        )
        .bind(&r.id)
        .bind(&r.result_id)
        .bind(i64::from(r.result_version))
        .bind(r.machine.sampling_agency.as_str())
        .bind(&c.handling_agency)
        .bind(c.state)
        .bind(c.is_open)
        .bind(fold_name(&r.product_name))
        .bind(&r.producer_uscc)
        .bind(c.overdue)
        .bind(c.announcement_required)
        .bind(c.next_due_at)
        .bind(c.revision)
        .bind(&c.machine)
        .bind(&r.body)
        .bind(at)
        .execute(&mut *conn)
        .await;
        refuse_duplicate(inserted, || ReferralWriteError::AlreadyOpen {
            result_id: r.result_id.clone(),
            handling_agency: r.machine.handling_agency.clone(),
        })?;
        // A referral of a result in a case has the case's agencies as reacting agencies from
        // its first row (docs/cases.md).
        crate::cases::new_referral_reactors_in(conn, &r.result_id, at).await?;
    }
    Ok(())
}

/// The product name and producer USCC a referral of `result` is filtered by.
pub fn list_columns(result: &SpotCheckResult) -> (String, String) {
    (
        result.product().name.clone(),
        result.producer().uscc.as_str().to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn a_deadline_passes_at_midnight_in_china() {
        assert_eq!(
            passes_at(date!(2024 - 03 - 12)),
            datetime!(2024-03-12 16:00 UTC)
        );
    }
}
