//! The state machine of a production-licence application (工业产品生产许可证) processed
//! jointly by Shanghai and Shandong (沪鲁通办).
//!
//! An enterprise applies at the window of one province (the *accepting* agency, 受理地) for a
//! licence that the province of its production address issues (the *issuing* agency, 发证地,
//! 条例 art. 11). Which of the two may take which step, and by when, is fixed by the
//! Administrative Licensing Law (行政许可法) and the licensing regulations, so — as for
//! referrals — the rules are one pure function, [`apply`], tested as a state-by-command table.
//!
//! Choices, each following the statute where docs/domain.md is silent:
//!
//! * **Who accepts**: the accepting window (受理地) receives the materials and submits them; the
//!   issuing province (发证地), which examines and decides, also decides on acceptance: it
//!   accepts, asks for a supplement or does not accept (the exchange contract,
//!   `licensing.proto`, and the Hu-Lu scenario: "Shandong accepts"). The window hands in the
//!   applicant's supplement.
//! * **Deemed acceptance** (行政许可法 art. 32(4)): when the issuing agency neither accepts,
//!   refuses nor asks for a supplement within 5 working days of receiving the materials, the
//!   application counts as accepted *from the day the materials were received*. The machine
//!   models it twice over: the scheduler's [`LicensingCommand::MarkOverdue`] moves such an
//!   application to `Accepted` with `deemed_accepted = true`, and a late `Accept` is recorded the
//!   same way, while a late supplement request or non-acceptance is refused. The decision
//!   clock then runs from the receipt day.
//! * **One supplement notice** (一次性告知, art. 32(4)): a second supplement request is refused;
//!   the applicant's supplement restarts the 5-day acceptance clock from its receipt.
//! * **Working days for the licensing law's own limits only** (art. 82): acceptance 5, decision
//!   20 or the catalogue's shorter limit, +10 once (art. 42), issue of the certificate 10
//!   (art. 44), post-issue check of a commitment-based licence 30 (a rule parameter: the statute
//!   names none). The verification result is due 30 *calendar* days after acceptance (条例
//!   art. 18, "30日"), rolled to the next working day when the last day is a day off (民法典
//!   art. 203); [`DeadlineKind::counting`] says which kind each limit is.
//! * **Testing pauses the decision clock** (art. 45) by the working days between its start and
//!   its result; the verification clock keeps running.
//! * **Verification**: the issuing agency either verifies itself or delegates to the accepting
//!   agency (实地核查委托), which alone may then report. The commitment route may skip it.
//! * **Validity**: five years, ending on the corresponding day of the fifth year after issue
//!   (民法典 art. 202; 29 February ends on 28 February).
//! * **Pilot**: only the configured pilot agencies (Shanghai and Shandong) may submit, see or
//!   act; every other agency is refused as not permitted.
//!
//! # Layout
//!
//! * this file — the application model: rules, deadlines, the [`Application`] and its events;
//! * `apply/` — [`apply`], one file per phase of the procedure;
//! * `command.rs` and `party.rs` — the commands and who may issue them;
//! * `refusal.rs` — why a step is refused;
//! * `state.rs` — the application states;
//! * `submission.rs`, `catalogue.rs`, `numbers.rs`, `error.rs` — the validated values.
//!
//! No two of the value files import each other both ways; this file re-exports them all, so
//! callers keep writing `licensing::Application`, `licensing::apply` and so on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::calendar::{Deadline, DeadlineKind, WorkingCalendar, china_date};
use crate::ids::AgencyId;

mod apply;
mod catalogue;
mod command;
mod error;
mod numbers;
mod party;
mod refusal;
mod state;
mod submission;

#[cfg(test)]
mod tests;

pub use crate::referral::Actor;
pub use crate::text::Remark;
pub use apply::apply;
pub use catalogue::*;
pub use command::*;
pub use error::*;
pub use numbers::*;
pub use party::Party;
/// The former name of [`Party`], kept so existing callers compile; new code names [`Party`],
/// which does not collide with the permission [`crate::roles::Role`].
pub use party::Party as Role;
pub use refusal::*;
pub use state::*;
pub use submission::*;

