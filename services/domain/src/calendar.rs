//! Working days and statutory deadlines.
//!
//! Both workflows of the exchange run on statutory clocks, and the law counts them in two
//! ways. The Administrative Licensing Law (行政许可法 art. 82) counts *its own* periods in
//! *working days*, which in China are not simply Monday to Friday: public holidays (法定节假日)
//! fall on weekdays and are compensated by make-up working days (调休) that fall on weekends.
//! Every other statute counts *calendar days*: the disposal rules (Interim Measures arts. 46–48,
//! 产品质量法 art. 15) and the licensing regulations' own limits (条例 art. 18: the on-site
//! verification result within 30 days of acceptance). So a [`WorkingCalendar`] holds weekends
//! off by default plus configured holidays and make-up days, a [`Deadline`] is the one type both
//! state machines use to say what is due when, and [`DeadlineKind::counting`] says in one place
//! how each kind of limit is counted, so the contract and the configuration can say it too.
//!
//! Counting follows the Civil Code (民法典 art. 201): the day an event happens is not counted,
//! the period starts the next day, and the due date itself is still in time. For calendar-day
//! periods, art. 203 applies: when the last day is a day off, the period ends on the next
//! working day ([`WorkingCalendar::calendar_deadline`]).
//!
//! Dates are Chinese civil dates: an instant becomes a date in China Standard Time (UTC+8)
//! through [`china_date`], never in UTC, or a step taken at 07:00 in Beijing would count as the
//! previous day.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, UtcOffset, Weekday};

/// Why a calendar could not be built or a date could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A date was configured both as a holiday and as a make-up working day.
    #[error("{0} is configured both as a holiday and as a make-up working day (调休)")]
    HolidayAndMakeUpDay(Date),
    /// The result of a date computation lies outside the supported range of dates.
    #[error("{days} days from {from} lies outside the supported range of dates")]
    OutOfRange {
        /// The date counted from.
        from: Date,
        /// How many days were added.
        days: i64,
    },
}

/// China Standard Time, UTC+8: the zone every statutory date of the exchange is counted in.
pub const CHINA_STANDARD_TIME: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// The Chinese civil date of an instant (UTC+8).
pub fn china_date(now: OffsetDateTime) -> Date {
    now.to_offset(CHINA_STANDARD_TIME).date()
}

/// A calendar of working days: Monday to Friday, minus configured holidays, plus configured
/// make-up working days (调休). The default knows weekends only; the State Council publishes
/// each year's holidays in December, and deployments load them as configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingCalendar {
    /// Weekdays that are days off (public holidays, 法定节假日).
    holidays: BTreeSet<Date>,
    /// Weekend days that are working days (调休).
    make_up_days: BTreeSet<Date>,
}

impl WorkingCalendar {
    /// A calendar where Saturdays and Sundays are off and every other day is a working day.
    pub fn weekends_only() -> Self {
        Self::default()
    }

    /// A calendar with extra holidays and make-up working days. A date may not be both.
    pub fn new(
        holidays: impl IntoIterator<Item = Date>,
        make_up_days: impl IntoIterator<Item = Date>,
    ) -> Result<Self, CalendarError> {
        let holidays: BTreeSet<Date> = holidays.into_iter().collect();
        let make_up_days: BTreeSet<Date> = make_up_days.into_iter().collect();
        if let Some(both) = holidays.intersection(&make_up_days).next() {
            return Err(CalendarError::HolidayAndMakeUpDay(*both));
        }
        Ok(WorkingCalendar {
            holidays,
            make_up_days,
        })
    }

