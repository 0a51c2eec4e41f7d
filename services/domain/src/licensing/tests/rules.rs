//! One test per rule of the statute the licensing module doc lists: the pilot, acceptance,
//! supplements, the clocks, testing, delegation, conditions, the commitment route, and the
//! values (licence numbers, catalogue entries). Fixtures come from the parent test module.

use super::*;

#[test]
fn commitment_based_fertilizer_is_refused_at_submission() {
    assert_eq!(
        Submission::new(fertilizer(), Route::Commitment, holder()),
        Err(LicensingError::CommitmentNotAllowed {
            code: "fertilizer".into(),
            name: "化肥".into()
        })
    );
    assert!(Submission::new(fertilizer(), Route::Ordinary, holder()).is_ok());
    assert!(Submission::new(cable(), Route::Commitment, holder()).is_ok());
}

#[test]
fn only_pilot_provinces_take_part() {
    let submission = || Submission::new(fertilizer(), Route::Ordinary, holder()).unwrap();
    let at_jiangsu = Application::submit(submission(), &jiangsu(), shandong(), at(0), &rules());
    assert_eq!(
        at_jiangsu.as_ref().map_err(Refusal::kind).err(),
        Some(RefusalKind::PermissionDenied)
    );
    let to_jiangsu = Application::submit(submission(), &shanghai(), jiangsu(), at(0), &rules());
    assert_eq!(
        to_jiangsu.map_err(|r| r.kind()).err(),
        Some(RefusalKind::FailedPrecondition)
    );
    let same = Application::submit(submission(), &shandong(), shandong(), at(0), &rules());
    assert!(matches!(same, Err(Refusal::IssuingAgency { .. })));
    let t = Application::submit(submission(), &shanghai(), shandong(), at(0), &rules()).unwrap();
    assert_eq!(t.events[0].notify, vec![shandong()]);
    // Monday + 5 working days = next Monday.
    assert_eq!(t.new_state.next_deadline().map(|d| d.due), Some(day(7)));
}

#[test]
fn silence_past_five_working_days_counts_as_acceptance() {
    let app = submitted();
    // Due Monday 11 March; on Tuesday 12 the window may no longer ask for a supplement.
    let late = run(
        &app,
        LicensingCommand::RequestSupplement {
            missing: ItemList::new("missing", vec![text("x")]).unwrap(),
        },
        8,
    );
    assert!(matches!(
        late,
        Err(Refusal::Precondition { reason: Unmet::DeemedAccepted { since }, .. }) if since == day(0)
    ));
    assert!(matches!(
        run(&app, LicensingCommand::NotAccept { reason: text("x") }, 8),
        Err(Refusal::Precondition {
            reason: Unmet::DeemedAccepted { .. },
            ..
        })
    ));
    assert!(matches!(
        run(&app, LicensingCommand::MarkOverdue, 7),
        Err(Refusal::Precondition {
            reason: Unmet::NothingOverdue { .. },
            ..
        })
    ));
    let t = run(&app, LicensingCommand::MarkOverdue, 8).unwrap();
    let deemed = t.new_state;
    assert_eq!(deemed.state, ApplicationState::Accepted);
    assert!(deemed.deemed_accepted);
    assert_eq!(deemed.accepted_on, Some(day(0)));
    assert_eq!(
        t.events[0].kind,
        LicensingEventKind::Accepted { deemed: true }
    );
    assert_eq!(t.events[0].notify, vec![shanghai(), shandong()]);
    // The decision clock runs from the receipt: 20 working days after 4 March is 1 April.
    assert_eq!(
        deemed.deadlines.decision.map(|d| d.due),
        Some(date!(2024 - 04 - 01))
    );
    // A late Accept is recorded the same way.
    let late_accept = step(&app, LicensingCommand::Accept, 10);
    assert!(late_accept.deemed_accepted);
    assert_eq!(late_accept.accepted_on, Some(day(0)));
    let on_time = step(&app, LicensingCommand::Accept, 7);
    assert!(!on_time.deemed_accepted);
    assert_eq!(on_time.accepted_on, Some(day(7)));
}

