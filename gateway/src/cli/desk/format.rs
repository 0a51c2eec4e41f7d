//! What the desk commands print alike: times in China Standard Time, deadlines relative to
//! today in China, states with the Chinese term the contract gives them, and enum values as
//! kebab-case command-line words.

use prost_types::Timestamp;
use time::{Date, OffsetDateTime, UtcOffset};
use yrd_call::from_timestamp;
use yrd_domain::calendar::china_date;
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_domain::spotcheck::parse_date;
use yrd_proto::v1 as pb;

/// China Standard Time, UTC+8 (no daylight saving).
const CST: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("UTC+8 is a valid offset"),
};

/// `t` in China Standard Time, e.g. `2026-12-07 16:00:24 CST`; `-` when unset.
pub fn cst(t: Option<&Timestamp>) -> String {
    t.and_then(from_timestamp)
        .map(cst_time)
        .unwrap_or_else(|| "-".to_owned())
}

/// An instant in China Standard Time, e.g. `2026-12-07 16:00:24 CST`.
pub fn cst_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(CST);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02} CST",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Today's date in China, by the system clock.
pub fn today() -> Date {
    china_date(SystemClock.now())
}

/// A deadline relative to today, in days: what [`due_label`] prints and the console shows in
/// either language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Flagged overdue this many days.
    Overdue(i64),
    /// Due today.
    Today,
    /// Due in this many days.
    In(i64),
    /// Passed this many days ago without being flagged overdue (a window that closed, a step
    /// that was met).
    Ended(i64),
}

/// The deadline `due_date` relative to `today`; `None` when the date does not parse.
pub fn due(due_date: &str, overdue: bool, today: Date) -> Option<Due> {
    let due = parse_date(due_date).ok()?;
    let days = (due - today).whole_days();
    Some(if overdue {
        Due::Overdue((-days).max(0))
    } else if days == 0 {
        Due::Today
    } else if days > 0 {
        Due::In(days)
    } else {
        Due::Ended(-days)
    })
}

/// A deadline relative to `today`: `due today`, `due in 3 days`, `overdue 2 days`; a date that
/// passed without being flagged overdue (a window that closed, a step that was met) is
/// `ended 4 days ago`. A due date that does not parse is shown as it came.
pub fn due_label(due_date: &str, overdue: bool, today: Date) -> String {
    let plural = |n: i64| if n == 1 { "" } else { "s" };
    match due(due_date, overdue, today) {
        None => due_date.to_owned(),
        Some(Due::Overdue(late)) => format!("overdue {late} day{}", plural(late)),
        Some(Due::Today) => "due today".to_owned(),
        Some(Due::In(days)) => format!("due in {days} day{}", plural(days)),
        Some(Due::Ended(days)) => format!("ended {days} day{} ago", plural(days)),
    }
}

