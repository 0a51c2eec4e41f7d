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
use yrd_call::{Call, FieldErrors, receipt};
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;
use yrd_domain::clock::Clock;
use yrd_domain::referral::{Actor, ReferralCommand, apply};
use yrd_pki::ReceiptSigner;
use yrd_proto::v1::disposal_service_server::DisposalService;
use yrd_proto::v1::{self as pb};
use yrd_store::{
    IdempotencyKey, ReferralChange, ResultWriteError, Store, WriteOutcome, stored_precision,
};

use crate::convert::{agency_name, basis_from_wire, day_of};
use crate::error::CallError;
use crate::opener::Opener;
use crate::parse::RequestFields as _;
use crate::timeline::{StepContext, StepDetail, advance};

mod create;
mod reads;

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

fn of_lookup(e: yrd_store::StoreError) -> CallError {
    match ResultWriteError::from(e) {
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
        v: &mut FieldErrors,
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

    /// The dispatch of a step's RPC: the call's context (its agency recorded on the RPC's
    /// span), the step, and the answer or status.
    async fn step_call<Req, Res>(
        &self,
        request: Request<Req>,
        method: &'static str,
        parse: impl FnOnce(&Req, &mut FieldErrors, OffsetDateTime, &Opener) -> Option<Step>,
    ) -> Result<Response<Res>, Status>
    where
        Req: StepRequest,
        Res: StepAnswer,
    {
        Call::serve(request, async |call, request| {
            self.step(call, request.into_inner(), method, parse).await
        })
        .await
    }

    /// Runs one step: parse with `parse`, decide with the domain, write in one transaction.
    async fn step<Req, Res>(
        &self,
        call: &mut Call,
        body: Req,
        method: &'static str,
        parse: impl FnOnce(&Req, &mut FieldErrors, OffsetDateTime, &Opener) -> Option<Step>,
    ) -> Result<Res, CallError>
    where
        Req: StepRequest,
        Res: StepAnswer,
    {
        let now = stored_precision(self.clock.now());
        call.note(vec![body.name().trim().to_owned()]);
        let mut v = FieldErrors::new();
        let request_id = v.request_id(body.request_id());
        let step = parse(&body, &mut v, now, &self.opener);
        if let Some(step) = &step {
            self.check_registered(&step.named_agencies, &mut v).await?;
        }
        let (Some(step), true) = (step, v.is_empty()) else {
            return Err(CallError::Invalid(v));
        };
        let key = IdempotencyKey {
            agency: call.agency().clone(),
            method: format!("{SERVICE}{method}"),
            request_id,
            request_digest: call.request_sha256.clone(),
        };
        let name = format!("referrals/{}", step.id);
        let reactor = matches!(step.command, ReferralCommand::AddReaction { .. })
            .then(|| call.agency().clone());
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
                &Actor::Agency(call.agency().clone()),
                now,
                self.opener.rules(),
            )?;
            let mut before: pb::Referral = decode(&stored.body, "referral")?;
            if let Some(case) = case_name(&stored) {
                // A step on a referral of a case is part of the case's story in the log.
                call.note(vec![name.clone(), case.clone()]);
                before.r#case = case;
            }
            let (after, events) = advance(
                &before,
                &t,
                &step.detail,
                StepContext {
                    actor: Some(call.agency()),
                    officer: &call.officer,
                    note: &step.note,
                    trace_id: &call.trace_id,
                    at: now,
                },
            );
            let leaf = call.success_leaf();
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
                    call.mark_written();
                    return Ok(response);
                }
                Ok(WriteOutcome::Replayed(answer)) => return decode(&answer, "stored answer"),
                Err(yrd_store::ReferralWriteError::Conflict(_)) => continue,
                Err(e) => return Err(CallError::of_write(&name, e)),
            }
        }
        Err(CallError::Contended(name))
    }
}

/// The name of the case (`cases/{id}`) `stored`'s result is in, if any.
pub(crate) fn case_name(stored: &yrd_store::StoredReferral) -> Option<String> {
    stored.case_id.as_ref().map(|c| format!("cases/{c}"))
}

fn note(v: &mut FieldErrors, text: &str) -> String {
    v.optional_text("note", text)
}

/// A step on referral `id` that names no agency (`None` when a field was bad).
fn step_of(
    id: Option<String>,
    command: ReferralCommand,
    detail: StepDetail,
    note: String,
) -> Option<Step> {
    Some(Step {
        id: id?,
        command,
        detail,
        note,
        named_agencies: Vec::new(),
    })
}

/// A step that records nothing beyond its note.
fn plain(id: Option<String>, command: ReferralCommand, note: String) -> Option<Step> {
    step_of(id, command, StepDetail::None, note)
}

