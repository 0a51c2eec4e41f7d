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
