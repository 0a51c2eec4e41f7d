//! Property tests of the licensing machine: random sequences of every command, issued by random
//! actors (the rightful province, the other one, an outsider, the scheduler), with random field
//! values (verifier counts and serials out of range; empty item lists; empty, blank and
//! oversized text; condition dates in the past, future and at the ends of the calendar), on
//! both routes, interleaved with clock jumps forward and backward across weekends and random
//! holidays. After every step:
//!
//! * nothing panicked (proptest reports a panic as a failure);
//! * a value the gateway refuses before the machine sees it is refused with an error naming
//!   its field; a refusal by the machine names the command, and is for the actor's party
//!   exactly when the actor's party may not issue the command;
//! * an accepted step appended one timeline entry, raised events and told only the other
//!   province (both, for the scheduler);
//! * the application is in a legal state ([`check_legal`]); refused, rejected and revoked
//!   applications accept nothing more;
//! * a step the clock would date before the application's last recorded day is refused
//!   (`Unmet::BeforeLastStep`), so recorded days follow each other;
//! * no deadline moved earlier. docs/domain.md allows exactly these moves: the acceptance
//!   limit restarts when the supplement arrives (`SupplementApplication`, §"Acceptance and
//!   supplement": the 5 days count from the materials); the decision limit only moves later,
//!   by the one extension (`ExtendTimeLimit`, 行政许可法 art. 42) or by the testing time that
//!   is not counted (`RecordTesting` with its result, art. 45); the verification, issuance,
//!   conditions and post-issue-check limits are fixed once set.

use std::collections::BTreeSet;

use proptest::prelude::*;
use time::{Date, OffsetDateTime};

use super::*;
use crate::calendar::{DeadlineKind, china_date};
use crate::test_properties::{
    Jump, MAX_STEPS, Monotone, Rel, assert_reaches_every_state, calendar, config, jump, rel,
    remark, text_input,
};

/// Who issues a step.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// Whoever the command needs (most steps, so sequences go deep).
    Rightful,
    Accepting,
    Issuing,
    Outsider,
    Scheduler,
}

impl Who {
    fn actor(self, app: &Application, command: &LicensingCommand) -> Actor {
        match self {
            Who::Rightful => rightful(app, command),
            Who::Accepting => Actor::Agency(app.accepting_agency.clone()),
            Who::Issuing => Actor::Agency(app.issuing_agency.clone()),
            Who::Outsider => Actor::Agency(jiangsu()),
            Who::Scheduler => Actor::Scheduler,
        }
    }
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        12 => Just(Who::Rightful),
        1 => Just(Who::Accepting),
        1 => Just(Who::Issuing),
        1 => Just(Who::Outsider),
        1 => Just(Who::Scheduler),
    ]
}

/// A command with its raw field values; dates relative to the day it is issued.
#[derive(Debug, Clone)]
enum RawCommand {
    Accept,
    RequestSupplement(Vec<String>),
    NotAccept(String),
    RecordSupplement,
    StartReview,
    DelegateVerification,
    ReportVerification(u8, bool),
    StartTesting,
    RecordTestResult(bool),
    ExtendDecisionLimit,
    Approve,
    ApproveWithConditions(Vec<String>, Rel),
    Refuse(String),
    IssueLicence(u32),
    ConfirmConditionsMet,
    RecordPostIssueCheck(bool),
    ChangeLicence(Option<String>, Option<String>, Option<String>),
    MarkOverdue,
    /// The step that moves the application on along its usual path from where it stands (the
    /// number picks among the choices), so that sequences reach the late states.
    Progress(u8),
}

/// The usual next step from `app`'s state; `pick` chooses among results and branches.
fn progress(app: &Application, pick: u8) -> RawCommand {
    use ApplicationState as S;
    let ok = pick % 5 != 0;
    match app.state {
        S::Submitted => RawCommand::Accept,
        S::SupplementRequested => RawCommand::RecordSupplement,
        S::Accepted if app.route == Route::Commitment && pick % 2 == 0 => RawCommand::Approve,
        S::Accepted => RawCommand::StartReview,
        S::UnderReview if pick % 3 == 0 => RawCommand::DelegateVerification,
        S::UnderReview | S::VerificationDelegated => RawCommand::ReportVerification(3, ok),
        S::VerificationReported if pick % 2 == 0 => RawCommand::Approve,
        S::VerificationReported => {
            RawCommand::ApproveWithConditions(vec!["replace the dryer".into()], Rel::Offset(30))
        }
        S::Testing { .. } => RawCommand::RecordTestResult(ok),
        S::Approved | S::ApprovedWithConditions => RawCommand::IssueLicence(u32::from(pick) + 1),
        S::LicenceIssued if app.conditions.is_some() && !app.conditions_met && pick % 2 == 0 => {
            RawCommand::ConfirmConditionsMet
        }
        S::LicenceIssued => RawCommand::RecordPostIssueCheck(ok),
        S::PostIssueCheckPassed | S::NotAccepted | S::Refused | S::Revoked => {
            RawCommand::ChangeLicence(Some("新名称有限公司".into()), None, None)
        }
    }
}

