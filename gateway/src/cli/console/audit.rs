//! The auditor's pages: the exchange log with filters and paging, one entry verified here
//! (its tree head's signature, its inclusion proof, the consistency with the last head this
//! console verified), a trace's whole timeline, and the export.
//!
//! Every check is `yrd audit`'s own code ([`crate::cli::audit`]); nothing is re-implemented.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use time::OffsetDateTime;
use yrd_call::timestamp;
use yrd_client::RpcError;
use yrd_domain::AgencyId;
use yrd_proto::v1::ListAuditEntriesRequest;

use crate::cli::audit::command::{
    ExportFormat, parse_agency, parse_code, parse_method, parse_time, parse_trace_id,
};
use crate::cli::audit::entry::EntryView;
use crate::cli::audit::error::AuditCliError;
use crate::cli::audit::read::{ExportRange, all_entries, verified_entry, write_export};
use crate::cli::audit::session::Auditor;
use crate::cli::audit::verify::prove_consistency_from_saved;
use crate::cli::console::Console;
use crate::cli::console::page::{
    Cell, Check, Ctx, DetailPage, Failure, ListPage, Table, cst, render,
};

/// The auditor's routes.
pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/audit", get(log))
        .route("/audit/entries/{index}", get(entry))
        .route("/audit/traces/{trace_id}", get(trace))
        .route("/audit/export", post(export))
}

/// Entries per page of the log.
const PAGE_SIZE: i32 = 50;

#[derive(Template)]
#[template(path = "console/log.html")]
struct LogPage {
    ctx: Ctx,
    filters: Vec<(&'static str, &'static str, String)>,
    problem: Option<String>,
    table: Table,
    next: Option<String>,
}

/// The log's filter fields: (query name, label key).
const FILTERS: &[(&str, &str)] = &[
    ("since", "since"),
    ("until", "until"),
    ("agency", "agency"),
    ("method", "method"),
    ("outcome", "outcome"),
    ("resource", "resource"),
    ("trace", "trace"),
];

/// The request the filters ask for, or the first filter that does not parse, named.
fn log_request(q: &HashMap<String, String>) -> Result<ListAuditEntriesRequest, String> {
    let get = |name: &str| q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let named = |name: &str, e: String| format!("{name}: {e}");
    let time = |name: &str| -> Result<Option<OffsetDateTime>, String> {
        get(name)
            .map(|v| parse_time(v).map_err(|e| named(name, e)))
            .transpose()
    };
    Ok(ListAuditEntriesRequest {
        start_time: time("since")?.map(timestamp),
        end_time: time("until")?.map(timestamp),
        caller_agency: get("agency")
            .map(|v| parse_agency(v).map_err(|e| named("agency", e)))
            .transpose()?
            .as_ref()
            .map(AgencyId::resource_name)
            .unwrap_or_default(),
        method: get("method")
            .map(|v| parse_method(v).map_err(|e| named("method", e)))
            .transpose()?
            .unwrap_or_default(),
        outcome_code: get("outcome")
            .map(|v| parse_code(v).map_err(|e| named("outcome", e)))
            .transpose()?,
        resource_name: get("resource").unwrap_or_default().to_owned(),
        trace_id: get("trace")
            .map(|v| parse_trace_id(v).map_err(|e| named("trace", e)))
            .transpose()?
            .unwrap_or_default(),
        officer: String::new(),
        page_size: PAGE_SIZE,
        page_token: get("page").unwrap_or_default().to_owned(),
    })
}

/// The table of log entries, each linking to its verified page and its trace.
pub(crate) fn entry_table(ctx: &Ctx, entries: &[EntryView]) -> Table {
    let mut table = Table::new(
        ctx,
        &[
            "index", "time", "agency", "method", "outcome", "resource", "trace",
        ],
    );
    for e in entries {
        let f = &e.fields;
        let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(f.time_us) * 1_000)
            .map_or_else(|_| e.time.clone(), cst);
        let class = if f.code == 0 { "" } else { "failing" };
        table.push(
            class,
            vec![
                Cell::link(e.index.to_string(), format!("/audit/entries/{}", e.index)),
                Cell::text(time),
                Cell::text(format!("{} {}", f.agency, f.profile)),
                Cell::text(e.short_method()),
                Cell::text(e.outcome()),
                Cell::text(f.resources.join(" ")),
                Cell::link(f.trace_id.clone(), format!("/audit/traces/{}", f.trace_id)),
            ],
        );
    }
    table
}

