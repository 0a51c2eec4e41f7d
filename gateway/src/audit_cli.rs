//! `yrd audit …`: the auditors' command line over the tamper-evident exchange log (交换日志):
//! `query`, `show`, `verify`, `export` and `tail`.
//!
//! # Why it is shaped so
//!
//! An auditor must answer "who exchanged what with whom, when, and did it succeed" and must be
//! able to prove the answer was not altered afterwards — without trusting the exchange that
//! keeps the log. So the commands that read (`query`, `export`, `tail`) print what the server
//! returns, and the commands that prove (`show`, `verify`) recompute every hash locally
//! ([`crate::audit_check`]): tree heads are checked against the log key the exchange publishes
//! through `TokenService.GetJwks`, inclusion and consistency proofs with the RFC 9162
//! algorithms, and an exported file by re-hashing each line and rebuilding the root. When an
//! export does not match, the first bad index is found with consistency proofs from the
//! server (`yrd_domain::merkle::check_export`): a lying server can only make the search fail,
//! never make an altered log pass.
//!
//! Like `yrd cert`, every command is a plain async function writing to a caller-supplied `out`,
//! so the end-to-end tests run exactly what an auditor types (`Cli::try_parse_from`) against a
//! real server. The connection options are [`ConnectArgs`]; the dev certificate defaults to
//! the `auditor` profile, the only one `AuditService` admits.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Code;
use yrd_domain::AgencyId;
use yrd_domain::merkle::Hash;

use crate::audit_check::{FileError, ReceiptError, VerifyFailure};
use crate::audit_read::{export, query, show, tail};
use crate::audit_verify::verify;
use crate::cli::ConnectArgs;
use crate::session::{RpcError, SessionError, code_name};

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

/// Why a `yrd audit` command failed. [`AuditCliError::Verify`] is the evidence of a bad log,
/// proof or file; the others say why the command could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditCliError {
    /// Verification failed (boxed: the evidence is larger than the other reasons).
    #[error("verification failed: {0}")]
    Verify(Box<VerifyFailure>),
    /// No session with the exchange (connection or token).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The exchange refused a call.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// A file to read is unusable.
    #[error(transparent)]
    File(#[from] FileError),
    /// A receipt file holds no valid receipt.
    #[error("{path}: {source}")]
    Receipt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ReceiptError,
    },
    /// A file the command would write is already there; nothing was replaced.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Standard output (or the caller's writer) failed.
    #[error("cannot write the output")]
    Output(#[from] io::Error),
    /// JSON output could not be encoded.
    #[error("cannot encode JSON")]
    Json(#[from] serde_json::Error),
    /// The exchange's answer lacks a field the contract promises, or has one of the wrong shape.
    #[error("the exchange answered {method} with a bad {field}: {detail}")]
    Malformed {
        /// The method.
        method: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// `--from-size` names a size at which no head was published, so its root is unknown.
    #[error(
        "no signed tree head was published at size {0}, so its root is unknown: prove from a \
         published size, or keep heads with --state"
    )]
    NoHeadAt(u64),
}

impl From<VerifyFailure> for AuditCliError {
    fn from(failure: VerifyFailure) -> Self {
        AuditCliError::Verify(Box::new(failure))
    }
}

impl AuditCliError {
    /// The refused call's error, when the exchange refused one (token issuance included).
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            AuditCliError::Rpc(e) | AuditCliError::Session(SessionError::Token(e)) => Some(e),
            _ => None,
        }
    }

    /// The verification failure, when verification failed.
    pub fn failure(&self) -> Option<&VerifyFailure> {
        match self {
            AuditCliError::Verify(f) => Some(f),
            _ => None,
        }
    }
}

