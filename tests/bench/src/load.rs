//! The load generator every workload and the echo baseline share: N connections × M calls in
//! flight, closed loop (each slot issues its next call when the last one answered) or open loop
//! (calls start on a fixed schedule, and latency counts from the scheduled start, so a stalled
//! server cannot hide its queue: no coordinated omission).
//!
//! Only calls that end inside the measured window count; the warm-up before it is not
//! measured. The server's CPU time and peak memory are read at the window's edges.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::procstat::{self, ProcSample};

/// Which call a slot is to make.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// The connection it goes on (`0..connections`).
    pub conn: usize,
    /// The call's number in this workload, unique across slots.
    pub seq: u64,
}

/// One call of a workload: `Err` carries the failure for the report.
pub type CallFn = Arc<dyn Fn(Slot) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How to drive a workload.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Connections the calls are spread over.
    pub connections: usize,
    /// Calls in flight (closed loop), or the cap on them (open loop).
    pub concurrency: usize,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Open loop at this many calls per second; closed loop when `None`.
    pub rate: Option<f64>,
}

/// The server process whose cost is read at the window's edges.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Its process id.
    pub pid: u32,
    /// The other replicas' process ids (`--replicas`): their CPU time is added to the
    /// server's, and their peak memory too.
    pub replicas: Vec<u32>,
    /// Clock ticks per second of `/proc/<pid>/stat`.
    pub ticks_per_second: u64,
    /// Where to write a `perf record -g` profile of the window, if anywhere.
    pub profile: Option<std::path::PathBuf>,
}

/// What one workload measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Latency of the successful calls, microseconds.
    pub latency: Histogram<u64>,
    /// Calls that succeeded inside the window.
    pub ok: u64,
    /// Calls that failed inside the window.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// The window's length.
    pub window: Duration,
    /// Server CPU time spent inside the window.
    pub server_cpu: Option<Duration>,
    /// The server's peak resident set inside the window, bytes.
    pub server_peak_rss: Option<u64>,
}

impl Measured {
    /// Nothing measured yet, over a window of `window`: for a latency a workload times itself
    /// (from one event to another, not a call), without server figures.
    pub fn empty(window: Duration) -> Measured {
        Measured {
            latency: histogram(),
            ok: 0,
            errors: 0,
            first_error: None,
            window,
            server_cpu: None,
            server_peak_rss: None,
        }
    }

    /// Counts one success that took from `from` to `to` (0 when `to` came first).
    pub fn success(&mut self, from: Instant, to: Instant) {
        self.ok += 1;
        let micros = to.saturating_duration_since(from).as_micros();
        self.latency
            .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
    }

    /// Counts one failure; the first one's `error` is kept for the report.
    pub fn failure(&mut self, error: impl FnOnce() -> String) {
        self.errors += 1;
        self.first_error.get_or_insert_with(error);
    }
}

/// A latency histogram in microseconds, 1 µs to 10 min, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// A call that has not answered after this long counts as failed (the server's own request
/// timeout is 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Tallies of one task, merged at the end.
struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: histogram(),
            ok: 0,
            errors: 0,
            first_error: None,
        }
    }

    fn record(&mut self, outcome: Result<(), String>, took: Duration) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.latency
                    .saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs `call` under `plan` and measures it; reads `watched` at the window's edges.
pub async fn drive(plan: Plan, watched: Option<Watched>, call: CallFn) -> Measured {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let measure_until = measure_from + plan.duration;
    let probe = tokio::spawn(probe(watched, measure_from, measure_until));
    let tally = match plan.rate {
        None => closed_loop(plan, call, measure_from, measure_until).await,
        Some(rate) => open_loop(plan, rate, call, measure_from, measure_until).await,
    };
    let (server_cpu, server_peak_rss) = probe.await.unwrap_or((None, None));
    Measured {
        latency: tally.latency,
        ok: tally.ok,
        errors: tally.errors,
        first_error: tally.first_error,
        window: plan.duration,
        server_cpu,
        server_peak_rss,
    }
}

async fn closed_loop(plan: Plan, call: CallFn, from: Instant, until: Instant) -> Tally {
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..plan.concurrency.max(1) {
        let call = call.clone();
        let seq = seq.clone();
        let conn = slot % plan.connections.max(1);
        tasks.spawn(async move {
            let mut tally = Tally::new();
            while Instant::now() < until {
                let seq = seq.fetch_add(1, Ordering::Relaxed);
                let began = Instant::now();
                let outcome = timed(call(Slot { conn, seq })).await;
                let ended = Instant::now();
                if ended >= from && ended <= until {
                    tally.record(outcome, ended - began);
                }
            }
            tally
        });
    }
    join(tasks).await
}

