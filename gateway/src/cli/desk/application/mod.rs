//! `yrd application …`: an officer's desk for production-licence applications (沪鲁通办,
//! README §"Hu-Lu joint processing"): list mine with their time limits, show one with its
//! history, take each LicensingService step.
//!
//! As for referrals, a step is sent as the API takes it, with a fresh `request_id`, and a
//! refusal is the API's own answer, printed with its field violations.

pub mod command;

use std::io::Write;

use serde::Serialize;
use yrd_client::{RpcError, list_all};
use yrd_proto::v1 as pb;

use crate::cli::desk::command::{NoteArgs, ShowArgs, StepTail};
use crate::cli::desk::format::{
    Listing, agency, application_state, cst, deadline_cells, due_label, resource, today, word,
};
use crate::cli::desk::{DeskError, attachments, request_id, system_session};
use crate::cli::output::write_json;
use crate::cli::session::Session;
use command::{
    AcceptArgs, ApplicationCommand, ApplicationListArgs, ChangeLicenceArgs, DecideArgs,
    DelegateArgs, ExtendArgs, IssueArgs, PostIssueCheckArgs, RejectArgs, RequestSupplementArgs,
    SubmitArgs, SupplementArgs, TestingArgs, VerificationArgs,
};

/// Calls LicensingService method `$rpc` (contract name `$method`) with `$request` on a system
/// session opened from `$connect`, and answers the response or the refusal as [`RpcError`].
macro_rules! call {
    ($connect:expr, $method:literal, $rpc:ident, $request:expr) => {{
        let session = system_session(&$connect).await?;
        session
            .client()
            .licensing()
            .$rpc($request)
            .await
            .map_err(|s| RpcError::new(concat!("LicensingService.", $method), s))?
            .into_inner()
    }};
}

