//! The `SpotCheckService` handler: identity from the extensions → parse → domain rules and
//! routing → one store transaction → answer with a receipt.
//!
//! Each write builds everything it commits before the transaction starts — the result
//! message, one `FeedEvent` per recipient carrying the full result, the audit leaf and the
//! signed answer — so the store only has to write bytes, and a retry of the request can be
//! answered with exactly the bytes of the first answer.

use std::collections::BTreeSet;
use std::sync::Arc;

use prost::Message as _;
use sha2::{Digest as _, Sha256};
use time::{OffsetDateTime, UtcOffset};
use yrd_call::{Call, FieldErrors, FieldViolation, receipt, request_id, timestamp, violation};
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;
use yrd_domain::clock::Clock;
use yrd_domain::referral::ReferralRules;
use yrd_domain::referral::automatic::referrals_for;
use yrd_domain::routing::{AgencyDirectory, RegisteredAgency, Routing, route_result_event};
use yrd_domain::spotcheck::SpotCheckResult;
use yrd_pki::ReceiptSigner;
use yrd_proto::v1::{
    self as pb, CorrectResultRequest, CorrectResultResponse, GetResultRequest, GetResultResponse,
    PublishResultRequest, PublishResultResponse, SearchResultsRequest, SearchResultsResponse,
    WithdrawResultRequest, WithdrawResultResponse,
};
use yrd_store::{
    IdempotencyKey, NewCorrection, NewFeedEvent, NewPublication, NewReferral, NewWithdrawal,
    ResultState, Store, StoreError, StoredResult, WriteOutcome, stored_precision,
};

use crate::convert::{content_of, input_of, safety_item_failed};
use crate::error::CallError;
use crate::search::{decode_token, encode_token, parse_search};

/// Longest correction or withdrawal reason, in characters.
pub const MAX_REASON_CHARS: usize = yrd_domain::text::REASON_CHARS;

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
        }
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

