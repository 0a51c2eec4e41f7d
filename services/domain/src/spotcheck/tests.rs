//! Tests of the spot-check result: every rule of the module doc, the collected violations
//! and their paths, the round trip through the wire form, and the canonical bytes.

use super::dates::{iso, parse_iso_date};
use super::*;
use crate::uscc::check_character;
use time::Date;
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