fn items() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        6 => prop::collection::vec(text_input(), 1..3),
        1 => Just(Vec::new()),
    ]
}

fn raw_command() -> impl Strategy<Value = RawCommand> {
    let decide = prop_oneof![
        4 => Just(RawCommand::Approve),
        3 => (items(), prop_oneof![3 => (1i64..=200).prop_map(Rel::Offset), 1 => rel()])
            .prop_map(|(i, due)| RawCommand::ApproveWithConditions(i, due)),
        1 => text_input().prop_map(RawCommand::Refuse),
    ];
    prop_oneof![
        3 => Just(RawCommand::Accept),
        1 => items().prop_map(RawCommand::RequestSupplement),
        1 => text_input().prop_map(RawCommand::NotAccept),
        1 => Just(RawCommand::RecordSupplement),
        3 => Just(RawCommand::StartReview),
        2 => Just(RawCommand::DelegateVerification),
        3 => (0u8..=6, prop::bool::weighted(0.8))
            .prop_map(|(n, passed)| RawCommand::ReportVerification(n, passed)),
        1 => Just(RawCommand::StartTesting),
        1 => prop::bool::weighted(0.8).prop_map(RawCommand::RecordTestResult),
        1 => Just(RawCommand::ExtendDecisionLimit),
        4 => decide,
        2 => prop_oneof![Just(0u32), 1u32..=99_999, Just(100_000u32), Just(u32::MAX)]
            .prop_map(RawCommand::IssueLicence),
        1 => Just(RawCommand::ConfirmConditionsMet),
        1 => any::<bool>().prop_map(RawCommand::RecordPostIssueCheck),
        1 => (
            prop::option::of(text_input()),
            prop::option::of(text_input()),
            prop::option::of(text_input()),
        )
            .prop_map(|(n, r, a)| RawCommand::ChangeLicence(n, r, a)),
        3 => Just(RawCommand::MarkOverdue),
        20 => any::<u8>().prop_map(RawCommand::Progress),
    ]
}

/// Fails unless `message` is a non-empty error that names `field`.
fn names(field: &str, message: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        message.contains(field),
        "error {:?} does not name {}",
        message,
        field
    );
    Ok(())
}

/// Parses an item list for `field`: each item, then the list.
fn item_list(field: &'static str, raw: &[String]) -> Result<Option<ItemList>, TestCaseError> {
    let mut list = Vec::new();
    for item in raw {
        match remark(field, item)? {
            Some(r) => list.push(r),
            None => return Ok(None),
        }
    }
    match ItemList::new(field, list) {
        Ok(l) => Ok(Some(l)),
        Err(e) => {
            names(field, &e.to_string())?;
            Ok(None)
        }
    }
}

/// Parses optional text; `Err(())` inside when the text was refused.
fn optional(
    field: &'static str,
    raw: &Option<String>,
) -> Result<Option<Option<Remark>>, TestCaseError> {
    match raw {
        None => Ok(Some(None)),
        Some(s) => Ok(remark(field, s)?.map(Some)),
    }
}

