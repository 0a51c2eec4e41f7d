//! The `SpotCheckService` handler: identity from the extensions → parse → domain rules and
//! routing → one store transaction → answer with a receipt.
//!
//! Each write builds everything it commits before the transaction starts — the result
//! message, one `FeedEvent` per recipient carrying the full result, the audit leaf and the
//! signed answer — so the store only has to write bytes, and a retry of the request can be
//! answered with exactly the bytes of the first answer.
//!
//! This file holds the handler and what its calls share; the calls are in `writes` (publish,
//! correct, withdraw) and `reads` (get, search).

use std::sync::Arc;

use prost::Message as _;
use sha2::{Digest as _, Sha256};
use time::{OffsetDateTime, UtcOffset};
use yrd_call::{FieldErrors, FieldViolation, receipt, timestamp, violation};
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;
use yrd_domain::case::MatchWindow;
use yrd_domain::clock::Clock;
use yrd_domain::referral::ReferralRules;
use yrd_domain::referral::automatic::referrals_for;
use yrd_domain::routing::{AgencyDirectory, RegisteredAgency, Routing};
use yrd_domain::spotcheck::SpotCheckResult;
use yrd_pki::ReceiptSigner;
use yrd_proto::v1 as pb;
use yrd_store::{
    IdempotencyKey, NewFeedEvent, NewReferral, ResultState, Store, StoreError, StoredResult,
};

use crate::convert::{input_of, safety_item_failed};
use crate::error::CallError;

/// Longest correction or withdrawal reason, in characters.
pub const MAX_REASON_CHARS: usize = yrd_domain::text::REASON_CHARS;

mod cases;
mod reads;
mod writes;

const SERVICE: &str = "/yrd.exchange.v1.SpotCheckService/";

/// China Standard Time: the calendar of every date in the contract (`common.proto`).
const CHINA_STANDARD_TIME: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// The `SpotCheckService` handler.
#[derive(Debug, Clone)]
pub struct SpotCheckHandler {
    store: Store,
    clock: Arc<dyn Clock>,
    receipts: Arc<ReceiptSigner>,
    /// The deadlines of the referrals a non-conforming result opens in other provinces.
    referral_rules: ReferralRules,
    /// How far apart two findings of one product may be and still form a case.
    case_window: MatchWindow,
}

/// What kind of change a write makes, for its feed events.
#[derive(Debug, Clone, Copy)]
enum Change {
    Published,
    Corrected,
    Withdrawn,
}

impl Change {
    fn event_type(self) -> pb::EventType {
        match self {
            Change::Published => pb::EventType::ResultPublished,
            Change::Corrected => pb::EventType::ResultCorrected,
            Change::Withdrawn => pb::EventType::ResultWithdrawn,
        }
    }
}

