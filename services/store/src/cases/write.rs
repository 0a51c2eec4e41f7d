//! The case rows of a result write ([`CaseRows`]) and the officer's unlink ([`NewUnlink`]).

use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;
use yrd_domain::case::Finding;
use yrd_domain::spotcheck::{format_date, parse_date};

use super::CaseState;
use crate::feed::NewFeedEvent;
use crate::results::ResultWriteError;
use crate::time_codec::to_micros;
use crate::write::{IdempotencyKey, Rows, Write, WriteError, WriteOutcome};
use crate::{Store, StoreError};

/// A new case a link creates.
#[derive(Debug, Clone)]
pub struct NewCase {
    /// The producer's USCC.
    pub producer_uscc: String,
    /// The normalised model.
    pub model: String,
    /// The handling agency, where the producer's province has one.
    pub handling_agency: Option<AgencyId>,
    /// W3C trace id of the call that formed the case.
    pub trace_id: String,
    /// The span id of that call's server span ("" when not traced).
    pub span_id: String,
}

/// Results linked into a case.
#[derive(Debug, Clone)]
pub struct LinkRows {
    /// The case.
    pub case_id: String,
    /// The case to create first, when it is new.
    pub create: Option<NewCase>,
    /// The results joining it: id, publisher, finding date.
    pub members: Vec<(String, AgencyId, Date)>,
}

/// The case rows of a result write, applied after the result's own rows.
#[derive(Debug, Clone, Default)]
pub struct CaseRows {
    /// The result.
    pub result_id: String,
    /// Its finding after the write, with its publisher; `None` when it can join no case any
    /// more (conforming, no model, withdrawn) or never could.
    pub finding: Option<(AgencyId, Finding)>,
    /// The candidates the link was decided on, `(result id, case id)` sorted: the guard.
    pub seen: Vec<(String, Option<String>)>,
    /// The link, if the decision made one.
    pub link: Option<LinkRows>,
    /// When.
    pub at: Option<OffsetDateTime>,
}

impl CaseRows {
    /// Applies the rows on `conn` (see the module docs of `cases`).
    pub(crate) async fn apply(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<(), WriteError<ResultWriteError>> {
        if let Some((_, finding)) = &self.finding {
            lock_product(conn, &finding.key.producer_uscc, &finding.key.model).await?;
            let now = candidates_in(
                conn,
                &finding.key.producer_uscc,
                &finding.key.model,
                &self.result_id,
            )
            .await?;
            if now != self.seen {
                return Err(WriteError::Refused(ResultWriteError::CasesMoved(
                    self.result_id.clone(),
                )));
            }
        }
        sqlx::query("DELETE FROM case_findings WHERE result_id = $1")
            .bind(&self.result_id)
            .execute(&mut *conn)
            .await?;
        if let Some((publisher, f)) = &self.finding {
            sqlx::query(
                "INSERT INTO case_findings (result_id, publisher, producer_uscc, model, batch, \
                 trademark, finding_date) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&self.result_id)
            .bind(publisher.as_str())
            .bind(&f.key.producer_uscc)
            .bind(&f.key.model)
            .bind(f.key.batch.as_deref())
            .bind(f.key.trademark.as_deref())
            .bind(format_date(f.date))
            .execute(&mut *conn)
            .await?;
        }
        if let (Some(link), Some(at)) = (&self.link, self.at) {
            link_in(conn, link, to_micros(at)).await?;
        }
        Ok(())
    }
}

/// Locks the row of product (`uscc`, `model`), creating it on its first finding: a write of
/// the same product on another connection waits here until this one commits.
async fn lock_product(conn: &mut AnyConnection, uscc: &str, model: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO case_product_locks (producer_uscc, model) VALUES ($1, $2) \
         ON CONFLICT (producer_uscc, model) DO UPDATE SET model = excluded.model",
    )
    .bind(uscc)
    .bind(model)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The findings of product (`uscc`, `model`) other than result `except`, with their cases,
/// sorted by result id.
pub(super) async fn candidates_in(
    conn: &mut AnyConnection,
    uscc: &str,
    model: &str,
    except: &str,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let rows = sqlx::query(
        "SELECT f.result_id, c.case_id FROM case_findings f \
         LEFT JOIN case_results c ON c.result_id = f.result_id \
         WHERE f.producer_uscc = $1 AND f.model = $2 AND f.result_id <> $3 \
         ORDER BY f.result_id",
    )
    .bind(uscc)
    .bind(model)
    .bind(except)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("result_id")?, r.try_get("case_id")?)))
        .collect()
}

