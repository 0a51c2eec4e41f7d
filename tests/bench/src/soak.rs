//! `--soak DURATION`: the workloads of the command line run round after round for a long time
//! while the server's resident memory (`VmRSS` of `/proc/<pid>/status`) and open file
//! descriptors (the entries of `/proc/<pid>/fd`) are sampled every `--sample-every`. The soak
//! fails on any failed call, and on growth beyond [`Bound`] after the warm-up (the first
//! quarter of the soak): a leak of memory, connections or files shows as a curve that keeps
//! rising. How to run it and the last curve: `docs/reliability.md` §"Soak".

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::cli::Workload;
use crate::report::Row;
use crate::workloads::Context;

/// One reading of the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Since the soak began.
    pub at: Duration,
    /// Resident set, KiB.
    pub rss_kib: u64,
    /// Open file descriptors (sockets, database files, the log).
    pub fds: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads `pid` now; `None` when it is gone or `/proc` is not there.
pub fn sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        at,
        rss_kib: crate::procstat::status_kib(&status, "VmRSS")?,
        fds,
        threads: crate::procstat::status_kib(&status, "Threads")?,
    })
}

/// The growth a soak tolerates after its warm-up, over the highest reading of the warm-up.
///
/// Memory: caches (SQLite's page cache, the verified-token cache, allocator arenas) fill
/// during the warm-up and then stay; the bound leaves room for a cache that fills late and for
/// the allocator's fragmentation, not for a leak that grows with the number of calls, which
/// over a 10-minute soak passes it many times over. File descriptors: the handshake workload
/// opens and closes a connection per call, so a sample may fall on several open at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// Allowed RSS, as a multiple of the warm-up's highest.
    pub rss_factor: f64,
    /// Allowed RSS above that, KiB.
    pub rss_slack_kib: u64,
    /// Allowed open fds above the warm-up's highest.
    pub fd_slack: u64,
}

/// The documented bound (`docs/reliability.md` §"Soak").
pub const BOUND: Bound = Bound {
    rss_factor: 1.25,
    rss_slack_kib: 32 * 1024,
    fd_slack: 64,
};

/// The workloads a soak mixes when the command line names `all`: every call type partners
/// make (publications, reads, searches, live feeds, referral steps, tree heads, new
/// connections).
const MIXED: [Workload; 7] = [
    Workload::Publish,
    Workload::Get,
    Workload::Search,
    Workload::Feed,
    Workload::Disposal,
    Workload::TreeHead,
    Workload::Handshake,
];

/// Runs the soak on `cx` for `length`, sampling `pid` every `every`; prints the curve. Answers
/// the last round's rows (every round's were checked for failures).
pub async fn run(
    cx: &Context,
    pid: u32,
    length: Duration,
    every: Duration,
) -> anyhow::Result<Vec<Row>> {
    let workloads: Vec<Workload> = if cx.args.workloads.contains(&Workload::All) {
        MIXED.to_vec()
    } else {
        cx.args.expanded_workloads()
    };
    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let samples = Arc::clone(&samples);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(s) = sample(pid, started.elapsed()) else {
                    break;
                };
                eprintln!(
                    "yrd-bench soak: {:>5} s  RSS {:>7} KiB  fds {:>4}  threads {:>3}",
                    s.at.as_secs(),
                    s.rss_kib,
                    s.fds,
                    s.threads
                );
                if let Ok(mut all) = samples.lock() {
                    all.push(s);
                }
            }
        })
    };
    let mut rounds = 0u64;
    let mut last = Vec::new();
    let outcome = async {
        while started.elapsed() < length {
            rounds += 1;
            let mut rows = Vec::new();
            for workload in &workloads {
                rows.extend(
                    cx.run(*workload)
                        .await
                        .with_context(|| format!("soak round {rounds}, workload {workload:?}"))?,
                );
            }
            if let Some(bad) = rows.iter().find(|r| r.errors > 0 || r.calls == 0) {
                bail!(
                    "soak round {rounds}: {} on {}: {} calls, {} errors, first error {:?}",
                    bad.workload,
                    bad.store,
                    bad.calls,
                    bad.errors,
                    bad.first_error
                );
            }
            last = rows;
        }
        anyhow::Ok(())
    }
    .await;
    sampler.abort();
    outcome?;
    // A last reading after the load, so a short soak has one past its warm-up.
    let end = sample(pid, started.elapsed()).context("the server is gone after the soak")?;
    let samples = {
        let mut all = samples
            .lock()
            .map_err(|_| anyhow::anyhow!("sampler"))?
            .clone();
        all.push(end);
        all
    };
    println!("{}", curve(&samples));
    eprintln!("yrd-bench soak: {rounds} rounds of {workloads:?} in {length:?}");
    check(&samples, length / 4, BOUND)?;
    Ok(last)
}

