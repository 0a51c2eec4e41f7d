//! `yrd referral …`: an officer's desk for referrals (不合格产品联动处置, README §"Disposal"):
//! list mine with their deadlines, show one with its timeline, take each DisposalService step.
//!
//! A step is sent as the API takes it, with a fresh `request_id` (the client library retries it
//! with the same one); a refusal is the API's own answer, printed with its field violations.

use std::io::Write;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use yrd_call::timestamp;
use yrd_client::{Authed, RpcError, list_all};
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_proto::v1 as pb;
use yrd_proto::v1::disposal_service_client::DisposalServiceClient;

use crate::cli::connect::ConnectArgs;
use crate::cli::desk::command::{
    CloseArgs, MeasureArgs, NoteArgs, ObjectArgs, ReactArgs, ReferralCommand, ReferralCreateArgs,
    ReferralListArgs, ReinspectArgs, RerouteArgs, ReturnArgs, ShowArgs,
};
use crate::cli::desk::format::{
    Listing, agency, basis_word, cst, deadline_cells, deadline_kind, due_label, measure_word,
    outcome_word, reaction_word, referral_state, resource, state_word, step_kind, today,
    verdict_word,
};
use crate::cli::desk::{DeskError, attachments, request_id, system_session};
use crate::cli::output::write_json;
use crate::cli::session::Session;

/// Runs one `yrd referral` subcommand, writing what a user reads to `out`.
pub async fn run(command: ReferralCommand, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    match command {
        ReferralCommand::List(args) => list(args, out).await,
        ReferralCommand::Show(args) => show(args, out).await,
        ReferralCommand::Create(args) => create(args, out).await,
        ReferralCommand::Acknowledge(args) => acknowledge(args, out).await,
        ReferralCommand::Start(args) => start(args, out).await,
        ReferralCommand::Measure(args) => measure(args, out).await,
        ReferralCommand::Object(args) => object(args, out).await,
        ReferralCommand::Reinspect(args) => reinspect(args, out).await,
        ReferralCommand::Return(args) => return_referral(args, out).await,
        ReferralCommand::Reroute(args) => reroute(args, out).await,
        ReferralCommand::Close(args) => close(args, out).await,
        ReferralCommand::React(args) => react(args, out).await,
    }
}

async fn list(args: ReferralListArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    let session = system_session(&args.connect).await?;
    let request = pb::ListReferralsRequest {
        role: args.role.unwrap_or(pb::ReferralRole::Unspecified) as i32,
        state: args.state.unwrap_or(pb::ReferralState::Unspecified) as i32,
        overdue: args.overdue.then_some(true),
        product_name_contains: args.product.unwrap_or_default(),
        page_size: 500,
        ..Default::default()
    };
    let referrals = all_referrals(&session, request).await?;
    REFERRALS.print(&referrals, args.json, out)
}

/// `yrd referral list`: one row a referral.
const REFERRALS: Listing<pb::Referral, ReferralView> = Listing {
    noun: "referral",
    header: &[
        "referral",
        "product",
        "from",
        "to",
        "state",
        "next deadline",
        "due",
        "",
    ],
    view: ReferralView::new,
    row: |r, today| {
        let (deadline, due) = deadline_cells(
            r.next_deadline
                .as_ref()
                .map(|d| (deadline_kind(d.kind), d.due_date.as_str(), d.overdue)),
            today,
        );
        vec![
            r.id.clone(),
            r.product_name.clone(),
            agency(&r.sampling_agency).to_owned(),
            agency(&r.handling_agency).to_owned(),
            referral_state(r.state),
            deadline,
            due,
            flags(r),
        ]
    },
    overdue: |r| r.overdue,
};

/// `OVERDUE` and `ANNOUNCE` (逾期不改正公告) flags of a referral.
fn flags(r: &pb::Referral) -> String {
    let mut flags = Vec::new();
    if r.overdue {
        flags.push("OVERDUE");
    }
    if r.announcement_required {
        flags.push("ANNOUNCE");
    }
    if r.clock_paused {
        flags.push("paused");
    }
    flags.join(" ")
}

