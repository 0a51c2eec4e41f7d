//! What an auditor types: the `yrd audit` subcommands, their flags, and the parsers for the
//! flags' values.
//!
//! Apart from the commands that run them, so that the command line (`cli::command`) and each
//! command's module take their arguments from here without reaching into one another.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Code;
use yrd_domain::AgencyId;
use yrd_domain::merkle::Hash;

use crate::cli::connect::ConnectArgs;
use yrd_client::code_name;

/// The package every method path of the contract lives in.
const PACKAGE: &str = "yrd.exchange.v1";

/// `yrd audit …`: read, export and verify the exchange log (auditor certificate).
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List the entries matching the filters (every page), as a table or JSON.
    Query(QueryArgs),
    /// Show one entry with its inclusion proof against the latest tree head, verified here.
    Show(ShowArgs),
    /// Check the latest signed tree head, a consistency proof from an earlier head, a leaf's
    /// inclusion, or a whole exported file; exits non-zero on any failure.
    Verify(VerifyArgs),
    /// Export a range of entries as JSON Lines or CSV.
    Export(ExportArgs),
    /// Follow new entries, one line each, until Ctrl-C.
    Tail(TailArgs),
}

/// `yrd audit query`. Filters combine with AND.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Only calls at or after this time (RFC 3339, or a date for midnight UTC).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<OffsetDateTime>,
    /// Only calls before this time (RFC 3339, or a date for midnight UTC).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<OffsetDateTime>,
    /// Only calls by this agency: its id (370000-AMR) or resource name (agencies/370000-AMR).
    #[arg(long, value_parser = parse_agency)]
    pub agency: Option<AgencyId>,
    /// Only calls of this method: `AdminService/IssueCertificate` or the full path.
    #[arg(long, value_parser = parse_method)]
    pub method: Option<String>,
    /// Only calls with this outcome: a gRPC code number or name (0, OK, PERMISSION_DENIED, …).
    #[arg(long, value_parser = parse_code)]
    pub code: Option<i32>,
    /// Only calls that touched this resource name (`results/{id}` also matches its versions).
    #[arg(long)]
    pub resource: Option<String>,
    /// Only calls of this W3C trace id (32 hex digits, as `x-trace-id` answers it).
    #[arg(long, value_parser = parse_trace_id)]
    pub trace_id: Option<String>,
    /// Only calls made by this acting officer (`--officer` names the officer of this query).
    #[arg(long, value_name = "OFFICER")]
    pub acted_by: Option<String>,
    /// Print a JSON array (the export's line format) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Entries asked for per call (the listing always fetches every page).
    #[arg(long, default_value_t = 1000, hide = true, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd audit show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The entry's index in the log.
    pub index: u64,
    /// Print JSON: the entry, the tree head and the proof.
    #[arg(long)]
    pub json: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd audit verify`. Always checks the latest signed tree head's signature; each option
/// adds a check.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Prove that the tree of this size (a published head, its signature checked too) is a
    /// prefix of the latest one.
    #[arg(long, conflicts_with = "state", value_parser = clap::value_parser!(u64).range(1..))]
    pub from_size: Option<u64>,
    /// A file keeping the last head this auditor verified: prove the latest head extends it,
    /// then save the latest in its place. Made on first use (trusting the head seen then).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Prove the entry at this index is in the latest tree (its leaf hash recomputed here).
    #[arg(long, conflicts_with_all = ["leaf_hash", "receipt"])]
    pub index: Option<u64>,
    /// Prove the leaf with this hash (64 hex digits) is in the latest tree.
    #[arg(long, conflicts_with = "receipt")]
    pub leaf_hash: Option<Hash>,
    /// Check a receipt (JSON) signed by the log key and prove its leaf is in the latest tree.
    #[arg(long)]
    pub receipt: Option<PathBuf>,
    /// Verify an exported JSON Lines file from index 0: every line re-hashed and checked, and
    /// the root of its first `--tree-size` leaves compared with that tree head.
    #[arg(long, requires = "tree_size")]
    pub file: Option<PathBuf>,
    /// The tree head `--file` is checked against: its size.
    #[arg(long, requires = "file")]
    pub tree_size: Option<u64>,
    /// That head's root (64 hex digits): check `--file` offline, without the server.
    #[arg(long, requires = "file")]
    pub root: Option<Hash>,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The format of `yrd audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line: index, leaf_hash, leaf_input and the decoded fields; what
    /// `yrd audit verify --file` reads.
    Jsonl,
    /// RFC 4180 CSV with a header, for spreadsheets.
    Csv,
}

