//! One row of a result table ↔ one `SpotCheckResult`: the cell formats of
//! `docs/partner-guide-results.md`.
//!
//! * Coded cells take the Chinese words of a 结果公示 table or English ones: sampling way
//!   (网购 / 现场抽样), verdicts (合格 / 不合格 / 不判定), campaign kinds (长三角联合抽查 …).
//! * Cells with several values put one value per line (Alt+Enter in a spreadsheet); `;` also
//!   separates values in a cell with no line break. Standards may also be separated by `；` or
//!   `、`, failed items by `；`.
//! * A test item is `name|requirement|measured value|unit|verdict|safety` (the unit may be
//!   empty; the safety mark may be left off, meaning "not a safety item"), an attachment
//!   `file name|media type|sha256|size in bytes|description`.
//!
//! The exchange validates the values; these functions only read the cells' shapes, and a cell
//! they cannot read is a [`CellError`] naming the column.

use yrd_proto::v1 as pb;

use crate::cli::results::columns::{COLUMNS, index_of};

/// A cell that could not be read: the column (index in [`COLUMNS`]) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    /// Index in [`COLUMNS`].
    pub column: usize,
    /// What is wrong, naming the accepted forms.
    pub reason: String,
}

/// Reads cells by field name.
struct Cells<'a> {
    cells: &'a [String],
    errors: Vec<CellError>,
}

impl Cells<'_> {
    /// The cell as the sheet has it (a list cell's trailing line break matters).
    fn raw(&self, field: &str) -> &str {
        index_of(field)
            .and_then(|i| self.cells.get(i))
            .map_or("", String::as_str)
    }

    /// The cell without surrounding white space.
    fn get(&self, field: &str) -> String {
        self.raw(field).trim().to_owned()
    }

    fn fail(&mut self, field: &str, reason: String) {
        if let Some(column) = index_of(field) {
            self.errors.push(CellError { column, reason });
        }
    }

    /// A coded cell: empty is 0 (the exchange says it is required where it is).
    fn code(&mut self, field: &str, read: fn(&str) -> Option<i32>, accepted: &str) -> i32 {
        let text = self.get(field);
        if text.is_empty() {
            return 0;
        }
        read(&text).unwrap_or_else(|| {
            self.fail(field, format!("{text:?} is not {accepted}"));
            0
        })
    }
}

/// Splits a cell with several values: by line, or by `;` when it has no line break, and also by
/// each of `extra`; blank values are dropped.
pub fn split_values(cell: &str, extra: &[char]) -> Vec<String> {
    let lines: Vec<&str> = if cell.contains('\n') {
        cell.lines().collect()
    } else {
        cell.split(';').collect()
    };
    lines
        .into_iter()
        .flat_map(|line| line.split(extra))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Joins values one per line, so that [`split_values`] reads them back; a single value with a
/// `;` in it ends with a line break, so it is not split.
pub fn join_values(values: &[String]) -> String {
    let joined = values.join("\n");
    if values.len() == 1 && joined.contains(';') {
        joined + "\n"
    } else {
        joined
    }
}

fn lower(text: &str) -> String {
    text.trim().to_lowercase().replace(['_', ' '], "-")
}

/// 网购/买样 … → 1, 现场抽样 → 2.
pub fn read_sampling_way(text: &str) -> Option<i32> {
    match lower(text).as_str() {
        "网购" | "买样" | "网购/买样" | "网络购买" | "网络抽样" | "online-purchase" | "online"
        | "1" => Some(pb::SamplingWay::OnlinePurchase as i32),
        "现场" | "现场抽样" | "on-site" | "onsite" | "2" => {
            Some(pb::SamplingWay::OnSite as i32)
        }
        _ => None,
    }
}

/// The word export writes for a sampling way.
pub fn sampling_way_word(way: i32) -> &'static str {
    match pb::SamplingWay::try_from(way) {
        Ok(pb::SamplingWay::OnlinePurchase) => "网购",
        Ok(pb::SamplingWay::OnSite) => "现场抽样",
        _ => "",
    }
}

/// 合格 → 1, 不合格 → 2, and 不判定 → 3 when `item` (a test item's verdict).
fn read_verdict(text: &str, item: bool) -> Option<i32> {
    match lower(text).as_str() {
        "合格" | "conforming" | "pass" | "1" => Some(pb::Verdict::Conforming as i32),
        "不合格" | "non-conforming" | "nonconforming" | "fail" | "2" => {
            Some(pb::Verdict::NonConforming as i32)
        }
        "不判定" | "not-judged" | "3" if item => Some(pb::Verdict::NotJudged as i32),
        _ => None,
    }
}

fn read_overall_verdict(text: &str) -> Option<i32> {
    read_verdict(text, false)
}

