//! A spot-check result (监督抽查结果) of an online-sales product (网络销售), and the one place
//! where a published result is parsed from what came off the wire.
//!
//! Why it is shaped so:
//!
//! * **Every violation at once.** A partner system that sends a bad result gets back one
//!   `INVALID_ARGUMENT` whose `google.rpc.BadRequest` lists *every* bad field, so it can fix
//!   them all in one round trip. [`SpotCheckResult::parse`] therefore never stops at the first
//!   problem: it collects [`FieldViolation`]s whose `field` is the wire path in protobuf
//!   snake_case (`producer.uscc`, `test_items[2].verdict`), which the gateway copies verbatim.
//! * **Parse, don't validate.** [`ResultInput`] is the untyped mirror of the wire message
//!   (strings, `i32` enums, `Option` sub-messages as prost makes them); [`SpotCheckResult`] is
//!   the typed value that only `parse` can build. Its failed items are *derived* from the test
//!   items' verdicts, so "failed items that do not match the failed test items" cannot exist
//!   past the edge.
//! * **Stable bytes for idempotency.** The store hashes [`SpotCheckResult::canonical_digest_input`]
//!   to tell a retry (same body) from a conflicting reuse of a request id. The bytes depend
//!   only on the parsed value: surrounding whitespace, letter case of hex digests and media
//!   types, the order of the failed items and a "/" for "none" do not change them.
//!
//! Wire conventions this module assumes (the `.proto` must agree):
//!
//! * proto3 scalars: an empty string means "not given"; in the optional text fields of a
//!   published table (trademark, model, production date/batch) "/" also means "none" (docs/domain.md).
//! * Surrounding whitespace (including the ideographic space U+3000) is trimmed from every text.
//! * Enum numbers: [`SamplingWay`], [`Verdict`], [`ItemVerdict`] and [`CampaignKind`] give
//!   theirs in `from_wire`/`wire`, equal to the numbers of `spotcheck.proto`/`common.proto`;
//!   `0` is the AIP `_UNSPECIFIED` value and is refused where a value is required.
//! * Field paths are those of `yrd.exchange.v1.SpotCheckResult` (the proto is the contract):
//!   `product.production_date`, `product.batch_number`, `producer` is a `Party`, and so on.
//! * Dates are `YYYY-MM-DD` strings (calendar dates carry no time zone; "today" is the
//!   caller's, passed in, so tests never read a clock).
//! * Lengths are counted in characters (Unicode scalar values), not bytes, so a Chinese name
//!   and a Latin one have the same limit. The bounds are the `MAX_*` constants below.
//!
//! Choices where docs/domain.md is silent, written down here as it asks:
//!
//! * The producer's USCC and address are required (the nominal producer decides jurisdiction
//!   and is the party a referral is addressed to); the seller's USCC is optional.
//! * Shop details (platform, shop name, URL) are required for an online purchase; for on-site
//!   sampling they are optional but, if any is given, all three are.
//! * Test-item names must be unique within a result, because failed items refer to them by name.
//! * A Delta joint campaign (长三角联合抽查) names its product kind, since that campaign is
//!   organised per product kind.
//! * A test item may be "not judged" (不判定, recorded for information); it never counts as a
//!   failed item, and the overall verdict is only ever conforming or non-conforming.
//! * Sampling after the report date is reported on `sampling_date`.

use std::collections::HashMap;
use std::fmt;

use serde::{Serialize, Serializer};
use time::{Date, Month};
use url::Url;

use crate::ids::RegionCode;
use crate::uscc::Uscc;

/// Longest name, in characters: product, producer, seller, platform, shop, inspection body,
/// test item, campaign, standard.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest code, in characters: report number, campaign code.
pub const MAX_CODE_CHARS: usize = 100;
/// Longest postal address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 500;
/// Longest free text, in characters: model/specification, production date or batch, a test
/// item's requirement and measured value.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest shop URL, in characters (the common de-facto limit of browsers and servers).
pub const MAX_URL_CHARS: usize = 2048;
/// Most standards (依据标准) one result may cite.
pub const MAX_STANDARDS: usize = 20;
/// Most test items (检验项目) one result may carry; also bounds the failed items.
pub const MAX_TEST_ITEMS: usize = 200;
/// Most attachments one result may reference.
pub const MAX_ATTACHMENTS: usize = 20;
/// Longest attachment file name, in characters (the usual file-system limit).
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Longest media type, in characters (RFC 6838: 127 for the type and 127 for the subtype).
pub const MAX_MEDIA_TYPE_CHARS: usize = 255;
/// Largest attachment, in bytes (1 GiB). The exchange stores only the digest; the bound keeps
/// a typo from announcing an absurd file.
pub const MAX_ATTACHMENT_BYTES: u64 = 1 << 30;
/// What published tables write in a cell that has no value.
pub const NONE_MARK: &str = "/";
/// Prefix of [`SpotCheckResult::canonical_digest_input`], so these bytes can never collide
/// with the hash input of another kind of body, and a future format gets a new version.
pub const CANONICAL_PREFIX: &[u8] = b"yrd-exchange/spot-check-result/v1\n";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One bad field: its wire path in protobuf snake_case and what is wrong with it.
/// The gateway turns each into a `google.rpc.BadRequest.FieldViolation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Wire path, e.g. `producer.uscc`, `test_items[2].verdict`, `failed_items[0]`.
    pub field: String,
    /// What is wrong, in a sentence a partner's developer can act on.
    pub description: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Every violation found in one [`ResultInput`], in the order of the message's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spot-check result refused, {} bad field(s): {}", .violations.len(), join(.violations))]
pub struct FieldErrors {
    /// The violations; never empty when returned by [`SpotCheckResult::parse`].
    pub violations: Vec<FieldViolation>,
}

impl FieldErrors {
    /// The wire paths of the bad fields, in order (a field may appear more than once).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.violations.iter().map(|v| v.field.as_str())
    }
}

fn join(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------------------------
// Wire input
// ---------------------------------------------------------------------------------------------

/// A spot-check result exactly as it comes off the wire, before any check. Sub-messages are
/// `Option` as prost generates them; scalars are proto3 values (empty string = not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultInput {
    /// `product`: the product sampled.
    pub product: Option<ProductInput>,
    /// `producer`: the nominal producer (标称生产者) printed on the product.
    pub producer: Option<ProducerInput>,
    /// `seller`: the sampled seller (被抽样单位); for online sales the shop's operator.
    pub seller: Option<SellerInput>,
    /// `sampling_way` (抽样方式), a [`SamplingWay`] number.
    pub sampling_way: i32,
    /// `sampling_date` (抽样日期), `YYYY-MM-DD`.
    pub sampling_date: String,
    /// `inspection_body` (承检机构).
    pub inspection_body: String,
    /// `report_number` (报告编号).
    pub report_number: String,
    /// `report_date`, `YYYY-MM-DD`.
    pub report_date: String,
    /// `standards` (依据标准), e.g. `GB 6675.1-2014`.
    pub standards: Vec<String>,
    /// `test_items` (检验项目).
    pub test_items: Vec<TestItemInput>,
    /// `verdict` (检验结论), a [`Verdict`] number.
    pub verdict: i32,
    /// `failed_items` (不合格项目): names of test items.
    pub failed_items: Vec<String>,
    /// `campaign` (抽查计划/专项), optional.
    pub campaign: Option<CampaignInput>,
    /// `attachments`, by digest.
    pub attachments: Vec<AttachmentInput>,
}

/// Wire form of the product sampled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductInput {
    /// `name` (产品名称), required.
    pub name: String,
    /// `trademark` (商标); empty or "/" for none.
    pub trademark: String,
    /// `model` (规格型号); empty or "/" for none.
    pub model: String,
    /// `production_date` (生产日期), `YYYY-MM-DD`; empty or "/" for none; not in the future.
    pub production_date: String,
    /// `batch_number` (批号); empty or "/" for none.
    pub batch_number: String,
    /// `category`: the product category as the campaign names it; optional.
    pub category: String,
}

