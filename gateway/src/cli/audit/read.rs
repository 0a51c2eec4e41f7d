//! The reading commands of `yrd audit`: `query`, `show`, `tail` and `export`.
//!
//! They print what the server returns, in the one entry format of [`crate::cli::audit::entry`];
//! `show` also proves the entry against the latest signed tree head, since an auditor looking
//! at one entry should not have to trust it. `export` pins its end to a published tree head
//! before it starts, so that its file can be verified whole however long it ran.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use indicatif::ProgressBar;
use tonic::Code;
use yrd_call::timestamp;
use yrd_domain::AgencyId;
use yrd_domain::merkle::{Hash, verify_inclusion};
use yrd_proto::v1::{
    self as pb, ExportAuditEntriesRequest, GetAuditEntryRequest, ListAuditEntriesRequest,
};

use crate::cli::audit::command::{ExportArgs, ExportFormat, QueryArgs, ShowArgs, TailArgs};
use crate::cli::audit::entry::{CSV_HEADER, EntryView, csv_record, write_table};
use crate::cli::audit::error::AuditCliError;
use crate::cli::audit::session::{Auditor, hashes, missing};
use crate::cli::audit::verdict::{VerifiedHead, VerifyFailure};
use crate::cli::output::write_json;
use yrd_client::{RpcError, list_all};

pub(crate) async fn query(
    args: QueryArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    let auditor = Auditor::open(&args.connect).await?;
    let request = ListAuditEntriesRequest {
        start_time: args.since.map(timestamp),
        end_time: args.until.map(timestamp),
        caller_agency: args
            .agency
            .as_ref()
            .map(AgencyId::resource_name)
            .unwrap_or_default(),
        method: args.method.unwrap_or_default(),
        outcome_code: args.code,
        resource_name: args.resource.unwrap_or_default(),
        trace_id: args.trace_id.unwrap_or_default(),
        officer: args.acted_by.unwrap_or_default(),
        page_size: i32::try_from(args.page_size).unwrap_or(1000),
        page_token: String::new(),
    };
    let views = list_all(
        "AuditService.ListAuditEntries",
        request,
        |r, token| r.page_token = token,
        |r| {
            let mut audit = auditor.audit.clone();
            async move {
                let page = audit.list_audit_entries(r).await?.into_inner();
                let views = page.entries.iter().map(EntryView::from_pb);
                Ok((views.collect(), page.next_page_token))
            }
        },
    )
    .await?;
    if args.json {
        return write_json(out, &views);
    }
    write_table(&views, out)?;
    Ok(())
}

/// What `yrd audit show --json` prints.
#[derive(Debug, serde::Serialize)]
struct ShownEntry<'a> {
    entry: &'a EntryView,
    tree_head: &'a VerifiedHead,
    inclusion_proof: Vec<String>,
    verified: bool,
}

pub(crate) async fn show(
    args: ShowArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    const METHOD: &str = "AuditService.GetAuditEntry";
    let mut auditor = Auditor::open(&args.connect).await?;
    let keys = auditor.log_keys().await?;
    let response = auditor
        .audit
        .get_audit_entry(GetAuditEntryRequest {
            index: args.index,
            include_proof: true,
            tree_size: None,
        })
        .await
        .map_err(|s| RpcError::new(METHOD, s))?
        .into_inner();
    let entry = EntryView::from_pb(
        response
            .entry
            .as_ref()
            .ok_or_else(|| missing(METHOD, "entry"))?,
    );
    let head = keys.verify_tree_head(
        response
            .tree_head
            .as_ref()
            .ok_or_else(|| missing(METHOD, "tree_head"))?,
    )?;
    let proof = response
        .proof
        .as_ref()
        .ok_or_else(|| missing(METHOD, "proof"))?;
    let path = hashes(METHOD, &proof.hashes)?;
    check_entry_inclusion(&entry, args.index, &head, &path)?;
    if args.json {
        let shown = ShownEntry {
            entry: &entry,
            tree_head: &head,
            inclusion_proof: path.iter().map(Hash::to_string).collect(),
            verified: true,
        };
        return write_json(out, &shown);
    }
    write_entry(&entry, out)?;
    writeln!(
        out,
        "inclusion proof: {} hashes against the tree head {}",
        path.len(),
        head.describe()
    )?;
    writeln!(out, "verified")?;
    Ok(())
}

