//! Domain ↔ wire: the enums of a referral, and the fields of `yrd.exchange.v1.Referral` that
//! follow from the state machine (state, deadlines, flags). Pure functions, one per mapping, so
//! the wire never drifts from the machine.

use time::{Date, OffsetDateTime};
use yrd_call::timestamp;
use yrd_domain::calendar::{Deadline, DeadlineKind};
use yrd_domain::referral::{
    JurisdictionBasis, Measure, Outcome, ReactionKind, Referral, ReferralEventKind, ReferralState,
    ReviewResult,
};
use yrd_domain::spotcheck::format_date;
use yrd_proto::v1 as pb;

/// `agencies/{id}`.
pub fn agency_name(agency: &impl std::fmt::Display) -> String {
    format!("agencies/{agency}")
}

/// The wire state.
pub fn state(s: &ReferralState) -> pb::ReferralState {
    match s {
        ReferralState::Opened => pb::ReferralState::Opened,
        ReferralState::Delivered => pb::ReferralState::Delivered,
        ReferralState::InProgress => pb::ReferralState::InProgress,
        ReferralState::Rectifying => pb::ReferralState::Rectifying,
        ReferralState::ObjectionPending { .. } => pb::ReferralState::ObjectionPending,
        ReferralState::Announced => pb::ReferralState::Announced,
        ReferralState::Returned => pb::ReferralState::Returned,
        ReferralState::Closed(_) => pb::ReferralState::Closed,
    }
}

/// The stored state name a wire state filter selects; `None` for UNSPECIFIED.
pub fn state_filter(s: pb::ReferralState) -> Option<&'static str> {
    Some(match s {
        pb::ReferralState::Unspecified => return None,
        pb::ReferralState::Opened => "opened",
        pb::ReferralState::Delivered => "delivered",
        pb::ReferralState::InProgress => "in_progress",
        pb::ReferralState::Rectifying => "rectifying",
        pb::ReferralState::ObjectionPending => "objection_pending",
        pb::ReferralState::Announced => "announced",
        pb::ReferralState::Returned => "returned",
        pb::ReferralState::Closed => "closed",
    })
}

/// The wire outcome.
pub fn outcome(o: Outcome) -> pb::ReferralOutcome {
    match o {
        Outcome::Rectified => pb::ReferralOutcome::Rectified,
        Outcome::Overturned => pb::ReferralOutcome::Overturned,
        Outcome::Penalized => pb::ReferralOutcome::Penalized,
        Outcome::TransferredToJudicial => pb::ReferralOutcome::TransferredToJudicial,
        Outcome::NoViolationFound => pb::ReferralOutcome::NoViolationFound,
        Outcome::Other => pb::ReferralOutcome::Other,
    }
}

/// The domain outcome of a wire number; `None` for UNSPECIFIED or unknown.
pub fn outcome_from_wire(n: i32) -> Option<Outcome> {
    match pb::ReferralOutcome::try_from(n).ok()? {
        pb::ReferralOutcome::Unspecified => None,
        pb::ReferralOutcome::Rectified => Some(Outcome::Rectified),
        pb::ReferralOutcome::Overturned => Some(Outcome::Overturned),
        pb::ReferralOutcome::Penalized => Some(Outcome::Penalized),
        pb::ReferralOutcome::TransferredToJudicial => Some(Outcome::TransferredToJudicial),
        pb::ReferralOutcome::NoViolationFound => Some(Outcome::NoViolationFound),
        pb::ReferralOutcome::Other => Some(Outcome::Other),
    }
}

/// The wire basis.
pub fn basis(b: JurisdictionBasis) -> pb::JurisdictionBasis {
    match b {
        JurisdictionBasis::Producer => pb::JurisdictionBasis::Producer,
        JurisdictionBasis::Seller => pb::JurisdictionBasis::Seller,
    }
}

/// The domain basis of a wire number; `None` for UNSPECIFIED or unknown.
pub fn basis_from_wire(n: i32) -> Option<JurisdictionBasis> {
    match pb::JurisdictionBasis::try_from(n).ok()? {
        pb::JurisdictionBasis::Unspecified => None,
        pb::JurisdictionBasis::Producer => Some(JurisdictionBasis::Producer),
        pb::JurisdictionBasis::Seller => Some(JurisdictionBasis::Seller),
    }
}

/// The domain reaction kind of a wire number; `None` for UNSPECIFIED or unknown.
pub fn reaction_kind_from_wire(n: i32) -> Option<ReactionKind> {
    match pb::ReactionKind::try_from(n).ok()? {
        pb::ReactionKind::Unspecified => None,
        pb::ReactionKind::FoundOnSaleHere => Some(ReactionKind::FoundOnSaleHere),
        pb::ReactionKind::MeasuresTakenHere => Some(ReactionKind::MeasuresTakenHere),
        pb::ReactionKind::Other => Some(ReactionKind::Other),
    }
}