async fn auditor(console: &Console) -> Result<Auditor, Failure> {
    Auditor::open(&console.connect)
        .await
        .map_err(Failure::exchange)
}

/// `GET /audit`: one page of the log, filtered.
async fn log(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let filters = FILTERS
        .iter()
        .map(|(name, key)| (*name, ctx.t(key), q.get(*name).cloned().unwrap_or_default()))
        .collect();
    let request = match log_request(&q) {
        Ok(request) => request,
        Err(problem) => {
            let page = LogPage {
                table: Table::new(&ctx, &[]),
                ctx,
                filters,
                problem: Some(problem),
                next: None,
            };
            return Ok(render(&page));
        }
    };
    let mut auditor = auditor(&console).await?;
    let page = auditor
        .audit
        .list_audit_entries(request)
        .await
        .map_err(|s| Failure::exchange(RpcError::new("AuditService.ListAuditEntries", s)))?
        .into_inner();
    let views: Vec<EntryView> = page.entries.iter().map(EntryView::from_pb).collect();
    let next = next_page("/audit", &q, &page.next_page_token);
    let page = LogPage {
        table: entry_table(&ctx, &views),
        ctx,
        filters,
        problem: None,
        next,
    };
    Ok(render(&page))
}

/// The link to the page after this one of the listing at `path`, filtered by `q`: `None` when
/// `token` (the answer's `next_page_token`) is empty, the last page.
pub(crate) fn next_page(path: &str, q: &HashMap<String, String>, token: &str) -> Option<String> {
    (!token.is_empty()).then(|| {
        let mut q = q.clone();
        q.insert("page".to_owned(), token.to_owned());
        let mut query: Vec<String> = q
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect();
        query.sort();
        format!("{path}?{}", query.join("&"))
    })
}

/// Percent-encodes a query value (everything but unreserved characters).
fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /audit/entries/{index}`: the entry, its decoded fields, and what was verified here.
async fn entry(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(index): Path<u64>,
) -> Result<Response, Failure> {
    let mut auditor = auditor(&console).await?;
    let keys = auditor.log_keys().await.map_err(Failure::exchange)?;
    let mut checks = Vec::new();
    let (entry, head, proof) = match verified_entry(&mut auditor, &keys, index).await {
        Ok(found) => found,
        Err(AuditCliError::Verify(failure)) => {
            checks.push(Check {
                what: ctx.t("inclusion"),
                ok: false,
                detail: failure.to_string(),
            });
            return Ok(render(&DetailPage {
                title: format!("{} {index}", ctx.t("entry")),
                ctx,
                checks,
                fields: Vec::new(),
                tables: Vec::new(),
                timeline: Vec::new(),
            }));
        }
        Err(other) => return Err(Failure::exchange(other)),
    };
    checks.push(Check {
        what: ctx.t("tree_head"),
        ok: true,
        detail: format!("{} — {}", ctx.t("verified"), head.describe()),
    });
    checks.push(Check {
        what: ctx.t("inclusion"),
        ok: true,
        detail: format!(
            "{} — {} hashes, leaf {} re-hashed here",
            ctx.t("verified"),
            proof.len(),
            entry.computed_hash()
        ),
    });
    checks.push(consistency(&console, &mut auditor, &ctx, &head).await);
    let f = &entry.fields;
    let fields = vec![
        ("index", Cell::text(entry.index.to_string())),
        ("time", Cell::text(cst_of(&entry))),
        (
            "agency",
            Cell::text(format!("{} ({})", f.agency, f.profile)),
        ),
        ("method", Cell::text(f.method.clone())),
        (
            "outcome",
            Cell::text(if f.message.is_empty() {
                entry.outcome().to_owned()
            } else {
                format!("{}: {}", entry.outcome(), f.message)
            }),
        ),
        ("resource", Cell::text(f.resources.join(" "))),
        (
            "trace",
            Cell::link(f.trace_id.clone(), format!("/audit/traces/{}", f.trace_id)),
        ),
        ("fields", Cell::text(entry.leaf_input.clone())),
    ];
    let fields = fields
        .into_iter()
        .map(|(key, cell)| (ctx.t(key), cell))
        .collect();
    Ok(render(&DetailPage {
        title: format!("{} {index}", ctx.t("entry")),
        ctx,
        checks,
        fields,
        tables: Vec::new(),
        timeline: Vec::new(),
    }))
}

fn cst_of(entry: &EntryView) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(entry.fields.time_us) * 1_000)
        .map_or_else(|_| entry.time.clone(), cst)
}

/// The consistency of `head` with the last head this console verified (`yrd audit verify
/// --state`'s check, with the state kept in memory for the session); `head` becomes the last
/// one when it extends it.
async fn consistency(
    console: &Console,
    auditor: &mut Auditor,
    ctx: &Ctx,
    head: &crate::cli::audit::verdict::VerifiedHead,
) -> Check {
    let last = console
        .last_head
        .lock()
        .map(|g| g.clone())
        .unwrap_or_default();
    let Some(last) = last else {
        if let Ok(mut slot) = console.last_head.lock() {
            *slot = Some(head.clone());
        }
        return Check {
            what: ctx.t("consistency"),
            ok: true,
            detail: format!(
                "{}: first tree head of this session (size {}), trusted from now on",
                ctx.t("not_checked"),
                head.tree_size
            ),
        };
    };
    let mut said = Vec::new();
    match prove_consistency_from_saved(auditor, &last, head, &mut said).await {
        Ok(()) => {
            if let Ok(mut slot) = console.last_head.lock() {
                *slot = Some(head.clone());
            }
            Check {
                what: ctx.t("consistency"),
                ok: true,
                detail: format!(
                    "{} — {}",
                    ctx.t("verified"),
                    String::from_utf8_lossy(&said).trim()
                ),
            }
        }
        Err(e) => Check {
            what: ctx.t("consistency"),
            ok: false,
            detail: e.to_string(),
        },
    }
}