impl SpotCheckHandler {
    /// A handler writing to `store`, reading "today" from `clock` and signing receipts with
    /// `receipts`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, receipts: Arc<ReceiptSigner>) -> Self {
        SpotCheckHandler {
            store,
            clock,
            receipts,
            referral_rules: ReferralRules::default(),
            case_window: MatchWindow::default(),
        }
    }

    /// Links the findings of one product into a case when at most `window` apart
    /// (docs/cases.md); [`MatchWindow::default`] otherwise.
    pub fn with_case_window(mut self, window: MatchWindow) -> Self {
        self.case_window = window;
        self
    }

    /// Opens the referrals of a non-conforming result with the deployment's `rules` (the
    /// acknowledgement deadline); [`ReferralRules::default`] otherwise.
    pub fn with_referral_rules(mut self, rules: ReferralRules) -> Self {
        self.referral_rules = rules;
        self
    }

    /// The referrals to open for version `version` of result `result_id` (content `parsed`,
    /// published by `publisher`) when `already_open` hold open ones: decided by the domain's
    /// `referrals_for` (docs/domain.md), given their wire shape by the disposal crate.
    #[allow(clippy::too_many_arguments)]
    fn auto_referrals(
        &self,
        result_id: &str,
        version: u32,
        parsed: &SpotCheckResult,
        publisher: &AgencyId,
        already_open: &[AgencyId],
        directory: &AgencyDirectory,
        at: OffsetDateTime,
        trace_id: &str,
        officer: &str,
    ) -> Result<Vec<NewReferral>, CallError> {
        let opened = referrals_for(
            parsed,
            publisher,
            directory,
            already_open,
            at,
            &self.referral_rules,
            || uuid::Uuid::now_v7().simple().to_string(),
        )
        .map_err(|refusal| {
            CallError::Store(StoreError::Corrupt {
                what: "automatic referral",
                detail: refusal.to_string(),
            })
        })?;
        Ok(opened
            .iter()
            .map(|a| {
                yrd_disposal::opener::automatic(
                    a, result_id, version, parsed, publisher, at, trace_id, officer,
                )
            })
            .collect())
    }

    /// Routes by the registered agencies as they are now.
    async fn directory(&self) -> Result<AgencyDirectory, CallError> {
        let agencies = self.store.list_agencies().await?;
        AgencyDirectory::new(agencies.into_iter().map(|a| RegisteredAgency {
            id: a.agency_id,
            is_province_authority: a.is_province_authority,
            is_delta_member: a.is_delta_member,
        }))
        .map_err(|e| {
            CallError::Store(StoreError::Corrupt {
                what: "agency directory",
                detail: e.to_string(),
            })
        })
    }

    /// One feed event per recipient of `routing`, each carrying `result`.
    fn events(
        routing: &Routing,
        change: Change,
        result: &pb::SpotCheckResult,
        actor: &AgencyId,
        trace_id: &str,
        at: OffsetDateTime,
    ) -> Vec<NewFeedEvent> {
        routing
            .recipients
            .iter()
            .map(|recipient| {
                let needs_disposal = routing.needs_disposal.contains(recipient);
                let event_id = uuid::Uuid::new_v4().simple().to_string();
                let event = pb::FeedEvent {
                    cursor: 0,
                    event_id: event_id.clone(),
                    event_type: change.event_type() as i32,
                    resource_name: result.name.clone(),
                    resource_version: result.version,
                    event_time: Some(timestamp(at)),
                    actor_agency: format!("agencies/{actor}"),
                    trace_id: trace_id.to_owned(),
                    needs_disposal,
                    resource: Some(pb::feed_event::Resource::Result(result.clone())),
                    ..Default::default()
                };
                NewFeedEvent {
                    recipient: recipient.clone(),
                    event_id,
                    event_type: change.event_type().as_str_name().to_owned(),
                    resource_name: result.name.clone(),
                    resource_version: i64::from(result.version),
                    event_time: at,
                    actor_agency: actor.to_string(),
                    trace_id: trace_id.to_owned(),
                    needs_disposal,
                    payload: event.encode_to_vec(),
                }
            })
            .collect()
    }

    /// Signs the receipt of `leaf` (when the call is audited).
    fn receipt(&self, leaf: Option<&LeafData>, at: OffsetDateTime) -> Option<pb::Receipt> {
        leaf.map(|leaf| receipt(&self.receipts.sign(&leaf.leaf_hash(), at)))
    }
}

/// The day of `now` in China Standard Time.
fn today(now: OffsetDateTime) -> time::Date {
    now.to_offset(CHINA_STANDARD_TIME).date()
}

