//! Spot-check results (监督抽查结果): their versions, the search over their latest versions, and
//! the idempotency record that makes a retried write return its first answer.
//!
//! Why it is shaped so:
//!
//! * **One transaction per write.** [`Store::publish_result`], [`Store::correct_result`] and
//!   [`Store::withdraw_result`] each claim the request id, write the business rows, append the
//!   feed events and the call's audit leaf, and store the answer, all in one transaction
//!   (DESIGN.md "Writes are one transaction"). The handler builds the events and the answer
//!   before the transaction starts, so the store never needs to know what they contain.
//! * **Idempotency first.** The request id is claimed by the transaction's first statement, so
//!   two concurrent retries of one request serialise on that row: the second sees the first's
//!   answer (same digest) or `RequestIdReused` (another body), never a duplicate result.
//! * **Optimistic concurrency.** A correction or withdrawal names the version it was built on;
//!   the update only applies while that is still the latest version of a published result of
//!   the same publisher, and otherwise the store says which of those no longer holds.
//! * **Search by index, newest first.** `results` carries the search columns of the latest
//!   version; every index a search can be driven by ends in `(created_at, id)`, and pages are
//!   keyset ranges on that pair, so a page costs the same on the first page and the ten
//!   thousandth, and results published later never shift a page. A region filter is driven by
//!   `result_places` (each GB/T 2260 level of the producer's and seller's regions) and a
//!   product-name substring of two or more characters by `result_name_grams` (character
//!   bigrams), because a plain `LIKE '%x%'` reads every row. A one-character name search has
//!   no bigram to use: it walks the newest-first index and checks each name, which is fast when
//!   the character is common and reads the whole table when it matches nothing.

use std::collections::{BTreeSet, HashMap};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use time::{Date, OffsetDateTime};
use yrd_domain::audit::LeafData;
use yrd_domain::spotcheck::{CampaignKind, SpotCheckResult, Verdict};
use yrd_domain::uscc::Uscc;
use yrd_domain::{AgencyId, RegionCode};

use crate::audit::append_leaf_in;
use crate::feed::{NewFeedEvent, append_feed_events_in};
use crate::referrals::{NewReferral, ReferralWriteError, insert_referrals_in};
use crate::time_codec::{from_micros, to_micros};
use crate::{Store, StoreError};

/// Whether a result is in force (已公示) or withdrawn (已撤回).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultState {
    /// Published; corrections keep this state.
    Published,
    /// Withdrawn with a reason; still readable.
    Withdrawn,
}

impl ResultState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultState::Published => "published",
            ResultState::Withdrawn => "withdrawn",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "published" => Ok(ResultState::Published),
            "withdrawn" => Ok(ResultState::Withdrawn),
            other => Err(StoreError::corrupt("result state", other)),
        }
    }
}

/// The request a write answers, for idempotency: the calling agency, the method, the
/// client's request id and a digest of what the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The calling agency (request ids are per agency).
    pub agency: AgencyId,
    /// The full gRPC method path (request ids are per method).
    pub method: String,
    /// The client-chosen request id.
    pub request_id: String,
    /// Digest of the request's content, lowercase hex: equal digests mean the same request.
    pub request_digest: String,
}

/// What a write did: the first answer to its request, or the stored answer of an earlier call
/// with the same request id and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The write committed; the feed events went to these `(recipient, cursor)`s.
    Written(Vec<(AgencyId, u64)>),
    /// The request was answered before: here is that answer, unchanged; nothing was written.
    Replayed(Vec<u8>),
}

