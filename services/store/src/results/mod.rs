//! Spot-check results (监督抽查结果): the model (this file), their writes (`write`) and the search
//! over their latest versions (`search`).
//!
//! Why it is shaped so:
//!
//! * **One write each.** [`Store::publish_result`], [`Store::correct_result`] and
//!   [`Store::withdraw_result`] are each one [`crate::Write`]: the request's claim, the
//!   result's rows, the feed events, the referrals it opens and the call's audit leaf, committed
//!   together by the write primitive (docs/architecture.md "Storage"). The handler builds the
//!   events and the answer before the write, so the store never needs to know what they
//!   contain.
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
mod load;
mod search;
#[cfg(feature = "synthetic")]
pub mod synthetic;
mod write;

pub use load::LoadedResult;

use std::collections::BTreeSet;

use sqlx::Row;
use sqlx::any::AnyRow;
use time::{Date, OffsetDateTime};
use yrd_domain::audit::LeafData;
use yrd_domain::spotcheck::{CampaignKind, SpotCheckResult, Verdict};
use yrd_domain::uscc::Uscc;
use yrd_domain::{AgencyId, RegionCode};

use crate::StoreError;
use crate::decode::{self, FromRow};
use crate::feed::NewFeedEvent;
use crate::referrals::NewReferral;
use crate::time_codec::to_micros;
use crate::write::IdempotencyKey;

pub use crate::text::fold_name;

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

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "published" => Ok(ResultState::Published),
            "withdrawn" => Ok(ResultState::Withdrawn),
            other => Err(StoreError::corrupt("result state", other)),
        }
    }
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
    /// Another write of the same product linked or found it since the case link of this write
    /// was decided: decide again (docs/cases.md).
    #[error("the cases of result {0}'s product changed meanwhile")]
    CasesMoved(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ResultWriteError {
    /// A reused request id keeps its meaning; everything else is the store failing.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RequestIdReused { request_id } => {
                ResultWriteError::RequestIdReused { request_id }
            }
            e => ResultWriteError::Store(e),
        }
    }
}

crate::error::store_failure!(ResultWriteError);

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
    /// Its case rows: the finding index and the case link (docs/cases.md).
    pub cases: crate::cases::CaseRows,
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
    /// Its case rows: the finding index and the case link (docs/cases.md).
    pub cases: crate::cases::CaseRows,
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
    /// Its case rows: the finding index and the case link (docs/cases.md).
    pub cases: crate::cases::CaseRows,
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
}

impl FromRow for StoredResult {
    fn from_row(row: &AnyRow) -> Result<StoredResult, StoreError> {
        Ok(StoredResult {
            id: row.try_get("id")?,
            publisher: decode::parsed(row, "publisher", "result publisher")?,
            state: ResultState::parse(&row.try_get::<String, _>("state")?)?,
            latest_version: decode::number(row, "latest_version", "result version")?,
            created_at: decode::time(row, "created_at")?,
            withdrawn_at: decode::time_opt(row, "withdrawn_at")?,
            withdrawal_reason: row.try_get("withdrawal_reason")?,
            version: decode::number(row, "version", "result version")?,
            body: row.try_get("body")?,
            correction_reason: row.try_get("reason")?,
            version_created_at: decode::time(row, "version_created_at")?,
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

pub(crate) fn db_version(v: u32) -> i64 {
    i64::from(v)
}

pub(crate) const RESULT_COLUMNS: &str = "r.id, r.publisher, r.state, r.latest_version, r.created_at, \
                              r.withdrawn_at, r.withdrawal_reason, v.version, v.body, v.reason, \
                              v.created_at AS version_created_at";

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
}