#[test]
fn supplement_round_trip_restarts_the_acceptance_clock_once() {
    let app = supplement_requested();
    assert_eq!(
        app.next_deadline(),
        None,
        "the applicant's time is not counted"
    );
    let back = step(&app, LicensingCommand::RecordSupplement, 9);
    assert_eq!(back.state, ApplicationState::Submitted);
    // Wednesday 13 March + 5 working days = Wednesday 20 March.
    assert_eq!(
        back.next_deadline().map(|d| d.due),
        Some(date!(2024 - 03 - 20))
    );
    let again = run(
        &back,
        LicensingCommand::RequestSupplement {
            missing: ItemList::new("missing", vec![text("more")]).unwrap(),
        },
        10,
    );
    assert!(matches!(
        again,
        Err(Refusal::Precondition {
            reason: Unmet::SupplementAlreadyRequested,
            ..
        })
    ));
    assert_eq!(
        step(&back, LicensingCommand::Accept, 10).accepted_on,
        Some(day(10))
    );
}

#[test]
fn acceptance_sets_verification_and_decision_clocks() {
    let app = accepted();
    // 30 calendar days after 4 March is 3 April; 20 working days is 1 April.
    assert_eq!(
        app.deadlines.verification.map(|d| d.due),
        Some(date!(2024 - 04 - 03))
    );
    assert_eq!(
        app.deadlines.decision.map(|d| d.due),
        Some(date!(2024 - 04 - 01))
    );
    assert_eq!(
        app.next_deadline().map(|d| d.kind),
        Some(DeadlineKind::Decision)
    );
    // The catalogue's shorter limit applies; commitment route has no verification clock.
    let cable = step(
        &submit(cable(), Route::Commitment),
        LicensingCommand::Accept,
        0,
    );
    assert_eq!(cable.deadlines.verification, None);
    assert_eq!(
        cable.deadlines.decision.map(|d| d.due),
        Some(date!(2024 - 03 - 25))
    );
    // Extended once by 10 working days.
    let extended = step(&app, LicensingCommand::ExtendDecisionLimit, 3);
    assert_eq!(
        extended.deadlines.decision.map(|d| d.due),
        Some(date!(2024 - 04 - 15))
    );
    assert!(matches!(
        run(&extended, LicensingCommand::ExtendDecisionLimit, 4),
        Err(Refusal::Precondition {
            reason: Unmet::AlreadyExtended,
            ..
        })
    ));
    // Overdue at day 100: both flagged once.
    let t = run(&app, LicensingCommand::MarkOverdue, 100).unwrap();
    let kinds: Vec<_> = t.events.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(matches!(
        run(&t.new_state, LicensingCommand::MarkOverdue, 101),
        Err(Refusal::Precondition {
            reason: Unmet::NothingOverdue { next: None },
            ..
        })
    ));
}

