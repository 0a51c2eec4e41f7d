//! The writes of `SpotCheckService`: publish, correct and withdraw a result. Each builds what
//! it commits (result, feed events, referrals, leaf, answer) before its one store write.

use std::collections::BTreeSet;

use prost::Message as _;
use time::OffsetDateTime;
use yrd_call::{Call, FieldErrors, request_id, timestamp};
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;
use yrd_domain::routing::{Routing, route_result_event};
use yrd_domain::spotcheck::SpotCheckResult;
use yrd_proto::v1::{
    self as pb, CorrectResultRequest, CorrectResultResponse, PublishResultRequest,
    PublishResultResponse, WithdrawResultRequest, WithdrawResultResponse,
};
use yrd_store::{
    CaseRows, IdempotencyKey, NewCorrection, NewFeedEvent, NewPublication, NewWithdrawal,
    ResultState, ResultWriteError, StoreError, StoredResult, WriteOutcome, stored_precision,
};

use super::cases::CasePlan;
use super::{
    Change, ChangeStart, SpotCheckHandler, canonical, decode, parse_result, reason, result_id,
    to_pb, today, write_key,
};
use crate::convert::{content_of, input_of};
use crate::error::CallError;

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
        let mut result = version_message(&parsed, &id, 1, None, &publisher, now);

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
        let ids: Vec<String> = referrals.iter().map(|r| r.id.clone()).collect();
        let case = self
            .case_plan(call, &id, Some(&parsed), &publisher, &ids, &directory, now)
            .await?;
        let Tail {
            events,
            leaf,
            receipt,
            cases,
        } = self.tail(call, case, &routing, Change::Published, &result, now);
        let response = PublishResultResponse {
            result: Some(result.clone()),
            receipt,
            opened_referrals,
        };
        let write = NewPublication {
            key,
            id,
            publisher,
            result: &parsed,
            body: stored_body(result),
            at: now,
            events,
            referrals,
            leaf,
            response: response.encode_to_vec(),
            cases,
        };
        commit(self.store.publish_result(&write), call, &name, response).await
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
        let previous = to_pb(&current)?;
        let mut result = version_message(&parsed, &id, version, Some(&previous), &publisher, now);
        result.correction_reason.clone_from(&reason);

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
        let ids: Vec<String> = result
            .referrals
            .iter()
            .map(|r| r.trim_start_matches("referrals/").to_owned())
            .collect();
        let case = self
            .case_plan(call, &id, Some(&parsed), &publisher, &ids, &directory, now)
            .await?;
        let Tail {
            events,
            leaf,
            receipt,
            cases,
        } = self.tail(call, case, &routing, Change::Corrected, &result, now);
        let response = CorrectResultResponse {
            result: Some(result.clone()),
            receipt,
        };
        let write = NewCorrection {
            key,
            id,
            publisher,
            base_version: current.latest_version,
            result: &parsed,
            body: stored_body(result),
            reason,
            at: now,
            events,
            referrals,
            leaf,
            response: response.encode_to_vec(),
            cases,
        };
        commit(self.store.correct_result(&write), call, &name, response).await
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

        let directory = self.directory().await?;
        let case = self
            .case_plan(call, &id, None, &publisher, &[], &directory, now)
            .await?;
        let routing = match SpotCheckResult::parse(input_of(&result), today(now)) {
            Ok(parsed) => route_result_event(&parsed, &publisher, &directory),
            Err(e) => {
                return Err(CallError::Store(StoreError::Corrupt {
                    what: "stored result",
                    detail: e.to_string(),
                }));
            }
        };
        let Tail {
            events,
            leaf,
            receipt,
            cases,
        } = self.tail(call, case, &routing, Change::Withdrawn, &result, now);
        let response = WithdrawResultResponse {
            result: Some(result),
            receipt,
        };
        let write = NewWithdrawal {
            key,
            id,
            publisher,
            version: current.latest_version,
            reason,
            at: now,
            events,
            leaf,
            response: response.encode_to_vec(),
            cases,
        };
        commit(self.store.withdraw_result(&write), call, &name, response).await
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
}

/// The wire message of version `version` of result `id`, published by `publisher` at `now`:
/// `parsed`'s content with the outputs a publication and a correction both set. A correction
/// keeps the `previous` version's publisher and creation time.
fn version_message(
    parsed: &SpotCheckResult,
    id: &str,
    version: u32,
    previous: Option<&pb::SpotCheckResult>,
    publisher: &AgencyId,
    now: OffsetDateTime,
) -> pb::SpotCheckResult {
    let name = format!("results/{id}");
    let mut result = content_of(parsed);
    result.version_name = format!("{name}/versions/{version}");
    result.name = name;
    result.id = id.to_owned();
    result.version = version;
    result.state = pb::ResultState::Published as i32;
    result.safety_item_failed = parsed.has_safety_failure();
    match previous {
        Some(previous) => {
            result
                .publisher_agency
                .clone_from(&previous.publisher_agency);
            result.create_time = previous.create_time;
        }
        None => {
            result.publisher_agency = format!("agencies/{publisher}");
            result.create_time = Some(timestamp(now));
        }
    }
    result.update_time = Some(timestamp(now));
    result.version_count = version;
    result
}

/// The encoded content a version stores: `r` without its output-only fields.
fn stored_body(mut r: pb::SpotCheckResult) -> Vec<u8> {
    strip_outputs(&mut r);
    r.encode_to_vec()
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

/// What every write commits beside its result's rows: the feed events of the change and of
/// its case link, the case rows, the call's audit leaf, and the receipt that signs the leaf
/// for the answer.
struct Tail {
    events: Vec<NewFeedEvent>,
    leaf: Option<LeafData>,
    receipt: Option<pb::Receipt>,
    cases: CaseRows,
}

impl SpotCheckHandler {
    /// The [`Tail`] of the caller's write that makes `change` to `result` with `case`, sent
    /// to `routing`'s recipients: the call's leaf names the result and the case it is in after
    /// the write (docs/cases.md), and every agency of the case is told of a new link.
    fn tail(
        &self,
        call: &mut Call,
        case: CasePlan,
        routing: &Routing,
        change: Change,
        result: &pb::SpotCheckResult,
        now: OffsetDateTime,
    ) -> Tail {
        call.note(case.resources(&result.name));
        let mut events = Self::events(routing, change, result, call.agency(), &call.trace_id, now);
        events.extend(case.events);
        let leaf = call.success_leaf();
        let receipt = self.receipt(leaf.as_ref(), now);
        Tail {
            events,
            leaf,
            receipt,
            cases: case.rows,
        }
    }
}

/// Commits a write of result `name` (`write`, its one store call) and answers it: see
/// [`finish`].
async fn commit<M: prost::Message + Default>(
    write: impl Future<Output = Result<WriteOutcome, ResultWriteError>>,
    call: &mut Call,
    name: &str,
    response: M,
) -> Result<M, CallError> {
    let outcome = write.await.map_err(|e| CallError::of_write(name, e))?;
    finish(outcome, call, response)
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
