//! [`SpotCheckResult::parse`]: the one place a result is built from the wire. Each section
//! parser runs every check of its section before building the value, so a `None` never hides
//! a violation that was not reported.

use std::collections::HashMap;

use time::Date;
use url::Url;

use super::collector::*;
use super::dates::iso;
use super::*;

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
}

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
    if !c.list_size(
        "standards",
        standards.len(),
        MAX_STANDARDS,
        "standards",
        Some("at least one standard (依据标准) is required, e.g. GB 6675.1-2014"),
    ) {
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
    if !c.list_size(
        "test_items",
        items.len(),
        MAX_TEST_ITEMS,
        "test items",
        Some("at least one test item (检验项目) is required"),
    ) {
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
            if !c.list_size(
                "failed_items",
                failed.len(),
                MAX_TEST_ITEMS,
                "failed items",
                Some(
                    "a non-conforming (不合格) result names at least one failed item (不合格项目)",
                ),
            ) {
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
    if !c.list_size(
        "attachments",
        attachments.len(),
        MAX_ATTACHMENTS,
        "attachments",
        None,
    ) {
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
