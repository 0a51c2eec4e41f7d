//! The commands of a disposal referral and what they carry: review results, the measures
//! the handling agency records, and the reactions of other agencies.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::ids::AgencyId;
use crate::text::Remark;

use super::{Outcome, Party};

/// The result of a review (复查) or re-inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReviewResult {
    /// Conforming (合格).
    Conforming,
    /// Non-conforming (不合格).
    NonConforming,
}

/// A measure the handling agency records (docs/domain.md §"Disposal", Interim Measures ch. 6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Measure {
    /// Seal or seize non-conforming products (查封扣押).
    SealOrSeize,
    /// Order the seller to stop selling the same product (责令停止销售).
    StopSales,
    /// Delist the product from the online shop (下架).
    DelistOnline,
    /// Order the producer to stop producing and selling it (责令停止生产销售).
    StopProduction,
    /// Clear and dispose of stock (清理库存).
    ClearStock,
    /// Recall (召回).
    Recall,
    /// Order correction (责令改正); starts the 60-day correction and 75-day review clocks.
    OrderRectification {
        /// The day the order was made; the clocks count from it.
        ordered_on: Date,
    },
    /// Review after correction (复查).
    Review {
        /// Conforming allows closing as rectified; non-conforming requires the announcement.
        result: ReviewResult,
        /// The day of the review.
        reviewed_on: Date,
    },
    /// A case was filed (立案).
    CaseFiled,
    /// An administrative penalty was decided (行政处罚).
    AdministrativePenalty {
        /// The penalty decision number (处罚决定书文号).
        decision_number: Remark,
    },
    /// Transfer to the judicial authorities (移送司法机关).
    TransferToJudicial,
    /// The failure to correct was announced (公告); opens the 60–90-day second-review window.
    PublicAnnouncement {
        /// The day of the announcement.
        announced_on: Date,
    },
    /// The second review after the announcement (art. 48).
    SecondReview {
        /// Conforming allows closing as rectified; non-conforming requires suspension.
        result: ReviewResult,
        /// The day of the second review; not before day 60 after the announcement.
        reviewed_on: Date,
    },
    /// Order to suspend business and rectify (责令停业，限期整顿).
    SuspendBusiness,
    /// Revoke the business licence (吊销营业执照).
    RevokeBusinessLicence,
    /// Any other measure, described.
    Other {
        /// What was done.
        description: Remark,
    },
}

impl Measure {
    /// The measure's name with its Chinese term.
    pub fn label(&self) -> &'static str {
        match self {
            Measure::SealOrSeize => "seal or seize (查封扣押)",
            Measure::StopSales => "stop sales (责令停止销售)",
            Measure::DelistOnline => "delist online (下架)",
            Measure::StopProduction => "stop production and sales (责令停止生产销售)",
            Measure::ClearStock => "clear stock (清理库存)",
            Measure::Recall => "recall (召回)",
            Measure::OrderRectification { .. } => "order rectification (责令改正)",
            Measure::Review { .. } => "review (复查)",
            Measure::CaseFiled => "case filed (立案)",
            Measure::AdministrativePenalty { .. } => "administrative penalty (行政处罚)",
            Measure::TransferToJudicial => "transfer to judicial authorities (移送司法机关)",
            Measure::PublicAnnouncement { .. } => "public announcement (公告)",
            Measure::SecondReview { .. } => "second review (公告后复查)",
            Measure::SuspendBusiness => "suspend business (责令停业整顿)",
            Measure::RevokeBusinessLicence => "revoke business licence (吊销营业执照)",
            Measure::Other { .. } => "other measure",
        }
    }
}

/// What a third agency reports on a referral it is not party to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReactionKind {
    /// The same product was found on sale in the reacting agency's region.
    FoundOnSaleHere,
    /// The reacting agency took measures in its region.
    MeasuresTakenHere,
    /// Anything else worth sharing.
    Other,
}

/// A step asked of the referral machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferralCommand {
    /// Handling agency: delivery received (送达).
    Acknowledge,
    /// Handling agency: handling begins.
    StartHandling,
    /// Handling agency: a measure taken.
    RecordMeasure(Measure),
    /// Sampling agency: the producer's objection (异议) and re-inspection request.
    FileObjection {
        /// The day the producer received the result; the 15-day window counts from it.
        result_received_on: Date,
        /// The day the objection was filed; the rectification clock pauses from it.
        filed_on: Date,
    },
    /// Sampling agency: the re-inspection (复检) result.
    RecordReinspection {
        /// Conforming overturns the result and closes the referral.
        result: ReviewResult,
    },
    /// Handling agency: not our jurisdiction.
    Return {
        /// Why.
        reason: Remark,
        /// The agency that has jurisdiction, if known: the referral is re-routed to it.
        suggested_agency: Option<AgencyId>,
    },
    /// Sampling agency: send a returned referral to another agency.
    Reroute {
        /// The new handling agency.
        to: AgencyId,
    },
    /// Handling agency: close with an outcome.
    Close {
        /// How it ended.
        outcome: Outcome,
        /// A summary for the timeline.
        summary: Remark,
    },
    /// A third agency: a reaction, visible to all parties.
    AddReaction {
        /// What kind of reaction.
        kind: ReactionKind,
        /// The reaction.
        text: Remark,
    },
    /// Scheduler: flag the deadlines that passed.
    MarkOverdue,
}

impl ReferralCommand {
    /// The command's name, for refusals and logs: the `DisposalService` method that issues it
    /// (`CloseReferral`), as the contract names it; `MarkOverdue` is the exchange's own
    /// scheduler, which no partner calls.
    pub fn name(&self) -> &'static str {
        match self {
            ReferralCommand::Acknowledge => "AcknowledgeReferral",
            ReferralCommand::StartHandling => "StartHandling",
            ReferralCommand::RecordMeasure(_) => "RecordMeasure",
            ReferralCommand::FileObjection { .. } => "FileObjection",
            ReferralCommand::RecordReinspection { .. } => "RecordReinspection",
            ReferralCommand::Return { .. } => "ReturnReferral",
            ReferralCommand::Reroute { .. } => "RerouteReferral",
            ReferralCommand::Close { .. } => "CloseReferral",
            ReferralCommand::AddReaction { .. } => "AddReaction",
            ReferralCommand::MarkOverdue => "MarkOverdue",
        }
    }

    /// The one role that may issue this command.
    pub fn required_role(&self) -> Party {
        match self {
            ReferralCommand::Acknowledge
            | ReferralCommand::StartHandling
            | ReferralCommand::RecordMeasure(_)
            | ReferralCommand::Return { .. }
            | ReferralCommand::Close { .. } => Party::HandlingAgency,
            ReferralCommand::FileObjection { .. }
            | ReferralCommand::RecordReinspection { .. }
            | ReferralCommand::Reroute { .. } => Party::SamplingAgency,
            ReferralCommand::AddReaction { .. } => Party::OtherAgency,
            ReferralCommand::MarkOverdue => Party::Scheduler,
        }
    }
}
