//! Strategies the property tests of the referral and licensing machines share
//! (`referral/tests/properties.rs`, `licensing/tests/properties.rs`): clock jumps, working
//! calendars with random holidays and make-up days, dates given relative to "today", and free
//! text that is empty, blank, oversized or ordinary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use time::{Date, Duration, OffsetDateTime, Weekday};

use crate::calendar::WorkingCalendar;
use crate::test_fixtures::{at, day};
use crate::text::Remark;

/// Cases per property: enough to reach every state many times, few enough to run in seconds
/// in a debug build.
pub(crate) const CASES: u32 = 256;
/// The longest command sequence generated.
pub(crate) const MAX_STEPS: usize = 30;

/// The configuration of every machine property: [`CASES`] cases.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig::with_cases(CASES)
}

/// The property is only as strong as the states the sequences reach: runs [`CASES`] cases of
/// `strategy` from a fixed seed through `run_case` (which adds the display of every state it
/// reaches to its set, and fails as the property does) and panics naming each of `states`
/// that no case reached, so no check of the property holds vacuously. A state is matched on
/// the first word of its display (a pending objection also names what it interrupts).
pub(crate) fn assert_reaches_every_state<C: Debug>(
    strategy: impl Strategy<Value = C>,
    run_case: impl Fn(&C, &mut BTreeSet<String>) -> Result<(), TestCaseError>,
    states: &[&str],
) {
    let mut runner = TestRunner::deterministic();
    let mut reached = BTreeSet::new();
    for _ in 0..CASES {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        if let Err(e) = run_case(&case, &mut reached) {
            panic!("the property fails on {case:#?}: {e}");
        }
    }
    let reached_names: BTreeSet<&str> = reached
        .iter()
        .map(|s| s.split(' ').next().unwrap_or_default())
        .collect();
    for state in states {
        assert!(
            reached_names.contains(state),
            "{state} never reached: {reached:#?}"
        );
    }
}

/// How the clock moves before a step. The machines take "now" as an input, so the clock may
/// also move backwards (a corrected server clock): they must then refuse or stay consistent.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Jump {
    /// The same instant.
    Stay,
    /// Forward by minutes (may cross midnight in Beijing).
    Minutes(i64),
    /// Forward by days (across weekends and holidays, up to months).
    Days(i64),
    /// Backward by minutes.
    BackMinutes(i64),
    /// Backward by days.
    BackDays(i64),
    /// To a few days before the last date the calendar supports, where date arithmetic fails.
    EndOfTime,
}

impl Jump {
    /// The clock after the jump; a jump past the supported range leaves the clock where it is.
    pub(crate) fn apply(self, now: OffsetDateTime) -> OffsetDateTime {
        let by = match self {
            Jump::Stay => return now,
            Jump::Minutes(m) => Duration::minutes(m),
            Jump::Days(d) => Duration::days(d),
            Jump::BackMinutes(m) => -Duration::minutes(m),
            Jump::BackDays(d) => -Duration::days(d),
            Jump::EndOfTime => {
                let last = Date::MAX - Duration::days(3);
                return at(0).replace_date(last);
            }
        };
        now.checked_add(by).unwrap_or(now)
    }
}

pub(crate) fn jump() -> impl Strategy<Value = Jump> {
    prop_oneof![
        30 => Just(Jump::Stay),
        30 => (1i64..=900).prop_map(Jump::Minutes),
        50 => (1i64..=10).prop_map(Jump::Days),
        20 => (11i64..=120).prop_map(Jump::Days),
        10 => (1i64..=900).prop_map(Jump::BackMinutes),
        10 => (1i64..=40).prop_map(Jump::BackDays),
        // Rare: about one sequence in six of thirty steps reaches it.
        1 => Just(Jump::EndOfTime),
    ]
}

/// A date a command carries, relative to the day it is issued.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rel {
    /// Today plus this many days (negative: in the past).
    Offset(i64),
    /// The earliest supported date.
    Min,
    /// The latest supported date.
    Max,
}

impl Rel {
    pub(crate) fn on(self, today: Date) -> Date {
        match self {
            Rel::Offset(n) => today.checked_add(Duration::days(n)).unwrap_or(today),
            Rel::Min => Date::MIN,
            Rel::Max => Date::MAX,
        }
    }
}

pub(crate) fn rel() -> impl Strategy<Value = Rel> {
    prop_oneof![
        10 => Just(Rel::Offset(0)),
        4 => (-30i64..=3).prop_map(Rel::Offset),
        1 => (-400i64..=-31).prop_map(Rel::Offset),
        1 => (4i64..=200).prop_map(Rel::Offset),
        1 => Just(Rel::Min),
        1 => Just(Rel::Max),
    ]
}

/// A working calendar with random public holidays and make-up working days (调休) in the
/// year and a half after the fixtures' day 0, on top of weekends.
pub(crate) fn calendar() -> impl Strategy<Value = WorkingCalendar> {
    (
        prop::collection::btree_set(0i64..540, 0..40),
        prop::collection::btree_set(0i64..540, 0..10),
    )
        .prop_map(|(holidays, make_up)| {
            let holidays: Vec<Date> = holidays.into_iter().map(day).collect();
            let make_up: Vec<Date> = make_up
                .into_iter()
                .map(day)
                .filter(|d| matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday))
                .filter(|d| !holidays.contains(d))
                .collect();
            WorkingCalendar::new(holidays, make_up).expect("holidays and make-up days are disjoint")
        })
}

/// Free text as a partner might send it: ordinary, empty, blank, or over the limit.
pub(crate) fn text_input() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => "[a-zA-Z0-9][a-zA-Z0-9 ]{0,20}",
        2 => "\\PC{1,30}",
        1 => Just(String::new()),
        1 => " {1,5}",
        1 => Just("产".repeat(Remark::MAX_CHARS + 1)),
        1 => Just(format!("  {}  ", "x".repeat(Remark::MAX_CHARS))),
    ]
}

/// Parses free text for `field`. A refusal must name the field; the property fails otherwise.
pub(crate) fn remark(field: &'static str, input: &str) -> Result<Option<Remark>, TestCaseError> {
    match Remark::parse(field, input) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            let message = e.to_string();
            prop_assert!(
                message.contains(field),
                "text error {message:?} does not name {field}"
            );
            Ok(None)
        }
    }
}

/// Dated values that may only move later: the last value seen of each, by name.
#[derive(Debug, Default)]
pub(crate) struct Monotone(BTreeMap<&'static str, Date>);

impl Monotone {
    /// Records `value` of `name`; fails when it lies before the last value seen unless
    /// `may_move_back` (the command that set it is one allowed to restart that clock).
    pub(crate) fn see(
        &mut self,
        name: &'static str,
        value: Option<Date>,
        may_move_back: bool,
        command: &str,
    ) -> Result<(), TestCaseError> {
        let Some(value) = value else {
            return Ok(());
        };
        if let Some(last) = self.0.get(name) {
            prop_assert!(
                may_move_back || value >= *last,
                "{command} moved the {name} deadline from {last} back to {value}"
            );
        }
        self.0.insert(name, value);
        Ok(())
    }
}