/// Wire form of the nominal producer (标称生产者).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerInput {
    /// `name` (标称生产者名称), required.
    pub name: String,
    /// `address` (标称生产者地址), required.
    pub address: String,
    /// `uscc` (统一社会信用代码), required.
    pub uscc: String,
    /// `region_code`: GB/T 2260 code of where the producer is; decides jurisdiction.
    pub region_code: String,
}

/// Wire form of the sampled seller (被抽样单位).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SellerInput {
    /// `name`, required.
    pub name: String,
    /// `uscc`, optional.
    pub uscc: String,
    /// `address`, optional.
    pub address: String,
    /// `region_code`: GB/T 2260 code of where the seller is.
    pub region_code: String,
    /// `platform` (电商平台).
    pub platform: String,
    /// `shop_name` (网店名称).
    pub shop_name: String,
    /// `shop_url`: `http` or `https`.
    pub shop_url: String,
}

/// Wire form of one test item (检验项目).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestItemInput {
    /// `name`, unique within the result.
    pub name: String,
    /// `requirement` (标准要求).
    pub requirement: String,
    /// `measured_value` (实测值).
    pub measured_value: String,
    /// `unit` of the measured value, optional.
    pub unit: String,
    /// `verdict` (单项判定), an [`ItemVerdict`] number.
    pub verdict: i32,
    /// `is_safety_item`: whether the item concerns health or safety (安全项目).
    pub is_safety_item: bool,
}

/// Wire form of the campaign (抽查计划/专项) a result belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignInput {
    /// `code`, required: the campaign code the organising agency assigns.
    pub code: String,
    /// `name`, required.
    pub name: String,
    /// `kind`, a [`CampaignKind`] number.
    pub kind: i32,
    /// `product_kind`, e.g. 儿童玩具; required for a Delta joint campaign.
    pub product_kind: String,
}

/// Wire form of an attachment referenced by digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentInput {
    /// `file_name`: a bare file name, no path.
    pub file_name: String,
    /// `media_type`: `type/subtype`, e.g. `application/pdf`.
    pub media_type: String,
    /// `sha256`: 64 hex digits.
    pub sha256: String,
    /// `size_bytes`: 1 to [`MAX_ATTACHMENT_BYTES`].
    pub size_bytes: u64,
    /// `description`: what the file is; optional.
    pub description: String,
}

// ---------------------------------------------------------------------------------------------
// Typed value
// ---------------------------------------------------------------------------------------------

/// How the sample was taken (抽样方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingWay {
    /// Bought online as a mystery shopper (网购/买样). Wire number 1.
    OnlinePurchase,
    /// Taken on site (现场抽样). Wire number 2.
    OnSite,
}

impl SamplingWay {
    /// The value of a wire number; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_wire(n: i32) -> Option<Self> {
        match n {
            1 => Some(SamplingWay::OnlinePurchase),
            2 => Some(SamplingWay::OnSite),
            _ => None,
        }
    }

    /// The wire number.
    pub fn wire(self) -> i32 {
        match self {
            SamplingWay::OnlinePurchase => 1,
            SamplingWay::OnSite => 2,
        }
    }
}

/// A verdict (检验结论), of the whole result or of one test item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Conforming (合格). Wire number 1.
    Conforming,
    /// Non-conforming (不合格). Wire number 2.
    NonConforming,
}

impl Verdict {
    /// The value of a wire number; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_wire(n: i32) -> Option<Self> {
        match n {
            1 => Some(Verdict::Conforming),
            2 => Some(Verdict::NonConforming),
            _ => None,
        }
    }

    /// The wire number.
    pub fn wire(self) -> i32 {
        match self {
            Verdict::Conforming => 1,
            Verdict::NonConforming => 2,
        }
    }
}

/// The verdict on one test item (单项判定): besides conforming and non-conforming, an item may
/// be measured but not judged (不判定).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemVerdict {
    /// Conforming (合格). Wire number 1.
    Conforming,
    /// Non-conforming (不合格). Wire number 2.
    NonConforming,
    /// Measured but not judged (不判定). Wire number 3.
    NotJudged,
}

impl ItemVerdict {
    /// The value of a wire number; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_wire(n: i32) -> Option<Self> {
        match n {
            1 => Some(ItemVerdict::Conforming),
            2 => Some(ItemVerdict::NonConforming),
            3 => Some(ItemVerdict::NotJudged),
            _ => None,
        }
    }

    /// The wire number.
    pub fn wire(self) -> i32 {
        match self {
            ItemVerdict::Conforming => 1,
            ItemVerdict::NonConforming => 2,
            ItemVerdict::NotJudged => 3,
        }
    }
}

/// Who organised the spot-check campaign (抽查计划/专项).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    /// A national supervision spot-check organised by SAMR (国家监督抽查). Wire number 1.
    National,
    /// A provincial supervision spot-check (省级监督抽查). Wire number 2.
    Provincial,
    /// A city or county spot-check (市县级监督抽查). Wire number 3.
    Local,
    /// A special campaign on one product or risk (专项抽查). Wire number 4.
    Special,
    /// The Yangtze River Delta joint spot-check (长三角联合抽查): every Delta agency sees its
    /// results. Wire number 5.
    DeltaJoint,
}

impl CampaignKind {
    /// The value of a wire number; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_wire(n: i32) -> Option<Self> {
        match n {
            1 => Some(CampaignKind::National),
            2 => Some(CampaignKind::Provincial),
            3 => Some(CampaignKind::Local),
            4 => Some(CampaignKind::Special),
            5 => Some(CampaignKind::DeltaJoint),
            _ => None,
        }
    }

    /// The wire number.
    pub fn wire(self) -> i32 {
        match self {
            CampaignKind::National => 1,
            CampaignKind::Provincial => 2,
            CampaignKind::Local => 3,
            CampaignKind::Special => 4,
            CampaignKind::DeltaJoint => 5,
        }
    }
}

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
    product: Product,
    producer: Producer,
    seller: Seller,
    sampling: Sampling,
    inspection: Inspection,
    standards: Vec<String>,
    test_items: Vec<TestItem>,
    verdict: Verdict,
    campaign: Option<Campaign>,
    attachments: Vec<Attachment>,
}

impl SpotCheckResult {
    /// Parses a wire result, checking it against every rule; `today` is the publication day,
    /// after which no date may lie. Returns every violation found, not just the first.
    pub fn parse(input: ResultInput, today: Date) -> Result<SpotCheckResult, FieldErrors> {
        let mut c = Collector::default();

        let product = c
            .message("product", input.product.as_ref())
            .and_then(|p| parse_product(&mut c, p, today));
        let producer = c
            .message("producer", input.producer.as_ref())
            .and_then(|p| parse_producer(&mut c, p));
        let way = c.enumeration(
            "sampling_way",
            input.sampling_way,
            SamplingWay::from_wire,
            "1 (online purchase, 网购/买样) or 2 (on site)",
        );
        let seller = c
            .message("seller", input.seller.as_ref())
            .and_then(|s| parse_seller(&mut c, s, way));

        let sampling_date = c.date("sampling_date", &input.sampling_date, today);
        let inspection_body = c.required("inspection_body", &input.inspection_body, LINE_NAME);
        let report_number = c.required("report_number", &input.report_number, LINE_CODE);
        let report_date = c.date("report_date", &input.report_date, today);
        if let (Some(sampled), Some(reported)) = (sampling_date, report_date) {
            if sampled > reported {
                c.push(
                    "sampling_date",
                    format!(
                        "sampling date {} is after the report date {}; a sample is taken \
                         before it is reported on",
                        iso(sampled),
                        iso(reported)
                    ),
                );
            }
        }

        let standards = parse_standards(&mut c, &input.standards);
        let test_items = parse_test_items(&mut c, &input.test_items);
        let verdict = c.enumeration(
            "verdict",
            input.verdict,
            Verdict::from_wire,
            "1 (conforming, 合格) or 2 (non-conforming, 不合格)",
        );
        if let Some(verdict) = verdict {
            check_failed_items(&mut c, verdict, &input.test_items, &input.failed_items);
        }
        let campaign = match &input.campaign {
            None => Some(None),
            Some(campaign) => parse_campaign(&mut c, campaign).map(Some),
        };
        let attachments = parse_attachments(&mut c, &input.attachments);

        let (
            Some(product),
            Some(producer),
            Some(seller),
            Some(way),
            Some(sampling_date),
            Some(inspection_body),
            Some(report_number),
            Some(report_date),
            Some(standards),
            Some(test_items),
            Some(verdict),
            Some(campaign),
            Some(attachments),
        ) = (
            product,
            producer,
            seller,
            way,
            sampling_date,
            inspection_body,
            report_number,
            report_date,
            standards,
            test_items,
            verdict,
            campaign,
            attachments,
        )
        else {
            return Err(c.finish());
        };
        if !c.violations.is_empty() {
            return Err(c.finish());
        }
        Ok(SpotCheckResult {
            product,
            producer,
            seller,
            sampling: Sampling {
                way,
                date: sampling_date,
            },
            inspection: Inspection {
                body: inspection_body,
                report_number,
                report_date,
            },
            standards,
            test_items,
            verdict,
            campaign,
            attachments,
        })
    }

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