/// The rules a deployment configures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicensingRules {
    /// The working-day calendar.
    pub calendar: WorkingCalendar,
    /// The agencies of the pilot; only they may submit, see or act.
    pub pilot_agencies: BTreeSet<AgencyId>,
    /// Accept, supplement or not-accept within this many working days (5, art. 32).
    pub acceptance_working_days: u32,
    /// Verification result within this many calendar days of acceptance (30, 条例 art. 18).
    pub verification_calendar_days: u32,
    /// The one extension of the decision limit (10, art. 42).
    pub extension_working_days: u32,
    /// Issue the certificate within this many working days of approval (10, art. 44).
    pub issuance_working_days: u32,
    /// Post-issue check of a commitment-based licence within this many working days (30).
    pub post_issue_check_working_days: u32,
    /// Years a licence is valid (5).
    pub validity_years: i32,
}

impl Default for LicensingRules {
    fn default() -> Self {
        LicensingRules {
            calendar: WorkingCalendar::weekends_only(),
            pilot_agencies: ["310000-SAMR", "370000-AMR"]
                .iter()
                .filter_map(|id| AgencyId::parse(id).ok())
                .collect(),
            acceptance_working_days: 5,
            verification_calendar_days: 30,
            extension_working_days: 10,
            issuance_working_days: 10,
            post_issue_check_working_days: 30,
            validity_years: 5,
        }
    }
}

/// The application's clocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationDeadlines {
    /// Acceptance, while submitted.
    pub acceptance: Option<Deadline>,
    /// Verification result, ordinary route, until reported.
    pub verification: Option<Deadline>,
    /// Decision, until decided; moves with testing and the extension.
    pub decision: Option<Deadline>,
    /// Issue of the certificate after approval.
    pub issuance: Option<Deadline>,
    /// Conditions of a conditional approval, until met.
    pub conditions: Option<Deadline>,
    /// Post-issue check of a commitment-based licence, until recorded.
    pub post_issue_check: Option<Deadline>,
}

/// A verification report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationReport {
    /// The agency that verified.
    pub by: AgencyId,
    /// How many verifiers.
    pub verifiers: VerifierCount,
    /// Whether the site passed.
    pub passed: bool,
}

/// An issued licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licence {
    /// The number.
    pub number: LicenceNumber,
    /// The holder, as changed by linked changes.
    pub holder: Holder,
    /// First day of validity (the issue date).
    pub valid_from: Date,
    /// Last day of validity.
    pub valid_until: Date,
}

/// The data of an application that the machine needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Where it stands.
    pub state: ApplicationState,
    /// The route.
    pub route: Route,
    /// The window where it was submitted (受理地).
    pub accepting_agency: AgencyId,
    /// The province that issues (发证地).
    pub issuing_agency: AgencyId,
    /// The product applied for.
    pub product: CatalogueEntry,
    /// The applicant.
    pub holder: Holder,
    /// The day the application was first submitted.
    pub submitted_on: Date,
    /// The day the current materials were received (submission or supplement).
    pub materials_received_on: Date,
    /// A supplement was requested once already.
    pub supplement_requested: bool,
    /// The day acceptance took effect.
    pub accepted_on: Option<Date>,
    /// Accepted by law after the 5-day limit passed (行政许可法 art. 32(4)).
    pub deemed_accepted: bool,
    /// The clocks.
    pub deadlines: ApplicationDeadlines,
    /// The decision limit was extended.
    pub decision_extended: bool,
    /// The first day of a running test's pause.
    pub paused_since: Option<Date>,
    /// Working days the decision clock has been paused by testing.
    pub paused_working_days: u32,
    /// The verification report.
    pub verification: Option<VerificationReport>,
    /// The product test result.
    pub test_conforming: Option<bool>,
    /// The conditions of a conditional approval.
    pub conditions: Option<ItemList>,
    /// The conditions were confirmed as met.
    pub conditions_met: bool,
    /// The licence, once issued.
    pub licence: Option<Licence>,
    /// Deadlines already flagged overdue.
    pub overdue: BTreeSet<DeadlineKind>,
    /// Number of timeline entries (the submission is entry 1).
    pub timeline_len: u32,
}