pub(crate) fn reason(value: &str, errors: &mut FieldErrors) -> String {
    let value = value.trim();
    if value.is_empty() {
        errors.push(violation("reason", "is required"));
    } else if value.chars().count() > MAX_REASON_CHARS {
        errors.push(violation(
            "reason",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    value.to_owned()
}

/// Parses the `result` field of a write request, naming bad fields under `result.`.
fn parse_result(
    result: Option<&pb::SpotCheckResult>,
    today: time::Date,
    errors: &mut FieldErrors,
) -> Option<SpotCheckResult> {
    let Some(result) = result else {
        errors.push(violation("result", "is required"));
        return None;
    };
    match SpotCheckResult::parse(input_of(result), today) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            errors.extend(
                e.violations
                    .into_iter()
                    .map(|v| violation(format!("result.{}", v.field), v.description)),
            );
            None
        }
    }
}

/// The id of `results/{id}`, or a violation of `field`.
pub(crate) fn result_id(name: &str, field: &str) -> Result<String, FieldViolation> {
    yrd_call::resource_id(name.trim(), "results", field).map(str::to_owned)
}

/// SHA-256 over length-prefixed parts, lowercase hex: the request digest of idempotency.
fn digest(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

fn canonical(result: &SpotCheckResult) -> Result<Vec<u8>, CallError> {
    result.canonical_digest_input().map_err(|e| {
        CallError::Store(StoreError::Corrupt {
            what: "canonical result",
            detail: e.to_string(),
        })
    })
}

/// The answer message of a stored result version.
fn to_pb(stored: &StoredResult) -> Result<pb::SpotCheckResult, CallError> {
    let mut r = pb::SpotCheckResult::decode(stored.body.as_slice()).map_err(|source| {
        CallError::Corrupt {
            what: "result body",
            source,
        }
    })?;
    r.name = format!("results/{}", stored.id);
    r.id.clone_from(&stored.id);
    r.version = stored.version;
    r.version_name = format!("results/{}/versions/{}", stored.id, stored.version);
    r.state = match stored.state {
        ResultState::Published => pb::ResultState::Published,
        ResultState::Withdrawn => pb::ResultState::Withdrawn,
    } as i32;
    r.publisher_agency = format!("agencies/{}", stored.publisher);
    r.safety_item_failed = safety_item_failed(&r);
    r.create_time = Some(timestamp(stored.created_at));
    r.update_time = Some(timestamp(stored.version_created_at));
    r.correction_reason = stored.correction_reason.clone().unwrap_or_default();
    r.withdraw_time = stored.withdrawn_at.map(timestamp);
    r.withdrawal_reason = stored.withdrawal_reason.clone().unwrap_or_default();
    r.version_count = stored.latest_version;
    Ok(r)
}

/// The start of a change to a published result (see [`SpotCheckHandler::change`]).
struct ChangeStart {
    /// The time of the change, at the store's precision.
    now: OffsetDateTime,
    /// The calling agency, which must be the result's publisher.
    publisher: AgencyId,
    /// The request's field errors so far.
    errors: FieldErrors,
    /// The client's request id.
    request_id: String,
    /// The result's id, when its name parsed.
    id: Option<String>,
}

/// The idempotency key of a write: the calling agency, the method, the client's request id and
/// the digest of what the request asks (`parts`).
fn write_key(
    agency: &AgencyId,
    method: &str,
    request_id: String,
    parts: &[&[u8]],
) -> IdempotencyKey {
    IdempotencyKey {
        agency: agency.clone(),
        method: format!("{SERVICE}{method}"),
        request_id,
        request_digest: digest(parts),
    }
}

fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, CallError> {
    M::decode(bytes).map_err(|source| CallError::Corrupt {
        what: "stored answer",
        source,
    })
}

impl SpotCheckHandler {
    /// Fills each result's `referrals` (output only, not stored with the version).
    async fn with_referrals(&self, results: &mut [pb::SpotCheckResult]) -> Result<(), CallError> {
        let ids: Vec<&str> = results.iter().map(|r| r.id.as_str()).collect();
        let mut names = self.store.referral_names_of_results(&ids).await?;
        for r in results {
            r.referrals = names.remove(&r.id).unwrap_or_default();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_separate_their_parts() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert_eq!(digest(&[b"x"]), digest(&[b"x"]));
    }

    #[test]
    fn today_is_the_china_standard_time_day() {
        let late_utc = time::macros::datetime!(2024-06-30 17:00 UTC);
        assert_eq!(today(late_utc), time::macros::date!(2024 - 07 - 01));
    }
}
