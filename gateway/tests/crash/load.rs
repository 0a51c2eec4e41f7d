//! The load generator: writers per agency that publish and correct their own results until
//! the server is killed, each acknowledged answer recorded in the ledger.

use std::sync::{Arc, Mutex};

use anyhow::bail;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use yrd_bench::connect::{AGENCIES, Authed};
use yrd_bench::server::YrdServer;
use yrd_bench::workloads::results;
use yrd_proto::v1 as pb;

use crate::ledger::{Acked, Attempt, Head, Ledger, Own, PHASE_DEADLINE, Request};
use crate::log::{log_keys, watch_heads};

/// Concurrent writers per agency (five agencies), so that group commit batches several writes.
pub(crate) const WRITERS_PER_AGENCY: usize = 2;

/// Share of writes that correct one of the writer's own results rather than publish.
pub(crate) const CORRECTION_SHARE: f64 = 0.25;

/// Runs the writers and the auditor until `kill_after` writes were acknowledged, then kills the
/// server. Adds every write to the ledger and answers the tree heads the auditor saw.
pub(crate) async fn load_and_kill(
    server: &mut YrdServer,
    ledger: &mut Ledger,
    campaign: &str,
    iteration: u64,
    kill_after: u64,
    seed: u64,
) -> anyhow::Result<Vec<Head>> {
    let run = Run {
        campaign,
        iteration,
        kill_after,
        seed,
    };
    load_until_fault(server, ledger, run, YrdServer::crash).await
}

/// Which load: the campaign and iteration its report numbers name, the acknowledged writes
/// before the fault, and the seed of its choices.
pub(crate) struct Run<'a> {
    pub(crate) campaign: &'a str,
    pub(crate) iteration: u64,
    pub(crate) kill_after: u64,
    pub(crate) seed: u64,
}

/// [`load_and_kill`] with another fault than SIGKILL (`fault`, e.g. the database stopped under
/// a server that stays up): the writers run until it came and each then stops at its first
/// refusal, recorded as unacknowledged with its error.
pub(crate) async fn load_until_fault(
    server: &mut YrdServer,
    ledger: &mut Ledger,
    Run {
        campaign,
        iteration,
        kill_after,
        seed,
    }: Run<'_>,
    fault: impl FnOnce(&mut YrdServer) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Head>> {
    let keys = log_keys(&server.target).await?;
    let (acks_tx, mut acks_rx) = watch::channel(0u64);
    let acks_tx = Arc::new(acks_tx);
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let stop = CancellationToken::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut writers = Vec::new();
    for (agency, (agency_id, _)) in AGENCIES.iter().enumerate() {
        let own = ledger.own(agency);
        for w in 0..WRITERS_PER_AGENCY {
            // Each writer corrects only results it published, so no two writers race on a
            // result's version.
            let mine: Vec<Own> = own
                .iter()
                .filter(|o| writer_of(&o.content) == Some(w))
                .cloned()
                .collect();
            let writer = Writer {
                client: server.target.session(agency_id).await?,
                agency,
                prefix: format!("{campaign}-i{iteration}-a{agency}-w{w}"),
                campaign: campaign.to_owned(),
                own: mine,
                rng: StdRng::seed_from_u64(rng.random()),
                attempts: attempts.clone(),
                acks: acks_tx.clone(),
                stop: stop.clone(),
            };
            writers.push(tokio::spawn(writer.run()));
        }
    }
    // The writers hold the only senders now: if they all stop before the kill, the wait ends.
    drop(acks_tx);
    let auditor = server.target.session_as(AGENCIES[0].0, "auditor").await?;
    let (heads_tx, mut heads_rx) = watch::channel(Vec::<Head>::new());
    let watcher = tokio::spawn(watch_heads(auditor, keys, heads_tx, stop.clone()));

    // The kill comes when the auditor has seen a head and `kill_after` more writes were
    // acknowledged since, so that heads are seen during the load, not only at its start.
    let reached = tokio::time::timeout(PHASE_DEADLINE, async {
        heads_rx.wait_for(|h| !h.is_empty()).await?;
        let from = *acks_rx.borrow();
        acks_rx.wait_for(|n| *n >= from + kill_after).await?;
        anyhow::Ok(())
    })
    .await;
    fault(server)?;
    // With the server still up, the writers stop at their first refusal.
    if !server.is_running() {
        stop.cancel();
    }
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await?);
    }
    stop.cancel();
    let seen = watcher.await??;
    let unanswered = std::mem::take(&mut *attempts.lock().unwrap_or_else(|p| p.into_inner()));
    let first_error = unanswered
        .iter()
        .find_map(|a| a.error.clone())
        .unwrap_or_default();
    written.extend(unanswered);
    ledger.attempts.extend(written);
    if !matches!(reached, Ok(Ok(()))) {
        bail!(
            "the load stopped before the auditor saw a tree head and {kill_after} more writes \
             were acknowledged ({} acknowledged, {} heads seen within {PHASE_DEADLINE:?}); \
             first refusal: {first_error}",
            *acks_rx.borrow(),
            heads_rx.borrow().len()
        );
    }
    Ok(seen)
}

