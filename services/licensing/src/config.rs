//! The licensing configuration: the catalogue, the working calendar, the time limits, the
//! pilot agencies and the scheduler's tick. The catalogue and the limits are configuration, not
//! code (README.md, "Hu-Lu joint processing"), because products enter and leave the licensing
//! list and provinces commit to shorter limits.
//!
//! Every limit's key names its unit (`…_working_days`, `…_calendar_days`, `…_years`), because
//! the law counts them differently: the Administrative Licensing Law's own limits in working
//! days (行政许可法 art. 82), the licensing regulations' in calendar days (条例 art. 18). A
//! limit may be shortened, never set to zero or beyond its statutory length; the key the
//! on-site verification limit had while it was wrongly counted in working days is refused with
//! its new name rather than silently ignored.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use yrd_domain::AgencyId;
use yrd_domain::calendar::WorkingCalendar;
use yrd_domain::licensing::{
    CatalogueCode, CatalogueEntry, DecisionLimit, IndustryCode, LicensingRules, ProductCode,
};
use yrd_domain::referral::Remark;
use yrd_domain::spotcheck::parse_date;

/// `[licensing]` of the server configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LicensingConfig {
    /// How often the overdue scheduler looks for passed time limits.
    pub scheduler_interval_ms: u64,
    /// Weekday public holidays (法定节假日), `YYYY-MM-DD`, beyond weekends.
    pub holidays: Vec<String>,
    /// Weekend make-up working days (调休), `YYYY-MM-DD`.
    pub make_up_working_days: Vec<String>,
    /// The agencies of the Hu-Lu pilot; only they may submit, see or act.
    pub pilot_agencies: Vec<String>,
    /// Accept, supplement or not-accept within this many working days (行政许可法 art. 32: 5).
    pub acceptance_working_days: u32,
    /// Verification result within this many calendar days of acceptance (条例 art. 18: 30).
    pub verification_calendar_days: u32,
    /// The former name of `verification_calendar_days`: refused, naming the new key.
    #[serde(skip_serializing)]
    pub verification_working_days: Option<u32>,
    /// The one extension of the decision limit (art. 42: 10).
    pub extension_working_days: u32,
    /// Issue the certificate within this many working days of approval (art. 44: 10).
    pub issuance_working_days: u32,
    /// Post-issue check (证后核查) of a commitment-based licence, working days after issue.
    pub post_issue_check_working_days: u32,
    /// Years a licence is valid (5).
    pub validity_years: i32,
    /// The licensing catalogue (生产许可证目录).
    pub catalogue: Vec<CatalogueProduct>,
}

/// A catalogue product in configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueProduct {
    /// `<2-digit industry>-<3-digit product>`, e.g. `13-001`.
    pub code: String,
    /// Product name, e.g. 化肥.
    pub name: String,
    /// Whether the commitment route (告知承诺) is open for it.
    pub commitment_allowed: bool,
    /// Decision limit in working days, at most 20.
    pub decision_limit_working_days: u32,
    /// Its product units (产品单元): code → name.
    pub units: BTreeMap<String, String>,
}

impl Default for LicensingConfig {
    fn default() -> Self {
        let rules = LicensingRules::default();
        LicensingConfig {
            scheduler_interval_ms: 60_000,
            holidays: Vec::new(),
            make_up_working_days: Vec::new(),
            pilot_agencies: rules
                .pilot_agencies
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            acceptance_working_days: rules.acceptance_working_days,
            verification_calendar_days: rules.verification_calendar_days,
            verification_working_days: None,
            extension_working_days: rules.extension_working_days,
            issuance_working_days: rules.issuance_working_days,
            post_issue_check_working_days: rules.post_issue_check_working_days,
            validity_years: rules.validity_years,
            catalogue: vec![
                // Fertilizer: the Hu-Lu pilot product; ordinary route (先核后证) since the State
                // Council's 2024 catalogue decision.
                CatalogueProduct {
                    code: "13-001".into(),
                    name: "化肥".into(),
                    commitment_allowed: false,
                    decision_limit_working_days: 20,
                    units: [
                        ("13-001-01", "复混肥料"),
                        ("13-001-02", "掺混肥料"),
                        ("13-001-03", "有机-无机复混肥料"),
                    ]
                    .into_iter()
                    .map(|(c, n)| (c.to_owned(), n.to_owned()))
                    .collect(),
                },
                // An example of a product on the commitment route (告知承诺); deployments list
                // the products their catalogue actually opens to it.
                CatalogueProduct {
                    code: "06-001".into(),
                    name: "电线电缆".into(),
                    commitment_allowed: true,
                    decision_limit_working_days: 15,
                    units: [("06-001-01", "低压电力电缆")]
                        .into_iter()
                        .map(|(c, n)| (c.to_owned(), n.to_owned()))
                        .collect(),
                },
            ],
        }
    }
}

/// A product with its units, as the service uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The domain's catalogue entry.
    pub entry: CatalogueEntry,
    /// Unit code → unit name.
    pub units: BTreeMap<String, String>,
}

/// The catalogue by code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalogue(pub BTreeMap<String, Product>);

/// What the service runs on, built from a checked [`LicensingConfig`].
#[derive(Debug, Clone)]
pub struct LicensingSettings {
    /// The rules of the state machine.
    pub rules: LicensingRules,
    /// The catalogue.
    pub catalogue: Catalogue,
    /// The scheduler's tick.
    pub scheduler_interval: std::time::Duration,
}

