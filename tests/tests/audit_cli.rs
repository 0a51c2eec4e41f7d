//! The tamper tests of the exchange log (issue 4): behind the server's back, with raw SQL on
//! the test database (after dropping the append-only triggers that otherwise refuse it), one
//! stored leaf is altered, one deleted, or two reordered. `yrd audit verify` — online, on a new
//! export, finding the first bad index with the server's consistency proofs — then fails and
//! names the first bad index in each case; offline, with only the signed root, it says the
//! file does not match and names the first line that is wrong in itself where there is one.
//!
//! Each scenario runs on SQLite and on PostgreSQL.

mod audit_support;

use std::path::{Path, PathBuf};

use audit_support::{audit, audit_ok, head_covering, path, spawn_with_database};
use sqlx::{AnyConnection, Connection, Row};
use yrd_domain::Profile;
use yrd_domain::audit::LeafData;
use yrd_domain::merkle::MerkleError;
use yrd_e2e::{JIANGSU, StoreKind, TestApp};
use yrd_gateway::audit_check::{VerifiedHead, VerifyFailure};
use yrd_gateway::audit_cli::AuditCliError;
use yrd_gateway::audit_entry::LineProblem;
use yrd_proto::v1::GetJwksRequest;
use yrd_proto::v1::token_service_client::TokenServiceClient;

/// Runs each tamper scenario `async fn name(log: Tampering)` on both stores.
macro_rules! tamper_on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let log = super::Tampering::start(yrd_e2e::StoreKind::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$scenario(log).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(log) = super::Tampering::start(yrd_e2e::StoreKind::Postgres).await {
                        super::$scenario(log).await;
                    }
                }
            }
        )*
    };
}

tamper_on_both_stores!(
    altering_one_leaf_is_found_at_its_index,
    deleting_one_leaf_is_found_at_its_index,
    reordering_two_leaves_is_found_at_the_first,
);

/// Entries logged before the tampering starts.
const CALLS: u64 = 12;

/// A server with a dozen logged calls, an intact verified export of them, and a raw
/// connection to its database with the append-only guards dropped.
struct Tampering {
    app: TestApp,
    db: AnyConnection,
    dir: tempfile::TempDir,
    /// The size of the signed tree head the intact export ends at.
    tree_size: u64,
    /// That head, as verified by the test.
    head: VerifiedHead,
}

impl Tampering {
    async fn start(kind: StoreKind) -> Option<Tampering> {
        let (app, url) = spawn_with_database(kind).await?;
        let channel = app.channel(JIANGSU, Profile::System).await;
        for _ in 0..CALLS {
            TokenServiceClient::new(channel.clone())
                .get_jwks(GetJwksRequest {})
                .await
                .expect("a logged call");
        }
        head_covering(&app, CALLS).await;
        let dir = tempfile::tempdir().expect("a folder for the exports");

        // An intact export verifies, online and offline.
        let intact = dir.path().join("intact.jsonl");
        let summary = audit_ok(
            &app,
            &format!("audit export --from-index 0 --out {}", path(&intact)),
        )
        .await;
        let tree_size = tree_size_in(&summary);
        assert!(tree_size >= CALLS, "{summary}");
        let verified = audit_ok(
            &app,
            &format!(
                "audit verify --file {} --tree-size {tree_size}",
                path(&intact)
            ),
        )
        .await;
        assert!(
            verified.contains("file ") && verified.contains("verified"),
            "{verified}"
        );
        let head = head_at(&app, tree_size).await;
        let offline = audit_ok(
            &app,
            &format!(
                "audit verify --file {} --tree-size {tree_size} --root {}",
                path(&intact),
                head.root
            ),
        )
        .await;
        assert!(
            offline.contains("(given)") && offline.contains("verified"),
            "{offline}"
        );

        // The database refuses the edits until its guards are dropped.
        sqlx::any::install_default_drivers();
        let mut db = AnyConnection::connect(&url)
            .await
            .expect("a raw connection");
        let refused =
            sqlx::query("UPDATE audit_leaves SET message = 'edited' WHERE leaf_index = 0")
                .execute(&mut db)
                .await
                .expect_err("the log is append-only");
        assert!(refused.to_string().contains("append-only:"), "{refused}");
        let drops: &[&str] = match kind {
            StoreKind::Sqlite => &[
                "DROP TRIGGER audit_leaves_update_guard",
                "DROP TRIGGER audit_leaves_delete_guard",
                "DROP TRIGGER audit_leaf_resources_delete_guard",
            ],
            StoreKind::Postgres => &[
                "DROP TRIGGER audit_leaves_row_guard ON audit_leaves",
                "DROP TRIGGER audit_leaf_resources_no_change ON audit_leaf_resources",
            ],
        };
        for sql in drops {
            sqlx::query(sql).execute(&mut db).await.expect(sql);
        }
        Some(Tampering {
            app,
            db,
            dir,
            tree_size,
            head,
        })
    }

