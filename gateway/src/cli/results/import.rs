//! `yrd results import FILE`: one `PublishResult` per row of a result table.
//!
//! * **Rows.** The header row is the first of the sheet's first rows that names at least three
//!   known columns (a title row above it is skipped); each later row that is not blank is one
//!   result ([`crate::cli::results::cells`]).
//! * **Validation is the exchange's.** A row whose cells cannot be read at all (an unknown
//!   verdict word, a test item with too few fields) is rejected here with its column; every
//!   other row is sent, and a row the exchange refuses is rejected with the exchange's own
//!   field messages, each mapped back to the sheet's column. `--dry-run` sends nothing and runs
//!   the exchange's validation (`yrd-domain`) here instead, with the same messages.
//! * **Idempotent re-runs.** A row's `request_id` is the SHA-256 of the result's canonical form
//!   (the bytes the exchange itself hashes to recognise a repeated request, after trimming and
//!   "/" as no trademark), so the same row — or the same result exported by `yrd results
//!   export` — always carries the same id and the exchange answers a repeat with its first
//!   answer instead of publishing again. Two rows of one sheet with the same content are
//!   published once; the second is reported as a duplicate. The exchange remembers request ids
//!   for `writes.request_id_retention_hours` (seven days by default): a re-run after that
//!   publishes again.
//! * **Already published.** Before sending, the results the caller's agency published with
//!   sampling dates in the sheet's range are read (`SearchResults`, every page); a row whose
//!   canonical form equals one of them is counted as already published and not sent. So an
//!   export of results published by any means reads back in without publishing anything, and
//!   a re-run long after the request-id retention still publishes nothing twice.
//! * **Throughput.** Up to `--concurrency` publications are in flight at once over the one
//!   connection (HTTP/2 streams); retries of `UNAVAILABLE`/`RESOURCE_EXHAUSTED` are the
//!   client's (`yrd-client`), and safe because of the request ids.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt as _;
use prost::Message as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::Date;
use yrd_client::{RpcError, code_name, list_all};
use yrd_domain::clock::{Clock as _, SystemClock};
use yrd_domain::spotcheck::SpotCheckResult;
use yrd_domain::{AgencyId, Profile};
use yrd_proto::v1 as pb;

use crate::cli::output::{progress_bar, write_json};
use crate::cli::results::cells::result_of;
use crate::cli::results::columns::{COLUMNS, Layout, Mapping};
use crate::cli::results::command::ImportArgs;
use crate::cli::results::error::ResultsError;
use crate::cli::results::sheet::{SheetRow, read_rows, rows_of};
use crate::cli::session::Session;

/// How many of the first rows may hold the header row.
const HEADER_SEARCH_ROWS: usize = 20;
/// How many rejections the summary prints (the `--rejected` report has them all).
const PRINTED_REJECTIONS: usize = 20;

/// One problem with one row: the sheet's row number, the column as the sheet heads it (empty
/// when the problem is the whole row's), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Row number as the spreadsheet shows it.
    pub row: usize,
    /// The column's header in the sheet, or a field path no column holds.
    pub column: String,
    /// Why: the field path and the exchange's message, or why the cell could not be read.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The sheet.
    pub file: PathBuf,
    /// Whether nothing was sent.
    pub dry_run: bool,
    /// Result rows read (blank rows not counted).
    pub rows: usize,
    /// Rows the exchange accepted: published now, or by an earlier import of the same content
    /// (then the exchange answered its first answer again). In a dry run: rows that passed.
    pub published: usize,
    /// Rows not sent because the agency had already published the same content.
    pub already_published: usize,
    /// The rows that repeat an earlier row of the sheet, as (row, earlier row): published once.
    pub duplicates: Vec<(usize, usize)>,
    /// Every problem of every rejected row, by row.
    pub rejected: Vec<Rejection>,
    /// Rows with at least one rejection.
    pub rejected_rows: usize,
    /// Wall time of the whole import, reading the sheet included, in seconds.
    pub seconds: f64,
}

/// A row ready to publish.
#[derive(Debug)]
struct Job {
    row: usize,
    request_id: String,
    result: pb::SpotCheckResult,
}

