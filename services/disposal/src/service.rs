//! The `DisposalService` handler: identity from the extensions → parse → the domain's
//! [`apply`] → one store transaction (the referral, its feed events, the audit leaf, the
//! idempotent answer) → answer with a receipt.
//!
//! Every step method runs the same [`DisposalHandler::step`]: only parsing differs. A step is
//! decided on the referral as read and written only while the referral is still at that
//! revision; when another call or the scheduler changed it meanwhile, the step is decided again
//! on the new state (a few times, then `ABORTED`), so a refusal always names the state that
//! actually refused it.

use std::sync::Arc;

use prost::Message as _;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use yrd_domain::audit::{AuditCall, AuditNotes, CallRecord, LeafData};
use yrd_domain::clock::Clock;
use yrd_domain::referral::{Actor, JurisdictionBasis, ReferralCommand, apply};
use yrd_domain::uscc::Uscc;
use yrd_domain::{AgencyId, AgencyIdentity};
use yrd_pki::ReceiptSigner;
use yrd_proto::v1::disposal_service_server::DisposalService;
use yrd_proto::v1::{self as pb};
use yrd_proto::wire::{FieldViolation, receipt, request_sha256, resource_id};
use yrd_store::{
    IdempotencyKey, ReferralChange, ReferralCursor, ReferralFilter, ReferralParty, ResultState,
    ResultWriteError, Store, WriteOutcome, stored_precision,
};

use crate::convert::{agency_name, basis_from_wire, day_of, state_filter};
use crate::error::CallError;
use crate::opener::{Opener, Opening};
use crate::parse::Violations;
use crate::timeline::{StepContext, StepDetail, advance};

const SERVICE: &str = "/yrd.exchange.v1.DisposalService/";

/// How often a step is decided again when the referral changed under it.
const MAX_ATTEMPTS: usize = 4;

/// Default and largest page of `ListReferrals`.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// The `DisposalService` handler.
#[derive(Debug, Clone)]
pub struct DisposalHandler {
    store: Store,
    clock: Arc<dyn Clock>,
    receipts: Arc<ReceiptSigner>,
    opener: Opener,
}

/// A parsed step request: which referral, what to ask the machine, and what to record.
struct Step {
    id: String,
    command: ReferralCommand,
    detail: StepDetail,
    note: String,
    /// Agencies named in the request, which must be registered at the exchange.
    named_agencies: Vec<(&'static str, AgencyId)>,
}

/// The caller of a call and what its audit needs.
struct Call {
    caller: AgencyId,
    officer: String,
    audit: Option<AuditCall>,
    trace_id: String,
}

fn call_of<T>(request: &Request<T>) -> Option<Call> {
    let caller = request
        .extensions()
        .get::<AgencyIdentity>()
        .map(|i| i.agency.clone())?;
    let record = request.extensions().get::<CallRecord>();
    let notes = request.extensions().get::<AuditNotes>();
    Some(Call {
        caller,
        officer: notes.map(|n| n.snapshot().officer).unwrap_or_default(),
        audit: AuditCall::new(record, notes),
        trace_id: record.map(|r| r.trace_id.clone()).unwrap_or_default(),
    })
}

/// The request fields every step shares.
trait StepRequest: prost::Message {
    fn request_id(&self) -> &str;
    fn name(&self) -> &str;
}

/// The answer every step shares: the referral after the step and the receipt.
trait StepAnswer: prost::Message + Default + Sized {
    fn new(referral: pb::Referral, receipt: Option<pb::Receipt>) -> Self;
}

macro_rules! step_messages {
    ($(($req:ty, $res:ty)),* $(,)?) => {
        $(
            impl StepRequest for $req {
                fn request_id(&self) -> &str {
                    &self.request_id
                }
                fn name(&self) -> &str {
                    &self.name
                }
            }
            impl StepAnswer for $res {
                fn new(referral: pb::Referral, receipt: Option<pb::Receipt>) -> Self {
                    Self { referral: Some(referral), receipt }
                }
            }
        )*
    };
}

step_messages!(
    (
        pb::AcknowledgeReferralRequest,
        pb::AcknowledgeReferralResponse
    ),
    (pb::StartHandlingRequest, pb::StartHandlingResponse),
    (pb::RecordMeasureRequest, pb::RecordMeasureResponse),
    (pb::FileObjectionRequest, pb::FileObjectionResponse),
    (
        pb::RecordReinspectionRequest,
        pb::RecordReinspectionResponse
    ),
    (pb::ReturnReferralRequest, pb::ReturnReferralResponse),
    (pb::RerouteReferralRequest, pb::RerouteReferralResponse),
    (pb::CloseReferralRequest, pb::CloseReferralResponse),
    (pb::AddReactionRequest, pb::AddReactionResponse),
);

impl StepAnswer for pb::CreateReferralResponse {
    fn new(referral: pb::Referral, receipt: Option<pb::Receipt>) -> Self {
        Self {
            referral: Some(referral),
            receipt,
        }
    }
}

fn decode<M: prost::Message + Default>(bytes: &[u8], what: &'static str) -> Result<M, CallError> {
    M::decode(bytes).map_err(|source| CallError::Corrupt { what, source })
}

fn of_lookup(e: ResultWriteError) -> CallError {
    match e {
        ResultWriteError::RequestIdReused { request_id } => CallError::RequestIdReused(request_id),
        ResultWriteError::Store(e) => CallError::Store(e),
        other => CallError::Store(yrd_store::StoreError::AlreadyExists {
            what: other.to_string(),
        }),
    }
}

impl DisposalHandler {
    /// A handler writing to `store`, reading "now" from `clock`, signing receipts with
    /// `receipts` and opening referrals with `opener`'s rules.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        receipts: Arc<ReceiptSigner>,
        opener: Opener,
    ) -> Self {
        DisposalHandler {
            store,
            clock,
            receipts,
            opener,
        }
    }

