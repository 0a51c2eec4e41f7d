//! The untyped mirror of the wire message ([`ResultInput`] and its parts), and the way back
//! from a parsed result to it. Only `parse.rs` turns an input into a typed value.

use super::{SpotCheckResult, format_date as iso};

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