/// The word export writes for a verdict.
pub fn verdict_word(verdict: i32) -> &'static str {
    match pb::Verdict::try_from(verdict) {
        Ok(pb::Verdict::Conforming) => "合格",
        Ok(pb::Verdict::NonConforming) => "不合格",
        Ok(pb::Verdict::NotJudged) => "不判定",
        _ => "",
    }
}

const CAMPAIGN_KINDS: &[(pb::CampaignKind, &str, &[&str])] = &[
    (
        pb::CampaignKind::National,
        "国家监督抽查",
        &["国抽", "national"],
    ),
    (
        pb::CampaignKind::Provincial,
        "省级监督抽查",
        &["省抽", "provincial"],
    ),
    (
        pb::CampaignKind::Local,
        "市县级监督抽查",
        &["市县抽查", "local"],
    ),
    (pb::CampaignKind::Special, "专项抽查", &["专项", "special"]),
    (
        pb::CampaignKind::DeltaJoint,
        "长三角联合抽查",
        &["长三角", "delta-joint", "delta"],
    ),
];

fn read_campaign_kind(text: &str) -> Option<i32> {
    let key = lower(text);
    CAMPAIGN_KINDS
        .iter()
        .find(|(_, zh, others)| lower(zh) == key || others.iter().any(|o| *o == key))
        .map(|(kind, ..)| *kind as i32)
}

/// The word export writes for a campaign kind.
pub fn campaign_kind_word(kind: i32) -> &'static str {
    CAMPAIGN_KINDS
        .iter()
        .find(|(k, ..)| *k as i32 == kind)
        .map_or("", |(_, zh, _)| zh)
}

fn read_safety(text: &str) -> Option<bool> {
    match lower(text).as_str() {
        "" | "否" | "no" | "n" | "false" | "0" | "非安全" => Some(false),
        "是" | "安全" | "安全项目" | "yes" | "y" | "true" | "1" | "safety" => Some(true),
        _ => None,
    }
}

fn fields_of(line: &str) -> Vec<String> {
    line.split(['|', '｜'])
        .map(|f| f.trim().to_owned())
        .collect()
}

fn read_test_item(line: &str) -> Result<pb::TestItem, String> {
    let f = fields_of(line);
    if !(5..=6).contains(&f.len()) {
        return Err(format!(
            "test item {line:?} has {} field(s); expected name|requirement|measured value|unit|verdict|safety (unit may be empty, safety may be left off)",
            f.len()
        ));
    }
    let verdict = read_verdict(&f[4], true).ok_or_else(|| {
        format!(
            "test item {:?}: verdict {:?} is not 合格, 不合格 or 不判定 (conforming, non-conforming, not judged)",
            f[0], f[4]
        )
    })?;
    let safety = f.get(5).map_or("", String::as_str);
    let is_safety_item = read_safety(safety).ok_or_else(|| {
        format!(
            "test item {:?}: safety mark {safety:?} is not 是/否 (yes/no) or empty",
            f[0]
        )
    })?;
    Ok(pb::TestItem {
        name: f[0].clone(),
        requirement: f[1].clone(),
        measured_value: f[2].clone(),
        unit: f[3].clone(),
        verdict,
        is_safety_item,
    })
}

fn read_attachment(line: &str) -> Result<pb::Attachment, String> {
    let f = fields_of(line);
    if !(4..=5).contains(&f.len()) {
        return Err(format!(
            "attachment {line:?} has {} field(s); expected file name|media type|sha256|size in bytes|description",
            f.len()
        ));
    }
    let size_bytes = f[3].parse::<u64>().map_err(|_| {
        format!(
            "attachment {:?}: size {:?} is not a whole number of bytes",
            f[0], f[3]
        )
    })?;
    Ok(pb::Attachment {
        file_name: f[0].clone(),
        media_type: f[1].clone(),
        sha256: f[2].clone(),
        size_bytes,
        description: f.get(4).cloned().unwrap_or_default(),
    })
}