/// Creates the case of `link` when new, adds its members, and brings its finding dates up to
/// date.
async fn link_in(conn: &mut AnyConnection, link: &LinkRows, at: i64) -> Result<(), StoreError> {
    if let Some(new) = &link.create {
        let first = link.members.iter().map(|m| m.2).min();
        let last = link.members.iter().map(|m| m.2).max();
        let (Some(first), Some(last)) = (first, last) else {
            return Err(StoreError::corrupt(
                "case link",
                "a new case without results",
            ));
        };
        sqlx::query(
            "INSERT INTO cases (id, producer_uscc, model, handling_agency, state, first_finding, \
             last_finding, trace_id, span_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&link.case_id)
        .bind(&new.producer_uscc)
        .bind(&new.model)
        .bind(new.handling_agency.as_ref().map(AgencyId::as_str))
        .bind(CaseState::Open.as_str())
        .bind(format_date(first))
        .bind(format_date(last))
        .bind(&new.trace_id)
        .bind(&new.span_id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    for (result_id, publisher, date) in &link.members {
        sqlx::query(
            "INSERT INTO case_results (result_id, case_id, publisher, finding_date, linked_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(result_id)
        .bind(&link.case_id)
        .bind(publisher.as_str())
        .bind(format_date(*date))
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    refresh_case(conn, &link.case_id, at).await?;
    case_reactors_in(conn, &link.case_id, at).await
}

/// Makes every agency of case `case_id` (the publishers of its results and its handling
/// agency) a reacting agency of every referral of its results, in `referral_reactors`, the
/// referral's own parties excepted (docs/cases.md "What the agencies see"). Run by the write
/// that links results into the case and by the one that opens a referral of a result in it;
/// a reacting agency is never removed, as after a reaction.
pub(crate) async fn case_reactors_in(
    conn: &mut AnyConnection,
    case_id: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO referral_reactors (referral_id, agency, created_at) \
         SELECT r.id, a.agency, $2 FROM case_results m \
         JOIN referrals r ON r.result_id = m.result_id \
         JOIN (SELECT publisher AS agency FROM case_results WHERE case_id = $1 \
               UNION SELECT handling_agency AS agency FROM cases \
               WHERE id = $1 AND handling_agency IS NOT NULL) a ON 1 = 1 \
         WHERE m.case_id = $1 AND a.agency <> r.sampling_agency \
         AND a.agency <> r.handling_agency \
         ON CONFLICT (referral_id, agency) DO NOTHING",
    )
    .bind(case_id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The reacting agencies a new referral of result `result_id` gets from the case the result
/// is in, if any (see [`case_reactors_in`]).
pub(crate) async fn new_referral_reactors_in(
    conn: &mut AnyConnection,
    result_id: &str,
    at: i64,
) -> Result<(), StoreError> {
    let case: Option<String> =
        sqlx::query_scalar("SELECT case_id FROM case_results WHERE result_id = $1")
            .bind(result_id)
            .fetch_optional(&mut *conn)
            .await?;
    match case {
        Some(case) => case_reactors_in(conn, &case, at).await,
        None => Ok(()),
    }
}

/// Sets case `id`'s first and last finding from its results, and its state: open with two or
/// more results, dissolved (its last result let go) with fewer.
async fn refresh_case(conn: &mut AnyConnection, id: &str, at: i64) -> Result<(), StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(finding_date) AS first, MAX(finding_date) AS last \
         FROM case_results WHERE case_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let count: i64 = row.try_get("n")?;
    if count < 2 {
        sqlx::query("DELETE FROM case_results WHERE case_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE cases SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(CaseState::Dissolved.as_str())
            .bind(at)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    let first: String = row.try_get("first")?;
    let last: String = row.try_get("last")?;
    for date in [&first, &last] {
        parse_date(date).map_err(|e| StoreError::corrupt("case finding date", e))?;
    }
    sqlx::query(
        "UPDATE cases SET state = $1, first_finding = $2, last_finding = $3, updated_at = $4 \
         WHERE id = $5",
    )
    .bind(CaseState::Open.as_str())
    .bind(first)
    .bind(last)
    .bind(at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Why an unlink was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnlinkError {
    /// No case has this id.
    #[error("case {0} does not exist")]
    NotFound(String),
    /// The result is not in the case.
    #[error("result {result_id} is not in case {case_id}")]
    NotInCase {
        /// The case.
        case_id: String,
        /// The result.
        result_id: String,
    },
    /// The request id was used before with another body.
    #[error("request id {request_id:?} was already used for a different request")]
    RequestIdReused {
        /// The request id.
        request_id: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An officer's unlink of a result from a case, with what it commits beside.
#[derive(Debug, Clone)]
pub struct NewUnlink {
    /// The request it answers.
    pub key: IdempotencyKey,
    /// The case.
    pub case_id: String,
    /// The result let go.
    pub result_id: String,
    /// The officer's agency.
    pub agency: AgencyId,
    /// The officer.
    pub officer: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: OffsetDateTime,
    /// The feed events it raises.
    pub events: Vec<NewFeedEvent>,
    /// The call's audit leaf.
    pub leaf: Option<LeafData>,
    /// The encoded answer, returned again to a retry.
    pub response: Vec<u8>,
}

#[derive(Debug, Clone)]
struct UnlinkRows {
    case_id: String,
    result_id: String,
    agency: AgencyId,
    officer: String,
    reason: String,
    at: i64,
}

impl Rows for UnlinkRows {
    type Value = ();
    type Refusal = UnlinkError;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<(), WriteError<UnlinkError>> {
        let product = sqlx::query("SELECT producer_uscc, model FROM cases WHERE id = $1")
            .bind(&self.case_id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(product) = product else {
            return Err(WriteError::Refused(UnlinkError::NotFound(
                self.case_id.clone(),
            )));
        };
        let uscc: String = product.try_get("producer_uscc")?;
        let model: String = product.try_get("model")?;
        lock_product(conn, &uscc, &model).await?;
        let removed = sqlx::query("DELETE FROM case_results WHERE result_id = $1 AND case_id = $2")
            .bind(&self.result_id)
            .bind(&self.case_id)
            .execute(&mut *conn)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(WriteError::Refused(UnlinkError::NotInCase {
                case_id: self.case_id.clone(),
                result_id: self.result_id.clone(),
            }));
        }
        sqlx::query(
            "INSERT INTO case_unlinks (case_id, result_id, agency, officer, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&self.case_id)
        .bind(&self.result_id)
        .bind(self.agency.as_str())
        .bind(&self.officer)
        .bind(&self.reason)
        .bind(self.at)
        .execute(&mut *conn)
        .await?;
        refresh_case(conn, &self.case_id, self.at).await?;
        Ok(())
    }
}

impl Store {
    /// Unlinks a result from a case with the call's claim, feed events and audit leaf in one
    /// write. Refused when the case does not exist or the result is not in it.
    pub async fn unlink_case_result(&self, u: &NewUnlink) -> Result<WriteOutcome, UnlinkError> {
        let rows = UnlinkRows {
            case_id: u.case_id.clone(),
            result_id: u.result_id.clone(),
            agency: u.agency.clone(),
            officer: u.officer.clone(),
            reason: u.reason.clone(),
            at: to_micros(u.at),
        };
        let write = Write::new(rows)
            .claim_ready(Some(&u.key), &u.response, u.at)
            .events(u.events.clone())
            .leaf(u.leaf.clone());
        self.commit_call(write)
            .await
            .map_err(|e| match e.refusal() {
                Ok(refused) => refused,
                Err(StoreError::RequestIdReused { request_id }) => {
                    UnlinkError::RequestIdReused { request_id }
                }
                Err(e) => UnlinkError::Store(e),
            })
    }
}