/// Runs one `yrd audit` subcommand, writing what an auditor reads to `out`.
pub async fn run(command: AuditCommand, out: &mut (dyn Write + Send)) -> Result<(), AuditCliError> {
    match command {
        AuditCommand::Query(args) => query(args, out).await,
        AuditCommand::Show(args) => show(args, out).await,
        AuditCommand::Verify(args) => verify(args, out).await,
        AuditCommand::Export(args) => export(args, out).await,
        AuditCommand::Tail(args) => tail(args, out).await,
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;
    use yrd_domain::Profile;

    use super::*;
    use crate::audit_read::export_summary;
    use crate::cli::{Cli, Command};

    fn parse(line: &str) -> Result<AuditCommand, clap::Error> {
        let words = std::iter::once("yrd").chain(line.split_whitespace());
        match Cli::try_parse_from(words)?.command {
            Command::Audit(c) => Ok(c),
            other => panic!("not an audit command: {other:?}"),
        }
    }

    #[test]
    fn argument_parsers_accept_the_documented_forms() {
        assert_eq!(
            parse_time("2024-05-01").expect("date"),
            parse_time("2024-05-01T00:00:00Z").expect("time")
        );
        assert_eq!(
            parse_time("2024-05-01T08:00:00+08:00").expect("offset"),
            parse_time("2024-05-01T00:00:00Z").expect("utc")
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2024-13-01").is_err());

        let full = "/yrd.exchange.v1.AdminService/IssueCertificate";
        assert_eq!(
            parse_method("AdminService/IssueCertificate").as_deref(),
            Ok(full)
        );
        assert_eq!(
            parse_method("AdminService.IssueCertificate").as_deref(),
            Ok(full)
        );
        assert_eq!(
            parse_method("yrd.exchange.v1.AdminService/IssueCertificate").as_deref(),
            Ok(full)
        );
        assert_eq!(parse_method(full).as_deref(), Ok(full));
        assert!(parse_method("IssueCertificate").is_err());
        assert!(parse_method("Admin Service/Issue").is_err());

        assert_eq!(parse_code("0"), Ok(0));
        assert_eq!(parse_code("PERMISSION_DENIED"), Ok(7));
        assert_eq!(parse_code("unauthenticated"), Ok(16));
        assert_eq!(parse_code("failed-precondition"), Ok(9));
        assert!(parse_code("17").is_err());
        assert!(parse_code("nope").is_err());

        assert_eq!(
            parse_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736").as_deref(),
            Ok("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert!(parse_trace_id(&"0".repeat(32)).is_err());
        assert!(parse_trace_id("4bf92f").is_err());
    }

    #[test]
    fn commands_parse_and_default_to_the_auditor_certificate() {
        let AuditCommand::Query(args) =
            parse("audit query --agency 370000-AMR --code UNAUTHENTICATED --json").expect("query")
        else {
            panic!("not query");
        };
        assert_eq!(args.code, Some(16));
        assert!(args.json);
        let AuditCommand::Query(named) =
            parse("audit query --agency agencies/370000-AMR").expect("query by resource name")
        else {
            panic!("not query");
        };
        assert_eq!(named.agency, args.agency);
        assert!(parse("audit query --agency agencies/370000-amr").is_err());
        assert_eq!(
            args.connect.target(Profile::Auditor).files.cert,
            PathBuf::from("yrd-data/pki/agencies/310000-SAMR/auditor.pem")
        );

        // A whole-file check needs the head's size; an offline one names the root too.
        assert!(parse("audit verify --file e.jsonl").is_err());
        assert!(parse("audit verify --tree-size 5").is_err());
        let root = "ab".repeat(32);
        let AuditCommand::Verify(args) = parse(&format!(
            "audit verify --file e.jsonl --tree-size 5 --root {root}"
        ))
        .expect("verify") else {
            panic!("not verify");
        };
        assert_eq!(args.tree_size, Some(5));
        assert!(parse("audit verify --root 00").is_err());
        assert!(parse("audit verify --from-size 3 --state s.json").is_err());
        assert!(parse("audit verify --index 3 --leaf-hash 00").is_err());
        assert!(parse("audit verify --from-size 0").is_err());

        assert!(parse("audit export").is_err(), "export needs a start");
        assert!(parse("audit export --since 2024-05-01 --from-index 0").is_err());
        let AuditCommand::Export(args) =
            parse("audit export --from-index 0 --format csv --out x.csv").expect("export")
        else {
            panic!("not export");
        };
        assert_eq!(args.format, ExportFormat::Csv);
        assert!(parse("audit show 12").is_ok());
        assert!(parse("audit tail --count 3").is_ok());
    }

    #[test]
    fn the_export_summary_says_which_head_covers_a_whole_export() {
        let text = export_summary(5, Some(0), Some(4), 5, 5, Some(Path::new("e.jsonl")));
        assert!(
            text.contains("exported 5 entries, indexes 0 to 4, to e.jsonl"),
            "{text}"
        );
        assert!(
            text.contains("yrd audit verify --file e.jsonl --tree-size 5"),
            "{text}"
        );
        let partial = export_summary(2, Some(3), Some(4), 5, 5, None);
        assert!(!partial.contains("verify"), "{partial}");
        assert_eq!(
            export_summary(0, None, None, 0, 0, None),
            "exported no entries to standard output\n"
        );
    }
}
