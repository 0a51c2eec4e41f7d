//! The server as a whole: reflection lists the contract, a second start reuses what the first
//! made, and a shutdown lets calls in flight finish.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use yrd_domain::Profile;
use yrd_domain::clock::SystemClock;
use yrd_e2e::{SHANGHAI, StoreKind, TestApp, ZHEJIANG, on_both_stores};

on_both_stores!(
    reflection_lists_every_v1_service,
    calls_outside_the_contract_are_unimplemented
);

async fn reflection_lists_every_v1_service(app: TestApp) {
    let mut client = ServerReflectionClient::new(app.channel(ZHEJIANG, Profile::System).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection stream")
        .into_inner();
    let response = responses
        .next()
        .await
        .expect("one response")
        .expect("reflection answer");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!(
            "expected a service list, got {:?}",
            response.message_response
        );
    };
    let listed: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in yrd_proto::SERVICE_NAMES {
        assert!(listed.contains(*name), "{name} missing from {listed:?}");
    }
    assert!(listed.contains("grpc.health.v1.Health"), "{listed:?}");
    assert!(
        listed.contains("grpc.reflection.v1.ServerReflection"),
        "{listed:?}"
    );
}

/// A method outside the contract (a partner built against a newer or mistyped contract) is
/// answered UNIMPLEMENTED by the router, not refused as if it were a known method.
async fn calls_outside_the_contract_are_unimplemented(app: TestApp) {
    let session = app.session(SHANGHAI, Profile::System).await;
    let mut grpc = tonic::client::Grpc::new(session.authed());
    for path in [
        "/yrd.exchange.v1.SpotCheckService/PurgeResults",
        "/yrd.exchange.v2.SpotCheckService/SearchResults",
    ] {
        grpc.ready().await.expect("ready");
        let status = grpc
            .unary::<(), (), _>(
                tonic::Request::new(()),
                http::uri::PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .expect_err("no such method");
        assert_eq!(
            status.code(),
            tonic::Code::Unimplemented,
            "{path}: {status:?}"
        );
    }
}

#[tokio::test]
async fn a_second_start_reuses_the_data_folder() {
    let data_dir = tempfile::tempdir().expect("temp");
    // A server on SQLite in `data_dir`, started as often as asked.
    let start = || {
        let dir = data_dir.path().to_owned();
        TestApp::spawn_with(
            StoreKind::Sqlite,
            move |s: &mut yrd_gateway::config::Settings| {
                s.data_dir = dir;
                s.database_url = String::new();
            },
            Arc::new(SystemClock),
        )
    };
    let first = start().await.expect("first start");
    let ca_before = std::fs::read(first.pki_dir.join("ca.pem")).expect("CA");
    let cert_before =
        std::fs::read(first.client_files(SHANGHAI, Profile::System).cert).expect("agency cert");
    let agencies_before = first.store.list_agencies().await.expect("agencies");
    first.shutdown().await.expect("first shutdown");

    let second = start().await.expect("second start");
    assert_eq!(
        std::fs::read(second.pki_dir.join("ca.pem")).expect("CA"),
        ca_before
    );
    assert_eq!(
        std::fs::read(second.client_files(SHANGHAI, Profile::System).cert).expect("cert"),
        cert_before
    );
    assert_eq!(
        second.store.list_agencies().await.expect("agencies"),
        agencies_before
    );
    assert_eq!(agencies_before.len(), 5);
    // The certificate from the first start still admits its holder.
    let mut health = HealthClient::new(second.channel(SHANGHAI, Profile::System).await);
    let status = health
        .check(HealthCheckRequest::default())
        .await
        .expect("health")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
}

#[tokio::test]
async fn shutdown_tells_watchers_and_waits_for_calls_in_flight() {
    let app = TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite");
    let addr = app.addr;
    let files = app.client_files(SHANGHAI, Profile::System);
    let mut health = HealthClient::new(app.channel_with(&files).await);
    let mut watch = health
        .watch(HealthCheckRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("first status").expect("status");
    assert_eq!(first.status(), ServingStatus::Serving);

    let mut shutdown = tokio::spawn(app.shutdown());
    // The call in flight is still served: it hears that the server is going away.
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("an update before the stream ends")
        .expect("a status")
        .expect("status");
    assert_eq!(next.status(), ServingStatus::NotServing);
    // The server has not finished while the stream is open: shutting down does not end
    // within a grace period, and would fail this check as soon as it did.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut shutdown)
            .await
            .is_err(),
        "shutdown must wait for the open call"
    );
    drop(watch);
    drop(health);
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown finishes once the call is gone")
        .expect("task")
        .expect("clean stop");
    // No new connections afterwards.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn an_idle_connection_is_closed_but_a_long_call_is_not() {
    let app = TestApp::spawn_with(
        StoreKind::Sqlite,
        |s| s.limits.idle_timeout_s = 1,
        Arc::new(SystemClock),
    )
    .await
    .expect("sqlite");
    // A connection that opens and then does nothing is closed after the idle timeout.
    let files = app.client_files(SHANGHAI, Profile::System);
    let cert = yrd_e2e::raw_tls::ClientCert {
        cert_pem: std::fs::read(&files.cert).expect("cert"),
        key_pem: std::fs::read(&files.key).expect("key"),
    };
    let closed =
        yrd_e2e::raw_tls::idle_until_closed(app.addr, &app.ca_pem(), &cert, Duration::from_secs(5))
            .await;
    let closed_after = closed.expect("the server closes an idle connection");
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed too early: {closed_after:?}"
    );

    // A call in flight (a health watch) keeps its connection open past the timeout.
    let mut health = HealthClient::new(app.channel_with(&files).await);
    let mut watch = health
        .watch(HealthCheckRequest::default())
        .await
        .expect("watch")
        .into_inner();
    watch.next().await.expect("first").expect("status");
    let still_open = tokio::time::timeout(Duration::from_millis(2_500), watch.next()).await;
    assert!(
        still_open.is_err(),
        "the watch stream ended during the idle period: {still_open:?}"
    );
}