/// `yrd audit export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Start at the first entry at or after this time (RFC 3339, or a date for midnight UTC).
    #[arg(long, value_parser = parse_time, required_unless_present = "from_index")]
    pub since: Option<OffsetDateTime>,
    /// Start at this index instead (0 for a file `verify --file` can check whole).
    #[arg(long, conflicts_with = "since")]
    pub from_index: Option<u64>,
    /// Stop before the first entry at or after this time; default: the latest signed tree
    /// head, so the export ends where a published head does.
    #[arg(long, value_parser = parse_time)]
    pub until: Option<OffsetDateTime>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Write to this file (never replaced) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `yrd audit tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Stop after this many entries (default: follow until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// Print each entry as a JSON line (the export's format).
    #[arg(long)]
    pub json: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

// ---------------------------------------------------------------------------------------------
// Argument parsers
// ---------------------------------------------------------------------------------------------

/// Reads an RFC 3339 time (`2024-05-01T08:00:00+08:00`) or a date (`2024-05-01`, midnight UTC).
pub fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let date = || -> Option<OffsetDateTime> {
        let mut parts = s.splitn(3, '-');
        let year: i32 = parts.next()?.parse().ok()?;
        let month: u8 = parts.next()?.parse().ok()?;
        let day: u8 = parts.next()?.parse().ok()?;
        let month = time::Month::try_from(month).ok()?;
        let date = time::Date::from_calendar_date(year, month, day).ok()?;
        Some(date.midnight().assume_utc())
    };
    date().ok_or_else(|| {
        format!(
            "expected an RFC 3339 time such as 2024-05-01T08:00:00Z or a date such as 2024-05-01 \
             (midnight UTC), got {s:?}"
        )
    })
}

/// Reads an agency as its bare id (`370000-AMR`) or as the resource name the log's entries
/// carry (`agencies/370000-AMR`), so a value copied from an entry works as a filter.
pub fn parse_agency(s: &str) -> Result<AgencyId, String> {
    AgencyId::parse_name_or_id(s).map_err(|e| {
        format!("expected an agency id such as 370000-AMR or agencies/370000-AMR: {e}")
    })
}

/// Reads a method as its full path (`/yrd.exchange.v1.AdminService/IssueCertificate`) or
/// short (`AdminService/IssueCertificate`, `AdminService.IssueCertificate`), answering the
/// full path the log records.
pub fn parse_method(s: &str) -> Result<String, String> {
    if s.starts_with('/') && s.matches('/').count() == 2 && !s.ends_with('/') {
        return Ok(s.to_owned());
    }
    let bare = s.strip_prefix(&format!("{PACKAGE}.")).unwrap_or(s);
    let split = bare.split_once('/').or_else(|| bare.split_once('.'));
    let name = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric());
    match split {
        Some((service, method)) if name(service) && name(method) => {
            Ok(format!("/{PACKAGE}.{service}/{method}"))
        }
        _ => Err(format!(
            "expected a method such as AdminService/IssueCertificate or \
             /{PACKAGE}.AdminService/IssueCertificate, got {s:?}"
        )),
    }
}

/// Reads a gRPC status code as its number (0–16) or name (`PERMISSION_DENIED`,
/// `permission-denied`).
pub fn parse_code(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (0..=16).contains(&n) {
            return Ok(n);
        }
    }
    let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
    (0..=16)
        .find(|&n| code_name(Code::from_i32(n)) == wanted)
        .ok_or_else(|| {
            format!("expected a gRPC code number 0-16 or name such as OK or PERMISSION_DENIED, got {s:?}")
        })
}

/// Reads a W3C trace id: 32 hex digits, not all zero; answered in lower case.
pub fn parse_trace_id(s: &str) -> Result<String, String> {
    let ok =
        s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()) && s.chars().any(|c| c != '0');
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "a trace id is 32 hex digits, not all zero (as x-trace-id answers it), got {s:?}"
        ))
    }
}