/// What happened, for the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LicensingEventKind {
    /// Submitted at the accepting window.
    Submitted,
    /// Supplement requested.
    SupplementRequested,
    /// Not accepted.
    NotAccepted,
    /// Accepted; `deemed` when by operation of law.
    Accepted {
        /// Accepted by law after the limit passed.
        deemed: bool,
    },
    /// The applicant's supplement was received.
    SupplementRecorded,
    /// Examination started.
    ReviewStarted,
    /// Verification delegated.
    VerificationDelegated,
    /// Verification reported.
    VerificationReported {
        /// Whether the site passed.
        passed: bool,
    },
    /// Testing started.
    TestingStarted,
    /// Test result recorded.
    TestResultRecorded {
        /// Whether the product conformed.
        conforming: bool,
    },
    /// Decision limit extended.
    DecisionLimitExtended {
        /// The new decision deadline.
        due: Date,
    },
    /// Approved.
    Approved,
    /// Approved with conditions.
    ApprovedWithConditions {
        /// When they must be met.
        due: Date,
    },
    /// Refused.
    Refused,
    /// Licence issued.
    LicenceIssued {
        /// Its number.
        number: LicenceNumber,
    },
    /// Conditions met.
    ConditionsMet,
    /// Post-issue check passed.
    PostIssueCheckPassed,
    /// Licence revoked after a failed post-issue check.
    Revoked,
    /// Linked change of the licence.
    LicenceChanged,
    /// A deadline passed.
    Overdue(Deadline),
}

/// One feed event and the agencies that must be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicensingEvent {
    /// What happened.
    pub kind: LicensingEventKind,
    /// Who must be told: the other province, or both when the scheduler acted.
    pub notify: Vec<AgencyId>,
}

/// An accepted step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The application after the step.
    pub new_state: Application,
    /// The feed events of the step.
    pub events: Vec<LicensingEvent>,
}

/// The day a period of `years` ending on the corresponding day ends (民法典 art. 202).
pub fn years_later(date: Date, years: i32) -> Date {
    let year = date.year().saturating_add(years);
    date.replace_year(year)
        .or_else(|_| date.replace_day(28).and_then(|d| d.replace_year(year)))
        .unwrap_or(Date::MAX)
}

impl Application {
    /// Submits `submission` at the window of `caller` for issue by `issuing`. Both must be
    /// pilot agencies and different.
    pub fn submit(
        submission: Submission,
        caller: &AgencyId,
        issuing: AgencyId,
        now: OffsetDateTime,
        rules: &LicensingRules,
    ) -> Result<Transition, Refusal> {
        if !rules.pilot_agencies.contains(caller) {
            return Err(Refusal::OutsidePilot {
                agency: caller.clone(),
            });
        }
        if !rules.pilot_agencies.contains(&issuing) {
            return Err(Refusal::IssuingAgency {
                agency: issuing,
                why: "it is not part of the joint-processing pilot",
            });
        }
        if *caller == issuing {
            return Err(Refusal::IssuingAgency {
                agency: issuing,
                why: "it is the accepting window itself; joint processing needs the other province",
            });
        }
        let today = china_date(now);
        let due = rules
            .calendar
            .add_working_days(today, rules.acceptance_working_days)
            .map_err(|e| Refusal::Precondition {
                state: ApplicationState::Submitted,
                command: "SubmitApplication",
                reason: e.into(),
            })?;
        let application = Application {
            state: ApplicationState::Submitted,
            route: submission.route,
            accepting_agency: caller.clone(),
            issuing_agency: issuing.clone(),
            product: submission.product,
            holder: submission.holder,
            submitted_on: today,
            materials_received_on: today,
            supplement_requested: false,
            accepted_on: None,
            deemed_accepted: false,
            deadlines: ApplicationDeadlines {
                acceptance: Some(Deadline::new(DeadlineKind::Acceptance, due)),
                ..ApplicationDeadlines::default()
            },
            decision_extended: false,
            paused_since: None,
            paused_working_days: 0,
            verification: None,
            test_conforming: None,
            conditions: None,
            conditions_met: false,
            licence: None,
            overdue: BTreeSet::new(),
            timeline_len: 1,
        };
        Ok(Transition {
            new_state: application,
            events: vec![LicensingEvent {
                kind: LicensingEventKind::Submitted,
                notify: vec![issuing],
            }],
        })
    }

