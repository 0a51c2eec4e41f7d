//! The domain's application and licence as the contract shows them.
//!
//! The state machine keeps only what its rules need; the wire message also carries what the
//! agencies handed in (the applicant, materials, reports, decisions). So the stored view is the
//! wire message, and after every step [`refresh`] rewrites its derived fields (state, time
//! limits, flags) from the machine, while each step writes its own data into it.

use time::{Date, OffsetDateTime};
use yrd_call::timestamp;
use yrd_domain::calendar::{Counting, Deadline, DeadlineKind};
use yrd_domain::licensing::{Application, ApplicationState, LicensingRules, Route};
use yrd_domain::spotcheck::format_date;
use yrd_proto::v1 as pb;

/// The wire state of a domain state. Testing (产品检验) is shown as the state it interrupts,
/// with `clock_paused` set.
pub fn state_of(s: ApplicationState) -> pb::ApplicationState {
    use ApplicationState as S;
    use pb::ApplicationState as P;
    match s {
        S::Submitted => P::Submitted,
        S::SupplementRequested => P::SupplementRequested,
        S::NotAccepted => P::NotAccepted,
        S::Accepted => P::Accepted,
        S::UnderReview => P::UnderReview,
        S::VerificationDelegated => P::VerificationDelegated,
        S::VerificationReported => P::VerificationReported,
        S::Testing { resume } => match resume {
            yrd_domain::licensing::TestingFrom::UnderReview => P::UnderReview,
            yrd_domain::licensing::TestingFrom::VerificationReported => P::VerificationReported,
        },
        S::Approved => P::DecidedApproved,
        S::ApprovedWithConditions => P::DecidedApprovedWithConditions,
        S::Refused => P::Refused,
        S::LicenceIssued => P::LicenceIssued,
        S::PostIssueCheckPassed => P::PostIssueCheckPassed,
        S::Revoked => P::Revoked,
    }
}

/// The wire route.
pub fn route_of(r: Route) -> pb::LicensingRoute {
    match r {
        Route::Ordinary => pb::LicensingRoute::Ordinary,
        Route::Commitment => pb::LicensingRoute::Commitment,
    }
}

/// The wire kind of a licensing deadline.
pub fn deadline_kind(k: DeadlineKind) -> pb::ApplicationDeadlineKind {
    use pb::ApplicationDeadlineKind as K;
    match k {
        DeadlineKind::Acceptance => K::Acceptance,
        DeadlineKind::Verification => K::Verification,
        DeadlineKind::Decision => K::Decision,
        DeadlineKind::Issuance => K::Issuance,
        DeadlineKind::Conditions => K::Conditions,
        DeadlineKind::PostIssueCheck => K::PostIssueCheck,
        // Referral deadlines never occur on an application.
        DeadlineKind::Acknowledgement
        | DeadlineKind::Correction
        | DeadlineKind::Review
        | DeadlineKind::SecondReview => K::Unspecified,
    }
}

/// One time limit as shown: where it counts from and how long, when given by the rules.
pub fn deadline(
    app: &Application,
    d: Deadline,
    rules: &LicensingRules,
    today: Date,
) -> pb::ApplicationDeadline {
    let running = app.running_deadlines().contains(&d);
    let flagged = app.overdue.contains(&d.kind);
    let (start, limit, extension, paused) = match d.kind {
        DeadlineKind::Acceptance => (
            Some(app.materials_received_on),
            rules.acceptance_working_days,
            0,
            0,
        ),
        DeadlineKind::Verification => (app.accepted_on, rules.verification_calendar_days, 0, 0),
        DeadlineKind::Decision => {
            let extension = if app.decision_extended {
                rules.extension_working_days
            } else {
                0
            };
            (
                app.accepted_on,
                app.product.decision_limit_working_days.working_days() + extension,
                extension,
                app.paused_working_days,
            )
        }
        DeadlineKind::Issuance => (None, rules.issuance_working_days, 0, 0),
        DeadlineKind::PostIssueCheck => (
            app.licence.as_ref().map(|l| l.valid_from),
            rules.post_issue_check_working_days,
            0,
            0,
        ),
        _ => (None, 0, 0, 0),
    };
    pb::ApplicationDeadline {
        kind: deadline_kind(d.kind) as i32,
        start_date: start.map(format_date).unwrap_or_default(),
        limit_days: limit,
        working_days: d.kind.counting() == Counting::WorkingDays,
        extension_days: extension,
        paused_days: paused,
        due_date: format_date(d.due),
        met: !running && !flagged,
        overdue: running && (flagged || d.is_overdue(today)),
    }
}