/// Why a result write was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResultWriteError {
    /// The request id was used before by this agency for this method with another body.
    #[error("request id {request_id:?} was already used for a different request")]
    RequestIdReused {
        /// The request id.
        request_id: String,
    },
    /// No result has this id.
    #[error("result {0} does not exist")]
    NotFound(String),
    /// The result was published by another agency; only its publisher may change it.
    #[error("result {id} was published by {publisher}; only the publisher may change it")]
    NotPublisher {
        /// The result.
        id: String,
        /// Its publisher.
        publisher: AgencyId,
    },
    /// The result is withdrawn; it can be neither corrected nor withdrawn again.
    #[error("result {0} is withdrawn")]
    Withdrawn(String),
    /// The result changed since the version the write was built on.
    #[error("result {id} is at version {latest}, not {expected}")]
    Stale {
        /// The result.
        id: String,
        /// The version the write was built on.
        expected: u32,
        /// The latest version now.
        latest: u32,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ReferralWriteError> for ResultWriteError {
    /// A referral opened with a result fails only with the store (or, in a race of two
    /// corrections, on the one-open-referral index, which the caller sees as a conflict).
    fn from(e: ReferralWriteError) -> Self {
        match e {
            ReferralWriteError::Store(e) => ResultWriteError::Store(e),
            other => ResultWriteError::Store(StoreError::AlreadyExists {
                what: other.to_string(),
            }),
        }
    }
}

impl From<sqlx::Error> for ResultWriteError {
    fn from(e: sqlx::Error) -> Self {
        ResultWriteError::Store(e.into())
    }
}

/// A new result (version 1) to publish.
#[derive(Debug, Clone)]
pub struct NewPublication<'a> {
    /// The request it answers.
    pub key: IdempotencyKey,
    /// The result id the exchange assigned.
    pub id: String,
    /// The publishing (sampling) agency.
    pub publisher: AgencyId,
    /// The validated content, for the search columns.
    pub result: &'a SpotCheckResult,
    /// The encoded content stored as version 1.
    pub body: Vec<u8>,
    /// The publication time.
    pub at: OffsetDateTime,
    /// The feed events it raises.
    pub events: Vec<NewFeedEvent>,
    /// The referrals it opens (with their own feed events), in the same transaction.
    pub referrals: Vec<NewReferral>,
    /// The call's audit leaf.
    pub leaf: Option<LeafData>,
    /// The encoded answer, returned again to a retry.
    pub response: Vec<u8>,
}

/// A correction: a new version of a published result.
#[derive(Debug, Clone)]
pub struct NewCorrection<'a> {
    /// The request it answers.
    pub key: IdempotencyKey,
    /// The result.
    pub id: String,
    /// The calling agency, which must be the publisher.
    pub publisher: AgencyId,
    /// The version the correction was built on; the new one is `base_version + 1`.
    pub base_version: u32,
    /// The corrected content, for the search columns.
    pub result: &'a SpotCheckResult,
    /// The encoded corrected content.
    pub body: Vec<u8>,
    /// Why the result is corrected (更正原因).
    pub reason: String,
    /// When.
    pub at: OffsetDateTime,
    /// The feed events it raises.
    pub events: Vec<NewFeedEvent>,
    /// The referrals it opens (with their own feed events), in the same transaction.
    pub referrals: Vec<NewReferral>,
    /// The call's audit leaf.
    pub leaf: Option<LeafData>,
    /// The encoded answer.
    pub response: Vec<u8>,
}

/// A withdrawal of a published result.
#[derive(Debug, Clone)]
pub struct NewWithdrawal {
    /// The request it answers.
    pub key: IdempotencyKey,
    /// The result.
    pub id: String,
    /// The calling agency, which must be the publisher.
    pub publisher: AgencyId,
    /// The latest version the withdrawal (and its events) was built on.
    pub version: u32,
    /// Why the result is withdrawn (撤回原因).
    pub reason: String,
    /// When.
    pub at: OffsetDateTime,
    /// The feed events it raises.
    pub events: Vec<NewFeedEvent>,
    /// The call's audit leaf.
    pub leaf: Option<LeafData>,
    /// The encoded answer.
    pub response: Vec<u8>,
}