impl LicensingConfig {
    /// Checks everything and builds the settings; every bad key is reported at once.
    pub fn build(&self) -> Result<LicensingSettings, Vec<String>> {
        let mut errors = Vec::new();
        let dates = |key: &str, values: &[String], errors: &mut Vec<String>| {
            values
                .iter()
                .filter_map(|v| {
                    parse_date(v)
                        .map_err(|e| errors.push(format!("licensing.{key}: {v:?}: {e}")))
                        .ok()
                })
                .collect::<Vec<_>>()
        };
        let holidays = dates("holidays", &self.holidays, &mut errors);
        let make_up = dates(
            "make_up_working_days",
            &self.make_up_working_days,
            &mut errors,
        );
        let calendar = WorkingCalendar::new(holidays, make_up)
            .map_err(|e| errors.push(format!("licensing: {e}")))
            .unwrap_or_default();
        let pilot_agencies: BTreeSet<AgencyId> = self
            .pilot_agencies
            .iter()
            .filter_map(|a| {
                AgencyId::parse(a)
                    .map_err(|e| errors.push(format!("licensing.pilot_agencies: {a:?}: {e}")))
                    .ok()
            })
            .collect();
        if self.scheduler_interval_ms == 0 {
            errors.push("licensing.scheduler_interval_ms must be at least 1".into());
        }
        if self.verification_working_days.is_some() {
            errors.push(
                "licensing.verification_working_days is now licensing.verification_calendar_days: \
                 the on-site verification result is due in calendar days (条例 art. 18)"
                    .into(),
            );
        }
        for (key, value, max) in self.limits() {
            if value < 1 || value > max {
                errors.push(format!(
                    "licensing.{key} must be between 1 and {max}, got {value}"
                ));
            }
        }
        let mut catalogue = BTreeMap::new();
        for p in &self.catalogue {
            match product(p) {
                Ok(product) => {
                    if catalogue.insert(p.code.clone(), product).is_some() {
                        errors.push(format!("licensing.catalogue: {} is listed twice", p.code));
                    }
                }
                Err(e) => errors.push(format!("licensing.catalogue {:?}: {e}", p.code)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(LicensingSettings {
            rules: LicensingRules {
                calendar,
                pilot_agencies,
                acceptance_working_days: self.acceptance_working_days,
                verification_calendar_days: self.verification_calendar_days,
                extension_working_days: self.extension_working_days,
                issuance_working_days: self.issuance_working_days,
                post_issue_check_working_days: self.post_issue_check_working_days,
                validity_years: self.validity_years,
            },
            catalogue: Catalogue(catalogue),
            scheduler_interval: std::time::Duration::from_millis(self.scheduler_interval_ms),
        })
    }
}

impl LicensingConfig {
    /// Each time limit with its key and the longest value allowed: the statute's length where
    /// the statute sets one (a province may commit to less, not more).
    fn limits(&self) -> [(&'static str, i64, i64); 6] {
        [
            (
                "acceptance_working_days",
                self.acceptance_working_days.into(),
                5,
            ),
            (
                "verification_calendar_days",
                self.verification_calendar_days.into(),
                30,
            ),
            (
                "extension_working_days",
                self.extension_working_days.into(),
                10,
            ),
            (
                "issuance_working_days",
                self.issuance_working_days.into(),
                10,
            ),
            // No statutory length: a year of working days bounds a typing error.
            (
                "post_issue_check_working_days",
                self.post_issue_check_working_days.into(),
                250,
            ),
            ("validity_years", self.validity_years.into(), 5),
        ]
    }
}

fn product(p: &CatalogueProduct) -> Result<Product, String> {
    let (industry, product) = p
        .code
        .split_once('-')
        .ok_or_else(|| "code must be <2-digit industry>-<3-digit product>".to_owned())?;
    let entry = CatalogueEntry {
        code: CatalogueCode::parse(&p.code).map_err(|e| e.to_string())?,
        name: Remark::parse("name", &p.name).map_err(|e| e.to_string())?,
        industry_code: IndustryCode::parse(industry).map_err(|e| e.to_string())?,
        product_code: ProductCode::parse(product).map_err(|e| e.to_string())?,
        commitment_allowed: p.commitment_allowed,
        decision_limit_working_days: DecisionLimit::new(p.decision_limit_working_days)
            .map_err(|e| e.to_string())?,
    };
    if p.units.is_empty() {
        return Err("lists no product unit".into());
    }
    Ok(Product {
        entry,
        units: p.units.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_builds() {
        let settings = LicensingConfig::default()
            .build()
            .expect("defaults are valid");
        assert!(settings.catalogue.0.contains_key("13-001"));
        assert_eq!(settings.rules, LicensingRules::default());
    }

    #[test]
    fn every_bad_key_is_reported() {
        let config = LicensingConfig {
            holidays: vec!["2024-13-01".into(), "2024-10-01".into()],
            make_up_working_days: vec!["2024-10-01".into()],
            pilot_agencies: vec!["nope".into()],
            scheduler_interval_ms: 0,
            ..LicensingConfig::default()
        };
        let errors = config.build().expect_err("bad configuration");
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn each_limit_names_its_unit_and_a_bad_one_is_refused_by_key() {
        let config = LicensingConfig {
            verification_calendar_days: 31,
            extension_working_days: 0,
            validity_years: -1,
            ..LicensingConfig::default()
        };
        let errors = config.build().expect_err("bad limits");
        assert_eq!(
            errors,
            vec![
                "licensing.verification_calendar_days must be between 1 and 30, got 31",
                "licensing.extension_working_days must be between 1 and 10, got 0",
                "licensing.validity_years must be between 1 and 5, got -1",
            ],
        );
        // The old key is refused with its new name.
        let old: LicensingConfig = serde_json::from_str(r#"{"verification_working_days": 30}"#)
            .expect("the old key still parses");
        let errors = old.build().expect_err("the old key is refused");
        assert!(
            errors[0].contains("licensing.verification_calendar_days"),
            "{errors:?}"
        );
    }
}