    /// Runs one tampering statement (or several in one transaction).
    async fn sql(&mut self, statements: &[&str]) {
        let mut tx = self.db.begin().await.expect("begin");
        for sql in statements {
            sqlx::query(sql).execute(&mut *tx).await.expect(sql);
        }
        tx.commit().await.expect("commit");
    }

    /// A new export of the whole log as it is now.
    async fn export(&self, name: &str) -> PathBuf {
        let file = self.dir.path().join(format!("{name}.jsonl"));
        audit_ok(
            &self.app,
            &format!("audit export --from-index 0 --out {}", path(&file)),
        )
        .await;
        file
    }

    /// `yrd audit verify --file FILE --tree-size N` against the intact export's head, online.
    async fn verify_online(&self, file: &Path) -> VerifyFailure {
        let line = format!(
            "audit verify --file {} --tree-size {}",
            path(file),
            self.tree_size
        );
        failure(audit(&self.app, &line).await, &line)
    }

    /// The same offline, with the head's root given.
    async fn verify_offline(&self, file: &Path) -> VerifyFailure {
        let line = format!(
            "audit verify --file {} --tree-size {} --root {}",
            path(file),
            self.tree_size,
            self.head.root
        );
        failure(audit(&self.app, &line).await, &line)
    }
}

/// The verification failure of a command that must fail verification.
fn failure(outcome: Result<String, AuditCliError>, line: &str) -> VerifyFailure {
    match outcome {
        Err(AuditCliError::Verify(failure)) => *failure,
        Err(other) => panic!("yrd {line}: failed, but not verification: {other:#}"),
        Ok(printed) => panic!("yrd {line}: passed on a tampered log:\n{printed}"),
    }
}

/// The `--tree-size N` an export's summary suggests.
fn tree_size_in(summary: &str) -> u64 {
    summary
        .split("--tree-size ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tree size in the export summary:\n{summary}"))
}

/// The signed tree head of `size`, checked against the log key.
async fn head_at(app: &TestApp, size: u64) -> VerifiedHead {
    let auditor = app.session(yrd_e2e::SHANGHAI, Profile::Auditor).await;
    let jwks = TokenServiceClient::new(auditor.channel.clone())
        .get_jwks(GetJwksRequest {})
        .await
        .expect("JWKS")
        .into_inner();
    let sth = yrd_proto::v1::audit_service_client::AuditServiceClient::new(auditor.authed())
        .get_tree_head(yrd_proto::v1::GetTreeHeadRequest {
            tree_size: Some(size),
        })
        .await
        .expect("the head the export ends at was published")
        .into_inner()
        .tree_head
        .expect("tree_head");
    yrd_gateway::audit_check::LogKeys::from_jwks(&jwks)
        .verify_tree_head(&sth)
        .expect("signed by the log key")
}

