//! Spreadsheet files as rows of text: `.xlsx` (and `.xls`, `.xlsm`, `.ods`) read with
//! `calamine`, `.csv` with `csv`; `.xlsx` written with `rust_xlsxwriter`, `.csv` with `csv`.
//!
//! Every cell is text here. A number cell reads as its decimal digits (`330106`, not
//! `330106.0`), a date cell as `YYYY-MM-DD`; export writes every cell as text, so region codes
//! and report numbers keep their leading zeros in Excel.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use calamine::{Data, Reader as _};
use time::{Date, Duration, Month};

use crate::cli::results::error::ResultsError;

/// A file format of `yrd results`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SheetFormat {
    /// Excel workbook (first worksheet).
    Xlsx,
    /// Comma-separated values, UTF-8.
    Csv,
}

impl SheetFormat {
    /// The format a file name's extension names (`.xls`, `.xlsm`, `.ods` read as workbooks).
    pub fn of_path(path: &Path) -> Result<SheetFormat, ResultsError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("xlsx" | "xlsm" | "xls" | "ods") => Ok(SheetFormat::Xlsx),
            Some("csv") => Ok(SheetFormat::Csv),
            _ => Err(ResultsError::Format(path.to_owned())),
        }
    }
}

/// One row of a sheet: its number as the spreadsheet shows it (1 for the first) and its cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetRow {
    /// Row number, 1-based, as a spreadsheet program shows it.
    pub number: usize,
    /// The cells, as text.
    pub cells: Vec<String>,
}

/// Reads every row of `path` (the first worksheet of a workbook).
pub fn read_rows(path: &Path) -> Result<Vec<SheetRow>, ResultsError> {
    SheetFormat::of_path(path)?;
    let bytes = std::fs::read(path).map_err(|source| ResultsError::Read {
        path: path.to_owned(),
        source,
    })?;
    rows_of(path, &bytes)
}

/// Reads every row of `bytes`, the content of the file at `path`, whose extension names its
/// format (named in errors).
pub fn rows_of(path: &Path, bytes: &[u8]) -> Result<Vec<SheetRow>, ResultsError> {
    match SheetFormat::of_path(path)? {
        SheetFormat::Csv => read_csv(path, bytes),
        SheetFormat::Xlsx => read_workbook(path, bytes),
    }
}

fn sheet_error(path: &Path, reason: impl ToString) -> ResultsError {
    ResultsError::Sheet {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn read_csv(path: &Path, bytes: &[u8]) -> Result<Vec<SheetRow>, ResultsError> {
    // Excel's "CSV UTF-8" starts with a byte-order mark.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| match e.kind() {
            csv::ErrorKind::Utf8 { .. } => sheet_error(
                path,
                format!(
                    "row {} is not UTF-8; save the sheet as \"CSV UTF-8\" (GBK is not read)",
                    i + 1
                ),
            ),
            _ => sheet_error(path, e),
        })?;
        // A record is a row as a spreadsheet program shows the file, whatever line breaks its
        // cells hold.
        rows.push(SheetRow {
            number: i + 1,
            cells: record.iter().map(str::to_owned).collect(),
        });
    }
    Ok(rows)
}

fn read_workbook(path: &Path, bytes: &[u8]) -> Result<Vec<SheetRow>, ResultsError> {
    let mut workbook = workbook_of(path, bytes).map_err(|e| sheet_error(path, e))?;
    // calamine 0.35 panics on some malformed sheets (an arithmetic overflow on a huge cell
    // reference, found by the fuzz target `results_import`): a broken file is refused, named.
    let range = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        workbook.worksheet_range_at(0)
    }))
    .map_err(|_| {
        sheet_error(
            path,
            "the first worksheet is malformed (unreadable cell data)",
        )
    })?
    .ok_or_else(|| sheet_error(path, "the workbook has no worksheet"))?
    .map_err(|e| sheet_error(path, e))?;
    let (first_row, first_column) = range.start().unwrap_or((0, 0));
    let lead = vec![String::new(); first_column as usize];
    Ok(range
        .rows()
        .enumerate()
        .map(|(i, row)| SheetRow {
            number: first_row as usize + i + 1,
            cells: lead
                .iter()
                .cloned()
                .chain(row.iter().map(cell_text))
                .collect(),
        })
        .collect())
}

/// The workbook in `bytes`, read as the extension of `path` names it (as
/// `calamine::open_workbook_auto` reads a file).
fn workbook_of<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<calamine::Sheets<Cursor<&'a [u8]>>, calamine::Error> {
    let data = Cursor::new(bytes);
    let ext = path.extension().and_then(|e| e.to_str());
    Ok(match ext.map(str::to_ascii_lowercase).as_deref() {
        Some("xls") => calamine::Sheets::Xls(calamine::open_workbook_from_rs(data)?),
        Some("ods") => calamine::Sheets::Ods(calamine::open_workbook_from_rs(data)?),
        _ => calamine::Sheets::Xlsx(calamine::open_workbook_from_rs(data)?),
    })
}

