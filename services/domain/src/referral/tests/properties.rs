//! Property tests of the referral machine: random sequences of every command, issued by random
//! actors (the rightful party, the other party, outsiders, the scheduler), with random field
//! values (dates in the past, future and at the ends of the calendar; empty, blank and
//! oversized text), interleaved with clock jumps forward and backward across weekends and random
//! holidays. After every step:
//!
//! * nothing panicked (proptest reports a panic as a failure);
//! * a refused step left the referral as it was, and its refusal names the command and, when a
//!   field is wrong, the field's path; a refusal for the actor's party happens exactly when the
//!   actor is not the command's party;
//! * an accepted step appended one timeline entry, raised events and told neither the actor
//!   nor anyone outside the referral;
//! * the referral is in a legal state ([`check_legal`]);
//! * timeline days follow each other: a step the clock would date before the referral's last
//!   recorded day is refused (`Unmet::BeforeLastStep`), exactly then;
//! * no deadline moved earlier. docs/domain.md allows exactly these moves: the
//!   acknowledgement clock restarts for a new handling agency (`ReturnReferral` naming one,
//!   `RerouteReferral`: §"Speed and delivery" gives each handling agency its 2 working days);
//!   the correction and review deadlines only move later, when a non-conforming re-inspection
//!   ends an objection that stood the clock still (§"Objection and re-inspection"); every other
//!   date (the order, the objection window, the second-review window) is fixed once set.

use std::collections::BTreeSet;

use proptest::prelude::*;
use time::{Date, OffsetDateTime};

use super::*;
use crate::calendar::china_date;
use crate::test_properties::{
    Jump, MAX_STEPS, Monotone, Rel, assert_reaches_every_state, calendar, config, jump, rel,
    remark, text_input,
};

/// Who issues a step.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// Whoever holds the party the command needs (most steps, so sequences go deep).
    Rightful,
    Sampling,
    Handling,
    /// One of four agencies, which may or may not be a party by then.
    Named(u8),
    Scheduler,
}

fn some_agency(i: u8) -> AgencyId {
    match i % 4 {
        0 => shanghai(),
        1 => shandong(),
        2 => jiangsu(),
        _ => zhejiang(),
    }
}

impl Who {
    fn actor(self, r: &Referral, command: &ReferralCommand) -> Actor {
        match self {
            Who::Rightful => rightful(r, command),
            Who::Sampling => Actor::Agency(r.sampling_agency.clone()),
            Who::Handling => Actor::Agency(r.handling_agency.clone()),
            Who::Named(i) => Actor::Agency(some_agency(i)),
            Who::Scheduler => Actor::Scheduler,
        }
    }
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        12 => Just(Who::Rightful),
        1 => Just(Who::Sampling),
        1 => Just(Who::Handling),
        1 => any::<u8>().prop_map(Who::Named),
        1 => Just(Who::Scheduler),
    ]
}

/// A measure with its raw field values.
#[derive(Debug, Clone)]
enum RawMeasure {
    Plain(u8),
    OrderRectification(Rel),
    Review(bool, Rel),
    Penalty(String),
    Announcement(Rel),
    SecondReview(bool, Rel),
    Other(String),
}

/// A command with its raw field values; dates relative to the day it is issued.
#[derive(Debug, Clone)]
enum RawCommand {
    Acknowledge,
    StartHandling,
    Measure(RawMeasure),
    FileObjection {
        received: Rel,
        filed: Rel,
    },
    Reinspection(bool),
    Return {
        reason: String,
        to: Option<u8>,
    },
    Reroute(u8),
    Close(u8, String),
    Reaction(u8, String),
    MarkOverdue,
    /// The step that moves the referral on along its usual path from where it stands (the
    /// number picks among the choices), so that sequences reach the late states.
    Progress(u8),
}

