//! The crash test: `yrd serve` killed with SIGKILL under publish load, restarted on the same
//! data, loses nothing it acknowledged and writes nothing twice.
//!
//! The `yrd` binary of this package (`CARGO_BIN_EXE_yrd`) runs as a real child process, started,
//! killed and restarted by the bench's process code (`yrd_bench::server`), and is driven as
//! partners drive it (`yrd_bench::connect`: mTLS, bound tokens). Each iteration:
//!
//! 1. several writers per agency publish results (and correct their own), each call with its
//!    own `request_id`; every acknowledged answer is recorded (request id → result name and
//!    version, receipt), and an auditor reads the signed tree heads as they are published;
//! 2. a seeded number of acknowledged writes after the auditor saw its first head, the server
//!    gets SIGKILL;
//! 3. it is restarted on the same data folder or PostgreSQL database, and then:
//!    * every write acknowledged before the kill is stored, with the content it sent (read
//!      before anything is sent again);
//!    * every request that got no answer is sent again with its `request_id` and body: it must
//!      succeed, with the stored answer or written now (how many were stored is printed);
//!    * every acknowledged request sent again must return the stored answer: the same result,
//!      version and receipt;
//!    * a search over the run's campaign finds each acknowledged publication exactly once (no
//!      report number twice, nothing unacknowledged), at its last acknowledged version;
//!    * the recipient agency's feed holds exactly one event per acknowledged publication and
//!      correction, none for a write nobody asked for, with cursors gap-free and event ids unique;
//!    * the exchange log's new signed head verifies, is consistent (RFC 9162 consistency proof,
//!      checked with `yrd_domain::merkle`) with every head the auditor saw before the crash and
//!      with the previous iteration's, and includes the leaf of every acknowledged receipt.
//!
//! Iterations follow one another on the same data, so a later one also checks recovery after
//! recovery. `YRD_CRASH_ITERATIONS` (default 2) sets how many; `YRD_CRASH_SEED` replays a run
//! from the seed it printed (timing still differs from run to run, so the kill falls on the same
//! count of acknowledged writes, not on the same instruction). See `docs/performance.md`
//! §"Crash test".

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use yrd_bench::cli::StoreKind;
use yrd_bench::connect::{AGENCIES, Authed, Target, failure};
use yrd_bench::server::YrdServer;
use yrd_bench::workloads::results;
use yrd_domain::merkle::{Hash, verify_consistency, verify_inclusion};
use yrd_gateway::audit_check::ReceiptFile;
use yrd_gateway::audit_keys::LogKeys;
use yrd_proto::v1 as pb;
use yrd_proto::v1::audit_service_client::AuditServiceClient;
use yrd_proto::v1::feed_service_client::FeedServiceClient;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;
use yrd_proto::v1::token_service_client::TokenServiceClient;

/// Replays a run: the seed it printed.
const SEED_VAR: &str = "YRD_CRASH_SEED";
/// How many kill-and-restart iterations each store runs.
const ITERATIONS_VAR: &str = "YRD_CRASH_ITERATIONS";
/// Iterations when `YRD_CRASH_ITERATIONS` is unset: enough to crash a recovered server once.
const DEFAULT_ITERATIONS: u64 = 2;
/// Concurrent writers per agency (five agencies), so that group commit batches several writes.
const WRITERS_PER_AGENCY: usize = 2;
/// The kill comes after this many writes were acknowledged since the auditor's first head, at
/// least and at most.
const KILL_AFTER_ACKS: std::ops::RangeInclusive<u64> = 15..=90;
/// Share of writes that correct one of the writer's own results rather than publish.
const CORRECTION_SHARE: f64 = 0.25;
/// The longest any phase may take (load until the kill, a restart, the log catching up).
const PHASE_DEADLINE: Duration = Duration::from_secs(60);
/// How often the auditor asks for the latest tree head during the load.
const HEAD_POLL: Duration = Duration::from_millis(50);
/// PostgreSQL of the test suite, as every store test reads it (README, "Two commands").
const POSTGRES_URL_VAR: &str = "YRD_TEST_POSTGRES_URL";
/// Set to `1` (CI), a missing PostgreSQL fails the test instead of skipping it.
const REQUIRE_POSTGRES_VAR: &str = "YRD_TEST_REQUIRE_POSTGRES";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_on_sqlite() -> anyhow::Result<()> {
    crash_test(StoreKind::Sqlite, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_on_postgres() -> anyhow::Result<()> {
    let url = std::env::var(POSTGRES_URL_VAR).unwrap_or_default();
    if url.trim().is_empty() {
        ensure!(
            std::env::var(REQUIRE_POSTGRES_VAR).as_deref() != Ok("1"),
            "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set"
        );
        eprintln!(
            "skipped: the PostgreSQL crash test needs {POSTGRES_URL_VAR} (a server where it may \
             create a throw-away database)"
        );
        return Ok(());
    }
    crash_test(StoreKind::Postgres, url.trim()).await
}

/// A variable of this test read as a whole number; unset is `None`, anything else an error
/// naming the variable.
fn env_number(name: &str) -> anyhow::Result<Option<u64>> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => bail!("{name}={v:?} is not a whole number"),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a whole number")),
    }
}

