//! The command line of the officer's desk: `yrd feed …`, `yrd referral …`,
//! `yrd application …`. Enum values are the contract's, as kebab-case words without their
//! prefix (`--kind order-rectification` for `MEASURE_KIND_ORDER_RECTIFICATION`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use yrd_proto::v1 as pb;

use crate::cli::connect::ConnectArgs;
use crate::cli::desk::format::{parse_word, values};

/// Defines a value parser for a contract enum from its prefix.
macro_rules! enum_parser {
    ($fn_name:ident, $ty:ty, $prefix:literal) => {
        /// Reads the contract enum value from its kebab-case word.
        pub fn $fn_name(s: &str) -> Result<$ty, String> {
            parse_word(s, $prefix, &values::<$ty>(), |v: $ty| v.as_str_name())
        }
    };
}

enum_parser!(referral_state, pb::ReferralState, "REFERRAL_STATE_");
enum_parser!(referral_role, pb::ReferralRole, "REFERRAL_ROLE_");
enum_parser!(measure_kind, pb::MeasureKind, "MEASURE_KIND_");
enum_parser!(verdict, pb::Verdict, "VERDICT_");
enum_parser!(outcome, pb::ReferralOutcome, "REFERRAL_OUTCOME_");
enum_parser!(basis, pb::JurisdictionBasis, "JURISDICTION_BASIS_");
enum_parser!(reaction_kind, pb::ReactionKind, "REACTION_KIND_");
enum_parser!(
    application_state,
    pb::ApplicationState,
    "APPLICATION_STATE_"
);
enum_parser!(province_role, pb::ProvinceRole, "PROVINCE_ROLE_");
enum_parser!(check_outcome, pb::CheckOutcome, "CHECK_OUTCOME_");
enum_parser!(decision_outcome, pb::DecisionOutcome, "DECISION_OUTCOME_");
enum_parser!(route, pb::LicensingRoute, "LICENSING_ROUTE_");

/// An officer as `ID:NAME`, e.g. `37010012345:张三`.
pub fn officer(s: &str) -> Result<pb::Officer, String> {
    match s.split_once(':') {
        Some((id, name)) if !id.trim().is_empty() && !name.trim().is_empty() => Ok(pb::Officer {
            id: id.trim().to_owned(),
            display_name: name.trim().to_owned(),
        }),
        _ => Err(format!(
            "an officer is ID:NAME, e.g. 37010012345:张三, got {s:?}"
        )),
    }
}

