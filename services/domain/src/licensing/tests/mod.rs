//! The licensing state machine as a state-by-command table and its access rules, with the
//! fixtures every licensing test shares; `rules.rs` holds one test per rule of the statute
//! the module doc lists.

use super::*;
pub(super) use crate::test_fixtures::*;
use time::macros::{date, offset};

fn rules() -> LicensingRules {
    LicensingRules::default()
}

fn fertilizer() -> CatalogueEntry {
    CatalogueEntry {
        code: CatalogueCode::parse("fertilizer").unwrap(),
        name: text("化肥"),
        industry_code: IndustryCode::parse("13").unwrap(),
        product_code: ProductCode::parse("001").unwrap(),
        commitment_allowed: false,
        decision_limit_working_days: DecisionLimit::default(),
    }
}
fn cable() -> CatalogueEntry {
    CatalogueEntry {
        code: CatalogueCode::parse("wire-cable").unwrap(),
        name: text("电线电缆"),
        industry_code: IndustryCode::parse("06").unwrap(),
        product_code: ProductCode::parse("001").unwrap(),
        commitment_allowed: true,
        decision_limit_working_days: DecisionLimit::new(15).unwrap(),
    }
}
fn holder() -> Holder {
    Holder {
        name: text("山东某化肥有限公司"),
        address: text("山东省济南市历城区某路1号"),
    }
}

/// A Shandong producer applies at the Shanghai window on day 0.
fn submit(product: CatalogueEntry, route: Route) -> Application {
    let submission = Submission::new(product, route, holder()).unwrap();
    Application::submit(submission, &shanghai(), shandong(), at(0), &rules())
        .unwrap()
        .new_state
}

fn rightful(app: &Application, command: &LicensingCommand) -> Actor {
    let role = match command {
        LicensingCommand::MarkOverdue => Party::Scheduler,
        LicensingCommand::ReportVerification { .. }
            if app.state == ApplicationState::VerificationDelegated =>
        {
            Party::AcceptingAgency
        }
        c if c.permits(Party::IssuingAgency) => Party::IssuingAgency,
        _ => Party::AcceptingAgency,
    };
    match role {
        Party::AcceptingAgency => Actor::Agency(app.accepting_agency.clone()),
        Party::IssuingAgency => Actor::Agency(app.issuing_agency.clone()),
        Party::Outsider => Actor::Agency(jiangsu()),
        Party::Scheduler => Actor::Scheduler,
    }
}

fn run(app: &Application, command: LicensingCommand, n: i64) -> Result<Transition, Refusal> {
    apply(app, &command, &rightful(app, &command), at(n), &rules())
}

fn step(app: &Application, command: LicensingCommand, n: i64) -> Application {
    match run(app, command.clone(), n) {
        Ok(t) => t.new_state,
        Err(e) => panic!("{command:?} on day {n}: {e}"),
    }
}

fn report(passed: bool) -> LicensingCommand {
    LicensingCommand::ReportVerification {
        verifiers: VerifierCount::new(3).unwrap(),
        passed,
    }
}
fn issue(serial: u32) -> LicensingCommand {
    LicensingCommand::IssueLicence {
        serial: Serial::new(serial).unwrap(),
    }
}
fn with_conditions(due: i64) -> LicensingCommand {
    LicensingCommand::Decide(Decision::ApproveWithConditions {
        conditions: ItemList::new("conditions", vec![text("replace the dryer")]).unwrap(),
        due: day(due),
    })
}

fn submitted() -> Application {
    submit(fertilizer(), Route::Ordinary)
}
fn supplement_requested() -> Application {
    step(
        &submitted(),
        LicensingCommand::RequestSupplement {
            missing: ItemList::new("missing", vec![text("site plan")]).unwrap(),
        },
        0,
    )
}
fn not_accepted() -> Application {
    step(
        &submitted(),
        LicensingCommand::NotAccept {
            reason: text("not a licensed product"),
        },
        0,
    )
}
fn accepted() -> Application {
    step(&submitted(), LicensingCommand::Accept, 0)
}
fn under_review() -> Application {
    step(&accepted(), LicensingCommand::StartReview, 0)
}
fn delegated() -> Application {
    step(&under_review(), LicensingCommand::DelegateVerification, 0)
}
fn reported() -> Application {
    step(&delegated(), report(true), 0)
}
fn testing() -> Application {
    step(&reported(), LicensingCommand::StartTesting, 0)
}
fn approved() -> Application {
    step(&reported(), LicensingCommand::Decide(Decision::Approve), 0)
}
fn approved_with_conditions() -> Application {
    step(&reported(), with_conditions(30), 0)
}
fn refused() -> Application {
    step(
        &reported(),
        LicensingCommand::Decide(Decision::Refuse {
            reason: text("does not meet the conditions"),
        }),
        0,
    )
}
fn commitment_issued() -> Application {
    let accepted = step(
        &submit(cable(), Route::Commitment),
        LicensingCommand::Accept,
        0,
    );
    let approved = step(&accepted, LicensingCommand::Decide(Decision::Approve), 0);
    step(&approved, issue(1), 0)
}
fn post_issue_passed() -> Application {
    step(
        &commitment_issued(),
        LicensingCommand::RecordPostIssueCheck { passed: true },
        0,
    )
}
fn revoked() -> Application {
    step(
        &commitment_issued(),
        LicensingCommand::RecordPostIssueCheck { passed: false },
        0,
    )
}

