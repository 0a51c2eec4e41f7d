//! The decision and the issue of the licence: what must hold before approval, and the
//! issuance, conditions and post-issue-check deadlines the decision starts.

use crate::calendar::{CalendarError, Deadline, DeadlineKind};

use super::Step;
use crate::licensing::{
    ApplicationState as S, Decision, Licence, LicenceNumber, LicensingEventKind, Refusal, Route,
    Serial, Unmet, years_later,
};

/// The certificate is due 10 working days after the approval (art. 44).
fn issuance(s: &Step<'_>) -> Result<Deadline, Refusal> {
    s.rules
        .calendar
        .add_working_days(s.today, s.rules.issuance_working_days)
        .map(|due| Deadline::new(DeadlineKind::Issuance, due))
        .map_err(|e| s.unmet(e.into()))
}

/// Approves, approves with conditions, or refuses.
pub(super) fn decide(s: &mut Step<'_>, decision: &Decision) -> Result<(), Refusal> {
    match s.state {
        S::UnderReview | S::VerificationReported => {}
        S::Accepted if s.app.route == Route::Commitment => {}
        S::Accepted => return Err(s.unmet(Unmet::ReviewNotStarted)),
        _ => return Err(s.illegal()),
    }
    if !matches!(decision, Decision::Refuse { .. }) {
        match (&s.app.verification, s.app.route) {
            (Some(v), _) if !v.passed => return Err(s.unmet(Unmet::VerificationFailed)),
            (None, Route::Ordinary) => return Err(s.unmet(Unmet::VerificationMissing)),
            _ => {}
        }
        if s.app.test_conforming == Some(false) {
            return Err(s.unmet(Unmet::TestFailed));
        }
    }
    s.next.deadlines.decision = None;
    s.next.deadlines.verification = None;
    match decision {
        Decision::Approve => {
            s.next.state = S::Approved;
            s.next.deadlines.issuance = Some(issuance(s)?);
            s.kinds.push(LicensingEventKind::Approved);
        }
        Decision::ApproveWithConditions { conditions, due } => {
            if *due <= s.today {
                return Err(s.unmet(Unmet::ConditionsDueNotInFuture {
                    due: *due,
                    today: s.today,
                }));
            }
            s.next.state = S::ApprovedWithConditions;
            s.next.deadlines.issuance = Some(issuance(s)?);
            s.next.conditions = Some(conditions.clone());
            s.next.deadlines.conditions = Some(Deadline::new(DeadlineKind::Conditions, *due));
            s.kinds
                .push(LicensingEventKind::ApprovedWithConditions { due: *due });
        }
        Decision::Refuse { .. } => {
            s.next.state = S::Refused;
            s.kinds.push(LicensingEventKind::Refused);
        }
    }
    Ok(())
}

/// Issues the certificate with its number and five-year validity.
pub(super) fn issue_licence(s: &mut Step<'_>, serial: &Serial) -> Result<(), Refusal> {
    if !matches!(s.state, S::Approved | S::ApprovedWithConditions) {
        return Err(s.illegal());
    }
    let number = LicenceNumber::new(
        s.app.issuing_agency.province().province_abbreviation(),
        s.app.product.industry_code,
        s.app.product.product_code,
        *serial,
    )
    // An agency id always names a province, so this only fails on a corrupt store.
    .map_err(|_| s.illegal())?;
    let valid_until = years_later(s.today, s.rules.validity_years);
    if valid_until <= s.today {
        // `years_later` saturates at the last supported date: a licence issued there would
        // expire the day it is issued.
        return Err(s.unmet(Unmet::Calendar(CalendarError::OutOfRange {
            from: s.today,
            days: i64::from(s.rules.validity_years) * 365,
        })));
    }
    s.next.licence = Some(Licence {
        number: number.clone(),
        holder: s.app.holder.clone(),
        valid_from: s.today,
        valid_until,
    });
    s.next.deadlines.issuance = None;
    if s.app.route == Route::Commitment {
        let due = s
            .rules
            .calendar
            .add_working_days(s.today, s.rules.post_issue_check_working_days)
            .map_err(|e| s.unmet(e.into()))?;
        s.next.deadlines.post_issue_check = Some(Deadline::new(DeadlineKind::PostIssueCheck, due));
    }
    s.next.state = S::LicenceIssued;
    s.kinds.push(LicensingEventKind::LicenceIssued { number });
    Ok(())
}
