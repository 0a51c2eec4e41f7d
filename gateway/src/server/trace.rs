//! The trace layer, outermost of the exchange's layers: every call gets its server span here,
//! before anything can refuse it, so refused calls are traced too.
//!
//! A partner that sends a W3C `traceparent` header (Trace Context, level 1) has its trace
//! continued: the exchange's span becomes a child of the partner's span. A missing or malformed
//! header starts a new trace; it is never an error, because tracing must not be a way to make a
//! call fail. The trace and span ids go into the request extensions as [`TraceContext`] (the
//! audit log records them) and back to the partner as `x-trace-id` and `traceparent` response
//! headers, so the partner can find the exchange's side of the trace.
//!
//! With OpenTelemetry on (see [`crate::server::telemetry`]) the ids are the exported span's own. With it
//! off the ids are still real: the partner's trace id continues with a fresh span id, so log
//! lines (which carry `trace_id`) and audit entries can be matched with the partner's trace.
//!
//! The span lives until the response body is finished, so streaming calls are timed whole, and
//! it records the gRPC status from the trailers (or from a trailers-only answer).

use std::fmt;
use std::sync::Arc;
use std::task::Poll;

use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::server::intercept::{
    Answer, Inner, Intercept, Polled, Request, Watch, intercepted_layer, watched,
};
use crate::server::tls::ConnInfo;

/// The W3C header a partner's trace arrives in, and the exchange's span leaves in.
pub const TRACEPARENT: &str = "traceparent";
/// The response header naming the trace of the call, for partners without a tracing system.
pub const X_TRACE_ID: &str = "x-trace-id";

/// The trace of one call, as the request extensions carry it to the inner layers, the handlers
/// and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id, 32 lowercase hex digits (never all zeros).
    pub trace_id: String,
    /// The exchange's server span id for this call, 16 lowercase hex digits (never all zeros).
    pub span_id: String,
    /// Whether the trace is sampled (recorded and exported).
    pub sampled: bool,
}

impl TraceContext {
    /// The `traceparent` header value that names this span (version 00).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id,
            self.span_id,
            if self.sampled { "01" } else { "00" }
        )
    }
}

/// A `traceparent` header that passed every check of W3C Trace Context §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent {
    /// The trace id (not all zeros).
    pub trace_id: [u8; 16],
    /// The partner's span, the parent of the exchange's (not all zeros).
    pub parent_id: [u8; 8],
    /// The trace flags; bit 0 is `sampled`, the others are kept as received.
    pub flags: u8,
}

/// Why a `traceparent` header was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceparentError {
    /// The header is not the `version-traceid-parentid-flags` shape.
    #[error(
        "traceparent must be `version-traceid-parentid-flags` (2, 32, 16 and 2 lowercase hex digits)"
    )]
    Shape,
    /// A field holds something other than lowercase hex digits.
    #[error("traceparent field {field} must be lowercase hex digits")]
    NotHex {
        /// The field: `version`, `trace-id`, `parent-id` or `trace-flags`.
        field: &'static str,
    },
    /// Version `ff` is forbidden by the specification.
    #[error("traceparent version ff is invalid")]
    ForbiddenVersion,
    /// Version 00 has exactly 55 characters.
    #[error("a version 00 traceparent has exactly 55 characters")]
    Version00Length,
    /// A later version carries more fields, but only after a dash.
    #[error("a traceparent of a later version may only continue after a `-`")]
    FutureVersionSuffix,
    /// The all-zero trace id is invalid.
    #[error("traceparent trace-id is all zeros")]
    ZeroTraceId,
    /// The all-zero parent id is invalid.
    #[error("traceparent parent-id is all zeros")]
    ZeroParentId,
}