/// A result as stored, in one of its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    /// The result id.
    pub id: String,
    /// The publishing agency.
    pub publisher: AgencyId,
    /// Published or withdrawn (shared by all versions).
    pub state: ResultState,
    /// The latest version's number (the number of versions).
    pub latest_version: u32,
    /// When version 1 was published.
    pub created_at: OffsetDateTime,
    /// When it was withdrawn, if it was.
    pub withdrawn_at: Option<OffsetDateTime>,
    /// Why it was withdrawn, if it was.
    pub withdrawal_reason: Option<String>,
    /// The number of this version.
    pub version: u32,
    /// The encoded content of this version.
    pub body: Vec<u8>,
    /// Why this version was made; `None` for version 1.
    pub correction_reason: Option<String>,
    /// When this version was made.
    pub version_created_at: OffsetDateTime,
}

/// Which results a search asks for; `None` fields do not filter, the others combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultFilter {
    /// The nominal producer's USCC.
    pub producer_uscc: Option<Uscc>,
    /// The seller's USCC.
    pub seller_uscc: Option<Uscc>,
    /// Text the product name contains, compared case-insensitively.
    pub product_name_contains: Option<String>,
    /// The e-commerce platform, exactly.
    pub platform: Option<String>,
    /// A GB/T 2260 region the producer or the seller lies within (a province code matches the
    /// whole province, a city code the whole city).
    pub region: Option<RegionCode>,
    /// The overall verdict.
    pub verdict: Option<Verdict>,
    /// The campaign code.
    pub campaign_code: Option<String>,
    /// The campaign kind.
    pub campaign_kind: Option<CampaignKind>,
    /// Sampled on or after this day.
    pub sampled_from: Option<Date>,
    /// Sampled on or before this day.
    pub sampled_to: Option<Date>,
    /// The publishing agency.
    pub publisher: Option<AgencyId>,
    /// The state.
    pub state: Option<ResultState>,
}

/// Where a page of a search ends: the last result's publication time and id. The next page
/// holds the results strictly older in `(created_at, id)` order, so results published after
/// the first page never shift a later one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultCursor {
    /// Publication time, Unix microseconds.
    pub created_at_us: i64,
    /// Result id.
    pub id: String,
}

impl StoredResult {
    /// The cursor that continues a search after this result.
    pub fn cursor(&self) -> ResultCursor {
        ResultCursor {
            created_at_us: to_micros(self.created_at),
            id: self.id.clone(),
        }
    }

    fn from_row(row: &AnyRow) -> Result<StoredResult, StoreError> {
        let publisher: String = row.try_get("publisher")?;
        let version = |name: &str| -> Result<u32, StoreError> {
            u32::try_from(row.try_get::<i64, _>(name)?)
                .map_err(|e| StoreError::corrupt("result version", e))
        };
        Ok(StoredResult {
            id: row.try_get("id")?,
            publisher: AgencyId::parse(&publisher)
                .map_err(|e| StoreError::corrupt("result publisher", e))?,
            state: ResultState::parse(&row.try_get::<String, _>("state")?)?,
            latest_version: version("latest_version")?,
            created_at: from_micros(row.try_get("created_at")?)?,
            withdrawn_at: row
                .try_get::<Option<i64>, _>("withdrawn_at")?
                .map(from_micros)
                .transpose()?,
            withdrawal_reason: row.try_get("withdrawal_reason")?,
            version: version("version")?,
            body: row.try_get("body")?,
            correction_reason: row.try_get("reason")?,
            version_created_at: from_micros(row.try_get("version_created_at")?)?,
        })
    }
}

/// The stored name of a verdict.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Conforming => "conforming",
        Verdict::NonConforming => "non_conforming",
    }
}

/// The stored name of a campaign kind.
pub fn campaign_kind_name(k: CampaignKind) -> &'static str {
    match k {
        CampaignKind::National => "national",
        CampaignKind::Provincial => "provincial",
        CampaignKind::Local => "local",
        CampaignKind::Special => "special",
        CampaignKind::DeltaJoint => "delta_joint",
    }
}