/// A contract enum value as a command-line word: the name without its prefix, in kebab-case
/// (`REFERRAL_STATE_IN_PROGRESS` → `in-progress`).
pub fn word(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// Defines `fn $name(value: i32) -> String`: a contract enum number as its command-line word
/// (an unknown number reads as the `…_UNSPECIFIED` value's word); the printing counterpart of
/// `enum_parser!` in `desk/command.rs`.
macro_rules! enum_word {
    ($name:ident, $ty:ty, $prefix:literal) => {
        /// The contract enum number as a kebab-case word.
        pub fn $name(value: i32) -> String {
            word(
                <$ty>::try_from(value).unwrap_or_default().as_str_name(),
                $prefix,
            )
        }
    };
}

enum_word!(step_kind, pb::ReferralStepKind, "REFERRAL_STEP_KIND_");
enum_word!(
    deadline_kind,
    pb::ReferralDeadlineKind,
    "REFERRAL_DEADLINE_KIND_"
);
enum_word!(outcome_word, pb::ReferralOutcome, "REFERRAL_OUTCOME_");
enum_word!(verdict_word, pb::Verdict, "VERDICT_");
enum_word!(basis_word, pb::JurisdictionBasis, "JURISDICTION_BASIS_");
enum_word!(reaction_word, pb::ReactionKind, "REACTION_KIND_");
enum_word!(measure_word, pb::MeasureKind, "MEASURE_KIND_");
enum_word!(state_word, pb::ReferralState, "REFERRAL_STATE_");

/// Reads a command-line word (`in-progress`, `IN_PROGRESS` or the full contract name) as the
/// enum value whose contract name is `prefix` + the word; `values` are the enum's values in
/// contract order (`Unspecified` is never accepted). The error lists what is accepted.
pub fn parse_word<T: Copy>(
    s: &str,
    prefix: &str,
    values: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, String> {
    let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
    let wanted = wanted.strip_prefix(prefix).unwrap_or(&wanted).to_owned();
    values
        .iter()
        .copied()
        .filter(|v| !name(*v).ends_with("_UNSPECIFIED"))
        .find(|v| name(*v).strip_prefix(prefix) == Some(wanted.as_str()))
        .ok_or_else(|| {
            let accepted: Vec<String> = values
                .iter()
                .map(|v| name(*v))
                .filter(|n| !n.ends_with("_UNSPECIFIED"))
                .map(|n| word(n, prefix))
                .collect();
            format!(
                "unknown value {s:?}; expected one of {}",
                accepted.join(", ")
            )
        })
}

/// Every value of a prost enum, in contract order (the values are numbered from 0 without
/// gaps in this contract; the first number that is not a value ends the list).
pub fn values<T: TryFrom<i32>>() -> Vec<T> {
    (0..).map_while(|i| T::try_from(i).ok()).collect()
}

/// A referral state as an officer reads it: `in-progress (处置中)`.
pub fn referral_state(state: i32) -> String {
    let Ok(state) = pb::ReferralState::try_from(state) else {
        return format!("unknown state {state}");
    };
    let zh = match state {
        pb::ReferralState::Unspecified => "",
        pb::ReferralState::Opened => "已移送",
        pb::ReferralState::Delivered => "已送达",
        pb::ReferralState::InProgress => "处置中",
        pb::ReferralState::Rectifying => "整改中",
        pb::ReferralState::ObjectionPending => "异议/复检中",
        pb::ReferralState::Announced => "已公告",
        pb::ReferralState::Returned => "已退回",
        pb::ReferralState::Closed => "已办结",
    };
    format!("{} ({zh})", word(state.as_str_name(), "REFERRAL_STATE_"))
}

/// An application state as an officer reads it: `accepted (已受理)`.
pub fn application_state(state: i32) -> String {
    let Ok(state) = pb::ApplicationState::try_from(state) else {
        return format!("unknown state {state}");
    };
    let zh = match state {
        pb::ApplicationState::Unspecified => "",
        pb::ApplicationState::Submitted => "已提交",
        pb::ApplicationState::SupplementRequested => "待补正",
        pb::ApplicationState::NotAccepted => "不予受理",
        pb::ApplicationState::Accepted => "已受理",
        pb::ApplicationState::UnderReview => "审查中",
        pb::ApplicationState::VerificationDelegated => "已委托核查",
        pb::ApplicationState::VerificationReported => "已报告核查结果",
        pb::ApplicationState::DecidedApproved => "准予许可",
        pb::ApplicationState::DecidedApprovedWithConditions => "附条件准予许可",
        pb::ApplicationState::Refused => "不予许可",
        pb::ApplicationState::LicenceIssued => "已发证",
        pb::ApplicationState::PostIssueCheckPassed => "证后核查通过",
        pb::ApplicationState::Revoked => "已撤销",
    };
    format!("{} ({zh})", word(state.as_str_name(), "APPLICATION_STATE_"))
}

/// `agencies/370000-AMR` → `370000-AMR`.
pub fn agency(name: &str) -> &str {
    name.strip_prefix("agencies/").unwrap_or(name)
}

/// A referral or application argument as a resource name: `abc` → `referrals/abc`,
/// `referrals/abc` unchanged.
pub fn resource(collection: &str, id: &str) -> String {
    let prefix = format!("{collection}/");
    if id.starts_with(&prefix) {
        id.to_owned()
    } else {
        format!("{prefix}{id}")
    }
}

/// The two table cells of an item's next time limit: `KIND DATE` and its [`due_label`]; `-` and
/// nothing when none is running.
pub fn deadline_cells(deadline: Option<(String, &str, bool)>, today: Date) -> (String, String) {
    match deadline {
        Some((kind, due_date, overdue)) => (
            format!("{kind} {due_date}"),
            due_label(due_date, overdue, today),
        ),
        None => ("-".to_owned(), String::new()),
    }
}

/// How a `list` command prints items of one kind (referrals, licence applications).
pub struct Listing<T, V> {
    /// The item's name in the closing count line, e.g. `referral`.
    pub noun: &'static str,
    /// The table's column headers.
    pub header: &'static [&'static str],
    /// The item's JSON view (`--json`), given today's date in China.
    pub view: fn(&T, Date) -> V,
    /// The item's table cells, in `header` order.
    pub row: fn(&T, Date) -> Vec<String>,
    /// Whether the item is flagged overdue (counted in the closing line).
    pub overdue: fn(&T) -> bool,
}

impl<T, V: serde::Serialize> Listing<T, V> {
    /// Prints `items`: a JSON array of their views, or a table closed by `N noun(s), M overdue`.
    pub fn print(
        &self,
        items: &[T],
        json: bool,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), crate::cli::desk::DeskError> {
        let today = today();
        if json {
            let views: Vec<V> = items.iter().map(|item| (self.view)(item, today)).collect();
            return crate::cli::output::write_json(out, &views);
        }
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
            .set_header(self.header);
        for item in items {
            table.add_row((self.row)(item, today));
        }
        writeln!(out, "{table}")?;
        let overdue = items.iter().filter(|item| (self.overdue)(item)).count();
        writeln!(out, "{} {}(s), {overdue} overdue", items.len(), self.noun)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_read_relative_to_today() {
        let today = parse_date("2026-12-07").expect("date");
        assert_eq!(due_label("2026-12-07", false, today), "due today");
        assert_eq!(due_label("2026-12-08", false, today), "due in 1 day");
        assert_eq!(due_label("2026-12-10", false, today), "due in 3 days");
        assert_eq!(due_label("2026-12-05", true, today), "overdue 2 days");
        assert_eq!(due_label("2026-12-03", false, today), "ended 4 days ago");
        assert_eq!(due_label("soon", false, today), "soon");
    }

    #[test]
    fn enum_words_round_trip_and_refusals_list_the_choices() {
        let kinds = values::<pb::MeasureKind>();
        let name = |k: pb::MeasureKind| k.as_str_name();
        assert_eq!(
            parse_word("order-rectification", "MEASURE_KIND_", &kinds, name),
            Ok(pb::MeasureKind::OrderRectification)
        );
        assert_eq!(
            parse_word("MEASURE_KIND_REVIEW", "MEASURE_KIND_", &kinds, name),
            Ok(pb::MeasureKind::Review)
        );
        let error = parse_word("unspecified", "MEASURE_KIND_", &kinds, name).expect_err("no");
        assert!(
            error.contains("seal-or-seize") && error.contains("other"),
            "{error}"
        );
        assert!(!error.contains("unspecified\","), "{error}");
        assert_eq!(
            word("REFERRAL_STATE_IN_PROGRESS", "REFERRAL_STATE_"),
            "in-progress"
        );
    }

    #[test]
    fn times_are_shown_in_china_standard_time() {
        let t = OffsetDateTime::from_unix_timestamp(0).expect("epoch");
        assert_eq!(cst_time(t), "1970-01-01 08:00:00 CST");
        assert_eq!(cst(None), "-");
    }
}
