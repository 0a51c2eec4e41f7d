//! After issue: conditions met, the post-issue check of a commitment-based licence, and
//! changes of the holder's name or address on the licence.

use super::Step;
use crate::licensing::{
    ApplicationState as S, LicenceChange, LicensingEventKind, Refusal, Route, Unmet,
};

/// Confirms that the conditions of a conditional approval are met.
pub(super) fn confirm_conditions_met(s: &mut Step<'_>) -> Result<(), Refusal> {
    if !matches!(
        s.state,
        S::ApprovedWithConditions | S::LicenceIssued | S::PostIssueCheckPassed
    ) {
        return Err(s.illegal());
    }
    if s.app.conditions.is_none() || s.app.conditions_met {
        return Err(s.unmet(Unmet::NoOpenConditions));
    }
    s.next.conditions_met = true;
    s.kinds.push(LicensingEventKind::ConditionsMet);
    Ok(())
}

/// Records the post-issue check (证后核查) of a commitment-based licence.
pub(super) fn record_post_issue_check(s: &mut Step<'_>, passed: &bool) -> Result<(), Refusal> {
    if s.state != S::LicenceIssued {
        return Err(s.illegal());
    }
    if s.app.route != Route::Commitment {
        return Err(s.unmet(Unmet::NotCommitmentRoute));
    }
    s.next.deadlines.post_issue_check = None;
    if *passed {
        s.next.state = S::PostIssueCheckPassed;
        s.kinds.push(LicensingEventKind::PostIssueCheckPassed);
    } else {
        s.next.state = S::Revoked;
        s.kinds.push(LicensingEventKind::Revoked);
    }
    Ok(())
}

/// Changes the holder's name or address on an issued licence.
pub(super) fn change_licence(s: &mut Step<'_>, change: &LicenceChange) -> Result<(), Refusal> {
    if !matches!(s.state, S::LicenceIssued | S::PostIssueCheckPassed) {
        return Err(s.illegal());
    }
    if let Some(name) = change.name() {
        s.next.holder.name = name.clone();
    }
    if let Some(address) = change.address() {
        s.next.holder.address = address.clone();
    }
    if let Some(licence) = s.next.licence.as_mut() {
        licence.holder = s.next.holder.clone();
    }
    s.kinds.push(LicensingEventKind::LicenceChanged);
    Ok(())
}
