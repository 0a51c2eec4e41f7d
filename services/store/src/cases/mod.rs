//! Cases (串案, docs/cases.md): the findings index a publish or a correction looks its product
//! up in, the links, and the officers' unlinks.
//!
//! Linking is decided by the spot-check service with the domain's rule
//! ([`yrd_domain::case::plan_link`]) on what [`Store::case_candidates`] reads, and committed as
//! part of the result's own write ([`CaseRows`], applied after the result's rows). Its guard
//! makes the decision safe against a concurrent write of the same product: the write locks
//! the product's row in `case_product_locks`, reads the candidates again, and is refused
//! ([`crate::ResultWriteError::CasesMoved`]) when they are not what the decision saw, so the
//! service decides again.

mod read;
mod write;

use time::{Date, OffsetDateTime};
use yrd_domain::AgencyId;
use yrd_domain::case::Finding;

pub use read::{CaseCursor, CaseFilter};
pub(crate) use write::new_referral_reactors_in;
pub use write::{CaseRows, LinkRows, NewCase, NewUnlink, UnlinkError};

/// A stored finding: a published non-conforming result that names a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFinding {
    /// The result.
    pub result_id: String,
    /// Its publisher.
    pub publisher: AgencyId,
    /// Its finding.
    pub finding: Finding,
    /// The case it is in, if any.
    pub case_id: Option<String>,
}

/// The state of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseState {
    /// Two or more results are linked.
    Open,
    /// Unlinking left fewer than two.
    Dissolved,
}

impl CaseState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Dissolved => "dissolved",
        }
    }

    fn parse(s: &str) -> Result<Self, crate::StoreError> {
        match s {
            "open" => Ok(CaseState::Open),
            "dissolved" => Ok(CaseState::Dissolved),
            other => Err(crate::StoreError::corrupt("case state", other)),
        }
    }
}

/// One result of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseMember {
    /// The result.
    pub result_id: String,
    /// Its publisher.
    pub publisher: AgencyId,
    /// Its finding date.
    pub finding_date: Date,
    /// When it was linked.
    pub linked_at: OffsetDateTime,
    /// Its referral ids, oldest first.
    pub referrals: Vec<String>,
}

/// A result an officer unlinked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUnlink {
    /// The result.
    pub result_id: String,
    /// The officer's agency.
    pub agency: AgencyId,
    /// The officer.
    pub officer: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: OffsetDateTime,
}

/// A case as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCase {
    /// The case id.
    pub id: String,
    /// The producer's USCC.
    pub producer_uscc: String,
    /// The normalised model.
    pub model: String,
    /// The handling agency, where the producer's province has one.
    pub handling_agency: Option<AgencyId>,
    /// The state.
    pub state: CaseState,
    /// The first and the last finding date.
    pub first_finding: Date,
    /// The last finding date.
    pub last_finding: Date,
    /// W3C trace id of the call that formed the case.
    pub trace_id: String,
    /// The span id of that call's server span ("" for a case formed untraced or before
    /// migration 0012).
    pub span_id: String,
    /// When it formed.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Its results, by finding date.
    pub members: Vec<CaseMember>,
    /// The unlinked results, oldest first.
    pub unlinks: Vec<StoredUnlink>,
}

impl StoredCase {
    /// Every agency of the case, sorted, without duplicates: the publishers of its results and
    /// the handling agency.
    pub fn agencies(&self) -> Vec<AgencyId> {
        let mut all: std::collections::BTreeSet<AgencyId> =
            self.members.iter().map(|m| m.publisher.clone()).collect();
        all.extend(self.handling_agency.clone());
        all.into_iter().collect()
    }
}
