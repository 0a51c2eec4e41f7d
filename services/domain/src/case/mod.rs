//! Cases (串案): when two non-conforming results concern the same product.
//!
//! One product sold online is sampled by several agencies; each publishes its own
//! non-conforming result. The exchange links those results into one case so that every agency
//! involved learns of the others (docs/cases.md). Whether two results concern the same product
//! is this module's one pure rule, [`same_product`]:
//!
//! * both results are non-conforming and both name a model (规格型号);
//! * the same producer USCC (标称生产者统一社会信用代码);
//! * the same model, compared in its normalised form ([`normalise_mark`]);
//! * where **both** give a batch number (批号), the same normalised batch number, and where
//!   **both** give a trademark (商标), the same normalised trademark: a mark only one result
//!   gives neither confirms nor refutes the match;
//! * finding dates (the inspection report dates) at most [`MatchWindow`] days apart (365 by
//!   default), either way round.
//!
//! The rule is symmetric; a case is joined when the new result matches **any** result already
//! in it (so a case can span more than one window from its first to its last finding).

mod normalise;

pub use normalise::normalise_mark;

use time::{Date, Duration};

use crate::spotcheck::{SpotCheckResult, Verdict};
use crate::uscc::Uscc;

/// The longest time between two findings of the same product that still links them, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchWindow(u16);

/// Why a [`MatchWindow`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the case match window must be 1 to {max} days, got {days}", max = MatchWindow::MAX_DAYS)]
pub struct WindowError {
    /// The days given.
    pub days: i64,
}

impl MatchWindow {
    /// The default: one year.
    pub const DEFAULT_DAYS: u16 = 365;
    /// The longest window accepted: ten years.
    pub const MAX_DAYS: u16 = 3653;

    /// A window of `days` days, 1 to [`MatchWindow::MAX_DAYS`].
    pub fn days(days: i64) -> Result<Self, WindowError> {
        match u16::try_from(days) {
            Ok(d) if (1..=Self::MAX_DAYS).contains(&d) => Ok(MatchWindow(d)),
            _ => Err(WindowError { days }),
        }
    }

    /// The window's length in days.
    pub fn as_days(self) -> u16 {
        self.0
    }
}

impl Default for MatchWindow {
    fn default() -> Self {
        MatchWindow(Self::DEFAULT_DAYS)
    }
}

/// What identifies a product for case matching, every mark normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProductKey {
    /// The nominal producer's USCC.
    pub producer_uscc: String,
    /// The normalised model (规格型号).
    pub model: String,
    /// The normalised batch number (批号), where given.
    pub batch: Option<String>,
    /// The normalised trademark (商标), where given.
    pub trademark: Option<String>,
}

/// One non-conforming finding of a product: its key and when it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The product.
    pub key: ProductKey,
    /// The finding date: the inspection report date (检验报告日期).
    pub date: Date,
}

impl Finding {
    /// The finding of `result`, or `None` when the result cannot join a case: it is
    /// conforming, or names no model.
    pub fn of(result: &SpotCheckResult) -> Option<Finding> {
        if result.verdict() != Verdict::NonConforming {
            return None;
        }
        let product = result.product();
        let mark = |m: &Option<String>| m.as_deref().and_then(normalise_mark);
        Some(Finding {
            key: ProductKey {
                producer_uscc: uscc_key(&result.producer().uscc),
                model: mark(&product.model)?,
                batch: mark(&product.batch_number),
                trademark: mark(&product.trademark),
            },
            date: result.inspection().report_date,
        })
    }
}

/// The USCC as case keys store it (already upper case and validated by [`Uscc`]).
fn uscc_key(uscc: &Uscc) -> String {
    uscc.as_str().to_owned()
}

/// Whether findings `a` and `b` concern the same product, within `window` (the module docs
/// give the rule).
pub fn same_product(a: &Finding, b: &Finding, window: MatchWindow) -> bool {
    let both_agree = |x: &Option<String>, y: &Option<String>| match (x, y) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    a.key.producer_uscc == b.key.producer_uscc
        && a.key.model == b.key.model
        && both_agree(&a.key.batch, &b.key.batch)
        && both_agree(&a.key.trademark, &b.key.trademark)
        && (a.date - b.date).abs() <= Duration::days(i64::from(window.0))
}

/// An earlier finding a new one may be linked to, with the case it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The result's id.
    pub result_id: String,
    /// Its finding.
    pub finding: Finding,
    /// The case it is in, if any.
    pub case_id: Option<String>,
}

/// What linking a new finding does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// It matches no earlier finding: no case.
    None,
    /// It matches findings in no case: a new case of it and `with`.
    Create {
        /// The matching results, sorted.
        with: Vec<String>,
    },
    /// It matches a finding of case `case_id`: it joins that case, with the matching results
    /// that were in no case (`with`, sorted).
    Join {
        /// The case joined.
        case_id: String,
        /// The matching results in no case, joining with it.
        with: Vec<String>,
    },
}

/// How the finding `new` links to `candidates` (earlier findings of the same producer and
/// model): a candidate matching by [`same_product`] and not in a case of `excluded` (those the
/// new result was unlinked from) is a match. Matches in cases make it join the oldest of those
/// cases (case ids are time-ordered, so the least id); other matches join with it. Cases are
/// never merged: a match in a second case stays there.
pub fn plan_link(
    new: &Finding,
    candidates: &[Candidate],
    excluded: &[String],
    window: MatchWindow,
) -> Link {
    let matches: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| same_product(new, &c.finding, window))
        .filter(|c| c.case_id.as_ref().is_none_or(|id| !excluded.contains(id)))
        .collect();
    let mut with: Vec<String> = matches
        .iter()
        .filter(|c| c.case_id.is_none())
        .map(|c| c.result_id.clone())
        .collect();
    with.sort();
    match matches.iter().filter_map(|c| c.case_id.as_ref()).min() {
        Some(case_id) => Link::Join {
            case_id: case_id.clone(),
            with,
        },
        None if with.is_empty() => Link::None,
        None => Link::Create { with },
    }
}

#[cfg(test)]
mod tests;
