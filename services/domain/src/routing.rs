//! Who must see which feed event: the addressing rules of spot-check results.
//!
//! The exchange never calls partners; each agency reads its own feed. So *who* an event is
//! addressed to is the whole of delivery, and it must be one pure function that a table test
//! covers, not a query spread over handlers. The rules, from docs/domain.md and the Interim Measures
//! for Product Quality Supervision Spot Checks (SAMR Order No. 18 of 2019):
//!
//! * The province-level authority of the nominal producer's province and that of the sampled
//!   seller's province always see a result: the producer's handles it (art. 44), the seller's
//!   handles the seller's own obligations.
//! * For a Delta joint campaign (长三角联合抽查) every Delta member agency sees it.
//! * The publisher never receives its own event.
//! * A non-conforming result whose producer (or seller) lies in another province than the
//!   publisher's is flagged as needing disposal by that province's authority: producer first,
//!   because art. 44 makes the producer's location authority the one that handles the result.
//!
//! A province with no registered agency is skipped, not an error: results about producers
//! anywhere in China are published, and the exchange only addresses agencies it knows.
//! The same routing serves publication, correction and withdrawal events; whether a
//! correction opens a new referral is the disposal service's decision.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{AgencyId, DELTA_AGENCIES, RegionCode};
use crate::spotcheck::{SpotCheckResult, Verdict};

/// Why a set of registered agencies cannot form a directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The same agency id appears twice.
    #[error("agency {0} is registered twice")]
    DuplicateAgency(AgencyId),
    /// A province authority whose id does not name a province-level region.
    #[error(
        "agency {agency} is marked as a province-level authority, but its region {region} is \
         not a province code (xx0000)"
    )]
    NotProvinceLevel {
        /// The agency.
        agency: AgencyId,
        /// Its region.
        region: RegionCode,
    },
    /// Two agencies claim to be the same province's authority, so routing would be ambiguous.
    #[error("province {province} has two province-level authorities: {first} and {second}")]
    TwoProvinceAuthorities {
        /// The province.
        province: RegionCode,
        /// The one registered first.
        first: AgencyId,
        /// The one registered second.
        second: AgencyId,
    },
}

/// An agency as the directory needs it. Its region is the GB/T 2260 code of its id
/// (`310000-SAMR` → `310000`), so it is not stored twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredAgency {
    /// The agency.
    pub id: AgencyId,
    /// Whether it is the province-level market-regulation authority of its province, the one
    /// that receives that province's results and referrals.
    pub is_province_authority: bool,
    /// Whether it takes part in the Delta joint spot-checks (长三角联合抽查).
    pub is_delta_member: bool,
}

/// The registered agencies, indexed for routing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgencyDirectory {
    /// Province-level code → its authority.
    province_authorities: BTreeMap<RegionCode, AgencyId>,
    /// The Delta members, in id order.
    delta_members: BTreeSet<AgencyId>,
    /// Every registered agency, for duplicate detection and lookup.
    agencies: BTreeSet<AgencyId>,
}

impl AgencyDirectory {
    /// Builds the directory, refusing duplicates, a province authority that is not at
    /// province level, and two authorities for one province.
    pub fn new(
        agencies: impl IntoIterator<Item = RegisteredAgency>,
    ) -> Result<Self, DirectoryError> {
        let mut dir = AgencyDirectory::default();
        for agency in agencies {
            if !dir.agencies.insert(agency.id.clone()) {
                return Err(DirectoryError::DuplicateAgency(agency.id));
            }
            if agency.is_province_authority {
                let region = agency.id.region();
                if !region.is_province() {
                    return Err(DirectoryError::NotProvinceLevel {
                        agency: agency.id,
                        region,
                    });
                }
                if let Some(first) = dir.province_authorities.get(&region) {
                    return Err(DirectoryError::TwoProvinceAuthorities {
                        province: region,
                        first: first.clone(),
                        second: agency.id,
                    });
                }
                dir.province_authorities.insert(region, agency.id.clone());
            }
            if agency.is_delta_member {
                dir.delta_members.insert(agency.id);
            }
        }
        Ok(dir)
    }

    /// The five province authorities of docs/domain.md ([`DELTA_AGENCIES`]), each a Delta member:
    /// the directory seeded on first start.
    pub fn delta() -> Self {
        let agencies = DELTA_AGENCIES
            .iter()
            .filter_map(|(id, _, _)| AgencyId::parse(id).ok())
            .map(|id| RegisteredAgency {
                id,
                is_province_authority: true,
                is_delta_member: true,
            });
        // The seed ids are five distinct province codes; `new` cannot refuse them (tested).
        AgencyDirectory::new(agencies).unwrap_or_default()
    }

