//! The `CaseService` handler: cases across agencies (串案, docs/cases.md §"API").
//!
//! Any agency holding `referrals:handle` reads any case, as it reads any referral: a case ties
//! together results and referrals every agency may read already. Only an agency of the case
//! (a publisher of one of its results, or its handling agency) unlinks a result from it, with a
//! reason; the unlink commits through the store's one write primitive with the call's claim,
//! its `EVENT_TYPE_CASE_UNLINKED` events to every agency of the case (the one let go included)
//! and its audit leaf, and every call records the case (`cases/{id}`) among its resources.

use std::sync::Arc;

use prost::Message as _;
use tonic::{Request, Response, Status};
use yrd_call::{Call, FieldErrors, receipt};
use yrd_domain::AgencyId;
use yrd_domain::case::normalise_mark;
use yrd_domain::clock::Clock;
use yrd_pki::ReceiptSigner;
use yrd_proto::v1 as pb;
use yrd_proto::v1::case_service_server::CaseService;
use yrd_store::{
    CaseCursor, CaseFilter, CaseState, IdempotencyKey, NewUnlink, Store, StoreError, StoredCase,
    StoredUnlink, UnlinkError, WriteOutcome, stored_precision,
};

use crate::case_wire::{case_event, case_to_pb};
use crate::error::CallError;
use crate::service::{reason, result_id};

const SERVICE: &str = "/yrd.exchange.v1.CaseService/";

/// Default and largest page of `ListCases`.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// The `CaseService` handler.
#[derive(Debug, Clone)]
pub struct CaseHandler {
    store: Store,
    clock: Arc<dyn Clock>,
    receipts: Arc<ReceiptSigner>,
}

/// The id of `cases/{id}`, or a violation of `field`.
fn case_id(name: &str, field: &str, v: &mut FieldErrors) -> Option<String> {
    match yrd_call::resource_id(name.trim(), "cases", field) {
        Ok(id) => Some(id.to_owned()),
        Err(e) => {
            v.push(e);
            None
        }
    }
}

fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, CallError> {
    M::decode(bytes).map_err(|source| CallError::Corrupt {
        what: "stored answer",
        source,
    })
}

/// A page token: the cursor, hex-encoded (opaque to partners).
fn encode_token(c: &CaseCursor) -> String {
    hex::encode(format!("{}:{}", c.created_at, c.id))
}

fn decode_token(token: &str) -> Option<CaseCursor> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let (at, id) = text.split_once(':')?;
    Some(CaseCursor {
        created_at: at.parse().ok()?,
        id: id.to_owned(),
    })
}

/// `case` after `unlink` lets its result go, as the store's write leaves it: a case left with
/// fewer than two results is dissolved and lets the last one go too.
fn after_unlink(mut case: StoredCase, unlink: StoredUnlink) -> StoredCase {
    case.members.retain(|m| m.result_id != unlink.result_id);
    if case.members.len() < 2 {
        case.members.clear();
        case.state = CaseState::Dissolved;
    } else if let (Some(first), Some(last)) = (
        case.members.iter().map(|m| m.finding_date).min(),
        case.members.iter().map(|m| m.finding_date).max(),
    ) {
        case.first_finding = first;
        case.last_finding = last;
    }
    case.updated_at = unlink.at;
    case.unlinks.push(unlink);
    case
}

