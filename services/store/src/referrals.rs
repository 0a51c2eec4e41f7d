//! Referrals of non-conforming results (不合格产品联动处置): their rows, the list and scheduler
//! queries, and the one-transaction writes of each step.
//!
//! Why it is shaped so:
//!
//! * **The machine is stored whole.** The domain's [`Referral`] (state, clocks, flags, parties)
//!   is kept as JSON next to the referral as partners read it (an encoded
//!   `yrd.exchange.v1.Referral`, built by the disposal service), so a step loads both, lets the
//!   domain decide, and writes both back. The columns beside them are derived here from the
//!   machine and exist only to be filtered or indexed on: the state, the parties, the flags, and
//!   `next_due_at`, the instant the next deadline passes, which drives the scheduler by index.
//! * **Optimistic concurrency on `revision`.** Every change is `UPDATE … WHERE revision =
//!   <the one read>`; when another replica, call or scheduler tick changed the referral first
//!   nothing is written and [`ReferralWriteError::Conflict`] tells the caller to read again. So a
//!   deadline flag is set once, and its feed events are raised once, however many replicas run
//!   the scheduler on one PostgreSQL.
//! * **One open referral per result and handling agency** is a partial unique index, not only a
//!   check in the handler; a race ends in [`ReferralWriteError::AlreadyOpen`].
//! * **Idempotency** uses the spot-check writes' `idempotency` table and claim, in the same
//!   transaction as the step.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use time::{Date, OffsetDateTime, Time};
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;
use yrd_domain::calendar::CHINA_STANDARD_TIME;
use yrd_domain::referral::{JurisdictionBasis, Referral, ReferralState, Refusal};
use yrd_domain::spotcheck::SpotCheckResult;

use crate::audit::append_leaf_in;
use crate::error::is_unique_violation;
use crate::feed::{NewFeedEvent, append_feed_events_in};
use crate::results::{IdempotencyKey, WriteOutcome, claim_request, fold_name};
use crate::time_codec::{from_micros, to_micros};
use crate::{Backend, ResultWriteError, Store, StoreError};

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

/// One step on an existing referral, from a call or from the scheduler.
#[derive(Debug, Clone)]
pub struct ReferralChange {
    /// The request it answers; `None` for the scheduler, whose steps are no calls.
    pub key: Option<IdempotencyKey>,
    /// The referral.
    pub id: String,
    /// The revision the step was decided on; the write applies only while it is current.
    pub expected_revision: u32,
    /// The state machine after the step.
    pub machine: Referral,
    /// The encoded `yrd.exchange.v1.Referral` after the step.
    pub body: Vec<u8>,
    /// When.
    pub at: OffsetDateTime,
    /// The agency that reacted, for a reaction.
    pub reactor: Option<AgencyId>,
    /// The feed events of the step.
    pub events: Vec<NewFeedEvent>,
    /// The call's audit leaf.
    pub leaf: Option<LeafData>,
    /// The encoded answer, returned again to a retry.
    pub response: Vec<u8>,
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

impl From<sqlx::Error> for ReferralWriteError {
    fn from(e: sqlx::Error) -> Self {
        ReferralWriteError::Store(e.into())
    }
}

impl From<ResultWriteError> for ReferralWriteError {
    fn from(e: ResultWriteError) -> Self {
        match e {
            ResultWriteError::RequestIdReused { request_id } => {
                ReferralWriteError::RequestIdReused { request_id }
            }
            ResultWriteError::Store(e) => ReferralWriteError::Store(e),
            other => ReferralWriteError::Store(StoreError::corrupt("idempotency claim", other)),
        }
    }
}

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

