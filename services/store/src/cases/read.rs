//! The reads of cases: the candidates a link is decided on, a case with its results, lists.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use yrd_domain::AgencyId;
use yrd_domain::case::{Finding, ProductKey};
use yrd_domain::spotcheck::parse_date;

use super::{CaseMember, CaseState, StoredCase, StoredFinding, StoredUnlink};
use crate::decode::{self, FromRow};
use crate::{Store, StoreError};

/// The filters of a case list; every one given must hold.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only cases this agency is in (as a publisher of a result or as the handling agency).
    pub agency: Option<AgencyId>,
    /// Only cases of this producer USCC.
    pub producer_uscc: Option<String>,
    /// Only cases of this normalised model.
    pub model: Option<String>,
    /// Only cases in this state.
    pub state: Option<CaseState>,
}

/// Where a page of cases starts: after the case created at `created_at` (Unix microseconds)
/// with id `id`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseCursor {
    /// Creation time of the last case of the previous page, Unix microseconds.
    pub created_at: i64,
    /// Its id.
    pub id: String,
}

fn date(row: &AnyRow, column: &str) -> Result<time::Date, StoreError> {
    parse_date(&row.try_get::<String, _>(column)?).map_err(|e| StoreError::corrupt("case date", e))
}

impl FromRow for StoredFinding {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(StoredFinding {
            result_id: row.try_get("result_id")?,
            publisher: decode::parsed(row, "publisher", "finding publisher")?,
            finding: Finding {
                key: ProductKey {
                    producer_uscc: row.try_get("producer_uscc")?,
                    model: row.try_get("model")?,
                    batch: row.try_get("batch")?,
                    trademark: row.try_get("trademark")?,
                },
                date: date(row, "finding_date")?,
            },
            case_id: row.try_get("case_id")?,
        })
    }
}

/// The columns of a `cases` row as [`case_row`] reads them.
const CASE_COLUMNS: &str = "c.id, c.producer_uscc, c.model, c.handling_agency, c.state, \
     c.first_finding, c.last_finding, c.trace_id, c.span_id, c.created_at, c.updated_at";

fn case_row(row: &AnyRow) -> Result<StoredCase, StoreError> {
    let handling: Option<String> = row.try_get("handling_agency")?;
    Ok(StoredCase {
        id: row.try_get("id")?,
        producer_uscc: row.try_get("producer_uscc")?,
        model: row.try_get("model")?,
        handling_agency: handling
            .map(|a| AgencyId::parse(&a))
            .transpose()
            .map_err(|e| StoreError::corrupt("case handling agency", e))?,
        state: CaseState::parse(&row.try_get::<String, _>("state")?)?,
        first_finding: date(row, "first_finding")?,
        last_finding: date(row, "last_finding")?,
        trace_id: row.try_get("trace_id")?,
        span_id: row.try_get("span_id")?,
        created_at: decode::time(row, "created_at")?,
        updated_at: decode::time(row, "updated_at")?,
        members: Vec::new(),
        unlinks: Vec::new(),
    })
}

impl Store {
    /// The findings of product (`uscc`, `model`) other than result `except`, with their cases,
    /// sorted by result id: what a link is decided on.
    pub async fn case_candidates(
        &self,
        uscc: &str,
        model: &str,
        except: &str,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        let query = sqlx::query(
            "SELECT f.result_id, f.publisher, f.producer_uscc, f.model, f.batch, f.trademark, \
             f.finding_date, c.case_id FROM case_findings f \
             LEFT JOIN case_results c ON c.result_id = f.result_id \
             WHERE f.producer_uscc = $1 AND f.model = $2 AND f.result_id <> $3 \
             ORDER BY f.result_id",
        )
        .bind(uscc)
        .bind(model)
        .bind(except);
        decode::all(query, &self.read).await
    }

    /// The cases result `result_id` was unlinked from.
    pub async fn cases_unlinked_from(&self, result_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT case_id FROM case_unlinks WHERE result_id = $1")
                .bind(result_id)
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// The case of each of `result_ids` that is in one.
    pub async fn cases_of_results(
        &self,
        result_ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut cases = HashMap::new();
        for id in result_ids {
            let case: Option<String> =
                sqlx::query_scalar("SELECT case_id FROM case_results WHERE result_id = $1")
                    .bind(*id)
                    .fetch_optional(&self.read)
                    .await?;
            if let Some(case) = case {
                cases.insert((*id).to_owned(), case);
            }
        }
        Ok(cases)
    }

    /// The trace and span ids of the call that formed case `id` (docs/cases.md, "One trace per
    /// case"); `None` when there is no such case.
    pub async fn case_trace(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT trace_id, span_id FROM cases WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|row| Ok((row.try_get("trace_id")?, row.try_get("span_id")?)))
            .transpose()
    }

