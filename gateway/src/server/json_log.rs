//! Log lines as JSON (`log.format = "json"`): one object a line with `timestamp`, `level`,
//! `target`, the event's fields (`message` among them), the current span's name as `span`, and
//! the `trace_id` and `span_id` of the call it belongs to — the ids the trace layer records on
//! the call's server span (`server::trace`), the same that partners see in `x-trace-id` and
//! that the exchange log and the OTLP spans carry. A log aggregator can then join the three.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter; pair it with [`JsonFields`] as the field formatter, whose JSON it
/// reads the span fields from.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonWithTrace;

impl<S> FormatEvent<S, JsonFields> for JsonWithTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        // Log lines carry the wall-clock time, whatever clock the server's logic is given.
        let timestamp = yrd_domain::clock::Clock::now(&yrd_domain::clock::SystemClock)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert(
            "level".into(),
            Value::String(meta.level().as_str().to_owned()),
        );
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        if let Some(scope) = ctx.event_scope() {
            let mut first = true;
            for span in scope {
                if first {
                    line.insert("span".into(), Value::String(span.name().to_owned()));
                    first = false;
                }
                let extensions = span.extensions();
                let Some(recorded) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                let Ok(Value::Object(span_fields)) =
                    serde_json::from_str::<Value>(recorded.fields.as_str())
                else {
                    continue;
                };
                // The innermost span that carries the ids is the call's server span.
                if !line.contains_key("trace_id") {
                    if let Some(id) = span_fields.get("trace_id") {
                        line.insert("trace_id".into(), id.clone());
                        if let Some(id) = span_fields.get("span_id") {
                            line.insert("span_id".into(), id.clone());
                        }
                    }
                }
                if !line.contains_key("agency") {
                    if let Some(agency) = span_fields.get("agency") {
                        line.insert("agency".into(), agency.clone());
                    }
                }
            }
        }
        for (key, value) in fields.0 {
            line.entry(key).or_insert(value);
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// The event's fields as JSON values.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use tower::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use crate::server::config::LogFormat;
    use crate::server::telemetry::log_layer;
    use crate::server::trace::tests::Captured;
    use crate::server::trace::{TRACEPARENT, TraceLayer};

    #[tokio::test]
    async fn a_json_line_inside_a_call_carries_its_trace_and_span_ids() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber =
            tracing_subscriber::registry().with(log_layer(LogFormat::Json, move || writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let mut service = TraceLayer::new().layer(tower::service_fn(|_: http::Request<()>| {
            let inner = tracing::info_span!("db.transaction", db.system = "sqlite");
            inner.in_scope(|| tracing::info!(rows = 3_u64, "inside the call"));
            futures::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(
                tonic::body::Body::empty(),
            )))
        }));
        let mut request = http::Request::new(());
        request.headers_mut().insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let response = tower::ServiceExt::oneshot(&mut service, request)
            .await
            .expect("infallible");
        // The call's own span id, as the answer's traceparent names it.
        let traceparent = response
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .expect("traceparent answered")
            .to_owned();
        let span_id = traceparent.split('-').nth(2).expect("a span id");
        let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone())
            .expect("utf-8 logs");
        let line = text
            .lines()
            .find(|l| l.contains("inside the call"))
            .unwrap_or_else(|| panic!("no log line: {text}"));
        let json: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(
            json["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{line}"
        );
        assert_eq!(json["span_id"], span_id, "{line}");
        assert_eq!(json["message"], "inside the call", "{line}");
        assert_eq!(json["rows"], 3, "{line}");
        assert_eq!(json["level"], "INFO", "{line}");
        assert_eq!(json["span"], "db.transaction", "{line}");
        assert!(
            json["timestamp"].as_str().is_some_and(|t| t.contains('T')),
            "{line}"
        );
    }

    #[test]
    fn a_line_outside_any_call_has_no_trace_id() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber =
            tracing_subscriber::registry().with(log_layer(LogFormat::Json, move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || tracing::warn!(n = 1_i64, "alone"));
        let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone())
            .expect("utf-8 logs");
        let json: serde_json::Value = serde_json::from_str(text.trim()).expect("a JSON line");
        assert_eq!(json["message"], "alone");
        assert_eq!(json["level"], "WARN");
        assert!(json.get("trace_id").is_none(), "{text}");
    }
}