    fn from_row(row: &AnyRow) -> Result<StoredReferral, StoreError> {
        let number = |name: &str| -> Result<u32, StoreError> {
            u32::try_from(row.try_get::<i64, _>(name)?)
                .map_err(|e| StoreError::corrupt("referral number", e))
        };
        let machine: String = row.try_get("machine")?;
        Ok(StoredReferral {
            id: row.try_get("id")?,
            result_id: row.try_get("result_id")?,
            result_version: number("result_version")?,
            machine: serde_json::from_str(&machine)
                .map_err(|e| StoreError::corrupt("referral machine", e))?,
            body: row.try_get("body")?,
            revision: number("revision")?,
            created_at: from_micros(row.try_get("created_at")?)?,
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
struct Columns {
    handling_agency: String,
    state: &'static str,
    is_open: i64,
    overdue: i64,
    announcement_required: i64,
    next_due_at: Option<i64>,
    revision: i64,
    machine: String,
}

impl Columns {
    fn of(m: &Referral) -> Result<Columns, StoreError> {
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

const REFERRAL_COLUMNS: &str = "r.id, r.result_id, r.result_version, r.machine, r.body, \
                                r.revision, r.created_at";

/// Inserts `referrals` with their feed events inside `tx`; answers the `(recipient, cursor)`s
/// assigned. A second open referral of a result to the same agency is `AlreadyOpen`.
pub(crate) async fn insert_referrals_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    referrals: &[NewReferral],
) -> Result<Vec<(AgencyId, u64)>, ReferralWriteError> {
    let mut assigned = Vec::new();
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
        .execute(&mut **tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(ReferralWriteError::AlreadyOpen {
                    result_id: r.result_id.clone(),
                    handling_agency: r.machine.handling_agency.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        assigned.extend(append_feed_events_in(tx, backend, &r.events).await?);
    }
    Ok(assigned)
}

/// A referral the exchange opens by itself when a non-conforming result is published (or
/// corrected) against a producer or seller in another province.
#[derive(Debug, Clone)]
pub struct AutoReferral<'a> {
    /// The result.
    pub result_id: &'a str,
    /// Its version.
    pub result_version: u32,
    /// Its validated content.
    pub result: &'a SpotCheckResult,
    /// The publisher, which is the sampling agency.
    pub sampling_agency: &'a AgencyId,
    /// The agency with jurisdiction.
    pub handling_agency: &'a AgencyId,
    /// Why it has jurisdiction.
    pub basis: JurisdictionBasis,
    /// When.
    pub at: OffsetDateTime,
    /// The trace of the publishing call, for the feed events.
    pub trace_id: &'a str,
    /// The officer named in the publishing call's token.
    pub officer: &'a str,
}

/// Builds the referrals the exchange opens automatically. The disposal service implements it
/// (it owns what a referral looks like on the wire); the gateway hands it to the spot-check
/// service, which writes what it builds in the transaction of the result, so neither service
/// crate depends on the other.
pub trait ReferralOpener: Send + Sync + std::fmt::Debug {
    /// The referral (its rows and feed events) to open for `referral`.
    fn open_automatic(&self, referral: &AutoReferral<'_>) -> Result<NewReferral, Refusal>;
}

/// The product name and producer USCC a referral of `result` is filtered by.
pub fn list_columns(result: &SpotCheckResult) -> (String, String) {
    (
        result.product().name.clone(),
        result.producer().uscc.as_str().to_owned(),
    )
}

impl Store {
    /// Opens a referral by hand with its feed events and audit leaf in one transaction.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "create_referral", db.system = self.backend().as_str()))]
    pub async fn create_referral(
        &self,
        key: &IdempotencyKey,
        referral: &NewReferral,
        leaf: Option<&LeafData>,
        response: &[u8],
    ) -> Result<WriteOutcome, ReferralWriteError> {
        let mut tx = self.write.begin().await?;
        if let Some(answer) = claim_request(&mut tx, key, response, referral.at).await? {
            return Ok(WriteOutcome::Replayed(answer));
        }
        let assigned =
            insert_referrals_in(&mut tx, self.backend(), std::slice::from_ref(referral)).await?;
        if let Some(leaf) = leaf {
            append_leaf_in(&mut tx, leaf).await?;
        }
        tx.commit().await?;
        self.feed_committed(&assigned);
        Ok(WriteOutcome::Written(assigned))
    }

    /// Applies one step to a referral with its feed events and audit leaf in one transaction,
    /// provided the referral is still at `expected_revision` (else `Conflict`, nothing written).
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "change_referral", db.system = self.backend().as_str()))]
    pub async fn change_referral(
        &self,
        change: &ReferralChange,
    ) -> Result<WriteOutcome, ReferralWriteError> {
        let mut tx = self.write.begin().await?;
        if let Some(key) = &change.key {
            if let Some(answer) = claim_request(&mut tx, key, &change.response, change.at).await? {
                return Ok(WriteOutcome::Replayed(answer));
            }
        }
        let c = Columns::of(&change.machine)?;
        let updated = sqlx::query(
            "UPDATE referrals SET handling_agency = $1, state = $2, is_open = $3, overdue = $4, \
             announcement_required = $5, next_due_at = $6, revision = $7, machine = $8, \
             body = $9, updated_at = $10 WHERE id = $11 AND revision = $12",
        )
        .bind(&c.handling_agency)
        .bind(c.state)
        .bind(c.is_open)
        .bind(c.overdue)
        .bind(c.announcement_required)
        .bind(c.next_due_at)
        .bind(c.revision)
        .bind(&c.machine)
        .bind(&change.body)
        .bind(to_micros(change.at))
        .bind(&change.id)
        .bind(i64::from(change.expected_revision))
        .execute(&mut *tx)
        .await;
        let updated = match updated {
            Ok(done) => done,
            Err(e) if is_unique_violation(&e) => {
                let result_id: String =
                    sqlx::query_scalar("SELECT result_id FROM referrals WHERE id = $1")
                        .bind(&change.id)
                        .fetch_one(&self.read)
                        .await?;
                return Err(ReferralWriteError::AlreadyOpen {
                    result_id,
                    handling_agency: change.machine.handling_agency.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        if updated.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM referrals WHERE id = $1")
                .bind(&change.id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => ReferralWriteError::Conflict(change.id.clone()),
                None => ReferralWriteError::NotFound(change.id.clone()),
            });
        }
        if let Some(reactor) = &change.reactor {
            sqlx::query(
                "INSERT INTO referral_reactors (referral_id, agency, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (referral_id, agency) DO NOTHING",
            )
            .bind(&change.id)
            .bind(reactor.as_str())
            .bind(to_micros(change.at))
            .execute(&mut *tx)
            .await?;
        }
        let assigned = append_feed_events_in(&mut tx, self.backend(), &change.events).await?;
        if let Some(leaf) = &change.leaf {
            append_leaf_in(&mut tx, leaf).await?;
        }
        tx.commit().await?;
        self.feed_committed(&assigned);
        Ok(WriteOutcome::Written(assigned))
    }

    /// Referral `id`, or `None`.
    pub async fn get_referral(&self, id: &str) -> Result<Option<StoredReferral>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REFERRAL_COLUMNS} FROM referrals r WHERE r.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(StoredReferral::from_row).transpose()
    }

    /// The referrals of result `result_id`, oldest first.
    pub async fn referrals_of_result(
        &self,
        result_id: &str,
    ) -> Result<Vec<ResultReferral>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, handling_agency, is_open FROM referrals WHERE result_id = $1 \
             ORDER BY created_at, id",
        )
        .bind(result_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let handling: String = row.try_get("handling_agency")?;
                Ok(ResultReferral {
                    id: row.try_get("id")?,
                    handling_agency: AgencyId::parse(&handling)
                        .map_err(|e| StoreError::corrupt("referral handling agency", e))?,
                    open: row.try_get::<i64, _>("is_open")? != 0,
                })
            })
            .collect()
    }

    /// The referral names (`referrals/{id}`) of each of `result_ids`, oldest first: what a
    /// result's `referrals` field lists, for a page of results in one query.
    pub async fn referral_names_of_results(
        &self,
        result_ids: &[&str],
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        if result_ids.is_empty() {
            return Ok(names);
        }
        let placeholders = (1..=result_ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT result_id, id FROM referrals WHERE result_id IN ({placeholders}) \
             ORDER BY created_at, id"
        );
        let mut query = sqlx::query(&sql);
        for id in result_ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&self.read).await? {
            let result_id: String = row.try_get("result_id")?;
            let id: String = row.try_get("id")?;
            names
                .entry(result_id)
                .or_default()
                .push(format!("referrals/{id}"));
        }
        Ok(names)
    }

