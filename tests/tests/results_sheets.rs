//! `yrd results import` / `yrd results export` against a real server (issue 19), run as an
//! officer types them (`Cli::try_parse_from`): a generated sheet with some bad rows publishes
//! its good rows once and reports each bad one with its row and column; a second run publishes
//! nothing; `--dry-run` writes nothing and reports what the exchange would; a `--mapping` file
//! reads another layout; an export reads back in without publishing anything new, and into a
//! fresh exchange reproduces the same results. Each scenario runs on SQLite and PostgreSQL;
//! the 10,000-row sheet runs on SQLite (the embedded store of the target) and a
//! 500-row sheet on PostgreSQL, to keep CI's time reasonable. The import's wall time is printed,
//! not asserted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser as _;
use yrd_domain::Profile;
use yrd_e2e::fixtures::uscc;
use yrd_e2e::{SHANGHAI, StoreKind, TestApp};
use yrd_gateway::cli::results::cells::cells_of;
use yrd_gateway::cli::results::columns::{COLUMNS, export_headers, index_of};
use yrd_gateway::cli::results::import::{ImportReport, import};
use yrd_gateway::cli::results::sheet::{SheetFormat, read_rows, write_rows};
use yrd_gateway::cli::results::{ResultsCommand, ResultsError, export::export};
use yrd_gateway::cli::{Cli, Command};
use yrd_proto::v1 as pb;

/// Runs each scenario `async fn name(app: TestApp)` on both stores.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = yrd_e2e::TestApp::spawn(yrd_e2e::StoreKind::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$scenario(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = yrd_e2e::TestApp::spawn(yrd_e2e::StoreKind::Postgres).await {
                        super::$scenario(app).await;
                    }
                }
            }
        )*
    };
}

on_both_stores!(
    a_large_sheet_publishes_good_rows_once,
    a_dry_run_writes_nothing_and_says_what_the_exchange_would,
    a_mapping_file_reads_another_layout,
    an_export_reads_back_in,
);

/// The `i`-th result of the generated campaign: a Shanghai toy sampled online from a Shanghai
/// shop (so no referral opens), every tenth one non-conforming on a labelling item.
fn result(i: usize) -> pb::SpotCheckResult {
    let failed = i % 10 == 3;
    let serial = u32::try_from(i).expect("small index");
    pb::SpotCheckResult {
        product: Some(pb::Product {
            name: format!("儿童积木 {i}"),
            trademark: if i % 2 == 0 {
                String::new()
            } else {
                "乐高".into()
            },
            model: format!("JM-{i}"),
            production_date: "2024-03-01".into(),
            batch_number: format!("B{i}"),
            category: "儿童玩具".into(),
        }),
        producer: Some(pb::Party {
            name: format!("上海某玩具厂{i}"),
            uscc: uscc("310104", serial),
            address: format!("上海市徐汇区某路{i}号"),
            region_code: "310104".into(),
        }),
        seller: Some(pb::Seller {
            name: "上海某商贸有限公司".into(),
            uscc: uscc("310105", 1),
            address: String::new(),
            region_code: "310105".into(),
            platform: "某电商平台".into(),
            shop_name: "某玩具旗舰店".into(),
            shop_url: format!("https://shop.example.com/toys?id={i}"),
        }),
        sampling_way: pb::SamplingWay::OnlinePurchase as i32,
        sampling_date: format!("2024-05-{:02}", 1 + i % 28),
        inspection_body: "上海市质量监督检验技术研究院".into(),
        report_number: format!("SH-2024-{i:05}"),
        report_date: "2024-06-20".into(),
        standards: vec!["GB 6675.1-2014".into(), "GB 6675.2-2014".into()],
        test_items: vec![
            pb::TestItem {
                name: "可触及的锐利边缘".into(),
                requirement: "不应有; 见GB 6675.2-2014 5.8".into(),
                measured_value: "无".into(),
                unit: String::new(),
                verdict: pb::Verdict::Conforming as i32,
                is_safety_item: true,
            },
            pb::TestItem {
                name: "标识和使用说明".into(),
                requirement: "应有警示说明".into(),
                measured_value: if failed { "缺少" } else { "有" }.into(),
                unit: String::new(),
                verdict: if failed {
                    pb::Verdict::NonConforming
                } else {
                    pb::Verdict::Conforming
                } as i32,
                is_safety_item: false,
            },
        ],
        verdict: if failed {
            pb::Verdict::NonConforming
        } else {
            pb::Verdict::Conforming
        } as i32,
        failed_items: if failed {
            vec!["标识和使用说明".into()]
        } else {
            Vec::new()
        },
        campaign: Some(pb::Campaign {
            code: "SH-2024-TOYS".into(),
            name: "2024年上海市儿童玩具省级监督抽查".into(),
            kind: pb::CampaignKind::Provincial as i32,
            product_kind: "儿童玩具".into(),
        }),
        ..Default::default()
    }
}

