//! The writes of results: publish (version 1), correct (a new version) and withdraw, each one
//! [`Write`] whose rows carry the optimistic-concurrency guard of a change.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;
use yrd_domain::spotcheck::SpotCheckResult;
use yrd_domain::uscc::Uscc;

use super::{
    NewCorrection, NewPublication, NewWithdrawal, ResultState, ResultWriteError,
    campaign_kind_name, db_version, iso_date, name_bigrams, region_places, verdict_name,
};
use crate::cases::CaseRows;
use crate::decode::AnyQuery;
use crate::feed::NewFeedEvent;
use crate::multirow::placeholders;
use crate::referrals::NewReferral;
use crate::text::fold_name;
use crate::time_codec::to_micros;
use crate::write::{IdempotencyKey, Rows, Write, WriteError, WriteOutcome};
use crate::{Store, StoreError};

/// The search columns of a result's latest version and its search helper rows.
#[derive(Debug, Clone)]
pub(super) struct SearchColumns {
    pub(super) producer_uscc: String,
    pub(super) seller_uscc: Option<String>,
    pub(super) product_name: String,
    pub(super) product_name_fold: String,
    pub(super) platform: Option<String>,
    pub(super) producer_region: String,
    pub(super) producer_province: String,
    pub(super) seller_region: String,
    pub(super) seller_province: String,
    pub(super) verdict: &'static str,
    pub(super) campaign_code: Option<String>,
    pub(super) campaign_kind: Option<&'static str>,
    pub(super) sampling_date: String,
    /// Every GB/T 2260 level of the producer's and seller's regions.
    pub(super) places: BTreeSet<String>,
    /// The character bigrams of the folded product name.
    pub(super) grams: Vec<String>,
}

impl SearchColumns {
    /// Binds the search columns, `producer_uscc` to `sampling_date` in their declared order:
    /// what a publish inserts and a correction updates alike.
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(&self.producer_uscc)
            .bind(self.seller_uscc.as_deref())
            .bind(&self.product_name)
            .bind(&self.product_name_fold)
            .bind(self.platform.as_deref())
            .bind(&self.producer_region)
            .bind(&self.producer_province)
            .bind(&self.seller_region)
            .bind(&self.seller_province)
            .bind(self.verdict)
            .bind(self.campaign_code.as_deref())
            .bind(self.campaign_kind)
            .bind(&self.sampling_date)
    }

    pub(super) fn of(r: &SpotCheckResult) -> SearchColumns {
        let shop = r.seller().online_shop.as_ref();
        let campaign = r.campaign();
        let mut places = BTreeSet::new();
        places.extend(region_places(&r.producer().region));
        places.extend(region_places(&r.seller().region));
        let product_name_fold = fold_name(&r.product().name);
        SearchColumns {
            producer_uscc: r.producer().uscc.as_str().to_owned(),
            seller_uscc: r
                .seller()
                .uscc
                .as_ref()
                .map(Uscc::as_str)
                .map(str::to_owned),
            product_name: r.product().name.clone(),
            grams: name_bigrams(&product_name_fold),
            product_name_fold,
            platform: shop.map(|s| s.platform.clone()),
            producer_region: r.producer().region.as_str().to_owned(),
            producer_province: r.producer().region.province().as_str().to_owned(),
            seller_region: r.seller().region.as_str().to_owned(),
            seller_province: r.seller().region.province().as_str().to_owned(),
            verdict: verdict_name(r.verdict()),
            campaign_code: campaign.map(|c| c.code.clone()),
            campaign_kind: campaign.map(|c| campaign_kind_name(c.kind)),
            sampling_date: iso_date(r.sampling().date),
            places,
        }
    }
}

/// The rows of a result write.
#[derive(Debug, Clone)]
enum ResultRows {
    /// Version 1 of a new result.
    Publish {
        id: String,
        publisher: AgencyId,
        columns: SearchColumns,
        body: Vec<u8>,
        at: OffsetDateTime,
        cases: CaseRows,
    },
    /// Version `base_version + 1`, while `base_version` is the latest.
    Correct {
        id: String,
        publisher: AgencyId,
        base_version: u32,
        columns: SearchColumns,
        body: Vec<u8>,
        reason: String,
        at: OffsetDateTime,
        cases: CaseRows,
    },
    /// The withdrawal, while `version` is the latest.
    Withdraw {
        id: String,
        publisher: AgencyId,
        version: u32,
        reason: String,
        at: OffsetDateTime,
        cases: CaseRows,
    },
}