impl RawCommand {
    /// The command as the gateway would hand it to the machine, or None when the gateway
    /// refuses a field first (the refusal naming the field is checked here).
    fn build(
        &self,
        today: Date,
        app: &Application,
    ) -> Result<Option<LicensingCommand>, TestCaseError> {
        use LicensingCommand as C;
        Ok(Some(match self {
            RawCommand::Progress(pick) => return progress(app, *pick).build(today, app),
            RawCommand::Accept => C::Accept,
            RawCommand::RequestSupplement(raw) => match item_list("missing", raw)? {
                Some(missing) => C::RequestSupplement { missing },
                None => return Ok(None),
            },
            RawCommand::NotAccept(s) => match remark("reason", s)? {
                Some(reason) => C::NotAccept { reason },
                None => return Ok(None),
            },
            RawCommand::RecordSupplement => C::RecordSupplement,
            RawCommand::StartReview => C::StartReview,
            RawCommand::DelegateVerification => C::DelegateVerification,
            RawCommand::ReportVerification(n, passed) => match VerifierCount::new(*n) {
                Ok(verifiers) => C::ReportVerification {
                    verifiers,
                    passed: *passed,
                },
                Err(e) => {
                    names("verifiers", &e.to_string())?;
                    return Ok(None);
                }
            },
            RawCommand::StartTesting => C::StartTesting,
            RawCommand::RecordTestResult(conforming) => C::RecordTestResult {
                conforming: *conforming,
            },
            RawCommand::ExtendDecisionLimit => C::ExtendDecisionLimit,
            RawCommand::Approve => C::Decide(Decision::Approve),
            RawCommand::ApproveWithConditions(raw, due) => match item_list("conditions", raw)? {
                Some(conditions) => C::Decide(Decision::ApproveWithConditions {
                    conditions,
                    due: due.on(today),
                }),
                None => return Ok(None),
            },
            RawCommand::Refuse(s) => match remark("reason", s)? {
                Some(reason) => C::Decide(Decision::Refuse { reason }),
                None => return Ok(None),
            },
            RawCommand::IssueLicence(n) => match Serial::new(*n) {
                Ok(serial) => C::IssueLicence { serial },
                Err(e) => {
                    names("serial", &e.to_string())?;
                    return Ok(None);
                }
            },
            RawCommand::ConfirmConditionsMet => C::ConfirmConditionsMet,
            RawCommand::RecordPostIssueCheck(passed) => C::RecordPostIssueCheck { passed: *passed },
            RawCommand::ChangeLicence(name, residence, address) => {
                let (Some(name), Some(residence), Some(address)) = (
                    optional("change.name", name)?,
                    optional("change.residence", residence)?,
                    optional("change.address", address)?,
                ) else {
                    return Ok(None);
                };
                match LicenceChange::of(name, residence, address) {
                    Ok(change) => C::ChangeLicence(change),
                    Err(e) => {
                        // A change of nothing: the rule names the fields that may change.
                        names("name", &e.to_string())?;
                        return Ok(None);
                    }
                }
            }
            RawCommand::MarkOverdue => C::MarkOverdue,
        }))
    }
}

/// The machine's own invariants: what every reachable application satisfies.
fn check_legal(app: &Application) -> Result<(), TestCaseError> {
    use ApplicationState as S;
    let d = &app.deadlines;
    let state = app.state;
    prop_assert_ne!(&app.accepting_agency, &app.issuing_agency);
    // Acceptance runs exactly while the application waits for it.
    prop_assert_eq!(
        d.acceptance.is_some(),
        state == S::Submitted,
        "acceptance in {}",
        state
    );
    let before_acceptance = matches!(
        state,
        S::Submitted | S::SupplementRequested | S::NotAccepted
    );
    prop_assert_eq!(
        app.accepted_on.is_some(),
        !before_acceptance,
        "accepted_on in {}",
        state
    );
    // Recorded days follow each other, whatever the clock did.
    if let Some(on) = app.accepted_on {
        prop_assert!(
            on >= app.submitted_on,
            "accepted {} before submission {}",
            on,
            app.submitted_on
        );
    }
    if let Some(l) = &app.licence {
        prop_assert!(
            app.accepted_on.is_some_and(|on| on <= l.valid_from),
            "licence before acceptance"
        );
    }
    if app.deemed_accepted {
        prop_assert_eq!(app.accepted_on, Some(app.materials_received_on));
    }
    // The examination limits run exactly during the examination.
    let examining = matches!(
        state,
        S::Accepted
            | S::UnderReview
            | S::VerificationDelegated
            | S::VerificationReported
            | S::Testing { .. }
    );
    prop_assert_eq!(
        d.decision.is_some(),
        examining,
        "decision limit in {}",
        state
    );
    prop_assert_eq!(
        d.verification.is_some(),
        examining && app.route == Route::Ordinary,
        "verification limit in {} on {:?}",
        state,
        app.route
    );
    if let (Some(on), Some(decision)) = (app.accepted_on, d.decision) {
        prop_assert!(
            on < decision.due,
            "decision {} not after acceptance {}",
            decision,
            on
        );
    }
    // Testing stands the decision clock still.
    prop_assert_eq!(
        app.paused_since.is_some(),
        matches!(state, S::Testing { .. })
    );
    // Issuance runs exactly between approval and the licence.
    let approved = matches!(state, S::Approved | S::ApprovedWithConditions);
    prop_assert_eq!(
        d.issuance.is_some(),
        approved,
        "issuance limit in {}",
        state
    );
    prop_assert_eq!(app.conditions.is_some(), d.conditions.is_some());
    if state == S::ApprovedWithConditions {
        prop_assert!(app.conditions.is_some());
    }
    if app.conditions_met {
        prop_assert!(
            app.conditions.is_some(),
            "conditions met without conditions"
        );
    }
    let issued = matches!(
        state,
        S::LicenceIssued | S::PostIssueCheckPassed | S::Revoked
    );
    prop_assert_eq!(app.licence.is_some(), issued, "licence in {}", state);
    if let Some(l) = &app.licence {
        prop_assert!(l.valid_from < l.valid_until);
        prop_assert_eq!(&l.holder, &app.holder);
    }
    prop_assert_eq!(
        d.post_issue_check.is_some(),
        state == S::LicenceIssued && app.route == Route::Commitment,
        "post-issue check in {} on {:?}",
        state,
        app.route
    );
    if matches!(state, S::PostIssueCheckPassed | S::Revoked) {
        prop_assert_eq!(app.route, Route::Commitment);
    }
    // Approval needs what the route needs.
    if approved || issued {
        if app.route == Route::Ordinary {
            prop_assert!(
                app.verification.as_ref().is_some_and(|v| v.passed),
                "approved on the ordinary route without a passed verification"
            );
        }
        prop_assert_ne!(
            app.test_conforming,
            Some(false),
            "approved after a failed test"
        );
    }
    if let Some(v) = &app.verification {
        prop_assert!(app.can_see(&v.by), "verified by {}", v.by);
    }
    Ok(())
}