    /// True when `date` is a working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        if self.holidays.contains(&date) {
            return false;
        }
        if self.make_up_days.contains(&date) {
            return true;
        }
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
    }

    /// The `n`-th working day after `date` (the start day is not counted, 民法典 art. 201);
    /// `n = 0` gives `date` itself. "Within 5 working days of submission" is due on
    /// `add_working_days(submitted_on, 5)`.
    pub fn add_working_days(&self, date: Date, n: u32) -> Result<Date, CalendarError> {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            day = day.next_day().ok_or(CalendarError::OutOfRange {
                from: date,
                days: i64::from(n),
            })?;
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        Ok(day)
    }

    /// The number of working days `d` with `a < d <= b`: how many working days have elapsed
    /// from `a` to `b`. Negative when `b` is before `a`.
    pub fn working_days_between(&self, a: Date, b: Date) -> i64 {
        if b < a {
            return -self.working_days_between(b, a);
        }
        let mut count = 0;
        let mut day = a;
        while day < b {
            match day.next_day() {
                Some(next) => day = next,
                None => break,
            }
            if self.is_working_day(day) {
                count += 1;
            }
        }
        count
    }

    /// `date` plus `days` calendar days (negative moves back).
    pub fn add_calendar_days(date: Date, days: i64) -> Result<Date, CalendarError> {
        date.checked_add(Duration::days(days))
            .ok_or(CalendarError::OutOfRange { from: date, days })
    }

    /// `date` itself when it is a working day, otherwise the next working day.
    pub fn next_working_day_from(&self, date: Date) -> Result<Date, CalendarError> {
        if self.is_working_day(date) {
            Ok(date)
        } else {
            self.add_working_days(date, 1)
        }
    }

    /// The last day of a period of `days` calendar days starting after `date`: `date + days`,
    /// moved to the next working day when it falls on a day off (民法典 art. 203).
    pub fn calendar_deadline(&self, date: Date, days: i64) -> Result<Date, CalendarError> {
        self.next_working_day_from(Self::add_calendar_days(date, days)?)
    }
}

/// What a deadline is for. One list for both workflows, so the scheduler and the feed speak
/// of deadlines in one vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DeadlineKind {
    /// Referral: the handling agency acknowledges delivery (送达), N working days.
    Acknowledgement,
    /// Referral: the producer or seller corrects, 60 calendar days from the order (Interim
    /// Measures art. 46).
    Correction,
    /// Referral: the handling agency reviews the correction (复查), 75 calendar days (art. 47).
    Review,
    /// Referral: the second review after the announcement, 60–90 calendar days (art. 48).
    SecondReview,
    /// Licence: accept, request a supplement or refuse to accept, 5 working days (行政许可法 art. 32).
    Acceptance,
    /// Licence: the on-site verification result, 30 calendar days from acceptance (条例 art. 18).
    Verification,
    /// Licence: the decision, 20 working days from acceptance, +10 once (行政许可法 art. 42).
    Decision,
    /// Licence: the certificate is issued within 10 working days of approval (行政许可法 art. 44).
    Issuance,
    /// Licence: the conditions of a conditional approval (附条件审批) are met.
    Conditions,
    /// Licence: the post-issue check (证后核查) of a commitment-based licence.
    PostIssueCheck,
}

/// How the days of a time limit are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Counting {
    /// Working days of the configured calendar, skipping days off throughout (行政许可法 art. 82).
    WorkingDays,
    /// Calendar days; a last day that is a day off moves to the next working day (民法典 art. 203).
    CalendarDays,
    /// A date set by a decision (e.g. the conditions of a conditional approval), not counted.
    SetDate,
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Counting::WorkingDays => "working days",
            Counting::CalendarDays => "calendar days",
            Counting::SetDate => "a set date",
        })
    }
}

impl DeadlineKind {
    /// How the limit of this kind is counted: working days only for the Administrative
    /// Licensing Law's own limits (art. 82) and the exchange's acknowledgement of delivery;
    /// calendar days for every other statutory period.
    pub fn counting(&self) -> Counting {
        match self {
            DeadlineKind::Acknowledgement
            | DeadlineKind::Acceptance
            | DeadlineKind::Decision
            | DeadlineKind::Issuance
            | DeadlineKind::PostIssueCheck => Counting::WorkingDays,
            DeadlineKind::Correction
            | DeadlineKind::Review
            | DeadlineKind::SecondReview
            | DeadlineKind::Verification => Counting::CalendarDays,
            DeadlineKind::Conditions => Counting::SetDate,
        }
    }