/// Runs one `yrd application` subcommand, writing what a user reads to `out`.
pub async fn run(
    command: ApplicationCommand,
    out: &mut (dyn Write + Send),
) -> Result<(), DeskError> {
    use ApplicationCommand as C;
    let name = |id: &str| resource("applications", id);
    let (method, answer, licence) = match command {
        C::List(args) => return list(args, out).await,
        C::Show(args) => return show(args, out).await,
        C::ChangeLicence(args) => return change_licence(args, out).await,
        C::Submit(args) => submit(args).await?,
        C::Accept(AcceptArgs {
            id,
            acceptance_number,
            step: StepTail { note, connect },
        }) => {
            let a = call!(
                connect,
                "AcceptApplication",
                accept_application,
                pb::AcceptApplicationRequest {
                    request_id: request_id(),
                    name: name(&id),
                    acceptance_number,
                    note,
                }
            );
            ("LicensingService.AcceptApplication", a.application, None)
        }
        C::RequestSupplement(RequestSupplementArgs {
            id,
            missing_items,
            step: StepTail { note, connect },
        }) => {
            let a = call!(
                connect,
                "RequestSupplement",
                request_supplement,
                pb::RequestSupplementRequest {
                    request_id: request_id(),
                    name: name(&id),
                    supplement_request: Some(pb::SupplementRequest { missing_items }),
                    note,
                }
            );
            ("LicensingService.RequestSupplement", a.application, None)
        }
        C::Supplement(SupplementArgs {
            id,
            materials,
            step: StepTail { note, connect },
        }) => {
            let materials = attachments(&materials)?;
            let a = call!(
                connect,
                "SupplementApplication",
                supplement_application,
                pb::SupplementApplicationRequest {
                    request_id: request_id(),
                    name: name(&id),
                    supplement: Some(pb::Supplement { materials }),
                    note,
                }
            );
            (
                "LicensingService.SupplementApplication",
                a.application,
                None,
            )
        }
        C::Reject(RejectArgs {
            id,
            reason,
            connect,
        }) => {
            let a = call!(
                connect,
                "RejectApplication",
                reject_application,
                pb::RejectApplicationRequest {
                    request_id: request_id(),
                    name: name(&id),
                    rejection: Some(pb::Rejection { reason }),
                }
            );
            ("LicensingService.RejectApplication", a.application, None)
        }
        C::StartReview(NoteArgs { id, note, connect }) => {
            let a = call!(
                connect,
                "StartReview",
                start_review,
                pb::StartReviewRequest {
                    request_id: request_id(),
                    name: name(&id),
                    note,
                }
            );
            ("LicensingService.StartReview", a.application, None)
        }
        C::Delegate(DelegateArgs {
            id,
            to,
            step: StepTail { note, connect },
        }) => {
            let a = call!(
                connect,
                "DelegateVerification",
                delegate_verification,
                pb::DelegateVerificationRequest {
                    request_id: request_id(),
                    name: name(&id),
                    delegation: Some(pb::VerificationDelegation {
                        delegate_agency: resource("agencies", &to),
                        due_date: String::new(),
                    }),
                    note,
                }
            );
            ("LicensingService.DelegateVerification", a.application, None)
        }
        C::ReportVerification(VerificationArgs {
            id,
            outcome,
            verifiers,
            verification_date,
            report_date,
            findings,
            attachments: files,
            step: StepTail { note, connect },
        }) => {
            let attachments = attachments(&files)?;
            let a = call!(
                connect,
                "SubmitVerificationReport",
                submit_verification_report,
                pb::SubmitVerificationReportRequest {
                    request_id: request_id(),
                    name: name(&id),
                    report: Some(pb::VerificationReport {
                        verifiers,
                        verification_date,
                        outcome: outcome as i32,
                        findings,
                        report_date,
                        attachments,
                        verifying_agency: String::new(),
                    }),
                    note,
                }
            );
            (
                "LicensingService.SubmitVerificationReport",
                a.application,
                None,
            )
        }
        C::RecordTesting(TestingArgs {
            id,
            sample_sealed,
            testing_body,
            outcome,
            report_number,
            report_date,
            step: StepTail { note, connect },
        }) => {
            let a = call!(
                connect,
                "RecordTesting",
                record_testing,
                pb::RecordTestingRequest {
                    request_id: request_id(),
                    name: name(&id),
                    testing: Some(pb::TestingRecord {
                        sample_sealed_date: sample_sealed,
                        testing_body,
                        outcome: outcome.map_or(0, |v| v as i32),
                        report_number,
                        report_date,
                        attachments: Vec::new(),
                    }),
                    note,
                }
            );
            ("LicensingService.RecordTesting", a.application, None)
        }
        C::Decide(DecideArgs {
            id,
            outcome,
            conditions,
            condition_deadline,
            refusal_reason,
            decision_number,
            step: StepTail { note, connect },
        }) => {
            let a = call!(
                connect,
                "DecideApplication",
                decide_application,
                pb::DecideApplicationRequest {
                    request_id: request_id(),
                    name: name(&id),
                    decision: Some(pb::Decision {
                        outcome: outcome as i32,
                        conditions,
                        condition_deadline,
                        refusal_reason,
                        decision_number,
                    }),
                    note,
                }
            );
            ("LicensingService.DecideApplication", a.application, None)
        }
        C::Extend(ExtendArgs {
            id,
            approval_reference,
            reason,
            days,
            connect,
        }) => {
            let a = call!(
                connect,
                "ExtendTimeLimit",
                extend_time_limit,
                pb::ExtendTimeLimitRequest {
                    request_id: request_id(),
                    name: name(&id),
                    extension: Some(pb::TimeLimitExtension {
                        approval_reference,
                        reason,
                        extension_days: days,
                    }),
                }
            );
            ("LicensingService.ExtendTimeLimit", a.application, None)
        }
        C::ConfirmConditions(NoteArgs { id, note, connect }) => {
            let a = call!(
                connect,
                "ConfirmConditions",
                confirm_conditions,
                pb::ConfirmConditionsRequest {
                    request_id: request_id(),
                    name: name(&id),
                    note,
                }
            );
            ("LicensingService.ConfirmConditions", a.application, None)
        }
        C::Issue(IssueArgs {
            id,
            issue_date,
            step: StepTail { note, connect },
        }) => {
            let a = call!(
                connect,
                "IssueLicence",
                issue_licence,
                pb::IssueLicenceRequest {
                    request_id: request_id(),
                    name: name(&id),
                    issue_date,
                    note,
                }
            );
            ("LicensingService.IssueLicence", a.application, a.licence)
        }
        C::PostIssueCheck(PostIssueCheckArgs {
            id,
            outcome,
            check_date,
            verifiers,
            findings,
            step: StepTail { note, connect },
        }) => {
            let a = call!(
                connect,
                "RecordPostIssueCheck",
                record_post_issue_check,
                pb::RecordPostIssueCheckRequest {
                    request_id: request_id(),
                    name: name(&id),
                    check: Some(pb::PostIssueCheck {
                        outcome: outcome as i32,
                        check_date,
                        verifiers,
                        findings,
                        attachments: Vec::new(),
                    }),
                    note,
                }
            );
            (
                "LicensingService.RecordPostIssueCheck",
                a.application,
                a.licence,
            )
        }
    };
    let application = answer.ok_or(DeskError::Incomplete {
        method,
        field: "application",
    })?;
    stepped(&application, out)?;
    if let Some(licence) = licence {
        print_licence(&licence, out)?;
    }
    Ok(())
}