/// Starts the server on a fresh store, runs the iterations, stops it and drops its database.
async fn crash_test(store: StoreKind, postgres_url: &str) -> anyhow::Result<()> {
    let iterations = env_number(ITERATIONS_VAR)?.unwrap_or(DEFAULT_ITERATIONS);
    ensure!(iterations >= 1, "{ITERATIONS_VAR} must be at least 1");
    let seed = match env_number(SEED_VAR)? {
        Some(seed) => seed,
        None => rand::rng().random(),
    };
    let replay = format!("{SEED_VAR}={seed} {ITERATIONS_VAR}={iterations}");
    eprintln!(
        "crash test on {}: seed {seed}, {iterations} iterations (replay: {replay})",
        store.as_str()
    );
    let data = tempfile::tempdir()?;
    let binary = Path::new(env!("CARGO_BIN_EXE_yrd"));
    let outcome = match YrdServer::start(binary, store, postgres_url, data.path()).await {
        Ok(mut server) => {
            let outcome = run(&mut server, seed, iterations, store.as_str()).await;
            let stopped = server.stop().await;
            outcome.and(stopped)
        }
        Err(e) => Err(e.context("starting yrd serve")),
    };
    outcome.map_err(|e| {
        // The data folder goes with the test; what the server said goes to the test's output.
        let log = std::fs::read_to_string(data.path().join("yrd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("--- the last lines of the server's log ---");
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        e.context(format!(
            "crash test on {} failed; replay with {replay}",
            store.as_str()
        ))
    })
}

/// What a write asked for, kept to send it again with the same `request_id`.
#[derive(Debug, Clone)]
enum Request {
    Publish(pb::PublishResultRequest),
    Correct(pb::CorrectResultRequest),
}

impl Request {
    fn id(&self) -> &str {
        match self {
            Request::Publish(r) => &r.request_id,
            Request::Correct(r) => &r.request_id,
        }
    }

    /// The version an answer to it must carry.
    fn expected_version(&self) -> u32 {
        match self {
            Request::Publish(_) => 1,
            Request::Correct(r) => r.base_version + 1,
        }
    }

    /// The content it sent.
    fn content(&self) -> Option<&pb::SpotCheckResult> {
        match self {
            Request::Publish(r) => r.result.as_ref(),
            Request::Correct(r) => r.result.as_ref(),
        }
    }

    /// Sends it and answers the result it returned and the receipt.
    async fn send(&self, client: Authed) -> Result<(pb::SpotCheckResult, pb::Receipt), String> {
        let mut spot = SpotCheckServiceClient::new(client);
        let (result, receipt) = match self {
            Request::Publish(r) => {
                let answer = spot
                    .publish_result(r.clone())
                    .await
                    .map_err(|s| failure(&s))?
                    .into_inner();
                (answer.result, answer.receipt)
            }
            Request::Correct(r) => {
                let answer = spot
                    .correct_result(r.clone())
                    .await
                    .map_err(|s| failure(&s))?
                    .into_inner();
                (answer.result, answer.receipt)
            }
        };
        match (result, receipt) {
            (Some(result), Some(receipt)) => Ok((result, receipt)),
            _ => Err(format!("{} answered no result or no receipt", self.id())),
        }
    }
}

/// An acknowledged write: the answer the caller got.
#[derive(Debug, Clone)]
struct Acked {
    name: String,
    version: u32,
    receipt: pb::Receipt,
}

/// One write of the run.
#[derive(Debug, Clone)]
struct Attempt {
    /// Index into [`AGENCIES`] of the writing agency.
    agency: usize,
    request: Request,
    /// The answer; `None` while the write was sent but not answered (in flight at the kill).
    acked: Option<Acked>,
    /// Why it got no answer.
    error: Option<String>,
}

/// A result a writer may correct: its name, latest acknowledged version and content.
#[derive(Debug, Clone)]
struct Own {
    name: String,
    version: u32,
    content: pb::SpotCheckResult,
}

/// Every write of the run and what the auditor trusts so far.
#[derive(Debug, Default)]
struct Ledger {
    attempts: Vec<Attempt>,
    /// The last tree head verified (consistent with everything seen before).
    trusted: Option<Head>,
}

impl Ledger {
    /// The results of `agency` with their latest acknowledged version.
    fn own(&self, agency: usize) -> Vec<Own> {
        let mut latest: BTreeMap<String, Own> = BTreeMap::new();
        for a in self.attempts.iter().filter(|a| a.agency == agency) {
            let (Some(acked), Some(content)) = (&a.acked, a.request.content()) else {
                continue;
            };
            let newer = latest
                .get(&acked.name)
                .is_none_or(|o| o.version < acked.version);
            if newer {
                latest.insert(
                    acked.name.clone(),
                    Own {
                        name: acked.name.clone(),
                        version: acked.version,
                        content: content.clone(),
                    },
                );
            }
        }
        latest.into_values().collect()
    }
}

/// A tree head whose signature verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    size: u64,
    root: Hash,
}

/// The run: `iterations` times load, kill, restart, check.
async fn run(
    server: &mut YrdServer,
    seed: u64,
    iterations: u64,
    store: &str,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let campaign = format!("CRASH-{seed}");
    let mut ledger = Ledger::default();
    for iteration in 1..=iterations {
        let kill_after = rng.random_range(KILL_AFTER_ACKS);
        let load_seed: u64 = rng.random();
        let first_new = ledger.attempts.len();
        let seen = load_and_kill(
            server,
            &mut ledger,
            &campaign,
            iteration,
            kill_after,
            load_seed,
        )
        .await
        .with_context(|| format!("iteration {iteration}: the load"))?;
        server
            .restart()
            .await
            .with_context(|| format!("iteration {iteration}: restarting after SIGKILL"))?;
        let report = check(server, &mut ledger, &campaign, first_new, &seen)
            .await
            .with_context(|| format!("iteration {iteration}: after the restart"))?;
        eprintln!(
            "{store}, iteration {iteration}: SIGKILL {kill_after} acknowledged writes after \
             the auditor's first head; {report}"
        );
    }
    Ok(())
}

/// Runs the writers and the auditor until `kill_after` writes were acknowledged, then kills the
/// server. Adds every write to the ledger and answers the tree heads the auditor saw.
async fn load_and_kill(
    server: &mut YrdServer,
    ledger: &mut Ledger,
    campaign: &str,
    iteration: u64,
    kill_after: u64,
    seed: u64,
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
    server.crash()?;
    stop.cancel();
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await?);
    }
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
fn writer_of(content: &pb::SpotCheckResult) -> Option<usize> {
    let (_, rest) = content.report_number.rsplit_once("-w")?;
    rest.split('-').next()?.parse().ok()
}