/// The bad rows of a generated sheet, by data index: what is wrong and the column (Chinese,
/// English header) the report must name. The sheet row is the index plus 2 (header on row 1).
const BAD: &[(usize, &str, &str)] = &[
    (5, "标称生产者统一社会信用代码", "Producer USCC"),
    (17, "检验结论", "Verdict"),
    (42, "抽样日期", "Sampling date"),
    (99, "检验项目", "Test items"),
];
/// A data index whose row repeats row [`DUPLICATE_OF`]'s content.
const DUPLICATE: usize = 123;
/// The row it repeats.
const DUPLICATE_OF: usize = 7;

fn set(cells: &mut [String], field: &str, value: &str) {
    cells[index_of(field).expect("a known field")] = value.to_owned();
}

/// The data rows of a generated sheet of `n` rows (cells in [`COLUMNS`] order), with the
/// [`BAD`] rows broken and the [`DUPLICATE`] row repeating another (when `n` reaches them).
fn rows(n: usize) -> Vec<Vec<String>> {
    (0..n)
        .map(|i| {
            let source = if i == DUPLICATE { DUPLICATE_OF } else { i };
            let mut cells = cells_of(&result(source));
            match i {
                5 => set(&mut cells, "producer.uscc", "91310104000000000X"),
                17 => set(&mut cells, "verdict", "待定"),
                42 => set(&mut cells, "sampling_date", "2024-07-01"),
                99 => set(&mut cells, "test_items", "可触及的锐利边缘|不应有|无"),
                _ => {}
            }
            cells
        })
        .collect()
}

/// Writes a generated sheet of `n` rows with the `english` or Chinese header set.
fn write_sheet(path: &Path, n: usize, english: bool) {
    let format = SheetFormat::of_path(path).expect("a sheet name");
    write_rows(path, format, &export_headers(english), &rows(n)).expect("the sheet is written");
}

/// How many rows of `n` the generator breaks or repeats.
fn not_published(n: usize) -> usize {
    BAD.iter().filter(|(i, ..)| *i < n).count() + usize::from(DUPLICATE < n)
}

fn path(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_owned()
}

/// `yrd results <args…>` as typed, against `app` with the Shanghai system certificate.
fn command(app: &TestApp, args: &[&str]) -> ResultsCommand {
    let data_dir = app.pki_dir.parent().expect("pki under the data folder");
    let words: Vec<String> = ["yrd", "results"]
        .iter()
        .chain(args)
        .map(|w| (*w).to_owned())
        .chain([
            "--server".to_owned(),
            app.addr.to_string(),
            "--data-dir".to_owned(),
            path(data_dir),
            "--agency-cert".to_owned(),
            SHANGHAI.to_owned(),
        ])
        .collect();
    match Cli::try_parse_from(&words) {
        Ok(Cli {
            command: Command::Results(command),
        }) => command,
        Ok(other) => panic!("not a results command: {other:?}"),
        Err(e) => panic!("yrd {args:?}: {e}"),
    }
}