/// Every time limit the application has had, running, met or passed.
pub fn deadlines(
    app: &Application,
    rules: &LicensingRules,
    today: Date,
) -> Vec<pb::ApplicationDeadline> {
    let d = &app.deadlines;
    [
        d.acceptance,
        d.verification,
        d.decision,
        d.issuance,
        d.conditions,
        d.post_issue_check,
    ]
    .into_iter()
    .flatten()
    .map(|x| deadline(app, x, rules, today))
    .collect()
}

/// Whether a running time limit passed unmet.
pub fn is_overdue(app: &Application, today: Date) -> bool {
    app.running_deadlines()
        .iter()
        .any(|d| app.overdue.contains(&d.kind) || d.is_overdue(today))
}

/// Rewrites the derived fields of `view` from the machine.
pub fn refresh(
    view: &mut pb::LicenceApplication,
    app: &Application,
    rules: &LicensingRules,
    today: Date,
    now: OffsetDateTime,
) {
    view.state = state_of(app.state) as i32;
    view.deadlines = deadlines(app, rules, today);
    view.overdue = is_overdue(app, today);
    view.clock_paused = matches!(app.state, ApplicationState::Testing { .. });
    view.time_limit_extended = app.decision_extended;
    view.accept_date = app.accepted_on.map(format_date).unwrap_or_default();
    view.update_time = Some(timestamp(now));
}

/// The licence of an application whose licence was just issued.
pub fn new_licence(
    view: &pb::LicenceApplication,
    app: &Application,
    now: OffsetDateTime,
) -> Option<pb::Licence> {
    let licence = app.licence.as_ref()?;
    let number = licence.number.to_string();
    let applicant = view.applicant.clone().unwrap_or_default();
    Some(pb::Licence {
        name: format!("licences/{number}"),
        number,
        holder: Some(pb::Enterprise {
            name: licence.holder.name.to_string(),
            production_address: licence.holder.address.to_string(),
            ..applicant
        }),
        product: view.product.clone(),
        issuing_agency: format!("agencies/{}", app.issuing_agency),
        application: view.name.clone(),
        route: route_of(app.route) as i32,
        issue_date: format_date(licence.valid_from),
        expiry_date: format_date(licence.valid_until),
        state: pb::LicenceState::Valid as i32,
        conditions: app
            .conditions
            .as_ref()
            .map(|c| c.items().iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        condition_deadline: app
            .deadlines
            .conditions
            .map(|d| format_date(d.due))
            .unwrap_or_default(),
        post_issue_check_due_date: app
            .deadlines
            .post_issue_check
            .map(|d| format_date(d.due))
            .unwrap_or_default(),
        revoke_time: None,
        revocation_reason: String::new(),
        changes: Vec::new(),
        create_time: Some(timestamp(now)),
        update_time: Some(timestamp(now)),
    })
}

/// The state a licence shows on `today`: a valid licence past its expiry date is expired.
pub fn licence_as_of(mut licence: pb::Licence, today: Date) -> pb::Licence {
    if licence.state == pb::LicenceState::Valid as i32
        && yrd_domain::spotcheck::parse_date(&licence.expiry_date).is_ok_and(|d| d < today)
    {
        licence.state = pb::LicenceState::Expired as i32;
    }
    licence
}
