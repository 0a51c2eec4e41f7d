//! Examination: review, on-site verification (own or delegated), product testing and the
//! one extension of the decision limit: every step between acceptance and the decision.

use crate::calendar::DeadlineKind;
use crate::referral::Actor;

use super::Step;
use crate::licensing::{
    ApplicationState as S, LicensingEventKind, Party, Refusal, TestingFrom, Unmet,
    VerificationReport, VerifierCount,
};

/// Starts the examination of an accepted application.
pub(super) fn start_review(s: &mut Step<'_>) -> Result<(), Refusal> {
    if s.state != S::Accepted {
        return Err(s.illegal());
    }
    s.next.state = S::UnderReview;
    s.kinds.push(LicensingEventKind::ReviewStarted);
    Ok(())
}

/// Delegates the on-site verification (实地核查委托) to the accepting agency.
pub(super) fn delegate_verification(s: &mut Step<'_>) -> Result<(), Refusal> {
    if s.state != S::UnderReview {
        return Err(s.illegal());
    }
    s.next.state = S::VerificationDelegated;
    s.kinds.push(LicensingEventKind::VerificationDelegated);
    Ok(())
}

/// Reports the verification: whoever verifies reports, the issuing agency or its delegate.
pub(super) fn report_verification(
    s: &mut Step<'_>,
    verifiers: &VerifierCount,
    passed: &bool,
) -> Result<(), Refusal> {
    // Whoever verifies reports: the issuing agency itself, or the delegate.
    let verifier = match s.state {
        S::UnderReview => Party::IssuingAgency,
        S::VerificationDelegated => Party::AcceptingAgency,
        _ => return Err(s.illegal()),
    };
    if s.role != verifier {
        return Err(s.not_permitted());
    }
    let Actor::Agency(by) = s.actor else {
        return Err(s.not_permitted());
    };
    s.next.verification = Some(VerificationReport {
        by: by.clone(),
        verifiers: *verifiers,
        passed: *passed,
    });
    s.next.state = S::VerificationReported;
    s.kinds
        .push(LicensingEventKind::VerificationReported { passed: *passed });
    Ok(())
}

/// Starts product testing, which pauses the decision clock (art. 45).
pub(super) fn start_testing(s: &mut Step<'_>) -> Result<(), Refusal> {
    let resume = match s.state {
        S::UnderReview => TestingFrom::UnderReview,
        S::VerificationReported => TestingFrom::VerificationReported,
        _ => return Err(s.illegal()),
    };
    s.next.state = S::Testing { resume };
    s.next.paused_since = Some(s.today);
    s.kinds.push(LicensingEventKind::TestingStarted);
    Ok(())
}

/// Records the test result and adds the paused working days to the decision limit.
pub(super) fn record_test_result(s: &mut Step<'_>, conforming: &bool) -> Result<(), Refusal> {
    let S::Testing { resume } = s.state else {
        return Err(s.illegal());
    };
    let since = s.next.paused_since.take().unwrap_or(s.today);
    let paused = u32::try_from(s.rules.calendar.working_days_between(since, s.today)).unwrap_or(0);
    s.next.paused_working_days += paused;
    s.next.recompute_decision(s.rules).map_err(|r| s.unmet(r))?;
    s.next.test_conforming = Some(*conforming);
    s.next.state = resume.state();
    s.kinds.push(LicensingEventKind::TestResultRecorded {
        conforming: *conforming,
    });
    Ok(())
}

/// Extends the decision limit by 10 working days, once (art. 42).
pub(super) fn extend_decision_limit(s: &mut Step<'_>) -> Result<(), Refusal> {
    if !matches!(
        s.state,
        S::Accepted
            | S::UnderReview
            | S::VerificationDelegated
            | S::VerificationReported
            | S::Testing { .. }
    ) {
        return Err(s.illegal());
    }
    if s.app.decision_extended {
        return Err(s.unmet(Unmet::AlreadyExtended));
    }
    s.next.decision_extended = true;
    s.next.recompute_decision(s.rules).map_err(|r| s.unmet(r))?;
    s.next.overdue.remove(&DeadlineKind::Decision);
    let due = s.next.deadlines.decision.map_or(s.today, |d| d.due);
    s.kinds
        .push(LicensingEventKind::DecisionLimitExtended { due });
    Ok(())
}