/// The domain result of a wire verdict; `None` unless CONFORMING or NON_CONFORMING.
pub fn review_from_wire(n: i32) -> Option<ReviewResult> {
    match pb::Verdict::try_from(n).ok()? {
        pb::Verdict::Conforming => Some(ReviewResult::Conforming),
        pb::Verdict::NonConforming => Some(ReviewResult::NonConforming),
        _ => None,
    }
}

/// The wire kind of a deadline.
pub fn deadline_kind(k: DeadlineKind) -> pb::ReferralDeadlineKind {
    match k {
        DeadlineKind::Acknowledgement => pb::ReferralDeadlineKind::Acknowledgement,
        DeadlineKind::Correction => pb::ReferralDeadlineKind::Rectification,
        DeadlineKind::Review => pb::ReferralDeadlineKind::Review,
        DeadlineKind::SecondReview => pb::ReferralDeadlineKind::SecondReview,
        // Licensing deadlines never belong to a referral.
        _ => pb::ReferralDeadlineKind::Unspecified,
    }
}

/// The wire deadline of `d`, overdue when the machine flagged it.
pub fn deadline(d: &Deadline, m: &Referral) -> pb::ReferralDeadline {
    pb::ReferralDeadline {
        kind: deadline_kind(d.kind) as i32,
        due_date: format_date(d.due),
        overdue: m.flags.overdue.contains(&d.kind),
    }
}

/// The timeline kind of an event of the machine.
pub fn step_kind(kind: &ReferralEventKind) -> pb::ReferralStepKind {
    match kind {
        ReferralEventKind::Opened => pb::ReferralStepKind::Opened,
        ReferralEventKind::Acknowledged => pb::ReferralStepKind::Acknowledged,
        ReferralEventKind::HandlingStarted => pb::ReferralStepKind::HandlingStarted,
        ReferralEventKind::MeasureRecorded(_) => pb::ReferralStepKind::MeasureRecorded,
        ReferralEventKind::ObjectionFiled => pb::ReferralStepKind::ObjectionFiled,
        ReferralEventKind::ReinspectionRecorded(_) => pb::ReferralStepKind::ReinspectionRecorded,
        ReferralEventKind::Returned => pb::ReferralStepKind::Returned,
        ReferralEventKind::Rerouted { .. } => pb::ReferralStepKind::Rerouted,
        ReferralEventKind::Closed(_) => pb::ReferralStepKind::Closed,
        ReferralEventKind::ReactionAdded(_) => pb::ReferralStepKind::Unspecified,
        ReferralEventKind::Overdue(_) => pb::ReferralStepKind::OverdueFlagged,
        ReferralEventKind::AnnouncementRequired => pb::ReferralStepKind::AnnouncementFlagged,
    }
}

/// The wire kind of a measure.
pub fn measure_kind(m: &Measure) -> pb::MeasureKind {
    match m {
        Measure::SealOrSeize => pb::MeasureKind::SealOrSeize,
        Measure::StopSales => pb::MeasureKind::StopSales,
        Measure::DelistOnline => pb::MeasureKind::DelistOnline,
        Measure::StopProduction => pb::MeasureKind::StopProduction,
        Measure::ClearStock => pb::MeasureKind::ClearStock,
        Measure::Recall => pb::MeasureKind::Recall,
        Measure::OrderRectification { .. } => pb::MeasureKind::OrderRectification,
        Measure::Review { .. } => pb::MeasureKind::Review,
        Measure::CaseFiled => pb::MeasureKind::CaseFiled,
        Measure::AdministrativePenalty { .. } => pb::MeasureKind::AdministrativePenalty,
        Measure::TransferToJudicial => pb::MeasureKind::TransferToJudicial,
        Measure::PublicAnnouncement { .. } => pb::MeasureKind::PublicAnnouncement,
        Measure::SecondReview { .. } => pb::MeasureKind::SecondReview,
        Measure::SuspendBusiness => pb::MeasureKind::SuspendBusiness,
        Measure::RevokeBusinessLicence => pb::MeasureKind::RevokeBusinessLicence,
        Measure::Other { .. } => pb::MeasureKind::Other,
    }
}