    /// The province-level authority of the province `region` lies in, if one is registered.
    pub fn province_authority(&self, region: RegionCode) -> Option<&AgencyId> {
        self.province_authorities.get(&region.province())
    }

    /// The Delta member agencies, in id order.
    pub fn delta_members(&self) -> impl Iterator<Item = &AgencyId> {
        self.delta_members.iter()
    }

    /// Whether `agency` is registered.
    pub fn contains(&self, agency: &AgencyId) -> bool {
        self.agencies.contains(agency)
    }
}

/// Where one result event goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// The agencies whose feeds receive the event: sorted, without duplicates, never the
    /// publisher.
    pub recipients: Vec<AgencyId>,
    /// The agencies that must handle the non-conforming result (不合格产品处置), producer's
    /// authority first; each is also a recipient. Empty for a conforming result.
    pub needs_disposal: Vec<AgencyId>,
}

/// Addresses the feed event of `result` as published by `publisher`.
pub fn route_result_event(
    result: &SpotCheckResult,
    publisher: &AgencyId,
    dir: &AgencyDirectory,
) -> Routing {
    let jurisdiction = result.jurisdiction_regions();
    let producer_authority = dir.province_authority(jurisdiction.producer_province);
    let seller_authority = dir.province_authority(jurisdiction.seller_province);

    let mut recipients: BTreeSet<&AgencyId> = BTreeSet::new();
    recipients.extend(producer_authority);
    recipients.extend(seller_authority);
    if result.is_delta_joint() {
        recipients.extend(dir.delta_members());
    }
    recipients.remove(publisher);

    let mut needs_disposal: Vec<AgencyId> = Vec::new();
    if result.verdict() == Verdict::NonConforming {
        let home = publisher.province();
        for (province, authority) in [
            (jurisdiction.producer_province, producer_authority),
            (jurisdiction.seller_province, seller_authority),
        ] {
            if let Some(authority) = authority {
                if province != home && !needs_disposal.contains(authority) {
                    needs_disposal.push(authority.clone());
                }
            }
        }
    }

    Routing {
        recipients: recipients.into_iter().cloned().collect(),
        needs_disposal,
    }
}

