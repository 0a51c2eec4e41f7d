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
pub(crate) mod model;

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;
use yrd_domain::referral::Referral;

use crate::conditions::Conditions;
use crate::decode;
use crate::error::refuse_duplicate;
use crate::feed::NewFeedEvent;
use crate::multirow::placeholders;
use crate::text::{contains_pattern, fold_name};
use crate::time_codec::to_micros;
use crate::write::{IdempotencyKey, NoRows, Rows, Write, WriteError, WriteOutcome};
use crate::{Store, StoreError};

use model::{Columns, REFERRAL_COLUMNS};
pub use model::{
    NewReferral, ReferralCursor, ReferralFilter, ReferralParty, ReferralWriteError, ResultReferral,
    StoredReferral, list_columns, passes_at, state_name,
};

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

/// The rows of one step on a referral: the guarded update and the reactor.
#[derive(Debug, Clone)]
struct StepRows {
    id: String,
    expected_revision: u32,
    machine: Referral,
    body: Vec<u8>,
    at: OffsetDateTime,
    reactor: Option<AgencyId>,
}

/// Why a step's rows were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepRefusal {
    /// The referral is not at the expected revision.
    Conflict,
    /// No such referral.
    NotFound,
    /// The new handling agency already has an open referral of the result.
    AlreadyOpen,
}

