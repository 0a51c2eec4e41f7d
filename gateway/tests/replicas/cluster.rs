//! The replicas: `yrd serve` processes on one PostgreSQL database and one PKI, started by the
//! bench's process code (`yrd_bench::server`), with their logs read as an operator reads them.

use std::path::Path;

use anyhow::Context as _;
use yrd_bench::cli::StoreKind;
use yrd_bench::connect::{AGENCIES, Authed};
use yrd_bench::server::YrdServer;

/// The replicas and the folders their logs are in.
pub(crate) struct Cluster {
    /// Replica 0 owns the database (dropped when it stops) and made the dev PKI.
    pub(crate) replicas: Vec<YrdServer>,
    /// The replica holding the sequencer lock, once a scenario has seen which.
    pub(crate) sequencer: Option<usize>,
    /// One data folder per replica; the first holds the PKI.
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// Starts `count` replicas on a new database of the PostgreSQL at `url`: the first alone
    /// (it migrates the database and makes the PKI, as the compose file's one-shot steps do),
    /// then the others at once.
    pub(crate) async fn start(url: &str, count: usize) -> anyhow::Result<Cluster> {
        let binary = Path::new(env!("CARGO_BIN_EXE_yrd"));
        let mut dirs = Vec::with_capacity(count);
        for _ in 0..count {
            dirs.push(tempfile::tempdir()?);
        }
        let first = YrdServer::start(binary, StoreKind::Postgres, url, dirs[0].path())
            .await
            .context("starting the first replica")?;
        let others =
            futures::future::join_all(dirs[1..].iter().map(|dir| first.start_replica(dir.path())))
                .await;
        let mut replicas = vec![first];
        let mut failed = None;
        for (i, started) in others.into_iter().enumerate() {
            match started {
                Ok(replica) => replicas.push(replica),
                Err(e) => {
                    failed.get_or_insert(e.context(format!("starting replica {}", i + 1)));
                }
            }
        }
        let cluster = Cluster {
            replicas,
            sequencer: None,
            _dirs: dirs,
        };
        if let Some(e) = failed {
            cluster.show_logs();
            let _ = cluster.stop().await;
            return Err(e);
        }
        eprintln!(
            "{count} replicas serving on one PostgreSQL database: {}",
            cluster
                .replicas
                .iter()
                .enumerate()
                .map(|(i, r)| format!("#{i} pid {}", r.process.pid()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(cluster)
    }

    /// A session (mTLS as `agency`'s system certificate, bound token) on replica `i`.
    pub(crate) async fn session(&self, i: usize, agency: usize) -> anyhow::Result<Authed> {
        self.replicas[i]
            .target
            .session(AGENCIES[agency].0)
            .await
            .with_context(|| format!("a session on replica #{i}"))
    }

    /// Replica `i`'s log as written so far.
    pub(crate) fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.replicas[i].log).unwrap_or_default()
    }

    /// The replicas' logs, their last lines, to the test's output (after a failure).
    pub(crate) fn show_logs(&self) {
        for (i, replica) in self.replicas.iter().enumerate() {
            let log = std::fs::read_to_string(&replica.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("--- the last lines of replica #{i}'s log ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }

    /// Stops every replica, the first (which drops the database) last.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let mut outcome = Ok(());
        while let Some(replica) = self.replicas.pop() {
            let stopped = replica.stop().await;
            if outcome.is_ok() {
                outcome = stopped;
            }
        }
        outcome
    }
}

/// A publication by agency `agency` (index into [`AGENCIES`]) whose request id and report
/// number are `tag`: a non-conforming result addressed to the next agency (the producer's
/// province, `yrd_bench::workloads::results::sample`), in this suite's campaign.
pub(crate) fn publication(
    agency: usize,
    seq: u64,
    tag: &str,
) -> yrd_proto::v1::PublishResultRequest {
    let mut result = yrd_bench::workloads::results::sample(agency, seq, false);
    result.report_number = tag.to_owned();
    if let Some(campaign) = result.campaign.as_mut() {
        campaign.code = CAMPAIGN.to_owned();
    }
    yrd_proto::v1::PublishResultRequest {
        request_id: tag.to_owned(),
        result: Some(result),
    }
}

/// The campaign of the publications the scenarios make outside the crash test's ledger.
pub(crate) const CAMPAIGN: &str = "REPLICAS";