    fn receipt(&self, leaf: Option<&LeafData>, at: OffsetDateTime) -> Option<pb::Receipt> {
        leaf.map(|leaf| receipt(&self.receipts.sign(&leaf.leaf_hash(), at)))
    }

    /// Adds a violation for each named agency the exchange does not know.
    async fn check_registered(
        &self,
        named: &[(&'static str, AgencyId)],
        v: &mut Violations,
    ) -> Result<(), CallError> {
        if named.is_empty() {
            return Ok(());
        }
        let known = self.store.list_agencies().await?;
        for (field, agency) in named {
            if !known.iter().any(|a| &a.agency_id == agency) {
                v.add(
                    *field,
                    format!("{} is not an agency of the exchange", agency_name(agency)),
                );
            }
        }
        Ok(())
    }

    /// Runs one step: parse with `parse`, decide with the domain, write in one transaction.
    async fn step<Req, Res>(
        &self,
        request: Request<Req>,
        method: &'static str,
        parse: impl FnOnce(&Req, &mut Violations, OffsetDateTime, &Opener) -> Option<Step>,
    ) -> Result<Res, CallError>
    where
        Req: StepRequest,
        Res: StepAnswer,
    {
        let now = stored_precision(self.clock.now());
        let call = call_of(&request).ok_or(CallError::NoIdentity)?;
        let body = request.get_ref();
        let digest = request_sha256(body);
        if let Some(audit) = &call.audit {
            audit.note(vec![body.name().trim().to_owned()], digest.clone());
        }
        let mut v = Violations::default();
        let request_id = v.request_id(body.request_id());
        let step = parse(body, &mut v, now, &self.opener);
        if let Some(step) = &step {
            self.check_registered(&step.named_agencies, &mut v).await?;
        }
        let (Some(step), true) = (step, v.is_empty()) else {
            return Err(CallError::Invalid(v.0));
        };
        let key = IdempotencyKey {
            agency: call.caller.clone(),
            method: format!("{SERVICE}{method}"),
            request_id,
            request_digest: digest,
        };
        let name = format!("referrals/{}", step.id);
        let reactor = matches!(step.command, ReferralCommand::AddReaction { .. })
            .then(|| call.caller.clone());
        for _ in 0..MAX_ATTEMPTS {
            if let Some(answer) = self.store.answered_request(&key).await.map_err(of_lookup)? {
                return decode(&answer, "stored answer");
            }
            let stored = self
                .store
                .get_referral(&step.id)
                .await?
                .ok_or_else(|| CallError::NotFound(name.clone()))?;
            let t = apply(
                &stored.machine,
                &step.command,
                &Actor::Agency(call.caller.clone()),
                now,
                self.opener.rules(),
            )?;
            let before: pb::Referral = decode(&stored.body, "referral")?;
            let (after, events) = advance(
                &before,
                &t,
                &step.detail,
                StepContext {
                    actor: Some(&call.caller),
                    officer: &call.officer,
                    note: &step.note,
                    trace_id: &call.trace_id,
                    at: now,
                },
            );
            let leaf = call.audit.as_ref().map(AuditCall::success_leaf);
            let response = Res::new(after.clone(), self.receipt(leaf.as_ref(), now));
            let change = ReferralChange {
                key: Some(key.clone()),
                id: step.id.clone(),
                expected_revision: stored.revision,
                machine: t.new_state,
                body: after.encode_to_vec(),
                at: now,
                reactor: reactor.clone(),
                events,
                leaf,
                response: response.encode_to_vec(),
            };
            match self.store.change_referral(&change).await {
                Ok(WriteOutcome::Written(_)) => {
                    if let Some(audit) = &call.audit {
                        audit.mark_written();
                    }
                    return Ok(response);
                }
                Ok(WriteOutcome::Replayed(answer)) => return decode(&answer, "stored answer"),
                Err(yrd_store::ReferralWriteError::Conflict(_)) => continue,
                Err(e) => return Err(CallError::of_write(&name, e)),
            }
        }
        Err(CallError::Contended(name))
    }

    async fn create(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<pb::CreateReferralResponse, CallError> {
        let now = stored_precision(self.clock.now());
        let call = call_of(&request).ok_or(CallError::NoIdentity)?;
        let body = request.get_ref();
        let digest = request_sha256(body);
        if let Some(audit) = &call.audit {
            audit.note(vec![body.result.trim().to_owned()], digest.clone());
        }
        let mut v = Violations::default();
        let request_id = v.request_id(&body.request_id);
        let result_id = match resource_id(body.result.trim(), "results", "result") {
            Ok(id) => Some(id.to_owned()),
            Err(violation) => {
                v.0.push(violation);
                None
            }
        };
        let handling = v.agency("handling_agency", &body.handling_agency, true);
        let basis = basis_from_wire(body.jurisdiction_basis);
        if basis.is_none() {
            v.add("jurisdiction_basis", "is required: PRODUCER or SELLER");
        }
        let requested_actions = v.requested_actions(&body.requested_actions);
        let note = v.optional_text("note", &body.note);
        if let Some(h) = &handling {
            self.check_registered(&[("handling_agency", h.clone())], &mut v)
                .await?;
        }
        let (Some(result_id), Some(handling), Some(basis), true) =
            (result_id, handling, basis, v.is_empty())
        else {
            return Err(CallError::Invalid(v.0));
        };
        let key = IdempotencyKey {
            agency: call.caller.clone(),
            method: format!("{SERVICE}CreateReferral"),
            request_id,
            request_digest: digest,
        };
        if let Some(answer) = self.store.answered_request(&key).await.map_err(of_lookup)? {
            return decode(&answer, "stored answer");
        }
        let result_name = format!("results/{result_id}");
        let version = (body.result_version != 0).then_some(body.result_version);
        let stored = self
            .store
            .get_result(&result_id, version)
            .await?
            .ok_or_else(|| match version {
                Some(n) => CallError::NotFound(format!("{result_name}/versions/{n}")),
                None => CallError::NotFound(result_name.clone()),
            })?;
        if stored.publisher != call.caller {
            return Err(CallError::NotPublisher {
                name: result_name,
                publisher: agency_name(&stored.publisher),
            });
        }
        if stored.state == ResultState::Withdrawn {
            return Err(CallError::NotReferable(format!(
                "{result_name} is withdrawn; a withdrawn result is not referred"
            )));
        }
        let content: pb::SpotCheckResult = decode(&stored.body, "result body")?;
        if content.verdict != pb::Verdict::NonConforming as i32 {
            return Err(CallError::NotReferable(format!(
                "{result_name} version {} is conforming; only a non-conforming result is referred",
                stored.version
            )));
        }
        let producer = content.producer.clone().unwrap_or_default();
        let (whose, region) = match basis {
            JurisdictionBasis::Producer => ("nominal producer", producer.region_code.clone()),
            JurisdictionBasis::Seller => (
                "sampled seller",
                content
                    .seller
                    .as_ref()
                    .map(|s| s.region_code.clone())
                    .unwrap_or_default(),
            ),
        };
        let province = handling.province();
        if region.get(..2) != Some(province.province_prefix()) {
            return Err(CallError::Invalid(vec![FieldViolation::new(
                "handling_agency",
                format!(
                    "the {whose} of {result_name} lies in region {region}, outside {}'s \
                     province {}",
                    agency_name(&handling),
                    province.as_str()
                ),
            )]));
        }
        let new = self.opener.open(&Opening {
            result_id: &result_id,
            result_version: stored.version,
            product_name: content
                .product
                .as_ref()
                .map(|p| p.name.as_str())
                .unwrap_or_default(),
            producer,
            sampling: &call.caller,
            handling: &handling,
            basis,
            origin: pb::ReferralOrigin::Manual,
            requested_actions,
            note,
            at: now,
            trace_id: &call.trace_id,
            officer: &call.officer,
        })?;
        let referral: pb::Referral = decode(&new.body, "referral")?;
        let leaf = call.audit.as_ref().map(AuditCall::success_leaf);
        let response = pb::CreateReferralResponse::new(referral, self.receipt(leaf.as_ref(), now));
        let outcome = self
            .store
            .create_referral(&key, &new, leaf.as_ref(), &response.encode_to_vec())
            .await
            .map_err(|e| CallError::of_write(&format!("referrals/{}", new.id), e))?;
        match outcome {
            WriteOutcome::Written(_) => {
                if let Some(audit) = &call.audit {
                    audit.mark_written();
                }
                Ok(response)
            }
            WriteOutcome::Replayed(answer) => decode(&answer, "stored answer"),
        }
    }

    async fn get(
        &self,
        request: pb::GetReferralRequest,
    ) -> Result<pb::GetReferralResponse, CallError> {
        let mut v = Violations::default();
        let Some(id) = v.referral_id("name", &request.name) else {
            return Err(CallError::Invalid(v.0));
        };
        let stored = self
            .store
            .get_referral(&id)
            .await?
            .ok_or_else(|| CallError::NotFound(format!("referrals/{id}")))?;
        Ok(pb::GetReferralResponse {
            referral: Some(decode(&stored.body, "referral")?),
        })
    }

    async fn list(
        &self,
        caller: AgencyId,
        request: pb::ListReferralsRequest,
    ) -> Result<pb::ListReferralsResponse, CallError> {
        let mut v = Violations::default();
        let party = match pb::ReferralRole::try_from(request.role) {
            Ok(pb::ReferralRole::Unspecified) => ReferralParty::SamplingOrHandling,
            Ok(pb::ReferralRole::Sampling) => ReferralParty::Sampling,
            Ok(pb::ReferralRole::Handling) => ReferralParty::Handling,
            Ok(pb::ReferralRole::Reacting) => ReferralParty::Reacting,
            Err(_) => {
                v.add("role", "is not a ReferralRole");
                ReferralParty::SamplingOrHandling
            }
        };
        let state = match pb::ReferralState::try_from(request.state) {
            Ok(s) => state_filter(s),
            Err(_) => {
                v.add("state", "is not a ReferralState");
                None
            }
        };
        let producer_uscc = match request.producer_uscc.trim() {
            "" => None,
            text => match Uscc::parse(text) {
                Ok(u) => Some(u.as_str().to_owned()),
                Err(e) => {
                    v.add("producer_uscc", e.to_string());
                    None
                }
            },
        };
        let product = v.optional_text("product_name_contains", &request.product_name_contains);
        let limit = match request.page_size {
            n if n < 0 => {
                v.add("page_size", "must not be negative");
                DEFAULT_PAGE
            }
            0 => DEFAULT_PAGE,
            n => u32::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        };
        let after = match request.page_token.as_str() {
            "" => None,
            token => {
                let cursor = decode_token(token);
                if cursor.is_none() {
                    v.add("page_token", "is not a token this list returned");
                }
                cursor
            }
        };
        if !v.is_empty() {
            return Err(CallError::Invalid(v.0));
        }
        let filter = ReferralFilter {
            agency: caller,
            party,
            state,
            overdue: request.overdue,
            announcement_required: request.announcement_required,
            product_name_contains: (!product.is_empty()).then_some(product),
            producer_uscc,
        };
        let mut rows = self
            .store
            .list_referrals(&filter, after.as_ref(), limit + 1)
            .await?;
        let next_page_token = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| encode_token(&r.cursor()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListReferralsResponse {
            referrals: rows
                .iter()
                .map(|r| decode(&r.body, "referral"))
                .collect::<Result<_, _>>()?,
            next_page_token,
        })
    }
}

/// A page token: the cursor, hex-encoded (opaque to partners).
fn encode_token(c: &ReferralCursor) -> String {
    hex::encode(format!("{}:{}", c.created_at_us, c.id))
}

fn decode_token(token: &str) -> Option<ReferralCursor> {
    let text = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let (at, id) = text.split_once(':')?;
    Some(ReferralCursor {
        created_at_us: at.parse().ok()?,
        id: id.to_owned(),
    })
}

fn note(v: &mut Violations, text: &str) -> String {
    v.optional_text("note", text)
}

fn plain(id: Option<String>, command: ReferralCommand, note: String) -> Option<Step> {
    Some(Step {
        id: id?,
        command,
        detail: StepDetail::None,
        note,
        named_agencies: Vec::new(),
    })
}

#[tonic::async_trait]
impl DisposalService for DisposalHandler {
    #[tracing::instrument(skip_all)]
    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<Response<pb::CreateReferralResponse>, Status> {
        Ok(Response::new(self.create(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn get_referral(
        &self,
        request: Request<pb::GetReferralRequest>,
    ) -> Result<Response<pb::GetReferralResponse>, Status> {
        Ok(Response::new(self.get(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        let caller = call_of(&request).ok_or(CallError::NoIdentity)?.caller;
        Ok(Response::new(
            self.list(caller, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn acknowledge_referral(
        &self,
        request: Request<pb::AcknowledgeReferralRequest>,
    ) -> Result<Response<pb::AcknowledgeReferralResponse>, Status> {
        let answer = self
            .step(request, "AcknowledgeReferral", |b, v, _, _| {
                let id = v.referral_id("name", &b.name);
                plain(id, ReferralCommand::Acknowledge, note(v, &b.note))
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn start_handling(
        &self,
        request: Request<pb::StartHandlingRequest>,
    ) -> Result<Response<pb::StartHandlingResponse>, Status> {
        let answer = self
            .step(request, "StartHandling", |b, v, _, _| {
                let id = v.referral_id("name", &b.name);
                plain(id, ReferralCommand::StartHandling, note(v, &b.note))
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn record_measure(
        &self,
        request: Request<pb::RecordMeasureRequest>,
    ) -> Result<Response<pb::RecordMeasureResponse>, Status> {
        let answer = self
            .step(request, "RecordMeasure", |b, v, now, opener| {
                let id = v.referral_id("name", &b.name);
                let measure = v.measure(b.measure.as_ref(), now, opener.rules());
                let note = note(v, &b.note);
                let (measure, wire) = measure?;
                Some(Step {
                    id: id?,
                    command: ReferralCommand::RecordMeasure(measure),
                    detail: StepDetail::Measure(wire),
                    note,
                    named_agencies: Vec::new(),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn file_objection(
        &self,
        request: Request<pb::FileObjectionRequest>,
    ) -> Result<Response<pb::FileObjectionResponse>, Status> {
        let answer = self
            .step(request, "FileObjection", |b, v, _, _| {
                let id = v.referral_id("name", &b.name);
                let objection = v.objection(b.objection.as_ref());
                let note = note(v, &b.note);
                let (result_received_on, filed_on, wire) = objection?;
                Some(Step {
                    id: id?,
                    command: ReferralCommand::FileObjection {
                        result_received_on,
                        filed_on,
                    },
                    detail: StepDetail::Objection(wire),
                    note,
                    named_agencies: Vec::new(),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn record_reinspection(
        &self,
        request: Request<pb::RecordReinspectionRequest>,
    ) -> Result<Response<pb::RecordReinspectionResponse>, Status> {
        let answer = self
            .step(request, "RecordReinspection", |b, v, now, _| {
                let id = v.referral_id("name", &b.name);
                let reinspection = v.reinspection(b.reinspection.as_ref(), day_of(now));
                let note = note(v, &b.note);
                let (result, wire) = reinspection?;
                Some(Step {
                    id: id?,
                    command: ReferralCommand::RecordReinspection { result },
                    detail: StepDetail::Reinspection(wire),
                    note,
                    named_agencies: Vec::new(),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn return_referral(
        &self,
        request: Request<pb::ReturnReferralRequest>,
    ) -> Result<Response<pb::ReturnReferralResponse>, Status> {
        let answer = self
            .step(request, "ReturnReferral", |b, v, _, _| {
                let id = v.referral_id("name", &b.name);
                let reason = v.remark("reason", &b.reason);
                let suggested = v.agency("suggested_agency", &b.suggested_agency, false);
                let reason = reason?;
                Some(Step {
                    id: id?,
                    command: ReferralCommand::Return {
                        reason: reason.clone(),
                        suggested_agency: suggested.clone(),
                    },
                    detail: StepDetail::Returned(pb::ReferralReturn {
                        reason: reason.to_string(),
                        suggested_agency: suggested.as_ref().map(agency_name).unwrap_or_default(),
                    }),
                    note: String::new(),
                    named_agencies: suggested
                        .map(|a| vec![("suggested_agency", a)])
                        .unwrap_or_default(),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn reroute_referral(
        &self,
        request: Request<pb::RerouteReferralRequest>,
    ) -> Result<Response<pb::RerouteReferralResponse>, Status> {
        let answer = self
            .step(request, "RerouteReferral", |b, v, _, _| {
                let id = v.referral_id("name", &b.name);
                let to = v.agency("handling_agency", &b.handling_agency, true);
                let basis = basis_from_wire(b.jurisdiction_basis);
                if basis.is_none() {
                    v.add("jurisdiction_basis", "is required: PRODUCER or SELLER");
                }
                let reason = v.remark("reason", &b.reason);
                let (to, reason) = (to?, reason?);
                Some(Step {
                    id: id?,
                    command: ReferralCommand::Reroute { to: to.clone() },
                    detail: StepDetail::Reroute {
                        basis,
                        reason: reason.to_string(),
                    },
                    note: String::new(),
                    named_agencies: vec![("handling_agency", to)],
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn close_referral(
        &self,
        request: Request<pb::CloseReferralRequest>,
    ) -> Result<Response<pb::CloseReferralResponse>, Status> {
        let answer = self
            .step(request, "CloseReferral", |b, v, _, _| {
                let id = v.referral_id("name", &b.name);
                let (outcome, summary, wire) = v.closure(b.closure.as_ref())?;
                Some(Step {
                    id: id?,
                    command: ReferralCommand::Close { outcome, summary },
                    detail: StepDetail::Closure(wire),
                    note: String::new(),
                    named_agencies: Vec::new(),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn add_reaction(
        &self,
        request: Request<pb::AddReactionRequest>,
    ) -> Result<Response<pb::AddReactionResponse>, Status> {
        let answer = self
            .step(request, "AddReaction", |b, v, _, _| {
                let id = v.referral_id("name", &b.name);
                let (kind, text, wire) = v.reaction(b.reaction.as_ref())?;
                Some(Step {
                    id: id?,
                    command: ReferralCommand::AddReaction { kind, text },
                    detail: StepDetail::Reaction(wire),
                    note: String::new(),
                    named_agencies: Vec::new(),
                })
            })
            .await?;
        Ok(Response::new(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_refuse_garbage() {
        let c = ReferralCursor {
            created_at_us: 1_720_000_000_000_000,
            id: "0190abc".into(),
        };
        assert_eq!(decode_token(&encode_token(&c)), Some(c));
        assert_eq!(decode_token("zz"), None);
        assert_eq!(decode_token(&hex::encode("no-colon")), None);
    }
}