/// `GET /audit/traces/{trace_id}`: every entry of one trace.
async fn trace(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(trace_id): Path<String>,
) -> Result<Response, Failure> {
    let trace_id = parse_trace_id(&trace_id).map_err(Failure::bad_input)?;
    let auditor = auditor(&console).await?;
    let request = ListAuditEntriesRequest {
        trace_id: trace_id.clone(),
        page_size: 1000,
        ..Default::default()
    };
    let views = all_entries(&auditor, request)
        .await
        .map_err(Failure::exchange)?;
    let table = entry_table(&ctx, &views);
    Ok(render(&ListPage {
        title: ctx.t("trace_timeline"),
        notes: vec![format!("{}: {trace_id}", ctx.t("trace"))],
        search: Vec::new(),
        ctx,
        table,
    }))
}

/// The export form.
#[derive(serde::Deserialize)]
struct ExportForm {
    csrf: String,
    format: String,
}

/// `POST /audit/export`: the whole log up to the latest signed tree head, as
/// `yrd audit export --from-index 0` writes it, as a download.
async fn export(
    State(console): State<Arc<Console>>,
    Form(form): Form<ExportForm>,
) -> Result<Response, Failure> {
    if !console.secrets.csrf_ok(&form.csrf) {
        return Err(Failure::csrf());
    }
    let (format, extension, media) = match form.format.as_str() {
        "jsonl" => (ExportFormat::Jsonl, "jsonl", "application/jsonl"),
        "csv" => (ExportFormat::Csv, "csv", "text/csv"),
        other => {
            return Err(Failure::bad_input(format!(
                "format: expected jsonl or csv, got {other:?}"
            )));
        }
    };
    let mut auditor = auditor(&console).await?;
    let range = ExportRange::pin(&mut auditor, Some(0), None, None)
        .await
        .map_err(Failure::exchange)?;
    let mut body = Vec::new();
    write_export(
        &mut auditor,
        &range,
        format,
        &mut body,
        &AuditCliError::Output,
    )
    .await
    .map_err(Failure::exchange)?;
    let name = format!(
        "attachment; filename=\"yrd-audit-0-{}.{extension}\"",
        range.end
    );
    Ok((
        [
            (header::CONTENT_TYPE, media.to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_read_as_the_command_line_reads_them() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>()
        };
        let r = log_request(&q(&[
            ("agency", "370000-AMR"),
            ("outcome", "PERMISSION_DENIED"),
            ("method", "AdminService/IssueCertificate"),
            ("since", ""),
        ]))
        .expect("valid");
        assert_eq!(r.caller_agency, "agencies/370000-AMR");
        assert_eq!(r.outcome_code, Some(7));
        assert_eq!(r.method, "/yrd.exchange.v1.AdminService/IssueCertificate");
        assert_eq!(r.start_time, None);
        let bad = log_request(&q(&[("since", "yesterday")])).expect_err("bad time");
        assert!(bad.starts_with("since: "), "{bad}");
        assert!(log_request(&q(&[("trace", "abc")])).is_err());
        assert_eq!(percent("a b/ü"), "a%20b%2F%C3%BC");
    }
}
