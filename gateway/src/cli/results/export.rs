//! `yrd results export`: every result a `SearchResults` finds (all pages, latest versions) as
//! a `.xlsx` or `.csv` table in the 结果公示 layout of `yrd results import`, so an export reads
//! back in: into the same exchange it publishes nothing new (each row's request id is that of
//! the published content), into a fresh one it publishes the same results.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;
use yrd_client::list_all;
use yrd_domain::Profile;

use crate::cli::output::{progress_bar, write_json};
use crate::cli::results::cells::cells_of;
use crate::cli::results::columns::export_headers;
use crate::cli::results::command::ExportArgs;
use crate::cli::results::error::ResultsError;
use crate::cli::results::sheet::{SheetFormat, check_extension, write_rows};
use crate::cli::session::Session;

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    /// The file written.
    pub file: PathBuf,
    /// Results written (one row each).
    pub results: usize,
}

/// Exports the results `args` selects to `args.out`, printing a summary to `out`.
pub async fn export(
    args: ExportArgs,
    out: &mut (dyn Write + Send),
) -> Result<ExportSummary, ResultsError> {
    let format = match args.format {
        Some(format) => format,
        None => SheetFormat::of_path(&args.out)?,
    };
    let path = check_extension(&args.out, format)?;
    if path.exists() {
        return Err(ResultsError::Exists(path));
    }
    let session = Session::open(&args.connect.target(Profile::System)).await?;
    let bar = progress_bar("{spinner} searching: {pos} results ({per_sec})");
    let client = session.client().spot_check();
    let results = list_all(
        "SpotCheckService.SearchResults",
        args.search(),
        |request, token| request.page_token = token,
        |request| {
            let mut client = client.clone();
            let bar = bar.clone();
            async move {
                let page = client.search_results(request).await?.into_inner();
                bar.inc(page.results.len() as u64);
                Ok::<_, tonic::Status>((page.results, page.next_page_token))
            }
        },
    )
    .await?;
    bar.finish_and_clear();
    let rows: Vec<Vec<String>> = results.iter().map(cells_of).collect();
    write_rows(&path, format, &export_headers(args.english), &rows)?;
    let summary = ExportSummary {
        file: path,
        results: rows.len(),
    };
    if args.json {
        write_json::<ResultsError>(out, &summary)?;
    } else {
        writeln!(
            out,
            "exported {} results to {}",
            summary.results,
            summary.file.display()
        )?;
    }
    Ok(summary)
}