/// What an accepted step must satisfy, given the application before it.
fn check_accepted(
    before: &Application,
    t: &Transition,
    command: &LicensingCommand,
    actor: &Actor,
    today: Date,
    seen: &mut Monotone,
) -> Result<(), TestCaseError> {
    use ApplicationState as S;
    let after = &t.new_state;
    let name = command.name();
    prop_assert!(command.permits(before.role_of(actor)));
    prop_assert!(
        !matches!(before.state, S::NotAccepted | S::Refused | S::Revoked),
        "{} accepted in the final state {}",
        name,
        before.state
    );
    prop_assert_eq!(after.timeline_len, before.timeline_len + 1);
    prop_assert!(!t.events.is_empty(), "{} raised no event", name);
    for e in &t.events {
        for n in &e.notify {
            prop_assert!(before.can_see(n), "{} told {}", name, n);
            prop_assert!(
                !matches!(actor, Actor::Agency(a) if a == n),
                "{} told the actor",
                name
            );
        }
        if let LicensingEventKind::Overdue(d) = e.kind {
            prop_assert!(d.is_overdue(today), "{} flagged before due", d);
            prop_assert!(!before.overdue.contains(&d.kind), "{} flagged twice", d);
        }
    }
    // Monotone deadlines (see the module doc for the moves docs/domain.md allows).
    let d = &after.deadlines;
    let supplement = matches!(command, LicensingCommand::RecordSupplement);
    seen.see("acceptance", d.acceptance.map(|d| d.due), supplement, name)?;
    seen.see("decision", d.decision.map(|d| d.due), false, name)?;
    let b = &before.deadlines;
    if let (Some(was), Some(is)) = (b.decision, d.decision) {
        if was != is {
            prop_assert!(
                matches!(
                    command,
                    LicensingCommand::ExtendDecisionLimit
                        | LicensingCommand::RecordTestResult { .. }
                ),
                "{} moved the decision limit",
                name
            );
        }
    }
    for (field, was, is) in [
        ("verification", b.verification, d.verification),
        ("issuance", b.issuance, d.issuance),
        ("conditions", b.conditions, d.conditions),
        ("post-issue check", b.post_issue_check, d.post_issue_check),
    ] {
        if let (Some(was), Some(is)) = (was, is) {
            prop_assert_eq!(was, is, "{} changed the fixed {} limit", name, field);
        }
    }
    if before.overdue.contains(&DeadlineKind::Decision)
        && !after.overdue.contains(&DeadlineKind::Decision)
    {
        prop_assert!(
            matches!(command, LicensingCommand::ExtendDecisionLimit),
            "{} unflagged the decision limit",
            name
        );
    }
    Ok(())
}