impl Rows for ResultRows {
    type Value = ();
    type Refusal = ResultWriteError;

    async fn apply(&self, conn: &mut AnyConnection) -> Result<(), WriteError<ResultWriteError>> {
        match self {
            ResultRows::Publish {
                id,
                publisher,
                columns,
                body,
                at,
                cases,
            } => {
                publish_in(conn, id, publisher, columns, body, *at).await?;
                cases.apply(conn).await
            }
            ResultRows::Correct {
                id,
                publisher,
                base_version,
                columns,
                body,
                reason,
                at,
                cases,
            } => {
                let c = columns;
                let at = to_micros(*at);
                let next = base_version.saturating_add(1);
                let update = sqlx::query(
                    "UPDATE results SET latest_version = $1, producer_uscc = $2, \
                     seller_uscc = $3, product_name = $4, product_name_fold = $5, platform = $6, \
                     producer_region = $7, producer_province = $8, seller_region = $9, \
                     seller_province = $10, verdict = $11, campaign_code = $12, \
                     campaign_kind = $13, sampling_date = $14, updated_at = $15 \
                     WHERE id = $16 AND publisher = $17 AND state = $18 AND latest_version = $19",
                )
                .bind(db_version(next));
                let updated = c
                    .bind(update)
                    .bind(at)
                    .bind(id)
                    .bind(publisher.as_str())
                    .bind(ResultState::Published.as_str())
                    .bind(db_version(*base_version))
                    .execute(&mut *conn)
                    .await?;
                if updated.rows_affected() == 0 {
                    return Err(refusal(conn, id, publisher, *base_version).await);
                }
                let created_at: i64 =
                    sqlx::query_scalar("SELECT created_at FROM results WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *conn)
                        .await?;
                sqlx::query(
                    "INSERT INTO result_versions (result_id, version, body, reason, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(db_version(next))
                .bind(body)
                .bind(reason)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                for table in ["result_places", "result_name_grams"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE result_id = $1"))
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                }
                insert_search_rows(conn, &[(id, created_at, c)], SEARCH_ROWS_PER_STATEMENT).await?;
                cases.apply(conn).await
            }
            ResultRows::Withdraw {
                id,
                publisher,
                version,
                reason,
                at,
                cases,
            } => {
                let at = to_micros(*at);
                let updated = sqlx::query(
                    "UPDATE results SET state = $1, withdrawn_at = $2, withdrawal_reason = $3, \
                     updated_at = $2 \
                     WHERE id = $4 AND publisher = $5 AND state = $6 AND latest_version = $7",
                )
                .bind(ResultState::Withdrawn.as_str())
                .bind(at)
                .bind(reason)
                .bind(id)
                .bind(publisher.as_str())
                .bind(ResultState::Published.as_str())
                .bind(db_version(*version))
                .execute(&mut *conn)
                .await?;
                if updated.rows_affected() == 0 {
                    return Err(refusal(conn, id, publisher, *version).await);
                }
                cases.apply(conn).await
            }
        }
    }
}

/// Inserts version 1 of result `id` with its search rows.
async fn publish_in(
    conn: &mut AnyConnection,
    id: &str,
    publisher: &AgencyId,
    c: &SearchColumns,
    body: &[u8],
    at: OffsetDateTime,
) -> Result<(), WriteError<ResultWriteError>> {
    let at = to_micros(at);
    bind_result(sqlx::query(&INSERT_RESULT), id, publisher, c, at)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO result_versions (result_id, version, body, reason, created_at) \
         VALUES ($1, 1, $2, NULL, $3)",
    )
    .bind(id)
    .bind(body)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    insert_search_rows(conn, &[(id, at, c)], SEARCH_ROWS_PER_STATEMENT).await?;
    Ok(())
}

/// Search helper rows a publish inserts per statement: a publish writes a handful of places
/// and a name's worth of bigrams, so a few multi-row statements replace one statement per row,
/// and the fixed chunk keeps the distinct statement texts (each one prepared and cached per
/// connection) to a few.
const SEARCH_ROWS_PER_STATEMENT: usize = 16;

/// The columns of a new `results` row, in the order [`bind_result`] binds them; a publish and
/// the bulk load (`load.rs`) both write them so.
pub(super) const RESULT_INSERT_COLUMNS: &str = "id, publisher, state, latest_version, \
     producer_uscc, seller_uscc, product_name, product_name_fold, platform, producer_region, \
     producer_province, seller_region, seller_province, verdict, campaign_code, campaign_kind, \
     sampling_date, created_at, updated_at";
/// How many values [`bind_result`] binds.
pub(super) const RESULT_INSERT_WIDTH: usize = 19;

/// The `INSERT` of one `results` row, as a publish runs it: built once.
static INSERT_RESULT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO results ({RESULT_INSERT_COLUMNS}) VALUES {}",
        placeholders(1, RESULT_INSERT_WIDTH)
    )
});