/// One partner system writing in a loop until the server stops answering.
struct Writer {
    client: Authed,
    agency: usize,
    prefix: String,
    campaign: String,
    own: Vec<Own>,
    rng: StdRng,
    /// Writes that failed (in flight at the kill), recorded as unacknowledged.
    attempts: Arc<Mutex<Vec<Attempt>>>,
    acks: Arc<watch::Sender<u64>>,
    stop: CancellationToken,
}

impl Writer {
    /// Writes until stopped or refused; answers the acknowledged writes (the unanswered one, if
    /// any, is in `attempts`).
    async fn run(mut self) -> Vec<Attempt> {
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
fn correct(content: &mut pb::SpotCheckResult, version: u32) {
    if let Some(item) = content.test_items.first_mut() {
        item.measured_value = measured_value(version);
    }
}

/// The measured value of the first test item in `version` of a result (`0.35` in version 1).
fn measured_value(version: u32) -> String {
    format!("0.{}", 34 + version)
}

/// The auditor: reads the latest signed tree head every [`HEAD_POLL`] until stopped, verifies
/// each signature, and answers every distinct head it saw, in order.
async fn watch_heads(
    client: Authed,
    keys: LogKeys,
    seen: watch::Sender<Vec<Head>>,
    stop: CancellationToken,
) -> anyhow::Result<Vec<Head>> {
    let mut audit = AuditServiceClient::new(client);
    let mut tick = tokio::time::interval(HEAD_POLL);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Ok(answer) = audit
            .get_tree_head(pb::GetTreeHeadRequest { tree_size: None })
            .await
        else {
            // Refused or unreachable: the server is being killed; what was seen stays.
            continue;
        };
        let Some(sth) = answer.into_inner().tree_head else {
            continue;
        };
        let head = verify_head(&keys, &sth)?;
        seen.send_modify(|heads| {
            if heads.last() != Some(&head) {
                heads.push(head);
            }
        });
    }
    let heads = seen.borrow().clone();
    Ok(heads)
}

/// The exchange's published keys, as an auditor reads them (`TokenService.GetJwks`).
async fn log_keys(target: &Target) -> anyhow::Result<LogKeys> {
    let jwks = TokenServiceClient::new(target.channel(AGENCIES[0].0).await?)
        .get_jwks(pb::GetJwksRequest::default())
        .await
        .context("GetJwks")?
        .into_inner();
    Ok(LogKeys::from_jwks(&jwks))
}

fn verify_head(keys: &LogKeys, sth: &pb::SignedTreeHead) -> anyhow::Result<Head> {
    let verified = keys
        .verify_tree_head(sth)
        .map_err(|e| anyhow::anyhow!("tree head of size {}: {e}", sth.tree_size))?;
    Ok(Head {
        size: verified.tree_size,
        root: verified.root,
    })
}

/// After the restart: resolves the writes left unanswered, then checks everything the ledger
/// holds. Answers a summary line.
async fn check(
    server: &YrdServer,
    ledger: &mut Ledger,
    campaign: &str,
    first_new: usize,
    seen: &[Head],
) -> anyhow::Result<String> {
    let target = &server.target;
    let mut clients = Vec::new();
    for (agency, _) in AGENCIES {
        clients.push(target.session(agency).await?);
    }

    // Every write acknowledged before the kill is there, before anything is sent again.
    for attempt in ledger.attempts[first_new..]
        .iter()
        .filter(|a| a.acked.is_some())
    {
        check_stored(&clients[attempt.agency], attempt).await?;
    }

    // What of the unanswered writes is stored already, before anything is sent again.
    let before = stored_names(&clients, campaign).await?;
    let mut in_flight = 0;
    let mut in_flight_stored = 0;
    for attempt in ledger.attempts[first_new..]
        .iter()
        .filter(|a| a.acked.is_none())
    {
        in_flight += 1;
        let stored = match &attempt.request {
            Request::Publish(r) => {
                let report = r.result.as_ref().map(|c| c.report_number.as_str());
                before
                    .values()
                    .any(|s| Some(s.report_number.as_str()) == report)
            }
            Request::Correct(r) => {
                latest(&clients[attempt.agency], &r.name).await?.version > r.base_version
            }
        };
        in_flight_stored += usize::from(stored);
    }

    // Every unanswered write sent again: it succeeds, once.
    for attempt in ledger.attempts[first_new..]
        .iter_mut()
        .filter(|a| a.acked.is_none())
    {
        let id = attempt.request.id().to_owned();
        let (result, receipt) = attempt
            .request
            .send(clients[attempt.agency].clone())
            .await
            .map_err(|e| anyhow::anyhow!("retrying unacknowledged {id}: {e}"))?;
        ensure!(
            result.version == attempt.request.expected_version(),
            "retrying unacknowledged {id} answered version {} of {}, expected {}",
            result.version,
            result.name,
            attempt.request.expected_version()
        );
        attempt.acked = Some(Acked {
            name: result.name,
            version: result.version,
            receipt,
        });
    }

    // Every acknowledged write of this iteration sent again: the stored answer.
    let mut repeated = 0;
    for attempt in &ledger.attempts[first_new..] {
        let Some(acked) = &attempt.acked else {
            continue;
        };
        let id = attempt.request.id();
        let (result, receipt) = attempt
            .request
            .send(clients[attempt.agency].clone())
            .await
            .map_err(|e| anyhow::anyhow!("repeating acknowledged {id}: {e}"))?;
        // The stored answer, receipt included (docs/architecture.md, "Storage": idempotency).
        ensure!(
            (result.name.as_str(), result.version, &receipt.leaf_hash)
                == (acked.name.as_str(), acked.version, &acked.receipt.leaf_hash),
            "repeating acknowledged {id} answered {} version {} (leaf {}), but the first answer \
             was {} version {} (leaf {})",
            result.name,
            result.version,
            hex::encode(&receipt.leaf_hash),
            acked.name,
            acked.version,
            hex::encode(&acked.receipt.leaf_hash)
        );
        repeated += 1;
    }

    let results = check_results(&clients, ledger, campaign, first_new).await?;
    let events = check_feeds(&clients, ledger).await?;
    let head = check_log(target, &clients[0], ledger, first_new, seen).await?;
    ledger.trusted = Some(head);
    Ok(format!(
        "{in_flight} writes in flight at the kill ({in_flight_stored} of them stored before \
         the retry), {repeated} writes sent again got their first answer; {results} results and \
         {events} result events checked; log of {} leaves consistent with {} heads seen before \
         the kill",
        head.size,
        seen.len()
    ))
}

/// `GetResult` of `name`: the latest version of `results/{id}`, or the version a version name
/// names.
async fn latest(client: &Authed, name: &str) -> anyhow::Result<pb::SpotCheckResult> {
    SpotCheckServiceClient::new(client.clone())
        .get_result(pb::GetResultRequest {
            name: name.to_owned(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("GetResult {name}: {}", failure(&s)))?
        .into_inner()
        .result
        .with_context(|| format!("GetResult {name} answered no result"))
}

/// A result as the search finds it (latest version).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    /// Index into [`AGENCIES`] of the publisher.
    agency: usize,
    report_number: String,
    version: u32,
}

/// Every result of the run's campaign, searched agency by agency and page by page, by name. A
/// name or report number found twice is an error.
async fn stored_names(
    clients: &[Authed],
    campaign: &str,
) -> anyhow::Result<BTreeMap<String, Stored>> {
    let mut found = BTreeMap::new();
    let mut reports = BTreeSet::new();
    for (agency, (id, _)) in AGENCIES.iter().enumerate() {
        let mut page_token = String::new();
        loop {
            let page = SpotCheckServiceClient::new(clients[agency].clone())
                .search_results(pb::SearchResultsRequest {
                    campaign_code: campaign.to_owned(),
                    publisher_agency: format!("agencies/{id}"),
                    page_size: 500,
                    page_token: page_token.clone(),
                    ..Default::default()
                })
                .await
                .map_err(|s| anyhow::anyhow!("SearchResults of {id}: {}", failure(&s)))?
                .into_inner();
            for r in page.results {
                ensure!(
                    reports.insert(r.report_number.clone()),
                    "report number {} is stored twice (the second as {}): a write was applied \
                     twice",
                    r.report_number,
                    r.name
                );
                let stored = Stored {
                    agency,
                    report_number: r.report_number,
                    version: r.version,
                };
                ensure!(
                    found.insert(r.name.clone(), stored).is_none(),
                    "the search found {} twice",
                    r.name
                );
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    Ok(found)
}

/// Every version acknowledged in this iteration (from `first_new` on) reads back with its
/// content; the search over the whole run finds exactly the acknowledged publications, each at
/// its last acknowledged version. Answers how many results the run holds.
async fn check_results(
    clients: &[Authed],
    ledger: &Ledger,
    campaign: &str,
    first_new: usize,
) -> anyhow::Result<usize> {
    for attempt in &ledger.attempts[first_new..] {
        check_stored(&clients[attempt.agency], attempt).await?;
    }
    let mut expected: BTreeMap<String, Stored> = BTreeMap::new();
    for attempt in ledger
        .attempts
        .iter()
        .filter(|a| matches!(a.request, Request::Publish(_)))
    {
        let (Some(acked), Some(sent)) = (&attempt.acked, attempt.request.content()) else {
            bail!("{} is still unanswered", attempt.request.id());
        };
        expected.insert(
            acked.name.clone(),
            Stored {
                agency: attempt.agency,
                report_number: sent.report_number.clone(),
                version: 1,
            },
        );
    }
    for acked in ledger.attempts.iter().filter_map(|a| a.acked.as_ref()) {
        if let Some(result) = expected.get_mut(&acked.name) {
            result.version = result.version.max(acked.version);
        }
    }
    let found = stored_names(clients, campaign).await?;
    if found != expected {
        let missing: Vec<&String> = expected
            .keys()
            .filter(|n| !found.contains_key(*n))
            .collect();
        let extra: Vec<&String> = found
            .keys()
            .filter(|n| !expected.contains_key(*n))
            .collect();
        let other: Vec<String> = found
            .iter()
            .filter_map(|(name, f)| {
                let e = expected.get(name)?;
                (e != f).then(|| format!("{name}: stored {f:?}, acknowledged {e:?}"))
            })
            .collect();
        bail!(
            "the search over the run's campaign found {} results for {} acknowledged \
             publications; missing {missing:?}, not acknowledged {extra:?}, different {other:?}",
            found.len(),
            expected.len()
        );
    }
    Ok(found.len())
}

/// The version an acknowledged write made is stored, with the content the write sent.
async fn check_stored<'a>(client: &Authed, attempt: &'a Attempt) -> anyhow::Result<&'a Acked> {
    let id = attempt.request.id();
    let acked = attempt
        .acked
        .as_ref()
        .with_context(|| format!("{id} is still unanswered"))?;
    let sent = attempt
        .request
        .content()
        .context("a write without content")?;
    let version_name = format!("{}/versions/{}", acked.name, acked.version);
    let stored = SpotCheckServiceClient::new(client.clone())
        .get_result(pb::GetResultRequest {
            name: version_name.clone(),
        })
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "{version_name}, acknowledged to {id}, is lost: GetResult answered {}",
                failure(&s)
            )
        })?
        .into_inner()
        .result
        .with_context(|| format!("GetResult {version_name} answered no result"))?;
    ensure!(
        stored.report_number == sent.report_number
            && stored.test_items.first().map(|t| &t.measured_value)
                == sent.test_items.first().map(|t| &t.measured_value),
        "{version_name} (acknowledged to {id}) does not hold what {id} sent: report {} \
         measured {:?}, sent report {} measured {:?}",
        stored.report_number,
        stored.test_items.first().map(|t| &t.measured_value),
        sent.report_number,
        sent.test_items.first().map(|t| &t.measured_value)
    );
    Ok(acked)
}