impl Traceparent {
    /// Parses a header value per W3C Trace Context §3.2: version 00 exactly; a later version's
    /// first four fields are read as version 00's (§3.2.4, so partners on a newer version are
    /// still continued); version `ff`, upper-case hex and all-zero ids are refused.
    pub fn parse(value: &str) -> Result<Traceparent, TraceparentError> {
        let bytes = value.as_bytes();
        if bytes.len() < 55 {
            return Err(TraceparentError::Shape);
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(TraceparentError::Shape);
        }
        let version: [u8; 1] = hex_field(&bytes[0..2], "version")?;
        match version[0] {
            0xff => return Err(TraceparentError::ForbiddenVersion),
            0x00 if bytes.len() != 55 => return Err(TraceparentError::Version00Length),
            0x00 => {}
            _ if bytes.len() > 55 && bytes[55] != b'-' => {
                return Err(TraceparentError::FutureVersionSuffix);
            }
            _ => {}
        }
        let trace_id: [u8; 16] = hex_field(&bytes[3..35], "trace-id")?;
        let parent_id: [u8; 8] = hex_field(&bytes[36..52], "parent-id")?;
        let flags: [u8; 1] = hex_field(&bytes[53..55], "trace-flags")?;
        if trace_id == [0; 16] {
            return Err(TraceparentError::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(TraceparentError::ZeroParentId);
        }
        Ok(Traceparent {
            trace_id,
            parent_id,
            flags: flags[0],
        })
    }

    /// Whether the partner sampled its trace.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The one `traceparent` of a request, if there is exactly one and it is valid. Several
    /// headers are as good as a malformed one (§3.2: the receiver cannot know which to trust).
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Traceparent>, TraceparentError> {
        let mut values = headers.get_all(TRACEPARENT).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(TraceparentError::Shape);
        }
        let text = first.to_str().map_err(|_| TraceparentError::Shape)?;
        Traceparent::parse(text).map(Some)
    }
}

/// Lowercase hex only: the specification forbids upper case.
fn hex_field<const N: usize>(
    digits: &[u8],
    field: &'static str,
) -> Result<[u8; N], TraceparentError> {
    if !digits
        .iter()
        .all(|d| d.is_ascii_digit() || (b'a'..=b'f').contains(d))
    {
        return Err(TraceparentError::NotHex { field });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|_| TraceparentError::NotHex { field })?;
    Ok(out)
}

/// The `rpc.service` and `rpc.method` of a gRPC path, `/package.Service/Method`. Anything else
/// (a probe, a typo) is named `unknown`, so a caller cannot put arbitrary text in our spans.
fn rpc_names(path: &str) -> (&str, &str) {
    let named = path
        .strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .filter(|(service, method)| {
            let word = |s: &str, dots: bool| {
                !s.is_empty()
                    && s.len() <= 128
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || (dots && b == b'.'))
            };
            word(service, true) && word(method, false)
        });
    named.unwrap_or(("unknown", "unknown"))
}

/// Starts or continues the trace of every call. See the module docs.
#[derive(Clone)]
pub struct TraceLayer {
    ids: Arc<dyn IdGenerator>,
}

impl fmt::Debug for TraceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceLayer").finish_non_exhaustive()
    }
}

impl Default for TraceLayer {
    fn default() -> Self {
        TraceLayer::new()
    }
}

impl TraceLayer {
    /// The layer, drawing ids (when OpenTelemetry does not) from the system's random source.
    pub fn new() -> Self {
        TraceLayer::with_ids(Arc::new(RandomIdGenerator::default()))
    }

    /// The layer with an injected id source (tests pin the ids).
    pub fn with_ids(ids: Arc<dyn IdGenerator>) -> Self {
        TraceLayer { ids }
    }

    fn new_trace_id(&self) -> TraceId {
        loop {
            let id = self.ids.new_trace_id();
            if id != TraceId::INVALID {
                return id;
            }
        }
    }

    fn new_span_id(&self) -> SpanId {
        loop {
            let id = self.ids.new_span_id();
            if id != SpanId::INVALID {
                return id;
            }
        }
    }