/// `yrd results import <args…>`: its report and what it printed.
async fn import_sheet(
    app: &TestApp,
    args: &[&str],
) -> Result<(ImportReport, String), ResultsError> {
    let ResultsCommand::Import(args) = command(app, &[&["import"], args].concat()) else {
        panic!("not an import");
    };
    let mut out = Vec::new();
    let report = import(args, &mut out).await?;
    Ok((report, String::from_utf8(out).expect("UTF-8 output")))
}

/// `yrd results export <args…>`: the number of results written.
async fn export_sheet(app: &TestApp, args: &[&str]) -> Result<usize, ResultsError> {
    let ResultsCommand::Export(args) = command(app, &[&["export"], args].concat()) else {
        panic!("not an export");
    };
    let mut out = Vec::new();
    Ok(export(args, &mut out).await?.results)
}

/// Every result Shanghai has published, by `SearchResults` (all pages).
async fn published(app: &TestApp) -> Vec<pb::SpotCheckResult> {
    let client = app.client(SHANGHAI, Profile::System).await.spot_check();
    yrd_client::list_all(
        "SpotCheckService.SearchResults",
        pb::SearchResultsRequest {
            publisher_agency: format!("agencies/{SHANGHAI}"),
            page_size: 500,
            ..Default::default()
        },
        |r, token| r.page_token = token,
        |r| {
            let mut client = client.clone();
            async move {
                let page = client.search_results(r).await?.into_inner();
                Ok((page.results, page.next_page_token))
            }
        },
    )
    .await
    .expect("search")
}

/// The (row, column) pairs of a report's rejections.
fn rejected_cells(report: &ImportReport) -> BTreeSet<(usize, String)> {
    report
        .rejected
        .iter()
        .map(|r| (r.row, r.column.clone()))
        .collect()
}

/// The (row, column) pairs the generator's bad rows must be reported with.
fn expected_cells(n: usize, english: bool) -> BTreeSet<(usize, String)> {
    BAD.iter()
        .filter(|(i, ..)| *i < n)
        .map(|(i, zh, en)| (i + 2, if english { en } else { zh }.to_string()))
        .collect()
}

