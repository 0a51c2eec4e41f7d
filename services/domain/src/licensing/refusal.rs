//! Why a step is refused ([`Refusal`]) and which condition of a step does not hold
//! ([`Unmet`]); the gateway maps each to a status through [`RefusalKind`].

use time::Date;

use crate::calendar::{CalendarError, Deadline};
use crate::ids::AgencyId;

use super::{ApplicationState, Party};

/// Why the gateway must refuse a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The actor may not issue the command (PERMISSION_DENIED).
    #[error("{command} may not be called by {role}")]
    NotPermitted {
        /// The actor's role.
        role: Party,
        /// The command.
        command: &'static str,
    },
    /// The agency is not part of the pilot (PERMISSION_DENIED).
    #[error("{agency} is not part of the joint-processing pilot (沪鲁通办)")]
    OutsidePilot {
        /// The agency.
        agency: AgencyId,
    },
    /// The issuing province is not part of the pilot, or is the accepting one
    /// (FAILED_PRECONDITION).
    #[error("the application cannot be issued by {agency} through the exchange: {why}")]
    IssuingAgency {
        /// The issuing agency computed from the production address.
        agency: AgencyId,
        /// Why not.
        why: &'static str,
    },
    /// The command is not allowed in the current state (FAILED_PRECONDITION).
    #[error("{command} is not allowed in state {state}")]
    IllegalInState {
        /// The current state.
        state: ApplicationState,
        /// The command.
        command: &'static str,
    },
    /// A condition of the command does not hold (FAILED_PRECONDITION).
    #[error("{command} is not allowed in state {state}: {reason}")]
    Precondition {
        /// The current state.
        state: ApplicationState,
        /// The command.
        command: &'static str,
        /// What does not hold.
        reason: Unmet,
    },
}

pub use crate::referral::RefusalKind;

impl Refusal {
    /// The gateway status class of this refusal.
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::NotPermitted { .. } | Refusal::OutsidePilot { .. } => {
                RefusalKind::PermissionDenied
            }
            _ => RefusalKind::FailedPrecondition,
        }
    }
}

/// A condition of a step that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmet {
    /// The 5-day limit passed: the application is accepted by law.
    /// The step's day lies before a day the application already recorded: the clock that
    /// dates steps moved back, and the step would be dated before an earlier one.
    #[error(
        "the step would be dated {today}, before the application's last recorded day {last} \
         (the exchange's clock moved back); retry once the clock has caught up"
    )]
    BeforeLastStep {
        /// The day of the step.
        today: Date,
        /// The application's latest recorded day.
        last: Date,
    },
    /// The application counts as accepted by law.
    #[error(
        "the application counts as accepted since {since} (行政许可法 art. 32: no notice within 5 working days)"
    )]
    DeemedAccepted {
        /// The day acceptance took effect.
        since: Date,
    },
    /// One supplement notice only (一次性告知).
    #[error("a supplement was already requested once; the notice must list everything at once")]
    SupplementAlreadyRequested,
    /// The ordinary route needs the examination started.
    #[error("the ordinary route (先核后证) is decided only after the examination starts")]
    ReviewNotStarted,
    /// Approval on the ordinary route needs a verification report.
    #[error("approval on the ordinary route needs an on-site verification report")]
    VerificationMissing,
    /// The verification failed.
    #[error("the on-site verification failed")]
    VerificationFailed,
    /// The product test failed.
    #[error("the product test failed")]
    TestFailed,
    /// The decision limit was already extended once.
    #[error("the decision limit was already extended once (行政许可法 art. 42)")]
    AlreadyExtended,
    /// The conditions' deadline must lie after today.
    #[error("the conditions' deadline {due} must lie after today ({today})")]
    ConditionsDueNotInFuture {
        /// The deadline given.
        due: Date,
        /// Today.
        today: Date,
    },
    /// No conditions are open.
    #[error("no conditions of approval are open")]
    NoOpenConditions,
    /// Post-issue checks belong to the commitment route.
    #[error("post-issue checks (证后核查) belong to the commitment route (告知承诺)")]
    NotCommitmentRoute,
    /// Nothing has newly passed its deadline.
    #[error("nothing is newly overdue (next deadline: {})", next.map_or("none".to_owned(), |d| d.to_string()))]
    NothingOverdue {
        /// The next deadline, if any.
        next: Option<Deadline>,
    },
    /// A date computation left the supported range.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}