/// An entry the server returned is consistent in itself and included in `head` at `index`.
pub(crate) fn check_entry_inclusion(
    entry: &EntryView,
    index: u64,
    head: &VerifiedHead,
    path: &[Hash],
) -> Result<(), VerifyFailure> {
    entry
        .check()
        .map_err(|problem| VerifyFailure::Entry { index, problem })?;
    let leaf = entry.computed_hash();
    verify_inclusion(&leaf, index, head.tree_size, path, &head.root).map_err(|source| {
        VerifyFailure::Inclusion {
            index,
            leaf_hash: leaf,
            tree_size: head.tree_size,
            source: Box::new(source),
        }
    })
}

fn write_entry(entry: &EntryView, out: &mut (dyn Write + Send)) -> io::Result<()> {
    let f = &entry.fields;
    let or_none = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    writeln!(out, "entry {}", entry.index)?;
    writeln!(out, "  leaf hash    {}", entry.leaf_hash)?;
    writeln!(out, "  time         {}", entry.time)?;
    writeln!(out, "  trace id     {}", f.trace_id)?;
    writeln!(out, "  span id      {}", f.span_id)?;
    writeln!(
        out,
        "  agency       {} ({})",
        or_none(&f.agency),
        or_none(&f.profile)
    )?;
    writeln!(
        out,
        "  certificate  sha256 {}",
        or_none(&f.cert_fingerprint)
    )?;
    writeln!(out, "  officer      {}", or_none(&f.officer))?;
    writeln!(out, "  token id     {}", or_none(&f.token_id))?;
    writeln!(out, "  method       {}", f.method)?;
    writeln!(out, "  resources    {}", or_none(&f.resources.join(" ")))?;
    if f.message.is_empty() {
        writeln!(out, "  outcome      {}", entry.outcome())?;
    } else {
        writeln!(out, "  outcome      {}: {}", entry.outcome(), f.message)?;
    }
    writeln!(out, "  request      sha256 {}", or_none(&f.request_sha256))?;
    writeln!(out, "  duration     {} µs", f.duration_us)?;
    writeln!(out, "  leaf input   {}", entry.leaf_input)
}

pub(crate) async fn tail(
    args: TailArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    const METHOD: &str = "AuditService.ExportAuditEntries";
    let mut auditor = Auditor::open(&args.connect).await?;
    // Start where the log ends now: the latest head covers every sequenced entry.
    let start = match auditor.tree_head(None).await {
        Ok(head) => head.tree_size,
        Err(AuditCliError::Rpc(e)) if e.code() == Code::NotFound => 0,
        Err(e) => return Err(e),
    };
    let mut stream = auditor
        .audit
        .export_audit_entries(ExportAuditEntriesRequest {
            start: Some(pb::export_audit_entries_request::Start::StartIndex(start)),
            end_index: None,
            follow: true,
        })
        .await
        .map_err(|s| RpcError::new(METHOD, s))?
        .into_inner();
    let mut printed = 0u64;
    if args.count == Some(0) {
        return Ok(());
    }
    while let Some(batch) = stream
        .message()
        .await
        .map_err(|s| RpcError::new(METHOD, s))?
    {
        for entry in &batch.entries {
            let view = EntryView::from_pb(entry);
            if args.json {
                serde_json::to_writer(&mut *out, &view)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", view.one_line())?;
            }
            out.flush()?;
            printed += 1;
            if args.count.is_some_and(|c| printed >= c) {
                return Ok(());
            }
        }
    }
    Ok(())
}