impl ImportReport {
    /// The report of an import of `file` that has read nothing yet.
    fn new(file: PathBuf, dry_run: bool) -> Self {
        ImportReport {
            file,
            dry_run,
            rows: 0,
            published: 0,
            already_published: 0,
            duplicates: Vec::new(),
            rejected: Vec::new(),
            rejected_rows: 0,
            seconds: 0.0,
        }
    }
}

/// Finds the header of `rows` and reads every later row that is not blank into a result,
/// checked by the exchange's rules as of `today`: counts the rows and records the duplicates
/// and rejections in `report`, and answers the header's index, the layout and the rows to
/// publish. In a dry run, a row the rules refuse is rejected here and every other row counts
/// as published.
fn plan(
    rows: &[SheetRow],
    mapping: &Mapping,
    today: Date,
    report: &mut ImportReport,
) -> Result<(usize, Layout, Vec<Job>), ResultsError> {
    let (header_at, layout) = layout_of(rows, mapping)?;
    let mut jobs = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in &rows[header_at + 1..] {
        if row.cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        report.rows += 1;
        let result = match result_of(&layout.cells(&row.cells)) {
            Ok(result) => result,
            Err(errors) => {
                report
                    .rejected
                    .extend(errors.into_iter().map(|e| Rejection {
                        row: row.number,
                        column: layout.header_of(e.column),
                        reason: e.reason,
                    }));
                continue;
            }
        };
        let (request_id, local) = check(&result, &layout, row.number, today);
        if report.dry_run && !local.is_empty() {
            report.rejected.extend(local);
            continue;
        }
        if let Some(first) = seen.get(&request_id) {
            report.duplicates.push((row.number, *first));
            continue;
        }
        seen.insert(request_id.clone(), row.number);
        jobs.push(Job {
            row: row.number,
            request_id,
            result,
        });
    }
    if report.dry_run {
        report.published = jobs.len();
    }
    Ok((header_at, layout, jobs))
}

/// `yrd results import --dry-run` of a sheet whose content is `bytes` and whose name `path`
/// gives its format, checked as of `today` with the default column names: what the import
/// reads from a file, without the file (the fuzz target `results_import`, docs/reliability.md).
pub fn dry_run(path: &Path, bytes: &[u8], today: Date) -> Result<ImportReport, ResultsError> {
    let rows = rows_of(path, bytes)?;
    let mut report = ImportReport::new(path.to_owned(), true);
    plan(&rows, &Mapping::default(), today, &mut report)?;
    Ok(report)
}

/// The request id of a result: `sheet-` and the SHA-256 (hex) of `bytes`, the canonical form
/// of the result the exchange would store (or, for a result that does not validate here, of
/// its wire encoding).
pub fn request_id(bytes: &[u8]) -> String {
    format!("sheet-{}", hex::encode(Sha256::digest(bytes)))
}

/// Today in China Standard Time: the day after which the exchange takes no date.
fn today() -> Date {
    yrd_domain::calendar::china_date(SystemClock.now())
}

/// The request id of the result a row describes, and the result checked by the exchange's
/// rules as of today (China Standard Time): `Err` holds the rejections.
fn check(
    result: &pb::SpotCheckResult,
    layout: &Layout,
    row: usize,
    today: Date,
) -> (String, Vec<Rejection>) {
    match SpotCheckResult::parse(yrd_spotcheck::convert::input_of(result), today) {
        Ok(parsed) => match parsed.canonical_digest_input() {
            Ok(bytes) => (request_id(&bytes), Vec::new()),
            Err(_) => (request_id(&result.encode_to_vec()), Vec::new()),
        },
        Err(errors) => {
            let rejections = errors
                .violations
                .iter()
                .map(|v| {
                    let field = format!("result.{}", v.field);
                    Rejection {
                        row,
                        column: layout.column_of_violation(&field),
                        reason: format!("{field}: {}", v.description),
                    }
                })
                .collect();
            (request_id(&result.encode_to_vec()), rejections)
        }
    }
}