fn raw_measure() -> impl Strategy<Value = RawMeasure> {
    prop_oneof![
        2 => any::<u8>().prop_map(RawMeasure::Plain),
        3 => rel().prop_map(RawMeasure::OrderRectification),
        4 => (prop::bool::weighted(0.3), rel()).prop_map(|(ok, on)| RawMeasure::Review(ok, on)),
        1 => text_input().prop_map(RawMeasure::Penalty),
        3 => rel().prop_map(RawMeasure::Announcement),
        3 => (any::<bool>(), rel()).prop_map(|(ok, on)| RawMeasure::SecondReview(ok, on)),
        1 => text_input().prop_map(RawMeasure::Other),
    ]
}

fn raw_command() -> impl Strategy<Value = RawCommand> {
    prop_oneof![
        3 => Just(RawCommand::Acknowledge),
        3 => Just(RawCommand::StartHandling),
        14 => raw_measure().prop_map(RawCommand::Measure),
        2 => (rel(), rel()).prop_map(|(received, filed)| RawCommand::FileObjection { received, filed }),
        2 => any::<bool>().prop_map(RawCommand::Reinspection),
        1 => (text_input(), prop::option::of(any::<u8>()))
            .prop_map(|(reason, to)| RawCommand::Return { reason, to }),
        1 => any::<u8>().prop_map(RawCommand::Reroute),
        1 => (any::<u8>(), text_input()).prop_map(|(o, s)| RawCommand::Close(o, s)),
        1 => (any::<u8>(), text_input()).prop_map(|(k, t)| RawCommand::Reaction(k, t)),
        3 => Just(RawCommand::MarkOverdue),
        15 => any::<u8>().prop_map(RawCommand::Progress),
    ]
}

/// The usual next step from `r`'s state; `pick` chooses among results and outcomes.
fn progress(r: &Referral, pick: u8) -> RawCommand {
    use ReferralState as S;
    let m = RawCommand::Measure;
    let today = Rel::Offset(0);
    match r.state {
        S::Opened => RawCommand::Acknowledge,
        S::Delivered => RawCommand::StartHandling,
        S::InProgress if pick % 4 == 0 => m(RawMeasure::Penalty("沪市监罚〔2024〕1号".into())),
        S::InProgress => m(RawMeasure::OrderRectification(today)),
        S::Rectifying if r.flags.announcement_required => m(RawMeasure::Announcement(today)),
        S::Rectifying if r.flags.review.is_none() => m(RawMeasure::Review(pick % 2 == 0, today)),
        S::Announced if r.flags.second_review.is_none() => {
            m(RawMeasure::SecondReview(pick % 2 == 0, today))
        }
        S::Rectifying | S::Announced => RawCommand::Close(pick, "done".into()),
        S::ObjectionPending { .. } => RawCommand::Reinspection(pick % 3 == 0),
        S::Returned => RawCommand::Reroute(pick),
        S::Closed(_) => RawCommand::Reaction(pick, "found on sale here".into()),
    }
}

fn outcome(i: u8) -> Outcome {
    [
        Outcome::Rectified,
        Outcome::Overturned,
        Outcome::Penalized,
        Outcome::TransferredToJudicial,
        Outcome::NoViolationFound,
        Outcome::Other,
    ][usize::from(i) % 6]
}

fn plain_measure(i: u8) -> Measure {
    [
        Measure::SealOrSeize,
        Measure::StopSales,
        Measure::DelistOnline,
        Measure::StopProduction,
        Measure::ClearStock,
        Measure::Recall,
        Measure::CaseFiled,
        Measure::TransferToJudicial,
        Measure::SuspendBusiness,
        Measure::RevokeBusinessLicence,
    ][usize::from(i) % 10]
        .clone()
}

fn result(conforming: bool) -> ReviewResult {
    if conforming {
        ReviewResult::Conforming
    } else {
        ReviewResult::NonConforming
    }
}