pub(crate) async fn export(
    args: ExportArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), AuditCliError> {
    const METHOD: &str = "AuditService.ExportAuditEntries";
    let mut auditor = Auditor::open(&args.connect).await?;
    // Pin the end, so that the export covers exactly the entries of a published head (or the
    // range `--until` names) however long it runs while the log grows.
    let latest = match auditor.tree_head(None).await {
        Ok(head) => head.tree_size,
        Err(AuditCliError::Rpc(e)) if e.code() == Code::NotFound => 0,
        Err(e) => return Err(e),
    };
    let end = match args.until {
        Some(until) => auditor
            .first_index_at(until)
            .await?
            .map_or(latest, |i| i.min(latest)),
        None => latest,
    };
    let start = match (args.from_index, args.since) {
        (Some(index), _) => pb::export_audit_entries_request::Start::StartIndex(index),
        (None, Some(since)) => pb::export_audit_entries_request::Start::StartTime(timestamp(since)),
        (None, None) => pb::export_audit_entries_request::Start::StartIndex(0),
    };
    let mut file_out = match &args.out {
        Some(path) => Some((path.clone(), create_new(path)?)),
        None => None,
    };
    let sink: &mut dyn Write = match &mut file_out {
        Some((_, file)) => file,
        None => &mut *out,
    };
    let write_error = |source| match &args.out {
        Some(path) => AuditCliError::Write {
            path: path.clone(),
            source,
        },
        None => AuditCliError::Output(source),
    };
    if args.format == ExportFormat::Csv {
        writeln!(sink, "{CSV_HEADER}").map_err(write_error)?;
    }
    let mut stream = auditor
        .audit
        .export_audit_entries(ExportAuditEntriesRequest {
            start: Some(start),
            end_index: Some(end),
            follow: false,
        })
        .await
        .map_err(|s| RpcError::new(METHOD, s))?
        .into_inner();
    let bar = progress_bar();
    let mut first: Option<u64> = None;
    let mut last: Option<u64> = None;
    let mut count = 0u64;
    while let Some(batch) = stream
        .message()
        .await
        .map_err(|s| RpcError::new(METHOD, s))?
    {
        for entry in &batch.entries {
            if first.is_none() {
                first = Some(entry.index);
                bar.set_length(end.saturating_sub(entry.index));
            }
            last = Some(entry.index);
            let view = EntryView::from_pb(entry);
            match args.format {
                ExportFormat::Jsonl => {
                    serde_json::to_writer(&mut *sink, &view)?;
                    writeln!(sink).map_err(write_error)?;
                }
                ExportFormat::Csv => {
                    writeln!(sink, "{}", csv_record(&view)).map_err(write_error)?
                }
            }
            count += 1;
        }
        bar.inc(u64::try_from(batch.entries.len()).unwrap_or(0));
    }
    bar.finish_and_clear();
    sink.flush().map_err(write_error)?;
    if let Some((path, file)) = &file_out {
        file.sync_all().map_err(|source| AuditCliError::Write {
            path: path.clone(),
            source,
        })?;
    }
    // The summary goes where the data does not.
    let summary = export_summary(count, first, last, end, latest, args.out.as_deref());
    match &args.out {
        Some(_) => write!(out, "{summary}")?,
        None => write!(io::stderr(), "{summary}")?,
    }
    Ok(())
}

pub(crate) fn export_summary(
    count: u64,
    first: Option<u64>,
    last: Option<u64>,
    end: u64,
    latest: u64,
    path: Option<&Path>,
) -> String {
    let place = path.map_or("standard output".to_owned(), |p| p.display().to_string());
    let (Some(first), Some(last)) = (first, last) else {
        return format!("exported no entries to {place}\n");
    };
    let mut text = format!("exported {count} entries, indexes {first} to {last}, to {place}\n");
    if first == 0 && end == latest && end > 0 {
        let file = path.map_or("FILE".to_owned(), |p| p.display().to_string());
        text.push_str(&format!(
            "the signed tree head of size {end} covers them: check with \
             `yrd audit verify --file {file} --tree-size {end}`\n"
        ));
    }
    text
}

/// The export's progress bar on stderr, drawn only when stderr is a terminal.
fn progress_bar() -> ProgressBar {
    crate::cli::output::progress_bar(
        "{spinner} exporting {bar:40} {pos}/{len} entries ({per_sec}, {eta} left)",
    )
}

/// Creates a file that must not exist yet.
fn create_new(path: &Path) -> Result<std::fs::File, AuditCliError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                AuditCliError::Exists(path.to_owned())
            } else {
                AuditCliError::Write {
                    path: path.to_owned(),
                    source: e,
                }
            }
        })
}
