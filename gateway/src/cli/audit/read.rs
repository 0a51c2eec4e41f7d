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
use crate::cli::audit::keys::LogKeys;
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
    let views = all_entries(&auditor, request).await?;
    if args.json {
        return write_json(out, &views);
    }
    write_table(&views, out)?;
    Ok(())
}

/// Every entry `request` matches, all pages (`yrd audit query`, the console's trace page).
pub(crate) async fn all_entries(
    auditor: &Auditor,
    request: ListAuditEntriesRequest,
) -> Result<Vec<EntryView>, RpcError> {
    list_all(
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
    .await
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
    let mut auditor = Auditor::open(&args.connect).await?;
    let keys = auditor.log_keys().await?;
    let (entry, head, path) = verified_entry(&mut auditor, &keys, args.index).await?;
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

/// The entry at `index` with its inclusion proof against the latest tree head, the head's
/// signature checked with `keys` and the proof checked here (`yrd audit show`, and the
/// console's entry page). Answers the entry, the verified head and the proof's hashes.
pub(crate) async fn verified_entry(
    auditor: &mut Auditor,
    keys: &LogKeys,
    index: u64,
) -> Result<(EntryView, VerifiedHead, Vec<Hash>), AuditCliError> {
    const METHOD: &str = "AuditService.GetAuditEntry";
    let response = auditor
        .audit
        .get_audit_entry(GetAuditEntryRequest {
            index,
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
    check_entry_inclusion(&entry, index, &head, &path)?;
    Ok((entry, head, path))
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
    let mut auditor = Auditor::open(&args.connect).await?;
    let range = ExportRange::pin(&mut auditor, args.from_index, args.since, args.until).await?;
    let mut file_out = match &args.out {
        Some(path) => Some((path.clone(), create_new(path)?)),
        None => None,
    };
    let sink: &mut (dyn Write + Send) = match &mut file_out {
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
    let done = write_export(&mut auditor, &range, args.format, sink, &write_error).await?;
    if let Some((path, file)) = &file_out {
        file.sync_all().map_err(|source| AuditCliError::Write {
            path: path.clone(),
            source,
        })?;
    }
    // The summary goes where the data does not.
    let summary = export_summary(
        done.count,
        done.first,
        done.last,
        range.end,
        range.latest,
        args.out.as_deref(),
    );
    match &args.out {
        Some(_) => write!(out, "{summary}")?,
        None => write!(io::stderr(), "{summary}")?,
    }
    Ok(())
}

/// Where an export starts and ends, its end pinned to a published tree head before it starts
/// (or to the range `until` names), so that it covers exactly the entries of that head however
/// long it runs while the log grows.
pub(crate) struct ExportRange {
    start: pb::export_audit_entries_request::Start,
    /// The index it stops before.
    pub(crate) end: u64,
    /// The size of the latest tree head when it started.
    pub(crate) latest: u64,
}

impl ExportRange {
    /// Pins the range: from `from_index`, else the first entry at or after `since`, else 0.
    pub(crate) async fn pin(
        auditor: &mut Auditor,
        from_index: Option<u64>,
        since: Option<time::OffsetDateTime>,
        until: Option<time::OffsetDateTime>,
    ) -> Result<ExportRange, AuditCliError> {
        let latest = match auditor.tree_head(None).await {
            Ok(head) => head.tree_size,
            Err(AuditCliError::Rpc(e)) if e.code() == Code::NotFound => 0,
            Err(e) => return Err(e),
        };
        let end = match until {
            Some(until) => auditor
                .first_index_at(until)
                .await?
                .map_or(latest, |i| i.min(latest)),
            None => latest,
        };
        let start = match (from_index, since) {
            (Some(index), _) => pb::export_audit_entries_request::Start::StartIndex(index),
            (None, Some(since)) => {
                pb::export_audit_entries_request::Start::StartTime(timestamp(since))
            }
            (None, None) => pb::export_audit_entries_request::Start::StartIndex(0),
        };
        Ok(ExportRange { start, end, latest })
    }
}

/// What [`write_export`] wrote: how many entries, the first and last index.
pub(crate) struct Exported {
    pub(crate) count: u64,
    pub(crate) first: Option<u64>,
    pub(crate) last: Option<u64>,
}

/// Streams the entries of `range` to `sink` in `format` (`yrd audit export`, and the console's
/// export button); `write_error` names where a failed write went.
pub(crate) async fn write_export(
    auditor: &mut Auditor,
    range: &ExportRange,
    format: ExportFormat,
    sink: &mut (dyn Write + Send),
    write_error: &(dyn Fn(io::Error) -> AuditCliError + Sync),
) -> Result<Exported, AuditCliError> {
    const METHOD: &str = "AuditService.ExportAuditEntries";
    if format == ExportFormat::Csv {
        writeln!(sink, "{CSV_HEADER}").map_err(write_error)?;
    }
    let mut stream = auditor
        .audit
        .export_audit_entries(ExportAuditEntriesRequest {
            start: Some(range.start),
            end_index: Some(range.end),
            follow: false,
        })
        .await
        .map_err(|s| RpcError::new(METHOD, s))?
        .into_inner();
    let bar = progress_bar();
    let mut done = Exported {
        count: 0,
        first: None,
        last: None,
    };
    while let Some(batch) = stream
        .message()
        .await
        .map_err(|s| RpcError::new(METHOD, s))?
    {
        for entry in &batch.entries {
            if done.first.is_none() {
                done.first = Some(entry.index);
                bar.set_length(range.end.saturating_sub(entry.index));
            }
            done.last = Some(entry.index);
            let view = EntryView::from_pb(entry);
            match format {
                ExportFormat::Jsonl => {
                    serde_json::to_writer(&mut *sink, &view)?;
                    writeln!(sink).map_err(write_error)?;
                }
                ExportFormat::Csv => {
                    writeln!(sink, "{}", csv_record(&view)).map_err(write_error)?
                }
            }
            done.count += 1;
        }
        bar.inc(u64::try_from(batch.entries.len()).unwrap_or(0));
    }
    bar.finish_and_clear();
    sink.flush().map_err(write_error)?;
    Ok(done)
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
