//! [`apply`]: one step of the referral state machine, with the date checks of measures and
//! the conditions of closing. The model of `mod.rs` holds the data; this file holds the rules.

use time::{Date, OffsetDateTime};

use crate::calendar::{Deadline, DeadlineKind, WorkingCalendar, china_date};
use crate::ids::AgencyId;

use super::{
    Actor, Measure, OBJECTION_DAYS, Outcome, Party, Referral, ReferralCommand, ReferralEvent,
    ReferralEventKind, ReferralRules, ReferralState, Refusal, ResumeState, ReviewResult,
    SECOND_REVIEW_EARLIEST_DAYS, SECOND_REVIEW_LATEST_DAYS, Transition, Unmet,
};

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
    // A clock moved back would date this step before an earlier one on the timeline (a
    // measure before the acknowledgement): refuse until it catches up.
    let last = referral.last_recorded_day();
    if today < last {
        return Err(unmet(Unmet::BeforeLastStep { today, last }));
    }
    let mut next = referral.clone();
    next.last_step_on = Some(today);
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
                    role: Party::SamplingAgency,
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