/// Every acknowledged publication and correction is exactly one event in the feed of the
/// agency of the producer's province (the only addressee of these results besides the
/// publisher, who gets none: `yrd_domain::routing`), and every result event there belongs to
/// an acknowledged write. Cursors are gap-free and event ids unique. Answers the events checked.
async fn check_feeds(clients: &[Authed], ledger: &Ledger) -> anyhow::Result<usize> {
    let mut expected: Vec<BTreeSet<(String, u32)>> = vec![BTreeSet::new(); AGENCIES.len()];
    for attempt in &ledger.attempts {
        if let Some(acked) = &attempt.acked {
            let recipient = (attempt.agency + 1) % AGENCIES.len();
            expected[recipient].insert((acked.name.clone(), acked.version));
        }
    }
    let mut checked = 0;
    for (agency, (id, _)) in AGENCIES.iter().enumerate() {
        let mut feed = FeedServiceClient::new(clients[agency].clone());
        let last = feed
            .get_feed_position(pb::GetFeedPositionRequest {})
            .await
            .map_err(|s| anyhow::anyhow!("GetFeedPosition of {id}: {}", failure(&s)))?
            .into_inner()
            .latest_cursor;
        let mut stream = feed
            .subscribe(pb::SubscribeRequest {
                from_cursor: Some(0),
            })
            .await
            .map_err(|s| anyhow::anyhow!("Subscribe of {id}: {}", failure(&s)))?
            .into_inner();
        let mut cursor = 0;
        let mut ids = BTreeSet::new();
        let mut results = BTreeSet::new();
        while cursor < last {
            let message = tokio::time::timeout(PHASE_DEADLINE, stream.message())
                .await
                .with_context(|| format!("the feed of {id} stalled after cursor {cursor}"))?
                .map_err(|s| anyhow::anyhow!("the feed of {id}: {}", failure(&s)))?
                .with_context(|| format!("the feed of {id} ended after cursor {cursor}"))?;
            let Some(pb::subscribe_response::Kind::Event(event)) = message.kind else {
                continue;
            };
            ensure!(
                event.cursor == cursor + 1,
                "the feed of {id} went from cursor {cursor} to {}",
                event.cursor
            );
            cursor = event.cursor;
            ensure!(
                ids.insert(event.event_id.clone()),
                "the feed of {id} delivered event {} twice",
                event.event_id
            );
            let kind = pb::EventType::try_from(event.event_type).ok();
            if matches!(
                kind,
                Some(pb::EventType::ResultPublished | pb::EventType::ResultCorrected)
            ) {
                let key = (event.resource_name.clone(), event.resource_version);
                ensure!(
                    expected[agency].contains(&key),
                    "the feed of {id} has an event for {} version {} that no acknowledged \
                     write made",
                    key.0,
                    key.1
                );
                ensure!(
                    results.insert(key.clone()),
                    "the feed of {id} has two events for {} version {}: a write was applied \
                     twice",
                    key.0,
                    key.1
                );
                checked += 1;
            }
        }
        if let Some((name, version)) = expected[agency].difference(&results).next() {
            bail!(
                "the feed of {id} has no event for {name} version {version} ({} of {} \
                 acknowledged writes addressed to it are missing)",
                expected[agency].difference(&results).count(),
                expected[agency].len()
            );
        }
    }
    Ok(checked)
}

