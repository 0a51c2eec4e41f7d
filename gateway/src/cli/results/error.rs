//! Why a `yrd results` command failed.

use std::path::PathBuf;

use yrd_client::RpcError;

use crate::session::SessionError;

/// Why a `yrd results` command failed (a rejected row is not a failure of the command: it is
/// reported, and the import goes on).
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The output file exists; exports never replace a file.
    #[error("{0} exists; exports never replace a file")]
    Exists(PathBuf),
    /// The sheet is not a readable spreadsheet of the kind its name says.
    #[error("cannot read the sheet {path}: {reason}")]
    Sheet {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file's extension names no format the command knows.
    #[error("{0}: expected a .xlsx or .csv file (.xls, .xlsm and .ods also import)")]
    Format(PathBuf),
    /// No header row was found, or the header row has unknown, doubled or missing columns.
    #[error("the header row: {}", .0.join("; "))]
    Header(Vec<String>),
    /// A `--mapping` file is not valid.
    #[error("the mapping file {path}: {reason}")]
    Mapping {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The xlsx file could not be made.
    #[error("cannot write the workbook {path}: {reason}")]
    Workbook {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No session could be opened.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A call the command needs was refused.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// Some rows were rejected (they are listed in the report).
    #[error("{rejected} of {rows} rows rejected{}", .report.as_ref().map(|p| format!("; see {}", p.display())).unwrap_or_default())]
    Rejected {
        /// Rows rejected.
        rejected: usize,
        /// Rows read.
        rows: usize,
        /// The `--rejected` report, when one was asked for.
        report: Option<PathBuf>,
    },
    /// Printing failed.
    #[error("cannot print: {0}")]
    Print(#[from] std::io::Error),
    /// Printing JSON failed.
    #[error("cannot print JSON: {0}")]
    Json(#[from] serde_json::Error),
}
