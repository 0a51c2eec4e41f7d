//! `yrd backup` and `yrd migrate` (issue 20; `docs/operations.md` "Backups"): a copy of the
//! SQLite store taken while the server is serving writes opens and verifies (its exchange-log
//! root recomputed from its leaves equals its latest signed tree head); a copy whose log was
//! forged consistently leaf by leaf, and a copy with damaged pages, are both reported; and a
//! server starts against a database `yrd migrate` prepared, on both stores.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio_util::sync::CancellationToken;
use yrd_domain::Profile;
use yrd_domain::clock::SystemClock;
use yrd_domain::merkle::leaf_hash;
use yrd_e2e::{SHANGHAI, StoreKind, TestApp};
use yrd_gateway::cli::ops::{BackupArgs, StoreArgs};
use yrd_proto::v1::admin_service_client::AdminServiceClient;
use yrd_proto::v1::{self as pb, CreateAgencyRequest};
use yrd_store::backup::{BackupError, verify_copy};
use yrd_store::testing::TestDatabase;
use yrd_store::{Store, StoreOptions};

fn store_args(url: &str) -> StoreArgs {
    StoreArgs {
        config: None,
        data_dir: None,
        database_url: Some(url.to_owned()),
    }
}

/// Keeps Shanghai's admin onboarding agencies (one write and one exchange-log leaf each) until
/// `stop`; counts the writes acknowledged.
async fn keep_writing(
    app: &TestApp,
    stop: CancellationToken,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    let done = Arc::new(AtomicUsize::new(0));
    let counter = done.clone();
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let task = tokio::spawn(async move {
        let mut client = AdminServiceClient::new(admin.authed());
        let mut n = 0u32;
        while !stop.is_cancelled() {
            n += 1;
            client
                .create_agency(CreateAgencyRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    agency: Some(pb::Agency {
                        agency_id: format!("320500-B{n}"),
                        display_name: format!("Backup test agency {n}"),
                        display_name_zh: format!("备份测试{n}"),
                        ..Default::default()
                    }),
                })
                .await
                .expect("the server keeps serving writes during the backup");
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (task, done)
}

async fn wait_for_tree_size(store: &Store, at_least: u64) {
    for _ in 0..200 {
        let size = store
            .latest_tree_head()
            .await
            .expect("tree head")
            .map_or(0, |h| h.tree_size);
        if size >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the log never reached {at_least} sequenced leaves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_writes_verifies_and_forgeries_are_reported() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}", dir.path().join("yrd.db").display());
    let app = TestApp::spawn_with(
        StoreKind::Sqlite,
        |s| s.database_url = url.clone(),
        Arc::new(SystemClock),
    )
    .await
    .expect("SQLite is always available");
    let stop = CancellationToken::new();
    let (writer, written) = keep_writing(&app, stop.clone()).await;
    wait_for_tree_size(&app.store, 10).await;

    // The backup, while the writer keeps committing.
    let before = written.load(Ordering::SeqCst);
    let copy = dir.path().join("copy.db");
    let mut out = Vec::new();
    yrd_gateway::ops::backup(
        &BackupArgs {
            store: store_args(&url),
            out: Some(copy.clone()),
            check: None,
        },
        &mut out,
    )
    .await
    .expect("the backup is made and verifies");
    let text = String::from_utf8_lossy(&out).into_owned();
    // Let a few more writes land after the copy, to prove the server kept serving.
    for _ in 0..200 {
        if written.load(Ordering::SeqCst) >= before + 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    writer.await.expect("the writer ends cleanly");
    assert!(
        written.load(Ordering::SeqCst) >= before + 5,
        "the server went on serving writes around the backup"
    );
    assert!(
        text.contains("written") && text.contains("integrity_check: ok"),
        "{text}"
    );

    let verified = verify_copy(&copy)
        .await
        .expect("the copy opens and verifies");
    assert!(verified.tree_size >= 10, "{verified:?}");
    assert!(text.contains(&verified.root.to_string()), "{text}");

    // A second backup never replaces the first.
    let again = yrd_gateway::ops::backup(
        &BackupArgs {
            store: store_args(&url),
            out: Some(copy.clone()),
            check: None,
        },
        &mut Vec::new(),
    )
    .await
    .expect_err("an existing file is not replaced");
    assert!(format!("{again:#}").contains("already exists"), "{again:#}");

    // A forged copy: one leaf rewritten consistently (its columns, its canonical input and its
    // leaf hash all agree), as someone editing the database by hand would. Only the root
    // recomputed against the signed tree head can tell.
    let forged = dir.path().join("forged.db");
    std::fs::copy(&copy, &forged).expect("copy the backup");
    forge_leaf(&forged, 1).await;
    let err = verify_copy(&forged)
        .await
        .expect_err("a forged log is reported");
    let message = err.to_string();
    assert!(
        matches!(err, BackupError::Log(_)) && message.contains("root recomputed"),
        "{message}"
    );
    let mut out = Vec::new();
    let err = yrd_gateway::ops::backup(
        &BackupArgs {
            store: store_args(&url),
            out: None,
            check: Some(forged.clone()),
        },
        &mut out,
    )
    .await
    .expect_err("`yrd backup --check` reports the forgery");
    assert!(format!("{err:#}").contains("does not verify"), "{err:#}");

    // Damaged pages: bytes overwritten in the middle of the file.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&copy).expect("read the backup");
    let middle = bytes.len() / 2;
    let end = (middle + 8192).min(bytes.len());
    bytes[middle..end].fill(0xA5);
    std::fs::write(&damaged, &bytes).expect("write the damaged copy");
    let err = verify_copy(&damaged)
        .await
        .expect_err("a damaged copy is reported");
    println!("damaged copy reported: {err}");

    app.shutdown().await.expect("clean shutdown");
}

/// Rewrites leaf `index` of the SQLite file at `path`: a different outcome code, with its
/// canonical input and leaf hash recomputed to match (the append-only trigger dropped first).
async fn forge_leaf(path: &Path, index: u64) {
    let store = Store::open(
        &format!("sqlite://{}", path.display()),
        &StoreOptions::default(),
    )
    .await
    .expect("open the copy");
    let mut stored = store
        .leaf_by_index(index)
        .await
        .expect("read the leaf")
        .expect("the leaf is sequenced");
    store.close().await;
    stored.leaf.code = if stored.leaf.code == 0 { 7 } else { 0 };
    let input = String::from_utf8(stored.leaf.leaf_input()).expect("canonical input is text");
    let hash = leaf_hash(input.as_bytes());
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .expect("url")
        .disable_statement_logging()
        .connect()
        .await
        .expect("open the copy");
    sqlx::query("DROP TRIGGER audit_leaves_update_guard")
        .execute(&mut conn)
        .await
        .expect("drop the append-only guard");
    sqlx::query(
        "UPDATE audit_leaves SET code = $1, leaf_input = $2, leaf_hash = $3 WHERE leaf_index = $4",
    )
    .bind(i64::from(stored.leaf.code))
    .bind(input)
    .bind(hash.to_string())
    .bind(i64::try_from(index).expect("small index"))
    .execute(&mut conn)
    .await
    .expect("forge the leaf");
    conn.close().await.expect("close");
}

/// `yrd migrate` on a fresh database, then a server started against it.
async fn migrate_then_serve(database: TestDatabase, kind: StoreKind) {
    let mut out = Vec::new();
    yrd_gateway::ops::migrate(&store_args(&database.url), &mut out)
        .await
        .expect("the store migrates");
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.contains("is migrated"), "{text}");
    // A second run finds nothing to do.
    yrd_gateway::ops::migrate(&store_args(&database.url), &mut Vec::new())
        .await
        .expect("migrating again is a no-op");
    let url = database.url.clone();
    let app = TestApp::spawn_with(kind, |s| s.database_url = url, Arc::new(SystemClock))
        .await
        .expect("the store is available");
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    AdminServiceClient::new(admin.authed())
        .list_agencies(pb::ListAgenciesRequest::default())
        .await
        .expect("the server started on the migrated database answers");
    app.shutdown().await.expect("clean shutdown");
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_starts_on_a_database_yrd_migrate_prepared_sqlite() {
    migrate_then_serve(TestDatabase::sqlite(), StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_starts_on_a_database_yrd_migrate_prepared_postgres() {
    if let Some(database) = TestDatabase::postgres().await {
        migrate_then_serve(database, StoreKind::Postgres).await;
    }
}
