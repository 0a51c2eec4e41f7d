//! The commands of the licensing procedure, the decision a command carries, and which party
//! may issue each command.

use serde::{Deserialize, Serialize};

use time::Date;

use crate::referral::Remark;

use super::{ItemList, LicenceChange, Party, Serial, VerifierCount};

/// A licensing decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Approve (准予许可).
    Approve,
    /// Approve with conditions to be met by a date (附条件审批).
    ApproveWithConditions {
        /// The conditions.
        conditions: ItemList,
        /// The day by which they must be met.
        due: Date,
    },
    /// Refuse (不予许可).
    Refuse {
        /// Why.
        reason: Remark,
    },
}

/// A step asked of the application machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LicensingCommand {
    /// Issuing agency: accept (受理).
    Accept,
    /// Issuing agency: one notice of everything to supplement (补正).
    RequestSupplement {
        /// What is missing.
        missing: ItemList,
    },
    /// Issuing agency: not accepted (不予受理).
    NotAccept {
        /// Why.
        reason: Remark,
    },
    /// Accepting agency: the applicant supplied what was missing.
    RecordSupplement,
    /// Issuing agency: start the examination.
    StartReview,
    /// Issuing agency: delegate on-site verification to the accepting agency.
    DelegateVerification,
    /// The verifying agency: the verification report.
    ReportVerification {
        /// How many verifiers.
        verifiers: VerifierCount,
        /// Whether the site passed.
        passed: bool,
    },
    /// Issuing agency: samples went for product testing.
    StartTesting,
    /// Issuing agency: the test result.
    RecordTestResult {
        /// Whether the product conformed.
        conforming: bool,
    },
    /// Issuing agency: extend the decision limit once by 10 working days.
    ExtendDecisionLimit,
    /// Issuing agency: the decision.
    Decide(Decision),
    /// Issuing agency: issue the licence with the serial the store assigned.
    IssueLicence {
        /// The enterprise serial.
        serial: Serial,
    },
    /// Issuing agency: the conditions of a conditional approval are met.
    ConfirmConditionsMet,
    /// Issuing agency: the post-issue check of a commitment-based licence.
    RecordPostIssueCheck {
        /// Passed; failed revokes the licence.
        passed: bool,
    },
    /// Issuing agency: linked change after a business-licence change (营业执照联动变更).
    ChangeLicence(LicenceChange),
    /// Scheduler: flag deadlines that passed; deems a late application accepted.
    MarkOverdue,
}

impl LicensingCommand {
    /// The command's name, for refusals and logs: the `LicensingService` method that issues it
    /// (`AcceptApplication`), as the contract names it; `MarkOverdue` is the exchange's own
    /// scheduler, which no partner calls.
    pub fn name(&self) -> &'static str {
        match self {
            LicensingCommand::Accept => "AcceptApplication",
            LicensingCommand::RequestSupplement { .. } => "RequestSupplement",
            LicensingCommand::NotAccept { .. } => "RejectApplication",
            LicensingCommand::RecordSupplement => "SupplementApplication",
            LicensingCommand::StartReview => "StartReview",
            LicensingCommand::DelegateVerification => "DelegateVerification",
            LicensingCommand::ReportVerification { .. } => "SubmitVerificationReport",
            LicensingCommand::StartTesting => "RecordTesting",
            LicensingCommand::RecordTestResult { .. } => "RecordTesting",
            LicensingCommand::ExtendDecisionLimit => "ExtendTimeLimit",
            LicensingCommand::Decide(_) => "DecideApplication",
            LicensingCommand::IssueLicence { .. } => "IssueLicence",
            LicensingCommand::ConfirmConditionsMet => "ConfirmConditions",
            LicensingCommand::RecordPostIssueCheck { .. } => "RecordPostIssueCheck",
            LicensingCommand::ChangeLicence(_) => "ChangeLicence",
            LicensingCommand::MarkOverdue => "MarkOverdue",
        }
    }

    /// Whether `role` may issue this command at all (the state may narrow it further).
    pub fn permits(&self, role: Party) -> bool {
        use LicensingCommand as C;
        match self {
            // The window hands in what the applicant supplies; the issuing province decides
            // on acceptance (see the module docs).
            C::RecordSupplement => role == Party::AcceptingAgency,
            C::ReportVerification { .. } => {
                matches!(role, Party::AcceptingAgency | Party::IssuingAgency)
            }
            C::MarkOverdue => role == Party::Scheduler,
            _ => role == Party::IssuingAgency,
        }
    }
}
