//! `yrd application …`: the command line of LicensingService (沪鲁通办), one subcommand per step.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use yrd_proto::v1 as pb;

use crate::cli::connect::ConnectArgs;
use crate::cli::desk::command::{
    NoteArgs, ShowArgs, StepTail, application_state, check_outcome, decision_outcome, officer,
    province_role, route, verdict,
};

/// `yrd application …`: production-licence applications (工业产品生产许可证, 沪鲁通办).
#[derive(Debug, Subcommand)]
pub enum ApplicationCommand {
    /// List my applications (as accepting or issuing province) with their deadlines.
    List(ApplicationListArgs),
    /// Show one application with its deadlines and history.
    Show(ShowArgs),
    /// Accepting province: submit an application for the applicant (SubmitApplication).
    Submit(SubmitArgs),
    /// Issuing province: accept it, 受理 (AcceptApplication).
    Accept(AcceptArgs),
    /// Issuing province: ask once for everything missing, 补正 (RequestSupplement).
    RequestSupplement(RequestSupplementArgs),
    /// Accepting province: hand in the applicant's supplement (SupplementApplication).
    Supplement(SupplementArgs),
    /// Issuing province: do not accept it, 不予受理 (RejectApplication).
    Reject(RejectArgs),
    /// Issuing province: start the review (StartReview).
    StartReview(NoteArgs),
    /// Issuing province: delegate the on-site verification, 实地核查委托 (DelegateVerification).
    Delegate(DelegateArgs),
    /// Issuing province or its delegate: report the on-site verification
    /// (SubmitVerificationReport).
    ReportVerification(VerificationArgs),
    /// Issuing province: record product testing (RecordTesting).
    RecordTesting(TestingArgs),
    /// Issuing province: decide, 审批 (DecideApplication).
    Decide(DecideArgs),
    /// Issuing province: extend the decision limit once (ExtendTimeLimit).
    Extend(ExtendArgs),
    /// Issuing province: confirm the conditions of a conditional approval were met
    /// (ConfirmConditions).
    ConfirmConditions(NoteArgs),
    /// Issuing province: issue the licence (IssueLicence).
    Issue(IssueArgs),
    /// Issuing province: record the after-issue check, 证后核查 (RecordPostIssueCheck).
    PostIssueCheck(PostIssueCheckArgs),
    /// Issuing province: change a licence after a business-licence change, 营业执照联动变更
    /// (ChangeLicence).
    ChangeLicence(ChangeLicenceArgs),
}