/// The log after the restart: a new signed head that is consistent with the trusted head of
/// the previous iteration and with every head seen before the kill, and that includes the leaf
/// of every acknowledged receipt of this iteration (each receipt's signature checked too).
/// Answers the new head.
async fn check_log(
    target: &Target,
    client: &Authed,
    ledger: &Ledger,
    first_new: usize,
    seen: &[Head],
) -> anyhow::Result<Head> {
    let keys = log_keys(target).await?;
    let mut leaves = Vec::new();
    for attempt in &ledger.attempts[first_new..] {
        let Some(acked) = &attempt.acked else {
            continue;
        };
        let receipt = ReceiptFile::from_pb(&acked.receipt)
            .and_then(|r| r.signed())
            .with_context(|| format!("the receipt of {}", attempt.request.id()))?;
        keys.verify_receipt(&receipt)
            .map_err(|e| anyhow::anyhow!("the receipt of {}: {e}", attempt.request.id()))?;
        leaves.push((attempt.request.id().to_owned(), receipt.leaf_hash));
    }
    let mut audit = AuditServiceClient::new(client.clone());
    let must_cover = seen.last().map_or(0, |h| h.size);
    let deadline = tokio::time::Instant::now() + PHASE_DEADLINE;
    let mut poll = tokio::time::interval(HEAD_POLL);
    // The receipts promise inclusion within the merge delay; wait for a head that has them.
    let head = loop {
        let sth = audit
            .get_tree_head(pb::GetTreeHeadRequest { tree_size: None })
            .await
            .map_err(|s| anyhow::anyhow!("GetTreeHead: {}", failure(&s)))?
            .into_inner()
            .tree_head
            .context("GetTreeHead answered no head")?;
        let head = verify_head(&keys, &sth)?;
        let mut pending = None;
        if head.size >= must_cover {
            for (id, leaf) in &leaves {
                if !included(&mut audit, leaf, head).await? {
                    pending = Some(id.clone());
                    break;
                }
            }
        } else {
            pending = Some(format!("a head of size {must_cover} at least"));
        }
        match pending {
            None => break head,
            Some(what) if tokio::time::Instant::now() > deadline => bail!(
                "the log's latest head (size {}) still lacks the leaf of {what} after \
                 {PHASE_DEADLINE:?}",
                head.size
            ),
            Some(_) => {
                poll.tick().await;
            }
        }
    };
    let mut chain: Vec<Head> = ledger.trusted.iter().copied().collect();
    chain.extend(seen.iter().copied());
    chain.push(head);
    for pair in chain.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        ensure!(
            new.size >= old.size,
            "the log shrank from a head of size {} to one of size {}",
            old.size,
            new.size
        );
        if old.size == 0 {
            continue;
        }
        let proof = audit
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                first_tree_size: old.size,
                second_tree_size: Some(new.size),
            })
            .await
            .map_err(|s| {
                anyhow::anyhow!(
                    "GetConsistencyProof {} → {}: {}",
                    old.size,
                    new.size,
                    failure(&s)
                )
            })?
            .into_inner()
            .proof
            .context("GetConsistencyProof answered no proof")?;
        let hashes = hashes(&proof.hashes)?;
        verify_consistency(old.size, new.size, &old.root, &new.root, &hashes).map_err(|e| {
            anyhow::anyhow!(
                "the head of size {} (root {}) is not consistent with the head of size {} \
                 (root {}): {e}",
                old.size,
                old.root,
                new.size,
                new.root
            )
        })?;
    }
    Ok(head)
}

