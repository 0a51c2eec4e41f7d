//! `yrd results …`: spot-check results (监督抽查结果) in and out of spreadsheets, for the
//! partner systems and officers that keep them in 结果公示 tables. The layout and the cell
//! formats are documented for partners in `docs/partner-guide-results.md`.
//!
//! # Layout
//!
//! [`command`] (what is typed) and [`error`] (why it failed) at the top; [`import`] and
//! [`export`] run the commands; [`columns`] (headers ↔ fields), [`cells`] (a row ↔ a result)
//! and [`sheet`] (files ↔ rows of text) work without a server, so they are tested without one.

use std::io::Write;

pub mod cells;
pub mod columns;
pub mod command;
pub mod error;
pub mod export;
pub mod import;
pub mod sheet;

pub use command::{ExportArgs, ImportArgs, ResultsCommand};
pub use error::ResultsError;

/// Runs one `yrd results` subcommand, writing its summary to `out`. An import with rejected
/// rows fails with [`ResultsError::Rejected`] after publishing the others and writing its report.
pub async fn run(
    command: ResultsCommand,
    out: &mut (dyn Write + Send),
) -> Result<(), ResultsError> {
    match command {
        ResultsCommand::Import(args) => {
            let report_file = args.rejected.clone();
            let report = import::import(args, out).await?;
            if report.rejected_rows > 0 {
                return Err(ResultsError::Rejected {
                    rejected: report.rejected_rows,
                    rows: report.rows,
                    report: report_file,
                });
            }
            Ok(())
        }
        ResultsCommand::Export(args) => export::export(args, out).await.map(drop),
    }
}