async fn show(args: ShowArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    let session = system_session(&args.connect).await?;
    let referral = get_referral(&session, &args.id).await?;
    let today = today();
    if args.json {
        return write_json(out, &ReferralView::new(&referral, today));
    }
    print_referral(&referral, today, out)
}

/// Every referral `request` matches, all pages (`yrd referral list`, the console).
pub(crate) async fn all_referrals(
    session: &Session,
    request: pb::ListReferralsRequest,
) -> Result<Vec<pb::Referral>, RpcError> {
    let disposal = session.client().disposal();
    list_all(
        "DisposalService.ListReferrals",
        request,
        |r, token| r.page_token = token,
        |r| {
            let mut disposal = disposal.clone();
            async move {
                let page = disposal.list_referrals(r).await?.into_inner();
                Ok((page.referrals, page.next_page_token))
            }
        },
    )
    .await
}

/// The referral `id` (`yrd referral show`, the console).
pub(crate) async fn get_referral(session: &Session, id: &str) -> Result<pb::Referral, DeskError> {
    session
        .client()
        .disposal()
        .get_referral(pb::GetReferralRequest {
            name: resource("referrals", id),
        })
        .await
        .map_err(|s| RpcError::new("DisposalService.GetReferral", s))?
        .into_inner()
        .referral
        .ok_or(DeskError::Incomplete {
            method: "DisposalService.GetReferral",
            field: "referral",
        })
}

/// A referral in full: what it is about, its deadlines, timeline and reactions.
fn print_referral(
    r: &pb::Referral,
    today: time::Date,
    out: &mut (dyn Write + Send),
) -> Result<(), DeskError> {
    writeln!(out, "{}  {}", r.name, referral_state(r.state))?;
    let producer = r.producer.clone().unwrap_or_default();
    writeln!(out, "  product      {}", r.product_name)?;
    writeln!(out, "  producer     {} ({})", producer.name, producer.uscc)?;
    writeln!(out, "  result       {} v{}", r.result, r.result_version)?;
    writeln!(
        out,
        "  from         {} (sampling) to {} (handling, {})",
        agency(&r.sampling_agency),
        agency(&r.handling_agency),
        basis_word(r.jurisdiction_basis)
    )?;
    if !r.note.is_empty() {
        writeln!(out, "  note         {}", r.note)?;
    }
    let flags = flags(r);
    if !flags.is_empty() {
        writeln!(out, "  flags        {flags}")?;
    }
    if r.outcome != 0 {
        writeln!(
            out,
            "  outcome      {}: {}",
            outcome_word(r.outcome),
            r.outcome_summary
        )?;
    }
    writeln!(out, "deadlines:")?;
    if r.deadlines.is_empty() {
        writeln!(out, "  none running")?;
    }
    for d in &r.deadlines {
        writeln!(
            out,
            "  {:<16} {}  {}",
            deadline_kind(d.kind),
            d.due_date,
            due_label(&d.due_date, d.overdue, today)
        )?;
    }
    writeln!(out, "timeline:")?;
    for step in &r.timeline {
        writeln!(out, "  {}", step_line(step))?;
    }
    if !r.reactions.is_empty() {
        writeln!(out, "reactions:")?;
    }
    for reaction in &r.reactions {
        writeln!(
            out,
            "  {:>2}  {}  {}  {}: {}",
            reaction.seq,
            cst(reaction.create_time.as_ref()),
            agency(&reaction.agency),
            reaction_word(reaction.kind),
            reaction.text
        )?;
    }
    Ok(())
}

/// One timeline step on one line: seq, time (CST), kind, who, the state after, what it holds.
fn step_line(step: &pb::ReferralStep) -> String {
    let who = match (step.agency.as_str(), step.officer.as_str()) {
        ("", _) => "the exchange".to_owned(),
        (a, "") => agency(a).to_owned(),
        (a, officer) => format!("{} ({officer})", agency(a)),
    };
    let mut line = format!(
        "{:>2}  {}  {:<22} {:<28} → {}",
        step.seq,
        cst(step.time.as_ref()),
        step_kind(step.kind),
        who,
        referral_state(step.state_after)
    );
    let detail = step_detail(step);
    if !detail.is_empty() {
        line.push_str("  ");
        line.push_str(&detail);
    }
    if !step.note.is_empty() {
        line.push_str(&format!("  «{}»", step.note));
    }
    line
}