    /// The bytes a store hashes to recognise the same body again: [`CANONICAL_PREFIX`]
    /// followed by the compact JSON of the parsed value (fields in declaration order, no maps,
    /// so equal values give equal bytes). Serialising this type cannot fail in practice; the
    /// `Result` is serde_json's signature.
    pub fn canonical_digest_input(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = CANONICAL_PREFIX.to_vec();
        serde_json::to_writer(&mut bytes, self)?;
        Ok(bytes)
    }
}

impl From<&SpotCheckResult> for ResultInput {
    /// The wire form of a parsed result, for encoding it back into a response or feed event.
    /// Parsing it again (with a `today` not before its dates) gives the same value.
    fn from(r: &SpotCheckResult) -> Self {
        let opt = |s: &Option<String>| s.clone().unwrap_or_default();
        let shop = r.seller.online_shop.as_ref();
        ResultInput {
            product: Some(ProductInput {
                name: r.product.name.clone(),
                trademark: opt(&r.product.trademark),
                model: opt(&r.product.model),
                production_date: r.product.production_date.map(iso).unwrap_or_default(),
                batch_number: opt(&r.product.batch_number),
                category: opt(&r.product.category),
            }),
            producer: Some(ProducerInput {
                name: r.producer.name.clone(),
                address: r.producer.address.clone(),
                uscc: r.producer.uscc.to_string(),
                region_code: r.producer.region.to_string(),
            }),
            seller: Some(SellerInput {
                name: r.seller.name.clone(),
                uscc: r
                    .seller
                    .uscc
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                address: opt(&r.seller.address),
                region_code: r.seller.region.to_string(),
                platform: shop.map(|s| s.platform.clone()).unwrap_or_default(),
                shop_name: shop.map(|s| s.shop_name.clone()).unwrap_or_default(),
                shop_url: shop.map(|s| s.url.to_string()).unwrap_or_default(),
            }),
            sampling_way: r.sampling.way.wire(),
            sampling_date: iso(r.sampling.date),
            inspection_body: r.inspection.body.clone(),
            report_number: r.inspection.report_number.clone(),
            report_date: iso(r.inspection.report_date),
            standards: r.standards.clone(),
            test_items: r
                .test_items
                .iter()
                .map(|t| TestItemInput {
                    name: t.name.clone(),
                    requirement: t.requirement.clone(),
                    measured_value: t.measured_value.clone(),
                    unit: opt(&t.unit),
                    verdict: t.verdict.wire(),
                    is_safety_item: t.is_safety_item,
                })
                .collect(),
            verdict: r.verdict.wire(),
            failed_items: r.failed_items().map(|t| t.name.clone()).collect(),
            campaign: r.campaign.as_ref().map(|c| CampaignInput {
                code: c.code.clone(),
                name: c.name.clone(),
                kind: c.kind.wire(),
                product_kind: opt(&c.product_kind),
            }),
            attachments: r
                .attachments
                .iter()
                .map(|a| AttachmentInput {
                    file_name: a.file_name.clone(),
                    media_type: a.media_type.clone(),
                    sha256: a.sha256.clone(),
                    size_bytes: a.size_bytes,
                    description: opt(&a.description),
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Section parsers. Each runs every check of its section before building the value, so a
// `None` never hides a violation that was not reported.
// ---------------------------------------------------------------------------------------------

fn parse_product(c: &mut Collector, p: &ProductInput, today: Date) -> Option<Product> {
    let name = c.required("product.name", &p.name, LINE_NAME);
    let trademark = c.optional("product.trademark", &p.trademark, LINE_NAME_OR_NONE);
    let model = c.optional("product.model", &p.model, TEXT_OR_NONE);
    let production_date = match p.production_date.trim() {
        "" | NONE_MARK => Some(None),
        text => c.date("product.production_date", text, today).map(Some),
    };
    let batch = c.optional("product.batch_number", &p.batch_number, TEXT_OR_NONE);
    let category = c.optional("product.category", &p.category, LINE_NAME);
    Some(Product {
        name: name?,
        trademark: trademark?,
        model: model?,
        production_date: production_date?,
        batch_number: batch?,
        category: category?,
    })
}

fn parse_producer(c: &mut Collector, p: &ProducerInput) -> Option<Producer> {
    let name = c.required("producer.name", &p.name, LINE_NAME);
    let address = c.required("producer.address", &p.address, ADDRESS);
    let uscc = c
        .required("producer.uscc", &p.uscc, LINE_CODE)
        .and_then(|s| c.uscc("producer.uscc", &s));
    let region = c.region("producer.region_code", &p.region_code);
    Some(Producer {
        name: name?,
        address: address?,
        uscc: uscc?,
        region: region?,
    })
}

fn parse_seller(c: &mut Collector, s: &SellerInput, way: Option<SamplingWay>) -> Option<Seller> {
    let name = c.required("seller.name", &s.name, LINE_NAME);
    let uscc = match c.optional("seller.uscc", &s.uscc, LINE_CODE) {
        Some(Some(text)) => c.uscc("seller.uscc", &text).map(Some),
        other => other.map(|_| None),
    };
    let address = c.optional("seller.address", &s.address, ADDRESS);
    let region = c.region("seller.region_code", &s.region_code);
    let platform = c.optional("seller.platform", &s.platform, LINE_NAME);
    let shop_name = c.optional("seller.shop_name", &s.shop_name, LINE_NAME);
    let shop_url = match c.optional("seller.shop_url", &s.shop_url, LINE_URL) {
        Some(Some(text)) => c.shop_url("seller.shop_url", &text).map(Some),
        other => other.map(|_| None),
    };
    let online_shop = match (platform, shop_name, shop_url) {
        (Some(platform), Some(shop_name), Some(url)) => {
            online_shop(c, way, platform, shop_name, url)
        }
        // A violation was recorded for the field that is `None`.
        _ => None,
    };
    Some(Seller {
        name: name?,
        uscc: uscc?,
        address: address?,
        region: region?,
        online_shop: online_shop?,
    })
}

/// Puts the shop details together: all three, or none where the sampling way allows it.
fn online_shop(
    c: &mut Collector,
    way: Option<SamplingWay>,
    platform: Option<String>,
    shop_name: Option<String>,
    url: Option<Url>,
) -> Option<Option<OnlineShop>> {
    let online = way == Some(SamplingWay::OnlinePurchase);
    match (platform, shop_name, url) {
        (Some(platform), Some(shop_name), Some(url)) => Some(Some(OnlineShop {
            platform,
            shop_name,
            url,
        })),
        (None, None, None) if !online => Some(None),
        (platform, shop_name, url) => {
            let why = if online {
                "an online purchase (网购/买样) names the platform, shop name and shop URL"
            } else {
                "platform, shop name and shop URL are given together or not at all"
            };
            for (field, present) in [
                ("seller.platform", platform.is_some()),
                ("seller.shop_name", shop_name.is_some()),
                ("seller.shop_url", url.is_some()),
            ] {
                if !present {
                    c.push(field, format!("must not be empty: {why}"));
                }
            }
            None
        }
    }
}

fn parse_standards(c: &mut Collector, standards: &[String]) -> Option<Vec<String>> {
    if standards.is_empty() {
        c.push(
            "standards",
            "at least one standard (依据标准) is required, e.g. GB 6675.1-2014",
        );
        return None;
    }
    if standards.len() > MAX_STANDARDS {
        c.push(
            "standards",
            format!(
                "{} standards given; at most {MAX_STANDARDS} are allowed",
                standards.len()
            ),
        );
        return None;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(standards.len());
    let mut ok = true;
    for (i, s) in standards.iter().enumerate() {
        let field = format!("standards[{i}]");
        match c.required(&field, s, LINE_NAME) {
            Some(s) => {
                if let Some(first) = seen.get(&s) {
                    c.push(&field, format!("repeats standards[{first}] ({s:?})"));
                    ok = false;
                } else {
                    seen.insert(s.clone(), i);
                    out.push(s);
                }
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn parse_test_items(c: &mut Collector, items: &[TestItemInput]) -> Option<Vec<TestItem>> {
    if items.is_empty() {
        c.push(
            "test_items",
            "at least one test item (检验项目) is required",
        );
        return None;
    }
    if items.len() > MAX_TEST_ITEMS {
        c.push(
            "test_items",
            format!(
                "{} test items given; at most {MAX_TEST_ITEMS} are allowed",
                items.len()
            ),
        );
        return None;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, t) in items.iter().enumerate() {
        let field = |f: &str| format!("test_items[{i}].{f}");
        let name = c.required(&field("name"), &t.name, LINE_NAME);
        if let Some(name) = &name {
            if let Some(first) = seen.get(name) {
                c.push(
                    field("name"),
                    format!(
                        "repeats test_items[{first}].name ({name:?}); names are unique because \
                         failed items refer to them"
                    ),
                );
                ok = false;
            } else {
                seen.insert(name.clone(), i);
            }
        }
        let requirement = c.required(&field("requirement"), &t.requirement, TEXT);
        let measured_value = c.required(&field("measured_value"), &t.measured_value, TEXT);
        let unit = c.optional(&field("unit"), &t.unit, LINE_CODE);
        let verdict = c.enumeration(
            &field("verdict"),
            t.verdict,
            ItemVerdict::from_wire,
            "1 (conforming, 合格), 2 (non-conforming, 不合格) or 3 (not judged, 不判定)",
        );
        match (name, requirement, measured_value, unit, verdict) {
            (Some(name), Some(requirement), Some(measured_value), Some(unit), Some(verdict)) => {
                out.push(TestItem {
                    name,
                    requirement,
                    measured_value,
                    unit,
                    verdict,
                    is_safety_item: t.is_safety_item,
                });
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// Checks the failed items (不合格项目) against the overall verdict and the test items. It
/// works on the raw test items so that a test item with, say, an empty requirement still
/// takes part; test items whose verdict is unreadable were reported already and are skipped.
fn check_failed_items(
    c: &mut Collector,
    verdict: Verdict,
    items: &[TestItemInput],
    failed: &[String],
) {
    if items.len() > MAX_TEST_ITEMS {
        // Already refused as a whole; matching against them would be unbounded work.
        return;
    }
    let mut by_name: HashMap<&str, (usize, Option<ItemVerdict>)> = HashMap::new();
    for (i, t) in items.iter().enumerate() {
        by_name
            .entry(t.name.trim())
            .or_insert((i, ItemVerdict::from_wire(t.verdict)));
    }
    match verdict {
        Verdict::Conforming => {
            if !failed.is_empty() {
                c.push(
                    "failed_items",
                    format!(
                        "{} failed item(s) listed, but the overall verdict is conforming (合格); \
                         a conforming result has none",
                        failed.len()
                    ),
                );
            }
            for (i, t) in items.iter().enumerate() {
                if ItemVerdict::from_wire(t.verdict) == Some(ItemVerdict::NonConforming) {
                    c.push(
                        format!("test_items[{i}].verdict"),
                        "is non-conforming, but the overall verdict is conforming (合格)",
                    );
                }
            }
        }
        Verdict::NonConforming => {
            if failed.is_empty() {
                c.push(
                    "failed_items",
                    "a non-conforming (不合格) result names at least one failed item (不合格项目)",
                );
                return;
            }
            if failed.len() > MAX_TEST_ITEMS {
                c.push(
                    "failed_items",
                    format!(
                        "{} failed items given; at most {MAX_TEST_ITEMS} are allowed",
                        failed.len()
                    ),
                );
                return;
            }
            let mut listed: HashMap<&str, usize> = HashMap::new();
            for (i, name) in failed.iter().enumerate() {
                let field = format!("failed_items[{i}]");
                let name = name.trim();
                if name.is_empty() {
                    c.push(field, "must not be empty: name a non-conforming test item");
                    continue;
                }
                if let Some(first) = listed.get(name) {
                    c.push(field, format!("repeats failed_items[{first}] ({name:?})"));
                    continue;
                }
                listed.insert(name, i);
                match by_name.get(name) {
                    None => c.push(
                        field,
                        format!("{name:?} names no test item; list test item names only"),
                    ),
                    Some((k, Some(ItemVerdict::Conforming))) => c.push(
                        field,
                        format!("test item {name:?} (test_items[{k}]) is conforming, not failed"),
                    ),
                    Some((k, Some(ItemVerdict::NotJudged))) => c.push(
                        field,
                        format!(
                            "test item {name:?} (test_items[{k}]) is not judged (不判定), not \
                             failed"
                        ),
                    ),
                    Some(_) => {}
                }
            }
            for (i, t) in items.iter().enumerate() {
                let name = t.name.trim();
                if ItemVerdict::from_wire(t.verdict) == Some(ItemVerdict::NonConforming)
                    && !name.is_empty()
                    && !listed.contains_key(name)
                {
                    c.push(
                        "failed_items",
                        format!(
                            "non-conforming test item {name:?} (test_items[{i}]) is not listed"
                        ),
                    );
                }
            }
        }
    }
}

fn parse_campaign(c: &mut Collector, k: &CampaignInput) -> Option<Campaign> {
    let code = c.required("campaign.code", &k.code, LINE_CODE);
    let name = c.required("campaign.name", &k.name, LINE_NAME);
    let kind = c.enumeration(
        "campaign.kind",
        k.kind,
        CampaignKind::from_wire,
        "1 (national), 2 (provincial), 3 (local), 4 (special) or 5 (Delta joint)",
    );
    let product_kind = match c.optional("campaign.product_kind", &k.product_kind, LINE_NAME) {
        Some(None) if kind == Some(CampaignKind::DeltaJoint) => {
            c.push(
                "campaign.product_kind",
                "must not be empty: a Delta joint spot-check (长三角联合抽查) is organised per \
                 product kind",
            );
            None
        }
        other => other,
    };
    Some(Campaign {
        code: code?,
        name: name?,
        kind: kind?,
        product_kind: product_kind?,
    })
}

fn parse_attachments(
    c: &mut Collector,
    attachments: &[AttachmentInput],
) -> Option<Vec<Attachment>> {
    if attachments.len() > MAX_ATTACHMENTS {
        c.push(
            "attachments",
            format!(
                "{} attachments given; at most {MAX_ATTACHMENTS} are allowed",
                attachments.len()
            ),
        );
        return None;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(attachments.len());
    let mut ok = true;
    for (i, a) in attachments.iter().enumerate() {
        let field = |f: &str| format!("attachments[{i}].{f}");
        let file_name = c
            .required(&field("file_name"), &a.file_name, FILE_NAME)
            .and_then(|n| {
                if n.contains(['/', '\\']) || n == "." || n == ".." {
                    c.push(
                        field("file_name"),
                        format!("{n:?} is a path; give the bare file name"),
                    );
                    None
                } else {
                    Some(n)
                }
            });
        let media_type = c
            .required(&field("media_type"), &a.media_type, MEDIA_TYPE)
            .and_then(|m| c.media_type(&field("media_type"), &m));
        let sha256 = c
            .required(&field("sha256"), &a.sha256, LINE_CODE)
            .and_then(|h| c.sha256(&field("sha256"), &h));
        if let Some(h) = &sha256 {
            if let Some(first) = seen.get(h) {
                c.push(
                    field("sha256"),
                    format!("repeats attachments[{first}].sha256: the same file is listed twice"),
                );
                ok = false;
            } else {
                seen.insert(h.clone(), i);
            }
        }
        let description = c.optional(&field("description"), &a.description, LINE_NAME);
        let size_ok = if a.size_bytes == 0 {
            c.push(
                field("size_bytes"),
                "must be at least 1: an empty file proves nothing",
            );
            false
        } else if a.size_bytes > MAX_ATTACHMENT_BYTES {
            c.push(
                field("size_bytes"),
                format!(
                    "{} bytes; at most {MAX_ATTACHMENT_BYTES} (1 GiB) are allowed",
                    a.size_bytes
                ),
            );
            false
        } else {
            true
        };
        match (file_name, media_type, sha256, description) {
            (Some(file_name), Some(media_type), Some(sha256), Some(description)) if size_ok => {
                out.push(Attachment {
                    file_name,
                    media_type,
                    sha256,
                    size_bytes: a.size_bytes,
                    description,
                });
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

// ---------------------------------------------------------------------------------------------
// The collector: field-level checks that record a violation and return `None` on failure.
// ---------------------------------------------------------------------------------------------

/// How a text field is checked.
#[derive(Debug, Clone, Copy)]
struct TextRule {
    /// Most characters allowed.
    max: usize,
    /// Whether line breaks and tabs are allowed.
    multiline: bool,
    /// Whether "/" means "none".
    none_mark: bool,
}

const LINE_NAME: TextRule = TextRule {
    max: MAX_NAME_CHARS,
    multiline: false,
    none_mark: false,
};
const LINE_NAME_OR_NONE: TextRule = TextRule {
    none_mark: true,
    ..LINE_NAME
};
const LINE_CODE: TextRule = TextRule {
    max: MAX_CODE_CHARS,
    ..LINE_NAME
};
const LINE_URL: TextRule = TextRule {
    max: MAX_URL_CHARS,
    ..LINE_NAME
};
const FILE_NAME: TextRule = TextRule {
    max: MAX_FILE_NAME_CHARS,
    ..LINE_NAME
};
const MEDIA_TYPE: TextRule = TextRule {
    max: MAX_MEDIA_TYPE_CHARS,
    ..LINE_NAME
};
const ADDRESS: TextRule = TextRule {
    max: MAX_ADDRESS_CHARS,
    ..LINE_NAME
};
const TEXT: TextRule = TextRule {
    max: MAX_TEXT_CHARS,
    multiline: true,
    none_mark: false,
};
const TEXT_OR_NONE: TextRule = TextRule {
    none_mark: true,
    ..TEXT
};

#[derive(Debug, Default)]
struct Collector {
    violations: Vec<FieldViolation>,
}

impl Collector {
    fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    fn finish(self) -> FieldErrors {
        debug_assert!(
            !self.violations.is_empty(),
            "a section failed without reporting why"
        );
        FieldErrors {
            violations: self.violations,
        }
    }

    /// A required sub-message.
    fn message<'a, T>(&mut self, field: &str, value: Option<&'a T>) -> Option<&'a T> {
        if value.is_none() {
            self.push(field, "is required");
        }
        value
    }

    /// A text that may be absent: `Some(None)` when empty (or "/" where that means none),
    /// `Some(Some(trimmed))` when good, `None` after recording a violation.
    fn optional(&mut self, field: &str, value: &str, rule: TextRule) -> Option<Option<String>> {
        let value = value.trim();
        if value.is_empty() || (rule.none_mark && value == NONE_MARK) {
            return Some(None);
        }
        let count = value.chars().count();
        if count > rule.max {
            self.push(
                field,
                format!("has {count} characters; at most {} are allowed", rule.max),
            );
            return None;
        }
        let bad = value.chars().enumerate().find(|(_, ch)| {
            ch.is_control() && !(rule.multiline && matches!(ch, '\n' | '\r' | '\t'))
        });
        if let Some((at, ch)) = bad {
            let allowed = if rule.multiline {
                "only line breaks and tabs are allowed"
            } else {
                "this field is one line"
            };
            self.push(
                field,
                format!(
                    "contains control character U+{:04X} at character {}; {allowed}",
                    u32::from(ch),
                    at + 1
                ),
            );
            return None;
        }
        Some(Some(value.to_owned()))
    }

    /// A text that must be present.
    fn required(&mut self, field: &str, value: &str, rule: TextRule) -> Option<String> {
        match self.optional(field, value, rule)? {
            Some(value) => Some(value),
            None => {
                self.push(field, "must not be empty");
                None
            }
        }
    }

    /// A required enum given by wire number.
    fn enumeration<T>(
        &mut self,
        field: &str,
        n: i32,
        from_wire: impl Fn(i32) -> Option<T>,
        expected: &str,
    ) -> Option<T> {
        let value = from_wire(n);
        if value.is_none() {
            let what = if n == 0 {
                "is unspecified (0)".to_owned()
            } else {
                format!("has unknown value {n}")
            };
            self.push(field, format!("{what}; expected {expected}"));
        }
        value
    }

    fn uscc(&mut self, field: &str, value: &str) -> Option<Uscc> {
        Uscc::parse(value)
            .map_err(|e| self.push(field, e.to_string()))
            .ok()
    }

    fn region(&mut self, field: &str, value: &str) -> Option<RegionCode> {
        let value = value.trim();
        if value.is_empty() {
            self.push(field, "must not be empty: a 6-digit GB/T 2260 region code");
            return None;
        }
        RegionCode::parse(value)
            .map_err(|e| self.push(field, e.to_string()))
            .ok()
    }

    /// A calendar date `YYYY-MM-DD`, not after `today`.
    fn date(&mut self, field: &str, value: &str, today: Date) -> Option<Date> {
        let value = value.trim();
        if value.is_empty() {
            self.push(field, "must not be empty: a date YYYY-MM-DD");
            return None;
        }
        let date = match parse_iso_date(value) {
            Ok(date) => date,
            Err(why) => {
                self.push(field, why);
                return None;
            }
        };
        if date > today {
            self.push(
                field,
                format!("{value} is in the future (today is {})", iso(today)),
            );
            return None;
        }
        Some(date)
    }

    /// An `http`/`https` URL with a host and no credentials. The WHATWG parser of the `url`
    /// crate repairs much (`https:/x`, stray tabs); a published shop address should be exact,
    /// so the text must already start with `http://` or `https://`, and whitespace is refused
    /// before parsing.
    fn shop_url(&mut self, field: &str, value: &str) -> Option<Url> {
        let lower = value.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            self.push(
                field,
                format!("{value:?} is not an http(s) URL; it must start with https:// or http://"),
            );
            return None;
        }
        if let Some(ch) = value.chars().find(|c| c.is_whitespace()) {
            self.push(
                field,
                format!(
                    "contains whitespace U+{:04X}; percent-encode it",
                    u32::from(ch)
                ),
            );
            return None;
        }
        let url = match Url::parse(value) {
            Ok(url) => url,
            Err(e) => {
                self.push(field, format!("{value:?} is not a well-formed URL: {e}"));
                return None;
            }
        };
        if url.host_str().is_none_or(str::is_empty) {
            self.push(field, format!("{value:?} has no host"));
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            self.push(
                field,
                "contains credentials (user:password@); a published shop URL carries none",
            );
            return None;
        }
        Some(url)
    }

    /// `type/subtype` of RFC 6838 restricted names, without parameters; lower-cased.
    fn media_type(&mut self, field: &str, value: &str) -> Option<String> {
        let restricted = |s: &str| {
            (1..=127).contains(&s.len())
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
        };
        match value.split_once('/') {
            Some((kind, sub)) if restricted(kind) && restricted(sub) => {
                Some(value.to_ascii_lowercase())
            }
            _ => {
                self.push(
                    field,
                    format!(
                        "{value:?} is not a media type; write type/subtype without parameters, \
                         e.g. application/pdf"
                    ),
                );
                None
            }
        }
    }

    /// 64 hex digits; lower-cased so one digest has one spelling.
    fn sha256(&mut self, field: &str, value: &str) -> Option<String> {
        if value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some(value.to_ascii_lowercase());
        }
        self.push(
            field,
            format!(
                "must be a SHA-256 digest of 64 hex digits, got {} characters",
                value.chars().count()
            ),
        );
        None
    }
}

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
fn parse_iso_date(s: &str) -> Result<Date, String> {
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
fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uscc::check_character;
    use time::macros::date;

    const TODAY: Date = date!(2024 - 06 - 30);

    /// A valid USCC with the given 17-character body.
    fn code(body: &str) -> String {
        format!("{body}{}", check_character(body).unwrap())
    }

    /// A valid non-conforming online purchase of a Delta joint campaign: a Shandong producer,
    /// a Jiangsu seller, three test items of which 0 (a safety item) and 1 failed.
    fn valid() -> ResultInput {
        let item = |name: &str, verdict: Verdict, safety: bool| TestItemInput {
            name: name.into(),
            requirement: "≤ 0.1 %".into(),
            measured_value: "0.35 %".into(),
            unit: String::new(),
            verdict: verdict.wire(),
            is_safety_item: safety,
        };
        ResultInput {
            product: Some(ProductInput {
                name: "儿童塑料玩具车".into(),
                trademark: "/".into(),
                model: "XK-2000".into(),
                production_date: "2024-03-01".into(),
                batch_number: "B20240301".into(),
                category: "儿童玩具".into(),
            }),
            producer: Some(ProducerInput {
                name: "济南某玩具有限公司".into(),
                address: "山东省济南市历下区某路1号".into(),
                uscc: code("91370102MA3C12345"),
                region_code: "370102".into(),
            }),
            seller: Some(SellerInput {
                name: "南京某商贸有限公司".into(),
                uscc: code("91320106MA1XY0123"),
                address: "江苏省南京市某区某路2号".into(),
                region_code: "320106".into(),
                platform: "某电商平台".into(),
                shop_name: "某玩具旗舰店".into(),
                shop_url: "https://shop.example.com/toys?id=1".into(),
            }),
            sampling_way: SamplingWay::OnlinePurchase.wire(),
            sampling_date: "2024-05-10".into(),
            inspection_body: "上海市质量监督检验技术研究院".into(),
            report_number: "SQI-2024-00123".into(),
            report_date: "2024-06-01".into(),
            standards: vec!["GB 6675.1-2014".into(), "GB 6675.4-2014".into()],
            test_items: vec![
                item("增塑剂", Verdict::NonConforming, true),
                item("标识和使用说明", Verdict::NonConforming, false),
                item("可触及的锐利边缘", Verdict::Conforming, true),
            ],
            verdict: Verdict::NonConforming.wire(),
            failed_items: vec!["增塑剂".into(), "标识和使用说明".into()],
            campaign: Some(CampaignInput {
                code: "YRD-2024-01".into(),
                name: "2024年长三角网络销售产品质量联合抽查".into(),
                kind: CampaignKind::DeltaJoint.wire(),
                product_kind: "儿童玩具".into(),
            }),
            attachments: vec![AttachmentInput {
                file_name: "report.pdf".into(),
                media_type: "application/pdf".into(),
                sha256: "ab".repeat(32),
                size_bytes: 123_456,
                description: "inspection report (检验报告)".into(),
            }],
        }
    }

    /// A valid conforming result sampled on site, with no shop, campaign or attachment.
    fn valid_conforming() -> ResultInput {
        let mut r = valid();
        r.sampling_way = SamplingWay::OnSite.wire();
        let seller = r.seller.as_mut().unwrap();
        seller.platform.clear();
        seller.shop_name.clear();
        seller.shop_url.clear();
        seller.uscc.clear();
        for t in &mut r.test_items {
            t.verdict = Verdict::Conforming.wire();
        }
        r.verdict = Verdict::Conforming.wire();
        r.failed_items.clear();
        r.campaign = None;
        r.attachments.clear();
        r
    }

    fn product(r: &mut ResultInput) -> &mut ProductInput {
        r.product.as_mut().unwrap()
    }
    fn producer(r: &mut ResultInput) -> &mut ProducerInput {
        r.producer.as_mut().unwrap()
    }
    fn seller(r: &mut ResultInput) -> &mut SellerInput {
        r.seller.as_mut().unwrap()
    }
    fn campaign(r: &mut ResultInput) -> &mut CampaignInput {
        r.campaign.as_mut().unwrap()
    }
    fn attachment(r: &mut ResultInput) -> &mut AttachmentInput {
        &mut r.attachments[0]
    }

    #[test]
    fn the_valid_result_parses() {
        let r = SpotCheckResult::parse(valid(), TODAY).unwrap();
        assert_eq!(r.verdict(), Verdict::NonConforming);
        assert_eq!(
            r.failed_items()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            ["增塑剂", "标识和使用说明"]
        );
        assert!(r.has_safety_failure());
        assert!(r.is_delta_joint());
        assert_eq!(r.product().trademark, None, "\"/\" means no trademark");
        assert_eq!(r.sampling().date, date!(2024 - 05 - 10));
        assert_eq!(r.inspection().report_date, date!(2024 - 06 - 01));
        assert_eq!(
            r.seller().online_shop.as_ref().map(|s| s.url.as_str()),
            Some("https://shop.example.com/toys?id=1")
        );
        let j = r.jurisdiction_regions();
        assert_eq!(j.producer_province.as_str(), "370000");
        assert_eq!(j.seller_province.as_str(), "320000");
    }

    #[test]
    fn a_conforming_on_site_result_parses() {
        let r = SpotCheckResult::parse(valid_conforming(), TODAY).unwrap();
        assert_eq!(r.verdict(), Verdict::Conforming);
        assert_eq!(r.failed_items().count(), 0);
        assert!(!r.has_safety_failure());
        assert!(!r.is_delta_joint());
        assert_eq!(r.seller().online_shop, None);
        assert_eq!(r.seller().uscc, None);
    }

    #[test]
    fn a_not_judged_item_is_neither_failed_nor_refused() {
        let mut input = valid();
        input.test_items[2].verdict = ItemVerdict::NotJudged.wire();
        let r = SpotCheckResult::parse(input, TODAY).unwrap();
        assert_eq!(r.failed_items().count(), 2);
        assert_eq!(r.test_items()[2].verdict, ItemVerdict::NotJudged);
        let mut conforming = valid_conforming();
        conforming.test_items[0].verdict = ItemVerdict::NotJudged.wire();
        assert!(SpotCheckResult::parse(conforming, TODAY).is_ok());
    }

    #[test]
    fn safety_failure_only_counts_failed_safety_items() {
        let mut input = valid();
        input.test_items[0].is_safety_item = false;
        let r = SpotCheckResult::parse(input, TODAY).unwrap();
        // Item 2 is a safety item but conforming.
        assert!(!r.has_safety_failure());
    }

    type Mutation = fn(&mut ResultInput);

    /// One row per rule: a valid result with one field broken, and the one field named.
    #[rustfmt::skip]
    const ROWS: &[(&str, Mutation, &str)] = &[
        // product
        ("product missing", |r| r.product = None, "product"),
        ("product name blank", |r| product(r).name = " \u{3000} ".into(), "product.name"),
        ("product name too long", |r| product(r).name = "玩".repeat(201), "product.name"),
        ("product name two lines", |r| product(r).name = "a\nb".into(), "product.name"),
        ("trademark too long", |r| product(r).trademark = "x".repeat(201), "product.trademark"),
        ("model too long", |r| product(r).model = "x".repeat(2001), "product.model"),
        ("batch control char", |r| product(r).batch_number = "a\u{0}".into(), "product.batch_number"),
        ("production date future", |r| product(r).production_date = "2024-07-01".into(), "product.production_date"),
        ("production date shape", |r| product(r).production_date = "2024-3-1".into(), "product.production_date"),
        ("category two lines", |r| product(r).category = "a\nb".into(), "product.category"),
        // producer
        ("producer missing", |r| r.producer = None, "producer"),
        ("producer name empty", |r| producer(r).name.clear(), "producer.name"),
        ("producer address empty", |r| producer(r).address.clear(), "producer.address"),
        ("producer address too long", |r| producer(r).address = "路".repeat(501), "producer.address"),
        ("producer uscc empty", |r| producer(r).uscc.clear(), "producer.uscc"),
        ("producer uscc check", |r| producer(r).uscc = "91350100M000100Y44".into(), "producer.uscc"),
        ("producer uscc lower case", |r| producer(r).uscc = "91330100799655058b".into(), "producer.uscc"),
        ("producer uscc length", |r| producer(r).uscc = "9133010079965505".into(), "producer.uscc"),
        ("producer region unknown", |r| producer(r).region_code = "990000".into(), "producer.region_code"),
        ("producer region shape", |r| producer(r).region_code = "37010".into(), "producer.region_code"),
        ("producer region empty", |r| producer(r).region_code.clear(), "producer.region_code"),
        // seller
        ("seller missing", |r| r.seller = None, "seller"),
        ("seller name empty", |r| seller(r).name.clear(), "seller.name"),
        ("seller address too long", |r| seller(r).address = "路".repeat(501), "seller.address"),
        ("seller uscc check", |r| seller(r).uscc = "91330100799655058C".into(), "seller.uscc"),
        ("seller region unknown", |r| seller(r).region_code = "000000".into(), "seller.region_code"),
        ("online without platform", |r| seller(r).platform.clear(), "seller.platform"),
        ("online without shop name", |r| seller(r).shop_name.clear(), "seller.shop_name"),
        ("online without shop url", |r| seller(r).shop_url.clear(), "seller.shop_url"),
        ("shop url not http", |r| seller(r).shop_url = "ftp://shop.example.com/".into(), "seller.shop_url"),
        ("shop url no scheme", |r| seller(r).shop_url = "shop.example.com".into(), "seller.shop_url"),
        ("shop url one slash", |r| seller(r).shop_url = "https:/shop.example.com".into(), "seller.shop_url"),
        ("shop url no host", |r| seller(r).shop_url = "https://".into(), "seller.shop_url"),
        ("shop url bad port", |r| seller(r).shop_url = "https://shop.example.com:99999/".into(), "seller.shop_url"),
        ("shop url space", |r| seller(r).shop_url = "https://shop.example.com/a b".into(), "seller.shop_url"),
        ("shop url credentials", |r| seller(r).shop_url = "https://u:p@shop.example.com/".into(), "seller.shop_url"),
        ("shop url too long", |r| seller(r).shop_url = format!("https://e.com/{}", "a".repeat(2040)), "seller.shop_url"),
        ("on site, shop in part", |r| { r.sampling_way = SamplingWay::OnSite.wire(); seller(r).shop_url.clear(); }, "seller.shop_url"),
        // sampling and report
        ("sampling way unspecified", |r| r.sampling_way = 0, "sampling_way"),
        ("sampling way unknown", |r| r.sampling_way = 9, "sampling_way"),
        ("sampling date empty", |r| r.sampling_date.clear(), "sampling_date"),
        ("sampling date slashes", |r| r.sampling_date = "2024/05/10".into(), "sampling_date"),
        ("sampling date unpadded", |r| r.sampling_date = "2024-5-10".into(), "sampling_date"),
        ("sampling date not a day", |r| r.sampling_date = "2023-02-29".into(), "sampling_date"),
        ("sampling date month 13", |r| r.sampling_date = "2024-13-01".into(), "sampling_date"),
        ("sampling date future", |r| r.sampling_date = "2024-07-01".into(), "sampling_date"),
        ("sampling after report", |r| r.sampling_date = "2024-06-02".into(), "sampling_date"),
        ("report before sampling", |r| r.report_date = "2024-05-09".into(), "sampling_date"),
        ("report date future", |r| r.report_date = "2024-07-01".into(), "report_date"),
        ("report date empty", |r| r.report_date.clear(), "report_date"),
        ("inspection body empty", |r| r.inspection_body.clear(), "inspection_body"),
        ("report number empty", |r| r.report_number.clear(), "report_number"),
        ("report number too long", |r| r.report_number = "9".repeat(101), "report_number"),
        // standards
        ("no standard", |r| r.standards.clear(), "standards"),
        ("too many standards", |r| r.standards = (0..21).map(|i| format!("GB {i}")).collect(), "standards"),
        ("standard blank", |r| r.standards[1] = " ".into(), "standards[1]"),
        ("standard repeated", |r| r.standards[1] = r.standards[0].clone(), "standards[1]"),
        // test items
        ("no test item", |r| { *r = valid_conforming(); r.test_items.clear(); }, "test_items"),
        ("too many test items", |r| {
            *r = valid_conforming();
            let first = r.test_items[0].clone();
            r.test_items = (0..201).map(|i| TestItemInput { name: format!("item {i}"), ..first.clone() }).collect();
        }, "test_items"),
        ("test item name empty", |r| r.test_items[2].name.clear(), "test_items[2].name"),
        ("test item name repeated", |r| r.test_items[2].name = "增塑剂".into(), "test_items[2].name"),
        ("requirement empty", |r| r.test_items[1].requirement.clear(), "test_items[1].requirement"),
        ("measured value too long", |r| r.test_items[1].measured_value = "1".repeat(2001), "test_items[1].measured_value"),
        ("item verdict unspecified", |r| r.test_items[2].verdict = 0, "test_items[2].verdict"),
        ("item verdict unknown", |r| r.test_items[2].verdict = 4, "test_items[2].verdict"),
        ("unit two lines", |r| r.test_items[2].unit = "mg\nkg".into(), "test_items[2].unit"),
        // verdict and failed items
        ("verdict unspecified", |r| r.verdict = 0, "verdict"),
        ("non-conforming without failed items", |r| r.failed_items.clear(), "failed_items"),
        ("failed item names no test item", |r| r.failed_items.push("重金属".into()), "failed_items[2]"),
        ("failed item names a not-judged item", |r| {
            r.test_items[2].verdict = ItemVerdict::NotJudged.wire();
            r.failed_items.push("可触及的锐利边缘".into());
        }, "failed_items[2]"),
        ("failed item names a conforming item", |r| r.failed_items.push("可触及的锐利边缘".into()), "failed_items[2]"),
        ("failed item repeated", |r| r.failed_items.push("增塑剂".into()), "failed_items[2]"),
        ("failed item blank", |r| r.failed_items.push(" ".into()), "failed_items[2]"),
        ("failed test item not listed", |r| { r.failed_items.pop(); }, "failed_items"),
        ("conforming with failed items", |r| { *r = valid_conforming(); r.failed_items.push("增塑剂".into()); }, "failed_items"),
        ("conforming with a failed test item", |r| {
            *r = valid_conforming();
            r.test_items[1].verdict = Verdict::NonConforming.wire();
        }, "test_items[1].verdict"),
        // campaign
        ("campaign name empty", |r| campaign(r).name.clear(), "campaign.name"),
        ("campaign code empty", |r| campaign(r).code.clear(), "campaign.code"),
        ("campaign code too long", |r| campaign(r).code = "C".repeat(101), "campaign.code"),
        ("campaign kind unspecified", |r| campaign(r).kind = 0, "campaign.kind"),
        ("campaign kind unknown", |r| campaign(r).kind = 6, "campaign.kind"),
        ("delta campaign without product kind", |r| campaign(r).product_kind.clear(), "campaign.product_kind"),
        // attachments
        ("too many attachments", |r| {
            let a = r.attachments[0].clone();
            r.attachments = (0..21u8).map(|i| AttachmentInput { sha256: format!("{i:02x}").repeat(32), ..a.clone() }).collect();
        }, "attachments"),
        ("file name empty", |r| attachment(r).file_name.clear(), "attachments[0].file_name"),
        ("file name a path", |r| attachment(r).file_name = "../report.pdf".into(), "attachments[0].file_name"),
        ("file name too long", |r| attachment(r).file_name = "a".repeat(256), "attachments[0].file_name"),
        ("media type no subtype", |r| attachment(r).media_type = "pdf".into(), "attachments[0].media_type"),
        ("media type parameters", |r| attachment(r).media_type = "text/plain; charset=utf-8".into(), "attachments[0].media_type"),
        ("sha256 short", |r| attachment(r).sha256 = "a".repeat(63), "attachments[0].sha256"),
        ("sha256 not hex", |r| attachment(r).sha256 = "g".repeat(64), "attachments[0].sha256"),
        ("sha256 repeated", |r| {
            let mut b = r.attachments[0].clone();
            b.file_name = "copy.pdf".into();
            b.sha256 = b.sha256.to_uppercase();
            r.attachments.push(b);
        }, "attachments[1].sha256"),
        ("description two lines", |r| attachment(r).description = "a\nb".into(), "attachments[0].description"),
        ("size zero", |r| attachment(r).size_bytes = 0, "attachments[0].size_bytes"),
        ("size too big", |r| attachment(r).size_bytes = MAX_ATTACHMENT_BYTES + 1, "attachments[0].size_bytes"),
    ];

    #[test]
    fn each_rule_names_exactly_its_field() {
        let mut failures = Vec::new();
        for (rule, mutate, field) in ROWS {
            let mut input = valid();
            mutate(&mut input);
            match SpotCheckResult::parse(input, TODAY) {
                Ok(_) => failures.push(format!("{rule}: accepted")),
                Err(errors) => {
                    let fields: Vec<&str> = errors.fields().collect();
                    if fields != [*field] {
                        failures.push(format!("{rule}: expected [{field}], got {errors}"));
                    }
                    if errors.violations.iter().any(|v| v.description.is_empty()) {
                        failures.push(format!("{rule}: a description is empty"));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn every_violation_is_collected_in_field_order() {
        let mut input = valid();
        product(&mut input).name.clear();
        seller(&mut input).shop_url = "not a url".into();
        input.report_date = "2099-01-01".into();
        input.test_items[2].verdict = 0;
        attachment(&mut input).size_bytes = 0;
        let errors = SpotCheckResult::parse(input, TODAY).unwrap_err();
        assert_eq!(
            errors.fields().collect::<Vec<_>>(),
            [
                "product.name",
                "seller.shop_url",
                "report_date",
                "test_items[2].verdict",
                "attachments[0].size_bytes"
            ]
        );
        assert!(
            errors
                .to_string()
                .starts_with("spot-check result refused, 5 bad field(s)")
        );
    }

    #[test]
    fn descriptions_say_what_is_wrong() {
        let describe = |mutate: Mutation| {
            let mut input = valid();
            mutate(&mut input);
            let errors = SpotCheckResult::parse(input, TODAY).unwrap_err();
            errors.violations[0].description.clone()
        };
        let check = describe(|r| producer(r).uscc = "91350100M000100Y44".into());
        assert!(check.contains("'3'") && check.contains("'4'"), "{check}");
        let lower = describe(|r| producer(r).uscc = "91330100799655058b".into());
        assert!(lower.contains("upper case"), "{lower}");
        let future = describe(|r| r.report_date = "2024-07-01".into());
        assert!(
            future.contains("future") && future.contains("2024-06-30"),
            "{future}"
        );
        let order = describe(|r| r.sampling_date = "2024-06-02".into());
        assert!(
            order.contains("after the report date 2024-06-01"),
            "{order}"
        );
        let unlisted = describe(|r| {
            r.failed_items.pop();
        });
        assert!(
            unlisted.contains("标识和使用说明") && unlisted.contains("test_items[1]"),
            "{unlisted}"
        );
        let long = describe(|r| product(r).name = "玩".repeat(201));
        assert!(
            long.contains("201 characters") && long.contains("200"),
            "{long}"
        );
    }

    #[test]
    fn canonical_bytes_ignore_spelling_and_see_content() {
        let base = SpotCheckResult::parse(valid(), TODAY).unwrap();
        let bytes = base.canonical_digest_input().unwrap();
        assert!(bytes.starts_with(CANONICAL_PREFIX));
        assert_eq!(
            bytes,
            base.canonical_digest_input().unwrap(),
            "deterministic"
        );

        // The same content spelt differently gives the same bytes.
        let mut respelt = valid();
        product(&mut respelt).name = "  儿童塑料玩具车\u{3000}".into();
        product(&mut respelt).trademark = String::new();
        respelt.failed_items.reverse();
        attachment(&mut respelt).sha256 = "AB".repeat(32);
        attachment(&mut respelt).media_type = "Application/PDF".into();
        let respelt = SpotCheckResult::parse(respelt, TODAY).unwrap();
        assert_eq!(respelt, base);
        assert_eq!(respelt.canonical_digest_input().unwrap(), bytes);

        // Different content gives different bytes.
        let mut changed = valid();
        changed.test_items[0].measured_value = "0.36 %".into();
        let changed = SpotCheckResult::parse(changed, TODAY).unwrap();
        assert_ne!(changed.canonical_digest_input().unwrap(), bytes);

        // Dates and codes appear in their plain text form.
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"2024-05-10\""), "{text}");
        assert!(text.contains("\"370102\""), "{text}");
        assert!(text.contains("\"non_conforming\""), "{text}");
    }

    #[test]
    fn wire_round_trip_gives_the_same_value() {
        for input in [valid(), valid_conforming()] {
            let parsed = SpotCheckResult::parse(input, TODAY).unwrap();
            let again = SpotCheckResult::parse(ResultInput::from(&parsed), TODAY).unwrap();
            assert_eq!(again, parsed);
        }
    }

    #[test]
    fn wire_numbers_round_trip() {
        for n in 0..6 {
            if let Some(v) = SamplingWay::from_wire(n) {
                assert_eq!(v.wire(), n);
            }
            if let Some(v) = Verdict::from_wire(n) {
                assert_eq!(v.wire(), n);
            }
            if let Some(v) = CampaignKind::from_wire(n) {
                assert_eq!(v.wire(), n);
            }
            if let Some(v) = ItemVerdict::from_wire(n) {
                assert_eq!(v.wire(), n);
            }
        }
        assert_eq!(Verdict::from_wire(0), None);
        assert_eq!(
            Verdict::from_wire(3),
            None,
            "not judged is never an overall verdict"
        );
        assert_eq!(ItemVerdict::from_wire(3), Some(ItemVerdict::NotJudged));
        // The numbers of spotcheck.proto's CampaignKind.
        assert_eq!(CampaignKind::from_wire(1), Some(CampaignKind::National));
        assert_eq!(CampaignKind::from_wire(5), Some(CampaignKind::DeltaJoint));
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(parse_iso_date("2024-02-29"), Ok(date!(2024 - 02 - 29)));
        for bad in [
            "2023-02-29",
            "+2024-01-01",
            "2024-1-01",
            "24-01-01",
            "2024-01-01T00:00",
            "２０２４-01-01",
        ] {
            assert!(parse_iso_date(bad).is_err(), "{bad}");
        }
        assert_eq!(iso(date!(2024 - 01 - 05)), "2024-01-05");
    }
}
