//! The load generator: writers per agency that publish and correct their own results, take
//! the referrals their publications opened (or they opened by hand) through the disposal
//! steps as the handling agency, and, in the Hu-Lu pilot provinces, submit licence
//! applications and take them through the other province's steps, until the server is
//! killed; each acknowledged answer recorded in the ledger.

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

use crate::detours::detour;
use crate::ledger::{Attempt, Head, Ledger, Own, PHASE_DEADLINE, Request};
use crate::log::{log_keys, watch_heads};
use crate::steps::{
    LicensingStep, Owned, PILOT, create_referral, issuing_of, next_licensing_step,
    next_referral_step, submit_application,
};

/// Concurrent writers per agency (five agencies), so that group commit batches several writes.
pub(crate) const WRITERS_PER_AGENCY: usize = 2;

/// Share of writes that correct one of the writer's own results rather than publish.
pub(crate) const CORRECTION_SHARE: f64 = 0.25;

/// Share of writes that step one of the writer's open referrals.
pub(crate) const REFERRAL_SHARE: f64 = 0.3;

/// Share of writes, in the pilot provinces, that submit or step a licence application.
pub(crate) const LICENSING_SHARE: f64 = 0.15;

/// Share of writes that open a referral by hand (`CreateReferral`) on one of the writer's
/// results whose referrals are all closed (a new finding on a closed case).
pub(crate) const CREATE_SHARE: f64 = 0.1;

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
    // One session per agency, shared: a writer acts as the handling agency of its referrals
    // and as the issuing province of its applications.
    let mut peers = Vec::new();
    for (agency_id, _) in AGENCIES {
        peers.push(server.target.session(agency_id).await?);
    }
    let peers = Arc::new(peers);
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
                peers: peers.clone(),
                agency,
                index: w,
                iteration,
                owned: ledger.owned((agency, w)),
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
    /// One session per agency (index into [`AGENCIES`]).
    pub(crate) peers: Arc<Vec<Authed>>,
    pub(crate) agency: usize,
    /// The writer's index within its agency.
    pub(crate) index: usize,
    pub(crate) iteration: u64,
    /// The referrals and applications it owns, with the last step it took on each.
    pub(crate) owned: Owned,
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
            let (acting, request) = self.next_request(n, request_id);
            let writer = (self.agency, self.index);
            let client = if acting == self.agency {
                self.client.clone()
            } else {
                self.peers[acting].clone()
            };
            match request.send(client).await {
                Ok(acked) => {
                    self.owned.took(&request, &acked);
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
                        agency: acting,
                        writer,
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
                            agency: acting,
                            writer,
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

impl Writer {
    /// The next write and the agency (index into [`AGENCIES`]) that sends it: a referral
    /// step, a licensing step, a referral opened by hand, a correction or a publication.
    fn next_request(&mut self, n: u64, request_id: String) -> (usize, Request) {
        let roll: f64 = self.rng.random();
        let open: Vec<usize> = (0..self.owned.referrals.len())
            .filter(|&i| !self.owned.referrals[i].1.is_closed())
            .collect();
        if roll < REFERRAL_SHARE && !open.is_empty() {
            // Half the time the oldest open referral, so that referrals reach closure (and
            // results can be referred again by hand), not only their first steps.
            let at = if self.rng.random_bool(0.5) {
                open[0]
            } else {
                open[self.rng.random_range(0..open.len())]
            };
            let (name, last) = &self.owned.referrals[at];
            let handler = self.owned.handlers.get(name).copied();
            let handler = handler.unwrap_or((self.agency + 1) % AGENCIES.len());
            let parties = (self.agency, handler);
            let (owned, rng, id) = (&self.owned, &mut self.rng, request_id.clone());
            if let Some((acting, call)) = detour(owned, name, *last, parties, id, rng) {
                return (acting, Request::Referral(call));
            }
            let more = self.rng.random_bool(0.3);
            let close = self.rng.random_bool(0.3);
            if let Some(call) = next_referral_step(name, *last, request_id.clone(), more, close) {
                return (handler, Request::Referral(call));
            }
        }
        if roll < REFERRAL_SHARE + LICENSING_SHARE && PILOT.contains(&self.agency) {
            let open: Vec<&(String, LicensingStep)> = self
                .owned
                .applications
                .iter()
                .filter(|(_, last)| *last != LicensingStep::Decided)
                .collect();
            if !open.is_empty() && self.rng.random_bool(0.75) {
                let (name, last) = open[self.rng.random_range(0..open.len())];
                if let Some(call) = next_licensing_step(name, *last, request_id.clone()) {
                    return (issuing_of(self.agency), Request::Licensing(call));
                }
            }
            // Unique in the run: iteration, agency, writer, write.
            let serial = u32::try_from(
                self.iteration * 1_000_000 + (self.agency * 2 + self.index) as u64 * 50_000 + n,
            )
            .unwrap_or(u32::MAX);
            let call = submit_application(self.agency, serial, request_id);
            return (self.agency, Request::Licensing(call));
        }
        let closed = self.owned.closed_results();
        if roll < REFERRAL_SHARE + LICENSING_SHARE + CREATE_SHARE && !closed.is_empty() {
            let result = &closed[self.rng.random_range(0..closed.len())];
            let call = create_referral(self.agency, result, request_id);
            return (self.agency, Request::Referral(call));
        }
        if !self.own.is_empty() && self.rng.random_bool(CORRECTION_SHARE) {
            let at = self.rng.random_range(0..self.own.len());
            let own = &self.own[at];
            let mut content = own.content.clone();
            correct(&mut content, own.version + 1);
            let request = Request::Correct(pb::CorrectResultRequest {
                request_id,
                name: own.name.clone(),
                result: Some(content),
                reason: format!("更正第{}版的检测值", own.version),
                base_version: own.version,
            });
            return (self.agency, request);
        }
        let seq = self.rng.random_range(0..100_000);
        let mut content = results::sample(self.agency, seq, false);
        content.report_number = format!("{}-{n}", self.prefix);
        if let Some(c) = content.campaign.as_mut() {
            c.code = self.campaign.clone();
        }
        let request = Request::Publish(pb::PublishResultRequest {
            request_id,
            result: Some(content),
        });
        (self.agency, request)
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
