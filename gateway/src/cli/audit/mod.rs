//! `yrd audit …`: the auditors' command line over the tamper-evident exchange log (交换日志):
//! `query`, `show`, `verify`, `export` and `tail`.
//!
//! # Why it is shaped so
//!
//! An auditor must answer "who exchanged what with whom, when, and did it succeed" and must be
//! able to prove the answer was not altered afterwards — without trusting the exchange that
//! keeps the log. So the commands that read (`query`, `export`, `tail`) print what the server
//! returns, and the commands that prove (`show`, `verify`) recompute every hash locally
//! ([`crate::cli::audit::check`]): tree heads are checked against the log key the exchange publishes
//! through `TokenService.GetJwks`, inclusion and consistency proofs with the RFC 9162
//! algorithms, and an exported file by re-hashing each line and rebuilding the root. When an
//! export does not match, the first bad index is found with consistency proofs from the
//! server (`yrd_domain::merkle::check_export`): a lying server can only make the search fail,
//! never make an altered log pass.
//!
//! Like `yrd cert`, every command is a plain async function writing to a caller-supplied `out`,
//! so the end-to-end tests run exactly what an auditor types (`Cli::try_parse_from`) against a
//! real server. The connection options are [`ConnectArgs`](crate::cli::connect::ConnectArgs);
//! the dev certificate defaults to the `auditor` profile, the only one `AuditService` admits.
//!
//! # Layout
//!
//! The flow of imports runs one way: [`command`] (what is typed) and [`error`] (why it failed)
//! at the top; `read` and `verify` run the commands over an `session` (the auditor's
//! connection); [`check`] and [`keys`] verify without the network and return a [`verdict`];
//! [`entry`] is one log entry as it prints and exports. This module only dispatches.

use std::io::Write;

pub mod check;
pub mod command;
pub mod entry;
pub mod error;
pub mod keys;
pub(crate) mod read;
pub(crate) mod session;
pub mod verdict;
pub(crate) mod verify;

pub use command::{
    AuditCommand, ExportArgs, ExportFormat, QueryArgs, ShowArgs, TailArgs, VerifyArgs,
    parse_agency, parse_code, parse_method, parse_time, parse_trace_id,
};
pub use error::AuditCliError;

use read::{export, query, show, tail};
use verify::verify;

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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use clap::Parser;
    use yrd_domain::Profile;

    use super::*;
    use crate::cli::audit::read::export_summary;
    use crate::cli::command::{Cli, Command};

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
