//! The audit layer: every call to the exchange — accepted or refused, including refused tokens
//! and permission denials — appends one leaf to the exchange log.
//!
//! It sits just inside the trace layer (so the leaf carries the call's trace and span ids) and
//! outside identity, token and limits (so their refusals are recorded too). It puts the call's
//! [`CallRecord`] into the request; what the inner layers and the handler learn comes back as
//! values in the response's extensions, read after the inner call — nothing is shared and
//! mutated: the token layer's [`TokenNote`] (officer, token id), the handler's
//! [`CallNote`](yrd_domain::audit::CallNote) (resources, request digest; carried by its error
//! status when it fails, see `yrd_call::reported_note`), and [`Written`](yrd_domain::audit::Written)
//! when a write handler appended the leaf itself in the transaction of its write, so this layer
//! appends no second one.
//!
//! The outcome of a unary call is read from the response headers: tonic answers refusals and
//! handler errors as "trailers-only" responses with `grpc-status` in the headers; a response
//! without it succeeded. Its leaf is durable before the answer leaves: if the log cannot be
//! written, the call fails with `UNAVAILABLE`, since the exchange serves nothing it cannot
//! account for. A call answered `UNAVAILABLE` or `DEADLINE_EXCEEDED` served nothing: its leaf is
//! appended by a tracked task and the refusal leaves at once, so that a store that cannot be
//! reached is waited on once per call, not twice, and the request timeout's answer is not held
//! back by the store that made the call slow.
//!
//! A stream's outcome is only known when it ends, so a streaming call (see
//! `live::is_streaming`) that opened (no `grpc-status` in its headers) is logged then: its body
//! is wrapped in an [`AuditedBody`] that reads the status from the stream's trailers — `OK`, the
//! handler's error, or the refusal that ended it early (`UNAUTHENTICATED` for a certificate
//! revoked or a token expired mid-stream, `PERMISSION_DENIED` for a suspended agency) — or, when
//! the body is dropped before its trailers (the client cancelled or its connection went away),
//! `CANCELLED`. The leaf keeps the call's start time and carries its whole duration; it is
//! appended by a spawned task, as the body's end cannot wait on the store (should that append
//! fail, the error is logged: what the stream delivered cannot be taken back). A stream refused at
//! its start is a trailers-only response and is logged before the answer, as a unary call is.
//! Health checks are not exchange calls and are not logged.

use std::task::Poll;
use std::time::Instant;

use tokio_util::task::TaskTracker;
use yrd_domain::audit::{CallNote, CallRecord, TokenNote};
use yrd_domain::clock::Clock;
use yrd_store::Store;

use crate::server::intercept::{
    Answer, Inner, Intercept, Polled, Request, Watch, intercepted_layer, take_ready, watched,
};
use crate::server::tls::ConnInfo;
use crate::server::trace::TraceContext;

/// Appends one leaf per call.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    store: Store,
    clock: std::sync::Arc<dyn Clock>,
    /// The appends of ended streams' leaves still running.
    pending: TaskTracker,
}

impl AuditLayer {
    /// The layer, appending to `store`, timing calls by `clock`.
    pub fn new(store: Store, clock: std::sync::Arc<dyn Clock>) -> Self {
        AuditLayer {
            store,
            clock,
            pending: TaskTracker::new(),
        }
    }

    /// The appends of ended streams' leaves still running: the server waits for them (after
    /// `close`) before it closes the store, so a stream ended by the shutdown is still logged.
    pub fn pending_leaves(&self) -> TaskTracker {
        self.pending.clone()
    }
}

intercepted_layer!(AuditLayer);