fn every_state() -> Vec<(&'static str, Application)> {
    vec![
        ("Submitted", submitted()),
        ("SupplementRequested", supplement_requested()),
        ("NotAccepted", not_accepted()),
        ("Accepted", accepted()),
        ("UnderReview", under_review()),
        ("VerificationDelegated", delegated()),
        ("VerificationReported", reported()),
        ("Testing", testing()),
        ("Approved", approved()),
        ("ApprovedWithConditions", approved_with_conditions()),
        ("Refused", refused()),
        ("LicenceIssued", commitment_issued()),
        ("PostIssueCheckPassed", post_issue_passed()),
        ("Revoked", revoked()),
    ]
}

fn every_command() -> Vec<(&'static str, LicensingCommand, i64)> {
    vec![
        ("Accept", LicensingCommand::Accept, 0),
        (
            "RequestSupplement",
            LicensingCommand::RequestSupplement {
                missing: ItemList::new("missing", vec![text("x")]).unwrap(),
            },
            0,
        ),
        (
            "NotAccept",
            LicensingCommand::NotAccept { reason: text("x") },
            0,
        ),
        ("RecordSupplement", LicensingCommand::RecordSupplement, 0),
        ("StartReview", LicensingCommand::StartReview, 0),
        ("Delegate", LicensingCommand::DelegateVerification, 0),
        ("Report", report(true), 0),
        ("StartTesting", LicensingCommand::StartTesting, 0),
        (
            "TestResult",
            LicensingCommand::RecordTestResult { conforming: true },
            0,
        ),
        ("Extend", LicensingCommand::ExtendDecisionLimit, 0),
        ("Approve", LicensingCommand::Decide(Decision::Approve), 0),
        ("ApproveWithConditions", with_conditions(30), 0),
        (
            "Refuse",
            LicensingCommand::Decide(Decision::Refuse { reason: text("x") }),
            0,
        ),
        ("Issue", issue(7), 0),
        ("ConditionsMet", LicensingCommand::ConfirmConditionsMet, 0),
        (
            "PostIssueCheck",
            LicensingCommand::RecordPostIssueCheck { passed: true },
            0,
        ),
        (
            "Change",
            LicensingCommand::ChangeLicence(
                LicenceChange::new(Some(text("新名称有限公司")), None).unwrap(),
            ),
            0,
        ),
        ("MarkOverdue", LicensingCommand::MarkOverdue, 100),
    ]
}

/// A: accepted; S: refused for the state; P: refused for a condition of the command.
/// Columns follow `every_command`, rows `every_state`.
const TABLE: &[(&str, &str)] = &[
    //  Acc Sup NotA RecS Rev Del Rep Tst TRes Ext Appr AppC Ref Iss Cond Post Chg Overdue
    ("Submitted", "AAASSSSSSSSSSSSSSA"),
    ("SupplementRequested", "SSAASSSSSSSSSSSSSS"),
    ("NotAccepted", "SSSSSSSSSSSSSSSSSS"),
    ("Accepted", "SSSSASSSSAPPPSSSSA"),
    ("UnderReview", "SSSSSAAASAPPASSSSA"),
    ("VerificationDelegated", "SSSSSSASSASSSSSSSA"),
    ("VerificationReported", "SSSSSSSASAAAASSSSA"),
    ("Testing", "SSSSSSSSAASSSSSSSP"),
    ("Approved", "SSSSSSSSSSSSSASSSA"),
    ("ApprovedWithConditions", "SSSSSSSSSSSSSAASSA"),
    ("Refused", "SSSSSSSSSSSSSSSSSS"),
    ("LicenceIssued", "SSSSSSSSSSSSSSPAAA"),
    ("PostIssueCheckPassed", "SSSSSSSSSSSSSSPSAP"),
    ("Revoked", "SSSSSSSSSSSSSSSSSS"),
];

#[test]
fn every_state_by_every_command() {
    let (states, commands) = (every_state(), every_command());
    check_state_table(&states, &commands, TABLE, |at, app, command, n| {
        match run(app, command.clone(), n) {
            Ok(t) => {
                assert!(!t.events.is_empty(), "{at} emitted no event");
                assert_eq!(t.new_state.timeline_len, app.timeline_len + 1);
                'A'
            }
            Err(Refusal::IllegalInState { state, .. }) => {
                assert_eq!(state, app.state);
                'S'
            }
            Err(Refusal::Precondition { state, .. }) => {
                assert_eq!(state, app.state);
                'P'
            }
            Err(e) => panic!("{at}: {e}"),
        }
    });
}

#[test]
fn outsiders_and_wrong_roles_are_denied_in_every_state() {
    let actors = [
        Actor::Agency(shanghai()),
        Actor::Agency(shandong()),
        Actor::Agency(jiangsu()),
        Actor::Agency(agency("340000-AMR")),
        Actor::Scheduler,
    ];
    for (name, app) in every_state() {
        for (cmd_name, command, n) in every_command() {
            let rightful = rightful(&app, &command);
            for actor in &actors {
                if *actor == rightful {
                    continue;
                }
                let refusal = apply(&app, &command, actor, at(n), &rules());
                let refusal = match refusal {
                    Err(r) => r,
                    Ok(_) => panic!("{name} × {cmd_name} accepted from {actor:?}"),
                };
                // A step the state forbids anyway may answer for the state; an outsider
                // is always denied.
                let role = app.role_of(actor);
                if role == Party::Outsider || !command.permits(role) {
                    assert_eq!(
                        refusal.kind(),
                        RefusalKind::PermissionDenied,
                        "{name} × {cmd_name} by {actor:?}: {refusal}"
                    );
                }
            }
        }
        assert!(app.can_see(&shanghai()) && app.can_see(&shandong()));
        assert!(!app.can_see(&jiangsu()));
    }
}

mod properties;
mod rules;
