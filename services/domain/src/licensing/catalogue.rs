//! The product catalogue a deployment configures: each product's code, licence-number codes,
//! whether the commitment route is open and its decision limit, and the [`Route`] an
//! application takes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::referral::Remark;

use super::{IndustryCode, LicensingError, ProductCode};

/// The key of a catalogue entry in configuration, e.g. `fertilizer`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CatalogueCode(String);

impl CatalogueCode {
    /// Parses a key of 1–32 characters of `a-z`, `0-9`, `-`, `_`.
    pub fn parse(s: &str) -> Result<Self, LicensingError> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(CatalogueCode(s.to_owned()))
        } else {
            Err(LicensingError::CatalogueCode(s.to_owned()))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

parsed_from_text!(CatalogueCode, LicensingError, 0);

impl fmt::Display for CatalogueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A decision time limit in working days, 1 to 20 (行政许可法 art. 42; provinces commit to
/// shorter ones). Defaults to 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct DecisionLimit(u32);

impl DecisionLimit {
    /// A limit in 1..=20 working days.
    pub fn new(days: u32) -> Result<Self, LicensingError> {
        if (1..=20).contains(&days) {
            Ok(DecisionLimit(days))
        } else {
            Err(LicensingError::DecisionLimit(days))
        }
    }

    /// The working days.
    pub fn working_days(&self) -> u32 {
        self.0
    }
}

impl Default for DecisionLimit {
    fn default() -> Self {
        DecisionLimit(20)
    }
}

impl TryFrom<u32> for DecisionLimit {
    type Error = LicensingError;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        DecisionLimit::new(n)
    }
}

impl From<DecisionLimit> for u32 {
    fn from(d: DecisionLimit) -> Self {
        d.0
    }
}

/// A product of the licensing catalogue (工业产品生产许可证管理目录), loaded from configuration
/// because the catalogue changes when products enter or leave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    /// The configuration key.
    pub code: CatalogueCode,
    /// The product name, e.g. 化肥.
    pub name: Remark,
    /// The industry code of the licence number.
    pub industry_code: IndustryCode,
    /// The product code of the licence number.
    pub product_code: ProductCode,
    /// Whether the commitment route (告知承诺) is open. False for fertilizer since the State
    /// Council's 2024 catalogue decision.
    pub commitment_allowed: bool,
    /// The decision limit in working days.
    #[serde(default)]
    pub decision_limit_working_days: DecisionLimit,
}

impl CatalogueEntry {
    /// Refuses `route` when the product may not be licensed that way.
    pub fn check_route(&self, route: Route) -> Result<(), LicensingError> {
        if route == Route::Commitment && !self.commitment_allowed {
            return Err(LicensingError::CommitmentNotAllowed {
                code: self.code.to_string(),
                name: self.name.to_string(),
            });
        }
        Ok(())
    }
}

/// How the application is examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Route {
    /// Verify, then issue (先核后证).
    Ordinary,
    /// Issue on the applicant's commitment, check after issue (告知承诺).
    Commitment,
}
