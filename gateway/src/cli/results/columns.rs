//! The columns of a spot-check result table (结果公示), as agencies head them in Chinese and as
//! the English header set names them, and the field of `SpotCheckResult` each one fills.
//!
//! One row is one result. Fields with several values (standards, test items, failed items,
//! attachments) share one cell; [`crate::cli::results::cells`] reads and writes those cells.
//! The layout is documented for partners in `docs/partner-guide-results.md`.

use std::collections::HashMap;
use std::path::Path;

use crate::cli::results::error::ResultsError;

/// One column of the result table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The field it fills: its wire path under `result.` in protobuf snake_case
    /// (`producer.uscc`), which is also the name a `--mapping` file uses and the path the
    /// exchange names in its field violations.
    pub field: &'static str,
    /// The Chinese headers agencies write; the first is the one `yrd results export` writes.
    pub zh: &'static [&'static str],
    /// The English header (`yrd results export --english` writes it).
    pub en: &'static str,
    /// Whether every sheet must have the column (the field is required for every result).
    pub required: bool,
}

const fn col(
    field: &'static str,
    zh: &'static [&'static str],
    en: &'static str,
    required: bool,
) -> Column {
    Column {
        field,
        zh,
        en,
        required,
    }
}

/// Every column, in the order `yrd results export` writes them (the 结果公示 layout: the
/// product, who made and who sold it, how it was sampled and tested, the verdict, the campaign).
pub const COLUMNS: &[Column] = &[
    col(
        "product.name",
        &["产品名称", "样品名称"],
        "Product name",
        true,
    ),
    col("product.trademark", &["商标", "品牌"], "Trademark", false),
    col("product.model", &["规格型号", "型号规格"], "Model", false),
    col(
        "product.production_date",
        &["生产日期"],
        "Production date",
        false,
    ),
    col(
        "product.batch_number",
        &["批号", "生产批号"],
        "Batch number",
        false,
    ),
    col("product.category", &["产品类别"], "Category", false),
    col(
        "producer.name",
        &["标称生产者名称", "标称生产企业名称", "标称生产者"],
        "Producer name",
        true,
    ),
    col(
        "producer.address",
        &["标称生产者地址", "标称生产企业地址"],
        "Producer address",
        true,
    ),
    col(
        "producer.uscc",
        &["标称生产者统一社会信用代码", "标称生产企业统一社会信用代码"],
        "Producer USCC",
        true,
    ),
    col(
        "producer.region_code",
        &["标称生产者行政区划代码", "标称生产企业行政区划代码"],
        "Producer region code",
        true,
    ),
    col(
        "seller.name",
        &["被抽样单位名称", "受检单位名称", "被抽样单位", "受检单位"],
        "Seller name",
        true,
    ),
    col(
        "seller.uscc",
        &["被抽样单位统一社会信用代码", "受检单位统一社会信用代码"],
        "Seller USCC",
        false,
    ),
    col(
        "seller.address",
        &["被抽样单位地址", "受检单位地址"],
        "Seller address",
        false,
    ),
    col(
        "seller.region_code",
        &["被抽样单位行政区划代码", "受检单位行政区划代码"],
        "Seller region code",
        true,
    ),
    col(
        "seller.platform",
        &["电商平台", "网络交易平台"],
        "Platform",
        false,
    ),
    col(
        "seller.shop_name",
        &["网店名称", "店铺名称"],
        "Shop name",
        false,
    ),
    col("seller.shop_url", &["网店网址", "网址"], "Shop URL", false),
    col("sampling_way", &["抽样方式"], "Sampling way", true),
    col(
        "sampling_date",
        &["抽样日期", "抽样时间"],
        "Sampling date",
        true,
    ),
    col(
        "inspection_body",
        &["承检机构", "检验机构"],
        "Inspection body",
        true,
    ),
    col(
        "report_number",
        &["报告编号", "检验报告编号"],
        "Report number",
        true,
    ),
    col(
        "report_date",
        &["报告日期", "检验报告日期"],
        "Report date",
        true,
    ),
    col("standards", &["依据标准", "检验依据"], "Standards", true),
    col("test_items", &["检验项目"], "Test items", true),
    col(
        "verdict",
        &["检验结论", "检验结果", "结论"],
        "Verdict",
        true,
    ),
    col("failed_items", &["不合格项目"], "Failed items", false),
    col(
        "campaign.code",
        &["抽查计划编号", "计划编号"],
        "Campaign code",
        false,
    ),
    col(
        "campaign.name",
        &["抽查计划名称", "抽查计划"],
        "Campaign name",
        false,
    ),
    col(
        "campaign.kind",
        &["抽查类别", "抽查类型"],
        "Campaign kind",
        false,
    ),
    col(
        "campaign.product_kind",
        &["抽查产品种类", "产品种类"],
        "Campaign product kind",
        false,
    ),
    col("attachments", &["附件"], "Attachments", false),
];