#[tonic::async_trait]
impl DisposalService for DisposalHandler {
    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, result = %request.get_ref().result)
    )]
    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<Response<pb::CreateReferralResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.create(call, request.into_inner()).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, name = %request.get_ref().name)
    )]
    async fn get_referral(
        &self,
        request: Request<pb::GetReferralRequest>,
    ) -> Result<Response<pb::GetReferralResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.get(call, request.into_inner()).await
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(agency = tracing::field::Empty))]
    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        Call::serve(request, async |call, request| {
            self.list(call.agency().clone(), request.into_inner()).await
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn acknowledge_referral(
        &self,
        request: Request<pb::AcknowledgeReferralRequest>,
    ) -> Result<Response<pb::AcknowledgeReferralResponse>, Status> {
        self.step_call(request, "AcknowledgeReferral", parse_acknowledge_referral)
            .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn start_handling(
        &self,
        request: Request<pb::StartHandlingRequest>,
    ) -> Result<Response<pb::StartHandlingResponse>, Status> {
        self.step_call(request, "StartHandling", parse_start_handling)
            .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn record_measure(
        &self,
        request: Request<pb::RecordMeasureRequest>,
    ) -> Result<Response<pb::RecordMeasureResponse>, Status> {
        self.step_call(request, "RecordMeasure", parse_record_measure)
            .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn file_objection(
        &self,
        request: Request<pb::FileObjectionRequest>,
    ) -> Result<Response<pb::FileObjectionResponse>, Status> {
        self.step_call(request, "FileObjection", parse_file_objection)
            .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn record_reinspection(
        &self,
        request: Request<pb::RecordReinspectionRequest>,
    ) -> Result<Response<pb::RecordReinspectionResponse>, Status> {
        self.step_call(request, "RecordReinspection", parse_record_reinspection)
            .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn return_referral(
        &self,
        request: Request<pb::ReturnReferralRequest>,
    ) -> Result<Response<pb::ReturnReferralResponse>, Status> {
        self.step_call(request, "ReturnReferral", parse_return_referral)
            .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn reroute_referral(
        &self,
        request: Request<pb::RerouteReferralRequest>,
    ) -> Result<Response<pb::RerouteReferralResponse>, Status> {
        self.step_call(request, "RerouteReferral", parse_reroute_referral)
            .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn close_referral(
        &self,
        request: Request<pb::CloseReferralRequest>,
    ) -> Result<Response<pb::CloseReferralResponse>, Status> {
        self.step_call(request, "CloseReferral", parse_close_referral)
            .await
    }

    #[tracing::instrument(
        skip_all,
        fields(agency = tracing::field::Empty, request_id = %request.get_ref().request_id, name = %request.get_ref().name)
    )]
    async fn add_reaction(
        &self,
        request: Request<pb::AddReactionRequest>,
    ) -> Result<Response<pb::AddReactionResponse>, Status> {
        self.step_call(request, "AddReaction", parse_add_reaction)
            .await
    }
}

/// The fields of a `AcknowledgeReferral` request.
fn parse_acknowledge_referral(
    b: &pb::AcknowledgeReferralRequest,
    v: &mut FieldErrors,
    _now: OffsetDateTime,
    _opener: &Opener,
) -> Option<Step> {
    let id = v.referral_id("name", &b.name);
    plain(id, ReferralCommand::Acknowledge, note(v, &b.note))
}

/// The fields of a `StartHandling` request.
fn parse_start_handling(
    b: &pb::StartHandlingRequest,
    v: &mut FieldErrors,
    _now: OffsetDateTime,
    _opener: &Opener,
) -> Option<Step> {
    let id = v.referral_id("name", &b.name);
    plain(id, ReferralCommand::StartHandling, note(v, &b.note))
}

/// The fields of a `RecordMeasure` request.
fn parse_record_measure(
    b: &pb::RecordMeasureRequest,
    v: &mut FieldErrors,
    now: OffsetDateTime,
    opener: &Opener,
) -> Option<Step> {
    let id = v.referral_id("name", &b.name);
    let measure = v.measure(b.measure.as_ref(), now, opener.rules());
    let note = note(v, &b.note);
    let (measure, wire) = measure?;
    step_of(
        id,
        ReferralCommand::RecordMeasure(measure),
        StepDetail::Measure(wire),
        note,
    )
}

/// The fields of a `FileObjection` request.
fn parse_file_objection(
    b: &pb::FileObjectionRequest,
    v: &mut FieldErrors,
    _now: OffsetDateTime,
    _opener: &Opener,
) -> Option<Step> {
    let id = v.referral_id("name", &b.name);
    let objection = v.objection(b.objection.as_ref());
    let note = note(v, &b.note);
    let (result_received_on, filed_on, wire) = objection?;
    step_of(
        id,
        ReferralCommand::FileObjection {
            result_received_on,
            filed_on,
        },
        StepDetail::Objection(wire),
        note,
    )
}

/// The fields of a `RecordReinspection` request.
fn parse_record_reinspection(
    b: &pb::RecordReinspectionRequest,
    v: &mut FieldErrors,
    now: OffsetDateTime,
    _opener: &Opener,
) -> Option<Step> {
    let id = v.referral_id("name", &b.name);
    let reinspection = v.reinspection(b.reinspection.as_ref(), day_of(now));
    let note = note(v, &b.note);
    let (result, wire) = reinspection?;
    step_of(
        id,
        ReferralCommand::RecordReinspection { result },
        StepDetail::Reinspection(wire),
        note,
    )
}

/// The fields of a `ReturnReferral` request.
fn parse_return_referral(
    b: &pb::ReturnReferralRequest,
    v: &mut FieldErrors,
    _now: OffsetDateTime,
    _opener: &Opener,
) -> Option<Step> {
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
}

/// The fields of a `RerouteReferral` request.
fn parse_reroute_referral(
    b: &pb::RerouteReferralRequest,
    v: &mut FieldErrors,
    _now: OffsetDateTime,
    _opener: &Opener,
) -> Option<Step> {
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
}

/// The fields of a `CloseReferral` request.
fn parse_close_referral(
    b: &pb::CloseReferralRequest,
    v: &mut FieldErrors,
    _now: OffsetDateTime,
    _opener: &Opener,
) -> Option<Step> {
    let id = v.referral_id("name", &b.name);
    let (outcome, summary, wire) = v.closure(b.closure.as_ref())?;
    Some(Step {
        id: id?,
        command: ReferralCommand::Close { outcome, summary },
        detail: StepDetail::Closure(wire),
        note: String::new(),
        named_agencies: Vec::new(),
    })
}

/// The fields of a `AddReaction` request.
fn parse_add_reaction(
    b: &pb::AddReactionRequest,
    v: &mut FieldErrors,
    _now: OffsetDateTime,
    _opener: &Opener,
) -> Option<Step> {
    let id = v.referral_id("name", &b.name);
    let (kind, text, wire) = v.reaction(b.reaction.as_ref())?;
    Some(Step {
        id: id?,
        command: ReferralCommand::AddReaction { kind, text },
        detail: StepDetail::Reaction(wire),
        note: String::new(),
        named_agencies: Vec::new(),
    })
}

/// The step methods whose requests [`check_step_request`] reads.
pub const STEP_METHODS: [&str; 9] = [
    "AcknowledgeReferral",
    "StartHandling",
    "RecordMeasure",
    "FileObjection",
    "RecordReinspection",
    "ReturnReferral",
    "RerouteReferral",
    "CloseReferral",
    "AddReaction",
];

/// Decodes `bytes` as the request of step `method` and reads its fields as the handler does
/// before it touches the store, at `now` under `opener`'s rules: the entry point of the fuzz
/// target `requests` and of its corpus regression test (docs/reliability.md). Answers the
/// decoding error or the fields' violations; panics only on a bug (a field refused without a
/// violation naming it).
pub fn check_step_request(
    method: &str,
    bytes: &[u8],
    now: OffsetDateTime,
    opener: &Opener,
) -> Result<(), String> {
    fn check<Req: StepRequest + Default>(
        bytes: &[u8],
        parse: fn(&Req, &mut FieldErrors, OffsetDateTime, &Opener) -> Option<Step>,
        now: OffsetDateTime,
        opener: &Opener,
    ) -> Result<(), String> {
        let body = Req::decode(bytes).map_err(|e| e.to_string())?;
        let mut v = FieldErrors::new();
        v.request_id(body.request_id());
        let step = parse(&body, &mut v, now, opener);
        assert!(
            step.is_some() || !v.is_empty(),
            "a step request refused without naming a field"
        );
        for bad in v.iter() {
            assert!(
                !bad.field.is_empty() && !bad.description.trim().is_empty(),
                "a violation without its field or reason: {bad:?}"
            );
        }
        v.check().map_err(|e| format!("{e:?}"))
    }
    match method {
        "AcknowledgeReferral" => check(bytes, parse_acknowledge_referral, now, opener),
        "StartHandling" => check(bytes, parse_start_handling, now, opener),
        "RecordMeasure" => check(bytes, parse_record_measure, now, opener),
        "FileObjection" => check(bytes, parse_file_objection, now, opener),
        "RecordReinspection" => check(bytes, parse_record_reinspection, now, opener),
        "ReturnReferral" => check(bytes, parse_return_referral, now, opener),
        "RerouteReferral" => check(bytes, parse_reroute_referral, now, opener),
        "CloseReferral" => check(bytes, parse_close_referral, now, opener),
        "AddReaction" => check(bytes, parse_add_reaction, now, opener),
        other => Err(format!("{other} is not a step method")),
    }
}
