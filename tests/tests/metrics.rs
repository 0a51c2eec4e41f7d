//! Operations (issue 20): the admin listener's `GET /metrics` shows every metric family
//! `docs/metrics.md` lists, moved by real calls; `/livez` and `/readyz`; readiness in
//! `grpc.health.v1` as service `readiness`, turning not-ready while PostgreSQL refuses
//! connections and ready again after.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use yrd_domain::Profile;
use yrd_domain::clock::SystemClock;
use yrd_e2e::{JIANGSU, SHANGHAI, StoreKind, TestApp, call_path, fixtures};
use yrd_proto::v1::GetFeedPositionRequest;
use yrd_proto::v1::feed_service_client::FeedServiceClient;

/// How long a test waits for something the server does within a probe interval or two.
const PATIENCE: Duration = Duration::from_secs(20);

/// A server with the admin listener on a free loopback port and quick probes.
async fn spawn(kind: StoreKind) -> Option<TestApp> {
    TestApp::spawn_with(
        kind,
        |settings| {
            settings.metrics.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
            settings.metrics.readiness_interval_ms = 100;
        },
        std::sync::Arc::new(SystemClock),
    )
    .await
}

/// `GET path` on the admin listener: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the admin listener");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send the request");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the admin listener answers in time")
        .expect("read the answer");
    let answer = String::from_utf8(answer).expect("a UTF-8 answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// The samples of `name` (exactly: `name{…} v` or `name v`) as (labels, value).
fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let labels = match series.strip_prefix(name)? {
                "" => String::new(),
                rest if rest.starts_with('{') => rest.to_owned(),
                _ => return None,
            };
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

/// The value of the one sample of `name` whose labels contain every one of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    samples(text, name)
        .into_iter()
        .find(|(l, _)| labels.iter().all(|want| l.contains(want)))
        .map(|(_, v)| v)
}

