//! Distributed tracing end to end (issue 4): a partner's W3C `traceparent` becomes the parent of
//! the exchange's server span, the span reaches an OTLP collector with the method and agency
//! and no personal data, and the partner gets the trace id back in `x-trace-id`.
//!
//! The collector is in-process: a tonic `TraceService` on 127.0.0.1:0 that forwards every span
//! it receives into a channel; the test waits on that channel (after a force flush), never on a
//! sleep. `yrd_gateway::telemetry::init` installs the process's global subscriber, which can
//! happen once per process, so this file is its own test binary with **one** test that
//! initialises telemetry first and then tells the whole story.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use tokio::sync::mpsc;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use yrd_domain::Profile;
use yrd_e2e::fixtures::{non_conforming_toy, online_seller};
use yrd_e2e::{JIANGSU, SHANDONG, SHANGHAI, StoreKind, TestApp, next_monday_morning};
use yrd_gateway::telemetry::{self, TelemetrySettings};
use yrd_proto::v1::admin_service_client::AdminServiceClient;
use yrd_proto::v1::token_service_client::TokenServiceClient;
use yrd_proto::v1::{self as pb, GetJwksRequest, ListAgenciesRequest};

/// The partner's trace and span, as its own tracing system would send them.
const PARTNER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARTNER_SPAN: &str = "00f067aa0ba902b7";
/// A second partner trace, for the authenticated call.
const ADMIN_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const ADMIN_SPAN: &str = "b7ad6b7169203331";
/// A third partner trace, for a call the token layer refuses.
const REFUSED_TRACE: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const REFUSED_SPAN: &str = "1234567890abcdef";
/// The acting officer named in the admin's token: personal data that must appear in no span.
const OFFICER: &str = "王小明-officer-0042";

const GET_JWKS: &str = "yrd.exchange.v1.TokenService/GetJwks";
const LIST_AGENCIES: &str = "yrd.exchange.v1.AdminService/ListAgencies";
const PUBLISH_RESULT: &str = "yrd.exchange.v1.SpotCheckService/PublishResult";
const GET_RESULT: &str = "yrd.exchange.v1.SpotCheckService/GetResult";

/// A span as the collector received it, with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Received {
    service_name: Option<String>,
    span: Span,
}

/// The in-process OTLP collector.
struct Collector {
    spans: mpsc::UnboundedSender<Received>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let service_name = resource_spans
                .resource
                .as_ref()
                .and_then(|r| string_attribute(&r.attributes, "service.name"));
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    let _ = self.spans.send(Received {
                        service_name: service_name.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Starts the collector; answers its endpoint and the stream of spans it receives.
async fn start_collector() -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("collector port");
    let addr = listener.local_addr().expect("collector address");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector { spans: tx }))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), rx)
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::IntValue(i)) => Some(*i),
            _ => None,
        })
}

/// Every text of a span: its name and each string attribute value.
fn texts(span: &Span) -> Vec<String> {
    let mut all = vec![span.name.clone()];
    all.extend(span.attributes.iter().filter_map(|kv| {
        kv.value.as_ref().and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
    }));
    all
}

/// Adds the given ASCII headers to every call.
fn with_headers(
    headers: Vec<(&'static str, String)>,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    let headers: Vec<(&'static str, AsciiMetadataValue)> = headers
        .into_iter()
        .map(|(k, v)| (k, v.parse().expect("an ASCII header value")))
        .collect();
    move |mut request: tonic::Request<()>| {
        for (key, value) in &headers {
            request.metadata_mut().insert(*key, value.clone());
        }
        Ok(request)
    }
}

fn header(metadata: &MetadataMap, name: &str) -> String {
    metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("response header {name} missing"))
        .to_owned()
}

/// What one call's response said about its trace.
#[derive(Debug)]
struct Answered {
    x_trace_id: String,
    traceparent: String,
}

impl Answered {
    fn from(metadata: &MetadataMap) -> Answered {
        Answered {
            x_trace_id: header(metadata, "x-trace-id"),
            traceparent: header(metadata, "traceparent"),
        }
    }