    /// Opens the server span of a call, parented to the partner's when OpenTelemetry is on, and
    /// works out the ids the call is known by.
    fn open_span(&self, headers: &HeaderMap, path: &str) -> (tracing::Span, TraceContext) {
        let (service, method) = rpc_names(path);
        // A root in `tracing`'s eyes: whatever span the connection's task is in, a call's trace
        // is the partner's or a new one.
        let span = tracing::info_span!(
            parent: None,
            "grpc.server",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
            agency = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        let partner = match Traceparent::from_headers(headers) {
            Ok(partner) => partner,
            Err(why) => {
                tracing::debug!(parent: &span, reason = %why, "traceparent ignored; new trace");
                None
            }
        };
        if partner.is_some() {
            // Only a header our strict parser accepted reaches the propagator, so both agree
            // on what is a partner trace; the propagator also carries `tracestate` along.
            let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
            // Fails only when OpenTelemetry is off or the span is filtered out; then the ids
            // below are made by hand.
            let _ = span.set_parent(parent);
        }
        // Building the OpenTelemetry span now gives the ids it will be exported with.
        let otel = span.context().span().span_context().clone();
        let context = if otel.is_valid() {
            TraceContext {
                trace_id: otel.trace_id().to_string(),
                span_id: otel.span_id().to_string(),
                sampled: otel.is_sampled(),
            }
        } else {
            TraceContext {
                trace_id: partner
                    .map(|p| TraceId::from_bytes(p.trace_id))
                    .unwrap_or_else(|| self.new_trace_id())
                    .to_string(),
                span_id: self.new_span_id().to_string(),
                // Nothing is recorded here; the partner's decision is passed on unchanged.
                sampled: partner.is_some_and(|p| p.sampled()),
            }
        };
        span.record("trace_id", tracing::field::display(&context.trace_id));
        span.record("span_id", tracing::field::display(&context.span_id));
        (span, context)
    }
}

/// Reads request headers for the OpenTelemetry propagator.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

intercepted_layer!(TraceLayer);

impl<B> Intercept<B> for TraceLayer {
    fn intercept<S: Inner<B>>(&self, inner: &mut S, mut request: Request<B>) -> Answer<S::Error> {
        let (span, context) = self.open_span(request.headers(), request.uri().path());
        // The certificate was verified at the handshake; the identity layer may still refuse
        // it (expired, revoked), and the span then says whose call was refused.
        if let Some(Ok(identity)) = request
            .extensions()
            .get::<ConnInfo>()
            .map(|conn| &conn.peer.identity)
        {
            span.record("agency", identity.agency.as_str());
        }
        let headers = [
            HeaderValue::from_str(&context.trace_id),
            HeaderValue::from_str(&context.traceparent()),
        ];
        request.extensions_mut().insert(context);
        // The inner layers' synchronous work (the identity check) logs inside the span too.
        let response = span.in_scope(|| inner.call(request));
        let body_span = span.clone();
        Box::pin(
            async move {
                match response.await {
                    Ok(mut response) => {
                        if let [Ok(trace_id), Ok(traceparent)] = headers {
                            let out = response.headers_mut();
                            out.insert(X_TRACE_ID, trace_id);
                            out.insert(TRACEPARENT, traceparent);
                        }
                        // A trailers-only answer (a refusal by a layer) has its status here.
                        if let Some(code) = grpc_status(response.headers()) {
                            record_status(&body_span, code);
                        }
                        Ok(response.map(|body| watched(body, TracedBody { span: body_span })))
                    }
                    Err(error) => {
                        body_span.record("otel.status_code", "error");
                        Err(error)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// The `grpc-status` of a header or trailer map, when present and numeric.
pub(crate) fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Records the call's gRPC status and the OpenTelemetry span status it implies. For a server
/// span, only the codes that mean the exchange failed are errors (OpenTelemetry semantic
/// conventions for gRPC); a caller's mistake (`INVALID_ARGUMENT`, `PERMISSION_DENIED`, …)
/// leaves the status unset.
/// Adds to the current span (a call's server span, inside this layer) an OpenTelemetry link to
/// span `span_id` of trace `trace_id`, both in lowercase hex as the exchange records them. Ids
/// that are malformed or all zeros add nothing: a link is a pointer for the reader of the
/// traces, never a reason for a call to fail. Answers whether a link was added.
pub fn link_current(trace_id: &str, span_id: &str) -> bool {
    let (Ok(trace), Ok(span)) = (TraceId::from_hex(trace_id), SpanId::from_hex(span_id)) else {
        return false;
    };
    let linked = SpanContext::new(
        trace,
        span,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    if !linked.is_valid() {
        return false;
    }
    tracing::Span::current().add_link(linked);
    true
}

fn record_status(span: &tracing::Span, code: i32) {
    span.record("rpc.grpc.status_code", code);
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => {
            span.record("otel.status_code", "ok");
        }
        tonic::Code::Unknown
        | tonic::Code::DeadlineExceeded
        | tonic::Code::Unimplemented
        | tonic::Code::Internal
        | tonic::Code::Unavailable
        | tonic::Code::DataLoss => {
            span.record("otel.status_code", "error");
        }
        _ => {}
    }
}

/// The watch of a response body: it keeps the call's span open until the body is finished or
/// dropped, and records the status its trailers carry.
struct TracedBody {
    span: tracing::Span,
}

impl Watch for TracedBody {
    fn around(&mut self, poll: impl FnOnce() -> Polled) -> Polled {
        let _entered = self.span.enter();
        poll()
    }

    fn saw(&mut self, polled: &Polled) {
        if let Poll::Ready(Some(Ok(frame))) = polled {
            if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                record_status(&self.span, code);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use tower::{Layer as _, Service};

    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_version_00_header_is_read_field_by_field() {
        let tp = Traceparent::parse(VALID).expect("valid");
        assert_eq!(hex::encode(tp.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(tp.parent_id), "00f067aa0ba902b7");
        assert_eq!(tp.flags, 0x01);
        assert!(tp.sampled());
        let unsampled = Traceparent::parse(&VALID.replace("-01", "-00")).expect("valid");
        assert!(!unsampled.sampled());
        // Unknown flag bits are kept, and do not make the header invalid.
        let other_flags = Traceparent::parse(&VALID.replace("-01", "-ff")).expect("valid");
        assert_eq!(other_flags.flags, 0xff);
    }

    #[test]
    fn a_later_version_is_read_as_version_00_when_it_only_adds_fields() {
        let v1 = VALID.replacen("00", "01", 1);
        assert!(Traceparent::parse(&v1).is_ok(), "same length");
        assert!(
            Traceparent::parse(&format!("{v1}-extra")).is_ok(),
            "more fields"
        );
        assert_eq!(
            Traceparent::parse(&format!("{v1}x")),
            Err(TraceparentError::FutureVersionSuffix)
        );
    }

    #[test]
    fn every_invalid_form_is_refused_with_its_reason() {
        let cases: [(String, TraceparentError); 13] = [
            (String::new(), TraceparentError::Shape),
            (VALID[..54].to_owned(), TraceparentError::Shape),
            (format!("{VALID}-00"), TraceparentError::Version00Length),
            (VALID.replace('-', "_"), TraceparentError::Shape),
            (
                VALID.replacen("00", "ff", 1),
                TraceparentError::ForbiddenVersion,
            ),
            (
                VALID.replacen("00", "0g", 1),
                TraceparentError::NotHex { field: "version" },
            ),
            (
                VALID.replace("4bf92f", "4BF92F"),
                TraceparentError::NotHex { field: "trace-id" },
            ),
            (
                VALID.replace("00f067aa", "00f067ax"),
                TraceparentError::NotHex { field: "parent-id" },
            ),
            (
                VALID.replace("-01", "-0z"),
                TraceparentError::NotHex {
                    field: "trace-flags",
                },
            ),
            (
                VALID.replace("-01", "-0A"),
                TraceparentError::NotHex {
                    field: "trace-flags",
                },
            ),
            (
                VALID.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
                TraceparentError::ZeroTraceId,
            ),
            (
                VALID.replace("00f067aa0ba902b7", &"0".repeat(16)),
                TraceparentError::ZeroParentId,
            ),
            // A multi-byte character in place of a hex digit, at the same byte length.
            (
                VALID.replace("4b", "é"),
                TraceparentError::NotHex { field: "trace-id" },
            ),
        ];
        for (header, why) in cases {
            assert_eq!(Traceparent::parse(&header), Err(why), "{header:?}");
        }
    }

    #[test]
    fn only_one_valid_header_counts() {
        let mut headers = HeaderMap::new();
        assert_eq!(Traceparent::from_headers(&headers), Ok(None));
        headers.append(TRACEPARENT, HeaderValue::from_static(VALID));
        assert!(matches!(Traceparent::from_headers(&headers), Ok(Some(_))));
        headers.append(TRACEPARENT, HeaderValue::from_static(VALID));
        assert_eq!(
            Traceparent::from_headers(&headers),
            Err(TraceparentError::Shape),
            "two headers"
        );
    }

    #[test]
    fn grpc_paths_name_service_and_method_and_nothing_else_gets_through() {
        assert_eq!(
            rpc_names("/yrd.exchange.v1.TokenService/GetJwks"),
            ("yrd.exchange.v1.TokenService", "GetJwks")
        );
        for odd in ["/", "", "/a", "//m", "/s/", "/s/m/x", "/s p/m", "/s/m?x=1"] {
            assert_eq!(rpc_names(odd), ("unknown", "unknown"), "{odd:?}");
        }
    }

    /// Ids that are all zeros first, to prove the layer never hands out an invalid id.
    #[derive(Debug, Default)]
    struct ZerosFirst(std::sync::atomic::AtomicU8);

    impl IdGenerator for ZerosFirst {
        fn new_trace_id(&self) -> TraceId {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            TraceId::from_bytes([if n == 0 { 0 } else { 0xab }; 16])
        }

        fn new_span_id(&self) -> SpanId {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            SpanId::from_bytes([if n == 0 { 0 } else { 0xcd }; 8])
        }
    }

    fn ok_service() -> impl Service<
        http::Request<()>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future = futures::future::Ready<
            Result<http::Response<tonic::body::Body>, std::convert::Infallible>,
        >,
    > + Clone {
        tower::service_fn(|request: http::Request<()>| {
            let seen = request
                .extensions()
                .get::<TraceContext>()
                .map(TraceContext::traceparent)
                .unwrap_or_default();
            let mut response = http::Response::new(tonic::body::Body::empty());
            response.headers_mut().insert(
                "seen",
                HeaderValue::from_str(&seen).unwrap_or(HeaderValue::from_static("")),
            );
            futures::future::ready(Ok(response))
        })
    }

    async fn call(traceparent: Option<&str>) -> http::Response<tonic::body::Body> {
        let layer = TraceLayer::with_ids(Arc::new(ZerosFirst::default()));
        let mut service = layer.layer(ok_service());
        let mut request = http::Request::new(());
        *request.uri_mut() = http::Uri::from_static("/yrd.exchange.v1.TokenService/GetJwks");
        if let Some(tp) = traceparent {
            request
                .headers_mut()
                .insert(TRACEPARENT, HeaderValue::from_str(tp).expect("ascii"));
        }
        tower::ServiceExt::oneshot(&mut service, request)
            .await
            .expect("infallible")
    }

    fn header<'a>(response: &'a http::Response<tonic::body::Body>, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn without_opentelemetry_a_partner_trace_continues_with_a_new_span() {
        let response = call(Some(VALID)).await;
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-cdcdcdcdcdcdcdcd-01";
        assert_eq!(
            header(&response, X_TRACE_ID),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(header(&response, TRACEPARENT), traceparent);
        assert_eq!(
            header(&response, "seen"),
            traceparent,
            "the extension agrees"
        );
    }

    /// Collects what a log subscriber writes (the JSON log's tests too).
    #[derive(Clone, Default)]
    pub(crate) struct Captured(pub(crate) Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn log_lines_inside_the_call_carry_the_trace_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let layer = TraceLayer::with_ids(Arc::new(ZerosFirst::default()));
        let mut service = layer.layer(tower::service_fn(|_: http::Request<()>| {
            tracing::info!("inside the call");
            futures::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(
                tonic::body::Body::empty(),
            )))
        }));
        let mut request = http::Request::new(());
        request
            .headers_mut()
            .insert(TRACEPARENT, HeaderValue::from_static(VALID));
        tower::ServiceExt::oneshot(&mut service, request)
            .await
            .expect("infallible");
        let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone())
            .expect("utf-8 logs");
        let line = text
            .lines()
            .find(|l| l.contains("inside the call"))
            .unwrap_or_else(|| panic!("no log line: {text}"));
        assert!(
            line.contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
            "{line}"
        );
    }

    #[tokio::test]
    async fn a_missing_or_malformed_header_starts_a_new_trace() {
        for sent in [
            None,
            Some("00-zz-nonsense"),
            Some(&VALID.replace("-01", "-0A")[..]),
        ] {
            let response = call(sent).await;
            assert_eq!(
                header(&response, X_TRACE_ID),
                "abababababababababababababababab",
                "{sent:?}: a new, non-zero trace id"
            );
            // The all-zero draw was skipped for the trace id; the span id is the next draw.
            assert_eq!(
                header(&response, TRACEPARENT),
                "00-abababababababababababababababab-cdcdcdcdcdcdcdcd-00",
                "{sent:?}"
            );
        }
    }
}