/// The text of a workbook cell.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(n) => n.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) if d.is_datetime() => {
            excel_date(d.as_f64()).map_or_else(|| d.as_f64().to_string(), |d| d.to_string())
        }
        Data::DateTime(d) => d.as_f64().to_string(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// The day of an Excel date serial (1900 system: day 1 is 1900-01-01, with Excel's phantom
/// 1900-02-29, so serials from 61 on count from 1899-12-30).
fn excel_date(serial: f64) -> Option<Date> {
    let epoch = Date::from_calendar_date(1899, Month::December, 30).ok()?;
    let days = serial.floor() as i64;
    let days = if days < 61 { days + 1 } else { days };
    epoch.checked_add(Duration::days(days))
}

/// Opens `path` for writing; it must not exist yet.
fn create_new(path: &Path) -> Result<std::fs::File, ResultsError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ResultsError::Exists(path.to_owned())
            } else {
                ResultsError::Write {
                    path: path.to_owned(),
                    source: e,
                }
            }
        })
}

/// Writes a CSV (UTF-8 with a byte-order mark, so Excel shows Chinese text) of a header row and
/// `rows` to `path`, which must not exist yet.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<(), ResultsError> {
    let write_error = |source: std::io::Error| ResultsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = create_new(path)?;
    file.write_all(b"\xEF\xBB\xBF").map_err(write_error)?;
    let mut writer = csv::Writer::from_writer(file);
    let csv_error = |e: csv::Error| ResultsError::Write {
        path: path.to_owned(),
        source: e.into(),
    };
    writer.write_record(header).map_err(csv_error)?;
    for row in rows {
        writer.write_record(row).map_err(csv_error)?;
    }
    writer.flush().map_err(write_error)
}

/// Writes an `.xlsx` workbook of one worksheet `sheet_name`: a bold, frozen header row and
/// `rows`, every cell as text (line breaks wrap), to `path`, which must not exist yet.
pub fn write_xlsx(
    path: &Path,
    sheet_name: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<(), ResultsError> {
    use rust_xlsxwriter::{Format, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| ResultsError::Workbook {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    // Claim the name first, so an existing file is never replaced.
    drop(create_new(path)?);
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(sheet_name).map_err(fail)?;
    let bold = Format::new().set_bold();
    let wrap = Format::new().set_text_wrap();
    for (c, title) in header.iter().enumerate() {
        let c = u16::try_from(c).unwrap_or(u16::MAX);
        sheet
            .write_string_with_format(0, c, *title, &bold)
            .map_err(fail)?;
        sheet.set_column_width(c, 16).map_err(fail)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(fail)?;
    for (r, row) in rows.iter().enumerate() {
        let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
        for (c, value) in row.iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            if value.contains('\n') {
                sheet
                    .write_string_with_format(r, c, value, &wrap)
                    .map_err(fail)?;
            } else {
                sheet.write_string(r, c, value).map_err(fail)?;
            }
        }
    }
    workbook.save(path).map_err(|e| {
        // Leave no half-made file behind under the name.
        let _ = std::fs::remove_file(path);
        fail(e)
    })
}

/// Writes `header` and `rows` to `path` in `format`.
pub fn write_rows(
    path: &Path,
    format: SheetFormat,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<(), ResultsError> {
    match format {
        SheetFormat::Csv => write_csv(path, header, rows),
        SheetFormat::Xlsx => write_xlsx(path, "结果公示", header, rows),
    }
}

/// `path`, or the reason it cannot hold `format`.
pub fn check_extension(path: &Path, format: SheetFormat) -> Result<PathBuf, ResultsError> {
    match (SheetFormat::of_path(path), format) {
        (Ok(SheetFormat::Csv), SheetFormat::Csv) => Ok(path.to_owned()),
        (Ok(SheetFormat::Xlsx), SheetFormat::Xlsx)
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("xlsx")) =>
        {
            Ok(path.to_owned())
        }
        _ => Err(ResultsError::Format(path.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_serials_are_days() {
        assert_eq!(
            excel_date(45413.0).map(|d| d.to_string()).as_deref(),
            Some("2024-05-01")
        );
        assert_eq!(
            excel_date(1.0).map(|d| d.to_string()).as_deref(),
            Some("1900-01-01")
        );
        assert_eq!(cell_text(&Data::Float(330106.0)), "330106");
        assert_eq!(cell_text(&Data::Float(0.35)), "0.35");
    }

    #[test]
    fn both_formats_write_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let header = ["产品名称", "检验项目"];
        let rows = vec![
            vec![
                "滑板车".to_owned(),
                "a|b|c||合格\nd|e|f|%|不合格|是".to_owned(),
            ],
            vec![String::new(), "x,\"y\"".to_owned()],
        ];
        for name in ["t.csv", "t.xlsx"] {
            let path = dir.path().join(name);
            write_rows(
                &path,
                SheetFormat::of_path(&path).expect("format"),
                &header,
                &rows,
            )
            .expect("written");
            let read = read_rows(&path).expect("read");
            assert_eq!(read[0].cells, header, "{name}");
            assert_eq!(read[1].cells, rows[0], "{name}");
            assert_eq!(read[2].number, 3, "{name}");
            assert_eq!(read[2].cells.get(1), Some(&rows[1][1]), "{name}");
            assert!(matches!(
                write_rows(&path, SheetFormat::Csv, &header, &rows),
                Err(ResultsError::Exists(_))
            ));
        }
        assert!(matches!(
            SheetFormat::of_path(Path::new("x.txt")),
            Err(ResultsError::Format(_))
        ));
    }
}
