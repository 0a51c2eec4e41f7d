//! The auditor's upload form: an exported JSON Lines file (`yrd audit export`, or the
//! console's export button) verified entry by entry against a signed tree head checked here —
//! `yrd audit verify --file`'s code, with each entry shown passing or failing.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::response::Response;
use axum::routing::get;

use crate::cli::audit::check::ExportFile;
use crate::cli::audit::entry::LineProblem;
use crate::cli::audit::error::AuditCliError;
use crate::cli::audit::session::Auditor;
use crate::cli::audit::verdict::VerifyFailure;
use crate::cli::audit::verify::verify_file_online;
use crate::cli::console::Console;
use crate::cli::console::page::{Cell, Check, Ctx, Failure, Table, render};

/// The largest export the form takes.
const MAX_UPLOAD: usize = 512 * 1024 * 1024;

/// The upload routes.
pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/audit/verify", get(form).post(verify))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
}

#[derive(Template)]
#[template(path = "console/upload.html")]
struct UploadPage {
    ctx: Ctx,
    checks: Vec<Check>,
    table: Option<Table>,
}

/// `GET /audit/verify`: the form.
async fn form(ctx: Ctx) -> Response {
    render(&UploadPage {
        ctx,
        checks: Vec::new(),
        table: None,
    })
}

/// `POST /audit/verify`: the file checked, each entry passing or failing.
async fn verify(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    mut multipart: Multipart,
) -> Result<Response, Failure> {
    let bad = |e: axum::extract::multipart::MultipartError| Failure::bad_input(e.body_text());
    let (mut csrf, mut file) = (String::new(), None);
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(bad)?,
            Some("file") => {
                let name = field.file_name().unwrap_or("upload.jsonl").to_owned();
                file = Some((name, field.bytes().await.map_err(bad)?));
            }
            _ => {}
        }
    }
    if !console.secrets.csrf_ok(&csrf) {
        return Err(Failure::csrf());
    }
    let Some((name, bytes)) = file else {
        return Err(Failure::bad_input("file: no file was uploaded".to_owned()));
    };
    let file = ExportFile::from_reader(std::path::Path::new(&name), bytes.as_ref())
        .map_err(|e| Failure::bad_input(format!("{e}")))?;
    if file.entries.is_empty() {
        return Err(Failure::bad_input(format!(
            "{name}: the file holds no entries"
        )));
    }
    let mut auditor = Auditor::open(&console.connect)
        .await
        .map_err(Failure::exchange)?;
    let (summary, first_bad) = check_file(&mut auditor, &file).await?;
    let covered = summary.1;
    let mut checks = vec![Check {
        what: ctx.t("file"),
        ok: summary.0.is_none(),
        detail: summary
            .0
            .unwrap_or_else(|| format!("{name}: {}", ctx.t("verified"))),
    }];
    checks.push(Check {
        what: ctx.t("tree_head"),
        ok: true,
        detail: format!("{} — {}", ctx.t("verified"), summary.2),
    });
    let mut table = Table::new(&ctx, &["index", "line", "check"]);
    for (position, (entry, line)) in file.entries.iter().zip(&file.line_numbers).enumerate() {
        let position = u64::try_from(position).unwrap_or(u64::MAX);
        let own: Result<(), LineProblem> = if entry.index == position {
            entry.check()
        } else {
            Err(LineProblem::IndexOutOfSequence {
                expected: position,
                found: entry.index,
            })
        };
        let (class, verdict) = if position >= covered {
            ("", ctx.t("not_checked").to_owned())
        } else if let Err(problem) = own {
            ("failing", format!("{}: {problem}", ctx.t("failing")))
        } else if first_bad.is_some_and(|b| position >= b) {
            (
                "failing",
                format!(
                    "{}: not proven in the log (the first bad index is {})",
                    ctx.t("failing"),
                    first_bad.unwrap_or_default()
                ),
            )
        } else {
            ("passing", ctx.t("passing").to_owned())
        };
        table.push(
            class,
            vec![
                Cell::text(entry.index.to_string()),
                Cell::text(line.to_string()),
                Cell::text(verdict),
            ],
        );
    }
    Ok(render(&UploadPage {
        ctx,
        checks,
        table: Some(table),
    }))
}

/// Checks the file against the signed tree head of its size (or the latest, when the file is
/// longer): answers (the failure, if any; the size covered; the head described) and the first
/// bad index the Merkle search found.
async fn check_file(
    auditor: &mut Auditor,
    file: &ExportFile,
) -> Result<((Option<String>, u64, String), Option<u64>), Failure> {
    let keys = auditor.log_keys().await.map_err(Failure::exchange)?;
    let latest = auditor
        .verified_latest(&keys)
        .await
        .map_err(Failure::exchange)?;
    let size = u64::try_from(file.entries.len())
        .unwrap_or(u64::MAX)
        .min(latest.tree_size);
    let head = if size == latest.tree_size {
        latest
    } else {
        let sth = auditor
            .tree_head(Some(size))
            .await
            .map_err(Failure::exchange)?;
        keys.verify_tree_head(&sth).map_err(Failure::exchange)?
    };
    let described = head.describe();
    match verify_file_online(auditor, file, &head).await {
        Ok(_) => Ok(((None, size, described), None)),
        Err(AuditCliError::Verify(failure)) => {
            let first_bad = match &*failure {
                VerifyFailure::FirstBadIndex { index, .. } => Some(*index),
                VerifyFailure::BadLine { .. } => None,
                _ => Some(0),
            };
            Ok(((Some(failure.to_string()), size, described), first_bad))
        }
        Err(other) => Err(Failure::exchange(other)),
    }
}