fn reason(value: &str, errors: &mut FieldErrors) -> String {
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
fn result_id(name: &str, field: &str) -> Result<String, FieldViolation> {
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
    pub(crate) async fn publish(
        &self,
        call: &mut Call,
        body: PublishResultRequest,
    ) -> Result<PublishResultResponse, CallError> {
        let now = stored_precision(self.clock.now());
        let publisher = call.agency().clone();
        let mut errors = FieldErrors::new();
        let request_id = request_id(&body.request_id, &mut errors);
        let parsed = parse_result(body.result.as_ref(), today(now), &mut errors);
        let (Some(parsed), true) = (parsed, errors.is_empty()) else {
            return Err(CallError::Invalid(errors));
        };
        let key = write_key(
            &publisher,
            "PublishResult",
            request_id,
            &[&canonical(&parsed)?],
        );
        if let Some(first) = self.replay(&key, "").await? {
            return Ok(first);
        }

        let id = uuid::Uuid::now_v7().simple().to_string();
        let name = format!("results/{id}");
        call.note(vec![name.clone()]);
        let mut result = content_of(&parsed);
        result.name.clone_from(&name);
        result.id.clone_from(&id);
        result.version = 1;
        result.version_name = format!("{name}/versions/1");
        result.state = pb::ResultState::Published as i32;
        result.publisher_agency = format!("agencies/{publisher}");
        result.safety_item_failed = parsed.has_safety_failure();
        result.create_time = Some(timestamp(now));
        result.update_time = Some(timestamp(now));
        result.version_count = 1;

        let directory = self.directory().await?;
        let routing = route_result_event(&parsed, &publisher, &directory);
        let referrals = self.auto_referrals(
            &id,
            1,
            &parsed,
            &publisher,
            &[],
            &directory,
            now,
            &call.trace_id,
            &call.officer,
        )?;
        let opened_referrals: Vec<String> = referrals
            .iter()
            .map(|r| format!("referrals/{}", r.id))
            .collect();
        result.referrals.clone_from(&opened_referrals);
        let events = Self::events(
            &routing,
            Change::Published,
            &result,
            &publisher,
            &call.trace_id,
            now,
        );
        let leaf = call.success_leaf();
        let response = PublishResultResponse {
            result: Some(result.clone()),
            receipt: self.receipt(leaf.as_ref(), now),
            opened_referrals,
        };
        let mut stored_body = result;
        strip_outputs(&mut stored_body);
        let outcome = self
            .store
            .publish_result(&NewPublication {
                key,
                id,
                publisher,
                result: &parsed,
                body: stored_body.encode_to_vec(),
                at: now,
                events,
                referrals,
                leaf,
                response: response.encode_to_vec(),
            })
            .await
            .map_err(|e| CallError::of_write(&name, e))?;
        finish(outcome, call, response)
    }

    pub(crate) async fn correct(
        &self,
        call: &mut Call,
        body: CorrectResultRequest,
    ) -> Result<CorrectResultResponse, CallError> {
        let ChangeStart {
            now,
            publisher,
            mut errors,
            request_id,
            id,
        } = self.change(call, &body.request_id, &body.name);
        let parsed = parse_result(body.result.as_ref(), today(now), &mut errors);
        let reason = reason(&body.reason, &mut errors);
        let (Some(id), Some(parsed), true) = (id, parsed, errors.is_empty()) else {
            return Err(CallError::Invalid(errors));
        };
        let name = format!("results/{id}");
        let key = write_key(
            &publisher,
            "CorrectResult",
            request_id,
            &[
                name.as_bytes(),
                &canonical(&parsed)?,
                reason.as_bytes(),
                &body.base_version.to_be_bytes(),
            ],
        );
        if let Some(first) = self.replay(&key, &name).await? {
            return Ok(first);
        }
        let current = self.writable(&id, &name, &publisher).await?;
        if body.base_version != 0 && body.base_version != current.latest_version {
            return Err(CallError::Stale {
                name,
                expected: body.base_version,
                latest: current.latest_version,
            });
        }
        let version = current.latest_version.saturating_add(1);
        let mut result = content_of(&parsed);
        let previous = to_pb(&current)?;
        result.name.clone_from(&name);
        result.id.clone_from(&id);
        result.version = version;
        result.version_name = format!("{name}/versions/{version}");
        result.state = pb::ResultState::Published as i32;
        result.publisher_agency = previous.publisher_agency.clone();
        result.safety_item_failed = parsed.has_safety_failure();
        result.create_time = previous.create_time;
        result.update_time = Some(timestamp(now));
        result.correction_reason.clone_from(&reason);
        result.version_count = version;

        // Everyone who saw the result before and everyone the corrected content addresses.
        let directory = self.directory().await?;
        let mut routing = route_result_event(&parsed, &publisher, &directory);
        if let Ok(before) = SpotCheckResult::parse(input_of(&previous), today(now)) {
            let old = route_result_event(&before, &publisher, &directory);
            let recipients: BTreeSet<AgencyId> =
                routing.recipients.drain(..).chain(old.recipients).collect();
            routing.recipients = recipients.into_iter().collect();
        }
        // A correction that makes the result non-conforming, or moves it to another
        // province, opens the referrals that are missing; open ones carry on (their handling
        // agency sees the correction in its feed), and none is closed automatically.
        let existing = self.store.referrals_of_result(&id).await?;
        let open: Vec<AgencyId> = existing
            .iter()
            .filter(|r| r.open)
            .map(|r| r.handling_agency.clone())
            .collect();
        let referrals = self.auto_referrals(
            &id,
            version,
            &parsed,
            &publisher,
            &open,
            &directory,
            now,
            &call.trace_id,
            &call.officer,
        )?;
        result.referrals = existing
            .iter()
            .map(|r| format!("referrals/{}", r.id))
            .chain(referrals.iter().map(|r| format!("referrals/{}", r.id)))
            .collect();
        let events = Self::events(
            &routing,
            Change::Corrected,
            &result,
            &publisher,
            &call.trace_id,
            now,
        );
        let leaf = call.success_leaf();
        let response = CorrectResultResponse {
            result: Some(result.clone()),
            receipt: self.receipt(leaf.as_ref(), now),
        };
        let mut stored_body = result;
        strip_outputs(&mut stored_body);
        let outcome = self
            .store
            .correct_result(&NewCorrection {
                key,
                id,
                publisher,
                base_version: current.latest_version,
                result: &parsed,
                body: stored_body.encode_to_vec(),
                reason,
                at: now,
                events,
                referrals,
                leaf,
                response: response.encode_to_vec(),
            })
            .await
            .map_err(|e| CallError::of_write(&name, e))?;
        finish(outcome, call, response)
    }

    pub(crate) async fn withdraw(
        &self,
        call: &mut Call,
        body: WithdrawResultRequest,
    ) -> Result<WithdrawResultResponse, CallError> {
        let ChangeStart {
            now,
            publisher,
            mut errors,
            request_id,
            id,
        } = self.change(call, &body.request_id, &body.name);
        let reason = reason(&body.reason, &mut errors);
        let (Some(id), true) = (id, errors.is_empty()) else {
            return Err(CallError::Invalid(errors));
        };
        let name = format!("results/{id}");
        let key = write_key(
            &publisher,
            "WithdrawResult",
            request_id,
            &[name.as_bytes(), reason.as_bytes()],
        );
        if let Some(first) = self.replay(&key, &name).await? {
            return Ok(first);
        }
        let current = self.writable(&id, &name, &publisher).await?;
        let mut result = to_pb(&current)?;
        self.with_referrals(std::slice::from_mut(&mut result))
            .await?;
        result.state = pb::ResultState::Withdrawn as i32;
        result.withdraw_time = Some(timestamp(now));
        result.withdrawal_reason.clone_from(&reason);

        let routing = match SpotCheckResult::parse(input_of(&result), today(now)) {
            Ok(parsed) => route_result_event(&parsed, &publisher, &self.directory().await?),
            Err(e) => {
                return Err(CallError::Store(StoreError::Corrupt {
                    what: "stored result",
                    detail: e.to_string(),
                }));
            }
        };
        let events = Self::events(
            &routing,
            Change::Withdrawn,
            &result,
            &publisher,
            &call.trace_id,
            now,
        );
        let leaf = call.success_leaf();
        let response = WithdrawResultResponse {
            result: Some(result),
            receipt: self.receipt(leaf.as_ref(), now),
        };
        let outcome = self
            .store
            .withdraw_result(&NewWithdrawal {
                key,
                id,
                publisher,
                version: current.latest_version,
                reason,
                at: now,
                events,
                leaf,
                response: response.encode_to_vec(),
            })
            .await
            .map_err(|e| CallError::of_write(&name, e))?;
        finish(outcome, call, response)
    }

    /// What a correction or a withdrawal of result `name` starts with: the result noted for
    /// the audit, and the request id and the result's id parsed.
    fn change(&self, call: &mut Call, request_id: &str, name: &str) -> ChangeStart {
        let now = stored_precision(self.clock.now());
        call.note(vec![name.trim().to_owned()]);
        let mut errors = FieldErrors::new();
        let request_id = yrd_call::request_id(request_id, &mut errors);
        let id = result_id(name, "name").map_err(|v| errors.push(v)).ok();
        ChangeStart {
            now,
            publisher: call.agency().clone(),
            errors,
            request_id,
            id,
        }
    }

    /// The first answer to `key` when the request was answered before (a retry), so that it
    /// gets the same answer; `name` is the result the write is about ("" for a publication).
    async fn replay<M: prost::Message + Default>(
        &self,
        key: &IdempotencyKey,
        name: &str,
    ) -> Result<Option<M>, CallError> {
        let answer = self
            .store
            .answered_request(key)
            .await
            .map_err(|e| CallError::of_write(name, e.into()))?;
        answer.map(|bytes| decode(&bytes)).transpose()
    }

    /// Fills each result's `referrals` (output only, not stored with the version).
    async fn with_referrals(&self, results: &mut [pb::SpotCheckResult]) -> Result<(), CallError> {
        let ids: Vec<&str> = results.iter().map(|r| r.id.as_str()).collect();
        let mut names = self.store.referral_names_of_results(&ids).await?;
        for r in results {
            r.referrals = names.remove(&r.id).unwrap_or_default();
        }
        Ok(())
    }

    /// The latest version of result `id`, when `caller` may change it.
    async fn writable(
        &self,
        id: &str,
        name: &str,
        caller: &AgencyId,
    ) -> Result<StoredResult, CallError> {
        let current = self
            .store
            .get_result(id, None)
            .await?
            .ok_or_else(|| CallError::NotFound(name.to_owned()))?;
        if &current.publisher != caller {
            return Err(CallError::NotPublisher {
                name: name.to_owned(),
                publisher: format!("agencies/{}", current.publisher),
            });
        }
        if current.state == ResultState::Withdrawn {
            return Err(CallError::Withdrawn(name.to_owned()));
        }
        Ok(current)
    }

    pub(crate) async fn get(
        &self,
        request: GetResultRequest,
    ) -> Result<GetResultResponse, CallError> {
        let name = request.name.trim();
        let bad = || {
            CallError::Invalid(FieldErrors::from(violation(
                "name",
                format!("must be results/{{id}} or results/{{id}}/versions/{{n}}, got {name:?}"),
            )))
        };
        let parts: Vec<&str> = name.split('/').collect();
        let (id, version) = match parts.as_slice() {
            ["results", id] if !id.is_empty() => (*id, None),
            ["results", id, "versions", n] if !id.is_empty() => {
                let n: u32 = n.parse().map_err(|_| bad())?;
                if n == 0 {
                    return Err(bad());
                }
                (*id, Some(n))
            }
            _ => return Err(bad()),
        };
        let stored = self
            .store
            .get_result(id, version)
            .await?
            .ok_or_else(|| CallError::NotFound(name.to_owned()))?;
        let mut result = to_pb(&stored)?;
        self.with_referrals(std::slice::from_mut(&mut result))
            .await?;
        Ok(GetResultResponse {
            result: Some(result),
        })
    }

    pub(crate) async fn search(
        &self,
        request: SearchResultsRequest,
    ) -> Result<SearchResultsResponse, CallError> {
        let (filter, limit) = parse_search(&request).map_err(CallError::Invalid)?;
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(decode_token(&request.page_token).ok_or_else(|| {
                CallError::Invalid(FieldErrors::from(violation(
                    "page_token",
                    "is not a token this search returned",
                )))
            })?)
        };
        let mut rows = self
            .store
            .search_results(&filter, after.as_ref(), limit + 1)
            .await?;
        let next_page_token = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| encode_token(&r.cursor()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let mut results: Vec<pb::SpotCheckResult> =
            rows.iter().map(to_pb).collect::<Result<_, _>>()?;
        self.with_referrals(&mut results).await?;
        Ok(SearchResultsResponse {
            results,
            next_page_token,
        })
    }
}

/// Clears the output-only fields, leaving the content a version stores.
fn strip_outputs(r: &mut pb::SpotCheckResult) {
    let content = pb::SpotCheckResult {
        product: r.product.take(),
        producer: r.producer.take(),
        seller: r.seller.take(),
        sampling_way: r.sampling_way,
        sampling_date: std::mem::take(&mut r.sampling_date),
        inspection_body: std::mem::take(&mut r.inspection_body),
        report_number: std::mem::take(&mut r.report_number),
        report_date: std::mem::take(&mut r.report_date),
        standards: std::mem::take(&mut r.standards),
        test_items: std::mem::take(&mut r.test_items),
        verdict: r.verdict,
        failed_items: std::mem::take(&mut r.failed_items),
        campaign: r.campaign.take(),
        attachments: std::mem::take(&mut r.attachments),
        ..Default::default()
    };
    *r = content;
}

/// The answer of a write: the new one when it was written (its leaf committed with it), or the
/// first answer to the same request, unchanged.
fn finish<M: prost::Message + Default>(
    outcome: WriteOutcome,
    call: &mut Call,
    response: M,
) -> Result<M, CallError> {
    match outcome {
        WriteOutcome::Written(_) => {
            call.mark_written();
            Ok(response)
        }
        // The retry's own leaf is appended by the audit layer, as for any other call.
        WriteOutcome::Replayed(answer) => decode(&answer),
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