    /// Case `id` with its results (and their referrals) and unlinks.
    pub async fn get_case(&self, id: &str) -> Result<Option<StoredCase>, StoreError> {
        let sql = format!("SELECT {CASE_COLUMNS} FROM cases c WHERE c.id = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(None);
        };
        let mut case = case_row(&row)?;
        self.fill_case(&mut case).await?;
        Ok(Some(case))
    }

    /// Fills the results and unlinks of `case`.
    async fn fill_case(&self, case: &mut StoredCase) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT result_id, publisher, finding_date, linked_at FROM case_results \
             WHERE case_id = $1 ORDER BY finding_date, result_id",
        )
        .bind(&case.id)
        .fetch_all(&self.read)
        .await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("result_id"))
            .collect::<Result<_, _>>()?;
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut referrals = self.referral_names_of_results(&id_refs).await?;
        case.members = rows
            .iter()
            .map(|row| {
                let result_id: String = row.try_get("result_id")?;
                let referrals = referrals
                    .remove(&result_id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|name| name.trim_start_matches("referrals/").to_owned())
                    .collect();
                Ok(CaseMember {
                    publisher: decode::parsed(row, "publisher", "case result publisher")?,
                    finding_date: date(row, "finding_date")?,
                    linked_at: decode::time(row, "linked_at")?,
                    referrals,
                    result_id,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let unlinks = sqlx::query(
            "SELECT result_id, agency, officer, reason, created_at FROM case_unlinks \
             WHERE case_id = $1 ORDER BY created_at, result_id",
        )
        .bind(&case.id)
        .fetch_all(&self.read)
        .await?;
        case.unlinks = unlinks
            .iter()
            .map(|row| {
                Ok(StoredUnlink {
                    result_id: row.try_get("result_id")?,
                    agency: decode::parsed(row, "agency", "case unlink agency")?,
                    officer: row.try_get("officer")?,
                    reason: row.try_get("reason")?,
                    at: decode::time(row, "created_at")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(())
    }

    /// Up to `limit` cases passing `filter`, newest first, after `after`; the cursor of the
    /// next page when there may be more.
    pub async fn list_cases(
        &self,
        filter: &CaseFilter,
        after: Option<&CaseCursor>,
        limit: usize,
    ) -> Result<(Vec<StoredCase>, Option<CaseCursor>), StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        let next = |value: String, binds: &mut Vec<String>| {
            binds.push(value);
            format!("${}", binds.len())
        };
        if let Some(agency) = &filter.agency {
            let a = next(agency.as_str().to_owned(), &mut binds);
            clauses.push(format!(
                "(c.handling_agency = {a} OR EXISTS (SELECT 1 FROM case_results m \
                 WHERE m.case_id = c.id AND m.publisher = {a}) OR EXISTS (SELECT 1 FROM \
                 case_unlinks u JOIN results r ON r.id = u.result_id \
                 WHERE u.case_id = c.id AND r.publisher = {a}))"
            ));
        }
        if let Some(uscc) = &filter.producer_uscc {
            clauses.push(format!(
                "c.producer_uscc = {}",
                next(uscc.clone(), &mut binds)
            ));
        }
        if let Some(model) = &filter.model {
            clauses.push(format!("c.model = {}", next(model.clone(), &mut binds)));
        }
        if let Some(state) = filter.state {
            let s = next(state.as_str().to_owned(), &mut binds);
            clauses.push(format!("c.state = {s}"));
        }
        let mut after_bind = None;
        if let Some(cursor) = after {
            let id = next(cursor.id.clone(), &mut binds);
            let at = format!("${}", binds.len() + 1);
            after_bind = Some(cursor.created_at);
            clauses.push(format!(
                "(c.created_at < {at} OR (c.created_at = {at} AND c.id < {id}))"
            ));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases c {filter_sql} \
             ORDER BY c.created_at DESC, c.id DESC LIMIT {}",
            limit.saturating_add(1)
        );
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b.as_str());
        }
        if let Some(at) = after_bind {
            query = query.bind(at);
        }
        let rows = query.fetch_all(&self.read).await?;
        let mut cases = rows.iter().map(case_row).collect::<Result<Vec<_>, _>>()?;
        let more = cases.len() > limit;
        cases.truncate(limit);
        for case in &mut cases {
            self.fill_case(case).await?;
        }
        let cursor = more.then(|| cases.last()).flatten().map(|c| CaseCursor {
            created_at: crate::time_codec::to_micros(c.created_at),
            id: c.id.clone(),
        });
        Ok((cases, cursor))
    }
}