/// The verification limit counts 30 calendar days from acceptance (条例 art. 18) and rolls a
/// last day off to the next working day (民法典 art. 203); the decision limit keeps counting
/// working days (行政许可法 art. 42).
#[test]
fn verification_counts_calendar_days_and_rolls_past_days_off() {
    // New Year's Day 2027 (a Friday) off; Saturday 9 January 2027 worked (调休).
    let calendar = WorkingCalendar::new([date!(2027 - 01 - 01)], [date!(2027 - 01 - 09)]).unwrap();
    let with_days_off = LicensingRules {
        calendar,
        ..rules()
    };
    let cases = [
        // (accepted on, rules, verification due, decision due)
        (
            date!(2026 - 12 - 07),
            rules(),
            date!(2027 - 01 - 06),
            date!(2027 - 01 - 04),
        ),
        // Day 30 is Saturday 9 January: Monday 11 January.
        (
            date!(2026 - 12 - 10),
            rules(),
            date!(2027 - 01 - 11),
            date!(2027 - 01 - 07),
        ),
        // …unless that Saturday is a make-up working day.
        (
            date!(2026 - 12 - 10),
            with_days_off.clone(),
            date!(2027 - 01 - 09),
            date!(2027 - 01 - 08),
        ),
        // Day 30 is the holiday of 1 January, then a weekend: Monday 4 January.
        (
            date!(2026 - 12 - 02),
            with_days_off.clone(),
            date!(2027 - 01 - 04),
            date!(2026 - 12 - 30),
        ),
        // The same day on a weekends-only calendar is a working Friday.
        (
            date!(2026 - 12 - 02),
            rules(),
            date!(2027 - 01 - 01),
            date!(2026 - 12 - 30),
        ),
    ];
    for (accepted_on, rules, verification, decision) in cases {
        let now = accepted_on
            .with_hms(10, 0, 0)
            .unwrap()
            .assume_offset(offset!(+8));
        let submission = Submission::new(fertilizer(), Route::Ordinary, holder()).unwrap();
        let submitted = Application::submit(submission, &shanghai(), shandong(), now, &rules)
            .unwrap()
            .new_state;
        let issuing = Actor::Agency(shandong());
        let app = apply(&submitted, &LicensingCommand::Accept, &issuing, now, &rules)
            .unwrap()
            .new_state;
        assert_eq!(
            app.deadlines.verification.map(|d| d.due),
            Some(verification),
            "verification after acceptance on {accepted_on}"
        );
        assert_eq!(
            app.deadlines.decision.map(|d| d.due),
            Some(decision),
            "decision after acceptance on {accepted_on}"
        );
    }
}

#[test]
fn testing_pauses_the_decision_clock() {
    let app = reported();
    let before = app.deadlines.decision.map(|d| d.due);
    let testing = step(&app, LicensingCommand::StartTesting, 1);
    assert_eq!(testing.next_deadline(), None);
    // Tuesday 5 March to Tuesday 19 March: 10 working days paused.
    let done = step(
        &testing,
        LicensingCommand::RecordTestResult { conforming: true },
        15,
    );
    assert_eq!(done.state, ApplicationState::VerificationReported);
    assert_eq!(done.paused_working_days, 10);
    assert_eq!(before, Some(date!(2024 - 04 - 01)));
    assert_eq!(
        done.deadlines.decision.map(|d| d.due),
        Some(date!(2024 - 04 - 15))
    );
    // A failed test forbids approval but not refusal.
    let failed = step(
        &testing,
        LicensingCommand::RecordTestResult { conforming: false },
        15,
    );
    assert!(matches!(
        run(&failed, LicensingCommand::Decide(Decision::Approve), 16),
        Err(Refusal::Precondition {
            reason: Unmet::TestFailed,
            ..
        })
    ));
    assert!(
        run(
            &failed,
            LicensingCommand::Decide(Decision::Refuse { reason: text("x") }),
            16
        )
        .is_ok()
    );
}

#[test]
fn verification_is_delegated_and_reported_by_the_delegate() {
    let app = delegated();
    let by_issuer = apply(
        &app,
        &report(true),
        &Actor::Agency(shandong()),
        at(1),
        &rules(),
    );
    assert!(matches!(
        by_issuer,
        Err(Refusal::NotPermitted {
            role: Party::IssuingAgency,
            ..
        })
    ));
    let t = apply(
        &app,
        &report(false),
        &Actor::Agency(shanghai()),
        at(1),
        &rules(),
    )
    .unwrap();
    assert_eq!(t.events[0].notify, vec![shandong()]);
    assert_eq!(
        t.new_state.verification.as_ref().map(|v| v.by.clone()),
        Some(shanghai())
    );
    assert!(matches!(
        run(&t.new_state, LicensingCommand::Decide(Decision::Approve), 2),
        Err(Refusal::Precondition {
            reason: Unmet::VerificationFailed,
            ..
        })
    ));
    // Not delegated: the accepting agency may not report.
    let own = apply(
        &under_review(),
        &report(true),
        &Actor::Agency(shanghai()),
        at(1),
        &rules(),
    );
    assert!(matches!(own, Err(Refusal::NotPermitted { .. })));
    assert!(VerifierCount::new(1).is_err() && VerifierCount::new(5).is_err());
}