/// What a step carries, in a few words.
fn step_detail(step: &pb::ReferralStep) -> String {
    use pb::referral_step::Detail;
    match &step.detail {
        Some(Detail::Measure(m)) => {
            let mut s = measure_word(m.kind);
            if !m.deadline.is_empty() {
                s.push_str(&format!(" until {}", m.deadline));
            }
            if m.review_outcome != 0 {
                s.push_str(&format!(" {}", verdict_word(m.review_outcome)));
            }
            if !m.decision_number.is_empty() {
                s.push_str(&format!(" {}", m.decision_number));
            }
            if !m.detail.is_empty() {
                s.push_str(&format!(": {}", m.detail));
            }
            s
        }
        Some(Detail::Objection(o)) => format!("objection by {}: {}", o.party_name, o.grounds),
        Some(Detail::Reinspection(r)) => format!(
            "re-inspection {} ({} {})",
            verdict_word(r.outcome),
            r.inspection_body,
            r.report_number
        ),
        Some(Detail::Returned(r)) if r.suggested_agency.is_empty() => r.reason.clone(),
        Some(Detail::Returned(r)) => {
            format!("{} (suggests {})", r.reason, agency(&r.suggested_agency))
        }
        Some(Detail::Reroute(r)) => format!(
            "{} → {}: {}",
            agency(&r.from_agency),
            agency(&r.to_agency),
            r.reason
        ),
        Some(Detail::Closure(c)) => format!("{}: {}", outcome_word(c.outcome), c.summary),
        Some(Detail::Deadline(d)) => format!("{} {} passed", deadline_kind(d.kind), d.due_date),
        None => String::new(),
    }
}

/// What a step prints: the referral's state after it, its next deadline and the receipt.
fn stepped(
    method: &'static str,
    referral: Option<pb::Referral>,
    receipt: Option<&pb::Receipt>,
    out: &mut (dyn Write + Send),
) -> Result<(), DeskError> {
    let referral = referral.ok_or(DeskError::Incomplete {
        method,
        field: "referral",
    })?;
    writeln!(out, "{}: {}", referral.name, referral_state(referral.state))?;
    if let Some(step) = referral.timeline.last() {
        writeln!(out, "  step     {}", step_line(step))?;
    }
    match &referral.next_deadline {
        Some(d) => writeln!(
            out,
            "  next     {} {} ({})",
            deadline_kind(d.kind),
            d.due_date,
            due_label(&d.due_date, d.overdue, today())
        )?,
        None => writeln!(out, "  next     no deadline runs")?,
    }
    match receipt {
        Some(pb::Receipt {
            leaf_index: Some(index),
            key_id,
            ..
        }) => writeln!(out, "  receipt  signed by {key_id}, audit leaf {index}")?,
        Some(receipt) => writeln!(
            out,
            "  receipt  signed by {}, leaf {}",
            receipt.key_id,
            hex::encode(&receipt.leaf_hash)
        )?,
        None => {}
    }
    Ok(())
}

/// A DisposalService step request: the method it is sent as, and how it is sent.
trait StepRequest {
    /// e.g. `DisposalService.CloseReferral`, as errors name it.
    const METHOD: &'static str;

    /// Sends the request; the answer is the referral after the step and its receipt.
    async fn send(
        self,
        client: DisposalServiceClient<Authed>,
    ) -> Result<(Option<pb::Referral>, Option<pb::Receipt>), tonic::Status>;
}

macro_rules! step_request {
    ($($request:ty => $rpc:ident, $method:literal;)*) => {$(
        impl StepRequest for $request {
            const METHOD: &'static str = $method;

            async fn send(
                self,
                mut client: DisposalServiceClient<Authed>,
            ) -> Result<(Option<pb::Referral>, Option<pb::Receipt>), tonic::Status> {
                let answer = client.$rpc(self).await?.into_inner();
                Ok((answer.referral, answer.receipt))
            }
        }
    )*};
}