impl<B: Send + 'static> Intercept<B> for AuditLayer {
    fn intercept<S: Inner<B>>(&self, inner: &mut S, mut request: Request<B>) -> Answer<S::Error> {
        let mut inner = take_ready(inner);
        let method = request.uri().path().to_owned();
        if method.starts_with("/grpc.health.v1.") {
            return Box::pin(inner.call(request));
        }
        let (trace_id, span_id) = request
            .extensions()
            .get::<TraceContext>()
            .map(|t| (t.trace_id.clone(), t.span_id.clone()))
            .unwrap_or_default();
        let peer = request
            .extensions()
            .get::<ConnInfo>()
            .and_then(|c| c.peer.identity.as_ref().ok().cloned());
        let record = CallRecord {
            time_us: i64::try_from(self.clock.now().unix_timestamp_nanos() / 1_000)
                .unwrap_or(i64::MAX),
            started: Instant::now(),
            trace_id,
            span_id,
            agency: peer
                .as_ref()
                .map(|p| p.agency.to_string())
                .unwrap_or_default(),
            cert_fingerprint: peer
                .as_ref()
                .map(|p| p.cert_fingerprint.clone())
                .unwrap_or_default(),
            profile: peer
                .as_ref()
                .map(|p| p.profile.as_str().to_owned())
                .unwrap_or_default(),
            method,
        };
        request.extensions_mut().insert(record.clone());
        let store = self.store.clone();
        let pending = self.pending.clone();
        let streaming = crate::server::live::is_streaming(&record.method);
        Box::pin(async move {
            let response = inner.call(request).await?;
            if outcome(response.headers()).0 == 0 {
                let note = yrd_call::reported_note(response.extensions());
                link_cases(&store, &record, &note.resources).await;
            }
            if yrd_call::leaf_written(response.extensions()) {
                return Ok(response);
            }
            let token = response
                .extensions()
                .get::<TokenNote>()
                .cloned()
                .unwrap_or_default();
            let note = yrd_call::reported_note(response.extensions());
            if streaming && !response.headers().contains_key("grpc-status") {
                // Opened: its leaf is written when it ends, with the outcome it had.
                let on_end = Some(append_stream_leaf(store, record, token, note, pending));
                return Ok(response.map(|body| watched(body, AuditedBody { on_end })));
            }
            let (code, message) = outcome(response.headers());
            let leaf = record.leaf(&token, &note, code, &message);
            if WITHOUT_WAITING.contains(&code) {
                // Refused because the store could not serve it (UNAVAILABLE) or not in time
                // (DEADLINE_EXCEEDED): the call served nothing, so its leaf need not be durable
                // before the refusal, and waiting on that store again would double how long a
                // refusal takes while the database is down, or hold back the answer of the
                // request timeout (docs/reliability.md, "Database outage", "Request timeout").
                pending.spawn(async move {
                    if let Err(e) = store.append_leaf(&leaf).await {
                        tracing::warn!(error = %e, method = %leaf.method, code, "exchange log append failed for a refused call");
                    }
                });
                return Ok(response);
            }
            match store.append_leaf(&leaf).await {
                Ok(_) => Ok(response),
                Err(e) => {
                    tracing::error!(error = %e, method = %leaf.method, "exchange log append failed; refusing the call");
                    let status = if yrd_call::error::is_disk_full(&e) {
                        tonic::Status::resource_exhausted(yrd_call::error::STORE_DISK_FULL)
                    } else if yrd_call::error::is_read_only(&e) {
                        tonic::Status::unavailable(yrd_call::error::STORE_READ_ONLY)
                    } else {
                        tonic::Status::unavailable(
                            "the exchange log is unavailable; the call was not served",
                        )
                    };
                    Ok(status.into_http())
                }
            }
        })
    }
}

/// Links the call's server span to the call that formed each case the call named
/// (`cases/{id}` among its resources): one trace per case in the OTLP export (docs/cases.md,
/// "One trace per case"). The call that formed the case links to nothing. A case whose trace
/// cannot be read is passed over with a warning: tracing never fails a call.
async fn link_cases(store: &Store, record: &CallRecord, resources: &[String]) {
    for id in resources.iter().filter_map(|r| r.strip_prefix("cases/")) {
        match store.case_trace(id).await {
            Ok(Some((trace_id, span_id))) if trace_id != record.trace_id => {
                crate::server::trace::link_current(&trace_id, &span_id);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, case = id, "the case's trace was not read; no span link")
            }
        }
    }
}

/// The gRPC code `CANCELLED`, the outcome of a stream whose body was dropped before it ended.
const CANCELLED: i32 = 1;

/// The gRPC codes `DEADLINE_EXCEEDED` and `UNAVAILABLE`: a call refused so is logged without
/// holding back its answer (see `AuditService::call`).
const WITHOUT_WAITING: [i32; 2] = [4, 14];

/// What a stream's end reports: its gRPC `(code, message)`.
type OnEnd = Box<dyn FnOnce(i32, String) + Send>;

/// The watch of a streaming response body: it reports the stream's outcome once, when the
/// stream ends: the status of its trailers (or of its error), or `CANCELLED` when the body is
/// dropped before them.
struct AuditedBody {
    /// Taken when the outcome is reported.
    on_end: Option<OnEnd>,
}