async fn a_large_sheet_publishes_good_rows_once(app: TestApp) {
    // The 10,000 rows on the embedded store; fewer on PostgreSQL for CI's time.
    let (n, name) = match app.store_kind {
        StoreKind::Sqlite => (10_000, "campaign.xlsx"),
        StoreKind::Postgres => (500, "campaign.csv"),
    };
    let dir = tempfile::tempdir().expect("a folder");
    let sheet = dir.path().join(name);
    write_sheet(&sheet, n, false);
    let report_file = dir.path().join("rejected.csv");
    let args = [
        path(&sheet),
        "--rejected".into(),
        path(&report_file),
        "--concurrency".into(),
        // A knob for measuring (e.g. 128); the default is what the closing note reports.
        std::env::var("YRD_TEST_IMPORT_CONCURRENCY").unwrap_or_else(|_| "64".into()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // The local part alone (reading the sheet, the exchange's validation, the request ids):
    // the baseline the import's time compares with on a noisy machine.
    let (dry, _) = import_sheet(&app, &[&path(&sheet), "--dry-run"])
        .await
        .expect("the dry run runs");
    assert_eq!(dry.published, n - not_published(n));
    let (first, printed) = import_sheet(&app, &args).await.expect("the import runs");
    println!(
        "import of {n} rows ({name}, {:?}, debug build): {:.1} s, {:.0} rows/s; the dry run of the same sheet: {:.1} s",
        app.store_kind,
        first.seconds,
        n as f64 / first.seconds,
        dry.seconds
    );
    let good = n - not_published(n);
    assert_eq!(first.rows, n, "{printed}");
    assert_eq!(first.published, good, "{printed}");
    assert_eq!(
        first.duplicates,
        [(DUPLICATE + 2, DUPLICATE_OF + 2)],
        "{printed}"
    );
    assert_eq!(
        rejected_cells(&first),
        expected_cells(n, false),
        "{printed}"
    );
    assert_eq!(first.rejected_rows, BAD.len(), "{printed}");
    assert!(
        printed.contains(&format!("published {good} results"))
            && printed.contains("row 7, 标称生产者统一社会信用代码: result.producer.uscc"),
        "{printed}"
    );
    // The server's own message, mapped to the sheet's column.
    let sampling = first
        .rejected
        .iter()
        .find(|r| r.row == 44)
        .expect("row 44 rejected");
    assert!(
        sampling.reason.starts_with("result.sampling_date: "),
        "{sampling:?}"
    );
    // The report file lists the same rejections.
    let report_rows = read_rows(&report_file).expect("the report reads");
    assert_eq!(report_rows[0].cells, ["row", "column", "reason"]);
    assert_eq!(report_rows.len() - 1, first.rejected.len());
    assert_eq!(published(&app).await.len(), good);

    // A second run publishes nothing, and reports the same rows.
    let (second, printed) = import_sheet(&app, &args).await.expect("the re-run runs");
    println!(
        "re-run of {n} rows ({:?}): {:.1} s",
        app.store_kind, second.seconds
    );
    assert_eq!(second.published, 0, "{printed}");
    assert_eq!(second.already_published, good, "{printed}");
    assert_eq!(
        rejected_cells(&second),
        expected_cells(n, false),
        "{printed}"
    );
    assert_eq!(published(&app).await.len(), good);
}

async fn a_dry_run_writes_nothing_and_says_what_the_exchange_would(app: TestApp) {
    let n = 60;
    let dir = tempfile::tempdir().expect("a folder");
    let sheet = dir.path().join("english.csv");
    write_sheet(&sheet, n, true);
    let sheet = path(&sheet);

    let (dry, printed) = import_sheet(&app, &[&sheet, "--dry-run"])
        .await
        .expect("the dry run runs");
    assert!(dry.dry_run);
    assert_eq!(dry.published, n - not_published(n), "{printed}");
    assert_eq!(rejected_cells(&dry), expected_cells(n, true), "{printed}");
    assert!(printed.contains("nothing was sent"), "{printed}");
    assert!(
        published(&app).await.is_empty(),
        "a dry run publishes nothing"
    );

    // The real import rejects the same rows with the same messages.
    let (real, printed) = import_sheet(&app, &[&sheet])
        .await
        .expect("the import runs");
    assert_eq!(real.rejected, dry.rejected, "{printed}");
    assert_eq!(published(&app).await.len(), dry.published);

    // The command exits non-zero when rows were rejected.
    let mut out = Vec::new();
    let refused =
        yrd_gateway::cli::results::run(command(&app, &["import", &sheet]), &mut out).await;
    assert!(
        matches!(
            refused,
            Err(ResultsError::Rejected {
                rejected: 3,
                rows: 60,
                ..
            })
        ),
        "{refused:?}"
    );
}

async fn a_mapping_file_reads_another_layout(app: TestApp) {
    let n = 12;
    let dir = tempfile::tempdir().expect("a folder");
    // A city's own layout: a title row, three headers of its own, a column of its own.
    let mut header: Vec<&str> = export_headers(false);
    header[index_of("producer.name").expect("field")] = "生产企业";
    header[index_of("inspection_body").expect("field")] = "检测单位";
    header[index_of("test_items").expect("field")] = "检测项目明细";
    header.push("填报人");
    let mut data = vec![{
        let mut title = vec![String::new(); header.len()];
        title[0] = "2024年上海市儿童玩具监督抽查结果公示".into();
        title
    }];
    data.push(header.iter().map(|h| (*h).to_owned()).collect());
    data.extend(rows(n).into_iter().map(|mut r| {
        r.push("张三".into());
        r
    }));
    let sheet = dir.path().join("city.csv");
    let title: Vec<String> = data.remove(0);
    let title: Vec<&str> = title.iter().map(String::as_str).collect();
    write_rows(&sheet, SheetFormat::Csv, &title, &data).expect("sheet");
    let sheet = path(&sheet);

    let unmapped = import_sheet(&app, &[&sheet])
        .await
        .expect_err("unknown headers");
    let text = unmapped.to_string();
    assert!(
        text.contains("\"生产企业\" is not a known header")
            && text.contains("\"填报人\" is not a known header")
            && text.contains("required columns missing: 标称生产者名称"),
        "{text}"
    );

    let mapping = dir.path().join("mapping.toml");
    std::fs::write(
        &mapping,
        "[columns]\n\"生产企业\" = \"producer.name\"\n\"检测单位\" = \"inspection_body\"\n\
         \"检测项目明细\" = \"test_items\"\n\"填报人\" = \"ignore\"\n",
    )
    .expect("mapping file");
    let (report, printed) = import_sheet(&app, &[&sheet, "--mapping", &path(&mapping)])
        .await
        .expect("the import runs");
    assert!(printed.contains("(header on row 2)"), "{printed}");
    assert_eq!(report.published, n - not_published(n), "{printed}");
    // Bad rows are named by the sheet's own header and row (one lower for the title row).
    assert!(
        report
            .rejected
            .iter()
            .any(|r| r.row == 5 + 3 && r.column == "标称生产者统一社会信用代码"),
        "{printed}"
    );
    let shanghai = published(&app).await;
    assert_eq!(shanghai.len(), report.published);
    assert!(
        shanghai
            .iter()
            .all(|r| r.inspection_body == "上海市质量监督检验技术研究院"),
        "the mapped column filled inspection_body"
    );
}

async fn an_export_reads_back_in(app: TestApp) {
    let n = 40;
    let dir = tempfile::tempdir().expect("a folder");
    let sheet = dir.path().join("campaign.xlsx");
    write_sheet(&sheet, n, false);
    import_sheet(&app, &[&path(&sheet)])
        .await
        .expect("the import runs");
    // One more published by another tool, with a request id of its own.
    let mut client = app.client(SHANGHAI, Profile::System).await.spot_check();
    client
        .publish_result(pb::PublishResultRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            result: Some(result(n + 1)),
        })
        .await
        .expect("published by hand");
    let before = published(&app).await.len();
    assert_eq!(before, n - not_published(n) + 1);

    let exported = dir.path().join("export.xlsx");
    let out = path(&exported);
    assert_eq!(
        export_sheet(&app, &["--out", &out]).await.expect("export"),
        before
    );
    let again = export_sheet(&app, &["--out", &out]).await;
    assert!(
        matches!(again, Err(ResultsError::Exists(_))),
        "an export never replaces a file: {again:?}"
    );

    // Into the same exchange: nothing new.
    let (same, printed) = import_sheet(&app, &[&path(&exported)])
        .await
        .expect("the export reads back");
    assert_eq!(
        (same.published, same.already_published),
        (0, before),
        "{printed}"
    );
    assert!(same.rejected.is_empty(), "{printed}");
    assert_eq!(published(&app).await.len(), before);

    // Into a fresh exchange: the same results, which export to the same table.
    let fresh = TestApp::spawn(app.store_kind)
        .await
        .expect("a second exchange");
    let (copied, printed) = import_sheet(&fresh, &[&path(&exported)])
        .await
        .expect("the export imports");
    assert_eq!(copied.published, before, "{printed}");
    let copy = dir.path().join("copy.csv");
    assert_eq!(
        export_sheet(&fresh, &["--out", &path(&copy), "--format", "csv"])
            .await
            .expect("export"),
        before
    );
    let table = |file: &PathBuf| -> BTreeSet<Vec<String>> {
        read_rows(file)
            .expect("reads")
            .into_iter()
            .skip(1)
            .map(|r| r.cells)
            .collect()
    };
    assert_eq!(table(&copy), table(&exported));
    assert_eq!(COLUMNS.len(), table(&copy).first().map_or(0, Vec::len));
}
