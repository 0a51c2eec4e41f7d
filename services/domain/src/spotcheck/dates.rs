//! Calendar dates exactly as the contract writes them, `YYYY-MM-DD`: parsing that says what
//! is wrong, and formatting.

use time::{Date, Month};

/// Parses a calendar date exactly as the contract writes it, `YYYY-MM-DD` (four-digit year,
/// two-digit month and day), e.g. for a search's date range; the error says what is wrong.
pub fn parse_date(s: &str) -> Result<Date, String> {
    parse_iso_date(s)
}

/// Writes a calendar date as the contract does, `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    iso(d)
}

/// Parses exactly `YYYY-MM-DD` (four-digit year, two-digit month and day).
pub(super) fn parse_iso_date(s: &str) -> Result<Date, String> {
    let shape = |s: &str| {
        let b = s.as_bytes();
        b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    };
    if !shape(s) {
        return Err(format!("{s:?} is not a date in the form YYYY-MM-DD"));
    }
    let number = |range: std::ops::Range<usize>| s.get(range).and_then(|t| t.parse::<u16>().ok());
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return Err(format!("{s:?} is not a date in the form YYYY-MM-DD"));
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| format!("{s:?} has no month {month:02}"))?;
    let day = u8::try_from(day).map_err(|_| format!("{s:?} is not a calendar date"))?;
    Date::from_calendar_date(i32::from(year), month, day)
        .map_err(|_| format!("{s:?} is not a calendar date"))
}

/// `YYYY-MM-DD`; the dates here come from [`parse_iso_date`], so the year has four digits.
pub(super) fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
