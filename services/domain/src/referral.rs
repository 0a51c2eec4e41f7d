//! The state machine of a disposal referral (不合格产品联动处置).
//!
//! When a spot-check finds a non-conforming product made outside the sampling agency's
//! region, the agency with jurisdiction over the producer (or the seller) must handle it
//! (Interim Measures art. 44), while the sampling agency follows every step. The rules of that
//! hand-over — who may do what, in which order, by when — are the exchange's business core, so
//! they live here as data and one pure function, [`apply`], that the disposal service calls
//! inside its transaction and that a table test covers state by command.
//!
//! Choices where docs/domain.md is silent, each following the statute:
//!
//! * **Parties are distinct.** A referral is a hand-over between two agencies; the handling
//!   agency may never be the sampling agency (a sampling agency handles its own region's
//!   cases itself, or names the district bureau that does).
//! * **Objections go to the sampling agency.** The Interim Measures (art. 34) have the
//!   producer apply for re-inspection to the agency that organised the spot check, so the
//!   sampling agency records the objection and the re-inspection. The 15-day window counts
//!   calendar days from the producer's receipt of the result (产品质量法 art. 15), and a
//!   re-inspection is final, so a second objection is refused.
//! * **Calendar-day periods end on a working day** (民法典 art. 203): a 60-day correction
//!   period whose last day is a Sunday ends on the Monday.
//! * **Announcement.** As docs/domain.md says, the exchange flags the referral for the
//!   announcement (逾期不改正公告) when the review fails or the 75-day review deadline passes
//!   without a conforming review; a missed 60-day correction deadline raises an overdue event
//!   only, because the agency may still review conforming before day 75.
//! * **Reactions** (as in the EU Safety Gate) are accepted in every state, closed included:
//!   "the same product is on sale here" matters after closure too, and adds no obligation.
//! * **[`ReferralCommand::MarkOverdue`]** is accepted only when something *newly* passed its
//!   deadline, so a scheduler that runs twice raises each overdue event once.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::calendar::{CalendarError, Deadline, DeadlineKind, WorkingCalendar, china_date};
use crate::ids::AgencyId;

/// Correction period in calendar days from the order (Interim Measures art. 46).
pub const CORRECTION_DAYS: i64 = 60;
/// Review period in calendar days from the order (Interim Measures art. 47).
pub const REVIEW_DAYS: i64 = 75;
/// Earliest second review, calendar days after the announcement (Interim Measures art. 48).
pub const SECOND_REVIEW_EARLIEST_DAYS: i64 = 60;
/// Latest second review, calendar days after the announcement (Interim Measures art. 48).
pub const SECOND_REVIEW_LATEST_DAYS: i64 = 90;
/// Objection window in calendar days from the producer's receipt of the result (产品质量法 art. 15).
pub const OBJECTION_DAYS: i64 = 15;

/// A piece of free text a party supplies (a reason, a summary, a decision number): trimmed,
/// not empty, at most [`Remark::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Remark(String);

/// Why a [`Remark`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The text is empty or only whitespace.
    #[error("{field} must not be empty")]
    Empty {
        /// The field that was empty.
        field: &'static str,
    },
    /// The text is longer than allowed.
    #[error("{field} must be at most {max} characters, got {len}")]
    TooLong {
        /// The field that was too long.
        field: &'static str,
        /// The maximum number of characters.
        max: usize,
        /// The number of characters given.
        len: usize,
    },
}

impl Remark {
    /// The longest text accepted, in characters.
    pub const MAX_CHARS: usize = 4000;

    /// Parses `text` given for `field` (the field name goes into the error).
    pub fn parse(field: &'static str, text: &str) -> Result<Self, TextError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(TextError::Empty { field });
        }
        let len = trimmed.chars().count();
        if len > Self::MAX_CHARS {
            return Err(TextError::TooLong {
                field,
                max: Self::MAX_CHARS,
                len,
            });
        }
        Ok(Remark(trimmed.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Remark {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Remark::parse("text", &s)
    }
}

impl From<Remark> for String {
    fn from(r: Remark) -> Self {
        r.0
    }
}

impl fmt::Display for Remark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// Why the handling agency has jurisdiction over a referred result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JurisdictionBasis {
    /// The nominal producer lies in the handling agency's area (Interim Measures art. 44).
    Producer,
    /// The sampled seller lies there (for the seller's own obligations).
    Seller,
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
    fn state(self) -> ReferralState {
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
    pub fn required_role(&self) -> Role {
        match self {
            ReferralCommand::Acknowledge
            | ReferralCommand::StartHandling
            | ReferralCommand::RecordMeasure(_)
            | ReferralCommand::Return { .. }
            | ReferralCommand::Close { .. } => Role::HandlingAgency,
            ReferralCommand::FileObjection { .. }
            | ReferralCommand::RecordReinspection { .. }
            | ReferralCommand::Reroute { .. } => Role::SamplingAgency,
            ReferralCommand::AddReaction { .. } => Role::OtherAgency,
            ReferralCommand::MarkOverdue => Role::Scheduler,
        }
    }
}

/// Who is calling: an agency (from its certificate) or the exchange's own scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A partner agency's system.
    Agency(AgencyId),
    /// The exchange's deadline scheduler.
    Scheduler,
}

/// What an actor is to a given referral, derived from the referral and the caller's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The agency that organised the spot check.
    SamplingAgency,
    /// The agency with jurisdiction that handles the result.
    HandlingAgency,
    /// Any other agency: may react, nothing more.
    OtherAgency,
    /// The exchange's scheduler.
    Scheduler,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::SamplingAgency => "the referral's sampling agency",
            Role::HandlingAgency => "the referral's handling agency",
            Role::OtherAgency => "an agency not party to the referral",
            Role::Scheduler => "the exchange's deadline scheduler",
        })
    }
}

/// The rules a deployment configures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralRules {
    /// The working-day calendar.
    pub calendar: WorkingCalendar,
    /// Working days the handling agency has to acknowledge delivery (default 2).
    pub acknowledgement_working_days: u32,
}

impl Default for ReferralRules {
    fn default() -> Self {
        ReferralRules {
            calendar: WorkingCalendar::weekends_only(),
            acknowledgement_working_days: 2,
        }
    }
}

/// The referral's clocks. Correction and review count from the order plus the days paused
/// by an objection, so they are recomputed rather than shifted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralDeadlines {
    /// Acknowledgement of delivery, while `Opened`.
    pub acknowledgement: Option<Deadline>,
    /// The day correction was ordered.
    pub rectification_ordered_on: Option<Date>,
    /// The 60-day correction deadline.
    pub correction: Option<Deadline>,
    /// The 75-day review deadline.
    pub review: Option<Deadline>,
    /// The first day the second review may happen (day 60 after the announcement).
    pub second_review_opens: Option<Date>,
    /// The last day of the second review (day 90 after the announcement).
    pub second_review: Option<Deadline>,
    /// The last day of the objection window (异议期): 15 calendar days from the first
    /// delivery (送达), ending on a working day. See [`Referral::open_objection_window`].
    #[serde(default)]
    pub objection_window_closes: Option<Date>,
}

/// Facts the machine's preconditions depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralFlags {
    /// Deadlines already flagged overdue (each raises its event once).
    pub overdue: BTreeSet<DeadlineKind>,
    /// The review failed or its deadline passed: the announcement (逾期不改正公告) is due.
    pub announcement_required: bool,
    /// The review result, once recorded.
    pub review: Option<ReviewResult>,
    /// The second-review result, once recorded.
    pub second_review: Option<ReviewResult>,
    /// The second review failed: suspension (责令停业整顿) is due.
    pub suspension_required: bool,
    /// Business suspension was ordered.
    pub suspension_ordered: bool,
    /// A case was filed.
    pub case_filed: bool,
    /// An administrative penalty was decided.
    pub penalty_decided: bool,
    /// Transferred to the judicial authorities.
    pub transferred_to_judicial: bool,
    /// An objection was decided; re-inspection is final, so no second objection.
    pub objection_decided: bool,
}

