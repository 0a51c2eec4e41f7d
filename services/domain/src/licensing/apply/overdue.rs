//! The scheduler's step: an application past its acceptance limit is accepted by law, and
//! otherwise every running limit that has newly passed is marked overdue, once.

use crate::calendar::Deadline;

use super::Step;
use crate::licensing::{ApplicationState as S, LicensingEventKind, Refusal, Unmet};

/// The scheduler's step: deemed acceptance, or every newly overdue limit.
pub(super) fn mark_overdue(s: &mut Step<'_>) -> Result<(), Refusal> {
    if matches!(
        s.state,
        S::SupplementRequested | S::NotAccepted | S::Refused | S::Revoked
    ) {
        return Err(s.illegal());
    }
    if s.state == S::Submitted && s.app.acceptance_lapsed(s.today) {
        // Accepted by law as of the receipt of the materials (art. 32(4)).
        s.next
            .accept(s.app.materials_received_on, true, s.rules)
            .map_err(|r| s.unmet(r))?;
        s.kinds.push(LicensingEventKind::Accepted { deemed: true });
    } else {
        let newly: Vec<Deadline> = s
            .app
            .running_deadlines()
            .into_iter()
            .filter(|d| d.is_overdue(s.today) && !s.app.overdue.contains(&d.kind))
            .collect();
        if newly.is_empty() {
            return Err(s.unmet(Unmet::NothingOverdue {
                next: s.app.next_deadline(),
            }));
        }
        for d in newly {
            s.next.overdue.insert(d.kind);
            s.kinds.push(LicensingEventKind::Overdue(d));
        }
    }
    Ok(())
}