/// `YYYY-MM-DD`, whose text order is date order.
pub fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The places a region lies within: its province, its city and itself (deduplicated), so that
/// a filter on any level is one equality.
pub fn region_places(region: &RegionCode) -> Vec<String> {
    let code = region.as_str();
    let mut places = vec![region.province().as_str().to_owned()];
    if let Some(city) = code.get(..4) {
        places.push(format!("{city}00"));
    }
    places.push(code.to_owned());
    places.dedup();
    places
}

/// A product name as compared: lower-cased (Unicode), surrounding whitespace removed.
pub fn fold_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The distinct character bigrams of a folded name, in first-seen order.
pub fn name_bigrams(folded: &str) -> Vec<String> {
    let chars: Vec<char> = folded.chars().collect();
    let mut seen = BTreeSet::new();
    let mut grams = Vec::new();
    for pair in chars.windows(2) {
        let gram: String = pair.iter().collect();
        if seen.insert(gram.clone()) {
            grams.push(gram);
        }
    }
    grams
}

/// A `LIKE` pattern matching any text that contains `text`, with `\` as the escape character.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn db_version(v: u32) -> i64 {
    i64::from(v)
}

const RESULT_COLUMNS: &str = "r.id, r.publisher, r.state, r.latest_version, r.created_at, \
                              r.withdrawn_at, r.withdrawal_reason, v.version, v.body, v.reason, \
                              v.created_at AS version_created_at";

/// Claims `key` inside `tx`. `Ok(None)`: claimed, go on. `Ok(Some(answer))`: answered before
/// with the same body. The row is written with `response` now, so the claim and the answer
/// commit together with the write.
pub(crate) async fn claim_request(
    tx: &mut Transaction<'_, Any>,
    key: &IdempotencyKey,
    response: &[u8],
    at: OffsetDateTime,
) -> Result<Option<Vec<u8>>, ResultWriteError> {
    let claimed = sqlx::query(
        "INSERT INTO idempotency (agency, method, request_id, request_digest, response, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (agency, method, request_id) DO NOTHING",
    )
    .bind(key.agency.as_str())
    .bind(&key.method)
    .bind(&key.request_id)
    .bind(&key.request_digest)
    .bind(response)
    .bind(to_micros(at))
    .execute(&mut **tx)
    .await?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT request_digest, response FROM idempotency \
         WHERE agency = $1 AND method = $2 AND request_id = $3",
    )
    .bind(key.agency.as_str())
    .bind(&key.method)
    .bind(&key.request_id)
    .fetch_one(&mut **tx)
    .await?;
    answer_of(key, &row).map(Some)
}

/// The stored answer of `row` if its digest is `key`'s, else `RequestIdReused`.
fn answer_of(key: &IdempotencyKey, row: &AnyRow) -> Result<Vec<u8>, ResultWriteError> {
    let digest: String = row.try_get("request_digest")?;
    if digest != key.request_digest {
        return Err(ResultWriteError::RequestIdReused {
            request_id: key.request_id.clone(),
        });
    }
    Ok(row.try_get("response")?)
}