async fn submit(
    args: SubmitArgs,
) -> Result<
    (
        &'static str,
        Option<pb::LicenceApplication>,
        Option<pb::Licence>,
    ),
    DeskError,
> {
    let materials = attachments(&args.materials)?;
    let units = args
        .units
        .iter()
        .map(|unit| {
            let (code, name) = unit.split_once(':').unwrap_or((unit, ""));
            pb::ProductUnit {
                code: code.trim().to_owned(),
                name: name.trim().to_owned(),
                specifications: Vec::new(),
            }
        })
        .collect();
    let a = call!(
        args.step.connect,
        "SubmitApplication",
        submit_application,
        pb::SubmitApplicationRequest {
            request_id: request_id(),
            application: Some(pb::LicenceApplication {
                applicant: Some(pb::Enterprise {
                    name: args.applicant,
                    uscc: args.uscc,
                    residence: args.residence,
                    production_address: args.production_address,
                    production_region_code: args.region,
                }),
                product: Some(pb::LicensedProduct {
                    catalogue_code: args.product,
                    name: String::new(),
                    units,
                }),
                route: args.route as i32,
                materials,
                note: args.step.note,
                ..Default::default()
            }),
        }
    );
    Ok(("LicensingService.SubmitApplication", a.application, None))
}

async fn change_licence(
    args: ChangeLicenceArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), DeskError> {
    let attachments = attachments(&args.attachments)?;
    let answer = call!(
        args.connect,
        "ChangeLicence",
        change_licence,
        pb::ChangeLicenceRequest {
            request_id: request_id(),
            name: resource("licences", &args.licence),
            holder_name: args.holder_name,
            residence: args.residence,
            production_address: args.production_address,
            business_licence_change_date: args.business_licence_changed,
            reason: args.reason,
            attachments,
        }
    );
    let licence = answer.licence.ok_or(DeskError::Incomplete {
        method: "LicensingService.ChangeLicence",
        field: "licence",
    })?;
    print_licence(&licence, out)
}

async fn list(args: ApplicationListArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    let session = system_session(&args.connect).await?;
    let request = pb::ListApplicationsRequest {
        state: args.state.unwrap_or(pb::ApplicationState::Unspecified) as i32,
        province_role: args.role.unwrap_or(pb::ProvinceRole::Unspecified) as i32,
        applicant_uscc: args.applicant_uscc.unwrap_or_default(),
        catalogue_code: String::new(),
        overdue: args.overdue.then_some(true),
        page_size: 500,
        page_token: String::new(),
    };
    let applications = all_applications(&session, request).await?;
    APPLICATIONS.print(&applications, args.json, out)
}