/// What every desk step ends with: a note kept with the step, and the connection.
#[derive(Debug, Args)]
pub struct StepTail {
    /// A note kept with the step.
    #[arg(long, default_value = "")]
    pub note: String,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd feed …`: the agency's own feed of events (消息订阅).
#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Print the feed's events as they come, one line each (or JSON lines), acknowledging each
    /// after it was printed; resumes where the last run stopped. Stop with Ctrl-C.
    Tail(FeedTailArgs),
}

/// `yrd feed tail`.
#[derive(Debug, Args)]
pub struct FeedTailArgs {
    /// One JSON object per line instead of one readable line per event.
    #[arg(long)]
    pub json: bool,
    /// Keep the cursor of the last printed event in this file and resume after it. Without
    /// it, the tail resumes after the agency's acknowledged position at the exchange.
    #[arg(long)]
    pub cursor_file: Option<PathBuf>,
    /// Start at the feed's first event, whatever the cursor file or the exchange holds.
    #[arg(long)]
    pub from_start: bool,
    /// Stop after printing this many events (for scripts; default: run until Ctrl-C).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Acknowledge to the exchange every this many events (and whenever the feed is idle).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub ack_every: u64,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd referral …`: referrals of non-conforming products (不合格产品联动处置).
#[derive(Debug, Subcommand)]
pub enum ReferralCommand {
    /// List my referrals (as sampling or handling agency) with their next deadline.
    List(ReferralListArgs),
    /// Show one referral with its deadlines, timeline and reactions.
    Show(ShowArgs),
    /// Sampling agency: open a referral by hand (CreateReferral).
    Create(ReferralCreateArgs),
    /// Handling agency: acknowledge delivery, 送达 (AcknowledgeReferral).
    Acknowledge(NoteArgs),
    /// Handling agency: start handling (StartHandling).
    Start(NoteArgs),
    /// Handling agency: record a measure, 处置措施 (RecordMeasure).
    Measure(MeasureArgs),
    /// Sampling agency: record the party's objection, 异议/复检申请 (FileObjection).
    Object(ObjectArgs),
    /// Sampling agency: record the re-inspection outcome, 复检结论 (RecordReinspection).
    Reinspect(ReinspectArgs),
    /// Handling agency: return it as outside my jurisdiction (ReturnReferral).
    Return(ReturnArgs),
    /// Sampling agency: send it to another handling agency (RerouteReferral).
    Reroute(RerouteArgs),
    /// Close it with an outcome and a summary, 办结 (CloseReferral).
    Close(CloseArgs),
    /// Another agency: add a reaction, e.g. found on sale here (AddReaction).
    React(ReactArgs),
}

/// `yrd referral list`.
#[derive(Debug, Args)]
pub struct ReferralListArgs {
    /// My part: sampling, handling or reacting (default: sampling or handling).
    #[arg(long, value_parser = referral_role)]
    pub role: Option<pb::ReferralRole>,
    /// Only referrals in this state, e.g. opened, in-progress, rectifying.
    #[arg(long, value_parser = referral_state)]
    pub state: Option<pb::ReferralState>,
    /// Only overdue referrals.
    #[arg(long)]
    pub overdue: bool,
    /// Only referrals whose product name contains this text.
    #[arg(long)]
    pub product: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `show`: one referral or application.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Its id, or its resource name (`referrals/ID`, `applications/ID`).
    pub id: String,
    /// Print it as JSON instead.
    #[arg(long)]
    pub json: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// A step that takes nothing but an optional note.
#[derive(Debug, Args)]
pub struct NoteArgs {
    /// The referral's or application's id (or resource name).
    pub id: String,
    /// A note kept with the step, e.g. the internal case number.
    #[arg(long, default_value = "")]
    pub note: String,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd referral create`.
#[derive(Debug, Args)]
pub struct ReferralCreateArgs {
    /// The result to refer (`results/ID` or ID); it must be non-conforming and mine.
    #[arg(long)]
    pub result: String,
    /// The handling agency, e.g. 320000-AMR.
    #[arg(long)]
    pub to: String,
    /// Why that agency has jurisdiction: producer or seller.
    #[arg(long, value_parser = basis)]
    pub basis: pb::JurisdictionBasis,
    /// Actions asked of the handling agency (repeatable), e.g. stop-sales.
    #[arg(long = "ask", value_parser = measure_kind)]
    pub requested_actions: Vec<pb::MeasureKind>,
    /// Note to the handling agency.
    #[arg(long, default_value = "")]
    pub note: String,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd referral measure`.
#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// The referral's id.
    pub id: String,
    /// The measure, e.g. seal-or-seize, stop-sales, delist-online, order-rectification, review.
    #[arg(long, value_parser = measure_kind)]
    pub kind: pb::MeasureKind,
    /// When it was taken (RFC 3339, e.g. 2026-12-07T09:30:00+08:00); default now.
    #[arg(long)]
    pub occurred: Option<String>,
    /// The enforcement officers who took it, as ID:NAME (repeatable).
    #[arg(long = "by", value_parser = officer)]
    pub officers: Vec<pb::Officer>,
    /// What was done (required for other).
    #[arg(long, default_value = "")]
    pub detail: String,
    /// Number of the written decision (required for case-filed, administrative-penalty).
    #[arg(long, default_value = "")]
    pub decision_number: String,
    /// Deadline `YYYY-MM-DD` (order-rectification, suspend-business).
    #[arg(long, default_value = "")]
    pub deadline: String,
    /// Outcome of a review or second review: conforming or non-conforming.
    #[arg(long, value_parser = verdict)]
    pub review_outcome: Option<pb::Verdict>,
    /// Files to attach by digest (repeatable).
    #[arg(long = "attach")]
    pub attachments: Vec<PathBuf>,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd referral object`.
#[derive(Debug, Args)]
pub struct ObjectArgs {
    /// The referral's id.
    pub id: String,
    /// The party objecting (producer or seller).
    #[arg(long)]
    pub party: String,
    /// When the party received the result, `YYYY-MM-DD`.
    #[arg(long)]
    pub result_received: String,
    /// When the objection was received, `YYYY-MM-DD`.
    #[arg(long)]
    pub received: String,
    /// The grounds of the objection.
    #[arg(long)]
    pub grounds: String,
    /// Files to attach by digest (repeatable).
    #[arg(long = "attach")]
    pub attachments: Vec<PathBuf>,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd referral reinspect`.
#[derive(Debug, Args)]
pub struct ReinspectArgs {
    /// The referral's id.
    pub id: String,
    /// conforming (overturns the result) or non-conforming.
    #[arg(long, value_parser = verdict)]
    pub outcome: pb::Verdict,
    /// The body that re-inspected (复检机构).
    #[arg(long)]
    pub inspection_body: String,
    /// The re-inspection report number.
    #[arg(long)]
    pub report_number: String,
    /// The re-inspection report date, `YYYY-MM-DD`.
    #[arg(long)]
    pub report_date: String,
    /// Remarks.
    #[arg(long, default_value = "")]
    pub detail: String,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd referral return`.
#[derive(Debug, Args)]
pub struct ReturnArgs {
    /// The referral's id.
    pub id: String,
    /// Why it is outside my jurisdiction.
    #[arg(long)]
    pub reason: String,
    /// The agency I believe competent, e.g. 320000-AMR (the referral goes there at once).
    #[arg(long)]
    pub suggest: Option<String>,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd referral reroute`.
#[derive(Debug, Args)]
pub struct RerouteArgs {
    /// The referral's id.
    pub id: String,
    /// The new handling agency, e.g. 320000-AMR.
    #[arg(long)]
    pub to: String,
    /// Why that agency has jurisdiction: producer or seller.
    #[arg(long, value_parser = basis)]
    pub basis: pb::JurisdictionBasis,
    /// Why it is rerouted.
    #[arg(long)]
    pub reason: String,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd referral close`.
#[derive(Debug, Args)]
pub struct CloseArgs {
    /// The referral's id.
    pub id: String,
    /// rectified, overturned, penalized, transferred-to-judicial, no-violation-found, other.
    #[arg(long, value_parser = outcome)]
    pub outcome: pb::ReferralOutcome,
    /// Summary of the handling (处置情况).
    #[arg(long)]
    pub summary: String,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd referral react`.
#[derive(Debug, Args)]
pub struct ReactArgs {
    /// The referral's id.
    pub id: String,
    /// found-on-sale-here, measures-taken-here or other.
    #[arg(long, value_parser = reaction_kind)]
    pub kind: pb::ReactionKind,
    /// What my agency reports.
    #[arg(long)]
    pub text: String,
    /// Files to attach by digest (repeatable).
    #[arg(long = "attach")]
    pub attachments: Vec<PathBuf>,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub use crate::cli::desk::application::command::ApplicationCommand;