impl RawMeasure {
    fn build(&self, today: Date) -> Result<Option<Measure>, TestCaseError> {
        Ok(Some(match self {
            RawMeasure::Plain(i) => plain_measure(*i),
            RawMeasure::OrderRectification(on) => Measure::OrderRectification {
                ordered_on: on.on(today),
            },
            RawMeasure::Review(ok, on) => Measure::Review {
                result: result(*ok),
                reviewed_on: on.on(today),
            },
            RawMeasure::Penalty(s) => {
                let Some(decision_number) = remark("measure.decision_number", s)? else {
                    return Ok(None);
                };
                Measure::AdministrativePenalty { decision_number }
            }
            RawMeasure::Announcement(on) => Measure::PublicAnnouncement {
                announced_on: on.on(today),
            },
            RawMeasure::SecondReview(ok, on) => Measure::SecondReview {
                result: result(*ok),
                reviewed_on: on.on(today),
            },
            RawMeasure::Other(s) => {
                let Some(description) = remark("measure.description", s)? else {
                    return Ok(None);
                };
                Measure::Other { description }
            }
        }))
    }
}

impl RawCommand {
    /// The command as the gateway would hand it to the machine, or None when the gateway
    /// refuses a field first (the refusal naming the field is checked here).
    fn build(&self, today: Date, r: &Referral) -> Result<Option<ReferralCommand>, TestCaseError> {
        Ok(Some(match self {
            RawCommand::Progress(pick) => return progress(r, *pick).build(today, r),
            RawCommand::Acknowledge => ReferralCommand::Acknowledge,
            RawCommand::StartHandling => ReferralCommand::StartHandling,
            RawCommand::Measure(m) => match m.build(today)? {
                Some(m) => ReferralCommand::RecordMeasure(m),
                None => return Ok(None),
            },
            RawCommand::FileObjection { received, filed } => ReferralCommand::FileObjection {
                result_received_on: received.on(today),
                filed_on: filed.on(today),
            },
            RawCommand::Reinspection(ok) => ReferralCommand::RecordReinspection {
                result: result(*ok),
            },
            RawCommand::Return { reason, to } => {
                let Some(reason) = remark("reason", reason)? else {
                    return Ok(None);
                };
                ReferralCommand::Return {
                    reason,
                    suggested_agency: to.map(some_agency),
                }
            }
            RawCommand::Reroute(to) => ReferralCommand::Reroute {
                to: some_agency(*to),
            },
            RawCommand::Close(o, s) => {
                let Some(summary) = remark("summary", s)? else {
                    return Ok(None);
                };
                ReferralCommand::Close {
                    outcome: outcome(*o),
                    summary,
                }
            }
            RawCommand::Reaction(k, t) => {
                let Some(text) = remark("reaction.text", t)? else {
                    return Ok(None);
                };
                let kind = [
                    ReactionKind::FoundOnSaleHere,
                    ReactionKind::MeasuresTakenHere,
                    ReactionKind::Other,
                ][usize::from(*k) % 3];
                ReferralCommand::AddReaction { kind, text }
            }
            RawCommand::MarkOverdue => ReferralCommand::MarkOverdue,
        }))
    }
}