async fn open_loop(plan: Plan, rate: f64, call: CallFn, from: Instant, until: Instant) -> Tally {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let permits = Arc::new(tokio::sync::Semaphore::new(plan.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    let mut seq: u64 = 0;
    loop {
        let scheduled = start + interval.mul_f64(seq as f64);
        if scheduled > until {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let call = call.clone();
        let permits = permits.clone();
        let conn = usize::try_from(seq).unwrap_or(0) % plan.connections.max(1);
        let this = seq;
        tasks.spawn(async move {
            let mut tally = Tally::new();
            // Waiting for a slot is part of the latency: the call was due at `scheduled`.
            let Ok(_permit) = permits.acquire_owned().await else {
                return tally;
            };
            let outcome = timed(call(Slot { conn, seq: this })).await;
            let ended = Instant::now();
            if scheduled >= from && ended <= until + CALL_TIMEOUT {
                tally.record(outcome, ended - scheduled);
            }
            tally
        });
        seq += 1;
    }
    join(tasks).await
}

async fn timed(call: BoxFuture<'static, Result<(), String>>) -> Result<(), String> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
    }
}

async fn join(mut tasks: tokio::task::JoinSet<Tally>) -> Tally {
    let mut total = Tally::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(tally) => total.merge(tally),
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert(format!("load task: {e}"));
            }
        }
    }
    total
}

/// Reads the server at `from` (resetting its peak memory) and at `until`.
async fn probe(
    watched: Option<Watched>,
    from: Instant,
    until: Instant,
) -> (Option<Duration>, Option<u64>) {
    let Some(w) = watched else {
        return (None, None);
    };
    tokio::time::sleep_until(from).await;
    let pids: Vec<u32> = std::iter::once(w.pid)
        .chain(w.replicas.iter().copied())
        .collect();
    for pid in &pids {
        procstat::reset_peak(*pid);
    }
    let sample = |pid: &u32| procstat::sample(*pid, w.ticks_per_second);
    let before: Option<Vec<ProcSample>> = pids.iter().map(sample).collect();
    let profiler = w
        .profile
        .as_deref()
        .and_then(|out| profile(w.pid, out, until - from));
    tokio::time::sleep_until(until).await;
    let after: Option<Vec<ProcSample>> = pids.iter().map(sample).collect();
    if let Some(mut perf) = profiler {
        let _ = perf.wait().await;
    }
    match (before, after) {
        (Some(b), Some(a)) => {
            let cpu = a
                .iter()
                .zip(&b)
                .map(|(a, b)| a.cpu.saturating_sub(b.cpu))
                .sum();
            (Some(cpu), Some(a.iter().map(|a| a.peak_rss).sum()))
        }
        _ => (None, None),
    }
}

/// Starts `perf record -g` on `pid` for `window`, writing `out`; `None` (with a message) when
/// perf cannot be started.
fn profile(pid: u32, out: &std::path::Path, window: Duration) -> Option<tokio::process::Child> {
    let started = tokio::process::Command::new("perf")
        .args(["record", "-g", "-F", "499", "-p", &pid.to_string(), "-o"])
        .arg(out)
        .args(["--", "sleep", &format!("{:.3}", window.as_secs_f64())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match started {
        Ok(child) => Some(child),
        Err(e) => {
            eprintln!("yrd-bench: perf record did not start: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt as _;

    fn plan(rate: Option<f64>) -> Plan {
        Plan {
            connections: 2,
            concurrency: 4,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(300),
            rate,
        }
    }

    #[tokio::test]
    async fn closed_loop_counts_calls_and_failures_of_the_window_only() {
        let call: CallFn = Arc::new(|slot: Slot| {
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if slot.seq % 10 == 0 {
                    Err(format!("call {} failed", slot.seq))
                } else {
                    Ok(())
                }
            }
            .boxed()
        });
        let m = drive(plan(None), None, call).await;
        // 4 slots, 5 ms a call, 300 ms: about 240 calls; timers may be slow, never faster.
        assert!(m.ok + m.errors > 60 && m.ok + m.errors <= 250, "{m:?}");
        assert!(m.errors > 0 && m.errors < m.ok, "{m:?}");
        assert!(m.first_error.is_some_and(|e| e.contains("failed")));
        assert!(m.latency.value_at_quantile(0.5) >= 5_000);
    }

    #[tokio::test]
    async fn open_loop_keeps_to_its_rate_and_counts_waiting_as_latency() {
        let call: CallFn = Arc::new(|_slot: Slot| {
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(())
            }
            .boxed()
        });
        // 400 calls/s for 300 ms is ~120 calls; 4 in flight at 20 ms each serve only 200/s,
        // so calls queue and latency grows well past the 20 ms of service.
        let m = drive(plan(Some(400.0)), None, call).await;
        assert!(m.ok > 40 && m.ok <= 125, "{m:?}");
        assert!(m.latency.value_at_quantile(0.99) > 40_000, "{m:?}");
    }
}