/// True when `region` (the GB/T 2260 code a result gives its producer or seller) lies in the
/// province of `agency`: the one jurisdiction check of a referral's handling agency.
pub fn within_jurisdiction(agency: &AgencyId, region: &str) -> bool {
    region.get(..2) == Some(agency.province().province_prefix())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spotcheck::{
        CampaignInput, CampaignKind, ProducerInput, ProductInput, ResultInput, SamplingWay,
        SellerInput, TestItemInput,
    };
    use crate::uscc::check_character;
    use time::macros::date;

    const SH: &str = "310000-SAMR";
    const JS: &str = "320000-AMR";
    const ZJ: &str = "330000-AMR";
    const AH: &str = "340000-AMR";
    const SD: &str = "370000-AMR";
    /// A Shanghai district bureau: registered, not a province authority, not a Delta member.
    const PUDONG: &str = "310115-PD";
    /// A province outside the Delta, registered later.
    const FJ: &str = "350000-AMR";

    fn id(s: &str) -> AgencyId {
        AgencyId::parse(s).unwrap()
    }

    pub(crate) fn directory() -> AgencyDirectory {
        let mut agencies: Vec<RegisteredAgency> = DELTA_AGENCIES
            .iter()
            .map(|(a, _, _)| RegisteredAgency {
                id: id(a),
                is_province_authority: true,
                is_delta_member: true,
            })
            .collect();
        agencies.push(RegisteredAgency {
            id: id(PUDONG),
            is_province_authority: false,
            is_delta_member: false,
        });
        agencies.push(RegisteredAgency {
            id: id(FJ),
            is_province_authority: true,
            is_delta_member: false,
        });
        AgencyDirectory::new(agencies).unwrap()
    }

    /// A valid result with the given producer and seller regions, campaign and verdict.
    pub(crate) fn result(
        producer_region: &str,
        seller_region: &str,
        campaign: Option<CampaignKind>,
        verdict: Verdict,
    ) -> SpotCheckResult {
        let input = result_input(producer_region, seller_region, campaign, verdict);
        SpotCheckResult::parse(input, date!(2024 - 06 - 30)).unwrap()
    }

    /// The input of [`result`], for tests that change a field before parsing it.
    pub(crate) fn result_input(
        producer_region: &str,
        seller_region: &str,
        campaign: Option<CampaignKind>,
        verdict: Verdict,
    ) -> ResultInput {
        // "91" + the producer's region at positions 3-8 + a 9-character organisation code.
        let body = format!("91{producer_region}MA1XY0123");
        let uscc = format!("{body}{}", check_character(&body).unwrap());
        ResultInput {
            product: Some(ProductInput {
                name: "学生文具".into(),
                ..Default::default()
            }),
            producer: Some(ProducerInput {
                name: "某文具厂".into(),
                address: "某地某路1号".into(),
                uscc,
                region_code: producer_region.into(),
            }),
            seller: Some(SellerInput {
                name: "某网店经营者".into(),
                region_code: seller_region.into(),
                platform: "某平台".into(),
                shop_name: "某店".into(),
                shop_url: "https://shop.example.com/".into(),
                ..Default::default()
            }),
            sampling_way: SamplingWay::OnlinePurchase.wire(),
            sampling_date: "2024-05-01".into(),
            inspection_body: "某检验机构".into(),
            report_number: "R-1".into(),
            report_date: "2024-05-20".into(),
            standards: vec!["GB 21027-2020".into()],
            test_items: vec![TestItemInput {
                name: "可迁移元素".into(),
                requirement: "≤ 60 mg/kg".into(),
                measured_value: "75 mg/kg".into(),
                unit: String::new(),
                verdict: verdict.wire(),
                is_safety_item: true,
            }],
            verdict: verdict.wire(),
            failed_items: match verdict {
                Verdict::NonConforming => vec!["可迁移元素".into()],
                Verdict::Conforming => vec![],
            },
            campaign: campaign.map(|kind| CampaignInput {
                code: "C-1".into(),
                name: "某抽查".into(),
                kind: kind.wire(),
                product_kind: "学生用品".into(),
            }),
            attachments: vec![],
        }
    }

    const NC: Verdict = Verdict::NonConforming;
    const OK: Verdict = Verdict::Conforming;
    const DELTA: Option<CampaignKind> = Some(CampaignKind::DeltaJoint);
    const PROV: Option<CampaignKind> = Some(CampaignKind::Provincial);

    struct Row {
        case: &'static str,
        publisher: &'static str,
        producer: &'static str,
        seller: &'static str,
        campaign: Option<CampaignKind>,
        verdict: Verdict,
        recipients: &'static [&'static str],
        needs_disposal: &'static [&'static str],
    }

    #[rustfmt::skip]
    const ROWS: &[Row] = &[
        Row { case: "same-province producer and seller, non-conforming",
              publisher: SH, producer: "310115", seller: "310104", campaign: None, verdict: NC,
              recipients: &[], needs_disposal: &[] },
        Row { case: "same-province producer, seller elsewhere",
              publisher: SH, producer: "310115", seller: "330106", campaign: None, verdict: NC,
              recipients: &[ZJ], needs_disposal: &[ZJ] },
        Row { case: "cross-province producer, non-conforming",
              publisher: SH, producer: "370102", seller: "310104", campaign: None, verdict: NC,
              recipients: &[SD], needs_disposal: &[SD] },
        Row { case: "cross-province producer, conforming: seen, nothing to dispose",
              publisher: SH, producer: "370102", seller: "310104", campaign: PROV, verdict: OK,
              recipients: &[SD], needs_disposal: &[] },
        Row { case: "producer and seller in two other provinces: producer first",
              publisher: SH, producer: "370102", seller: "320106", campaign: None, verdict: NC,
              recipients: &[JS, SD], needs_disposal: &[SD, JS] },
        Row { case: "producer and seller in the same other province: listed once",
              publisher: SH, producer: "370102", seller: "370203", campaign: None, verdict: NC,
              recipients: &[SD], needs_disposal: &[SD] },
        Row { case: "Delta joint campaign, conforming, all local",
              publisher: SH, producer: "310115", seller: "310104", campaign: DELTA, verdict: OK,
              recipients: &[JS, ZJ, AH, SD], needs_disposal: &[] },
        Row { case: "Delta joint campaign, non-conforming elsewhere",
              publisher: AH, producer: "370102", seller: "320106", campaign: DELTA, verdict: NC,
              recipients: &[SH, JS, ZJ, SD], needs_disposal: &[SD, JS] },
        Row { case: "publisher is the producer's province: never itself",
              publisher: SD, producer: "370102", seller: "310104", campaign: None, verdict: NC,
              recipients: &[SH], needs_disposal: &[SH] },
        Row { case: "publisher is the producer's and the seller's province",
              publisher: SD, producer: "370102", seller: "370203", campaign: DELTA, verdict: NC,
              recipients: &[SH, JS, ZJ, AH], needs_disposal: &[] },
        Row { case: "district bureau publishes: its province authority sees it, no disposal",
              publisher: PUDONG, producer: "310115", seller: "310104", campaign: None, verdict: NC,
              recipients: &[SH], needs_disposal: &[] },
        Row { case: "producer province has no agency: skipped",
              publisher: SH, producer: "440300", seller: "320106", campaign: None, verdict: NC,
              recipients: &[JS], needs_disposal: &[JS] },
        Row { case: "neither province has an agency",
              publisher: SH, producer: "440300", seller: "500101", campaign: None, verdict: NC,
              recipients: &[], needs_disposal: &[] },
        Row { case: "unknown producer province in a Delta joint campaign",
              publisher: ZJ, producer: "440300", seller: "330106", campaign: DELTA, verdict: NC,
              recipients: &[SH, JS, AH, SD], needs_disposal: &[] },
        Row { case: "registered province outside the Delta",
              publisher: SH, producer: "350102", seller: "310104", campaign: DELTA, verdict: NC,
              recipients: &[JS, ZJ, AH, FJ, SD], needs_disposal: &[FJ] },
    ];

    #[test]
    fn routing_table() {
        let dir = directory();
        let mut failures = Vec::new();
        for row in ROWS {
            let r = result(row.producer, row.seller, row.campaign, row.verdict);
            let publisher = id(row.publisher);
            let got = route_result_event(&r, &publisher, &dir);
            let mut expected: Vec<AgencyId> = row.recipients.iter().map(|a| id(a)).collect();
            expected.sort();
            let want = Routing {
                recipients: expected,
                needs_disposal: row.needs_disposal.iter().map(|a| id(a)).collect(),
            };
            if got != want {
                failures.push(format!("{}:\n  want {want:?}\n  got  {got:?}", row.case));
            }
            // The invariants hold in every row, whatever the expectations say.
            assert!(!got.recipients.contains(&publisher), "{}", row.case);
            assert!(
                got.recipients.windows(2).all(|w| w[0] < w[1]),
                "{}",
                row.case
            );
            assert!(
                got.needs_disposal
                    .iter()
                    .all(|a| got.recipients.contains(a)),
                "{}",
                row.case
            );
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn province_authority_is_found_from_any_region_of_the_province() {
        let dir = directory();
        let region = |s: &str| RegionCode::parse(s).unwrap();
        assert_eq!(dir.province_authority(region("370203")), Some(&id(SD)));
        assert_eq!(dir.province_authority(region("310000")), Some(&id(SH)));
        assert_eq!(dir.province_authority(region("440300")), None);
        assert_eq!(dir.delta_members().count(), 5);
        assert!(dir.contains(&id(PUDONG)));
    }

    #[test]
    fn the_seed_directory_has_the_five_delta_authorities() {
        let dir = AgencyDirectory::delta();
        let members: Vec<&str> = dir.delta_members().map(AgencyId::as_str).collect();
        assert_eq!(members, [SH, JS, ZJ, AH, SD]);
        for member in [SH, JS, ZJ, AH, SD] {
            let agency = id(member);
            assert_eq!(dir.province_authority(agency.region()), Some(&agency));
        }
    }

    #[test]
    fn a_directory_that_would_route_ambiguously_is_refused() {
        let agency = |s: &str, authority: bool| RegisteredAgency {
            id: id(s),
            is_province_authority: authority,
            is_delta_member: false,
        };
        assert_eq!(
            AgencyDirectory::new([agency(SH, true), agency(SH, false)]),
            Err(DirectoryError::DuplicateAgency(id(SH)))
        );
        assert_eq!(
            AgencyDirectory::new([agency(SH, true), agency("310000-OTHER", true)]),
            Err(DirectoryError::TwoProvinceAuthorities {
                province: RegionCode::parse("310000").unwrap(),
                first: id(SH),
                second: id("310000-OTHER"),
            })
        );
        assert!(matches!(
            AgencyDirectory::new([agency(PUDONG, true)]),
            Err(DirectoryError::NotProvinceLevel { .. })
        ));
    }

    #[test]
    fn jurisdiction_is_the_agencys_province() {
        let agency = AgencyId::parse("320000-AMR").expect("agency");
        assert!(within_jurisdiction(&agency, "320100"));
        assert!(!within_jurisdiction(&agency, "310000"));
        assert!(!within_jurisdiction(&agency, "3"));
    }
}