/// The machine's own invariants: what every reachable referral satisfies.
fn check_legal(r: &Referral, today: Date) -> Result<(), TestCaseError> {
    use ReferralState as S;
    let d = &r.deadlines;
    let f = &r.flags;
    let state = r.state;
    prop_assert_ne!(
        &r.sampling_agency,
        &r.handling_agency,
        "parties are distinct"
    );
    prop_assert!(
        !r.reacting_agencies.contains(&r.sampling_agency)
            && !r.reacting_agencies.contains(&r.handling_agency),
        "a party is listed as reacting agency"
    );
    // The acknowledgement clock runs exactly while delivery is awaited. A conforming
    // re-inspection of an objection filed before delivery closes the referral with the unmet
    // clock still stored; closed referrals list only flagged deadlines (services/disposal's
    // `agency_deadlines`), so that stale date is never shown as running.
    let awaiting_delivery = matches!(
        state,
        S::Opened
            | S::ObjectionPending {
                resume: ResumeState::Opened
            }
    );
    if awaiting_delivery {
        prop_assert!(
            d.acknowledgement.is_some(),
            "no acknowledgement clock in {}",
            state
        );
    } else {
        prop_assert!(
            d.acknowledgement.is_none() || state == S::Closed(Outcome::Overturned),
            "acknowledgement deadline {:?} in {}",
            d.acknowledgement,
            state
        );
    }
    // Correction and review run from the order; both or neither.
    prop_assert_eq!(d.rectification_ordered_on.is_some(), d.correction.is_some());
    prop_assert_eq!(d.rectification_ordered_on.is_some(), d.review.is_some());
    if let (Some(ordered), Some(c), Some(v)) = (d.rectification_ordered_on, d.correction, d.review)
    {
        prop_assert!(
            ordered < c.due && c.due < v.due,
            "order {ordered}, {c}, {v}"
        );
    }
    let rectifying = matches!(
        state,
        S::Rectifying
            | S::Announced
            | S::ObjectionPending {
                resume: ResumeState::Rectifying
            }
    );
    if rectifying {
        prop_assert!(
            d.rectification_ordered_on.is_some(),
            "{} without an order",
            state
        );
    }
    // The second-review window exists exactly once announced.
    prop_assert_eq!(d.second_review_opens.is_some(), d.second_review.is_some());
    if state == S::Announced {
        prop_assert!(d.second_review.is_some(), "announced without a window");
    }
    if d.second_review.is_some() {
        prop_assert!(
            matches!(state, S::Announced | S::Closed(_)),
            "second-review window in {}",
            state
        );
    }
    if let (Some(opens), Some(due)) = (d.second_review_opens, d.second_review) {
        prop_assert!(opens < due.due);
    }
    // Delivered referrals have an objection window.
    if matches!(
        state,
        S::Delivered | S::InProgress | S::Rectifying | S::Announced
    ) {
        prop_assert!(
            d.objection_window_closes.is_some(),
            "no window in {}",
            state
        );
    }
    // An objection stands the clock still: paused exactly while pending, nothing due meanwhile.
    let pending = matches!(state, S::ObjectionPending { .. });
    prop_assert_eq!(r.paused_since.is_some(), pending);
    prop_assert!(r.paused_days >= 0);
    if pending {
        prop_assert_eq!(r.next_deadline(), None);
        prop_assert!(!f.objection_decided, "a second objection is pending");
    }
    // Flags follow their causes.
    for kind in &f.overdue {
        let set = match kind {
            DeadlineKind::Acknowledgement => d.acknowledgement.is_some() || !awaiting_delivery,
            DeadlineKind::Correction | DeadlineKind::Review => d.review.is_some(),
            DeadlineKind::SecondReview => d.second_review.is_some(),
            _ => false,
        };
        prop_assert!(set, "{:?} flagged overdue without its deadline", kind);
    }
    if f.announcement_required {
        prop_assert!(
            f.review == Some(ReviewResult::NonConforming)
                || f.overdue.contains(&DeadlineKind::Review),
            "announcement required without a failed or late review"
        );
    }
    if f.suspension_required {
        prop_assert_eq!(f.second_review, Some(ReviewResult::NonConforming));
    }
    if f.review.is_some() {
        prop_assert!(d.rectification_ordered_on.is_some());
    }
    if f.second_review.is_some() {
        prop_assert!(d.second_review.is_some());
    }
    // A closed referral ended for a reason the flags record.
    if let S::Closed(outcome) = state {
        let ok = match outcome {
            Outcome::Rectified => {
                f.review == Some(ReviewResult::Conforming)
                    || f.second_review == Some(ReviewResult::Conforming)
            }
            Outcome::Overturned => f.objection_decided,
            Outcome::Penalized => f.penalty_decided,
            Outcome::TransferredToJudicial => f.transferred_to_judicial,
            Outcome::NoViolationFound => d.rectification_ordered_on.is_none(),
            Outcome::Other => true,
        };
        prop_assert!(ok, "closed as {:?} without its cause: {:?}", outcome, f);
    }
    // The window is only reported open while it may be used.
    if let Some(last) = r.open_objection_window(today) {
        prop_assert!(today <= last);
    }
    Ok(())
}