/// The samples as a Markdown table.
pub fn curve(samples: &[Sample]) -> String {
    let mut out = String::from("| t s | RSS MiB | open fds | threads |\n|---:|---:|---:|---:|\n");
    for s in samples {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {} | {} |",
            s.at.as_secs(),
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.threads
        );
    }
    out
}

/// Fails when a sample after `warmup` passes `bound` over the warm-up's highest readings.
pub fn check(samples: &[Sample], warmup: Duration, bound: Bound) -> anyhow::Result<()> {
    let (warm, after): (Vec<&Sample>, Vec<&Sample>) = samples.iter().partition(|s| s.at <= warmup);
    let (Some(rss), Some(fds)) = (
        warm.iter().map(|s| s.rss_kib).max(),
        warm.iter().map(|s| s.fds).max(),
    ) else {
        bail!("no sample fell in the warm-up ({warmup:?}); sample more often");
    };
    if after.is_empty() {
        bail!("no sample fell after the warm-up ({warmup:?}); soak longer");
    }
    let rss_limit = (rss as f64 * bound.rss_factor) as u64 + bound.rss_slack_kib;
    let fd_limit = fds + bound.fd_slack;
    for s in after {
        if s.rss_kib > rss_limit {
            bail!(
                "the server's RSS grew to {} KiB at {} s, past the bound {rss_limit} KiB \
                 ({} × the warm-up's {rss} KiB + {} KiB)",
                s.rss_kib,
                s.at.as_secs(),
                bound.rss_factor,
                bound.rss_slack_kib
            );
        }
        if s.fds > fd_limit {
            bail!(
                "the server had {} open file descriptors at {} s, past the bound {fd_limit} \
                 (the warm-up's {fds} + {})",
                s.fds,
                s.at.as_secs(),
                bound.fd_slack
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, rss_kib: u64, fds: u64) -> Sample {
        Sample {
            at: Duration::from_secs(secs),
            rss_kib,
            fds,
            threads: 4,
        }
    }

    #[test]
    fn a_flat_curve_passes_and_a_rising_one_fails() {
        let warm = Duration::from_secs(10);
        let flat = [at(5, 50_000, 30), at(10, 60_000, 40), at(20, 70_000, 80)];
        check(&flat, warm, BOUND).expect("within the bound");
        let leak = [at(5, 50_000, 30), at(10, 60_000, 40), at(20, 200_000, 40)];
        let e = check(&leak, warm, BOUND).expect_err("memory grew");
        assert!(e.to_string().contains("RSS grew"), "{e}");
        let fds = [at(5, 50_000, 30), at(10, 60_000, 40), at(20, 60_000, 105)];
        let e = check(&fds, warm, BOUND).expect_err("fds grew");
        assert!(e.to_string().contains("file descriptors"), "{e}");
        assert!(
            check(&[at(20, 1, 1)], warm, BOUND).is_err(),
            "no warm-up sample"
        );
        assert!(check(&[at(5, 1, 1)], warm, BOUND).is_err(), "nothing after");
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = sample(std::process::id(), Duration::ZERO).expect("/proc/self");
        assert!(me.rss_kib > 0 && me.fds > 0 && me.threads > 0);
    }
}