/// Headers that carry nothing for the exchange and are skipped: the running number and the
/// remarks column of a 结果公示 table.
const SKIPPED: &[&str] = &["序号", "No.", "No", "备注", "Remarks"];

/// The mapping target that skips a column.
pub const IGNORE: &str = "ignore";

/// The index in [`COLUMNS`] of the column filling `field`.
pub fn index_of(field: &str) -> Option<usize> {
    COLUMNS.iter().position(|c| c.field == field)
}

/// Headers compare without surrounding space, inner spaces, a trailing colon or the case of
/// Latin letters, and with full-width brackets as ASCII ones: "产品名称 " and "Product Name" match.
fn normalise(header: &str) -> String {
    header
        .trim()
        .trim_end_matches([':', '：'])
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// A `--mapping` file: sheet header → field (or `ignore`), for layouts the built-in header
/// sets do not cover.
///
/// ```toml
/// [columns]
/// "企业名称" = "producer.name"
/// "检测单位" = "inspection_body"
/// "填报人" = "ignore"
/// ```
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Normalised header → field index, or `None` to skip the column.
    headers: HashMap<String, Option<usize>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    columns: HashMap<String, String>,
}

impl Mapping {
    /// Reads a mapping file, refusing an unknown field name with the list of known ones.
    pub fn load(path: &Path) -> Result<Mapping, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Mapping::parse(&text).map_err(|reason| ResultsError::Mapping {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses the text of a mapping file.
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let file: MappingFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut headers = HashMap::new();
        for (header, field) in file.columns {
            let target = if field.trim() == IGNORE {
                None
            } else {
                Some(index_of(field.trim()).ok_or_else(|| {
                    format!(
                        "column {header:?} maps to unknown field {field:?}; known fields: {}, or {IGNORE:?}",
                        COLUMNS.iter().map(|c| c.field).collect::<Vec<_>>().join(", ")
                    )
                })?)
            };
            headers.insert(normalise(&header), target);
        }
        Ok(Mapping { headers })
    }
}

/// Which sheet column fills which field: the result of reading a header row.
#[derive(Debug, Clone)]
pub struct Layout {
    /// For each sheet column, the index in [`COLUMNS`] it fills (`None`: skipped).
    pub sources: Vec<Option<usize>>,
    /// The sheet's header text of each field it has, by index in [`COLUMNS`]: how a rejected
    /// row's column is named in the report.
    pub headers: Vec<Option<String>>,
}

/// What a header cell means: a field, a column to skip, or nothing known.
enum Meaning {
    Field(usize),
    Skip,
    Unknown,
}

fn meaning(header: &str, mapping: &Mapping) -> Meaning {
    let key = normalise(header);
    if let Some(target) = mapping.headers.get(&key) {
        return target.map_or(Meaning::Skip, Meaning::Field);
    }
    if key.is_empty() || SKIPPED.iter().any(|s| normalise(s) == key) {
        return Meaning::Skip;
    }
    let found = COLUMNS.iter().position(|c| {
        normalise(c.en) == key
            || normalise(c.field) == key
            || c.zh.iter().any(|zh| normalise(zh) == key)
    });
    found.map_or(Meaning::Unknown, Meaning::Field)
}

impl Layout {
    /// Whether `row` looks like a header row: at least three of its cells name known columns.
    /// (Sheets often carry a title row, such as "2024年…抽查结果公示", above the header.)
    pub fn is_header(row: &[String], mapping: &Mapping) -> bool {
        row.iter()
            .filter(|cell| matches!(meaning(cell, mapping), Meaning::Field(_)))
            .count()
            >= 3
    }