step_request! {
    pb::CreateReferralRequest => create_referral, "DisposalService.CreateReferral";
    pb::AcknowledgeReferralRequest => acknowledge_referral, "DisposalService.AcknowledgeReferral";
    pb::StartHandlingRequest => start_handling, "DisposalService.StartHandling";
    pb::RecordMeasureRequest => record_measure, "DisposalService.RecordMeasure";
    pb::FileObjectionRequest => file_objection, "DisposalService.FileObjection";
    pb::RecordReinspectionRequest => record_reinspection, "DisposalService.RecordReinspection";
    pb::ReturnReferralRequest => return_referral, "DisposalService.ReturnReferral";
    pb::RerouteReferralRequest => reroute_referral, "DisposalService.RerouteReferral";
    pb::CloseReferralRequest => close_referral, "DisposalService.CloseReferral";
    pb::AddReactionRequest => add_reaction, "DisposalService.AddReaction";
}

/// Takes one step as the system profile and prints what it did ([`stepped`]); a refusal is
/// the API's own answer.
async fn step<R: StepRequest>(
    connect: &ConnectArgs,
    request: R,
    out: &mut (dyn Write + Send),
) -> Result<(), DeskError> {
    let session = system_session(connect).await?;
    let (referral, receipt) = request
        .send(session.client().disposal())
        .await
        .map_err(|s| RpcError::new(R::METHOD, s))?;
    stepped(R::METHOD, referral, receipt.as_ref(), out)
}

async fn create(args: ReferralCreateArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    step(
        &args.connect,
        pb::CreateReferralRequest {
            request_id: request_id(),
            result: resource("results", &args.result),
            result_version: 0,
            handling_agency: resource("agencies", &args.to),
            jurisdiction_basis: args.basis as i32,
            requested_actions: args.requested_actions.iter().map(|k| *k as i32).collect(),
            note: args.note,
        },
        out,
    )
    .await
}

async fn acknowledge(args: NoteArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    step(
        &args.connect,
        pb::AcknowledgeReferralRequest {
            request_id: request_id(),
            name: resource("referrals", &args.id),
            note: args.note,
        },
        out,
    )
    .await
}

async fn start(args: NoteArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    step(
        &args.connect,
        pb::StartHandlingRequest {
            request_id: request_id(),
            name: resource("referrals", &args.id),
            note: args.note,
        },
        out,
    )
    .await
}

/// An RFC 3339 instant from the command line, or now. A value that does not parse is sent
/// unset, so that the exchange names the field (`measure.occur_time`) as it does for any
/// client.
fn occurred(value: Option<&str>) -> Option<prost_types::Timestamp> {
    match value {
        None => Some(timestamp(SystemClock.now())),
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).ok().map(timestamp),
    }
}

async fn measure(args: MeasureArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    if let Some(text) = &args.occurred {
        if OffsetDateTime::parse(text, &Rfc3339).is_err() {
            return Err(DeskError::Argument(format!(
                "--occurred {text:?} is not an RFC 3339 time such as 2026-12-07T09:30:00+08:00"
            )));
        }
    }
    let attachments = attachments(&args.attachments)?;
    step(
        &args.step.connect,
        pb::RecordMeasureRequest {
            request_id: request_id(),
            name: resource("referrals", &args.id),
            measure: Some(pb::Measure {
                kind: args.kind as i32,
                occur_time: occurred(args.occurred.as_deref()),
                officers: args.officers,
                detail: args.detail,
                decision_number: args.decision_number,
                deadline: args.deadline,
                review_outcome: args.review_outcome.map_or(0, |v| v as i32),
                attachments,
            }),
            note: args.step.note,
        },
        out,
    )
    .await
}

async fn object(args: ObjectArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    let attachments = attachments(&args.attachments)?;
    step(
        &args.step.connect,
        pb::FileObjectionRequest {
            request_id: request_id(),
            name: resource("referrals", &args.id),
            objection: Some(pb::Objection {
                party_name: args.party,
                result_received_date: args.result_received,
                received_date: args.received,
                grounds: args.grounds,
                attachments,
            }),
            note: args.step.note,
        },
        out,
    )
    .await
}