/// The rejections of a refused publication: one per field violation, or one for the row.
fn refusal(error: &RpcError, layout: &Layout, row: usize) -> Vec<Rejection> {
    let violations = error.field_violations();
    if violations.is_empty() {
        return vec![Rejection {
            row,
            column: String::new(),
            reason: format!("{}: {}", code_name(error.code()), error.status.message()),
        }];
    }
    violations
        .into_iter()
        .map(|(field, description)| Rejection {
            row,
            column: layout.column_of_violation(&field),
            reason: format!("{field}: {description}"),
        })
        .collect()
}

/// Finds the header row and reads the layout.
fn layout_of(rows: &[SheetRow], mapping: &Mapping) -> Result<(usize, Layout), ResultsError> {
    let Some(at) = rows
        .iter()
        .take(HEADER_SEARCH_ROWS)
        .position(|r| Layout::is_header(&r.cells, mapping))
    else {
        return Err(ResultsError::Header(vec![format!(
            "none of the first {HEADER_SEARCH_ROWS} rows names the columns of a result table: \
             expected the 结果公示 headers ({}, …) or the English ones ({}, …), or a --mapping file",
            COLUMNS[..3]
                .iter()
                .map(|c| c.zh[0])
                .collect::<Vec<_>>()
                .join(", "),
            COLUMNS[..3]
                .iter()
                .map(|c| c.en)
                .collect::<Vec<_>>()
                .join(", "),
        )]));
    };
    Ok((at, Layout::from_header(&rows[at].cells, mapping)?))
}

/// Imports the sheet of `args`, printing a summary to `out`; rejected rows do not make it
/// fail (the caller decides: `yrd` exits non-zero).
pub async fn import(
    args: ImportArgs,
    out: &mut (dyn Write + Send),
) -> Result<ImportReport, ResultsError> {
    let started = Instant::now();
    let mapping = match &args.mapping {
        Some(path) => Mapping::load(path)?,
        None => Mapping::default(),
    };
    let rows = read_rows(&args.file)?;
    let mut report = ImportReport::new(args.file.clone(), args.dry_run);
    let (header_at, layout, mut jobs) = plan(&rows, &mapping, today(), &mut report)?;

    if !args.dry_run && !jobs.is_empty() {
        let target = args.connect.target(Profile::System);
        let session = Session::open(&target).await?;
        if let Some(agency) = agency_of(&target.files.cert) {
            let published = published_ids(&session, &agency, &jobs).await?;
            let before = jobs.len();
            jobs.retain(|job| !published.contains(&job.request_id));
            report.already_published = before - jobs.len();
        }
        let bar =
            progress_bar("{spinner} publishing {bar:40} {pos}/{len} rows ({per_sec}, {eta} left)");
        bar.set_length(jobs.len() as u64);
        let spot_check = session.client().spot_check();
        let mut answers = futures::stream::iter(jobs)
            .map(|job| {
                let mut client = spot_check.clone();
                async move {
                    let answer = client
                        .publish_result(pb::PublishResultRequest {
                            request_id: job.request_id,
                            result: Some(job.result),
                        })
                        .await;
                    (job.row, answer)
                }
            })
            .buffer_unordered(args.concurrency as usize);
        while let Some((row, answer)) = answers.next().await {
            bar.inc(1);
            match answer {
                Ok(_) => report.published += 1,
                Err(status) => report.rejected.extend(refusal(
                    &RpcError::new("SpotCheckService.PublishResult", status),
                    &layout,
                    row,
                )),
            }
        }
        bar.finish_and_clear();
    }

    report.rejected.sort_by_key(|r| r.row);
    let mut rows_rejected: Vec<usize> = report.rejected.iter().map(|r| r.row).collect();
    rows_rejected.dedup();
    report.rejected_rows = rows_rejected.len();
    if let Some(path) = &args.rejected {
        write_rejections(path, &report.rejected)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    if args.json {
        write_json::<ResultsError>(out, &report)?;
    } else {
        out.write_all(summary(&report, header_at, args.rejected.as_deref()).as_bytes())?;
    }
    Ok(report)
}

/// The agency the client certificate at `path` admits its holder as, when it is an exchange
/// certificate; `None` skips the look-up of published results (the request ids still keep a
/// re-run from publishing twice).
pub(crate) fn agency_of(path: &Path) -> Option<AgencyId> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let pem = std::fs::read(path).ok()?;
    let der = CertificateDer::from_pem_slice(&pem).ok()?;
    yrd_pki::agency_identity(&der)
        .ok()
        .map(|(agency, _)| agency)
}