/// The data of a referral that the machine needs. The service stores it with the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    /// Where it stands.
    pub state: ReferralState,
    /// The agency that organised the spot check.
    pub sampling_agency: AgencyId,
    /// The agency that handles it now.
    pub handling_agency: AgencyId,
    /// The day it was opened.
    pub opened_on: Date,
    /// Its clocks.
    pub deadlines: ReferralDeadlines,
    /// Facts preconditions depend on.
    pub flags: ReferralFlags,
    /// The first day of a pending objection's pause.
    pub paused_since: Option<Date>,
    /// Calendar days the rectification clock has been paused in total.
    pub paused_days: i64,
    /// Agencies that reacted; they are told of every later step.
    pub reacting_agencies: BTreeSet<AgencyId>,
    /// Number of timeline entries (the opening is entry 1).
    pub timeline_len: u32,
}

/// What happened, for the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferralEventKind {
    /// A referral was opened or rerouted to the handling agency.
    Opened,
    /// Delivery was acknowledged.
    Acknowledged,
    /// Handling started.
    HandlingStarted,
    /// A measure was recorded.
    MeasureRecorded(Measure),
    /// An objection was filed; the clock is paused.
    ObjectionFiled,
    /// The re-inspection result was recorded.
    ReinspectionRecorded(ReviewResult),
    /// Returned as not the handling agency's jurisdiction.
    Returned,
    /// Sent to another handling agency.
    Rerouted {
        /// The agency it left.
        from: AgencyId,
        /// The agency it went to.
        to: AgencyId,
    },
    /// Closed.
    Closed(Outcome),
    /// A third agency reacted.
    ReactionAdded(ReactionKind),
    /// A deadline passed.
    Overdue(Deadline),
    /// The announcement (逾期不改正公告) is now required.
    AnnouncementRequired,
}

/// One feed event and the agencies that must be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralEvent {
    /// What happened.
    pub kind: ReferralEventKind,
    /// Who must be told: the parties and reacting agencies, except the one that acted.
    pub notify: Vec<AgencyId>,
}

/// An accepted step: the referral after it, and the events to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The referral after the step.
    pub new_state: Referral,
    /// The feed events of the step, in order.
    pub events: Vec<ReferralEvent>,
}