/// `yrd application list`: one row a licence application.
const APPLICATIONS: Listing<pb::LicenceApplication, ApplicationView> = Listing {
    noun: "application",
    header: &[
        "application",
        "applicant",
        "product",
        "accepting",
        "issuing",
        "state",
        "next time limit",
        "due",
        "",
    ],
    view: ApplicationView::new,
    row: |a, today| {
        let (deadline, due) = deadline_cells(
            next_deadline(a).map(|d| (deadline_kind(d.kind), d.due_date.as_str(), d.overdue)),
            today,
        );
        vec![
            a.id.clone(),
            a.applicant
                .as_ref()
                .map(|e| e.name.clone())
                .unwrap_or_default(),
            a.product
                .as_ref()
                .map(|p| p.catalogue_code.clone())
                .unwrap_or_default(),
            agency(&a.accepting_agency).to_owned(),
            agency(&a.issuing_agency).to_owned(),
            application_state(a.state),
            deadline,
            due,
            if a.overdue { "OVERDUE" } else { "" }.to_owned(),
        ]
    },
    overdue: |a| a.overdue,
};

/// The earliest time limit still running (not met), overdue ones first.
fn next_deadline(a: &pb::LicenceApplication) -> Option<&pb::ApplicationDeadline> {
    a.deadlines
        .iter()
        .filter(|d| !d.met)
        .min_by_key(|d| (!d.overdue, d.due_date.clone()))
}

/// Every application `request` matches, all pages (`yrd application list`, the console).
pub(crate) async fn all_applications(
    session: &Session,
    request: pb::ListApplicationsRequest,
) -> Result<Vec<pb::LicenceApplication>, RpcError> {
    let licensing = session.client().licensing();
    list_all(
        "LicensingService.ListApplications",
        request,
        |r, token| r.page_token = token,
        |r| {
            let mut licensing = licensing.clone();
            async move {
                let page = licensing.list_applications(r).await?.into_inner();
                Ok((page.applications, page.next_page_token))
            }
        },
    )
    .await
}