/// What an accepted step must satisfy, given the referral before it.
fn check_accepted(
    before: &Referral,
    t: &Transition,
    command: &ReferralCommand,
    actor: &Actor,
    today: Date,
    seen: &mut Monotone,
) -> Result<(), TestCaseError> {
    let after = &t.new_state;
    let name = command.name();
    prop_assert_eq!(before.role_of(actor), command.required_role());
    prop_assert_eq!(after.timeline_len, before.timeline_len + 1);
    prop_assert!(!t.events.is_empty(), "{} raised no event", name);
    for e in &t.events {
        if let Actor::Agency(a) = actor {
            prop_assert!(!e.notify.contains(a), "{} told the actor {}", name, a);
        }
        for n in &e.notify {
            prop_assert!(
                *n == after.sampling_agency
                    || *n == after.handling_agency
                    || *n == before.handling_agency
                    || after.reacting_agencies.contains(n),
                "{} told {}, not party to the referral",
                name,
                n
            );
        }
    }
    // Closed is terminal: only reactions are added.
    if let ReferralState::Closed(_) = before.state {
        prop_assert!(
            matches!(command, ReferralCommand::AddReaction { .. }),
            "{} accepted on a closed referral",
            name
        );
        prop_assert_eq!(after.state, before.state);
        prop_assert_eq!(&after.deadlines, &before.deadlines);
        prop_assert_eq!(&after.flags, &before.flags);
    }
    // A pending objection stands the clock still: nothing but its decision moves a deadline
    // or flags one overdue.
    if matches!(before.state, ReferralState::ObjectionPending { .. })
        && !matches!(command, ReferralCommand::RecordReinspection { .. })
    {
        prop_assert_eq!(&after.deadlines, &before.deadlines);
        prop_assert_eq!(&after.flags, &before.flags);
    }
    if let ReferralCommand::MarkOverdue = command {
        for e in &t.events {
            if let ReferralEventKind::Overdue(d) = e.kind {
                prop_assert!(d.is_overdue(today), "{} flagged before due", d);
                prop_assert!(
                    !before.flags.overdue.contains(&d.kind),
                    "{} flagged twice",
                    d
                );
            }
        }
    }
    // Monotone deadlines (see the module doc for the moves docs/domain.md allows).
    let new_handler = matches!(
        command,
        ReferralCommand::Reroute { .. }
            | ReferralCommand::Return {
                suggested_agency: Some(_),
                ..
            }
    );
    let (b, a) = (&before.deadlines, &after.deadlines);
    seen.see(
        "acknowledgement",
        a.acknowledgement.map(|d| d.due),
        new_handler,
        name,
    )?;
    seen.see("correction", a.correction.map(|d| d.due), false, name)?;
    seen.see("review", a.review.map(|d| d.due), false, name)?;
    for (field, was, is) in [
        (
            "order",
            b.rectification_ordered_on,
            a.rectification_ordered_on,
        ),
        (
            "objection window",
            b.objection_window_closes,
            a.objection_window_closes,
        ),
        (
            "second review opens",
            b.second_review_opens,
            a.second_review_opens,
        ),
        (
            "second review",
            b.second_review.map(|d| d.due),
            a.second_review.map(|d| d.due),
        ),
    ] {
        if was.is_some() {
            prop_assert_eq!(was, is, "{} changed the fixed {}", name, field);
        }
    }
    if a.correction != b.correction && b.correction.is_some() {
        prop_assert!(
            matches!(command, ReferralCommand::RecordReinspection { .. }),
            "{} moved the correction deadline",
            name
        );
    }
    Ok(())
}