/// Scrapes until `done` holds for the text, or panics with the last scrape.
async fn scrape_until(addr: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, text) = get(addr, "/metrics").await;
        assert_eq!(status, 200, "{text}");
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what}; last scrape:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn every_metric_family_is_scraped(app: TestApp) {
    let addr = app.metrics_addr.expect("the admin listener is configured");
    let (status, body) = get(addr, "/livez").await;
    assert_eq!((status, body.as_str()), (200, "live\n"));

    // Calls of several kinds: a token (TokenService), feed reads, and a refused call.
    let session = app.session(JIANGSU, Profile::System).await;
    let events: Vec<_> = (1..=3)
        .map(|n| fixtures::result_event(JIANGSU, &format!("m-{n}"), &format!("r{n}"), 0))
        .collect();
    app.store
        .append_feed_events(&events)
        .await
        .expect("append feed events");
    let mut feed = FeedServiceClient::new(session.authed());
    for _ in 0..2 {
        feed.get_feed_position(GetFeedPositionRequest {})
            .await
            .expect("feed position");
    }
    let channel = app.channel(JIANGSU, Profile::System).await;
    let refused = call_path(
        &channel,
        None,
        "/yrd.exchange.v1.FeedService/GetFeedPosition",
    )
    .await
    .expect_err("no token: refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let position = "method=\"/yrd.exchange.v1.FeedService/GetFeedPosition\"";
    let text = scrape_until(addr, "every family shows its values", |text| {
        value(text, "yrd_audit_tree_size", &[]).is_some_and(|n| n >= 4.0)
            && value(text, "yrd_audit_sequencer_leader", &[]) == Some(1.0)
            && value(text, "yrd_ready", &[]) == Some(1.0)
    })
    .await;

    // Calls and their latency, per method and outcome.
    assert_eq!(
        value(&text, "yrd_rpc_calls_total", &[position, "code=\"OK\""]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "yrd_rpc_calls_total",
            &[position, "code=\"UNAUTHENTICATED\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            "yrd_rpc_calls_total",
            &[
                "method=\"/yrd.exchange.v1.TokenService/IssueToken\"",
                "code=\"OK\""
            ]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "yrd_rpc_duration_seconds_count",
            &[position, "code=\"OK\""]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "yrd_rpc_duration_seconds_bucket",
            &[position, "code=\"OK\"", "le=\"+Inf\""]
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            "yrd_rpc_duration_seconds_sum",
            &[position, "code=\"OK\""]
        )
        .is_some_and(|s| s > 0.0),
        "{text}"
    );
    // Group commit: every call's exchange-log leaf was a write.
    assert!(
        value(&text, "yrd_store_commit_batch_size_count", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        value(&text, "yrd_store_commit_batch_size_bucket", &["le=\"64\""]).is_some(),
        "{text}"
    );
    // The exchange log.
    let delay = value(&text, "yrd_audit_integration_delay_seconds", &[]).expect("delay");
    assert!((0.0..5.0).contains(&delay), "{text}");
    // Feed backlog and lag of the agency whose events nobody acknowledged.
    let jiangsu = format!("agency=\"{JIANGSU}\"");
    assert_eq!(
        value(&text, "yrd_feed_backlog_events", &[&jiangsu]),
        Some(3.0),
        "{text}"
    );
    assert!(
        value(&text, "yrd_feed_lag_seconds", &[&jiangsu]).is_some_and(|s| s >= 0.0),
        "{text}"
    );
    // Certificate expiry horizon: the dev certificates are valid for a while yet.
    let shanghai = format!("agency=\"{SHANGHAI}\"");
    assert!(
        value(&text, "yrd_certificate_expiry_seconds", &[&shanghai]).is_some_and(|s| s > 86_400.0),
        "{text}"
    );
    // Overdue work, per agency: nothing is overdue on a new exchange.
    for family in ["yrd_referrals_overdue", "yrd_applications_overdue"] {
        assert_eq!(
            value(&text, family, &[&jiangsu]),
            Some(0.0),
            "{family}: {text}"
        );
    }
    for family in [
        "yrd_rpc_calls_total",
        "yrd_rpc_duration_seconds",
        "yrd_feed_backlog_events",
        "yrd_feed_lag_seconds",
        "yrd_audit_tree_size",
        "yrd_audit_integration_delay_seconds",
        "yrd_audit_sequencer_leader",
        "yrd_store_commit_batch_size",
        "yrd_certificate_expiry_seconds",
        "yrd_referrals_overdue",
        "yrd_applications_overdue",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# TYPE {family} "))),
            "{family} has no TYPE line:\n{text}"
        );
    }
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    app.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_is_scraped_on_sqlite() {
    let app = spawn(StoreKind::Sqlite)
        .await
        .expect("SQLite is always available");
    every_metric_family_is_scraped(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_is_scraped_on_postgres() {
    if let Some(app) = spawn(StoreKind::Postgres).await {
        every_metric_family_is_scraped(app).await;
    }
}

/// Waits until `/readyz` answers `status` with a body containing `says`.
async fn readyz_until(addr: SocketAddr, status: u16, says: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (got, body) = get(addr, "/readyz").await;
        if got == status && body.contains(says) {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {got}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `grpc.health.v1` status of `service`.
async fn health(app: &TestApp, service: &str) -> ServingStatus {
    let channel = app.channel(SHANGHAI, Profile::System).await;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status()
}

/// Runs `sql` on the PostgreSQL server's maintenance database (not the one under test).
async fn on_server(sql: &str) {
    use sqlx::Connection as _;
    let url = std::env::var("YRD_TEST_POSTGRES_URL").expect("set for the PostgreSQL half");
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to the PostgreSQL server");
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_store_on_postgres() {
    let Some(app) = spawn(StoreKind::Postgres).await else {
        return;
    };
    let addr = app.metrics_addr.expect("the admin listener is configured");
    readyz_until(addr, 200, "ready").await;
    assert_eq!(health(&app, "readiness").await, ServingStatus::Serving);
    assert_eq!(health(&app, "").await, ServingStatus::Serving);

    // The database refuses new connections and its sessions are ended: the store is
    // unreachable for the server, as when PostgreSQL is down or the network is cut.
    let database = app
        .database_url()
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .expect("a database name")
        .to_owned();
    on_server(&format!(
        "ALTER DATABASE {database} ALLOW_CONNECTIONS false"
    ))
    .await;
    on_server(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
    ))
    .await;
    // (A probe that was between its two queries may first report the log unreadable.)
    readyz_until(addr, 503, "store unreachable").await;
    let (status, _) = get(addr, "/livez").await;
    assert_eq!(status, 200, "still live: the process answers");
    let (status, text) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "metrics are served while the store is down");
    assert_eq!(value(&text, "yrd_ready", &[]), Some(0.0), "{text}");

    on_server(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true")).await;
    readyz_until(addr, 200, "ready").await;
    assert_eq!(health(&app, "readiness").await, ServingStatus::Serving);
    app.shutdown().await.expect("clean shutdown");
}