impl Rows for StepRows {
    type Value = ();
    type Refusal = StepRefusal;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<(), WriteError<StepRefusal>> {
        let c = Columns::of(&self.machine)?;
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
        .bind(&self.body)
        .bind(to_micros(self.at))
        .bind(&self.id)
        .bind(i64::from(self.expected_revision))
        .execute(&mut *conn)
        .await;
        let updated = refuse_duplicate(updated, || WriteError::Refused(StepRefusal::AlreadyOpen))?;
        if updated.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM referrals WHERE id = $1")
                .bind(&self.id)
                .fetch_optional(&mut *conn)
                .await?;
            return Err(WriteError::Refused(match exists {
                Some(_) => StepRefusal::Conflict,
                None => StepRefusal::NotFound,
            }));
        }
        if let Some(reactor) = &self.reactor {
            sqlx::query(
                "INSERT INTO referral_reactors (referral_id, agency, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (referral_id, agency) DO NOTHING",
            )
            .bind(&self.id)
            .bind(reactor.as_str())
            .bind(to_micros(self.at))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// A referral write's error as the referral API states it.
fn referral_error<E>(
    e: WriteError<E>,
    refused: impl FnOnce(E) -> ReferralWriteError,
) -> ReferralWriteError {
    match e {
        WriteError::Refused(e) => refused(e),
        WriteError::RequestIdReused { request_id } => {
            ReferralWriteError::RequestIdReused { request_id }
        }
        WriteError::ReferralAlreadyOpen {
            result_id,
            handling_agency,
        } => ReferralWriteError::AlreadyOpen {
            result_id,
            handling_agency,
        },
        WriteError::Store(e) => ReferralWriteError::Store(e),
    }
}

impl Store {
    /// Opens a referral by hand with its feed events and audit leaf in one write.
    pub async fn create_referral(
        &self,
        key: &IdempotencyKey,
        referral: &NewReferral,
        leaf: Option<&LeafData>,
        response: &[u8],
    ) -> Result<WriteOutcome, ReferralWriteError> {
        let write = Write::new(NoRows)
            .claim_ready(Some(key), response, referral.at)
            .referrals(vec![referral.clone()])
            .leaf(leaf.cloned());
        self.commit_call(write)
            .await
            .map_err(|e| referral_error(e, |never| match never {}))
    }

    /// Applies one step to a referral with its feed events and audit leaf in one write,
    /// provided the referral is still at `expected_revision` (else `Conflict`, nothing written).
    pub async fn change_referral(
        &self,
        change: &ReferralChange,
    ) -> Result<WriteOutcome, ReferralWriteError> {
        let rows = StepRows {
            id: change.id.clone(),
            expected_revision: change.expected_revision,
            machine: change.machine.clone(),
            body: change.body.clone(),
            at: change.at,
            reactor: change.reactor.clone(),
        };
        let write = Write::new(rows)
            .claim_ready(change.key.as_ref(), &change.response, change.at)
            .events(change.events.clone())
            .leaf(change.leaf.clone());
        match self.commit_call(write).await {
            Ok(outcome) => Ok(outcome),
            Err(WriteError::Refused(StepRefusal::AlreadyOpen)) => {
                let result_id: String =
                    sqlx::query_scalar("SELECT result_id FROM referrals WHERE id = $1")
                        .bind(&change.id)
                        .fetch_one(&self.read)
                        .await?;
                Err(ReferralWriteError::AlreadyOpen {
                    result_id,
                    handling_agency: change.machine.handling_agency.clone(),
                })
            }
            Err(e) => Err(referral_error(e, |refused| match refused {
                StepRefusal::Conflict | StepRefusal::AlreadyOpen => {
                    ReferralWriteError::Conflict(change.id.clone())
                }
                StepRefusal::NotFound => ReferralWriteError::NotFound(change.id.clone()),
            })),
        }
    }

    /// Referral `id`, or `None`.
    pub async fn get_referral(&self, id: &str) -> Result<Option<StoredReferral>, StoreError> {
        let sql = format!("SELECT {REFERRAL_COLUMNS} FROM referrals r WHERE r.id = $1");
        let stored: Option<StoredReferral> =
            decode::optional(sqlx::query(&sql).bind(id), &self.read).await?;
        let Some(mut stored) = stored else {
            return Ok(None);
        };
        // Its reacting agencies are those of `referral_reactors`, the case's agencies among
        // them (docs/cases.md): every step that loads it tells them, as `ListReferrals` by
        // the reacting role lists it to them.
        let reactors: Vec<String> =
            sqlx::query_scalar("SELECT agency FROM referral_reactors WHERE referral_id = $1")
                .bind(id)
                .fetch_all(&self.read)
                .await?;
        let reactors = reactors
            .iter()
            .map(|a| {
                a.parse::<AgencyId>()
                    .map_err(|e| StoreError::corrupt("referral reactor", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        stored.machine.join_reacting(reactors);
        Ok(Some(stored))
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
                Ok(ResultReferral {
                    id: row.try_get("id")?,
                    handling_agency: decode::parsed(
                        row,
                        "handling_agency",
                        "referral handling agency",
                    )?,
                    open: decode::flag(row, "is_open")?,
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
        let sql = format!(
            "SELECT result_id, id FROM referrals WHERE result_id IN {} ORDER BY created_at, id",
            placeholders(1, result_ids.len())
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
        let mut q = Conditions::default();
        let agency = q.bind(filter.agency.as_str());
        let from = match filter.party {
            ReferralParty::SamplingOrHandling => {
                q.add(format!(
                    "(r.sampling_agency = {agency} OR r.handling_agency = {agency})"
                ));
                "referrals r".to_owned()
            }
            ReferralParty::Sampling => {
                q.add(format!("r.sampling_agency = {agency}"));
                "referrals r".to_owned()
            }
            ReferralParty::Handling => {
                q.add(format!("r.handling_agency = {agency}"));
                "referrals r".to_owned()
            }
            ReferralParty::Reacting => format!(
                "referrals r JOIN referral_reactors x ON x.referral_id = r.id AND x.agency = {agency}"
            ),
        };
        q.when("r.state = ?", filter.state);
        q.when("r.overdue = ?", filter.overdue);
        q.when("r.announcement_required = ?", filter.announcement_required);
        q.when("r.producer_uscc = ?", filter.producer_uscc.as_deref());
        let name = filter
            .product_name_contains
            .as_deref()
            .map(fold_name)
            .filter(|t| !t.is_empty());
        q.when(
            "r.product_name_fold LIKE ? ESCAPE '\\'",
            name.as_deref().map(contains_pattern),
        );
        q.after(
            "r.created_at",
            "r.id",
            after.map(|c| (c.created_at_us, c.id.as_str())),
        );
        let select = format!("SELECT {REFERRAL_COLUMNS} FROM {from}");
        let sql = q.newest_first(&select, "r.created_at", "r.id", limit);
        decode::all(q.query(&sql), &self.read).await
    }
}
