//! The request timeout (`limits.request_timeout_ms`): a call the store keeps waiting past it is
//! answered `DEADLINE_EXCEEDED` at the timeout, not `CANCELLED` (docs/reliability.md, "Request
//! timeout"), its leaf records that answer, and the write, sent again with its request id once
//! the store is free, gets its one answer.
//!
//! The store is kept waiting by a transaction of the test's own that holds the write lock: on
//! SQLite `BEGIN IMMEDIATE` (the server's write waits on the busy timeout), on PostgreSQL a lock
//! on the exchange log's table (every write appends its leaf in its own transaction).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use tonic::Code;
use yrd_domain::Profile;
use yrd_domain::clock::SystemClock;
use yrd_e2e::fixtures::non_conforming_toy;
use yrd_e2e::{SHANGHAI, StoreKind, TestApp};
use yrd_proto::v1 as pb;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;

/// The request timeout the server is given, and its store's acquire timeout (shorter, as the
/// configuration check requires).
const REQUEST_TIMEOUT_MS: u64 = 1_000;
const ACQUIRE_TIMEOUT_MS: u64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let app = spawn(StoreKind::Sqlite)
        .await
        .expect("SQLite is always available");
    a_call_past_the_request_timeout_is_deadline_exceeded(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if let Some(app) = spawn(StoreKind::Postgres).await {
        a_call_past_the_request_timeout_is_deadline_exceeded(app).await;
    }
}

async fn spawn(kind: StoreKind) -> Option<TestApp> {
    TestApp::spawn_with(
        kind,
        |s| {
            s.limits.request_timeout_ms = REQUEST_TIMEOUT_MS;
            s.store.acquire_timeout_ms = ACQUIRE_TIMEOUT_MS;
        },
        Arc::new(SystemClock),
    )
    .await
}

/// A transaction of the test's own holding the lock every write of the exchange needs.
enum Lock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Lock {
    async fn take(app: &TestApp) -> Lock {
        let url = app.database_url();
        if url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(url)
                .await
                .expect("a SQLite connection");
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .expect("the write lock");
            Lock::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(url)
                .await
                .expect("a PostgreSQL connection");
            sqlx::query("BEGIN")
                .execute(&mut conn)
                .await
                .expect("BEGIN");
            sqlx::query("LOCK TABLE audit_leaves IN EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .expect("the log's lock");
            Lock::Postgres(conn)
        }
    }

    async fn release(self) {
        match self {
            Lock::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("ROLLBACK");
                conn.close().await.expect("close");
            }
            Lock::Postgres(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("ROLLBACK");
                conn.close().await.expect("close");
            }
        }
    }
}

async fn a_call_past_the_request_timeout_is_deadline_exceeded(app: TestApp) {
    // The session's token is issued before the lock is taken (issuing one writes too).
    let session = app.session(SHANGHAI, Profile::System).await;
    let mut spot = SpotCheckServiceClient::new(session.authed());
    let request = pb::PublishResultRequest {
        request_id: "deadline-1".into(),
        result: Some(non_conforming_toy("370102", "310104", app.clock.now())),
    };
    let lock = Lock::take(&app).await;
    let started = Instant::now();
    let status = spot
        .publish_result(request.clone())
        .await
        .expect_err("the write cannot commit while the lock is held");
    let took = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status
            .message()
            .contains(&format!("{REQUEST_TIMEOUT_MS} ms")),
        "{status:?}"
    );
    let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(2),
        "answered after {took:?}, the request timeout is {timeout:?}"
    );
    lock.release().await;

    // Sent again, the write gets its one answer (applied after the cut or now).
    let first = spot
        .publish_result(request.clone())
        .await
        .expect("the write once the lock is released")
        .into_inner();
    let again = spot
        .publish_result(request)
        .await
        .expect("the write sent a third time")
        .into_inner();
    let name = |answer: &pb::PublishResultResponse| {
        answer
            .result
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default()
    };
    assert!(!name(&first).is_empty(), "{first:?}");
    assert_eq!(name(&first), name(&again));

    // The cut call's leaf records the answer the partner got.
    let filter = yrd_store::LeafFilter {
        method: Some("/yrd.exchange.v1.SpotCheckService/PublishResult".to_owned()),
        code: Some(Code::DeadlineExceeded as i32),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let leaves = app
            .store
            .query_leaves(&filter, None, 10)
            .await
            .expect("leaves");
        if let Some(stored) = leaves.into_iter().next() {
            assert_eq!(stored.leaf.agency, SHANGHAI);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no DEADLINE_EXCEEDED leaf for PublishResult"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