/// `yrd application list`.
#[derive(Debug, Args)]
pub struct ApplicationListArgs {
    /// My part: accepting or issuing (default: either).
    #[arg(long, value_parser = province_role)]
    pub role: Option<pb::ProvinceRole>,
    /// Only applications in this state, e.g. submitted, accepted, under-review.
    #[arg(long, value_parser = application_state)]
    pub state: Option<pb::ApplicationState>,
    /// Only overdue applications.
    #[arg(long)]
    pub overdue: bool,
    /// Only this applicant (USCC).
    #[arg(long)]
    pub applicant_uscc: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd application submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The applicant's name.
    #[arg(long)]
    pub applicant: String,
    /// The applicant's unified social credit code (统一社会信用代码).
    #[arg(long)]
    pub uscc: String,
    /// The applicant's registered residence (住所).
    #[arg(long)]
    pub residence: String,
    /// The production address (生产地址).
    #[arg(long)]
    pub production_address: String,
    /// The production address's GB/T 2260 code, e.g. 370102; it decides the issuing province.
    #[arg(long)]
    pub region: String,
    /// Catalogue code of the product, e.g. 13-001.
    #[arg(long)]
    pub product: String,
    /// Product units applied for, as CODE or CODE:NAME (repeatable).
    #[arg(long = "unit", required = true)]
    pub units: Vec<String>,
    /// ordinary (先核后证) or commitment (告知承诺).
    #[arg(long, value_parser = route, default_value = "ordinary")]
    pub route: pb::LicensingRoute,
    /// The application materials, by digest (repeatable).
    #[arg(long = "material")]
    pub materials: Vec<PathBuf>,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application accept`.
#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// The application's id (or `applications/ID`).
    pub id: String,
    /// The acceptance number (受理通知书文号).
    #[arg(long)]
    pub acceptance_number: String,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application request-supplement`.
#[derive(Debug, Args)]
pub struct RequestSupplementArgs {
    /// The application's id.
    pub id: String,
    /// What is missing (repeatable; everything at once, 一次性告知).
    #[arg(long = "missing")]
    pub missing_items: Vec<String>,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application supplement`.
#[derive(Debug, Args)]
pub struct SupplementArgs {
    /// The application's id.
    pub id: String,
    /// The materials handed in, by digest (repeatable).
    #[arg(long = "material")]
    pub materials: Vec<PathBuf>,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application reject`.
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The application's id.
    pub id: String,
    /// Why it is not accepted.
    #[arg(long)]
    pub reason: String,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd application delegate`.
#[derive(Debug, Args)]
pub struct DelegateArgs {
    /// The application's id.
    pub id: String,
    /// The agency that verifies on site, e.g. 310000-SAMR.
    #[arg(long)]
    pub to: String,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application report-verification`.
#[derive(Debug, Args)]
pub struct VerificationArgs {
    /// The application's id.
    pub id: String,
    /// passed or failed.
    #[arg(long, value_parser = check_outcome)]
    pub outcome: pb::CheckOutcome,
    /// The verifiers (核查人员), as ID:NAME (repeatable).
    #[arg(long = "verifier", value_parser = officer)]
    pub verifiers: Vec<pb::Officer>,
    /// The day of the on-site verification, `YYYY-MM-DD`.
    #[arg(long)]
    pub verification_date: String,
    /// The report's date, `YYYY-MM-DD`.
    #[arg(long)]
    pub report_date: String,
    /// Findings (repeatable).
    #[arg(long = "finding")]
    pub findings: Vec<String>,
    /// The report, by digest (repeatable).
    #[arg(long = "attach")]
    pub attachments: Vec<PathBuf>,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application record-testing`.
#[derive(Debug, Args)]
pub struct TestingArgs {
    /// The application's id.
    pub id: String,
    /// The day the sample was sealed, `YYYY-MM-DD`.
    #[arg(long)]
    pub sample_sealed: String,
    /// The testing body.
    #[arg(long)]
    pub testing_body: String,
    /// The outcome once tested: conforming or non-conforming (omit while testing runs).
    #[arg(long, value_parser = verdict)]
    pub outcome: Option<pb::Verdict>,
    /// The test report number.
    #[arg(long, default_value = "")]
    pub report_number: String,
    /// The test report date, `YYYY-MM-DD`.
    #[arg(long, default_value = "")]
    pub report_date: String,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application decide`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The application's id.
    pub id: String,
    /// approved, approved-with-conditions or refused.
    #[arg(long, value_parser = decision_outcome)]
    pub outcome: pb::DecisionOutcome,
    /// A condition of a conditional approval (repeatable).
    #[arg(long = "condition")]
    pub conditions: Vec<String>,
    /// By when the conditions must be met, `YYYY-MM-DD`.
    #[arg(long, default_value = "")]
    pub condition_deadline: String,
    /// Why it is refused.
    #[arg(long, default_value = "")]
    pub refusal_reason: String,
    /// The decision's number (决定书文号).
    #[arg(long, default_value = "")]
    pub decision_number: String,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application extend`.
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// The application's id.
    pub id: String,
    /// The approval of the extension by the agency's head (批准文号).
    #[arg(long)]
    pub approval_reference: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// Working days added (at most the configured extension, 10 by default).
    #[arg(long)]
    pub days: u32,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd application issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The application's id.
    pub id: String,
    /// The issue date, `YYYY-MM-DD` (default: today).
    #[arg(long, default_value = "")]
    pub issue_date: String,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application post-issue-check`.
#[derive(Debug, Args)]
pub struct PostIssueCheckArgs {
    /// The application's id.
    pub id: String,
    /// passed or failed (a failed check revokes the licence).
    #[arg(long, value_parser = check_outcome)]
    pub outcome: pb::CheckOutcome,
    /// The day of the check, `YYYY-MM-DD`.
    #[arg(long)]
    pub check_date: String,
    /// The verifiers, as ID:NAME (repeatable).
    #[arg(long = "verifier", value_parser = officer)]
    pub verifiers: Vec<pb::Officer>,
    /// Findings (repeatable).
    #[arg(long = "finding")]
    pub findings: Vec<String>,
    /// The note and the connection.
    #[command(flatten)]
    pub step: StepTail,
}

/// `yrd application change-licence`.
#[derive(Debug, Args)]
pub struct ChangeLicenceArgs {
    /// The licence (`licences/ID` or ID).
    pub licence: String,
    /// The holder's new name.
    #[arg(long)]
    pub holder_name: Option<String>,
    /// The holder's new residence.
    #[arg(long)]
    pub residence: Option<String>,
    /// The new production address (same site, renamed).
    #[arg(long)]
    pub production_address: Option<String>,
    /// When the business licence changed, `YYYY-MM-DD`.
    #[arg(long)]
    pub business_licence_changed: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// The new business licence, by digest (repeatable).
    #[arg(long = "attach")]
    pub attachments: Vec<PathBuf>,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}
