//! OpenTelemetry metrics as Prometheus text (exposition format 0.0.4): a monotonic sum is a
//! counter named `<name>_total`, other sums and gauges are gauges, explicit-bucket histograms
//! are histograms with cumulative `_bucket{le=…}`, `_sum` and `_count`. The instruments are
//! named in Prometheus style already (`docs/metrics.md`); other characters become `_`.

use std::fmt::{Display, Write as _};

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

/// Every metric of `collected`, one family after another.
pub fn prometheus(collected: &ResourceMetrics) -> String {
    let mut out = String::new();
    for scope in collected.scope_metrics() {
        for metric in scope.metrics() {
            match metric.data() {
                AggregatedMetrics::F64(data) => family(&mut out, metric, data),
                AggregatedMetrics::U64(data) => family(&mut out, metric, data),
                AggregatedMetrics::I64(data) => family(&mut out, metric, data),
            }
        }
    }
    out
}

fn family<T: Copy + Display + Into<Sample>>(
    out: &mut String,
    metric: &Metric,
    data: &MetricData<T>,
) {
    let base = sanitize(metric.name());
    let help = metric
        .description()
        .replace('\\', "\\\\")
        .replace('\n', "\\n");
    match data {
        MetricData::Sum(sum) if sum.is_monotonic() => {
            let name = if base.ends_with("_total") {
                base.clone()
            } else {
                format!("{base}_total")
            };
            header(out, &name, &help, "counter");
            for point in sum.data_points() {
                sample(out, &name, point.attributes(), None, point.value());
            }
        }
        MetricData::Sum(sum) => {
            header(out, &base, &help, "gauge");
            for point in sum.data_points() {
                sample(out, &base, point.attributes(), None, point.value());
            }
        }
        MetricData::Gauge(gauge) => {
            header(out, &base, &help, "gauge");
            for point in gauge.data_points() {
                sample(out, &base, point.attributes(), None, point.value());
            }
        }
        MetricData::Histogram(histogram) => {
            header(out, &base, &help, "histogram");
            let bucket = format!("{base}_bucket");
            for point in histogram.data_points() {
                let mut cumulative = 0u64;
                for (bound, count) in point.bounds().zip(point.bucket_counts()) {
                    cumulative += count;
                    sample(
                        out,
                        &bucket,
                        point.attributes(),
                        Some(&format_float(bound)),
                        cumulative,
                    );
                }
                sample(
                    out,
                    &bucket,
                    point.attributes(),
                    Some("+Inf"),
                    point.count(),
                );
                sample(
                    out,
                    &format!("{base}_sum"),
                    point.attributes(),
                    None,
                    point.sum(),
                );
                sample(
                    out,
                    &format!("{base}_count"),
                    point.attributes(),
                    None,
                    point.count(),
                );
            }
        }
        // Not used by the exchange's instruments; left out rather than shown wrongly.
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// A value as Prometheus writes it.
pub enum Sample {
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
}

impl From<u64> for Sample {
    fn from(v: u64) -> Self {
        Sample::Int(i128::from(v))
    }
}
impl From<i64> for Sample {
    fn from(v: i64) -> Self {
        Sample::Int(i128::from(v))
    }
}
impl From<f64> for Sample {
    fn from(v: f64) -> Self {
        Sample::Float(v)
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample<'a>(
    out: &mut String,
    name: &str,
    attributes: impl Iterator<Item = &'a KeyValue>,
    le: Option<&str>,
    value: impl Into<Sample>,
) {
    let mut labels: Vec<String> = attributes
        .map(|kv| {
            format!(
                "{}=\"{}\"",
                sanitize(kv.key.as_str()),
                escape(&kv.value.as_str())
            )
        })
        .collect();
    labels.sort();
    if let Some(le) = le {
        labels.push(format!("le=\"{le}\""));
    }
    let value = match value.into() {
        Sample::Int(v) => v.to_string(),
        Sample::Float(v) => format_float(v),
    };
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
    }
}

fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

/// A metric or label name with every character Prometheus does not allow replaced by `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::reader::MetricReader as _;
    use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};

    #[test]
    fn counters_gauges_and_histograms_render_as_prometheus_text() {
        let reader = std::sync::Arc::new(ManualReader::builder().build());
        let provider = SdkMeterProvider::builder()
            .with_reader(super::super::SharedReader(reader.clone()))
            .build();
        let meter = provider.meter("test");
        let calls = meter.u64_counter("calls").with_description("calls").build();
        calls.add(
            2,
            &[
                KeyValue::new("method", "/a.B/C"),
                KeyValue::new("code", "OK"),
            ],
        );
        let sizes = meter
            .u64_histogram("sizes")
            .with_boundaries(vec![1.0, 4.0])
            .build();
        for n in [1, 3, 9] {
            sizes.record(n, &[]);
        }
        meter
            .f64_observable_gauge("lag_seconds")
            .with_callback(|o| o.observe(1.5, &[KeyValue::new("agency", "a\"b")]))
            .build();
        let mut collected = ResourceMetrics::default();
        reader.collect(&mut collected).expect("collects");
        let text = prometheus(&collected);
        for line in [
            "# TYPE calls_total counter",
            "calls_total{code=\"OK\",method=\"/a.B/C\"} 2",
            "# TYPE sizes histogram",
            "sizes_bucket{le=\"1\"} 1",
            "sizes_bucket{le=\"4\"} 2",
            "sizes_bucket{le=\"+Inf\"} 3",
            "sizes_sum 13",
            "sizes_count 3",
            "# TYPE lag_seconds gauge",
            "lag_seconds{agency=\"a\\\"b\"} 1.5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
    }
}
