//! Which referrals the exchange opens by itself for a published (or corrected) non-conforming
//! result (docs/domain.md, Interim Measures art. 44): one per province authority the routing
//! says must handle it (`needs_disposal`) that has no open referral of the result yet, on the
//! producer's basis when it is the producer's province authority, else on the seller's.
//!
//! A pure decision: the spot-check write calls it and puts what it answers into its write, so no
//! service calls another to open a referral.
//!
//! Requested actions (the issue leaves them open): what the Interim Measures ask of the handling
//! agency by default — for the producer's authority stopping production and sales (art. 45),
//! ordering correction (art. 46) and reviewing it (art. 47); for the seller's authority stopping
//! sales and delisting the online offer instead of stopping production.

use time::OffsetDateTime;

use super::{JurisdictionBasis, Referral, ReferralRules, Refusal, Transition};
use crate::AgencyId;
use crate::routing::{AgencyDirectory, route_result_event};
use crate::spotcheck::SpotCheckResult;

/// A measure a referral asks the handling agency to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedAction {
    /// Stop production (art. 45).
    StopProduction,
    /// Stop sales (art. 45).
    StopSales,
    /// Delist the online offer.
    DelistOnline,
    /// Order rectification (art. 46).
    OrderRectification,
    /// Review the rectification (art. 47).
    Review,
}

/// The measures an automatic referral asks for, by basis.
pub fn default_actions(basis: JurisdictionBasis) -> &'static [RequestedAction] {
    use RequestedAction::*;
    match basis {
        JurisdictionBasis::Producer => &[StopProduction, OrderRectification, Review],
        JurisdictionBasis::Seller => &[StopSales, DelistOnline, OrderRectification, Review],
    }
}

/// One referral to open automatically.
#[derive(Debug, Clone)]
pub struct AutomaticReferral {
    /// Its id (from the caller's id source).
    pub id: String,
    /// The agency with jurisdiction.
    pub handling_agency: AgencyId,
    /// Why it has jurisdiction.
    pub basis: JurisdictionBasis,
    /// The measures asked for.
    pub requested_actions: Vec<RequestedAction>,
    /// The note the exchange writes on it.
    pub note: String,
    /// The opening step: the referral with its deadlines, and its events.
    pub opened: Transition,
}