/// The request ids (canonical forms) of the results `agency` published, in any state, sampled
/// within the sampling dates of `jobs`.
async fn published_ids(
    session: &Session,
    agency: &AgencyId,
    jobs: &[Job],
) -> Result<HashSet<String>, ResultsError> {
    let dates = jobs.iter().filter_map(|j| {
        yrd_domain::spotcheck::parse_date(&j.result.sampling_date)
            .ok()
            .map(|_| j.result.sampling_date.trim().to_owned())
    });
    let (Some(first), Some(last)) = (dates.clone().min(), dates.max()) else {
        return Ok(HashSet::new());
    };
    let request = pb::SearchResultsRequest {
        publisher_agency: format!("agencies/{}", agency.as_str()),
        sampling_date: Some(pb::DateRange {
            start_date: first,
            end_date: last,
        }),
        page_size: 500,
        ..Default::default()
    };
    let client = session.client().spot_check();
    let found = list_all(
        "SpotCheckService.SearchResults",
        request,
        |request, token| request.page_token = token,
        |request| {
            let mut client = client.clone();
            async move {
                let page = client.search_results(request).await?.into_inner();
                Ok::<_, tonic::Status>((page.results, page.next_page_token))
            }
        },
    )
    .await?;
    let today = today();
    Ok(found
        .iter()
        .filter_map(|r| {
            let parsed = SpotCheckResult::parse(yrd_spotcheck::convert::input_of(r), today).ok()?;
            Some(request_id(&parsed.canonical_digest_input().ok()?))
        })
        .collect())
}

/// Writes the rejected rows as a CSV of (row, column, reason), replacing `path`.
fn write_rejections(path: &Path, rejected: &[Rejection]) -> Result<(), ResultsError> {
    let fail = |e: csv::Error| ResultsError::Write {
        path: path.to_owned(),
        source: e.into(),
    };
    let mut writer = csv::Writer::from_path(path).map_err(fail)?;
    writer
        .write_record(["row", "column", "reason"])
        .map_err(fail)?;
    for r in rejected {
        writer
            .write_record([r.row.to_string().as_str(), &r.column, &r.reason])
            .map_err(fail)?;
    }
    writer.flush().map_err(|source| ResultsError::Write {
        path: path.to_owned(),
        source,
    })
}

/// What an import prints.
pub fn summary(report: &ImportReport, header_at: usize, rejected_file: Option<&Path>) -> String {
    let mut text = format!(
        "read {} rows from {} (header on row {})\n",
        report.rows,
        report.file.display(),
        header_at + 1
    );
    let rate = report.rows as f64 / report.seconds.max(1e-9);
    if report.dry_run {
        text.push_str(&format!(
            "dry run: {} rows would be published, {} rejected; nothing was sent ({:.1} s)\n",
            report.published, report.rejected_rows, report.seconds
        ));
    } else {
        if report.already_published > 0 {
            text.push_str(&format!(
                "{} rows were already published by this agency with the same content: not sent again\n",
                report.already_published
            ));
        }
        text.push_str(&format!(
            "published {} results (new, or already published with the same content by an earlier import), {} rows rejected, in {:.1} s ({rate:.0} rows/s)\n",
            report.published, report.rejected_rows, report.seconds
        ));
    }
    for (row, first) in &report.duplicates {
        text.push_str(&format!("row {row} repeats row {first}: published once\n"));
    }
    for r in report.rejected.iter().take(PRINTED_REJECTIONS) {
        let column = if r.column.is_empty() {
            String::new()
        } else {
            format!(", {}", r.column)
        };
        text.push_str(&format!("  row {}{column}: {}\n", r.row, r.reason));
    }
    if report.rejected.len() > PRINTED_REJECTIONS {
        text.push_str(&format!(
            "  … and {} more\n",
            report.rejected.len() - PRINTED_REJECTIONS
        ));
    }
    if let Some(path) = rejected_file {
        text.push_str(&format!("rejected rows: {}\n", path.display()));
    }
    text
}
