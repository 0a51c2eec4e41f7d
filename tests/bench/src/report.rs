//! The report: one row per workload and store, as a table or JSON, each with its ratio to the
//! echo baseline measured in the same run.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::Measured;

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The workload (`publish`, `search-uscc`, `echo`, …).
    pub workload: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// How it was driven: `closed 4x4` or `open 500/s 4x4`.
    pub load: String,
    /// Calls that succeeded in the window.
    pub calls: u64,
    /// Calls that failed in the window.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Successful calls per second.
    pub calls_per_s: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// The slowest call.
    pub max_ms: f64,
    /// Server CPU time per successful call, milliseconds.
    pub server_cpu_ms_per_call: Option<f64>,
    /// The server's peak resident set in the window, MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// The echo row this one is compared with.
    pub baseline: String,
    /// `calls_per_s` over the baseline's.
    pub ratio_to_echo: Option<f64>,
    /// The machine's one-minute load average when the row was made: the bench and the server
    /// alone keep it near the core count; well above it, something else was running.
    pub load_average: Option<f64>,
}

impl Row {
    /// A row for `measured`, compared with the echo row `baseline` (filled in by [`ratios`]).
    pub fn new(workload: &str, store: &str, load: &str, baseline: &str, m: &Measured) -> Row {
        let ms = |q: f64| m.latency.value_at_quantile(q) as f64 / 1000.0;
        let window = m.window.as_secs_f64().max(1e-9);
        let per_call =
            |cpu: std::time::Duration| (m.ok > 0).then(|| cpu.as_secs_f64() * 1000.0 / m.ok as f64);
        Row {
            workload: workload.to_owned(),
            store: store.to_owned(),
            load: load.to_owned(),
            calls: m.ok,
            errors: m.errors,
            first_error: m.first_error.clone(),
            calls_per_s: m.ok as f64 / window,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: m.latency.max() as f64 / 1000.0,
            server_cpu_ms_per_call: m.server_cpu.and_then(per_call),
            server_peak_rss_mib: m.server_peak_rss.map(|b| b as f64 / (1024.0 * 1024.0)),
            baseline: baseline.to_owned(),
            ratio_to_echo: None,
            load_average: load_average(),
        }
    }

    /// Whether the row is usable: calls completed, none failed, a ratio computed.
    pub fn healthy(&self) -> bool {
        self.calls > 0 && self.errors == 0 && self.ratio_to_echo.is_some_and(f64::is_finite)
    }
}

/// The one-minute load average (`/proc/loadavg`).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Fills in each row's ratio to its baseline row of the same store.
pub fn ratios(rows: &mut [Row]) {
    let baselines: Vec<(String, String, f64)> = rows
        .iter()
        .filter(|r| r.workload == r.baseline)
        .map(|r| (r.store.clone(), r.workload.clone(), r.calls_per_s))
        .collect();
    for row in rows.iter_mut() {
        row.ratio_to_echo = baselines
            .iter()
            .find(|(store, name, _)| *store == row.store && *name == row.baseline)
            .and_then(|(_, _, base)| (*base > 0.0).then(|| row.calls_per_s / base));
    }
}

/// The rows as a Markdown table (it reads in a terminal and pastes into docs/performance.md).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| store | workload | load | calls/s | p50 ms | p90 ms | p99 ms | p99.9 ms | server CPU ms/call | server peak RSS MiB | × echo | errors | load avg |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
            r.store,
            r.workload,
            r.load,
            r.calls_per_s,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.p999_ms,
            opt(r.server_cpu_ms_per_call, 3),
            opt(r.server_peak_rss_mib, 1),
            opt(r.ratio_to_echo, 3),
            r.errors,
            opt(r.load_average, 1),
        );
    }
    for r in rows.iter().filter(|r| r.first_error.is_some()) {
        let _ = writeln!(
            out,
            "\n{} on {}: first error: {}",
            r.workload,
            r.store,
            r.first_error.as_deref().unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::histogram;
    use std::time::Duration;

    fn measured(ok: u64, errors: u64) -> Measured {
        let mut latency = histogram();
        for us in [1_000, 2_000, 3_000] {
            latency.record(us).expect("in range");
        }
        Measured {
            latency,
            ok,
            errors,
            first_error: (errors > 0).then(|| "Unavailable: no".to_owned()),
            window: Duration::from_secs(2),
            server_cpu: Some(Duration::from_millis(100)),
            server_peak_rss: Some(32 * 1024 * 1024),
        }
    }

    #[test]
    fn each_row_is_compared_with_its_echo_of_the_same_store() {
        let mut rows = vec![
            Row::new("echo", "sqlite", "closed 1x1", "echo", &measured(2000, 0)),
            Row::new("publish", "sqlite", "closed 1x1", "echo", &measured(100, 0)),
            Row::new("get", "postgres", "closed 1x1", "echo", &measured(100, 0)),
            Row::new(
                "handshake",
                "sqlite",
                "closed 1x1",
                "echo-handshake",
                &measured(10, 1),
            ),
        ];
        ratios(&mut rows);
        assert_eq!(rows[0].ratio_to_echo, Some(1.0));
        assert_eq!(rows[1].ratio_to_echo, Some(0.05));
        assert_eq!(rows[1].calls_per_s, 50.0);
        assert_eq!(rows[1].server_cpu_ms_per_call, Some(1.0));
        assert_eq!(rows[1].server_peak_rss_mib, Some(32.0));
        assert!(rows[1].healthy());
        // No echo on that store, no ratio; a failed call makes a row unhealthy.
        assert_eq!(rows[2].ratio_to_echo, None);
        assert!(!rows[2].healthy());
        assert!(!rows[3].healthy());
        let table = table(&rows);
        assert!(
            table.contains("| sqlite | publish | closed 1x1 | 50 |"),
            "{table}"
        );
        assert!(table.contains("first error: Unavailable: no"), "{table}");
    }
}
