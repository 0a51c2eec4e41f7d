//! Intake: acceptance, the one supplement notice and non-acceptance (行政许可法 art. 32).
//! The 5-day acceptance clock and deemed acceptance are decided here and nowhere else.

use crate::calendar::{Deadline, DeadlineKind};

use super::Step;
use crate::licensing::{ApplicationState as S, LicensingEventKind, Refusal, Unmet};

/// Accepts the application; late, it counts as accepted from the receipt of the materials (art. 32(4)).
pub(super) fn accept(s: &mut Step<'_>) -> Result<(), Refusal> {
    if s.state != S::Submitted {
        return Err(s.illegal());
    }
    let deemed = s.app.acceptance_lapsed(s.today);
    let on = if deemed {
        s.app.materials_received_on
    } else {
        s.today
    };
    s.next.accept(on, deemed, s.rules).map_err(|r| s.unmet(r))?;
    s.kinds.push(LicensingEventKind::Accepted { deemed });
    Ok(())
}

/// Asks once for a supplement (一次性告知) while the 5-day acceptance limit runs.
pub(super) fn request_supplement(s: &mut Step<'_>) -> Result<(), Refusal> {
    if s.state != S::Submitted {
        return Err(s.illegal());
    }
    if s.app.acceptance_lapsed(s.today) {
        return Err(s.unmet(Unmet::DeemedAccepted {
            since: s.app.materials_received_on,
        }));
    }
    if s.app.supplement_requested {
        return Err(s.unmet(Unmet::SupplementAlreadyRequested));
    }
    s.next.state = S::SupplementRequested;
    s.next.supplement_requested = true;
    s.next.deadlines.acceptance = None;
    s.kinds.push(LicensingEventKind::SupplementRequested);
    Ok(())
}

/// Does not accept the application, unless it is already accepted by law.
pub(super) fn not_accept(s: &mut Step<'_>) -> Result<(), Refusal> {
    match s.state {
        S::Submitted if s.app.acceptance_lapsed(s.today) => {
            return Err(s.unmet(Unmet::DeemedAccepted {
                since: s.app.materials_received_on,
            }));
        }
        S::Submitted | S::SupplementRequested => {}
        _ => return Err(s.illegal()),
    }
    s.next.state = S::NotAccepted;
    s.next.deadlines.acceptance = None;
    s.kinds.push(LicensingEventKind::NotAccepted);
    Ok(())
}

/// Records the applicant's supplement and restarts the acceptance clock.
pub(super) fn record_supplement(s: &mut Step<'_>) -> Result<(), Refusal> {
    if s.state != S::SupplementRequested {
        return Err(s.illegal());
    }
    let due = s
        .rules
        .calendar
        .add_working_days(s.today, s.rules.acceptance_working_days)
        .map_err(|e| s.unmet(e.into()))?;
    s.next.state = S::Submitted;
    s.next.materials_received_on = s.today;
    s.next.deadlines.acceptance = Some(Deadline::new(DeadlineKind::Acceptance, due));
    s.next.overdue.remove(&DeadlineKind::Acceptance);
    s.kinds.push(LicensingEventKind::SupplementRecorded);
    Ok(())
}