/// Whether `leaf` is in the tree of `head`: its inclusion proof verified against the head's
/// root; `false` while the log has not sequenced it into that head yet.
async fn included(
    audit: &mut AuditServiceClient<Authed>,
    leaf: &Hash,
    head: Head,
) -> anyhow::Result<bool> {
    let answer = audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(
                leaf.as_bytes().to_vec(),
            )),
            tree_size: Some(head.size),
        })
        .await;
    let proof = match answer {
        Ok(answer) => answer
            .into_inner()
            .proof
            .context("GetInclusionProof answered no proof")?,
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::NotFound | tonic::Code::OutOfRange | tonic::Code::FailedPrecondition
            ) =>
        {
            return Ok(false);
        }
        Err(s) => bail!("GetInclusionProof of leaf {leaf}: {}", failure(&s)),
    };
    verify_inclusion(
        leaf,
        proof.leaf_index,
        head.size,
        &hashes(&proof.hashes)?,
        &head.root,
    )
    .map_err(|e| anyhow::anyhow!("the inclusion proof of leaf {leaf}: {e}"))?;
    Ok(true)
}

fn hashes(raw: &[Vec<u8>]) -> anyhow::Result<Vec<Hash>> {
    raw.iter()
        .map(|h| Hash::try_from(h.as_slice()).map_err(|e| anyhow::anyhow!("a proof hash: {e}")))
        .collect()
}