async fn reinspect(args: ReinspectArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    step(
        &args.step.connect,
        pb::RecordReinspectionRequest {
            request_id: request_id(),
            name: resource("referrals", &args.id),
            reinspection: Some(pb::Reinspection {
                outcome: args.outcome as i32,
                inspection_body: args.inspection_body,
                report_number: args.report_number,
                report_date: args.report_date,
                detail: args.detail,
                attachments: Vec::new(),
            }),
            note: args.step.note,
        },
        out,
    )
    .await
}

async fn return_referral(args: ReturnArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    step(
        &args.connect,
        pb::ReturnReferralRequest {
            request_id: request_id(),
            name: resource("referrals", &args.id),
            reason: args.reason,
            suggested_agency: args
                .suggest
                .map(|a| resource("agencies", &a))
                .unwrap_or_default(),
        },
        out,
    )
    .await
}

async fn reroute(args: RerouteArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    step(
        &args.connect,
        pb::RerouteReferralRequest {
            request_id: request_id(),
            name: resource("referrals", &args.id),
            handling_agency: resource("agencies", &args.to),
            jurisdiction_basis: args.basis as i32,
            reason: args.reason,
        },
        out,
    )
    .await
}

async fn close(args: CloseArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    step(
        &args.connect,
        pb::CloseReferralRequest {
            request_id: request_id(),
            name: resource("referrals", &args.id),
            closure: Some(pb::ReferralClosure {
                outcome: args.outcome as i32,
                summary: args.summary,
            }),
        },
        out,
    )
    .await
}

async fn react(args: ReactArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    let attachments = attachments(&args.attachments)?;
    step(
        &args.connect,
        pb::AddReactionRequest {
            request_id: request_id(),
            name: resource("referrals", &args.id),
            reaction: Some(pb::Reaction {
                kind: args.kind as i32,
                text: args.text,
                attachments,
                ..Default::default()
            }),
        },
        out,
    )
    .await
}

/// A referral as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct ReferralView {
    /// `referrals/{id}`.
    pub name: String,
    /// The id.
    pub id: String,
    /// `results/{id}`.
    pub result: String,
    /// The product name.
    pub product_name: String,
    /// The nominal producer's name.
    pub producer: String,
    /// The sampling agency id.
    pub sampling_agency: String,
    /// The handling agency id.
    pub handling_agency: String,
    /// The state, e.g. `in-progress`.
    pub state: String,
    /// Whether a deadline passed unmet.
    pub overdue: bool,
    /// Whether it is flagged for the announcement (逾期不改正公告).
    pub announcement_required: bool,
    /// The next deadline an agency owes.
    pub next_deadline: Option<DeadlineView>,
    /// Every deadline listed.
    pub deadlines: Vec<DeadlineView>,
    /// The timeline, one line per step as `show` prints it.
    pub timeline: Vec<String>,
}

/// A deadline as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct DeadlineView {
    /// e.g. `acknowledgement`.
    pub kind: String,
    /// `YYYY-MM-DD`.
    pub due_date: String,
    /// Whether it passed unmet.
    pub overdue: bool,
    /// `due in N days`, `overdue N days`.
    pub due: String,
}

impl DeadlineView {
    fn new(d: &pb::ReferralDeadline, today: time::Date) -> Self {
        DeadlineView {
            kind: deadline_kind(d.kind),
            due_date: d.due_date.clone(),
            overdue: d.overdue,
            due: due_label(&d.due_date, d.overdue, today),
        }
    }
}

impl ReferralView {
    /// The view of a referral the exchange returned.
    pub fn new(r: &pb::Referral, today: time::Date) -> Self {
        ReferralView {
            name: r.name.clone(),
            id: r.id.clone(),
            result: r.result.clone(),
            product_name: r.product_name.clone(),
            producer: r
                .producer
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            sampling_agency: agency(&r.sampling_agency).to_owned(),
            handling_agency: agency(&r.handling_agency).to_owned(),
            state: state_word(r.state),
            overdue: r.overdue,
            announcement_required: r.announcement_required,
            next_deadline: r
                .next_deadline
                .as_ref()
                .map(|d| DeadlineView::new(d, today)),
            deadlines: r
                .deadlines
                .iter()
                .map(|d| DeadlineView::new(d, today))
                .collect(),
            timeline: r.timeline.iter().map(step_line).collect(),
        }
    }
}