/// The referrals to open for `result`, published (or corrected) by `sampling` at `now`, when
/// the agencies in `already_open` hold an open referral of it. Ids come from `new_id`, one per
/// referral, in order. Refused only when the routing names the sampling agency itself, which it
/// never does for a well-formed directory.
pub fn referrals_for(
    result: &SpotCheckResult,
    sampling: &AgencyId,
    directory: &AgencyDirectory,
    already_open: &[AgencyId],
    now: OffsetDateTime,
    rules: &ReferralRules,
    mut new_id: impl FnMut() -> String,
) -> Result<Vec<AutomaticReferral>, Refusal> {
    let routing = route_result_event(result, sampling, directory);
    let producer_authority =
        directory.province_authority(result.jurisdiction_regions().producer_province);
    routing
        .needs_disposal
        .iter()
        .filter(|handling| !already_open.contains(handling))
        .map(|handling| {
            let basis = if producer_authority == Some(handling) {
                JurisdictionBasis::Producer
            } else {
                JurisdictionBasis::Seller
            };
            let opened = Referral::open(sampling.clone(), handling.clone(), now, rules)?;
            let whose = match basis {
                JurisdictionBasis::Producer => "the nominal producer",
                JurisdictionBasis::Seller => "the sampled seller",
            };
            Ok(AutomaticReferral {
                id: new_id(),
                handling_agency: handling.clone(),
                basis,
                requested_actions: default_actions(basis).to_vec(),
                note: format!(
                    "Opened by the exchange: non-conforming result, {whose} lies in \
                     agencies/{handling}'s area (Interim Measures art. 44)."
                ),
                opened,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::{directory, result};
    use crate::spotcheck::Verdict;
    use time::macros::datetime;

    const SH: &str = "310000-SAMR";
    const JS: &str = "320000-AMR";
    const ZJ: &str = "330000-AMR";
    const FJ: &str = "350000-AMR";
    const NOW: OffsetDateTime = datetime!(2024-06-03 10:00 +8);

    fn id(s: &str) -> AgencyId {
        AgencyId::parse(s).unwrap()
    }

    struct Row {
        case: &'static str,
        producer: &'static str,
        seller: &'static str,
        verdict: Verdict,
        already_open: &'static [&'static str],
        /// (handling agency, basis) in order.
        opened: &'static [(&'static str, JurisdictionBasis)],
    }

    use JurisdictionBasis::{Producer as P, Seller as S};
    const NC: Verdict = Verdict::NonConforming;

    #[rustfmt::skip]
    const ROWS: &[Row] = &[
        Row { case: "conforming result opens nothing",
              producer: "320102", seller: "330106", verdict: Verdict::Conforming,
              already_open: &[], opened: &[] },
        Row { case: "producer and seller at home open nothing",
              producer: "310115", seller: "310104", verdict: NC, already_open: &[], opened: &[] },
        Row { case: "producer elsewhere: producer basis",
              producer: "320102", seller: "310104", verdict: NC,
              already_open: &[], opened: &[(JS, P)] },
        Row { case: "seller elsewhere: seller basis",
              producer: "310115", seller: "330106", verdict: NC,
              already_open: &[], opened: &[(ZJ, S)] },
        Row { case: "both elsewhere: producer's authority first",
              producer: "320102", seller: "330106", verdict: NC,
              already_open: &[], opened: &[(JS, P), (ZJ, S)] },
        Row { case: "both in one other province: one referral, producer basis",
              producer: "320102", seller: "320106", verdict: NC,
              already_open: &[], opened: &[(JS, P)] },
        Row { case: "an open referral is not opened again",
              producer: "320102", seller: "330106", verdict: NC,
              already_open: &[JS], opened: &[(ZJ, S)] },
        Row { case: "a province outside the Delta with an authority is referred too",
              producer: "350102", seller: "310104", verdict: NC,
              already_open: &[], opened: &[(FJ, P)] },
    ];

    #[test]
    fn referrals_follow_the_table() {
        let rules = ReferralRules::default();
        for row in ROWS {
            let r = result(row.producer, row.seller, None, row.verdict);
            let open: Vec<AgencyId> = row.already_open.iter().map(|a| id(a)).collect();
            let mut n = 0;
            let got = referrals_for(&r, &id(SH), &directory(), &open, NOW, &rules, || {
                n += 1;
                format!("r{n}")
            })
            .unwrap();
            let seen: Vec<(String, JurisdictionBasis)> = got
                .iter()
                .map(|a| (a.handling_agency.to_string(), a.basis))
                .collect();
            let want: Vec<(String, JurisdictionBasis)> = row
                .opened
                .iter()
                .map(|(a, b)| ((*a).to_owned(), *b))
                .collect();
            assert_eq!(seen, want, "{}", row.case);
            for (i, a) in got.iter().enumerate() {
                assert_eq!(a.id, format!("r{}", i + 1), "{}: ids in order", row.case);
                assert_eq!(
                    a.requested_actions,
                    default_actions(a.basis),
                    "{}",
                    row.case
                );
                assert_eq!(a.opened.new_state.sampling_agency, id(SH), "{}", row.case);
                assert_eq!(a.opened.new_state.handling_agency, a.handling_agency);
                assert!(
                    a.note
                        .contains(&format!("agencies/{}'s area", a.handling_agency)),
                    "{}: {}",
                    row.case,
                    a.note
                );
            }
        }
    }

    #[test]
    fn the_acknowledgement_deadline_follows_the_rules() {
        let r = result("320102", "310104", None, NC);
        let open = |rules: &ReferralRules| {
            referrals_for(&r, &id(SH), &directory(), &[], NOW, rules, || "r".into()).unwrap()[0]
                .opened
                .new_state
                .deadlines
                .acknowledgement
                .expect("an opened referral has an acknowledgement deadline")
                .due
        };
        let default = ReferralRules::default();
        let slow = ReferralRules {
            acknowledgement_working_days: default.acknowledgement_working_days + 5,
            ..default.clone()
        };
        assert!(open(&default) < open(&slow));
    }

    #[test]
    fn actions_differ_by_basis() {
        assert!(default_actions(P).contains(&RequestedAction::StopProduction));
        assert!(!default_actions(S).contains(&RequestedAction::StopProduction));
        assert!(default_actions(S).contains(&RequestedAction::DelistOnline));
    }
}