/// Writes the search helpers (places, bigrams) of result `id` published at `created_at`.
async fn insert_search_rows(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    created_at: i64,
    result: &SpotCheckResult,
) -> Result<(), StoreError> {
    let mut places: BTreeSet<String> = BTreeSet::new();
    places.extend(region_places(&result.producer().region));
    places.extend(region_places(&result.seller().region));
    for place in places {
        sqlx::query(
            "INSERT INTO result_places (place, verdict, created_at, result_id) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(place)
        .bind(verdict_name(result.verdict()))
        .bind(created_at)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    for gram in name_bigrams(&fold_name(&result.product().name)) {
        sqlx::query(
            "INSERT INTO result_name_grams (gram, created_at, result_id) VALUES ($1, $2, $3)",
        )
        .bind(gram)
        .bind(created_at)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Says why a conditional update of result `id` matched no row.
async fn refusal(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    publisher: &AgencyId,
    expected: u32,
) -> Result<ResultWriteError, ResultWriteError> {
    let row = sqlx::query("SELECT publisher, state, latest_version FROM results WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
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

impl Store {
    /// The stored answer to `key` when that request was answered before: `Ok(Some(answer))`
    /// for the same body, `RequestIdReused` for another one, `Ok(None)` when it is new. A
    /// handler asks first, so a retry is answered before any check that the first call's
    /// success would now fail; the write itself claims the id again in its transaction.
    pub async fn answered_request(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<Vec<u8>>, ResultWriteError> {
        let row = sqlx::query(
            "SELECT request_digest, response FROM idempotency \
             WHERE agency = $1 AND method = $2 AND request_id = $3",
        )
        .bind(key.agency.as_str())
        .bind(&key.method)
        .bind(&key.request_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(|row| answer_of(key, row)).transpose()
    }

    /// Publishes a new result (version 1) with its feed events and audit leaf in one
    /// transaction, then wakes the recipients' subscribers.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "publish_result", db.system = self.backend().as_str()))]
    pub async fn publish_result(
        &self,
        p: &NewPublication<'_>,
    ) -> Result<WriteOutcome, ResultWriteError> {
        let mut tx = self.write.begin().await?;
        if let Some(answer) = claim_request(&mut tx, &p.key, &p.response, p.at).await? {
            return Ok(WriteOutcome::Replayed(answer));
        }
        let at = to_micros(p.at);
        let r = p.result;
        let shop = r.seller().online_shop.as_ref();
        let campaign = r.campaign();
        sqlx::query(
            "INSERT INTO results (id, publisher, state, latest_version, producer_uscc, \
             seller_uscc, product_name, product_name_fold, platform, producer_region, \
             producer_province, seller_region, seller_province, verdict, campaign_code, \
             campaign_kind, sampling_date, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $17)",
        )
        .bind(&p.id)
        .bind(p.publisher.as_str())
        .bind(ResultState::Published.as_str())
        .bind(r.producer().uscc.as_str())
        .bind(r.seller().uscc.as_ref().map(Uscc::as_str))
        .bind(&r.product().name)
        .bind(fold_name(&r.product().name))
        .bind(shop.map(|s| s.platform.as_str()))
        .bind(r.producer().region.as_str())
        .bind(r.producer().region.province().as_str())
        .bind(r.seller().region.as_str())
        .bind(r.seller().region.province().as_str())
        .bind(verdict_name(r.verdict()))
        .bind(campaign.map(|c| c.code.as_str()))
        .bind(campaign.map(|c| campaign_kind_name(c.kind)))
        .bind(iso_date(r.sampling().date))
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO result_versions (result_id, version, body, reason, created_at) \
             VALUES ($1, 1, $2, NULL, $3)",
        )
        .bind(&p.id)
        .bind(&p.body)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        insert_search_rows(&mut tx, &p.id, at, r).await?;
        let mut assigned = append_feed_events_in(&mut tx, self.backend(), &p.events).await?;
        assigned.extend(insert_referrals_in(&mut tx, self.backend(), &p.referrals).await?);
        if let Some(leaf) = &p.leaf {
            append_leaf_in(&mut tx, leaf).await?;
        }
        tx.commit().await?;
        self.feed_committed(&assigned);
        Ok(WriteOutcome::Written(assigned))
    }

    /// Adds version `base_version + 1` of a published result, with its feed events and audit
    /// leaf in one transaction. Refused when the result is missing, another agency's,
    /// withdrawn, or no longer at `base_version`.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "correct_result", db.system = self.backend().as_str()))]
    pub async fn correct_result(
        &self,
        c: &NewCorrection<'_>,
    ) -> Result<WriteOutcome, ResultWriteError> {
        let mut tx = self.write.begin().await?;
        if let Some(answer) = claim_request(&mut tx, &c.key, &c.response, c.at).await? {
            return Ok(WriteOutcome::Replayed(answer));
        }
        let at = to_micros(c.at);
        let r = c.result;
        let shop = r.seller().online_shop.as_ref();
        let campaign = r.campaign();
        let next = c.base_version.saturating_add(1);
        let updated = sqlx::query(
            "UPDATE results SET latest_version = $1, producer_uscc = $2, seller_uscc = $3, \
             product_name = $4, product_name_fold = $5, platform = $6, producer_region = $7, \
             producer_province = $8, seller_region = $9, seller_province = $10, verdict = $11, \
             campaign_code = $12, campaign_kind = $13, sampling_date = $14, updated_at = $15 \
             WHERE id = $16 AND publisher = $17 AND state = $18 AND latest_version = $19",
        )
        .bind(db_version(next))
        .bind(r.producer().uscc.as_str())
        .bind(r.seller().uscc.as_ref().map(Uscc::as_str))
        .bind(&r.product().name)
        .bind(fold_name(&r.product().name))
        .bind(shop.map(|s| s.platform.as_str()))
        .bind(r.producer().region.as_str())
        .bind(r.producer().region.province().as_str())
        .bind(r.seller().region.as_str())
        .bind(r.seller().region.province().as_str())
        .bind(verdict_name(r.verdict()))
        .bind(campaign.map(|c| c.code.as_str()))
        .bind(campaign.map(|c| campaign_kind_name(c.kind)))
        .bind(iso_date(r.sampling().date))
        .bind(at)
        .bind(&c.id)
        .bind(c.publisher.as_str())
        .bind(ResultState::Published.as_str())
        .bind(db_version(c.base_version))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(refusal(&mut tx, &c.id, &c.publisher, c.base_version).await?);
        }
        let created_at: i64 = sqlx::query_scalar("SELECT created_at FROM results WHERE id = $1")
            .bind(&c.id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO result_versions (result_id, version, body, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&c.id)
        .bind(db_version(next))
        .bind(&c.body)
        .bind(&c.reason)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        for table in ["result_places", "result_name_grams"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE result_id = $1"))
                .bind(&c.id)
                .execute(&mut *tx)
                .await?;
        }
        insert_search_rows(&mut tx, &c.id, created_at, r).await?;
        let mut assigned = append_feed_events_in(&mut tx, self.backend(), &c.events).await?;
        assigned.extend(insert_referrals_in(&mut tx, self.backend(), &c.referrals).await?);
        if let Some(leaf) = &c.leaf {
            append_leaf_in(&mut tx, leaf).await?;
        }
        tx.commit().await?;
        self.feed_committed(&assigned);
        Ok(WriteOutcome::Written(assigned))
    }

    /// Withdraws a published result at version `w.version`, with its feed events and audit
    /// leaf in one transaction. Refused like [`Store::correct_result`].
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "withdraw_result", db.system = self.backend().as_str()))]
    pub async fn withdraw_result(
        &self,
        w: &NewWithdrawal,
    ) -> Result<WriteOutcome, ResultWriteError> {
        let mut tx = self.write.begin().await?;
        if let Some(answer) = claim_request(&mut tx, &w.key, &w.response, w.at).await? {
            return Ok(WriteOutcome::Replayed(answer));
        }
        let at = to_micros(w.at);
        let updated = sqlx::query(
            "UPDATE results SET state = $1, withdrawn_at = $2, withdrawal_reason = $3, \
             updated_at = $2 \
             WHERE id = $4 AND publisher = $5 AND state = $6 AND latest_version = $7",
        )
        .bind(ResultState::Withdrawn.as_str())
        .bind(at)
        .bind(&w.reason)
        .bind(&w.id)
        .bind(w.publisher.as_str())
        .bind(ResultState::Published.as_str())
        .bind(db_version(w.version))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(refusal(&mut tx, &w.id, &w.publisher, w.version).await?);
        }
        let assigned = append_feed_events_in(&mut tx, self.backend(), &w.events).await?;
        if let Some(leaf) = &w.leaf {
            append_leaf_in(&mut tx, leaf).await?;
        }
        tx.commit().await?;
        self.feed_committed(&assigned);
        Ok(WriteOutcome::Written(assigned))
    }

    /// Result `id` in version `version`, or in its latest version when `None`; `None` when
    /// there is no such result or version.
    pub async fn get_result(
        &self,
        id: &str,
        version: Option<u32>,
    ) -> Result<Option<StoredResult>, StoreError> {
        let row = match version {
            None => {
                sqlx::query(&format!(
                    "SELECT {RESULT_COLUMNS} FROM results r JOIN result_versions v \
                     ON v.result_id = r.id AND v.version = r.latest_version WHERE r.id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.read)
                .await?
            }
            Some(n) => {
                sqlx::query(&format!(
                    "SELECT {RESULT_COLUMNS} FROM results r JOIN result_versions v \
                     ON v.result_id = r.id WHERE r.id = $1 AND v.version = $2"
                ))
                .bind(id)
                .bind(db_version(n))
                .fetch_optional(&self.read)
                .await?
            }
        };
        row.as_ref().map(StoredResult::from_row).transpose()
    }

    /// Up to `limit` results matching `filter` (latest versions), newest publication first,
    /// strictly after `after` in that order.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = "search_results", db.system = self.backend().as_str()))]
    pub async fn search_results(
        &self,
        filter: &ResultFilter,
        after: Option<&ResultCursor>,
        limit: u32,
    ) -> Result<Vec<StoredResult>, StoreError> {
        let page = SearchQuery::new(filter, after, limit);
        let mut query = sqlx::query(&page.sql);
        for value in &page.binds {
            query = match value {
                Bind::Text(s) => query.bind(s.as_str()),
                Bind::Int(i) => query.bind(*i),
            };
        }
        let ids: Vec<String> = query
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results r JOIN result_versions v \
             ON v.result_id = r.id AND v.version = r.latest_version WHERE r.id IN ({placeholders})"
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(id.as_str());
        }
        let mut by_id: HashMap<String, StoredResult> = HashMap::new();
        for row in query.fetch_all(&self.read).await? {
            let result = StoredResult::from_row(&row)?;
            by_id.insert(result.id.clone(), result);
        }
        ids.iter()
            .map(|id| {
                by_id
                    .remove(id)
                    .ok_or_else(|| StoreError::corrupt("result", "found by search, not by id"))
            })
            .collect()
    }
}

/// A value bound to a search query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bind {
    Text(String),
    Int(i64),
}

/// The id query of one search page: which table drives it (so the page is an index range in
/// page order) and the conditions on `results`.
#[derive(Debug)]
struct SearchQuery {
    sql: String,
    binds: Vec<Bind>,
}

impl SearchQuery {
    fn new(filter: &ResultFilter, after: Option<&ResultCursor>, limit: u32) -> SearchQuery {
        let mut q = SearchQuery {
            sql: String::new(),
            binds: Vec::new(),
        };
        let mut conditions: Vec<String> = Vec::new();
        let name = filter
            .product_name_contains
            .as_deref()
            .map(fold_name)
            .filter(|n| !n.is_empty());
        let name_gram = name
            .as_deref()
            .and_then(|n| name_bigrams(n).into_iter().next());

        // The driving table: its (created_at, id) columns give the page order.
        let mut verdict = filter.verdict;
        let (from, created, id) = if let Some(region) = &filter.region {
            let p = q.bind(Bind::Text(region.as_str().to_owned()));
            conditions.push(format!("d.place = {p}"));
            if let Some(v) = verdict.take() {
                let p = q.bind(Bind::Text(verdict_name(v).to_owned()));
                conditions.push(format!("d.verdict = {p}"));
            }
            (
                "result_places d JOIN results r ON r.id = d.result_id",
                "d.created_at",
                "d.result_id",
            )
        } else if let Some(gram) = &name_gram {
            let p = q.bind(Bind::Text(gram.clone()));
            conditions.push(format!("d.gram = {p}"));
            (
                "result_name_grams d JOIN results r ON r.id = d.result_id",
                "d.created_at",
                "d.result_id",
            )
        } else {
            ("results r", "r.created_at", "r.id")
        };

        let mut eq = |q: &mut SearchQuery, column: &str, value: Option<String>| {
            if let Some(value) = value {
                let p = q.bind(Bind::Text(value));
                conditions.push(format!("{column} = {p}"));
            }
        };
        eq(
            &mut q,
            "r.producer_uscc",
            filter.producer_uscc.as_ref().map(|u| u.as_str().to_owned()),
        );
        eq(
            &mut q,
            "r.seller_uscc",
            filter.seller_uscc.as_ref().map(|u| u.as_str().to_owned()),
        );
        eq(&mut q, "r.platform", filter.platform.clone());
        eq(
            &mut q,
            "r.verdict",
            verdict.map(|v| verdict_name(v).to_owned()),
        );
        eq(&mut q, "r.campaign_code", filter.campaign_code.clone());
        eq(
            &mut q,
            "r.campaign_kind",
            filter
                .campaign_kind
                .map(|k| campaign_kind_name(k).to_owned()),
        );
        eq(
            &mut q,
            "r.publisher",
            filter.publisher.as_ref().map(|a| a.as_str().to_owned()),
        );
        eq(
            &mut q,
            "r.state",
            filter.state.map(|s| s.as_str().to_owned()),
        );
        // With no equality filter, a sampling-date range is served by its own index: the
        // results sampled in the range, sorted. Left to itself the planner may instead walk
        // the newest-first index and filter, which reads the whole table for an old range; the
        // unary plus keeps it off that index. The cost is proportional to the results sampled
        // in the range (measured in benches/search.rs).
        let created = if conditions.is_empty()
            && (filter.sampled_from.is_some() || filter.sampled_to.is_some())
        {
            "+r.created_at"
        } else {
            created
        };
        if let Some(from) = filter.sampled_from {
            let p = q.bind(Bind::Text(iso_date(from)));
            conditions.push(format!("r.sampling_date >= {p}"));
        }
        if let Some(to) = filter.sampled_to {
            let p = q.bind(Bind::Text(iso_date(to)));
            conditions.push(format!("r.sampling_date <= {p}"));
        }
        if let Some(name) = &name {
            let p = q.bind(Bind::Text(contains_pattern(name)));
            conditions.push(format!("r.product_name_fold LIKE {p} ESCAPE '\\'"));
        }
        if let Some(after) = after {
            let c = q.bind(Bind::Int(after.created_at_us));
            let i = q.bind(Bind::Text(after.id.clone()));
            // The first term bounds the index range; the second skips the ties already shown.
            conditions.push(format!(
                "{created} <= {c} AND ({created} < {c} OR {id} < {i})"
            ));
        }
        let limit = q.bind(Bind::Int(i64::from(limit)));
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        q.sql = format!(
            "SELECT {id} AS id FROM {from}{filter} ORDER BY {created} DESC, {id} DESC LIMIT {limit}"
        );
        q
    }

    /// Adds a bound value; answers its placeholder.
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    #[test]
    fn places_are_each_level_once() {
        assert_eq!(
            region_places(&region("370102")),
            ["370000", "370100", "370102"]
        );
        assert_eq!(region_places(&region("370100")), ["370000", "370100"]);
        assert_eq!(region_places(&region("310000")), ["310000"]);
    }

    #[test]
    fn bigrams_are_distinct_and_folded() {
        assert_eq!(name_bigrams(&fold_name(" ABab ")), ["ab", "ba"]);
        assert_eq!(name_bigrams("玩具车"), ["玩具", "具车"]);
        assert!(name_bigrams("玩").is_empty());
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(contains_pattern("5%_a\\"), "%5\\%\\_a\\\\%");
    }

    #[test]
    fn the_region_drives_a_region_search() {
        let filter = ResultFilter {
            region: Some(region("330000")),
            verdict: Some(Verdict::NonConforming),
            ..Default::default()
        };
        let q = SearchQuery::new(&filter, None, 50);
        assert!(q.sql.contains("FROM result_places d"), "{}", q.sql);
        assert!(
            q.sql
                .ends_with("ORDER BY d.created_at DESC, d.result_id DESC LIMIT $3")
        );
        assert_eq!(q.binds.len(), 3);
    }
}
