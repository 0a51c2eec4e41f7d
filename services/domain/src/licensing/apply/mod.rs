//! [`apply`]: one step of the licensing state machine. The checks every command shares — the
//! actor's party, then the state — and the notification of the other province live here; the
//! rules of each command live with the phase of the procedure it belongs to (intake,
//! examination, decision, after issue, the scheduler's overdue step), so that no single
//! function holds the whole statute.

use time::{Date, OffsetDateTime};

use crate::calendar::china_date;
use crate::ids::AgencyId;
use crate::referral::Actor;

use super::{
    Application, ApplicationState, LicensingCommand, LicensingEvent, LicensingEventKind,
    LicensingRules, Party, Refusal, Transition, Unmet,
};

mod after_issue;
mod decision;
mod examination;
mod intake;
mod overdue;

/// One step in progress: the application as it was, what is known about the call, and the
/// application and events being built. Each command's rule reads and fills it.
struct Step<'a> {
    app: &'a Application,
    actor: &'a Actor,
    command: &'static str,
    role: Party,
    state: ApplicationState,
    today: Date,
    rules: &'a LicensingRules,
    next: Application,
    kinds: Vec<LicensingEventKind>,
}

impl Step<'_> {
    /// The actor may not take this step (PERMISSION_DENIED).
    fn not_permitted(&self) -> Refusal {
        Refusal::NotPermitted {
            role: self.role,
            command: self.command,
        }
    }

    /// The step is not allowed in the current state.
    fn illegal(&self) -> Refusal {
        Refusal::IllegalInState {
            state: self.state,
            command: self.command,
        }
    }

    /// A condition of the step does not hold.
    fn unmet(&self, reason: Unmet) -> Refusal {
        Refusal::Precondition {
            state: self.state,
            command: self.command,
            reason,
        }
    }
}

/// Applies `command` by `actor` at `now`. Checks, in order: the actor's role, the state, then
/// the command's own conditions. Pure: the caller persists the result.
pub fn apply(
    app: &Application,
    command: &LicensingCommand,
    actor: &Actor,
    now: OffsetDateTime,
    rules: &LicensingRules,
) -> Result<Transition, Refusal> {
    use LicensingCommand as C;
    let mut s = Step {
        app,
        actor,
        command: command.name(),
        role: app.role_of(actor),
        state: app.state,
        today: china_date(now),
        rules,
        next: app.clone(),
        kinds: Vec::new(),
    };
    if !command.permits(s.role) {
        return Err(s.not_permitted());
    }
    // A clock moved back would date this step before an earlier one (an acceptance before
    // the submission, a decision limit counted from such a day): refuse until it catches up.
    let last = app.last_recorded_day();
    if s.today < last {
        return Err(s.unmet(Unmet::BeforeLastStep {
            today: s.today,
            last,
        }));
    }

    match command {
        C::Accept => intake::accept(&mut s)?,
        C::RequestSupplement { .. } => intake::request_supplement(&mut s)?,
        C::NotAccept { .. } => intake::not_accept(&mut s)?,
        C::RecordSupplement => intake::record_supplement(&mut s)?,
        C::StartReview => examination::start_review(&mut s)?,
        C::DelegateVerification => examination::delegate_verification(&mut s)?,
        C::ReportVerification { verifiers, passed } => {
            examination::report_verification(&mut s, verifiers, passed)?
        }
        C::StartTesting => examination::start_testing(&mut s)?,
        C::RecordTestResult { conforming } => examination::record_test_result(&mut s, conforming)?,
        C::ExtendDecisionLimit => examination::extend_decision_limit(&mut s)?,
        C::Decide(decision) => decision::decide(&mut s, decision)?,
        C::IssueLicence { serial } => decision::issue_licence(&mut s, serial)?,
        C::ConfirmConditionsMet => after_issue::confirm_conditions_met(&mut s)?,
        C::RecordPostIssueCheck { passed } => after_issue::record_post_issue_check(&mut s, passed)?,
        C::ChangeLicence(change) => after_issue::change_licence(&mut s, change)?,
        C::MarkOverdue => overdue::mark_overdue(&mut s)?,
    }

    // Every step goes to the other province; the scheduler's to both.
    let notify: Vec<AgencyId> = [app.accepting_agency.clone(), app.issuing_agency.clone()]
        .into_iter()
        .filter(|a| !matches!(actor, Actor::Agency(me) if me == a))
        .collect();
    let mut next = s.next;
    next.timeline_len += 1;
    Ok(Transition {
        new_state: next,
        events: s
            .kinds
            .into_iter()
            .map(|kind| LicensingEvent {
                kind,
                notify: notify.clone(),
            })
            .collect(),
    })
}