/// The writer index a result's report number names (`…-w{index}-{n}`).
pub(crate) fn writer_of(content: &pb::SpotCheckResult) -> Option<usize> {
    let (_, rest) = content.report_number.rsplit_once("-w")?;
    rest.split('-').next()?.parse().ok()
}

/// One partner system writing in a loop until the server stops answering.
pub(crate) struct Writer {
    pub(crate) client: Authed,
    pub(crate) agency: usize,
    pub(crate) prefix: String,
    pub(crate) campaign: String,
    pub(crate) own: Vec<Own>,
    pub(crate) rng: StdRng,
    /// Writes that failed (in flight at the kill), recorded as unacknowledged.
    pub(crate) attempts: Arc<Mutex<Vec<Attempt>>>,
    pub(crate) acks: Arc<watch::Sender<u64>>,
    pub(crate) stop: CancellationToken,
}

impl Writer {
    /// Writes until stopped or refused; answers the acknowledged writes (the unanswered one, if
    /// any, is in `attempts`).
    pub(crate) async fn run(mut self) -> Vec<Attempt> {
        let mut done = Vec::new();
        for n in 0u64.. {
            if self.stop.is_cancelled() {
                break;
            }
            let request_id = format!("{}-{n}", self.prefix);
            let request = if !self.own.is_empty() && self.rng.random_bool(CORRECTION_SHARE) {
                let at = self.rng.random_range(0..self.own.len());
                let own = &self.own[at];
                let mut content = own.content.clone();
                correct(&mut content, own.version + 1);
                Request::Correct(pb::CorrectResultRequest {
                    request_id,
                    name: own.name.clone(),
                    result: Some(content),
                    reason: format!("更正第{}版的检测值", own.version),
                    base_version: own.version,
                })
            } else {
                let seq = self.rng.random_range(0..100_000);
                let mut content = results::sample(self.agency, seq, false);
                content.report_number = format!("{}-{n}", self.prefix);
                if let Some(c) = content.campaign.as_mut() {
                    c.code = self.campaign.clone();
                }
                Request::Publish(pb::PublishResultRequest {
                    request_id,
                    result: Some(content),
                })
            };
            match request.send(self.client.clone()).await {
                Ok((result, receipt)) => {
                    let acked = Acked {
                        name: result.name.clone(),
                        version: result.version,
                        receipt,
                    };
                    if let Some(content) = request.content() {
                        match self.own.iter_mut().find(|o| o.name == acked.name) {
                            Some(own) => {
                                own.version = acked.version;
                                own.content = content.clone();
                            }
                            None => self.own.push(Own {
                                name: acked.name.clone(),
                                version: acked.version,
                                content: content.clone(),
                            }),
                        }
                    }
                    done.push(Attempt {
                        agency: self.agency,
                        request,
                        acked: Some(acked),
                        error: None,
                    });
                    self.acks.send_modify(|count| *count += 1);
                }
                Err(error) => {
                    self.attempts
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Attempt {
                            agency: self.agency,
                            request,
                            acked: None,
                            error: Some(error),
                        });
                    break;
                }
            }
        }
        done
    }
}

/// Makes `content` the corrected content of `version`: the measured value names the version,
/// so each version's content can be told apart when read back.
pub(crate) fn correct(content: &mut pb::SpotCheckResult, version: u32) {
    if let Some(item) = content.test_items.first_mut() {
        item.measured_value = measured_value(version);
    }
}

/// The measured value of the first test item in `version` of a result (`0.35` in version 1).
pub(crate) fn measured_value(version: u32) -> String {
    format!("0.{}", 34 + version)
}