/// What a refusal must satisfy.
fn check_refused(
    before: &Application,
    refusal: &Refusal,
    command: &LicensingCommand,
    actor: &Actor,
) -> Result<(), TestCaseError> {
    let message = refusal.to_string();
    prop_assert!(
        message.contains(command.name()),
        "refusal {:?} does not name {}",
        message,
        command.name()
    );
    if !command.permits(before.role_of(actor)) {
        prop_assert!(
            matches!(refusal, Refusal::NotPermitted { .. }),
            "{}",
            message
        );
    }
    if let Refusal::Precondition { reason, .. } = refusal {
        prop_assert!(
            !reason.to_string().trim().is_empty(),
            "empty reason in {}",
            message
        );
        if let Unmet::BeforeLastStep { today, last } = reason {
            prop_assert!(*today < *last && *last == before.last_recorded_day());
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Case {
    calendar: WorkingCalendar,
    cable: bool,
    commitment: bool,
    steps: Vec<(Jump, Who, RawCommand)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        calendar(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((jump(), who(), raw_command()), 1..=MAX_STEPS),
    )
        .prop_map(|(calendar, cable, commitment, steps)| Case {
            calendar,
            cable,
            commitment,
            steps,
        })
}

/// Runs one case, adding every state reached to `reached` (by its display, so a pending
/// objection or a test names what it interrupts and a closed referral its outcome).
fn run_case(case: &Case, reached: &mut BTreeSet<String>) -> Result<(), TestCaseError> {
    let rules = LicensingRules {
        calendar: case.calendar.clone(),
        ..LicensingRules::default()
    };
    // Fertilizer may not go on the commitment route; cable may.
    let (product, route) = match (case.cable, case.commitment) {
        (true, true) => (cable(), Route::Commitment),
        (true, false) => (cable(), Route::Ordinary),
        (false, _) => (fertilizer(), Route::Ordinary),
    };
    let submission = match Submission::new(product, route, holder()) {
        Ok(s) => s,
        Err(e) => return Err(TestCaseError::fail(format!("submission refused: {e}"))),
    };
    let mut now: OffsetDateTime = at(0);
    let mut app = match Application::submit(submission, &shanghai(), shandong(), now, &rules) {
        Ok(t) => t.new_state,
        Err(e) => return Err(TestCaseError::fail(format!("submission refused: {e}"))),
    };
    let mut seen = Monotone::default();
    seen.see(
        "acceptance",
        app.deadlines.acceptance.map(|d| d.due),
        false,
        "SubmitApplication",
    )?;
    check_legal(&app)?;
    for (jump, who, raw) in &case.steps {
        now = jump.apply(now);
        let today = china_date(now);
        let Some(command) = raw.build(today, &app)? else {
            continue;
        };
        let actor = who.actor(&app, &command);
        let before = app.clone();
        match apply(&app, &command, &actor, now, &rules) {
            Ok(t) => {
                check_accepted(&before, &t, &command, &actor, today, &mut seen)?;
                app = t.new_state;
            }
            Err(refusal) => {
                // `apply` borrows the application immutably, so a refused step cannot have
                // half-applied anything; the caller keeps `before`.
                check_refused(&before, &refusal, &command, &actor)?;
            }
        }
        reached.insert(app.state.to_string());
        check_legal(&app)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn application_stays_legal_under_random_commands_and_clock_jumps(case in case()) {
        run_case(&case, &mut BTreeSet::new())?;
    }
}

/// The generated cases (the same strategy, a fixed seed) reach every state.
#[test]
fn random_sequences_reach_every_state() {
    assert_reaches_every_state(
        case(),
        run_case,
        &[
            "APPLICATION_STATE_SUBMITTED",
            "APPLICATION_STATE_SUPPLEMENT_REQUESTED",
            "APPLICATION_STATE_NOT_ACCEPTED",
            "APPLICATION_STATE_ACCEPTED",
            "APPLICATION_STATE_UNDER_REVIEW",
            "APPLICATION_STATE_VERIFICATION_DELEGATED",
            "APPLICATION_STATE_VERIFICATION_REPORTED",
            "APPLICATION_STATE_DECIDED_APPROVED",
            "APPLICATION_STATE_DECIDED_APPROVED_WITH_CONDITIONS",
            "APPLICATION_STATE_REFUSED",
            "APPLICATION_STATE_LICENCE_ISSUED",
            "APPLICATION_STATE_POST_ISSUE_CHECK_PASSED",
            "APPLICATION_STATE_REVOKED",
        ],
    );
}