    /// The role of `actor` on this application.
    pub fn role_of(&self, actor: &Actor) -> Party {
        match actor {
            Actor::Scheduler => Party::Scheduler,
            Actor::Agency(a) if *a == self.issuing_agency => Party::IssuingAgency,
            Actor::Agency(a) if *a == self.accepting_agency => Party::AcceptingAgency,
            Actor::Agency(_) => Party::Outsider,
        }
    }

    /// Whether `agency` may read this application: only its two provinces.
    pub fn can_see(&self, agency: &AgencyId) -> bool {
        *agency == self.accepting_agency || *agency == self.issuing_agency
    }

    /// The deadlines running in the current state.
    pub fn running_deadlines(&self) -> Vec<Deadline> {
        use ApplicationState as S;
        let d = &self.deadlines;
        let open_conditions = if self.conditions_met {
            None
        } else {
            d.conditions
        };
        let verification = if self.verification.is_none() {
            d.verification
        } else {
            None
        };
        match self.state {
            S::Submitted => d.acceptance.into_iter().collect(),
            S::Accepted | S::UnderReview | S::VerificationDelegated | S::VerificationReported => {
                verification.into_iter().chain(d.decision).collect()
            }
            S::Testing { .. } => verification.into_iter().collect(),
            S::Approved => d.issuance.into_iter().collect(),
            S::ApprovedWithConditions => d.issuance.into_iter().chain(open_conditions).collect(),
            S::LicenceIssued => open_conditions
                .into_iter()
                .chain(d.post_issue_check)
                .collect(),
            S::PostIssueCheckPassed => open_conditions.into_iter().collect(),
            S::SupplementRequested | S::NotAccepted | S::Refused | S::Revoked => Vec::new(),
        }
    }

    /// The earliest running deadline not yet flagged overdue.
    pub fn next_deadline(&self) -> Option<Deadline> {
        self.running_deadlines()
            .into_iter()
            .filter(|d| !self.overdue.contains(&d.kind))
            .min_by_key(|d| d.due)
    }

    /// Accepts as of `on`, starting the verification and decision clocks.
    fn accept(&mut self, on: Date, deemed: bool, rules: &LicensingRules) -> Result<(), Unmet> {
        self.state = ApplicationState::Accepted;
        self.accepted_on = Some(on);
        self.deemed_accepted = deemed;
        self.deadlines.acceptance = None;
        if self.route == Route::Ordinary {
            let due = rules
                .calendar
                .calendar_deadline(on, i64::from(rules.verification_calendar_days))?;
            self.deadlines.verification = Some(Deadline::new(DeadlineKind::Verification, due));
        }
        self.recompute_decision(rules)
    }

    /// The decision deadline: acceptance + limit (+ extension) + working days paused.
    fn recompute_decision(&mut self, rules: &LicensingRules) -> Result<(), Unmet> {
        if let Some(accepted_on) = self.accepted_on {
            let mut days =
                self.product.decision_limit_working_days.working_days() + self.paused_working_days;
            if self.decision_extended {
                days += rules.extension_working_days;
            }
            let due = rules.calendar.add_working_days(accepted_on, days)?;
            self.deadlines.decision = Some(Deadline::new(DeadlineKind::Decision, due));
        }
        Ok(())
    }

    /// The latest day the application recorded a step on: submission, receipt of the
    /// materials, acceptance, the start of testing, the licence. Steps are dated by the
    /// exchange's clock, so none may be dated before it (see `Unmet::BeforeLastStep`).
    pub fn last_recorded_day(&self) -> Date {
        [
            Some(self.submitted_on),
            Some(self.materials_received_on),
            self.accepted_on,
            self.paused_since,
            self.licence.as_ref().map(|l| l.valid_from),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(self.submitted_on)
    }

    /// True when the 5-day acceptance limit has passed on `today`.
    fn acceptance_lapsed(&self, today: Date) -> bool {
        self.deadlines
            .acceptance
            .is_some_and(|d| d.is_overdue(today))
    }
}
