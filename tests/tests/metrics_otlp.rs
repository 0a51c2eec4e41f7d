//! Metrics over OTLP (issue 20): with `telemetry.otlp_endpoint` set, the server pushes its
//! metrics to the collector every `metrics.export_interval_ms`, under its `service.name`, with
//! the same families `/metrics` shows (`docs/metrics.md`). The collector is an in-process tonic
//! `MetricsService` on 127.0.0.1:0 that forwards what it receives into a channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use tokio::sync::mpsc;
use yrd_domain::Profile;
use yrd_domain::clock::SystemClock;
use yrd_e2e::{JIANGSU, StoreKind, TestApp};

/// What the server's service is called in the export.
const SERVICE: &str = "yrd-metrics-test";
const ISSUE_TOKEN: &str = "/yrd.exchange.v1.TokenService/IssueToken";

/// The in-process OTLP collector.
struct Collector {
    exports: mpsc::UnboundedSender<ExportMetricsServiceRequest>,
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let _ = self.exports.send(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// The calls to `method` answered OK that `export` counts, when it carries the counter.
fn ok_calls(export: &ExportMetricsServiceRequest, method: &str) -> Option<u64> {
    export
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .filter(|m| m.name == "yrd_rpc_calls")
        .find_map(|m| match &m.data {
            Some(Data::Sum(sum)) => sum.data_points.iter().find_map(|p| {
                let labelled = string_attribute(&p.attributes, "method") == Some(method)
                    && string_attribute(&p.attributes, "code") == Some("OK");
                match p.value {
                    Some(
                        opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(n),
                    ) if labelled => u64::try_from(n).ok(),
                    _ => None,
                }
            }),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reach_the_otlp_collector() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("collector port");
    let addr = listener.local_addr().expect("collector address");
    let (tx, mut exports) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::new(Collector { exports: tx }))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let app = TestApp::spawn_with(
        StoreKind::Sqlite,
        |settings| {
            settings.telemetry.otlp_endpoint = Some(format!("http://{addr}"));
            settings.telemetry.service_name = SERVICE.to_owned();
            settings.metrics.export_interval_ms = 200;
        },
        Arc::new(SystemClock),
    )
    .await
    .expect("SQLite is always available");
    // Two tokens: two IssueToken calls answered OK.
    for _ in 0..2 {
        app.session(JIANGSU, Profile::System).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let export = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let export = tokio::time::timeout(left, exports.recv())
            .await
            .expect("the collector receives both calls within 20 s")
            .expect("the collector runs");
        if ok_calls(&export, ISSUE_TOKEN).is_some_and(|n| n >= 2) {
            break export;
        }
    };
    let resource = export.resource_metrics[0]
        .resource
        .as_ref()
        .expect("a resource");
    assert_eq!(
        string_attribute(&resource.attributes, "service.name"),
        Some(SERVICE)
    );
    let names: Vec<&str> = export
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.as_str())
        .collect();
    for family in [
        "yrd_rpc_calls",
        "yrd_rpc_duration_seconds",
        "yrd_store_commit_batch_size",
        "yrd_audit_sequencer_leader",
        "yrd_audit_tree_size",
        "yrd_certificate_expiry_seconds",
    ] {
        assert!(names.contains(&family), "{family} not exported: {names:?}");
    }
    app.shutdown().await.expect("clean shutdown");
}