/// Why the gateway must refuse a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The actor's role may not issue the command (PERMISSION_DENIED).
    #[error("{command} is reserved to {required}; the caller is {role}")]
    NotPermitted {
        /// The actor's role.
        role: Role,
        /// The role the command needs.
        required: Role,
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
        role: Role,
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

impl Referral {
    /// Opens a referral from `sampling` to `handling` at `now`, with the acknowledgement clock
    /// running. Refused when the two are the same agency.
    pub fn open(
        sampling: AgencyId,
        handling: AgencyId,
        now: OffsetDateTime,
        rules: &ReferralRules,
    ) -> Result<Transition, Refusal> {
        let today = china_date(now);
        let refuse = |reason| Refusal::Precondition {
            state: ReferralState::Opened,
            command: "CreateReferral",
            reason,
        };
        if sampling == handling {
            return Err(refuse(Unmet::AlreadyParty {
                agency: handling,
                role: Role::SamplingAgency,
            }));
        }
        let due = rules
            .calendar
            .add_working_days(today, rules.acknowledgement_working_days)
            .map_err(|e| refuse(e.into()))?;
        let referral = Referral {
            state: ReferralState::Opened,
            sampling_agency: sampling,
            handling_agency: handling.clone(),
            opened_on: today,
            deadlines: ReferralDeadlines {
                acknowledgement: Some(Deadline::new(DeadlineKind::Acknowledgement, due)),
                ..ReferralDeadlines::default()
            },
            flags: ReferralFlags::default(),
            paused_since: None,
            paused_days: 0,
            reacting_agencies: BTreeSet::new(),
            timeline_len: 1,
        };
        Ok(Transition {
            new_state: referral,
            events: vec![ReferralEvent {
                kind: ReferralEventKind::Opened,
                notify: vec![handling],
            }],
        })
    }

    /// The role of `actor` on this referral.
    pub fn role_of(&self, actor: &Actor) -> Role {
        match actor {
            Actor::Scheduler => Role::Scheduler,
            Actor::Agency(a) if *a == self.handling_agency => Role::HandlingAgency,
            Actor::Agency(a) if *a == self.sampling_agency => Role::SamplingAgency,
            Actor::Agency(_) => Role::OtherAgency,
        }
    }

    /// The deadlines still running in the current state, met or not, flagged or not.
    fn running_deadlines(&self) -> Vec<Deadline> {
        let d = &self.deadlines;
        match self.state {
            ReferralState::Opened => d.acknowledgement.into_iter().collect(),
            ReferralState::Rectifying if self.flags.review.is_none() => {
                d.correction.into_iter().chain(d.review).collect()
            }
            ReferralState::Announced if self.flags.second_review.is_none() => {
                d.second_review.into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// The last day of the objection window (异议/复检申请期, 产品质量法 art. 15) while it is
    /// open on `today`: from delivery (送达) until that day, and only while an objection may
    /// still be filed (delivered, in progress or rectifying, no objection filed or decided).
    ///
    /// The window is the producer's or seller's period, not a step any agency owes, so it is
    /// never a running deadline: it is not flagged overdue, raises no event and is not the
    /// [`Referral::next_deadline`]; it simply stops being listed. The exchange counts it from
    /// the delivery it records, the closest fact it has to the party's receipt of the result;
    /// `FileObjection` checks the real window against the receipt date the objection states.
    pub fn open_objection_window(&self, today: Date) -> Option<Date> {
        let accepts_objection = matches!(
            self.state,
            ReferralState::Delivered | ReferralState::InProgress | ReferralState::Rectifying
        );
        if !accepts_objection || self.flags.objection_decided {
            return None;
        }
        self.deadlines
            .objection_window_closes
            .filter(|last_day| today <= *last_day)
    }

    /// The earliest running deadline not yet flagged overdue. None while an objection pauses
    /// the clock or when nothing is due.
    pub fn next_deadline(&self) -> Option<Deadline> {
        self.running_deadlines()
            .into_iter()
            .filter(|d| !self.flags.overdue.contains(&d.kind))
            .min_by_key(|d| d.due)
    }

    /// Everyone to tell about a step by `actor`: both parties and the reacting agencies,
    /// except the actor itself.
    fn audience(&self, actor: &Actor) -> Vec<AgencyId> {
        let mut all: BTreeSet<AgencyId> = self.reacting_agencies.clone();
        all.insert(self.sampling_agency.clone());
        all.insert(self.handling_agency.clone());
        if let Actor::Agency(a) = actor {
            all.remove(a);
        }
        all.into_iter().collect()
    }

    /// Sets correction and review from the order date and the days paused so far.
    fn recompute_rectification_clock(&mut self, rules: &ReferralRules) -> Result<(), Unmet> {
        if let Some(ordered_on) = self.deadlines.rectification_ordered_on {
            let cal = &rules.calendar;
            let correction =
                cal.calendar_deadline(ordered_on, CORRECTION_DAYS + self.paused_days)?;
            let review = cal.calendar_deadline(ordered_on, REVIEW_DAYS + self.paused_days)?;
            self.deadlines.correction = Some(Deadline::new(DeadlineKind::Correction, correction));
            self.deadlines.review = Some(Deadline::new(DeadlineKind::Review, review));
        }
        Ok(())
    }

    /// Hands the referral to a new handling agency: back to `Opened` with a fresh
    /// acknowledgement clock.
    fn hand_to(&mut self, to: AgencyId, today: Date, rules: &ReferralRules) -> Result<(), Unmet> {
        let due = rules
            .calendar
            .add_working_days(today, rules.acknowledgement_working_days)?;
        self.handling_agency = to;
        self.reacting_agencies.remove(&self.handling_agency);
        self.state = ReferralState::Opened;
        self.deadlines.acknowledgement = Some(Deadline::new(DeadlineKind::Acknowledgement, due));
        self.flags.overdue.remove(&DeadlineKind::Acknowledgement);
        Ok(())
    }

    /// Refuses `candidate` as handling agency when it is already the sampling or handling one.
    fn check_new_handler(&self, candidate: &AgencyId) -> Result<(), Unmet> {
        if *candidate == self.sampling_agency {
            return Err(Unmet::AlreadyParty {
                agency: candidate.clone(),
                role: Role::SamplingAgency,
            });
        }
        if *candidate == self.handling_agency {
            return Err(Unmet::AlreadyParty {
                agency: candidate.clone(),
                role: Role::HandlingAgency,
            });
        }
        Ok(())
    }
}

/// The contract's field that dates a measure, named in refusals of its date.
const OCCUR_TIME: &str = "measure.occur_time";

fn not_after_today(field: &'static str, date: Date, today: Date) -> Result<(), Unmet> {
    if date > today {
        return Err(Unmet::DateInFuture { field, date, today });
    }
    Ok(())
}

fn not_before(field: &'static str, date: Date, earliest: Date) -> Result<(), Unmet> {
    if date < earliest {
        return Err(Unmet::DateTooEarly {
            field,
            date,
            earliest,
        });
    }
    Ok(())
}

/// Applies `command` by `actor` at `now` to `referral`. Checks, in order: the actor's role,
/// the state, then the command's own conditions. Pure: the caller persists the result.
pub fn apply(
    referral: &Referral,
    command: &ReferralCommand,
    actor: &Actor,
    now: OffsetDateTime,
    rules: &ReferralRules,
) -> Result<Transition, Refusal> {
    let role = referral.role_of(actor);
    let required = command.required_role();
    if role != required {
        return Err(Refusal::NotPermitted {
            role,
            required,
            command: command.name(),
        });
    }
    let state = referral.state;
    let illegal = || Refusal::IllegalInState {
        state,
        command: command.name(),
    };
    let unmet = |reason: Unmet| Refusal::Precondition {
        state,
        command: command.name(),
        reason,
    };
    let today = china_date(now);
    let mut next = referral.clone();
    let mut kinds: Vec<ReferralEventKind> = Vec::new();
    // Most steps are told to everyone but the actor; rerouting also tells the agency left.
    let mut extra_audience: Vec<AgencyId> = Vec::new();

    use ReferralState as S;
    match command {
        ReferralCommand::Acknowledge => {
            if state != S::Opened {
                return Err(illegal());
            }
            next.state = S::Delivered;
            next.deadlines.acknowledgement = None;
            // The window counts from the first delivery: a reroute does not give the party a
            // new one.
            if next.deadlines.objection_window_closes.is_none() {
                let last_day = rules
                    .calendar
                    .calendar_deadline(today, OBJECTION_DAYS)
                    .map_err(|e| unmet(e.into()))?;
                next.deadlines.objection_window_closes = Some(last_day);
            }
            next.flags.overdue.remove(&DeadlineKind::Acknowledgement);
            kinds.push(ReferralEventKind::Acknowledged);
        }
        ReferralCommand::StartHandling => {
            if state != S::Delivered {
                return Err(illegal());
            }
            next.state = S::InProgress;
            kinds.push(ReferralEventKind::HandlingStarted);
        }
        ReferralCommand::RecordMeasure(measure) => {
            if !matches!(state, S::InProgress | S::Rectifying | S::Announced) {
                return Err(illegal());
            }
            record_measure(&mut next, measure, today, rules).map_err(unmet)?;
            kinds.push(ReferralEventKind::MeasureRecorded(measure.clone()));
        }
        ReferralCommand::FileObjection {
            result_received_on,
            filed_on,
        } => {
            let resume = match state {
                S::Opened => ResumeState::Opened,
                S::Delivered => ResumeState::Delivered,
                S::InProgress => ResumeState::InProgress,
                S::Rectifying => ResumeState::Rectifying,
                _ => return Err(illegal()),
            };
            if referral.flags.objection_decided {
                return Err(unmet(Unmet::ObjectionAlreadyDecided));
            }
            let field = "objection.received_date";
            not_after_today(field, *filed_on, today).map_err(unmet)?;
            not_before(field, *filed_on, *result_received_on).map_err(unmet)?;
            let last_day = rules
                .calendar
                .calendar_deadline(*result_received_on, OBJECTION_DAYS)
                .map_err(|e| unmet(e.into()))?;
            if *filed_on > last_day {
                return Err(unmet(Unmet::ObjectionWindowClosed { last_day }));
            }
            next.state = S::ObjectionPending { resume };
            // The clock can only pause once it runs: never before the order.
            let since = match referral.deadlines.rectification_ordered_on {
                Some(ordered) if ordered > *filed_on => ordered,
                _ => *filed_on,
            };
            next.paused_since = Some(since);
            kinds.push(ReferralEventKind::ObjectionFiled);
        }
        ReferralCommand::RecordReinspection { result } => {
            let S::ObjectionPending { resume } = state else {
                return Err(illegal());
            };
            next.flags.objection_decided = true;
            let since = next.paused_since.take().unwrap_or(today);
            match result {
                ReviewResult::Conforming => next.state = S::Closed(Outcome::Overturned),
                ReviewResult::NonConforming => {
                    next.state = resume.state();
                    next.paused_days += (today - since).whole_days().max(0);
                    next.recompute_rectification_clock(rules).map_err(unmet)?;
                    // A deadline that moved past today is no longer overdue.
                    for d in [next.deadlines.correction, next.deadlines.review]
                        .into_iter()
                        .flatten()
                    {
                        if !d.is_overdue(today) {
                            next.flags.overdue.remove(&d.kind);
                        }
                    }
                }
            }
            kinds.push(ReferralEventKind::ReinspectionRecorded(*result));
        }
        ReferralCommand::Return {
            reason: _,
            suggested_agency,
        } => {
            if !matches!(state, S::Opened | S::Delivered | S::InProgress) {
                return Err(illegal());
            }
            match suggested_agency {
                Some(to) => {
                    referral.check_new_handler(to).map_err(unmet)?;
                    let from = referral.handling_agency.clone();
                    next.hand_to(to.clone(), today, rules).map_err(unmet)?;
                    kinds.push(ReferralEventKind::Returned);
                    kinds.push(ReferralEventKind::Rerouted {
                        from,
                        to: to.clone(),
                    });
                }
                None => {
                    next.state = S::Returned;
                    next.deadlines.acknowledgement = None;
                    kinds.push(ReferralEventKind::Returned);
                }
            }
        }
        ReferralCommand::Reroute { to } => {
            if state != S::Returned {
                return Err(illegal());
            }
            if *to == referral.sampling_agency {
                return Err(unmet(Unmet::AlreadyParty {
                    agency: to.clone(),
                    role: Role::SamplingAgency,
                }));
            }
            let from = referral.handling_agency.clone();
            next.hand_to(to.clone(), today, rules).map_err(unmet)?;
            extra_audience.push(from.clone());
            kinds.push(ReferralEventKind::Rerouted {
                from,
                to: to.clone(),
            });
        }
        ReferralCommand::Close {
            outcome,
            summary: _,
        } => {
            if !matches!(state, S::InProgress | S::Rectifying | S::Announced) {
                return Err(illegal());
            }
            check_closable(referral, *outcome).map_err(unmet)?;
            next.state = S::Closed(*outcome);
            kinds.push(ReferralEventKind::Closed(*outcome));
        }
        ReferralCommand::AddReaction { kind, text: _ } => {
            if let Actor::Agency(a) = actor {
                next.reacting_agencies.insert(a.clone());
            }
            kinds.push(ReferralEventKind::ReactionAdded(*kind));
        }
        ReferralCommand::MarkOverdue => {
            match state {
                S::Opened | S::Rectifying | S::Announced => {}
                S::ObjectionPending { .. } => return Err(unmet(Unmet::ClockPaused)),
                _ => return Err(illegal()),
            }
            let newly: Vec<Deadline> = referral
                .running_deadlines()
                .into_iter()
                .filter(|d| d.is_overdue(today) && !referral.flags.overdue.contains(&d.kind))
                .collect();
            if newly.is_empty() {
                return Err(unmet(Unmet::NothingOverdue {
                    next: referral.next_deadline(),
                }));
            }
            for d in newly {
                next.flags.overdue.insert(d.kind);
                kinds.push(ReferralEventKind::Overdue(d));
                if d.kind == DeadlineKind::Review && !next.flags.announcement_required {
                    next.flags.announcement_required = true;
                    kinds.push(ReferralEventKind::AnnouncementRequired);
                }
            }
        }
    }

    let mut notify = next.audience(actor);
    for a in extra_audience {
        if !notify.contains(&a) {
            notify.push(a);
        }
    }
    next.timeline_len += 1;
    let events = kinds
        .into_iter()
        .map(|kind| ReferralEvent {
            kind,
            notify: notify.clone(),
        })
        .collect();
    Ok(Transition {
        new_state: next,
        events,
    })
}

/// The effect of a measure on the referral (state already checked to be InProgress,
/// Rectifying or Announced).
fn record_measure(
    next: &mut Referral,
    measure: &Measure,
    today: Date,
    rules: &ReferralRules,
) -> Result<(), Unmet> {
    use ReferralState as S;
    let label = measure.label();
    match measure {
        Measure::SealOrSeize
        | Measure::StopSales
        | Measure::DelistOnline
        | Measure::StopProduction
        | Measure::ClearStock
        | Measure::Recall
        | Measure::Other { .. } => {}
        Measure::CaseFiled => next.flags.case_filed = true,
        Measure::AdministrativePenalty { .. } => next.flags.penalty_decided = true,
        Measure::TransferToJudicial => next.flags.transferred_to_judicial = true,
        Measure::RevokeBusinessLicence => {}
        Measure::SuspendBusiness => {
            next.flags.suspension_ordered = true;
            next.flags.suspension_required = false;
        }
        Measure::OrderRectification { ordered_on } => {
            if let Some(ordered_on) = next.deadlines.rectification_ordered_on {
                return Err(Unmet::RectificationAlreadyOrdered { ordered_on });
            }
            not_after_today(OCCUR_TIME, *ordered_on, today)?;
            not_before(OCCUR_TIME, *ordered_on, next.opened_on)?;
            next.deadlines.rectification_ordered_on = Some(*ordered_on);
            next.recompute_rectification_clock(rules)?;
            next.state = S::Rectifying;
        }
        Measure::Review {
            result,
            reviewed_on,
        } => {
            let Some(ordered_on) = next.deadlines.rectification_ordered_on else {
                return Err(Unmet::RectificationNotOrdered { measure: label });
            };
            if next.flags.review.is_some() {
                return Err(Unmet::AlreadyRecorded { measure: label });
            }
            not_after_today(OCCUR_TIME, *reviewed_on, today)?;
            not_before(OCCUR_TIME, *reviewed_on, ordered_on)?;
            next.flags.review = Some(*result);
            if *result == ReviewResult::NonConforming {
                next.flags.announcement_required = true;
            }
        }
        Measure::PublicAnnouncement { announced_on } => {
            if next.state != S::Rectifying {
                return Err(match next.deadlines.rectification_ordered_on {
                    None => Unmet::RectificationNotOrdered { measure: label },
                    Some(_) => Unmet::AlreadyRecorded { measure: label },
                });
            }
            if !next.flags.announcement_required {
                return Err(Unmet::AnnouncementNotRequired);
            }
            not_after_today(OCCUR_TIME, *announced_on, today)?;
            let cal = &rules.calendar;
            let opens =
                WorkingCalendar::add_calendar_days(*announced_on, SECOND_REVIEW_EARLIEST_DAYS)?;
            let due = cal.calendar_deadline(*announced_on, SECOND_REVIEW_LATEST_DAYS)?;
            next.deadlines.second_review_opens = Some(opens);
            next.deadlines.second_review = Some(Deadline::new(DeadlineKind::SecondReview, due));
            next.state = S::Announced;
        }
        Measure::SecondReview {
            result,
            reviewed_on,
        } => {
            let (S::Announced, Some(opens)) = (next.state, next.deadlines.second_review_opens)
            else {
                return Err(Unmet::NotAnnounced { measure: label });
            };
            if next.flags.second_review.is_some() {
                return Err(Unmet::AlreadyRecorded { measure: label });
            }
            not_after_today(OCCUR_TIME, *reviewed_on, today)?;
            if *reviewed_on < opens {
                return Err(Unmet::SecondReviewTooEarly { opens });
            }
            next.flags.second_review = Some(*result);
            if *result == ReviewResult::NonConforming {
                next.flags.suspension_required = true;
            }
        }
    }
    Ok(())
}

/// Whether the referral may close with `outcome` (state already checked).
fn check_closable(referral: &Referral, outcome: Outcome) -> Result<(), Unmet> {
    let f = &referral.flags;
    match outcome {
        Outcome::Rectified => {
            let conforming = f.review == Some(ReviewResult::Conforming)
                || f.second_review == Some(ReviewResult::Conforming);
            if !conforming {
                return Err(Unmet::NoConformingReview);
            }
        }
        Outcome::Overturned => return Err(Unmet::OverturnedOnlyByReinspection),
        Outcome::Penalized if !f.penalty_decided => return Err(Unmet::NoPenaltyRecorded),
        Outcome::TransferredToJudicial if !f.transferred_to_judicial => {
            return Err(Unmet::NoTransferRecorded);
        }
        Outcome::NoViolationFound if referral.deadlines.rectification_ordered_on.is_some() => {
            return Err(Unmet::ViolationEstablished);
        }
        Outcome::Penalized
        | Outcome::TransferredToJudicial
        | Outcome::NoViolationFound
        | Outcome::Other => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::{date, offset};

    // Monday 4 March 2024 is day 0.
    const BASE: Date = date!(2024 - 03 - 04);

    fn day(n: i64) -> Date {
        BASE + Duration::days(n)
    }

    /// 10:00 in Beijing on day `n`.
    fn at(n: i64) -> OffsetDateTime {
        day(n)
            .with_hms(10, 0, 0)
            .unwrap()
            .assume_offset(offset!(+8))
    }

    fn agency(id: &str) -> AgencyId {
        AgencyId::parse(id).unwrap()
    }
    fn shanghai() -> AgencyId {
        agency("310000-SAMR")
    }
    fn shandong() -> AgencyId {
        agency("370000-AMR")
    }
    fn jiangsu() -> AgencyId {
        agency("320000-AMR")
    }
    fn zhejiang() -> AgencyId {
        agency("330000-AMR")
    }
    fn text(s: &str) -> Remark {
        Remark::parse("text", s).unwrap()
    }

    fn rules() -> ReferralRules {
        ReferralRules::default()
    }

    /// The actor holding the role `command` needs on `r`.
    fn rightful(r: &Referral, command: &ReferralCommand) -> Actor {
        match command.required_role() {
            Role::HandlingAgency => Actor::Agency(r.handling_agency.clone()),
            Role::SamplingAgency => Actor::Agency(r.sampling_agency.clone()),
            Role::OtherAgency => Actor::Agency(jiangsu()),
            Role::Scheduler => Actor::Scheduler,
        }
    }

    fn run(r: &Referral, command: ReferralCommand, n: i64) -> Result<Transition, Refusal> {
        apply(r, &command, &rightful(r, &command), at(n), &rules())
    }

    fn step(r: &Referral, command: ReferralCommand, n: i64) -> Referral {
        match run(r, command.clone(), n) {
            Ok(t) => t.new_state,
            Err(e) => panic!("{command:?} on day {n}: {e}"),
        }
    }

    fn measure(m: Measure) -> ReferralCommand {
        ReferralCommand::RecordMeasure(m)
    }

    fn opened() -> Referral {
        Referral::open(shanghai(), shandong(), at(0), &rules())
            .unwrap()
            .new_state
    }
    fn delivered() -> Referral {
        step(&opened(), ReferralCommand::Acknowledge, 0)
    }
    fn in_progress() -> Referral {
        step(&delivered(), ReferralCommand::StartHandling, 0)
    }
    fn rectifying() -> Referral {
        step(
            &in_progress(),
            measure(Measure::OrderRectification { ordered_on: day(0) }),
            0,
        )
    }
    fn objection_pending() -> Referral {
        step(
            &in_progress(),
            ReferralCommand::FileObjection {
                result_received_on: day(0),
                filed_on: day(0),
            },
            0,
        )
    }
    fn announced() -> Referral {
        let failed = step(
            &rectifying(),
            measure(Measure::Review {
                result: ReviewResult::NonConforming,
                reviewed_on: day(0),
            }),
            0,
        );
        step(
            &failed,
            measure(Measure::PublicAnnouncement {
                announced_on: day(0),
            }),
            0,
        )
    }
    fn returned() -> Referral {
        step(
            &opened(),
            ReferralCommand::Return {
                reason: text("producer is in Zhejiang"),
                suggested_agency: None,
            },
            0,
        )
    }
    fn closed() -> Referral {
        step(
            &objection_pending(),
            ReferralCommand::RecordReinspection {
                result: ReviewResult::Conforming,
            },
            0,
        )
    }

    /// Every state, each reached through the machine itself.
    fn every_state() -> Vec<(&'static str, Referral)> {
        vec![
            ("Opened", opened()),
            ("Delivered", delivered()),
            ("InProgress", in_progress()),
            ("Rectifying", rectifying()),
            ("ObjectionPending", objection_pending()),
            ("Announced", announced()),
            ("Returned", returned()),
            ("Closed", closed()),
        ]
    }

    /// Every command (each measure that has its own rule separately), with the day it runs.
    fn every_command() -> Vec<(&'static str, ReferralCommand, i64)> {
        vec![
            ("Acknowledge", ReferralCommand::Acknowledge, 0),
            ("StartHandling", ReferralCommand::StartHandling, 0),
            ("Seal", measure(Measure::SealOrSeize), 0),
            (
                "Order",
                measure(Measure::OrderRectification { ordered_on: day(0) }),
                0,
            ),
            (
                "Review",
                measure(Measure::Review {
                    result: ReviewResult::Conforming,
                    reviewed_on: day(0),
                }),
                0,
            ),
            (
                "Announce",
                measure(Measure::PublicAnnouncement {
                    announced_on: day(0),
                }),
                0,
            ),
            (
                "SecondReview",
                measure(Measure::SecondReview {
                    result: ReviewResult::Conforming,
                    reviewed_on: day(61),
                }),
                61,
            ),
            (
                "FileObjection",
                ReferralCommand::FileObjection {
                    result_received_on: day(0),
                    filed_on: day(0),
                },
                1,
            ),
            (
                "Reinspection",
                ReferralCommand::RecordReinspection {
                    result: ReviewResult::NonConforming,
                },
                1,
            ),
            (
                "Return",
                ReferralCommand::Return {
                    reason: text("not ours"),
                    suggested_agency: None,
                },
                0,
            ),
            (
                "ReturnTo",
                ReferralCommand::Return {
                    reason: text("producer is in Zhejiang"),
                    suggested_agency: Some(zhejiang()),
                },
                0,
            ),
            ("Reroute", ReferralCommand::Reroute { to: zhejiang() }, 0),
            (
                "Close",
                ReferralCommand::Close {
                    outcome: Outcome::Other,
                    summary: text("done"),
                },
                0,
            ),
            (
                "AddReaction",
                ReferralCommand::AddReaction {
                    kind: ReactionKind::FoundOnSaleHere,
                    text: text("on sale in Nanjing too"),
                },
                0,
            ),
            ("MarkOverdue", ReferralCommand::MarkOverdue, 200),
        ]
    }

    /// A: accepted; S: refused for the state; P: refused for a condition of the command.
    /// Columns follow `every_command`, rows `every_state`.
    const TABLE: &[(&str, &str)] = &[
        //                   Ack Start Seal Order Review Announce 2nd Obj Reinsp Ret RetTo Reroute Close React Overdue
        ("Opened", "ASSSSSSASAASSAA"),
        ("Delivered", "SASSSSSASAASSAS"),
        ("InProgress", "SSAAPPPASAASAAS"),
        ("Rectifying", "SSAPAPPASSSSAAA"),
        ("ObjectionPending", "SSSSSSSSASSSSAP"),
        ("Announced", "SSAPPPASSSSSAAA"),
        ("Returned", "SSSSSSSSSSSASAS"),
        ("Closed", "SSSSSSSSSSSSSAS"),
    ];

    #[test]
    fn every_state_by_every_command() {
        let commands = every_command();
        let states = every_state();
        assert_eq!(states.len(), TABLE.len());
        let mut wrong = Vec::new();
        for ((name, referral), (row_name, row)) in states.iter().zip(TABLE) {
            assert_eq!(name, row_name);
            assert_eq!(row.len(), commands.len(), "row {name}");
            for ((cmd_name, command, n), expected) in commands.iter().zip(row.chars()) {
                let got = match run(referral, command.clone(), *n) {
                    Ok(t) => {
                        assert!(!t.events.is_empty(), "{name} × {cmd_name} emitted no event");
                        assert_eq!(t.new_state.timeline_len, referral.timeline_len + 1);
                        'A'
                    }
                    Err(Refusal::IllegalInState { state, .. }) => {
                        assert_eq!(state, referral.state);
                        'S'
                    }
                    Err(Refusal::Precondition { state, .. }) => {
                        assert_eq!(state, referral.state);
                        'P'
                    }
                    Err(e @ Refusal::NotPermitted { .. }) => panic!("{name} × {cmd_name}: {e}"),
                };
                if got != expected {
                    wrong.push(format!(
                        "{name} × {cmd_name}: expected {expected}, got {got}"
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// The measures without a rule of their own (no clock, no precondition) behave like
    /// `SealOrSeize` in every state, so the table's `Seal` column stands for all of them.
    #[test]
    fn every_plain_measure_follows_the_seal_column() {
        let plain = [
            Measure::StopSales,
            Measure::DelistOnline,
            Measure::StopProduction,
            Measure::ClearStock,
            Measure::Recall,
            Measure::CaseFiled,
            Measure::AdministrativePenalty {
                decision_number: text("鲁市监罚〔2024〕1号"),
            },
            Measure::TransferToJudicial,
            Measure::SuspendBusiness,
            Measure::RevokeBusinessLicence,
            Measure::Other {
                description: text("warning letter"),
            },
        ];
        for (name, referral) in every_state() {
            let seal = run(&referral, measure(Measure::SealOrSeize), 0).map(|t| t.new_state.state);
            for m in &plain {
                let got = run(&referral, measure(m.clone()), 0).map(|t| t.new_state.state);
                assert_eq!(got, seal, "{name} × {}", m.label());
            }
        }
    }

    #[test]
    fn every_role_but_the_required_one_is_denied_in_every_state() {
        let actors = [
            Actor::Agency(shanghai()),
            Actor::Agency(shandong()),
            Actor::Agency(jiangsu()),
            Actor::Scheduler,
        ];
        for (name, referral) in every_state() {
            for (cmd_name, command, n) in every_command() {
                for actor in &actors {
                    let role = referral.role_of(actor);
                    if role == command.required_role() {
                        continue;
                    }
                    let refusal = apply(&referral, &command, actor, at(n), &rules())
                        .expect_err("a wrong role must be refused");
                    assert_eq!(
                        refusal.kind(),
                        RefusalKind::PermissionDenied,
                        "{name} × {cmd_name} by {role}: {refusal}"
                    );
                }
            }
        }
    }

    #[test]
    fn roles_come_from_the_referral() {
        let r = opened();
        assert_eq!(r.role_of(&Actor::Agency(shanghai())), Role::SamplingAgency);
        assert_eq!(r.role_of(&Actor::Agency(shandong())), Role::HandlingAgency);
        assert_eq!(r.role_of(&Actor::Agency(jiangsu())), Role::OtherAgency);
        assert_eq!(r.role_of(&Actor::Scheduler), Role::Scheduler);
        assert!(Referral::open(shanghai(), shanghai(), at(0), &rules()).is_err());
    }

    #[test]
    fn refusals_name_the_state_and_the_command() {
        let refusal = run(&closed(), ReferralCommand::Acknowledge, 0).unwrap_err();
        assert_eq!(refusal.kind(), RefusalKind::FailedPrecondition);
        assert_eq!(
            refusal.to_string(),
            "AcknowledgeReferral is not allowed in state REFERRAL_STATE_CLOSED \
             (已办结, REFERRAL_OUTCOME_OVERTURNED)"
        );
        let denied = apply(
            &opened(),
            &ReferralCommand::Acknowledge,
            &Actor::Agency(jiangsu()),
            at(0),
            &rules(),
        )
        .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "AcknowledgeReferral is reserved to the referral's handling agency; the caller is \
             an agency not party to the referral"
        );
    }

    /// The form issue 16 pins: the contract's method and state names, the Chinese term beside
    /// the state, and the reason after a colon.
    #[test]
    fn refusals_speak_the_contracts_language() {
        let rectifying = rectifying();
        let close = ReferralCommand::Close {
            outcome: Outcome::Rectified,
            summary: text("corrected"),
        };
        let refused = run(&rectifying, close, 1).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "CloseReferral is not allowed in state REFERRAL_STATE_RECTIFYING (整改中): \
             closing as REFERRAL_OUTCOME_RECTIFIED needs a conforming review (复查)"
        );
        let start = run(&rectifying, ReferralCommand::StartHandling, 1).unwrap_err();
        assert_eq!(
            start.to_string(),
            "StartHandling is not allowed in state REFERRAL_STATE_RECTIFYING (整改中)"
        );
        let paused = ReferralState::ObjectionPending {
            resume: ResumeState::Rectifying,
        };
        assert_eq!(
            paused.to_string(),
            "REFERRAL_STATE_OBJECTION_PENDING (异议/复检中, resuming REFERRAL_STATE_RECTIFYING)"
        );
        for state in [
            ReferralState::Opened,
            ReferralState::Delivered,
            ReferralState::InProgress,
            ReferralState::Rectifying,
            paused,
            ReferralState::Announced,
            ReferralState::Returned,
            ReferralState::Closed(Outcome::Rectified),
        ] {
            let text = state.to_string();
            assert!(text.starts_with("REFERRAL_STATE_"), "{text}");
            assert!(
                !text.contains("Rectified") && !text.contains("Closed("),
                "{text}"
            );
        }
    }

    #[test]
    fn the_objection_window_is_listed_from_delivery_while_an_objection_may_be_filed() {
        // Not before delivery: the exchange counts the window from the delivery it records.
        assert_eq!(opened().open_objection_window(day(0)), None);
        // Delivered on Monday 4 March: 15 calendar days is Tuesday 19 March, the last open day.
        let d = delivered();
        assert_eq!(d.open_objection_window(day(0)), Some(day(15)));
        assert_eq!(d.open_objection_window(day(15)), Some(day(15)));
        assert_eq!(
            d.open_objection_window(day(16)),
            None,
            "closed, no longer listed"
        );
        assert_eq!(in_progress().open_objection_window(day(3)), Some(day(15)));
        assert_eq!(rectifying().open_objection_window(day(3)), Some(day(15)));
        // Filed: the objection is pending, then decided (a re-inspection is final).
        let pending = objection_pending();
        assert_eq!(pending.open_objection_window(day(1)), None);
        let confirmed = step(
            &pending,
            ReferralCommand::RecordReinspection {
                result: ReviewResult::NonConforming,
            },
            1,
        );
        assert_eq!(confirmed.state, ReferralState::InProgress);
        assert_eq!(confirmed.open_objection_window(day(1)), None);
        assert_eq!(closed().open_objection_window(day(1)), None);
        assert_eq!(returned().open_objection_window(day(1)), None);
        assert_eq!(announced().open_objection_window(day(1)), None);
    }

    #[test]
    fn the_objection_window_ends_on_a_working_day_and_never_becomes_overdue() {
        // Delivered on Friday 8 March: day 15 is Saturday 23 March, so the window ends on
        // Monday 25 March (民法典 art. 203).
        let d = step(&opened(), ReferralCommand::Acknowledge, 4);
        assert_eq!(d.open_objection_window(day(4)), Some(day(21)));
        assert_eq!(
            d.next_deadline(),
            None,
            "the party's window is no agency's deadline"
        );
        // Past the window, rectifying: nothing is overdue because of it.
        let r = step(
            &step(&d, ReferralCommand::StartHandling, 4),
            measure(Measure::OrderRectification { ordered_on: day(4) }),
            4,
        );
        assert_eq!(r.open_objection_window(day(22)), None);
        assert!(matches!(
            run(&r, ReferralCommand::MarkOverdue, 22),
            Err(Refusal::Precondition {
                reason: Unmet::NothingOverdue { .. },
                ..
            })
        ));
        assert_eq!(
            r.next_deadline().map(|d| d.kind),
            Some(DeadlineKind::Correction)
        );
    }

    #[test]
    fn a_reroute_does_not_reopen_the_objection_window() {
        let d = delivered();
        let back = step(
            &d,
            ReferralCommand::Return {
                reason: text("producer is in Zhejiang"),
                suggested_agency: Some(zhejiang()),
            },
            2,
        );
        let again = step(&back, ReferralCommand::Acknowledge, 3);
        assert_eq!(again.handling_agency, zhejiang());
        assert_eq!(again.open_objection_window(day(3)), Some(day(15)));
    }

    #[test]
    fn opening_runs_the_acknowledgement_clock_in_working_days() {
        // Opened on Friday 8 March: two working days is Tuesday 12 March.
        let friday = at(4);
        let t = Referral::open(shanghai(), shandong(), friday, &rules()).unwrap();
        assert_eq!(t.events[0].notify, vec![shandong()]);
        let r = t.new_state;
        let due = Deadline::new(DeadlineKind::Acknowledgement, date!(2024 - 03 - 12));
        assert_eq!(r.next_deadline(), Some(due));
        let overdue = |n| {
            apply(
                &r,
                &ReferralCommand::MarkOverdue,
                &Actor::Scheduler,
                at(n),
                &rules(),
            )
        };
        assert!(matches!(
            overdue(8),
            Err(Refusal::Precondition { reason: Unmet::NothingOverdue { next: Some(d) }, .. }) if d == due
        ));
        let t = overdue(9).unwrap();
        assert_eq!(t.events.len(), 1);
        assert_eq!(t.events[0].kind, ReferralEventKind::Overdue(due));
        assert_eq!(t.events[0].notify, vec![shanghai(), shandong()]);
        assert_eq!(t.new_state.next_deadline(), None);
        // A second run raises nothing again.
        let again = apply(
            &t.new_state,
            &ReferralCommand::MarkOverdue,
            &Actor::Scheduler,
            at(10),
            &rules(),
        );
        assert!(matches!(
            again,
            Err(Refusal::Precondition {
                reason: Unmet::NothingOverdue { .. },
                ..
            })
        ));
        // A rule of three working days moves it to Wednesday.
        let slow = ReferralRules {
            acknowledgement_working_days: 3,
            ..rules()
        };
        let r3 = Referral::open(shanghai(), shandong(), friday, &slow)
            .unwrap()
            .new_state;
        assert_eq!(
            r3.next_deadline().map(|d| d.due),
            Some(date!(2024 - 03 - 13))
        );
    }

    #[test]
    fn ordering_rectification_sets_60_and_75_day_deadlines() {
        let r = rectifying();
        // Day 60 is Friday 3 May; day 75 is Saturday 18 May, which rolls to Monday 20 May.
        assert_eq!(
            r.deadlines.correction,
            Some(Deadline::new(
                DeadlineKind::Correction,
                date!(2024 - 05 - 03)
            ))
        );
        assert_eq!(
            r.deadlines.review,
            Some(Deadline::new(DeadlineKind::Review, date!(2024 - 05 - 20)))
        );
        assert_eq!(
            r.next_deadline().map(|d| d.kind),
            Some(DeadlineKind::Correction)
        );
        // An order dated tomorrow is refused.
        let tomorrow = run(
            &in_progress(),
            measure(Measure::OrderRectification { ordered_on: day(1) }),
            0,
        );
        assert!(matches!(
            tomorrow,
            Err(Refusal::Precondition {
                reason: Unmet::DateInFuture { .. },
                ..
            })
        ));
    }

    #[test]
    fn overdue_review_requires_the_announcement() {
        let r = rectifying();
        // Day 61: correction overdue only; no announcement yet.
        let t = run(&r, ReferralCommand::MarkOverdue, 61).unwrap();
        assert_eq!(t.events.len(), 1);
        assert!(!t.new_state.flags.announcement_required);
        assert!(matches!(
            run(
                &t.new_state,
                measure(Measure::PublicAnnouncement {
                    announced_on: day(61)
                }),
                61
            ),
            Err(Refusal::Precondition {
                reason: Unmet::AnnouncementNotRequired,
                ..
            })
        ));
        // Day 78 (after Monday 20 May): the review deadline passed without a review.
        let t = run(&t.new_state, ReferralCommand::MarkOverdue, 78).unwrap();
        let kinds: Vec<_> = t.events.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                ReferralEventKind::Overdue(Deadline::new(
                    DeadlineKind::Review,
                    date!(2024 - 05 - 20)
                )),
                ReferralEventKind::AnnouncementRequired,
            ]
        );
        assert!(t.new_state.flags.announcement_required);
        let announced = step(
            &t.new_state,
            measure(Measure::PublicAnnouncement {
                announced_on: day(78),
            }),
            78,
        );
        assert_eq!(announced.state, ReferralState::Announced);
    }

    #[test]
    fn announcement_and_second_review_window() {
        let r = announced();
        assert_eq!(r.deadlines.second_review_opens, Some(day(60)));
        // Day 90 is Sunday 2 June, so the window ends Monday 3 June.
        assert_eq!(
            r.next_deadline(),
            Some(Deadline::new(
                DeadlineKind::SecondReview,
                date!(2024 - 06 - 03)
            ))
        );
        let early = run(
            &r,
            measure(Measure::SecondReview {
                result: ReviewResult::NonConforming,
                reviewed_on: day(59),
            }),
            59,
        );
        assert!(matches!(
            early,
            Err(Refusal::Precondition {
                reason: Unmet::SecondReviewTooEarly { .. },
                ..
            })
        ));
        let failed = step(
            &r,
            measure(Measure::SecondReview {
                result: ReviewResult::NonConforming,
                reviewed_on: day(60),
            }),
            60,
        );
        assert!(failed.flags.suspension_required);
        assert_eq!(failed.next_deadline(), None);
        let suspended = step(&failed, measure(Measure::SuspendBusiness), 61);
        assert!(suspended.flags.suspension_ordered && !suspended.flags.suspension_required);
        assert!(matches!(
            run(
                &suspended,
                ReferralCommand::Close {
                    outcome: Outcome::Rectified,
                    summary: text("x")
                },
                61
            ),
            Err(Refusal::Precondition {
                reason: Unmet::NoConformingReview,
                ..
            })
        ));
        // A passing second review makes it closable as rectified.
        let passed = step(
            &r,
            measure(Measure::SecondReview {
                result: ReviewResult::Conforming,
                reviewed_on: day(70),
            }),
            70,
        );
        let closed = step(
            &passed,
            ReferralCommand::Close {
                outcome: Outcome::Rectified,
                summary: text("corrected after the announcement"),
            },
            70,
        );
        assert_eq!(closed.state, ReferralState::Closed(Outcome::Rectified));
    }

    #[test]
    fn closing_outcomes_need_their_facts() {
        let close = |r: &Referral, outcome| {
            run(
                r,
                ReferralCommand::Close {
                    outcome,
                    summary: text("summary"),
                },
                0,
            )
        };
        let unmet = |res: Result<Transition, Refusal>| match res {
            Err(Refusal::Precondition { reason, .. }) => Some(reason),
            _ => None,
        };
        let r = rectifying();
        assert_eq!(
            unmet(close(&r, Outcome::Rectified)),
            Some(Unmet::NoConformingReview)
        );
        assert_eq!(
            unmet(close(&r, Outcome::Overturned)),
            Some(Unmet::OverturnedOnlyByReinspection)
        );
        assert_eq!(
            unmet(close(&r, Outcome::Penalized)),
            Some(Unmet::NoPenaltyRecorded)
        );
        assert_eq!(
            unmet(close(&r, Outcome::TransferredToJudicial)),
            Some(Unmet::NoTransferRecorded)
        );
        assert_eq!(
            unmet(close(&r, Outcome::NoViolationFound)),
            Some(Unmet::ViolationEstablished)
        );
        assert!(close(&in_progress(), Outcome::NoViolationFound).is_ok());

        let reviewed = step(
            &r,
            measure(Measure::Review {
                result: ReviewResult::Conforming,
                reviewed_on: day(0),
            }),
            0,
        );
        assert_eq!(
            reviewed.next_deadline(),
            None,
            "a conforming review meets both clocks"
        );
        assert!(close(&reviewed, Outcome::Rectified).is_ok());

        let penalized = step(
            &r,
            measure(Measure::AdministrativePenalty {
                decision_number: text("鲁市监罚〔2024〕12号"),
            }),
            0,
        );
        assert!(close(&penalized, Outcome::Penalized).is_ok());
        let transferred = step(&r, measure(Measure::TransferToJudicial), 0);
        assert!(close(&transferred, Outcome::TransferredToJudicial).is_ok());

        // A failed review requires the announcement and forbids a second review.
        let failed = step(
            &r,
            measure(Measure::Review {
                result: ReviewResult::NonConforming,
                reviewed_on: day(0),
            }),
            0,
        );
        assert!(failed.flags.announcement_required);
        assert!(matches!(
            run(
                &failed,
                measure(Measure::Review {
                    result: ReviewResult::Conforming,
                    reviewed_on: day(0)
                }),
                0
            ),
            Err(Refusal::Precondition {
                reason: Unmet::AlreadyRecorded { .. },
                ..
            })
        ));
    }

    #[test]
    fn objection_pauses_and_shifts_the_rectification_clock() {
        let r = rectifying();
        let before = r.deadlines.clone();
        let objection = ReferralCommand::FileObjection {
            result_received_on: day(0),
            filed_on: day(10),
        };
        let pending = step(&r, objection, 10);
        assert_eq!(
            pending.state,
            ReferralState::ObjectionPending {
                resume: ResumeState::Rectifying
            }
        );
        assert_eq!(pending.paused_since, Some(day(10)));
        assert_eq!(pending.next_deadline(), None, "the clock is paused");
        assert!(matches!(
            run(&pending, ReferralCommand::MarkOverdue, 100),
            Err(Refusal::Precondition {
                reason: Unmet::ClockPaused,
                ..
            })
        ));
        // Re-inspection confirms the result 20 days later: back to Rectifying, +20 days.
        let resumed = step(
            &pending,
            ReferralCommand::RecordReinspection {
                result: ReviewResult::NonConforming,
            },
            30,
        );
        assert_eq!(resumed.state, ReferralState::Rectifying);
        assert_eq!(resumed.paused_since, None);
        assert_eq!(resumed.paused_days, 20);
        // 80 days after 4 March is Thursday 23 May; 95 days is Friday 7 June.
        assert_eq!(
            resumed.deadlines.correction.map(|d| d.due),
            Some(date!(2024 - 05 - 23))
        );
        assert_eq!(
            resumed.deadlines.review.map(|d| d.due),
            Some(date!(2024 - 06 - 07))
        );
        assert!(resumed.deadlines.correction.map(|d| d.due) > before.correction.map(|d| d.due));
        // Re-inspection is final: no second objection.
        let again = run(
            &resumed,
            ReferralCommand::FileObjection {
                result_received_on: day(0),
                filed_on: day(5),
            },
            31,
        );
        assert!(matches!(
            again,
            Err(Refusal::Precondition {
                reason: Unmet::ObjectionAlreadyDecided,
                ..
            })
        ));
    }

    #[test]
    fn objection_only_within_15_days_of_receipt() {
        let r = in_progress();
        let file = |received: i64, filed: i64| {
            run(
                &r,
                ReferralCommand::FileObjection {
                    result_received_on: day(received),
                    filed_on: day(filed),
                },
                filed,
            )
        };
        // Received Monday 4 March: the window ends Tuesday 19 March.
        assert!(file(0, 15).is_ok());
        assert!(matches!(
            file(0, 16),
            Err(Refusal::Precondition {
                reason: Unmet::ObjectionWindowClosed { last_day },
                ..
            }) if last_day == date!(2024 - 03 - 19)
        ));
        // Filed before the result was received: refused.
        assert!(matches!(
            file(3, 2),
            Err(Refusal::Precondition {
                reason: Unmet::DateTooEarly { .. },
                ..
            })
        ));
    }

    #[test]
    fn conforming_reinspection_overturns() {
        let t = run(
            &objection_pending(),
            ReferralCommand::RecordReinspection {
                result: ReviewResult::Conforming,
            },
            5,
        )
        .unwrap();
        assert_eq!(
            t.new_state.state,
            ReferralState::Closed(Outcome::Overturned)
        );
        assert_eq!(
            t.events[0].kind,
            ReferralEventKind::ReinspectionRecorded(ReviewResult::Conforming)
        );
        assert_eq!(t.events[0].notify, vec![shandong()]);
    }

    #[test]
    fn return_with_a_suggestion_reroutes() {
        let r = delivered();
        let t = run(
            &r,
            ReferralCommand::Return {
                reason: text("producer moved to Hangzhou"),
                suggested_agency: Some(zhejiang()),
            },
            3,
        )
        .unwrap();
        let n = &t.new_state;
        assert_eq!(n.state, ReferralState::Opened);
        assert_eq!(n.handling_agency, zhejiang());
        assert_eq!(
            n.next_deadline().map(|d| d.due),
            Some(date!(2024 - 03 - 11))
        );
        assert_eq!(t.events[0].notify, vec![shanghai(), zhejiang()]);
        // The old handler is a bystander now: may react, may not acknowledge.
        assert_eq!(n.role_of(&Actor::Agency(shandong())), Role::OtherAgency);
        // Suggesting the sampling agency itself is refused.
        let to_sampler = run(
            &r,
            ReferralCommand::Return {
                reason: text("x"),
                suggested_agency: Some(shanghai()),
            },
            3,
        );
        assert!(matches!(
            to_sampler,
            Err(Refusal::Precondition {
                reason: Unmet::AlreadyParty {
                    role: Role::SamplingAgency,
                    ..
                },
                ..
            })
        ));
    }

    #[test]
    fn returned_then_rerouted_by_the_sampling_agency() {
        let r = returned();
        assert_eq!(r.next_deadline(), None);
        let t = run(&r, ReferralCommand::Reroute { to: zhejiang() }, 2).unwrap();
        assert_eq!(t.new_state.state, ReferralState::Opened);
        assert_eq!(t.new_state.handling_agency, zhejiang());
        assert_eq!(
            t.events[0].kind,
            ReferralEventKind::Rerouted {
                from: shandong(),
                to: zhejiang()
            }
        );
        // The new handler and the agency it left are told.
        assert_eq!(t.events[0].notify, vec![zhejiang(), shandong()]);
        assert!(matches!(
            run(&r, ReferralCommand::Reroute { to: shanghai() }, 2),
            Err(Refusal::Precondition {
                reason: Unmet::AlreadyParty { .. },
                ..
            })
        ));
    }

    #[test]
    fn reacting_agencies_are_told_of_later_steps() {
        let r = in_progress();
        let t = run(
            &r,
            ReferralCommand::AddReaction {
                kind: ReactionKind::MeasuresTakenHere,
                text: text("delisted from shops in Jiangsu"),
            },
            1,
        )
        .unwrap();
        assert_eq!(t.new_state.state, r.state, "a reaction changes no state");
        assert_eq!(t.events[0].notify, vec![shanghai(), shandong()]);
        let t = run(&t.new_state, measure(Measure::Recall), 2).unwrap();
        assert_eq!(t.events[0].notify, vec![shanghai(), jiangsu()]);
        // Reactions are accepted after closure too.
        assert!(
            run(
                &closed(),
                ReferralCommand::AddReaction {
                    kind: ReactionKind::Other,
                    text: text("seen again"),
                },
                9
            )
            .is_ok()
        );
    }

    #[test]
    fn remarks_are_parsed() {
        assert_eq!(
            Remark::parse("reason", "  x  ").map(|r| r.to_string()),
            Ok("x".to_owned())
        );
        assert_eq!(
            Remark::parse("reason", " \n"),
            Err(TextError::Empty { field: "reason" })
        );
        let long = "字".repeat(Remark::MAX_CHARS + 1);
        assert!(matches!(
            Remark::parse("summary", &long),
            Err(TextError::TooLong { .. })
        ));
    }
}
