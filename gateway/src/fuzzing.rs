//! The entry points of the fuzz targets in `fuzz/` and of their corpus regression test
//! (`gateway/tests/fuzz_corpus.rs`): each takes the raw bytes of one input, runs the code that
//! reads such input in the exchange or in `yrd`, and panics only on a bug: every bad input must
//! come back as an error that says what is wrong (docs/reliability.md).
//!
//! The targets whose parser lives in a service crate call it there
//! (`yrd_admin::token::untrusted`, `yrd_pki::untrusted`, the services' request checks); the
//! ones of `yrd`'s own file readers, and the choice of a request's method, are here.

use std::io::Cursor;
use std::path::Path;

use time::{Date, Month, OffsetDateTime};
use yrd_disposal::opener::Opener;
use yrd_domain::merkle::root_from_leaves;
use yrd_domain::referral::ReferralRules;

use crate::audit_cli::check::{ExportFile, VerifiedHead};
use crate::cli::results::import::dry_run;

/// The instant requests are checked and sheets are read at (2023-11-14T22:13:20Z): fixed, so
/// an input of the corpus always replays the same.
const CHECKED_AT: i64 = 1_700_000_000;

fn checked_at() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(CHECKED_AT).expect("a time in range")
}

/// The fuzz target `requests`: the first byte picks the method (modulo the number of methods
/// checked), the rest is its request message as the wire carries it. Answers the method and
/// the check's verdict.
pub fn request(data: &[u8]) -> (&'static str, Result<(), String>) {
    let (pick, bytes) = data.split_first().unwrap_or((&0, &[]));
    let methods = yrd_disposal::service::STEP_METHODS;
    let method = methods[usize::from(*pick) % methods.len()];
    let opener = Opener::new(ReferralRules::default());
    let verdict = yrd_disposal::service::check_step_request(method, bytes, checked_at(), &opener);
    (method, verdict)
}

/// The fuzz target `audit_verify`: `data` as an exported file (`yrd audit export --format
/// jsonl`) checked offline as `yrd audit verify --file F --tree-size N --root R` checks it,
/// against a head over all of its own recomputed leaves (so that the Merkle check passes and
/// every line is checked in itself) and then against one over one line fewer (which must not
/// match).
pub fn audit_export(data: &[u8]) -> Result<usize, String> {
    let path = Path::new("fuzz-input.jsonl");
    let file = ExportFile::from_reader(path, Cursor::new(data)).map_err(|e| e.to_string())?;
    let leaves = file.leaves();
    let head = |size: usize| VerifiedHead {
        tree_size: u64::try_from(size).expect("a line count fits in u64"),
        root: root_from_leaves(&leaves[..size]),
        timestamp_ms: 0,
        key_id: String::new(),
    };
    if let Some(fewer) = leaves.len().checked_sub(1) {
        let mut shorter = head(fewer);
        shorter.tree_size += 1;
        assert!(
            file.check_offline(&shorter).is_err(),
            "a file passed against a root that does not cover it"
        );
    }
    let summary = file
        .check_offline(&head(leaves.len()))
        .map_err(|e| e.to_string())?;
    Ok(summary.entries)
}

/// The fuzz target `results_import`: the first byte picks the file's format (even `.csv`, odd
/// `.xlsx`), the rest is the file; read and checked as `yrd results import --dry-run` does,
/// as of 2024-06-01. Answers the result rows read.
pub fn results_sheet(data: &[u8]) -> Result<usize, String> {
    let (pick, bytes) = data.split_first().unwrap_or((&0, &[]));
    let name = if pick % 2 == 0 {
        "fuzz.csv"
    } else {
        "fuzz.xlsx"
    };
    let today = Date::from_calendar_date(2024, Month::June, 1).expect("a valid date");
    let report = dry_run(Path::new(name), bytes, today).map_err(|e| e.to_string())?;
    for rejection in &report.rejected {
        assert!(
            !rejection.reason.trim().is_empty(),
            "a row rejected without a reason: {rejection:?}"
        );
    }
    Ok(report.rows)
}