/// The result one row describes (its content fields), or every cell that could not be read.
pub fn result_of(cells: &[String]) -> Result<pb::SpotCheckResult, Vec<CellError>> {
    let mut c = Cells {
        cells,
        errors: Vec::new(),
    };
    let sampling_way = c.code(
        "sampling_way",
        read_sampling_way,
        "网购 or 现场抽样 (online purchase, on site)",
    );
    let verdict = c.code(
        "verdict",
        read_overall_verdict,
        "合格 or 不合格 (conforming, non-conforming)",
    );
    let mut test_items = Vec::new();
    for line in split_values(c.raw("test_items"), &[]) {
        match read_test_item(&line) {
            Ok(item) => test_items.push(item),
            Err(reason) => c.fail("test_items", reason),
        }
    }
    let mut attachments = Vec::new();
    for line in split_values(c.raw("attachments"), &[]) {
        match read_attachment(&line) {
            Ok(a) => attachments.push(a),
            Err(reason) => c.fail("attachments", reason),
        }
    }
    let campaign_fields = [
        "campaign.code",
        "campaign.name",
        "campaign.kind",
        "campaign.product_kind",
    ];
    let campaign = if campaign_fields.iter().all(|f| c.get(f).is_empty()) {
        None
    } else {
        let kind = c.code(
            "campaign.kind",
            read_campaign_kind,
            "国家监督抽查, 省级监督抽查, 市县级监督抽查, 专项抽查 or 长三角联合抽查 (national, provincial, local, special, delta-joint)",
        );
        Some(pb::Campaign {
            code: c.get("campaign.code"),
            name: c.get("campaign.name"),
            kind,
            product_kind: c.get("campaign.product_kind"),
        })
    };
    let result = pb::SpotCheckResult {
        product: Some(pb::Product {
            name: c.get("product.name"),
            trademark: c.get("product.trademark"),
            model: c.get("product.model"),
            production_date: c.get("product.production_date"),
            batch_number: c.get("product.batch_number"),
            category: c.get("product.category"),
        }),
        producer: Some(pb::Party {
            name: c.get("producer.name"),
            uscc: c.get("producer.uscc"),
            address: c.get("producer.address"),
            region_code: c.get("producer.region_code"),
        }),
        seller: Some(pb::Seller {
            name: c.get("seller.name"),
            uscc: c.get("seller.uscc"),
            address: c.get("seller.address"),
            region_code: c.get("seller.region_code"),
            platform: c.get("seller.platform"),
            shop_name: c.get("seller.shop_name"),
            shop_url: c.get("seller.shop_url"),
        }),
        sampling_way,
        sampling_date: c.get("sampling_date"),
        inspection_body: c.get("inspection_body"),
        report_number: c.get("report_number"),
        report_date: c.get("report_date"),
        standards: split_values(c.raw("standards"), &['；', '、']),
        test_items,
        verdict,
        failed_items: split_values(c.raw("failed_items"), &['；']),
        campaign,
        attachments,
        ..Default::default()
    };
    if c.errors.is_empty() {
        Ok(result)
    } else {
        Err(c.errors)
    }
}

fn safety_word(safety: bool) -> &'static str {
    if safety { "是" } else { "否" }
}

