//! Spreadsheets (.csv, .xlsx) through `yrd results import --dry-run`.
#![no_main]

use std::sync::Once;

static QUIET: Once = Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The sheet reader catches calamine's panics on malformed workbooks and refuses the file
    // (gateway/src/cli/results/sheet.rs); libFuzzer's panic hook would abort on those caught
    // panics too, so it is replaced. A panic that escapes still aborts the run (libfuzzer-sys
    // aborts on any unwinding out of the target).
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let _ = yrd_gateway::fuzzing::results_sheet(data);
});