/// The deadlines the wire shows on `today`: those that run in the current state and those
/// flagged overdue (a closed referral shows only the latter), with the objection window
/// (异议期) while it is open.
pub fn shown_deadlines(m: &Referral, today: Date) -> Vec<pb::ReferralDeadline> {
    let mut shown: Vec<pb::ReferralDeadline> =
        agency_deadlines(m).iter().map(|d| deadline(d, m)).collect();
    if let Some(last_day) = m.open_objection_window(today) {
        // Listed only while open, so never overdue: when it closes it is simply gone.
        shown.push(pb::ReferralDeadline {
            kind: pb::ReferralDeadlineKind::ObjectionWindow as i32,
            due_date: format_date(last_day),
            overdue: false,
        });
    }
    // `YYYY-MM-DD` sorts as the dates do; the sort is stable, so equal days keep kind order.
    shown.sort_by(|a, b| a.due_date.cmp(&b.due_date));
    shown
}

/// Sets the fields of `r` that depend on the day as well as on the machine: the deadlines
/// listed (the objection window closes without any step). Reads call it, so a stored answer
/// never shows a window that has since closed.
pub fn refresh_deadlines(r: &mut pb::Referral, m: &Referral, now: OffsetDateTime) {
    r.next_deadline = m.next_deadline().map(|d| deadline(&d, m));
    r.deadlines = shown_deadlines(m, day_of(now));
}

/// The deadlines some agency owes: those that run in the current state and those flagged
/// overdue (a closed referral shows only the latter).
fn agency_deadlines(m: &Referral) -> Vec<Deadline> {
    let d = &m.deadlines;
    let closed = matches!(m.state, ReferralState::Closed(_));
    let running = |dl: &Option<Deadline>, met: bool| {
        dl.filter(|dl| (!closed && !met) || m.flags.overdue.contains(&dl.kind))
    };
    let acknowledged = !matches!(m.state, ReferralState::Opened);
    [
        running(&d.acknowledgement, acknowledged),
        running(&d.correction, m.flags.review.is_some()),
        running(&d.review, m.flags.review.is_some()),
        running(&d.second_review, m.flags.second_review.is_some()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Sets the fields of `r` that follow from the machine `m` after a step at `now`.
pub fn refresh(r: &mut pb::Referral, m: &Referral, now: OffsetDateTime) {
    r.state = state(&m.state) as i32;
    r.handling_agency = agency_name(&m.handling_agency);
    refresh_deadlines(r, m, now);
    r.rectification_deadline = m
        .deadlines
        .correction
        .map(|d| format_date(d.due))
        .unwrap_or_default();
    r.review_deadline = m
        .deadlines
        .review
        .map(|d| format_date(d.due))
        .unwrap_or_default();
    r.clock_paused = matches!(m.state, ReferralState::ObjectionPending { .. })
        && m.deadlines.rectification_ordered_on.is_some();
    r.overdue = !m.flags.overdue.is_empty();
    r.announcement_required = m.flags.announcement_required;
    r.second_review_window = match (m.deadlines.second_review_opens, m.deadlines.second_review) {
        (Some(opens), Some(last)) => Some(pb::DateRange {
            start_date: format_date(opens),
            end_date: format_date(last.due),
        }),
        _ => None,
    };
    if let ReferralState::Closed(o) = m.state {
        r.outcome = outcome(o) as i32;
        if r.close_time.is_none() {
            r.close_time = Some(timestamp(now));
        }
    }
    r.update_time = Some(timestamp(now));
}

/// The China Standard Time day of an instant.
pub fn day_of(t: OffsetDateTime) -> Date {
    yrd_domain::calendar::china_date(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_state_filter_names_a_stored_state() {
        for s in [
            pb::ReferralState::Opened,
            pb::ReferralState::Delivered,
            pb::ReferralState::InProgress,
            pb::ReferralState::Rectifying,
            pb::ReferralState::ObjectionPending,
            pb::ReferralState::Announced,
            pb::ReferralState::Returned,
            pb::ReferralState::Closed,
        ] {
            assert!(state_filter(s).is_some(), "{s:?}");
        }
        assert_eq!(state_filter(pb::ReferralState::Unspecified), None);
        assert_eq!(
            state_filter(pb::ReferralState::ObjectionPending),
            Some(yrd_store::referrals::state_name(
                &ReferralState::ObjectionPending {
                    resume: yrd_domain::referral::ResumeState::Opened
                }
            ))
        );
    }

    #[test]
    fn outcomes_round_trip() {
        for o in [
            Outcome::Rectified,
            Outcome::Overturned,
            Outcome::Penalized,
            Outcome::TransferredToJudicial,
            Outcome::NoViolationFound,
            Outcome::Other,
        ] {
            assert_eq!(outcome_from_wire(outcome(o) as i32), Some(o));
        }
        assert_eq!(outcome_from_wire(0), None);
    }
}
