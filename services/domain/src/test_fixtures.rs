//! Fixtures the referral and licensing state-machine tests share: a calendar anchored on a
//! Monday, the agencies of the scenarios, and free text.

use time::macros::{date, offset};
use time::{Date, Duration, OffsetDateTime};

use crate::AgencyId;
use crate::text::Remark;

// Monday 4 March 2024 is day 0.
pub(crate) const BASE: Date = date!(2024 - 03 - 04);

/// Day `n` after [`BASE`].
pub(crate) fn day(n: i64) -> Date {
    BASE + Duration::days(n)
}

/// 10:00 in Beijing on day `n`.
pub(crate) fn at(n: i64) -> OffsetDateTime {
    day(n)
        .with_hms(10, 0, 0)
        .unwrap()
        .assume_offset(offset!(+8))
}

pub(crate) fn agency(id: &str) -> AgencyId {
    AgencyId::parse(id).unwrap()
}
pub(crate) fn shanghai() -> AgencyId {
    agency("310000-SAMR")
}
pub(crate) fn shandong() -> AgencyId {
    agency("370000-AMR")
}
pub(crate) fn jiangsu() -> AgencyId {
    agency("320000-AMR")
}
pub(crate) fn zhejiang() -> AgencyId {
    agency("330000-AMR")
}
pub(crate) fn text(s: &str) -> Remark {
    Remark::parse("text", s).unwrap()
}

/// Checks a state machine against its table: rows follow `states`, columns `commands`, and a
/// cell is `A` (accepted), `S` (refused for the state) or `P` (refused for a condition of the
/// command). `cell` runs one command in one state, asserts what must hold of the answer (the
/// first argument names the cell for its messages) and answers the letter it got. Panics
/// listing every cell that differs from the table.
pub(crate) fn check_state_table<S, C>(
    states: &[(&'static str, S)],
    commands: &[(&'static str, C, i64)],
    table: &[(&str, &str)],
    mut cell: impl FnMut(&str, &S, &C, i64) -> char,
) {
    assert_eq!(states.len(), table.len());
    let mut wrong = Vec::new();
    for ((name, state), (row_name, row)) in states.iter().zip(table) {
        assert_eq!(name, row_name);
        assert_eq!(row.len(), commands.len(), "row {name}");
        for ((cmd_name, command, n), expected) in commands.iter().zip(row.chars()) {
            let at = format!("{name} × {cmd_name}");
            let got = cell(&at, state, command, *n);
            if got != expected {
                wrong.push(format!("{at}: expected {expected}, got {got}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