/// What a refusal must satisfy.
fn check_refused(
    before: &Referral,
    refusal: &Refusal,
    command: &ReferralCommand,
    actor: &Actor,
) -> Result<(), TestCaseError> {
    let message = refusal.to_string();
    prop_assert!(
        message.contains(command.name()),
        "refusal {:?} does not name {}",
        message,
        command.name()
    );
    let wrong_party = before.role_of(actor) != command.required_role();
    prop_assert_eq!(
        matches!(refusal, Refusal::NotPermitted { .. }),
        wrong_party,
        "{}",
        message
    );
    if let Refusal::Precondition { reason, .. } = refusal {
        let reason_text = reason.to_string();
        prop_assert!(
            !reason_text.trim().is_empty(),
            "empty reason in {}",
            message
        );
        if let Unmet::BeforeLastStep { today, last } = reason {
            prop_assert!(*today < *last && *last == before.last_recorded_day());
        }
        if let Unmet::DateInFuture { field, .. } | Unmet::DateTooEarly { field, .. } = reason {
            prop_assert!(
                field.contains('.') && message.contains(field),
                "date refusal {:?} names no field path",
                message
            );
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Case {
    calendar: WorkingCalendar,
    acknowledgement_working_days: u32,
    steps: Vec<(Jump, Who, RawCommand)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        calendar(),
        1u32..=5,
        prop::collection::vec((jump(), who(), raw_command()), 1..=MAX_STEPS),
    )
        .prop_map(|(calendar, acknowledgement_working_days, steps)| Case {
            calendar,
            acknowledgement_working_days,
            steps,
        })
}

/// Runs one case, adding every state reached to `reached` (by its display, so a pending
/// objection or a test names what it interrupts and a closed referral its outcome).
fn run_case(case: &Case, reached: &mut BTreeSet<String>) -> Result<(), TestCaseError> {
    let rules = ReferralRules {
        calendar: case.calendar.clone(),
        acknowledgement_working_days: case.acknowledgement_working_days,
    };
    let mut now: OffsetDateTime = at(0);
    let mut r = match Referral::open(shanghai(), shandong(), now, &rules) {
        Ok(t) => t.new_state,
        Err(e) => return Err(TestCaseError::fail(format!("opening refused: {e}"))),
    };
    let mut seen = Monotone::default();
    seen.see(
        "acknowledgement",
        r.deadlines.acknowledgement.map(|d| d.due),
        false,
        "CreateReferral",
    )?;
    // The day of each accepted step, as the service dates its timeline entry.
    let mut last_step_day = china_date(now);
    check_legal(&r, china_date(now))?;
    for (jump, who, raw) in &case.steps {
        now = jump.apply(now);
        let today = china_date(now);
        let Some(command) = raw.build(today, &r)? else {
            continue;
        };
        let actor = who.actor(&r, &command);
        let before = r.clone();
        match apply(&r, &command, &actor, now, &rules) {
            Ok(t) => {
                check_accepted(&before, &t, &command, &actor, today, &mut seen)?;
                prop_assert!(
                    today >= last_step_day,
                    "{} dated {} on the timeline after a step of {}",
                    command.name(),
                    today,
                    last_step_day
                );
                last_step_day = today;
                r = t.new_state;
            }
            Err(refusal) => {
                // `apply` borrows the referral immutably, so a refused step cannot have
                // half-applied anything; the caller keeps `before`.
                check_refused(&before, &refusal, &command, &actor)?;
            }
        }
        reached.insert(r.state.to_string());
        check_legal(&r, today)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn referral_stays_legal_under_random_commands_and_clock_jumps(case in case()) {
        run_case(&case, &mut BTreeSet::new())?;
    }
}

/// The generated cases (the same strategy, a fixed seed) reach every state.
#[test]
fn random_sequences_reach_every_state() {
    assert_reaches_every_state(
        case(),
        run_case,
        &[
            "REFERRAL_STATE_OPENED",
            "REFERRAL_STATE_DELIVERED",
            "REFERRAL_STATE_IN_PROGRESS",
            "REFERRAL_STATE_RECTIFYING",
            "REFERRAL_STATE_OBJECTION_PENDING",
            "REFERRAL_STATE_ANNOUNCED",
            "REFERRAL_STATE_RETURNED",
            "REFERRAL_STATE_CLOSED",
        ],
    );
}