    /// Reads the header row `row`: every cell must name a known column, a mapped one or one
    /// to skip, no field may come twice, and every required field must be there.
    pub fn from_header(row: &[String], mapping: &Mapping) -> Result<Layout, ResultsError> {
        let mut sources = Vec::with_capacity(row.len());
        let mut headers: Vec<Option<String>> = vec![None; COLUMNS.len()];
        let mut problems = Vec::new();
        for (i, cell) in row.iter().enumerate() {
            match meaning(cell, mapping) {
                Meaning::Field(field) => {
                    if let Some(first) = &headers[field] {
                        problems.push(format!(
                            "columns {first:?} and {cell:?} both fill {}",
                            COLUMNS[field].field
                        ));
                    }
                    headers[field] = Some(cell.trim().to_owned());
                    sources.push(Some(field));
                }
                Meaning::Skip => sources.push(None),
                Meaning::Unknown => {
                    problems.push(format!(
                        "column {} {cell:?} is not a known header; name its field in a --mapping file (or map it to \"ignore\")",
                        column_letter(i)
                    ));
                    sources.push(None);
                }
            }
        }
        let missing: Vec<String> = COLUMNS
            .iter()
            .zip(&headers)
            .filter(|(c, h)| c.required && h.is_none())
            .map(|(c, _)| format!("{} ({})", c.zh[0], c.en))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("required columns missing: {}", missing.join(", ")));
        }
        if problems.is_empty() {
            Ok(Layout { sources, headers })
        } else {
            Err(ResultsError::Header(problems))
        }
    }

    /// The cells of one sheet row, by index in [`COLUMNS`] (empty where the sheet has no such
    /// column), as the sheet has them.
    pub fn cells(&self, row: &[String]) -> Vec<String> {
        let mut cells = vec![String::new(); COLUMNS.len()];
        for (value, source) in row.iter().zip(&self.sources) {
            if let Some(field) = source {
                cells[*field].clone_from(value);
            }
        }
        cells
    }

    /// How the report names the column of `field` (index in [`COLUMNS`]): the sheet's header.
    pub fn header_of(&self, field: usize) -> String {
        self.headers[field]
            .clone()
            .unwrap_or_else(|| COLUMNS[field].zh[0].to_owned())
    }

    /// The report's name of the column a field violation path points at (`result.` and any
    /// `[n]` and sub-field stripped down to a column's field), or the path itself when no column
    /// holds it.
    pub fn column_of_violation(&self, path: &str) -> String {
        let path = path.strip_prefix("result.").unwrap_or(path);
        let mut probe = path;
        loop {
            let base = probe.split('[').next().unwrap_or(probe);
            if let Some(i) = index_of(base) {
                return self.header_of(i);
            }
            match probe.rfind('.') {
                Some(dot) => probe = &probe[..dot],
                None => return path.to_owned(),
            }
        }
    }
}

/// The spreadsheet letter of a zero-based column index: 0 → A, 26 → AA.
pub fn column_letter(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(char::from(b'A' + (index % 26) as u8));
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.iter().rev().collect()
}

/// The header row `yrd results export` writes: Chinese (the 结果公示 headers) or English.
pub fn export_headers(english: bool) -> Vec<&'static str> {
    COLUMNS
        .iter()
        .map(|c| if english { c.en } else { c.zh[0] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn chinese_and_english_headers_both_read() {
        let zh: Vec<String> = export_headers(false)
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        let en: Vec<String> = export_headers(true)
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        for header in [zh, en] {
            let layout = Layout::from_header(&header, &Mapping::default()).expect("known");
            assert_eq!(
                layout.sources,
                (0..COLUMNS.len()).map(Some).collect::<Vec<_>>()
            );
        }
        let agency = row(&["序号", " 产品名称 ", "标称生产企业名称", "受检单位", "备注"]);
        assert!(Layout::is_header(&agency, &Mapping::default()));
        assert!(!Layout::is_header(
            &row(&["2024年抽查结果公示"]),
            &Mapping::default()
        ));
    }

    #[test]
    fn unknown_duplicate_and_missing_columns_are_named() {
        let err = Layout::from_header(
            &row(&["产品名称", "样品名称", "填报人"]),
            &Mapping::default(),
        )
        .expect_err("bad header");
        let text = err.to_string();
        assert!(
            text.contains("\"产品名称\" and \"样品名称\" both fill product.name"),
            "{text}"
        );
        assert!(
            text.contains("column C \"填报人\" is not a known header"),
            "{text}"
        );
        assert!(
            text.contains("required columns missing: 标称生产者名称"),
            "{text}"
        );
    }

    #[test]
    fn a_mapping_names_other_headers() {
        let mapping = Mapping::parse(
            "[columns]\n\"企业名称\" = \"producer.name\"\n\"填报人\" = \"ignore\"\n",
        )
        .expect("mapping");
        let mut header: Vec<String> = export_headers(false)
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        let producer = index_of("producer.name").expect("field");
        header[producer] = "企业名称".into();
        header.push("填报人".into());
        let layout = Layout::from_header(&header, &mapping).expect("mapped");
        assert_eq!(layout.sources[producer], Some(producer));
        assert_eq!(layout.sources.last(), Some(&None));
        assert_eq!(layout.header_of(producer), "企业名称");
        let err = Mapping::parse("[columns]\n\"x\" = \"producer.nmae\"\n").expect_err("typo");
        assert!(err.contains("unknown field \"producer.nmae\""), "{err}");
    }

    #[test]
    fn violations_point_at_their_column() {
        let header: Vec<String> = export_headers(true)
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        let layout = Layout::from_header(&header, &Mapping::default()).expect("known");
        assert_eq!(
            layout.column_of_violation("result.producer.uscc"),
            "Producer USCC"
        );
        assert_eq!(
            layout.column_of_violation("result.test_items[2].verdict"),
            "Test items"
        );
        assert_eq!(
            layout.column_of_violation("result.failed_items[0]"),
            "Failed items"
        );
        assert_eq!(layout.column_of_violation("result.seller"), "seller");
        assert_eq!(layout.column_of_violation("request_id"), "request_id");
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(27), "AB");
    }
}