async fn show(args: ShowArgs, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    let answer = call!(
        args.connect,
        "GetApplication",
        get_application,
        pb::GetApplicationRequest {
            name: resource("applications", &args.id),
        }
    );
    let a = answer.application.ok_or(DeskError::Incomplete {
        method: "LicensingService.GetApplication",
        field: "application",
    })?;
    let today = today();
    if args.json {
        return write_json(out, &ApplicationView::new(&a, today));
    }
    let applicant = a.applicant.clone().unwrap_or_default();
    let product = a.product.clone().unwrap_or_default();
    writeln!(out, "{}  {}", a.name, application_state(a.state))?;
    writeln!(
        out,
        "  applicant    {} ({})",
        applicant.name, applicant.uscc
    )?;
    writeln!(
        out,
        "  production   {} [{}]",
        applicant.production_address, applicant.production_region_code
    )?;
    writeln!(
        out,
        "  product      {} {} ({})",
        product.catalogue_code,
        product.name,
        word(a.route().as_str_name(), "LICENSING_ROUTE_")
    )?;
    writeln!(
        out,
        "  provinces    accepting {}, issuing {}",
        agency(&a.accepting_agency),
        agency(&a.issuing_agency)
    )?;
    if !a.missing_items.is_empty() {
        writeln!(out, "  missing      {}", a.missing_items.join("; "))?;
    }
    if !a.licence.is_empty() {
        writeln!(out, "  licence      {}", a.licence)?;
    }
    if a.overdue || a.clock_paused {
        let flags = [(a.overdue, "OVERDUE"), (a.clock_paused, "paused")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(out, "  flags        {flags}")?;
    }
    writeln!(out, "time limits:")?;
    if a.deadlines.is_empty() {
        writeln!(out, "  none running")?;
    }
    for d in &a.deadlines {
        let status = if d.met {
            "met".to_owned()
        } else {
            due_label(&d.due_date, d.overdue, today)
        };
        let unit = if d.working_days {
            "working"
        } else {
            "calendar"
        };
        writeln!(
            out,
            "  {:<18} {}  {} {unit} days from {}  {status}",
            deadline_kind(d.kind),
            d.due_date,
            d.limit_days + d.extension_days,
            d.start_date
        )?;
    }
    writeln!(out, "history:")?;
    for step in &a.history {
        writeln!(out, "  {}", step_line(step))?;
    }
    Ok(())
}

/// What a step prints: the state after it, the step itself and the next time limit.
fn stepped(a: &pb::LicenceApplication, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    writeln!(out, "{}: {}", a.name, application_state(a.state))?;
    if let Some(step) = a.history.last() {
        writeln!(out, "  step     {}", step_line(step))?;
    }
    match next_deadline(a) {
        Some(d) => writeln!(
            out,
            "  next     {} {} ({})",
            deadline_kind(d.kind),
            d.due_date,
            due_label(&d.due_date, d.overdue, today())
        )?,
        None => writeln!(out, "  next     no time limit runs")?,
    }
    Ok(())
}

fn print_licence(l: &pb::Licence, out: &mut (dyn Write + Send)) -> Result<(), DeskError> {
    writeln!(
        out,
        "licence {} ({}): {} valid {} to {}",
        l.number,
        l.name,
        l.holder.as_ref().map(|h| h.name.as_str()).unwrap_or(""),
        l.issue_date,
        l.expiry_date
    )?;
    Ok(())
}

/// One history step on one line.
fn step_line(step: &pb::ApplicationStep) -> String {
    let who = match (step.agency.as_str(), step.officer.as_str()) {
        ("", _) => "the exchange".to_owned(),
        (a, "") => agency(a).to_owned(),
        (a, officer) => format!("{} ({officer})", agency(a)),
    };
    let mut line = format!(
        "{:>2}  {}  {:<24} {:<28} → {}",
        step.seq,
        cst(step.time.as_ref()),
        word(step.kind().as_str_name(), "APPLICATION_STEP_KIND_"),
        who,
        application_state(step.state_after)
    );
    if !step.note.is_empty() {
        line.push_str(&format!("  «{}»", step.note));
    }
    line
}

fn deadline_kind(kind: i32) -> String {
    word(
        pb::ApplicationDeadlineKind::try_from(kind)
            .unwrap_or_default()
            .as_str_name(),
        "APPLICATION_DEADLINE_KIND_",
    )
}

/// An application as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct ApplicationView {
    /// `applications/{id}`.
    pub name: String,
    /// The id.
    pub id: String,
    /// The applicant's name.
    pub applicant: String,
    /// The catalogue code.
    pub product: String,
    /// The accepting agency id.
    pub accepting_agency: String,
    /// The issuing agency id.
    pub issuing_agency: String,
    /// The state, e.g. `accepted`.
    pub state: String,
    /// Whether a time limit passed unmet.
    pub overdue: bool,
    /// Every time limit: kind, due date, met, overdue, and `due in N days` / `overdue N days`.
    pub deadlines: Vec<DeadlineView>,
    /// The history, one line per step as `show` prints it.
    pub history: Vec<String>,
}

/// A time limit as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct DeadlineView {
    /// e.g. `acceptance`.
    pub kind: String,
    /// `YYYY-MM-DD`.
    pub due_date: String,
    /// Whether the step was done.
    pub met: bool,
    /// Whether it passed unmet.
    pub overdue: bool,
    /// `due in N days`, `overdue N days`, or `met`.
    pub due: String,
}

impl ApplicationView {
    /// The view of an application the exchange returned.
    pub fn new(a: &pb::LicenceApplication, today: time::Date) -> Self {
        ApplicationView {
            name: a.name.clone(),
            id: a.id.clone(),
            applicant: a
                .applicant
                .as_ref()
                .map(|e| e.name.clone())
                .unwrap_or_default(),
            product: a
                .product
                .as_ref()
                .map(|p| p.catalogue_code.clone())
                .unwrap_or_default(),
            accepting_agency: agency(&a.accepting_agency).to_owned(),
            issuing_agency: agency(&a.issuing_agency).to_owned(),
            state: word(a.state().as_str_name(), "APPLICATION_STATE_"),
            overdue: a.overdue,
            deadlines: a
                .deadlines
                .iter()
                .map(|d| DeadlineView {
                    kind: deadline_kind(d.kind),
                    due_date: d.due_date.clone(),
                    met: d.met,
                    overdue: d.overdue,
                    due: if d.met {
                        "met".to_owned()
                    } else {
                        due_label(&d.due_date, d.overdue, today)
                    },
                })
                .collect(),
            history: a.history.iter().map(step_line).collect(),
        }
    }
}