    /// The name with its Chinese term, for messages.
    pub fn label(&self) -> &'static str {
        match self {
            DeadlineKind::Acknowledgement => "acknowledgement of delivery (送达确认)",
            DeadlineKind::Correction => "correction (整改)",
            DeadlineKind::Review => "review of the correction (复查)",
            DeadlineKind::SecondReview => "second review after the announcement (公告后复查)",
            DeadlineKind::Acceptance => "acceptance (受理)",
            DeadlineKind::Verification => "on-site verification result (实地核查)",
            DeadlineKind::Decision => "licensing decision (许可决定)",
            DeadlineKind::Issuance => "issue of the licence (颁发证书)",
            DeadlineKind::Conditions => "conditions of approval (附条件审批)",
            DeadlineKind::PostIssueCheck => "post-issue check (证后核查)",
        }
    }
}

impl fmt::Display for DeadlineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A step that is due by a date. The due date is inclusive: a step taken on it is in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Deadline {
    /// What is due.
    pub kind: DeadlineKind,
    /// The last day on which it is in time.
    pub due: Date,
}

impl Deadline {
    /// A deadline of `kind` due on `due`.
    pub fn new(kind: DeadlineKind, due: Date) -> Self {
        Deadline { kind, due }
    }

    /// True when `today` is past the due date.
    pub fn is_overdue(&self, today: Date) -> bool {
        today > self.due
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} due {}", self.kind, self.due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn weekends_are_skipped() {
        let cal = WorkingCalendar::weekends_only();
        // Friday 2024-03-01 + 1 working day = Monday 2024-03-04.
        assert_eq!(
            cal.add_working_days(date!(2024 - 03 - 01), 1),
            Ok(date!(2024 - 03 - 04))
        );
        // Saturday + 1 = Monday; Saturday + 0 = Saturday.
        assert_eq!(
            cal.add_working_days(date!(2024 - 03 - 02), 1),
            Ok(date!(2024 - 03 - 04))
        );
        assert_eq!(
            cal.add_working_days(date!(2024 - 03 - 02), 0),
            Ok(date!(2024 - 03 - 02))
        );
        // Wednesday + 5 = next Wednesday; + 20 spans four weekends.
        assert_eq!(
            cal.add_working_days(date!(2024 - 03 - 06), 5),
            Ok(date!(2024 - 03 - 13))
        );
        assert_eq!(
            cal.add_working_days(date!(2024 - 03 - 06), 20),
            Ok(date!(2024 - 04 - 03))
        );
        assert!(!cal.is_working_day(date!(2024 - 03 - 09)));
        assert!(cal.is_working_day(date!(2024 - 03 - 08)));
    }

    #[test]
    fn working_days_between_counts_the_end_not_the_start() {
        let cal = WorkingCalendar::weekends_only();
        assert_eq!(
            cal.working_days_between(date!(2024 - 03 - 01), date!(2024 - 03 - 04)),
            1
        );
        assert_eq!(
            cal.working_days_between(date!(2024 - 03 - 04), date!(2024 - 03 - 04)),
            0
        );
        assert_eq!(
            cal.working_days_between(date!(2024 - 03 - 06), date!(2024 - 04 - 03)),
            20
        );
        assert_eq!(
            cal.working_days_between(date!(2024 - 04 - 03), date!(2024 - 03 - 06)),
            -20
        );
        // A weekend alone holds no working day.
        assert_eq!(
            cal.working_days_between(date!(2024 - 03 - 08), date!(2024 - 03 - 10)),
            0
        );
    }

    /// The 2024 National Day holiday: 1–7 October off, Sunday 29 September and Saturday
    /// 12 October worked (调休).
    fn national_day_2024() -> WorkingCalendar {
        let holidays =
            (1..=7).filter_map(|d| Date::from_calendar_date(2024, time::Month::October, d).ok());
        WorkingCalendar::new(holidays, [date!(2024 - 09 - 29), date!(2024 - 10 - 12)])
            .unwrap_or_default()
    }

    #[test]
    fn holidays_and_make_up_days() {
        let cal = national_day_2024();
        assert!(cal.is_working_day(date!(2024 - 09 - 29)), "make-up Sunday");
        assert!(
            !cal.is_working_day(date!(2024 - 10 - 01)),
            "holiday Tuesday"
        );
        assert!(
            cal.is_working_day(date!(2024 - 10 - 12)),
            "make-up Saturday"
        );
        // Friday 27 September: Sunday 29 and Monday 30 work, then the holiday, then Tuesday 8.
        assert_eq!(
            cal.add_working_days(date!(2024 - 09 - 27), 1),
            Ok(date!(2024 - 09 - 29))
        );
        assert_eq!(
            cal.add_working_days(date!(2024 - 09 - 27), 2),
            Ok(date!(2024 - 09 - 30))
        );
        assert_eq!(
            cal.add_working_days(date!(2024 - 09 - 27), 3),
            Ok(date!(2024 - 10 - 08))
        );
        // 8, 9, 10, 11, 12 (Saturday, worked): five working days.
        assert_eq!(
            cal.add_working_days(date!(2024 - 10 - 07), 5),
            Ok(date!(2024 - 10 - 12))
        );
        assert_eq!(
            cal.working_days_between(date!(2024 - 09 - 27), date!(2024 - 10 - 12)),
            7
        );
        // The same span on a weekends-only calendar.
        let plain = WorkingCalendar::weekends_only();
        assert_eq!(
            plain.working_days_between(date!(2024 - 09 - 27), date!(2024 - 10 - 12)),
            10
        );
    }

    #[test]
    fn a_day_cannot_be_both_holiday_and_make_up_day() {
        let day = date!(2024 - 10 - 01);
        assert_eq!(
            WorkingCalendar::new([day], [day]),
            Err(CalendarError::HolidayAndMakeUpDay(day))
        );
    }

    #[test]
    fn calendar_days_and_the_art_203_roll_forward() {
        let cal = national_day_2024();
        assert_eq!(
            WorkingCalendar::add_calendar_days(date!(2024 - 01 - 31), 60),
            Ok(date!(2024 - 03 - 31))
        );
        // 60 days after 2024-01-31 is Sunday 31 March: the period ends on Monday 1 April.
        assert_eq!(
            cal.calendar_deadline(date!(2024 - 01 - 31), 60),
            Ok(date!(2024 - 04 - 01))
        );
        // 15 days after 2024-09-17 is 2 October, a holiday: the period ends on 8 October.
        assert_eq!(
            cal.calendar_deadline(date!(2024 - 09 - 17), 15),
            Ok(date!(2024 - 10 - 08))
        );
        // A working last day stays.
        assert_eq!(
            cal.calendar_deadline(date!(2024 - 03 - 01), 4),
            Ok(date!(2024 - 03 - 05))
        );
        assert!(matches!(
            WorkingCalendar::add_calendar_days(Date::MAX, 1),
            Err(CalendarError::OutOfRange { .. })
        ));
    }

    #[test]
    fn thirty_calendar_days_are_not_thirty_working_days() {
        let plain = WorkingCalendar::weekends_only();
        // Accepted Monday 2026-12-07: 30 calendar days end on Wednesday 2027-01-06 (条例 art. 18);
        // 30 working days would end on Monday 2027-01-18.
        assert_eq!(
            plain.calendar_deadline(date!(2026 - 12 - 07), 30),
            Ok(date!(2027 - 01 - 06))
        );
        assert_eq!(
            plain.add_working_days(date!(2026 - 12 - 07), 30),
            Ok(date!(2027 - 01 - 18))
        );
        assert_eq!(
            DeadlineKind::Verification.counting(),
            Counting::CalendarDays
        );
        assert_eq!(DeadlineKind::Decision.counting(), Counting::WorkingDays);
        assert_eq!(DeadlineKind::Correction.counting(), Counting::CalendarDays);
        assert_eq!(
            DeadlineKind::Acknowledgement.counting(),
            Counting::WorkingDays
        );
        assert_eq!(DeadlineKind::Conditions.counting(), Counting::SetDate);
    }

    #[test]
    fn dates_are_counted_in_china_time() {
        assert_eq!(
            china_date(datetime!(2024-03-01 16:30 UTC)),
            date!(2024 - 03 - 02)
        );
        assert_eq!(
            china_date(datetime!(2024-03-01 15:59 UTC)),
            date!(2024 - 03 - 01)
        );
    }

    #[test]
    fn deadlines_are_inclusive() {
        let d = Deadline::new(DeadlineKind::Review, date!(2024 - 03 - 15));
        assert!(!d.is_overdue(date!(2024 - 03 - 15)));
        assert!(d.is_overdue(date!(2024 - 03 - 16)));
        assert_eq!(
            d.to_string(),
            "review of the correction (复查) due 2024-03-15"
        );
    }
}
