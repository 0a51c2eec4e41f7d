//! One test per rule of the referral module doc: deadlines, objections, announcement,
//! closing, rerouting and reactions. Fixtures come from the parent test module.

use super::*;

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
            ReferralEventKind::Overdue(Deadline::new(DeadlineKind::Review, date!(2024 - 05 - 20))),
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
    assert_eq!(n.role_of(&Actor::Agency(shandong())), Party::OtherAgency);
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
                role: Party::SamplingAgency,
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