#[test]
fn conditional_approval_then_issue_with_number_and_validity() {
    let app = reported();
    assert!(matches!(
        run(&app, with_conditions(0), 0),
        Err(Refusal::Precondition {
            reason: Unmet::ConditionsDueNotInFuture { .. },
            ..
        })
    ));
    let approved = step(&app, with_conditions(60), 0);
    // Issue within 10 working days: Monday 18 March.
    assert_eq!(
        approved.next_deadline().map(|d| (d.kind, d.due)),
        Some((DeadlineKind::Issuance, day(14)))
    );
    let t = run(&approved, issue(42), 2).unwrap();
    let licence = t.new_state.licence.clone().unwrap();
    assert_eq!(licence.number.to_string(), "(鲁)XK13-001-00042");
    assert_eq!(licence.valid_from, day(2));
    assert_eq!(licence.valid_until, date!(2029 - 03 - 06));
    assert_eq!(t.events[0].notify, vec![shanghai()]);
    let issued = t.new_state;
    assert_eq!(
        issued.next_deadline().map(|d| d.kind),
        Some(DeadlineKind::Conditions)
    );
    assert!(matches!(
        run(
            &issued,
            LicensingCommand::RecordPostIssueCheck { passed: true },
            3
        ),
        Err(Refusal::Precondition {
            reason: Unmet::NotCommitmentRoute,
            ..
        })
    ));
    let met = step(&issued, LicensingCommand::ConfirmConditionsMet, 30);
    assert_eq!(met.next_deadline(), None);
    // Linked change after a business-licence change.
    let changed = step(
        &met,
        LicensingCommand::ChangeLicence(
            LicenceChange::new(None, Some(text("山东省淄博市某路2号"))).unwrap(),
        ),
        40,
    );
    let licence = changed.licence.unwrap();
    assert_eq!(licence.holder.address.as_str(), "山东省淄博市某路2号");
    assert_eq!(licence.holder.name, holder().name);
    assert_eq!(
        LicenceChange::new(None, None),
        Err(LicensingError::NothingToChange)
    );
    // A change of the registered address (住所) alone is a change too; the holder's name
    // and production address stay.
    let residence = LicenceChange::of(None, Some(text("山东省济南市新路9号")), None).unwrap();
    assert_eq!(
        residence.residence().map(Remark::as_str),
        Some("山东省济南市新路9号")
    );
    let moved = step(&met, LicensingCommand::ChangeLicence(residence), 41);
    assert_eq!(moved.licence.unwrap().holder, holder());
    assert_eq!(
        LicenceChange::of(None, None, None),
        Err(LicensingError::NothingToChange)
    );
}

#[test]
fn commitment_route_is_checked_after_issue() {
    let app = commitment_issued();
    // Post-issue check within 30 working days of Monday 4 March: Monday 15 April.
    assert_eq!(
        app.next_deadline(),
        Some(Deadline::new(
            DeadlineKind::PostIssueCheck,
            date!(2024 - 04 - 15)
        ))
    );
    let t = run(&app, LicensingCommand::MarkOverdue, 43).unwrap();
    assert_eq!(
        t.events[0].kind,
        LicensingEventKind::Overdue(app.next_deadline().unwrap())
    );
    let revoked = step(
        &t.new_state,
        LicensingCommand::RecordPostIssueCheck { passed: false },
        44,
    );
    assert_eq!(revoked.state, ApplicationState::Revoked);
    assert!(matches!(
        run(
            &revoked,
            LicensingCommand::ChangeLicence(LicenceChange::new(Some(text("x")), None).unwrap()),
            45
        ),
        Err(Refusal::IllegalInState { .. })
    ));
    // Ordinary route without verification cannot be decided from Accepted.
    assert!(matches!(
        run(&accepted(), LicensingCommand::Decide(Decision::Approve), 1),
        Err(Refusal::Precondition {
            reason: Unmet::ReviewNotStarted,
            ..
        })
    ));
}