    /// The span id the exchange named in its `traceparent`.
    fn span_id(&self) -> &str {
        self.traceparent.split('-').nth(2).unwrap_or_default()
    }
}

/// Receives spans until `want` holds for the collection, or fails after `within`.
async fn spans_until(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    seen: &mut Vec<Received>,
    within: Duration,
    want: impl Fn(&[Received]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !want(seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(span)) => seen.push(span),
            Ok(None) => panic!("the collector stopped"),
            Err(_) => panic!(
                "spans expected within {within:?} never arrived; received: {:#?}",
                seen.iter()
                    .map(|r| (&r.span.name, hex(&r.span.trace_id)))
                    .collect::<Vec<_>>()
            ),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn server_span<'a>(seen: &'a [Received], name: &str, trace_id: &str) -> Option<&'a Received> {
    seen.iter()
        .find(|r| r.span.name == name && hex(&r.span.trace_id) == trace_id)
}

/// Publishes, as `agency`, a non-conforming toy made in Shandong with model `model` and sold
/// in `seller_region` (the products of docs/cases.md's scenario): the result and the ids the
/// exchange answered.
async fn publish_toy(
    app: &TestApp,
    agency: &str,
    seller_region: &str,
    model: &str,
) -> (pb::SpotCheckResult, Answered) {
    let mut result = non_conforming_toy("370102", seller_region, next_monday_morning());
    result.seller = Some(online_seller("某商贸有限公司", seller_region));
    if let Some(product) = result.product.as_mut() {
        product.model = model.into();
    }
    let response = app
        .as_agency(agency)
        .await
        .results
        .publish_result(pb::PublishResultRequest {
            request_id: format!("trace-{agency}-{model}"),
            result: Some(result),
        })
        .await
        .expect("published");
    let answered = Answered::from(response.metadata());
    let result = response.into_inner().result.expect("the result");
    (result, answered)
}

