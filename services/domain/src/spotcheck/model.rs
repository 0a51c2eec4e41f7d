//! The typed, validated result ([`SpotCheckResult`]) and its parts. Only `parse.rs` builds
//! one; this file holds the shape, the read accessors, and the contract forms (`YYYY-MM-DD`,
//! region code, URL text) its dates, regions and URLs serialise in.

use serde::{Serialize, Serializer};
use time::Date;
use url::Url;

use crate::ids::RegionCode;
use crate::uscc::Uscc;

use super::dates::iso;
use super::{CampaignKind, ItemVerdict, SamplingWay, Verdict};

/// The product sampled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Product name (产品名称).
    pub name: String,
    /// Trademark (商标); `None` where the table says "/".
    pub trademark: Option<String>,
    /// Model / specification (规格型号).
    pub model: Option<String>,
    /// Production date (生产日期), when the product shows one.
    #[serde(serialize_with = "ser_opt_date")]
    pub production_date: Option<Date>,
    /// Batch number (批号), as printed.
    pub batch_number: Option<String>,
    /// Product category as the campaign names it, e.g. 儿童玩具.
    pub category: Option<String>,
}

/// The nominal producer (标称生产者): the one printed on the product. Its region decides
/// which authority handles a non-conforming result (Interim Measures art. 44).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Producer {
    /// Name (标称生产者名称).
    pub name: String,
    /// Address (标称生产者地址).
    pub address: String,
    /// Unified social credit code.
    pub uscc: Uscc,
    /// GB/T 2260 region where the producer is.
    #[serde(serialize_with = "ser_region")]
    pub region: RegionCode,
}

/// The sampled seller (被抽样单位); for online sales the shop's operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seller {
    /// Name.
    pub name: String,
    /// Unified social credit code, where known.
    pub uscc: Option<Uscc>,
    /// Address, where given.
    pub address: Option<String>,
    /// GB/T 2260 region where the seller is; its own obligations are handled there.
    #[serde(serialize_with = "ser_region")]
    pub region: RegionCode,
    /// The online shop, always present for an online purchase.
    pub online_shop: Option<OnlineShop>,
}

/// Where a product was sold online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnlineShop {
    /// E-commerce platform (电商平台).
    pub platform: String,
    /// Shop name (网店名称).
    pub shop_name: String,
    /// Shop URL, `http` or `https`, in the normalised form of the WHATWG URL standard.
    #[serde(serialize_with = "ser_url")]
    pub url: Url,
}

/// How and when the sample was taken (抽样方式/日期).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sampling {
    /// How.
    pub way: SamplingWay,
    /// When; never after the report date nor after the day of publication.
    #[serde(serialize_with = "ser_date")]
    pub date: Date,
}

/// Who tested the sample and the report they issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// Inspection body (承检机构).
    pub body: String,
    /// Report number (报告编号).
    pub report_number: String,
    /// Report date.
    #[serde(serialize_with = "ser_date")]
    pub report_date: Date,
}

/// One test item (检验项目).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestItem {
    /// Name, unique within the result.
    pub name: String,
    /// Requirement (标准要求).
    pub requirement: String,
    /// Measured value (实测值).
    pub measured_value: String,
    /// Unit of the measured value, where given.
    pub unit: Option<String>,
    /// This item's verdict.
    pub verdict: ItemVerdict,
    /// Whether the item concerns health or safety.
    pub is_safety_item: bool,
}

/// The campaign (抽查计划/专项) a result belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Campaign {
    /// The campaign code the organising agency assigned.
    pub code: String,
    /// Name.
    pub name: String,
    /// Who organised it.
    pub kind: CampaignKind,
    /// The product kind (e.g. 儿童玩具); always present for a Delta joint campaign.
    pub product_kind: Option<String>,
}

/// A document referenced by digest; the exchange never holds the file itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// Bare file name.
    pub file_name: String,
    /// Media type, lower case, `type/subtype`.
    pub media_type: String,
    /// SHA-256 of the file, 64 lower-case hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// What the file is, where given.
    pub description: Option<String>,
}

/// The provinces whose authorities have jurisdiction over a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Jurisdiction {
    /// Province of the nominal producer: handles the result (Interim Measures art. 44).
    pub producer_province: RegionCode,
    /// Province of the sampled seller: handles the seller's own obligations.
    pub seller_province: RegionCode,
}

/// A validated spot-check result (监督抽查结果). Only [`SpotCheckResult::parse`] builds one,
/// so every value satisfies docs/domain.md's rules; in particular the failed items (不合格项目) are
/// exactly the non-conforming test items and the overall verdict agrees with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpotCheckResult {
    pub(super) product: Product,
    pub(super) producer: Producer,
    pub(super) seller: Seller,
    pub(super) sampling: Sampling,
    pub(super) inspection: Inspection,
    pub(super) standards: Vec<String>,
    pub(super) test_items: Vec<TestItem>,
    pub(super) verdict: Verdict,
    pub(super) campaign: Option<Campaign>,
    pub(super) attachments: Vec<Attachment>,
}

impl SpotCheckResult {
    /// The product sampled.
    pub fn product(&self) -> &Product {
        &self.product
    }

    /// The nominal producer.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The sampled seller.
    pub fn seller(&self) -> &Seller {
        &self.seller
    }

    /// How and when the sample was taken.
    pub fn sampling(&self) -> &Sampling {
        &self.sampling
    }

    /// The inspection body and its report.
    pub fn inspection(&self) -> &Inspection {
        &self.inspection
    }

    /// The standards cited (依据标准), at least one.
    pub fn standards(&self) -> &[String] {
        &self.standards
    }

    /// The test items, at least one, in the publisher's order.
    pub fn test_items(&self) -> &[TestItem] {
        &self.test_items
    }

    /// The overall verdict (检验结论).
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The failed items (不合格项目): the non-conforming test items, in test-item order.
    /// Empty exactly when the verdict is conforming.
    pub fn failed_items(&self) -> impl Iterator<Item = &TestItem> {
        self.test_items
            .iter()
            .filter(|t| t.verdict == ItemVerdict::NonConforming)
    }

    /// Whether any failed item concerns health or safety.
    pub fn has_safety_failure(&self) -> bool {
        self.failed_items().any(|t| t.is_safety_item)
    }

    /// The campaign, if the result belongs to one.
    pub fn campaign(&self) -> Option<&Campaign> {
        self.campaign.as_ref()
    }

    /// Whether the result belongs to a Delta joint campaign (长三角联合抽查).
    pub fn is_delta_joint(&self) -> bool {
        self.campaign
            .as_ref()
            .is_some_and(|c| c.kind == CampaignKind::DeltaJoint)
    }

    /// The attachments, by digest.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// The provinces of the producer and of the seller, which decide who must see the result
    /// and who handles it.
    pub fn jurisdiction_regions(&self) -> Jurisdiction {
        Jurisdiction {
            producer_province: self.producer.region.province(),
            seller_province: self.seller.region.province(),
        }
    }
}

fn ser_date<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso(*d))
}

fn ser_opt_date<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&iso(*d)),
        None => s.serialize_none(),
    }
}

fn ser_region<S: Serializer>(r: &RegionCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

fn ser_url<S: Serializer>(u: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(u.as_str())
}
