//! The states of a referral, how a closed one ended ([`Outcome`]), their names in the contract, and the states an objection can
//! interrupt. A leaf of the module: the model, the commands and the refusals all name states.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a closed referral ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Corrected, confirmed by a conforming review (整改到位).
    Rectified,
    /// A conforming re-inspection overturned the result (复检合格).
    Overturned,
    /// An administrative penalty was decided (行政处罚).
    Penalized,
    /// Transferred to the judicial authorities (移送司法机关).
    TransferredToJudicial,
    /// The handling agency found no violation to pursue.
    NoViolationFound,
    /// Any other ending, explained in the summary.
    Other,
}

impl Outcome {
    /// The outcome's name in the contract (`yrd.exchange.v1.ReferralOutcome`).
    pub fn contract_name(&self) -> &'static str {
        match self {
            Outcome::Rectified => "REFERRAL_OUTCOME_RECTIFIED",
            Outcome::Overturned => "REFERRAL_OUTCOME_OVERTURNED",
            Outcome::Penalized => "REFERRAL_OUTCOME_PENALIZED",
            Outcome::TransferredToJudicial => "REFERRAL_OUTCOME_TRANSFERRED_TO_JUDICIAL",
            Outcome::NoViolationFound => "REFERRAL_OUTCOME_NO_VIOLATION_FOUND",
            Outcome::Other => "REFERRAL_OUTCOME_OTHER",
        }
    }
}

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReferralState {
    /// Sent to the handling agency, not yet acknowledged.
    Opened,
    /// The handling agency acknowledged delivery (送达).
    Delivered,
    /// The handling agency is handling it.
    InProgress,
    /// Correction ordered (责令改正); the 60/75-day clocks run.
    Rectifying,
    /// An objection (异议/复检) is pending; the rectification clock is paused.
    ObjectionPending {
        /// The state to return to when the re-inspection confirms the result.
        resume: ResumeState,
    },
    /// The failure to correct was announced (逾期不改正公告); the 60–90-day second review runs.
    Announced,
    /// Returned by the handling agency as not its jurisdiction; the sampling agency reroutes.
    Returned,
    /// Finished.
    Closed(Outcome),
}

/// The states an objection can interrupt, and so the states it returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResumeState {
    /// See [`ReferralState::Opened`].
    Opened,
    /// See [`ReferralState::Delivered`].
    Delivered,
    /// See [`ReferralState::InProgress`].
    InProgress,
    /// See [`ReferralState::Rectifying`].
    Rectifying,
}

impl ResumeState {
    pub(super) fn state(self) -> ReferralState {
        match self {
            ResumeState::Opened => ReferralState::Opened,
            ResumeState::Delivered => ReferralState::Delivered,
            ResumeState::InProgress => ReferralState::InProgress,
            ResumeState::Rectifying => ReferralState::Rectifying,
        }
    }
}

impl ReferralState {
    /// The state's name in the contract (`yrd.exchange.v1.ReferralState`), e.g.
    /// `REFERRAL_STATE_RECTIFYING`: refusals name states as partners read them.
    pub fn contract_name(&self) -> &'static str {
        match self {
            ReferralState::Opened => "REFERRAL_STATE_OPENED",
            ReferralState::Delivered => "REFERRAL_STATE_DELIVERED",
            ReferralState::InProgress => "REFERRAL_STATE_IN_PROGRESS",
            ReferralState::Rectifying => "REFERRAL_STATE_RECTIFYING",
            ReferralState::ObjectionPending { .. } => "REFERRAL_STATE_OBJECTION_PENDING",
            ReferralState::Announced => "REFERRAL_STATE_ANNOUNCED",
            ReferralState::Returned => "REFERRAL_STATE_RETURNED",
            ReferralState::Closed(_) => "REFERRAL_STATE_CLOSED",
        }
    }

    /// The Chinese term an officer knows the state by, as the contract's comment gives it.
    pub fn chinese_term(&self) -> &'static str {
        match self {
            ReferralState::Opened => "已移送",
            ReferralState::Delivered => "已送达",
            ReferralState::InProgress => "处置中",
            ReferralState::Rectifying => "整改中",
            ReferralState::ObjectionPending { .. } => "异议/复检中",
            ReferralState::Announced => "已公告",
            ReferralState::Returned => "已退回",
            ReferralState::Closed(_) => "已办结",
        }
    }
}

/// The contract's name with the Chinese term beside it, e.g.
/// `REFERRAL_STATE_RECTIFYING (整改中)`; a pending objection also names the state it resumes,
/// a closed referral its outcome.
impl fmt::Display for ReferralState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.contract_name(), self.chinese_term())?;
        match self {
            ReferralState::ObjectionPending { resume } => {
                write!(f, ", resuming {}", resume.state().contract_name())?;
            }
            ReferralState::Closed(outcome) => write!(f, ", {}", outcome.contract_name())?,
            _ => {}
        }
        f.write_str(")")
    }
}