/// The `(trace id, span id)` of every link of `span`, in hex.
fn links(span: &Span) -> Vec<(String, String)> {
    span.links
        .iter()
        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_traces_continue_into_the_exchange_and_reach_the_collector() {
    let (endpoint, mut rx) = start_collector().await;
    let guard = telemetry::init(&TelemetrySettings {
        otlp_endpoint: Some(endpoint),
        ..TelemetrySettings::default()
    })
    .expect("telemetry starts (first subscriber of this test binary)");
    assert!(guard.exporting());
    let app = TestApp::spawn(StoreKind::Sqlite).await.expect("sqlite");

    // 1. A partner call carrying its trace.
    let channel = app.channel(SHANDONG, Profile::System).await;
    let partner = with_headers(vec![(
        "traceparent",
        format!("00-{PARTNER_TRACE}-{PARTNER_SPAN}-01"),
    )]);
    let response = TokenServiceClient::with_interceptor(channel.clone(), partner)
        .get_jwks(GetJwksRequest {})
        .await
        .expect("GetJwks with a traceparent");
    let continued = Answered::from(response.metadata());
    assert_eq!(
        continued.x_trace_id, PARTNER_TRACE,
        "the partner's trace continues"
    );
    assert!(
        continued
            .traceparent
            .starts_with(&format!("00-{PARTNER_TRACE}-"))
            && continued.span_id() != PARTNER_SPAN
            && continued.traceparent.ends_with("-01"),
        "the answer names the exchange's own span: {}",
        continued.traceparent
    );

    // 2. A call without a traceparent, and one with a malformed one: each starts a new trace.
    let response = TokenServiceClient::new(channel.clone())
        .get_jwks(GetJwksRequest {})
        .await
        .expect("GetJwks without a traceparent");
    let fresh = Answered::from(response.metadata());
    let malformed = with_headers(vec![(
        "traceparent",
        format!("00-{}-{PARTNER_SPAN}-01", PARTNER_TRACE.to_uppercase()),
    )]);
    let response = TokenServiceClient::with_interceptor(channel.clone(), malformed)
        .get_jwks(GetJwksRequest {})
        .await
        .expect("a malformed traceparent is no error");
    let restarted = Answered::from(response.metadata());
    for answered in [&fresh, &restarted] {
        assert_eq!(answered.x_trace_id.len(), 32, "{answered:?}");
        assert_ne!(answered.x_trace_id, PARTNER_TRACE, "{answered:?}");
        assert_ne!(answered.x_trace_id, "0".repeat(32), "{answered:?}");
    }
    assert_ne!(
        fresh.x_trace_id, restarted.x_trace_id,
        "each call its own trace"
    );

    // 3. An authenticated call by an admin whose token names an acting officer.
    let admin_channel = app.channel(SHANGHAI, Profile::Admin).await;
    let token = TestApp::token_over(&admin_channel, Some(OFFICER))
        .await
        .expect("a token naming the officer");
    let admin_headers = with_headers(vec![
        ("authorization", format!("Bearer {token}")),
        ("traceparent", format!("00-{ADMIN_TRACE}-{ADMIN_SPAN}-01")),
    ]);
    let response = AdminServiceClient::with_interceptor(admin_channel, admin_headers)
        .list_agencies(ListAgenciesRequest::default())
        .await
        .expect("the operator's admin lists agencies");
    let admin = Answered::from(response.metadata());
    assert_eq!(admin.x_trace_id, ADMIN_TRACE);

    // 4. A call the token layer refuses is traced too, and still answers its trace id.
    let no_token = with_headers(vec![(
        "traceparent",
        format!("00-{REFUSED_TRACE}-{REFUSED_SPAN}-01"),
    )]);
    let refused =
        AdminServiceClient::with_interceptor(app.channel(SHANDONG, Profile::Admin).await, no_token)
            .list_agencies(ListAgenciesRequest::default())
            .await
            .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(header(refused.metadata(), "x-trace-id"), REFUSED_TRACE);

    // 5. One trace per case (docs/cases.md): the publication that forms a case is the span every
    //    later call about the case links to; the first result was published before the case.
    let (first, _) = publish_toy(&app, SHANGHAI, "310104", "XK-100").await;
    let (_, forming) = publish_toy(&app, JIANGSU, "320106", "xk100").await;
    let response = app
        .as_agency(SHANGHAI)
        .await
        .results
        .get_result(pb::GetResultRequest {
            name: first.name.clone(),
        })
        .await
        .expect("the first result, now in a case");
    let read = Answered::from(response.metadata());

    // Hand everything ended so far to the collector, then wait for what we expect.
    let guard = tokio::task::spawn_blocking(move || guard.force_flush().map(|()| guard))
        .await
        .expect("flush task")
        .expect("the collector accepts the spans");
    let mut seen = Vec::new();
    spans_until(&mut rx, &mut seen, Duration::from_secs(20), |seen| {
        server_span(seen, GET_JWKS, PARTNER_TRACE).is_some()
            && server_span(seen, GET_JWKS, &fresh.x_trace_id).is_some()
            && server_span(seen, GET_JWKS, &restarted.x_trace_id).is_some()
            && server_span(seen, LIST_AGENCIES, ADMIN_TRACE).is_some()
            && server_span(seen, LIST_AGENCIES, REFUSED_TRACE).is_some()
            && server_span(seen, PUBLISH_RESULT, &forming.x_trace_id).is_some()
            && server_span(seen, GET_RESULT, &read.x_trace_id).is_some()
            && seen
                .iter()
                .any(|r| r.span.name == "token.verify" && hex(&r.span.trace_id) == ADMIN_TRACE)
            && seen
                .iter()
                .any(|r| r.span.name == "db.transaction" && hex(&r.span.trace_id) == ADMIN_TRACE)
    })
    .await;

    // The partner's call: a server span, child of the partner's span, in the partner's trace.
    let jwks = server_span(&seen, GET_JWKS, PARTNER_TRACE).expect("waited for");
    assert_eq!(jwks.service_name.as_deref(), Some("yrd-exchange"));
    let span = &jwks.span;
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(
        hex(&span.parent_span_id),
        PARTNER_SPAN,
        "partner's span is the parent"
    );
    assert_eq!(
        hex(&span.span_id),
        continued.span_id(),
        "traceparent names this span"
    );
    assert_eq!(continued.x_trace_id, hex(&span.trace_id));
    let attributes = &span.attributes;
    assert_eq!(
        string_attribute(attributes, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        string_attribute(attributes, "rpc.service").as_deref(),
        Some("yrd.exchange.v1.TokenService")
    );
    assert_eq!(
        string_attribute(attributes, "rpc.method").as_deref(),
        Some("GetJwks")
    );
    assert_eq!(
        string_attribute(attributes, "agency").as_deref(),
        Some(SHANDONG)
    );
    assert_eq!(int_attribute(attributes, "rpc.grpc.status_code"), Some(0));
    assert_eq!(
        span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Ok as i32)
    );

    // The calls without a usable traceparent: roots of new traces, named in `x-trace-id`.
    for answered in [&fresh, &restarted] {
        let root = &server_span(&seen, GET_JWKS, &answered.x_trace_id)
            .expect("waited for")
            .span;
        assert!(
            root.parent_span_id.is_empty(),
            "a new trace's root: {root:?}"
        );
        assert_eq!(hex(&root.span_id), answered.span_id());
        assert_eq!(
            string_attribute(&root.attributes, "agency").as_deref(),
            Some(SHANDONG)
        );
    }

    // The authenticated call: the token check is a child of its server span, and the agency is
    // recorded; the officer appears nowhere.
    let listed = &server_span(&seen, LIST_AGENCIES, ADMIN_TRACE)
        .expect("waited for")
        .span;
    assert_eq!(hex(&listed.parent_span_id), ADMIN_SPAN);
    assert_eq!(
        string_attribute(&listed.attributes, "agency").as_deref(),
        Some(SHANGHAI)
    );
    assert_eq!(
        string_attribute(&listed.attributes, "rpc.method").as_deref(),
        Some("ListAgencies")
    );
    let verify = seen
        .iter()
        .map(|r| &r.span)
        .find(|s| s.name == "token.verify" && hex(&s.trace_id) == ADMIN_TRACE)
        .expect("the token check of the admin's call");
    assert_eq!(
        verify.parent_span_id, listed.span_id,
        "token.verify is inside the call"
    );
    // The call's database transaction (its audit leaf) is a span of the call too.
    let transaction = seen
        .iter()
        .map(|r| &r.span)
        .find(|s| s.name == "db.transaction" && hex(&s.trace_id) == ADMIN_TRACE)
        .expect("the admin call's database transaction");
    assert_eq!(
        transaction.parent_span_id, listed.span_id,
        "the transaction is inside the call"
    );

    // The refused call: its span says whose call it was and how it ended; a caller's mistake
    // is not an error of the exchange, so the span status stays unset.
    let refused = &server_span(&seen, LIST_AGENCIES, REFUSED_TRACE)
        .expect("waited for")
        .span;
    assert_eq!(hex(&refused.parent_span_id), REFUSED_SPAN);
    assert_eq!(
        string_attribute(&refused.attributes, "agency").as_deref(),
        Some(SHANDONG)
    );
    assert_eq!(
        int_attribute(&refused.attributes, "rpc.grpc.status_code"),
        Some(tonic::Code::Unauthenticated as i64)
    );
    assert_eq!(
        refused.status.as_ref().map(|s| s.code).unwrap_or_default(),
        StatusCode::Unset as i32
    );

    // The case's calls: the forming publication links to nothing, the later read of the case's
    // first result links to the forming call's server span.
    let formed_span = &server_span(&seen, PUBLISH_RESULT, &forming.x_trace_id)
        .expect("waited for")
        .span;
    assert_eq!(hex(&formed_span.span_id), forming.span_id());
    assert!(links(formed_span).is_empty(), "{:?}", links(formed_span));
    let read_span = &server_span(&seen, GET_RESULT, &read.x_trace_id)
        .expect("waited for")
        .span;
    assert_eq!(
        links(read_span),
        [(forming.x_trace_id.clone(), forming.span_id().to_owned())],
        "the read of a case's result links to the call that formed the case"
    );

    for received in &seen {
        for text in texts(&received.span) {
            assert!(
                !text.contains(OFFICER) && !text.contains(&token),
                "personal data or a token in span {:?}: {text}",
                received.span.name
            );
        }
    }

    app.shutdown().await.expect("clean shutdown");
    drop(guard);
}