async fn altering_one_leaf_is_found_at_its_index(mut log: Tampering) {
    // A CSV export for spreadsheets says the same entries.
    let csv = log.dir.path().join("intact.csv");
    audit_ok(
        &log.app,
        &format!(
            "audit export --since 1970-01-01 --format csv --out {}",
            path(&csv)
        ),
    )
    .await;
    let text = std::fs::read_to_string(&csv).expect("the CSV");
    assert!(text.starts_with("index,leaf_hash,time,"), "{text}");
    assert!(
        text.lines().count() as u64 > log.tree_size,
        "a header and every entry"
    );

    // 1. A column edited alone: the tree still matches (the leaf text is intact), but the
    //    entry no longer says what its leaf says — the auditor is told which one.
    log.sql(&["UPDATE audit_leaves SET agency = '340000-AMR' WHERE leaf_index = 6"])
        .await;
    let edited = log.export("column-edited").await;
    match log.verify_online(&edited).await {
        VerifyFailure::BadLine {
            index: 6,
            problem: LineProblem::FieldDiffers { field },
            ..
        } => assert_eq!(field, "agency"),
        other => panic!("expected entry 6 named, got {other}"),
    }

    // 2. A careful forger rewrites entry 3's outcome, its leaf text and its leaf hash
    //    together, so that the line checks out in itself.
    let row = sqlx::query("SELECT leaf_input FROM audit_leaves WHERE leaf_index = 3")
        .fetch_one(&mut log.db)
        .await
        .expect("leaf 3");
    let input: String = row.try_get("leaf_input").expect("text");
    let mut forged = LeafData::from_leaf_input(input.as_bytes()).expect("a canonical leaf");
    forged.code = 7;
    forged.message = "forged".to_owned();
    let forged_input = String::from_utf8(forged.leaf_input()).expect("UTF-8");
    let update = format!(
        "UPDATE audit_leaves SET code = 7, message = 'forged', leaf_input = '{}', leaf_hash = '{}' \
         WHERE leaf_index = 3",
        forged_input.replace('\'', "''"),
        forged.leaf_hash()
    );
    log.sql(&[&update]).await;
    let forged_export = log.export("forged").await;
    match log.verify_online(&forged_export).await {
        failure @ VerifyFailure::FirstBadIndex { index: 3, .. } => {
            let message = failure.to_string();
            assert!(message.contains("the first bad index is 3"), "{message}");
        }
        other => panic!("expected first bad index 3, got {other}"),
    }
    // Offline, the root alone says the file does not match.
    assert!(
        matches!(
            log.verify_offline(&forged_export).await,
            VerifyFailure::FileDoesNotMatch { .. }
        ),
        "offline, the file does not match its head"
    );
    // And the forged entry's own inclusion proof fails against the signed head.
    let err = audit(&log.app, "audit verify --index 3")
        .await
        .expect_err("the forged entry is not the one the tree holds");
    assert!(
        matches!(
            err.failure(),
            Some(VerifyFailure::Inclusion { index: 3, source, .. })
                if matches!(**source, MerkleError::RootMismatch { .. })
        ),
        "{err:?}"
    );
}

async fn deleting_one_leaf_is_found_at_its_index(mut log: Tampering) {
    log.sql(&[
        "DELETE FROM audit_leaf_resources WHERE leaf_id IN \
         (SELECT id FROM audit_leaves WHERE leaf_index = 4)",
        "DELETE FROM audit_leaves WHERE leaf_index = 4",
    ])
    .await;
    let export = log.export("deleted").await;
    match log.verify_online(&export).await {
        VerifyFailure::FirstBadIndex {
            index: 4,
            first_line_problem,
            ..
        } => assert_eq!(
            first_line_problem.as_deref(),
            Some(&(
                4,
                LineProblem::IndexOutOfSequence {
                    expected: 4,
                    found: 5
                }
            ))
        ),
        other => panic!("expected first bad index 4, got {other}"),
    }
    // Offline the gap in the indexes names the same entry.
    match log.verify_offline(&export).await {
        VerifyFailure::FileDoesNotMatch {
            first_line_problem: Some(problem),
            ..
        } if matches!(*problem, (4, LineProblem::IndexOutOfSequence { .. })) => {}
        other => panic!("expected entry 4 named offline, got {other}"),
    }
    let err = audit(&log.app, "audit show 4")
        .await
        .expect_err("the entry is gone");
    assert_eq!(
        err.rpc().map(|e| e.code()),
        Some(tonic::Code::NotFound),
        "{err:?}"
    );
}

async fn reordering_two_leaves_is_found_at_the_first(mut log: Tampering) {
    // Swap entries 2 and 7 (through an index no log reaches, in one transaction).
    log.sql(&[
        "UPDATE audit_leaves SET leaf_index = 999999999 WHERE leaf_index = 2",
        "UPDATE audit_leaves SET leaf_index = 2 WHERE leaf_index = 7",
        "UPDATE audit_leaves SET leaf_index = 7 WHERE leaf_index = 999999999",
    ])
    .await;
    let export = log.export("reordered").await;
    match log.verify_online(&export).await {
        VerifyFailure::FirstBadIndex {
            index: 2,
            first_line_problem: None,
            ..
        } => {}
        other => panic!("expected first bad index 2 (each line intact in itself), got {other}"),
    }
    match log.verify_offline(&export).await {
        VerifyFailure::FileDoesNotMatch {
            first_line_problem: None,
            ..
        } => {}
        other => panic!("expected a root mismatch offline, got {other}"),
    }
    // The intact export still verifies: the tree itself was never touched.
    let intact = log.dir.path().join("intact.jsonl");
    audit_ok(
        &log.app,
        &format!(
            "audit verify --file {} --tree-size {}",
            path(&intact),
            log.tree_size
        ),
    )
    .await;
}
