//! Why a step is refused ([`Refusal`]), the gateway status class of each ([`RefusalKind`]),
//! and which condition of a step does not hold ([`Unmet`]).

use time::Date;

use crate::calendar::{CalendarError, Deadline};
use crate::ids::AgencyId;

use super::{Party, ReferralState};

/// Why the gateway must refuse a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The actor's role may not issue the command (PERMISSION_DENIED).
    #[error("{command} is reserved to {required}; the caller is {role}")]
    NotPermitted {
        /// The actor's role.
        role: Party,
        /// The role the command needs.
        required: Party,
        /// The command.
        command: &'static str,
    },
    /// The command is not allowed in the current state (FAILED_PRECONDITION).
    #[error("{command} is not allowed in state {state}")]
    IllegalInState {
        /// The current state.
        state: ReferralState,
        /// The command.
        command: &'static str,
    },
    /// The state allows the command but a condition does not hold (FAILED_PRECONDITION).
    #[error("{command} is not allowed in state {state}: {reason}")]
    Precondition {
        /// The current state.
        state: ReferralState,
        /// The command.
        command: &'static str,
        /// What does not hold.
        reason: Unmet,
    },
}

/// Which of the two gateway statuses a [`Refusal`] maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The actor may not do this: PERMISSION_DENIED.
    PermissionDenied,
    /// Not now, not in this state: FAILED_PRECONDITION.
    FailedPrecondition,
}

impl Refusal {
    /// The gateway status class of this refusal.
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::NotPermitted { .. } => RefusalKind::PermissionDenied,
            Refusal::IllegalInState { .. } | Refusal::Precondition { .. } => {
                RefusalKind::FailedPrecondition
            }
        }
    }
}

/// A condition of a step that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmet {
    /// The step's day lies before a day the referral already recorded: the clock that dates
    /// steps moved back, and the step would be dated before an earlier one on the timeline.
    #[error(
        "the step would be dated {today}, before the referral's last recorded day {last} \
         (the exchange's clock moved back); retry once the clock has caught up"
    )]
    BeforeLastStep {
        /// The day of the step.
        today: Date,
        /// The referral's latest recorded day.
        last: Date,
    },
    /// A date lies after today.
    #[error("{field} {date} lies after today ({today})")]
    DateInFuture {
        /// The field.
        field: &'static str,
        /// The date given.
        date: Date,
        /// Today.
        today: Date,
    },
    /// A date lies before the event it must follow.
    #[error("{field} {date} lies before {earliest}")]
    DateTooEarly {
        /// The field.
        field: &'static str,
        /// The date given.
        date: Date,
        /// The earliest acceptable date.
        earliest: Date,
    },
    /// The 15-day objection window (产品质量法 art. 15) closed.
    #[error("the objection window closed on {last_day} (15 days after the result was received)")]
    ObjectionWindowClosed {
        /// The last day of the window.
        last_day: Date,
    },
    /// A re-inspection already decided an objection; it is final.
    #[error("an objection was already decided by re-inspection, which is final")]
    ObjectionAlreadyDecided,
    /// Measure needs correction to have been ordered.
    #[error("{measure} needs correction to have been ordered first")]
    RectificationNotOrdered {
        /// The measure.
        measure: &'static str,
    },
    /// Correction was already ordered.
    #[error("correction was already ordered on {ordered_on}")]
    RectificationAlreadyOrdered {
        /// The day it was ordered.
        ordered_on: Date,
    },
    /// A review (or second review) was already recorded.
    #[error("the {measure} was already recorded")]
    AlreadyRecorded {
        /// The measure.
        measure: &'static str,
    },
    /// The announcement needs a failed or overdue review.
    #[error("no announcement is required: the review has neither failed nor passed its deadline")]
    AnnouncementNotRequired,
    /// The second review is only allowed from day 60 after the announcement.
    #[error("the second review may not happen before {opens} (60 days after the announcement)")]
    SecondReviewTooEarly {
        /// The first allowed day.
        opens: Date,
    },
    /// The measure is only recorded after the announcement.
    #[error("{measure} belongs after the announcement")]
    NotAnnounced {
        /// The measure.
        measure: &'static str,
    },
    /// Closing as rectified needs a conforming review or second review.
    #[error("closing as REFERRAL_OUTCOME_RECTIFIED needs a conforming review (复查)")]
    NoConformingReview,
    /// Closing as overturned happens only through a conforming re-inspection.
    #[error(
        "only a conforming re-inspection (复检, RecordReinspection) closes a referral as \
         REFERRAL_OUTCOME_OVERTURNED"
    )]
    OverturnedOnlyByReinspection,
    /// Closing as penalized needs a recorded penalty.
    #[error(
        "closing as REFERRAL_OUTCOME_PENALIZED needs a recorded administrative penalty (行政处罚)"
    )]
    NoPenaltyRecorded,
    /// Closing as transferred needs a recorded transfer.
    #[error(
        "closing as REFERRAL_OUTCOME_TRANSFERRED_TO_JUDICIAL needs a recorded transfer to the \
         judicial authorities (移送司法机关)"
    )]
    NoTransferRecorded,
    /// A violation was established by ordering correction.
    #[error(
        "correction (责令改正) was ordered, so a violation was found: \
         REFERRAL_OUTCOME_NO_VIOLATION_FOUND does not apply"
    )]
    ViolationEstablished,
    /// The named agency is already a party and cannot become the handling agency.
    #[error("{agency} cannot become the handling agency: it is already {role}")]
    AlreadyParty {
        /// The agency named.
        agency: AgencyId,
        /// What it already is.
        role: Party,
    },
    /// Nothing has newly passed its deadline.
    #[error("nothing is newly overdue (next deadline: {})", next.map_or("none".to_owned(), |d| d.to_string()))]
    NothingOverdue {
        /// The next deadline, if any.
        next: Option<Deadline>,
    },
    /// The clock is paused by a pending objection.
    #[error("the rectification clock is paused by a pending objection")]
    ClockPaused,
    /// A date computation left the supported range.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}
