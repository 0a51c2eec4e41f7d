//! What the exchange-log suites (`audit_log.rs`, `audit_cli.rs`) share: `yrd audit` run as an
//! auditor types it, traced partner calls, polling for the sequencer, and a server whose
//! database a tamper test can reach with raw SQL.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use yrd_domain::Profile;
use yrd_domain::clock::SystemClock;
use yrd_e2e::{SHANGHAI, StoreKind, TestApp};
use yrd_gateway::audit_check::{LogKeys, VerifiedHead};
use yrd_gateway::audit_cli::{self, AuditCliError};
use yrd_gateway::cli::{Cli, Command};
use yrd_proto::v1::audit_service_client::AuditServiceClient;
use yrd_proto::v1::token_service_client::TokenServiceClient;
use yrd_proto::v1::{GetJwksRequest, GetTreeHeadRequest};

/// Runs `yrd <line> --server ADDR --data-dir DIR` in-process, as the auditor types it (the
/// dev certificate defaults to Shanghai's auditor), and answers what it printed.
pub async fn audit(app: &TestApp, line: &str) -> Result<String, AuditCliError> {
    let data_dir = app.pki_dir.parent().expect("pki under the data folder");
    let words: Vec<String> = std::iter::once("yrd".to_owned())
        .chain(line.split_whitespace().map(str::to_owned))
        .chain([
            "--server".to_owned(),
            app.addr.to_string(),
            "--data-dir".to_owned(),
            path(data_dir),
        ])
        .collect();
    let command = match Cli::try_parse_from(&words) {
        Ok(Cli {
            command: Command::Audit(command),
        }) => command,
        Ok(other) => panic!("not an audit command: {other:?}"),
        Err(e) => panic!("yrd {line}: {e}"),
    };
    let mut out = Vec::new();
    audit_cli::run(command, &mut out).await?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

/// [`audit`], which must succeed.
pub async fn audit_ok(app: &TestApp, line: &str) -> String {
    audit(app, line)
        .await
        .unwrap_or_else(|e| panic!("yrd {line}: {e:#}\n{e:?}"))
}

/// A path as one shell word (temporary folders have no spaces).
pub fn path(p: &Path) -> String {
    let text = p.to_str().expect("UTF-8 path");
    assert!(!text.contains(char::is_whitespace), "{text}");
    text.to_owned()
}

/// A printed JSON array.
pub fn json_array(text: &str) -> Vec<Value> {
    match serde_json::from_str(text) {
        Ok(Value::Array(items)) => items,
        other => panic!("not a JSON array: {other:?}\n{text}"),
    }
}

/// A fresh W3C trace id, as a partner system would start one.
pub fn new_trace() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `message` as a request carrying `traceparent` for `trace` (a partner's span in it).
pub fn traced<T>(message: T, trace: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(trace) = trace {
        let value = format!("00-{trace}-00f067aa0ba902b7-01");
        request
            .metadata_mut()
            .insert("traceparent", value.parse().expect("ASCII"));
    }
    request
}

/// Polls `probe` every 50 ms until it answers `Some`, for at most 20 s (the sequencer signs a
/// head every 200 ms while there is traffic); panics naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 20 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The entries of `trace`, as `yrd audit query --trace-id … --json` prints them.
pub async fn entries_with_trace(app: &TestApp, trace: &str) -> Vec<Value> {
    json_array(&audit_ok(app, &format!("audit query --trace-id {trace} --json")).await)
}

/// The latest signed tree head, its signature checked against the published log key; `None`
/// while the sequencer has published none.
pub async fn latest_head(app: &TestApp) -> Option<VerifiedHead> {
    let auditor = app.session(SHANGHAI, Profile::Auditor).await;
    let jwks = TokenServiceClient::new(auditor.channel.clone())
        .get_jwks(GetJwksRequest {})
        .await
        .expect("JWKS")
        .into_inner();
    let sth = match AuditServiceClient::new(auditor.authed())
        .get_tree_head(GetTreeHeadRequest { tree_size: None })
        .await
    {
        Ok(answer) => answer.into_inner().tree_head.expect("tree_head"),
        Err(status) if status.code() == tonic::Code::NotFound => return None,
        Err(status) => panic!("GetTreeHead: {status:?}"),
    };
    Some(
        LogKeys::from_jwks(&jwks)
            .verify_tree_head(&sth)
            .expect("the head is signed by the log key"),
    )
}

/// Waits until a signed tree head covers at least `size` entries.
pub async fn head_covering(app: &TestApp, size: u64) -> VerifiedHead {
    wait_for(
        &format!("a tree head of size {size} or more"),
        || async move { latest_head(app).await.filter(|head| head.tree_size >= size) },
    )
    .await
}

/// A server whose database URL the test knows, for raw SQL behind the server's back.
pub async fn spawn_with_database(kind: StoreKind) -> Option<(TestApp, String)> {
    let mut url = None;
    let app = TestApp::spawn_with(
        kind,
        |settings| url = Some(settings.database_url.clone()),
        Arc::new(SystemClock),
    )
    .await?;
    Some((app, url.expect("the settings name the database")))
}