/// Binds the values of version 1 of result `id`, published at `at` (Unix microseconds), in the
/// order of [`RESULT_INSERT_COLUMNS`].
pub(super) fn bind_result<'q>(
    query: AnyQuery<'q>,
    id: &'q str,
    publisher: &'q AgencyId,
    c: &'q SearchColumns,
    at: i64,
) -> AnyQuery<'q> {
    let query = query
        .bind(id)
        .bind(publisher.as_str())
        .bind(ResultState::Published.as_str())
        .bind(db_version(1));
    c.bind(query).bind(at).bind(at)
}

/// Writes the search helpers (places, bigrams) of `results`, each `(id, created_at, columns)`
/// of a result published at `created_at` (Unix microseconds), `per_statement` rows per
/// multi-row `INSERT`. A publish writes one result's, the bulk load (`load.rs`) many.
pub(super) async fn insert_search_rows(
    conn: &mut AnyConnection,
    results: &[(&str, i64, &SearchColumns)],
    per_statement: usize,
) -> Result<(), StoreError> {
    let places: Vec<[Bind<'_>; 4]> = results
        .iter()
        .flat_map(|&(id, at, c)| {
            c.places.iter().map(move |place| {
                [
                    Bind::Text(place),
                    Bind::Text(c.verdict),
                    Bind::Int(at),
                    Bind::Text(id),
                ]
            })
        })
        .collect();
    let places_into = "result_places (place, verdict, created_at, result_id)";
    insert_rows(conn, places_into, &places, per_statement).await?;
    let grams: Vec<[Bind<'_>; 3]> = results
        .iter()
        .flat_map(|&(id, at, c)| {
            c.grams
                .iter()
                .map(move |gram| [Bind::Text(gram), Bind::Int(at), Bind::Text(id)])
        })
        .collect();
    let grams_into = "result_name_grams (gram, created_at, result_id)";
    insert_rows(conn, grams_into, &grams, per_statement).await
}

/// A value of a search-helper row.
#[derive(Debug, Clone, Copy)]
enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}

/// Inserts `rows` into `into` (a table and its column list), `per_statement` rows per
/// multi-row `INSERT`.
async fn insert_rows<const W: usize>(
    conn: &mut AnyConnection,
    into: &str,
    rows: &[[Bind<'_>; W]],
    per_statement: usize,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(per_statement) {
        let sql = format!("INSERT INTO {into} VALUES {}", placeholders(chunk.len(), W));
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = match *value {
                Bind::Text(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
            };
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Says why a conditional update of result `id` matched no row.
async fn refusal(
    conn: &mut AnyConnection,
    id: &str,
    publisher: &AgencyId,
    expected: u32,
) -> WriteError<ResultWriteError> {
    match why_not(conn, id, publisher, expected).await {
        Ok(refused) => WriteError::Refused(refused),
        Err(e) => WriteError::Store(e),
    }
}

async fn why_not(
    conn: &mut AnyConnection,
    id: &str,
    publisher: &AgencyId,
    expected: u32,
) -> Result<ResultWriteError, StoreError> {
    let row = sqlx::query("SELECT publisher, state, latest_version FROM results WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(ResultWriteError::NotFound(id.to_owned()));
    };
    let owner: String = row.try_get("publisher")?;
    let owner = AgencyId::parse(&owner).map_err(|e| StoreError::corrupt("result publisher", e))?;
    if &owner != publisher {
        return Ok(ResultWriteError::NotPublisher {
            id: id.to_owned(),
            publisher: owner,
        });
    }
    if ResultState::parse(&row.try_get::<String, _>("state")?)? == ResultState::Withdrawn {
        return Ok(ResultWriteError::Withdrawn(id.to_owned()));
    }
    let latest = u32::try_from(row.try_get::<i64, _>("latest_version")?)
        .map_err(|e| StoreError::corrupt("result version", e))?;
    Ok(ResultWriteError::Stale {
        id: id.to_owned(),
        expected,
        latest,
    })
}

/// A result write's error as the result API states it.
fn result_error(e: WriteError<ResultWriteError>) -> ResultWriteError {
    match e {
        WriteError::Refused(e) => e,
        WriteError::RequestIdReused { request_id } => {
            ResultWriteError::RequestIdReused { request_id }
        }
        // In a race of two corrections, the one-open-referral index refuses the second: the
        // caller sees a conflict.
        WriteError::ReferralAlreadyOpen {
            result_id,
            handling_agency,
        } => ResultWriteError::Store(StoreError::AlreadyExists {
            what: format!("result {result_id} already has an open referral to {handling_agency}"),
        }),
        WriteError::Store(e) => ResultWriteError::Store(e),
    }
}

impl ResultRows {
    /// When the write is made.
    fn at(&self) -> OffsetDateTime {
        match self {
            ResultRows::Publish { at, .. }
            | ResultRows::Correct { at, .. }
            | ResultRows::Withdraw { at, .. } => *at,
        }
    }
}

impl Store {
    /// Commits the rows of a result call with the call's claim (answered with `response`),
    /// feed events, referrals and audit leaf in one write, then wakes the recipients'
    /// subscribers; states the outcome as the result API does.
    async fn commit_result(
        &self,
        rows: ResultRows,
        key: &IdempotencyKey,
        response: &[u8],
        events: &[NewFeedEvent],
        referrals: &[NewReferral],
        leaf: &Option<LeafData>,
    ) -> Result<WriteOutcome, ResultWriteError> {
        let at = rows.at();
        let write = Write::new(rows)
            .claim_ready(Some(key), response, at)
            .events(events.to_vec())
            .referrals(referrals.to_vec())
            .leaf(leaf.clone());
        self.commit_call(write).await.map_err(result_error)
    }

    /// Publishes a new result (version 1) with its feed events, referrals and audit leaf in
    /// one write.
    pub async fn publish_result(
        &self,
        p: &NewPublication<'_>,
    ) -> Result<WriteOutcome, ResultWriteError> {
        let rows = ResultRows::Publish {
            id: p.id.clone(),
            publisher: p.publisher.clone(),
            columns: SearchColumns::of(p.result),
            body: p.body.clone(),
            at: p.at,
            cases: p.cases.clone(),
        };
        self.commit_result(rows, &p.key, &p.response, &p.events, &p.referrals, &p.leaf)
            .await
    }

    /// Adds version `base_version + 1` of a published result, with its feed events, referrals
    /// and audit leaf in one write. Refused when the result is missing, another agency's,
    /// withdrawn, or no longer at `base_version`.
    pub async fn correct_result(
        &self,
        c: &NewCorrection<'_>,
    ) -> Result<WriteOutcome, ResultWriteError> {
        let rows = ResultRows::Correct {
            id: c.id.clone(),
            publisher: c.publisher.clone(),
            base_version: c.base_version,
            columns: SearchColumns::of(c.result),
            body: c.body.clone(),
            reason: c.reason.clone(),
            at: c.at,
            cases: c.cases.clone(),
        };
        self.commit_result(rows, &c.key, &c.response, &c.events, &c.referrals, &c.leaf)
            .await
    }

    /// Withdraws a published result at version `w.version`, with its feed events and audit
    /// leaf in one write. Refused like [`Store::correct_result`].
    pub async fn withdraw_result(
        &self,
        w: &NewWithdrawal,
    ) -> Result<WriteOutcome, ResultWriteError> {
        let rows = ResultRows::Withdraw {
            id: w.id.clone(),
            publisher: w.publisher.clone(),
            version: w.version,
            reason: w.reason.clone(),
            at: w.at,
            cases: w.cases.clone(),
        };
        self.commit_result(rows, &w.key, &w.response, &w.events, &[], &w.leaf)
            .await
    }
}