/// The form issue 16 pins: the contract's method and state names, the Chinese term beside
/// the state, the reason after a colon, the role in plain English.
#[test]
fn refusals_speak_the_contracts_language() {
    let late = run(&not_accepted(), LicensingCommand::Accept, 1).unwrap_err();
    assert_eq!(
        late.to_string(),
        "AcceptApplication is not allowed in state APPLICATION_STATE_NOT_ACCEPTED (不予受理)"
    );
    let early = run(&accepted(), LicensingCommand::Decide(Decision::Approve), 1).unwrap_err();
    assert_eq!(
        early.to_string(),
        "DecideApplication is not allowed in state APPLICATION_STATE_ACCEPTED (已受理): the \
         ordinary route (先核后证) is decided only after the examination starts"
    );
    let window = Actor::Agency(accepted().accepting_agency.clone());
    let denied = apply(
        &accepted(),
        &LicensingCommand::StartReview,
        &window,
        at(1),
        &rules(),
    )
    .unwrap_err();
    assert_eq!(
        denied.to_string(),
        "StartReview may not be called by the accepting agency"
    );
    let testing = ApplicationState::Testing {
        resume: TestingFrom::UnderReview,
    };
    assert_eq!(
        testing.to_string(),
        "APPLICATION_STATE_UNDER_REVIEW (审查中, product testing 产品检验 under way)"
    );
}

#[test]
fn licence_numbers_format_and_parse() {
    let n = LicenceNumber::new(
        "鲁",
        IndustryCode::parse("13").unwrap(),
        ProductCode::parse("001").unwrap(),
        Serial::new(1).unwrap(),
    )
    .unwrap();
    assert_eq!(n.to_string(), "(鲁)XK13-001-00001");
    assert_eq!(LicenceNumber::parse("(鲁)XK13-001-00001"), Ok(n.clone()));
    assert_eq!(LicenceNumber::parse("（鲁）XK13-001-00001"), Ok(n));
    for bad in [
        "(鲁)XK13-001-0001",
        "(鲁)XK13-01-00001",
        "(鲁)XK1-001-00001",
        "(X)XK13-001-00001",
        "鲁XK13-001-00001",
        "(鲁)QS13-001-00001",
        "(鲁)XK13-001-00000",
        "(鲁)XK13-001-00001-1",
        "(鲁)XK13-001-+0001",
    ] {
        assert!(
            matches!(
                LicenceNumber::parse(bad),
                Err(LicensingError::LicenceNumberFormat(_))
            ),
            "{bad}"
        );
    }
    assert!(Serial::new(0).is_err() && Serial::new(100_000).is_err());
    assert!(DecisionLimit::new(21).is_err() && DecisionLimit::new(0).is_err());
    assert!(matches!(
        LicenceNumber::new(
            "X",
            IndustryCode::parse("13").unwrap(),
            ProductCode::parse("001").unwrap(),
            Serial::new(1).unwrap()
        ),
        Err(LicensingError::ProvinceAbbreviation(_))
    ));
    assert_eq!(years_later(date!(2024 - 02 - 29), 5), date!(2029 - 02 - 28));
}

#[test]
fn catalogue_entries_load_from_configuration() {
    let json = r#"{"code":"fertilizer","name":"化肥","industry_code":"13","product_code":"001","commitment_allowed":false}"#;
    let entry: CatalogueEntry = serde_json::from_str(json).unwrap();
    assert_eq!(entry, fertilizer());
    let bad = r#"{"code":"fertilizer","name":"化肥","industry_code":"133","product_code":"001","commitment_allowed":false}"#;
    assert!(serde_json::from_str::<CatalogueEntry>(bad).is_err());
}
