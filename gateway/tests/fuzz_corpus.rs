//! The committed corpus of every fuzz target (`fuzz/corpus/<target>/`), replayed through the
//! same entry points the fuzzer calls, so that a normal `cargo test` catches a regression on an
//! input the fuzzer once found (docs/reliability.md). Each corpus holds valid seeds and the
//! inputs of fixed crashes; nothing may panic on any of them.

use std::path::{Path, PathBuf};

use yrd_gateway::fuzzing;

/// The inputs of `target`'s corpus, sorted by name; fails when there are none.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no input", dir.display());
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a corpus file reads");
            (path, bytes)
        })
        .collect()
}

/// Replays `target`'s corpus through `run`, naming each input before it runs (so a panic names
/// the input that caused it), and answers how many inputs `run` accepted.
fn replay<T, E: std::fmt::Display>(target: &str, run: impl Fn(&[u8]) -> Result<T, E>) -> usize {
    corpus(target)
        .iter()
        .filter(|(path, bytes)| {
            eprint!("{target}: {}: ", path.display());
            let verdict = run(bytes);
            match &verdict {
                Ok(_) => eprintln!("accepted"),
                Err(e) => eprintln!("refused: {e}"),
            }
            verdict.is_ok()
        })
        .count()
}

#[test]
fn request_corpus_replays() {
    let accepted = replay("requests", |data| fuzzing::request(data).1);
    assert!(
        accepted > 0,
        "no seed of the requests corpus is a valid request"
    );
}

#[test]
fn csr_corpus_replays() {
    let accepted = replay("csr", yrd_pki::untrusted::sign_untrusted_csr);
    assert!(accepted > 0, "no seed of the csr corpus is signed");
}

#[test]
fn token_corpus_replays() {
    let accepted = replay("token", yrd_admin::token::untrusted::verify_untrusted);
    assert!(accepted > 0, "no seed of the token corpus verifies");
}

#[test]
fn results_import_corpus_replays() {
    replay("results_import", fuzzing::results_sheet);
}

#[test]
fn audit_verify_corpus_replays() {
    let accepted = replay("audit_verify", fuzzing::audit_export);
    assert!(accepted > 0, "no seed of the audit_verify corpus verifies");
}
