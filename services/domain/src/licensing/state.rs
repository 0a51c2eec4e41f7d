//! The states of an application and their names in the contract and in Chinese. A leaf of
//! the module: the model, the commands and the refusals all name states.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApplicationState {
    /// Received at the accepting window.
    Submitted,
    /// Supplement requested (补正).
    SupplementRequested,
    /// Not accepted (不予受理); terminal.
    NotAccepted,
    /// Accepted (受理); the decision clock runs.
    Accepted,
    /// The issuing agency examines it.
    UnderReview,
    /// On-site verification delegated to the accepting agency (实地核查委托).
    VerificationDelegated,
    /// The verification report is in.
    VerificationReported,
    /// Product testing (产品检验); the decision clock is paused.
    Testing {
        /// Where the examination resumes.
        resume: TestingFrom,
    },
    /// Approved.
    Approved,
    /// Approved with conditions (附条件审批).
    ApprovedWithConditions,
    /// Refused; terminal.
    Refused,
    /// The licence was issued.
    LicenceIssued,
    /// The post-issue check (证后核查) of a commitment-based licence passed.
    PostIssueCheckPassed,
    /// Revoked after a failed post-issue check; terminal.
    Revoked,
}

/// The states testing can interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TestingFrom {
    /// See [`ApplicationState::UnderReview`].
    UnderReview,
    /// See [`ApplicationState::VerificationReported`].
    VerificationReported,
}

impl TestingFrom {
    pub(super) fn state(self) -> ApplicationState {
        match self {
            TestingFrom::UnderReview => ApplicationState::UnderReview,
            TestingFrom::VerificationReported => ApplicationState::VerificationReported,
        }
    }
}

impl ApplicationState {
    /// The state's name in the contract (`yrd.exchange.v1.ApplicationState`), e.g.
    /// `APPLICATION_STATE_UNDER_REVIEW`; testing shows as the state it interrupts, as on the wire.
    pub fn contract_name(&self) -> &'static str {
        match self {
            ApplicationState::Submitted => "APPLICATION_STATE_SUBMITTED",
            ApplicationState::SupplementRequested => "APPLICATION_STATE_SUPPLEMENT_REQUESTED",
            ApplicationState::NotAccepted => "APPLICATION_STATE_NOT_ACCEPTED",
            ApplicationState::Accepted => "APPLICATION_STATE_ACCEPTED",
            ApplicationState::UnderReview => "APPLICATION_STATE_UNDER_REVIEW",
            ApplicationState::VerificationDelegated => "APPLICATION_STATE_VERIFICATION_DELEGATED",
            ApplicationState::VerificationReported => "APPLICATION_STATE_VERIFICATION_REPORTED",
            ApplicationState::Testing { resume } => resume.state().contract_name(),
            ApplicationState::Approved => "APPLICATION_STATE_DECIDED_APPROVED",
            ApplicationState::ApprovedWithConditions => {
                "APPLICATION_STATE_DECIDED_APPROVED_WITH_CONDITIONS"
            }
            ApplicationState::Refused => "APPLICATION_STATE_REFUSED",
            ApplicationState::LicenceIssued => "APPLICATION_STATE_LICENCE_ISSUED",
            ApplicationState::PostIssueCheckPassed => "APPLICATION_STATE_POST_ISSUE_CHECK_PASSED",
            ApplicationState::Revoked => "APPLICATION_STATE_REVOKED",
        }
    }

    /// The Chinese term an officer knows the state by, as the contract's comment gives it.
    pub fn chinese_term(&self) -> &'static str {
        match self {
            ApplicationState::Submitted => "已提交",
            ApplicationState::SupplementRequested => "补正中",
            ApplicationState::NotAccepted => "不予受理",
            ApplicationState::Accepted => "已受理",
            ApplicationState::UnderReview => "审查中",
            ApplicationState::VerificationDelegated => "实地核查委托",
            ApplicationState::VerificationReported => "实地核查完成",
            ApplicationState::Testing { resume } => resume.state().chinese_term(),
            ApplicationState::Approved => "准予许可",
            ApplicationState::ApprovedWithConditions => "附条件准予许可",
            ApplicationState::Refused => "不予许可",
            ApplicationState::LicenceIssued => "已发证",
            ApplicationState::PostIssueCheckPassed => "证后核查通过",
            ApplicationState::Revoked => "撤销",
        }
    }
}

/// The contract's name with the Chinese term beside it, e.g.
/// `APPLICATION_STATE_SUBMITTED (已提交)`; during product testing, the state it interrupts with
/// the testing noted (the wire shows it so, with `clock_paused`).
impl fmt::Display for ApplicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.contract_name(), self.chinese_term())?;
        if let ApplicationState::Testing { .. } = self {
            f.write_str(", product testing 产品检验 under way")?;
        }
        f.write_str(")")
    }
}
