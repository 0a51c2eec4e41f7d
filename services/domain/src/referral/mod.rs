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
//!
//! # Layout
//!
//! * this file — the referral model: periods, outcomes, rules, deadlines, the [`Referral`]
//!   and its events;
//! * `apply.rs` — [`apply`], the rules of each command;
//! * `command.rs`, `party.rs` — the commands and who acts;
//! * `refusal.rs` — why a step is refused;
//! * `state.rs` — the referral states.
//!
//! Free text ([`Remark`]) lives in [`crate::text`], shared with licensing. This file re-exports
//! everything, so callers keep writing `referral::Referral`, `referral::apply` and so on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::calendar::{Deadline, DeadlineKind, WorkingCalendar, china_date};
use crate::ids::AgencyId;

mod apply;
pub mod automatic;
mod command;
mod party;
mod refusal;
mod state;

#[cfg(test)]
mod tests;

pub use crate::text::{Remark, TextError};
pub use apply::apply;
pub use command::*;
/// The former name of [`Party`], kept so existing callers compile; new code names [`Party`],
/// which does not collide with the permission [`crate::roles::Role`].
pub use party::Party as Role;
pub use party::{Actor, Party};
pub use refusal::*;
pub use state::*;

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

/// Why the handling agency has jurisdiction over a referred result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JurisdictionBasis {
    /// The nominal producer lies in the handling agency's area (Interim Measures art. 44).
    Producer,
    /// The sampled seller lies there (for the seller's own obligations).
    Seller,
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
    /// The day of the latest step on the timeline; absent from referrals stored before it was
    /// kept, whose other recorded days then stand for it (see [`Referral::last_recorded_day`]).
    #[serde(default)]
    pub last_step_on: Option<Date>,
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
                role: Party::SamplingAgency,
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
            last_step_on: Some(today),
        };
        Ok(Transition {
            new_state: referral,
            events: vec![ReferralEvent {
                kind: ReferralEventKind::Opened,
                notify: vec![handling],
            }],
        })
    }

    /// The latest day the referral recorded a step on: its opening, its latest step, the
    /// start of a pending objection's pause. Steps are dated by the exchange's clock, so none
    /// may be dated before it (see `Unmet::BeforeLastStep`).
    pub fn last_recorded_day(&self) -> Date {
        [Some(self.opened_on), self.last_step_on, self.paused_since]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(self.opened_on)
    }

    /// The role of `actor` on this referral.
    pub fn role_of(&self, actor: &Actor) -> Party {
        match actor {
            Actor::Scheduler => Party::Scheduler,
            Actor::Agency(a) if *a == self.handling_agency => Party::HandlingAgency,
            Actor::Agency(a) if *a == self.sampling_agency => Party::SamplingAgency,
            Actor::Agency(_) => Party::OtherAgency,
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

    /// Makes `agencies` (those of the case its result is in, docs/cases.md) reacting agencies,
    /// the referral's own parties excepted: they are told of every later step, as after a
    /// reaction.
    pub fn join_reacting(&mut self, agencies: impl IntoIterator<Item = AgencyId>) {
        for agency in agencies {
            if agency != self.sampling_agency && agency != self.handling_agency {
                self.reacting_agencies.insert(agency);
            }
        }
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
                role: Party::SamplingAgency,
            });
        }
        if *candidate == self.handling_agency {
            return Err(Unmet::AlreadyParty {
                agency: candidate.clone(),
                role: Party::HandlingAgency,
            });
        }
        Ok(())
    }
}