    /// The ids of up to `limit` referrals whose next deadline passed by `now`, earliest first.
    pub async fn due_referrals(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM referrals WHERE next_due_at IS NOT NULL AND next_due_at <= $1 \
             ORDER BY next_due_at, id LIMIT $2",
        )
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?)
    }

    /// Up to `limit` referrals matching `filter`, newest first, strictly after `after`.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "list_referrals", db.system = self.backend().as_str()))]
    pub async fn list_referrals(
        &self,
        filter: &ReferralFilter,
        after: Option<&ReferralCursor>,
        limit: u32,
    ) -> Result<Vec<StoredReferral>, StoreError> {
        let mut binds: Vec<Bind> = vec![Bind::Text(filter.agency.as_str().to_owned())];
        let mut conditions: Vec<String> = Vec::new();
        let from = match filter.party {
            ReferralParty::SamplingOrHandling => {
                conditions.push("(r.sampling_agency = $1 OR r.handling_agency = $1)".to_owned());
                "referrals r"
            }
            ReferralParty::Sampling => {
                conditions.push("r.sampling_agency = $1".to_owned());
                "referrals r"
            }
            ReferralParty::Handling => {
                conditions.push("r.handling_agency = $1".to_owned());
                "referrals r"
            }
            ReferralParty::Reacting => {
                "referrals r JOIN referral_reactors x ON x.referral_id = r.id AND x.agency = $1"
            }
        };
        let mut push = |binds: &mut Vec<Bind>, sql: &str, value: Bind| {
            binds.push(value);
            conditions.push(sql.replace('?', &format!("${}", binds.len())));
        };
        if let Some(state) = filter.state {
            push(&mut binds, "r.state = ?", Bind::Text(state.to_owned()));
        }
        if let Some(overdue) = filter.overdue {
            push(&mut binds, "r.overdue = ?", Bind::Int(i64::from(overdue)));
        }
        if let Some(flag) = filter.announcement_required {
            push(
                &mut binds,
                "r.announcement_required = ?",
                Bind::Int(i64::from(flag)),
            );
        }
        if let Some(uscc) = &filter.producer_uscc {
            push(&mut binds, "r.producer_uscc = ?", Bind::Text(uscc.clone()));
        }
        if let Some(text) = filter
            .product_name_contains
            .as_deref()
            .map(fold_name)
            .filter(|t| !t.is_empty())
        {
            push(
                &mut binds,
                "r.product_name_fold LIKE ? ESCAPE '\\'",
                Bind::Text(crate::results::contains_pattern(&text)),
            );
        }
        if let Some(after) = after {
            binds.push(Bind::Int(after.created_at_us));
            let c = binds.len();
            binds.push(Bind::Text(after.id.clone()));
            let i = binds.len();
            conditions.push(format!(
                "r.created_at <= ${c} AND (r.created_at < ${c} OR r.id < ${i})"
            ));
        }
        binds.push(Bind::Int(i64::from(limit)));
        let sql = format!(
            "SELECT {REFERRAL_COLUMNS} FROM {from}{} ORDER BY r.created_at DESC, r.id DESC \
             LIMIT ${}",
            if conditions.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conditions.join(" AND "))
            },
            binds.len()
        );
        let mut query = sqlx::query(&sql);
        for value in &binds {
            query = match value {
                Bind::Text(s) => query.bind(s.as_str()),
                Bind::Int(i) => query.bind(*i),
            };
        }
        query
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(StoredReferral::from_row)
            .collect()
    }
}

/// A value bound to a list query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bind {
    Text(String),
    Int(i64),
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