/// The cells of one result, by index in [`COLUMNS`]: what `yrd results export` writes and
/// [`result_of`] reads back.
pub fn cells_of(result: &pb::SpotCheckResult) -> Vec<String> {
    let product = result.product.clone().unwrap_or_default();
    let producer = result.producer.clone().unwrap_or_default();
    let seller = result.seller.clone().unwrap_or_default();
    let campaign = result.campaign.clone();
    let items: Vec<String> = result
        .test_items
        .iter()
        .map(|t| {
            [
                t.name.as_str(),
                &t.requirement,
                &t.measured_value,
                &t.unit,
                verdict_word(t.verdict),
                safety_word(t.is_safety_item),
            ]
            .join("|")
        })
        .collect();
    let attachments: Vec<String> = result
        .attachments
        .iter()
        .map(|a| {
            [
                a.file_name.clone(),
                a.media_type.clone(),
                a.sha256.clone(),
                a.size_bytes.to_string(),
                a.description.clone(),
            ]
            .join("|")
        })
        .collect();
    COLUMNS
        .iter()
        .map(|column| match column.field {
            // A 结果公示 table writes "/" for a product that shows no trademark.
            "product.trademark" if product.trademark.is_empty() => "/".to_owned(),
            "product.trademark" => product.trademark.clone(),
            "product.name" => product.name.clone(),
            "product.model" => product.model.clone(),
            "product.production_date" => product.production_date.clone(),
            "product.batch_number" => product.batch_number.clone(),
            "product.category" => product.category.clone(),
            "producer.name" => producer.name.clone(),
            "producer.address" => producer.address.clone(),
            "producer.uscc" => producer.uscc.clone(),
            "producer.region_code" => producer.region_code.clone(),
            "seller.name" => seller.name.clone(),
            "seller.uscc" => seller.uscc.clone(),
            "seller.address" => seller.address.clone(),
            "seller.region_code" => seller.region_code.clone(),
            "seller.platform" => seller.platform.clone(),
            "seller.shop_name" => seller.shop_name.clone(),
            "seller.shop_url" => seller.shop_url.clone(),
            "sampling_way" => sampling_way_word(result.sampling_way).to_owned(),
            "sampling_date" => result.sampling_date.clone(),
            "inspection_body" => result.inspection_body.clone(),
            "report_number" => result.report_number.clone(),
            "report_date" => result.report_date.clone(),
            "standards" => join_values(&result.standards),
            "test_items" => join_values(&items),
            "verdict" => verdict_word(result.verdict).to_owned(),
            "failed_items" => join_values(&result.failed_items),
            "campaign.code" => campaign
                .as_ref()
                .map(|c| c.code.clone())
                .unwrap_or_default(),
            "campaign.name" => campaign
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            "campaign.kind" => campaign
                .as_ref()
                .map(|c| campaign_kind_word(c.kind).to_owned())
                .unwrap_or_default(),
            "campaign.product_kind" => campaign
                .as_ref()
                .map(|c| c.product_kind.clone())
                .unwrap_or_default(),
            "attachments" => join_values(&attachments),
            _ => String::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> pb::SpotCheckResult {
        pb::SpotCheckResult {
            product: Some(pb::Product {
                name: "儿童滑板车".into(),
                model: "X-1".into(),
                production_date: "2024-03-01".into(),
                ..Default::default()
            }),
            producer: Some(pb::Party {
                name: "某厂".into(),
                uscc: "91330100799655058B".into(),
                address: "杭州".into(),
                region_code: "330106".into(),
            }),
            seller: Some(pb::Seller {
                name: "某店".into(),
                region_code: "310104".into(),
                platform: "淘宝".into(),
                shop_name: "某旗舰店".into(),
                ..Default::default()
            }),
            sampling_way: 1,
            sampling_date: "2024-05-01".into(),
            inspection_body: "某院".into(),
            report_number: "R1".into(),
            report_date: "2024-05-20".into(),
            standards: vec!["GB 6675.1-2014".into(), "GB 6675.2-2014".into()],
            test_items: vec![
                pb::TestItem {
                    name: "锐边".into(),
                    requirement: "无; 见5.2".into(),
                    measured_value: "有".into(),
                    unit: String::new(),
                    verdict: 2,
                    is_safety_item: true,
                },
                pb::TestItem {
                    name: "标识".into(),
                    requirement: "应有".into(),
                    measured_value: "有".into(),
                    unit: String::new(),
                    verdict: 3,
                    is_safety_item: false,
                },
            ],
            verdict: 2,
            failed_items: vec!["锐边".into()],
            campaign: Some(pb::Campaign {
                code: "C1".into(),
                name: "专项".into(),
                kind: 5,
                product_kind: "儿童玩具".into(),
            }),
            attachments: vec![pb::Attachment {
                file_name: "r.pdf".into(),
                media_type: "application/pdf".into(),
                sha256: "ab".repeat(32),
                size_bytes: 12,
                description: "报告".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn cells_round_trip() {
        let cells = cells_of(&sample());
        assert_eq!(cells[index_of("product.trademark").expect("col")], "/");
        let mut back = result_of(&cells).expect("reads");
        // "/" is the table's spelling of no trademark; the exchange reads it as empty.
        assert_eq!(back.product.as_ref().expect("product").trademark, "/");
        if let Some(p) = back.product.as_mut() {
            p.trademark.clear();
        }
        assert_eq!(back, sample());
        let mut one = sample();
        one.test_items.truncate(1);
        assert_eq!(
            result_of(&cells_of(&one)).expect("reads").test_items,
            one.test_items
        );
    }

    #[test]
    fn agency_spellings_read() {
        assert_eq!(read_sampling_way("网购/买样"), Some(1));
        assert_eq!(read_sampling_way("On site"), Some(2));
        assert_eq!(read_verdict("Non-Conforming", false), Some(2));
        assert_eq!(read_verdict("不判定", false), None);
        assert_eq!(read_campaign_kind("长三角联合抽查"), Some(5));
        assert_eq!(read_campaign_kind("delta_joint"), Some(5));
        assert_eq!(
            split_values("GB 6675.1-2014、GB 6675.2-2014", &['；', '、']),
            ["GB 6675.1-2014", "GB 6675.2-2014"]
        );
        let item = read_test_item("增塑剂 | ≤0.1% | 0.35 | % | 不合格").expect("item");
        assert_eq!(
            (item.verdict, item.is_safety_item, item.unit.as_str()),
            (2, false, "%")
        );
    }

    #[test]
    fn unreadable_cells_name_their_column() {
        let mut cells = cells_of(&sample());
        cells[index_of("sampling_way").expect("col")] = "邮寄".into();
        cells[index_of("test_items").expect("col")] = "锐边|无|有|不合格".into();
        let errors = result_of(&cells).expect_err("bad cells");
        let columns: Vec<&str> = errors.iter().map(|e| COLUMNS[e.column].field).collect();
        assert_eq!(columns, ["sampling_way", "test_items"]);
        assert!(
            errors[0].reason.contains("\"邮寄\" is not 网购"),
            "{errors:?}"
        );
        assert!(errors[1].reason.contains("has 4 field(s)"), "{errors:?}");
    }
}
