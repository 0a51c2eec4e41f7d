//! The sequencer: the one task that gives unsequenced leaves their Merkle indexes, stores the
//! subtrees they complete, and signs a tree head — all in one transaction per step.
//!
//! Exactly one sequencer runs per deployment: on PostgreSQL the replica holding the advisory
//! lock (`Store::try_sequencer_lock`); the others retry the lock every tick, so when the holder
//! dies (its session, and with it the lock, goes away) another takes over within a tick or two.
//! The frontier (the roots of the perfect subtrees, ≤ log2(n)+1 hashes) is kept in memory and
//! reloaded from the stored nodes whenever this replica (re)gains the lock or a step fails.
//! A head is signed after every step that sequenced something, so while there is traffic a new
//! head appears every tick (200 ms by default), well inside the once-a-second promise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use yrd_call::periodic::{Periodic, every};
use yrd_domain::audit::tree_head_signing_input;
use yrd_domain::clock::Clock;
use yrd_domain::merkle::Frontier;
use yrd_pki::{LogKeyPurpose, SharedLogKeys};
use yrd_store::Store;
use yrd_store::audit::{AuditError, NewTreeHead, SequencerLock};

/// How often the sequencer looks for new leaves.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);
/// Most leaves sequenced in one step (one transaction).
pub const BATCH: u32 = 5_000;

/// Sequences the log.
#[derive(Debug, Clone)]
pub struct Sequencer {
    store: Store,
    /// The log keys; each head is signed by the tree-head key whose window covers its time,
    /// read afresh every step so a sequencer that takes over signs with the current key.
    keys: Arc<SharedLogKeys>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    /// True while this replica holds the sequencer lock (the leadership gauge of the metrics).
    leading: Arc<AtomicBool>,
}

/// The in-memory state between steps: the frontier and the size it stands at.
#[derive(Debug, Default)]
pub struct SequencerState {
    frontier: Option<(Frontier, u64)>,
}

impl Sequencer {
    /// A sequencer signing with the tree-head keys of `keys`.
    pub fn new(
        store: Store,
        keys: Arc<SharedLogKeys>,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Self {
        Sequencer {
            store,
            keys,
            clock,
            interval,
            leading: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag that is true while this replica holds the sequencer lock and sequences the log.
    pub fn leadership(&self) -> Arc<AtomicBool> {
        self.leading.clone()
    }

    /// One step: sequences up to [`BATCH`] leaves and signs the new head. Answers how many
    /// leaves it sequenced. The caller must hold the sequencer lock.
    pub async fn step(&self, state: &mut SequencerState) -> Result<usize, AuditError> {
        let (frontier, size) = match state.frontier.take() {
            Some(loaded) => loaded,
            None => self.store.load_frontier().await?,
        };
        let pending = match self.store.unsequenced_leaves(BATCH).await {
            Ok(pending) => pending,
            Err(e) => {
                state.frontier = Some((frontier, size));
                return Err(e.into());
            }
        };
        if pending.is_empty() {
            state.frontier = Some((frontier, size));
            return Ok(0);
        }
        let mut next = frontier.clone();
        let mut assignments = Vec::with_capacity(pending.len());
        let mut nodes = Vec::new();
        for (offset, (id, hash)) in pending.iter().enumerate() {
            nodes.extend(next.append(*hash));
            assignments.push((*id, size + offset as u64));
        }
        let new_size = size + pending.len() as u64;
        let root = next.root();
        // Tree heads are signed at millisecond precision; store exactly what was signed.
        let at_ms = u64::try_from(self.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let timestamp = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let ring = self.keys.ring();
        let key = ring.signing_key(LogKeyPurpose::TreeHead, timestamp).key();
        let head = NewTreeHead {
            tree_size: new_size,
            root,
            timestamp,
            signature: key.sign_der(&tree_head_signing_input(new_size, &root, at_ms)),
            key_id: key.kid().to_owned(),
        };
        // On failure the state stays empty: the next step reloads the frontier from the store.
        self.store
            .commit_sequence(&assignments, &nodes, &head)
            .await?;
        state.frontier = Some((next, new_size));
        Ok(pending.len())
    }

    /// Runs until `stop` is cancelled: takes the lock when free, then steps every interval;
    /// lets go of the lock when stopped.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let interval = self.interval;
        let task = SequencerTask {
            sequencer: self,
            lock: None,
            state: SequencerState::default(),
        };
        every(interval, None, stop, task)
    }
}

/// The running sequencer: the lock while this replica holds it, and the state between steps.
struct SequencerTask {
    sequencer: Sequencer,
    lock: Option<SequencerLock>,
    state: SequencerState,
}

impl SequencerTask {
    /// True when this replica holds the sequencer lock, taking it when it is free.
    async fn holds_lock(&mut self) -> bool {
        if self.lock.is_none() {
            match self.sequencer.store.try_sequencer_lock().await {
                Ok(Some(acquired)) => {
                    tracing::info!("this replica now sequences the exchange log");
                    self.lock = Some(acquired);
                    self.sequencer.leading.store(true, Ordering::Relaxed);
                    self.state = SequencerState::default();
                }
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, "sequencer lock unavailable");
                    return false;
                }
            }
        }
        if let Some(held) = self.lock.as_mut() {
            match held.is_held().await {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    tracing::warn!("sequencer lock lost; will try to take it again");
                    self.lock = None;
                    self.sequencer.leading.store(false, Ordering::Relaxed);
                    return false;
                }
            }
        }
        true
    }
}

impl Periodic for SequencerTask {
    async fn round(&mut self) {
        if !self.holds_lock().await {
            return;
        }
        match self.sequencer.step(&mut self.state).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(leaves = n, "sequenced"),
            Err(e) => tracing::warn!(error = %e, "sequencing step failed; retrying"),
        }
    }

    async fn stopped(self) {
        self.sequencer.leading.store(false, Ordering::Relaxed);
        if let Some(held) = self.lock {
            let _ = held.release().await;
        }
    }
}