impl CaseHandler {
    /// A handler reading and writing `store`, reading "now" from `clock` and signing receipts
    /// with `receipts`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, receipts: Arc<ReceiptSigner>) -> Self {
        CaseHandler {
            store,
            clock,
            receipts,
        }
    }

    async fn case(&self, id: &str) -> Result<StoredCase, CallError> {
        self.store
            .get_case(id)
            .await?
            .ok_or_else(|| CallError::NotFound(format!("cases/{id}")))
    }

    async fn get(
        &self,
        call: &mut Call,
        request: pb::GetCaseRequest,
    ) -> Result<pb::GetCaseResponse, CallError> {
        let mut v = FieldErrors::new();
        let Some(id) = case_id(&request.name, "name", &mut v) else {
            return Err(CallError::Invalid(v));
        };
        call.note(vec![format!("cases/{id}")]);
        Ok(pb::GetCaseResponse {
            r#case: Some(case_to_pb(&self.case(&id).await?)),
        })
    }

    async fn list(
        &self,
        request: pb::ListCasesRequest,
    ) -> Result<pb::ListCasesResponse, CallError> {
        let mut v = FieldErrors::new();
        let agency = match request.agency.trim() {
            "" => None,
            name => match AgencyId::parse_name_or_id(name) {
                Ok(a) => Some(a),
                Err(e) => {
                    v.add("agency", e.to_string());
                    None
                }
            },
        };
        let producer_uscc =
            yrd_call::optional_uscc("producer_uscc", &request.producer_uscc, &mut v);
        let model = match request.model.trim() {
            "" => None,
            text => {
                let model = normalise_mark(text);
                if model.is_none() {
                    v.add("model", "has no letter or digit once normalised");
                }
                model
            }
        };
        let state = match pb::CaseState::try_from(request.state) {
            Ok(pb::CaseState::Unspecified) => None,
            Ok(pb::CaseState::Open) => Some(CaseState::Open),
            Ok(pb::CaseState::Dissolved) => Some(CaseState::Dissolved),
            Err(_) => {
                v.add("state", "is not a CaseState");
                None
            }
        };
        let limit = yrd_call::page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE, &mut v);
        let after = yrd_call::page_after(&request.page_token, decode_token, &mut v);
        if !v.is_empty() {
            return Err(CallError::Invalid(v));
        }
        let filter = CaseFilter {
            agency,
            producer_uscc,
            model,
            state,
        };
        let (cases, next) = self
            .store
            .list_cases(&filter, after.as_ref(), limit as usize)
            .await?;
        Ok(pb::ListCasesResponse {
            cases: cases.iter().map(case_to_pb).collect(),
            next_page_token: next.as_ref().map(encode_token).unwrap_or_default(),
        })
    }

    async fn unlink(
        &self,
        call: &mut Call,
        request: pb::UnlinkResultRequest,
    ) -> Result<pb::UnlinkResultResponse, CallError> {
        let now = stored_precision(self.clock.now());
        let mut v = FieldErrors::new();
        let request_id = yrd_call::request_id(&request.request_id, &mut v);
        let id = case_id(&request.name, "name", &mut v);
        let result = match result_id(&request.result, "result") {
            Ok(r) => Some(r),
            Err(e) => {
                v.push(e);
                None
            }
        };
        let why = reason(&request.reason, &mut v);
        let (Some(id), Some(result), true) = (id, result, v.is_empty()) else {
            return Err(CallError::Invalid(v));
        };
        let name = format!("cases/{id}");
        let result_name = format!("results/{result}");
        call.note(vec![name.clone(), result_name.clone()]);
        let key = IdempotencyKey {
            agency: call.agency().clone(),
            method: format!("{SERVICE}UnlinkResult"),
            request_id,
            request_digest: call.request_sha256.clone(),
        };
        let answered = self
            .store
            .answered_request(&key)
            .await
            .map_err(|e| match e {
                StoreError::RequestIdReused { request_id } => {
                    CallError::RequestIdReused(request_id)
                }
                e => CallError::Store(e),
            })?;
        if let Some(answer) = answered {
            return decode(&answer);
        }
        let before = self.case(&id).await?;
        let recipients = before.agencies();
        if !recipients.contains(call.agency()) {
            return Err(CallError::NotInCase {
                case: name,
                agency: format!("agencies/{}", call.agency()),
            });
        }
        if !before.members.iter().any(|m| m.result_id == result) {
            return Err(CallError::ResultNotInCase {
                case: name,
                result: result_name,
            });
        }
        let unlink = StoredUnlink {
            result_id: result.clone(),
            agency: call.agency().clone(),
            officer: call.officer.clone(),
            reason: why.clone(),
            at: now,
        };
        let after = case_to_pb(&after_unlink(before, unlink));
        let events = case_event(
            &recipients,
            pb::EventType::CaseUnlinked,
            &after,
            call.agency(),
            &call.trace_id,
            now,
        );
        let leaf = call.success_leaf();
        let response = pb::UnlinkResultResponse {
            receipt: leaf
                .as_ref()
                .map(|leaf| receipt(&self.receipts.sign(&leaf.leaf_hash(), now))),
            r#case: Some(after),
        };
        let write = NewUnlink {
            key,
            case_id: id,
            result_id: result,
            agency: call.agency().clone(),
            officer: call.officer.clone(),
            reason: why,
            at: now,
            events,
            leaf,
            response: response.encode_to_vec(),
        };
        match self.store.unlink_case_result(&write).await {
            Ok(WriteOutcome::Written(_)) => {
                call.mark_written();
                Ok(response)
            }
            Ok(WriteOutcome::Replayed(answer)) => decode(&answer),
            Err(UnlinkError::NotFound(_)) => Err(CallError::NotFound(name)),
            Err(UnlinkError::NotInCase { .. }) => Err(CallError::ResultNotInCase {
                case: name,
                result: result_name,
            }),
            Err(UnlinkError::RequestIdReused { request_id }) => {
                Err(CallError::RequestIdReused(request_id))
            }
            Err(UnlinkError::Store(e)) => Err(CallError::Store(e)),
        }
    }
}

#[tonic::async_trait]
impl CaseService for CaseHandler {
    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, name = %request.get_ref().name)
    )]
    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::GetCaseResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.get(call, request.into_inner()).await
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        Call::serve(request, async |_, request| {
            self.list(request.into_inner()).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn unlink_result(
        &self,
        request: Request<pb::UnlinkResultRequest>,
    ) -> Result<Response<pb::UnlinkResultResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.unlink(call, request.into_inner()).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_refuse_garbage() {
        let c = CaseCursor {
            created_at: 1_720_000_000_000_000,
            id: "0190abc".into(),
        };
        assert_eq!(decode_token(&encode_token(&c)), Some(c));
        assert_eq!(decode_token("zz"), None);
        assert_eq!(decode_token(&hex::encode("no-colon")), None);
    }
}