impl AuditedBody {
    fn report(&mut self, code: i32, message: String) {
        if let Some(on_end) = self.on_end.take() {
            on_end(code, message);
        }
    }
}

/// Appends the leaf of a stream that ended with `code`, in a task of its own: the body ends
/// (or is dropped) at once, and the leaf keeps the call's start time.
fn append_stream_leaf(
    store: Store,
    record: CallRecord,
    token: TokenNote,
    note: CallNote,
    pending: TaskTracker,
) -> OnEnd {
    Box::new(move |code, message| {
        let leaf = record.leaf(&token, &note, code, &message);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(method = %leaf.method, code, "stream ended outside the runtime; its exchange-log leaf is lost");
            return;
        };
        pending.spawn_on(async move {
            if let Err(e) = store.append_leaf(&leaf).await {
                tracing::error!(error = %e, method = %leaf.method, code, "exchange log append failed for an ended stream");
            }
        }, &runtime);
    })
}

impl Watch for AuditedBody {
    fn saw(&mut self, polled: &Polled) {
        let seen = match polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(outcome),
            Poll::Ready(Some(Err(status))) => {
                Some((status.code() as i32, status.message().to_owned()))
            }
            // Ended with no trailers at all: nothing went wrong that the stream reported.
            Poll::Ready(None) => Some((0, String::new())),
            Poll::Pending => None,
        };
        if let Some((code, message)) = seen {
            self.report(code, message);
        }
    }

    fn dropping(&mut self) {
        // Dropped before the stream's status was seen: the client went away.
        self.report(
            CANCELLED,
            "the stream ended before its status: the client cancelled it or the connection closed"
                .to_owned(),
        );
    }
}

/// The gRPC status of a response as far as its headers tell: `(code, message)`.
fn outcome(headers: &http::HeaderMap) -> (i32, String) {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    (code, message)
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2 spec).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use std::sync::{Arc, Mutex};

    /// Where a test body's reported outcomes land.
    type Reported = Arc<Mutex<Vec<(i32, String)>>>;

    /// An audited body over `frames`, and where its reported outcome lands.
    fn audited(
        frames: Vec<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>,
    ) -> (tonic::body::Body, Reported) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let body = tonic::body::Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            frames,
        )));
        let on_end: OnEnd = Box::new(move |code, message| {
            if let Ok(mut seen) = sink.lock() {
                seen.push((code, message));
            }
        });
        let on_end = Some(on_end);
        (watched(body, AuditedBody { on_end }), seen)
    }

    fn trailers(code: &'static str, message: &'static str) -> http_body::Frame<bytes::Bytes> {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static(code));
        headers.insert("grpc-message", http::HeaderValue::from_static(message));
        http_body::Frame::trailers(headers)
    }

    fn reported(seen: &Mutex<Vec<(i32, String)>>) -> Vec<(i32, String)> {
        seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_stream_reports_the_status_of_its_trailers_once() {
        let (body, seen) = audited(vec![
            Ok(http_body::Frame::data(bytes::Bytes::from_static(b"m"))),
            Ok(trailers(
                "16",
                "the%20client%20certificate%20has%20been%20revoked",
            )),
        ]);
        let _ = body.collect().await;
        assert_eq!(
            reported(&seen),
            vec![(16, "the client certificate has been revoked".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_stream_dropped_before_its_trailers_reports_cancelled() {
        let (mut body, seen) = audited(vec![
            Ok(http_body::Frame::data(bytes::Bytes::from_static(b"m"))),
            Ok(trailers("0", "")),
        ]);
        let _ = body.frame().await;
        assert!(reported(&seen).is_empty(), "still open");
        drop(body);
        let outcome = reported(&seen);
        assert_eq!(outcome.len(), 1);
        assert_eq!(outcome[0].0, CANCELLED);
    }

    #[tokio::test]
    async fn a_stream_error_is_its_outcome() {
        let (body, seen) = audited(vec![Err(tonic::Status::internal("broke"))]);
        let _ = body.collect().await;
        assert_eq!(reported(&seen), vec![(13, "broke".to_owned())]);
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(
            percent_decode("access%20token%3A%20%E6%8B%92"),
            "access token: 拒"
        );
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn outcome_reads_trailers_only_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(outcome(&headers), (0, String::new()));
        headers.insert("grpc-status", http::HeaderValue::from_static("16"));
        headers.insert("grpc-message", http::HeaderValue::from_static("no%20token"));
        assert_eq!(outcome(&headers), (16, "no token".to_owned()));
    }
}
