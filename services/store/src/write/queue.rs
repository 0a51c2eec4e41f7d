//! The queue of the group committer (docs/architecture.md "Storage"): the writes waiting for
//! the next flush, as the store holds it. The flush itself, which commits them, is `batch`;
//! this part knows nothing of the store, so that the store's own type can hold it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sqlx::AnyConnection;
use tokio::time::Instant;
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;

use super::key::IdempotencyKey;
use crate::StoreError;
use crate::audit::appended::AppendedLeaf;
use crate::feed::event::NewFeedEvent;

/// The most writes one flush commits, by default (`StoreOptions::max_batch`).
pub const MAX_BATCH: usize = 64;
/// How many flushes may run at once on PostgreSQL, by default (`StoreOptions::max_flushes`).
pub const MAX_FLUSHES: usize = 4;
/// How long a flush that found several writes waits for more (from the oldest's arrival).
pub const MAX_WAIT: Duration = Duration::from_millis(1);

/// How many transactions the group committer committed and how many writes they held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchStats {
    /// Batch transactions committed (a member applied again alone counts as one more).
    pub flushes: u64,
    /// Writes answered.
    pub writes: u64,
    /// The most flushes that ran at once.
    pub most_concurrent: u64,
    /// Writes applied again alone: their batch failed as a whole, or they lost a conflict
    /// with a concurrent transaction (a deadlock, a serialization failure).
    pub retried: u64,
}

/// The queue of writes waiting for the next flush.
pub(crate) struct Batcher {
    /// The most writes one flush takes.
    pub(super) max_batch: usize,
    /// The most flushes that run at once.
    max_flushes: usize,
    queue: Mutex<Queue>,
    pub(super) flushes: AtomicU64,
    pub(super) writes: AtomicU64,
    most_concurrent: AtomicU64,
    pub(super) retried: AtomicU64,
    /// Told the size of every committed transaction (`Store::observe_batch_sizes`).
    pub(super) sizes: std::sync::OnceLock<BatchSizeObserver>,
}

/// Called with the number of writes of each committed transaction; it runs on the commit path,
/// so it must be cheap (an atomic histogram, not I/O).
pub type BatchSizeObserver = std::sync::Arc<dyn Fn(usize) + Send + Sync>;

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
pub(super) struct Queue {
    pub(super) members: VecDeque<(Instant, Box<dyn Member>)>,
    /// Flush tasks running (each takes what is queued before it stops).
    pub(super) flushing: usize,
}

impl Batcher {
    /// A committer taking at most `max_batch` (at least 1) writes per transaction, with at most
    /// `max_flushes` (at least 1) transactions at once.
    pub(crate) fn new(max_batch: usize, max_flushes: usize) -> Batcher {
        Batcher {
            max_batch: max_batch.max(1),
            max_flushes: max_flushes.max(1),
            queue: Mutex::default(),
            flushes: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            most_concurrent: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            sizes: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn stats(&self) -> BatchStats {
        BatchStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            most_concurrent: self.most_concurrent.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        match self.queue.lock() {
            Ok(queue) => queue,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts one more flush in `queue` if the limit allows it and there is work for it; true
    /// when the caller is to start it.
    pub(super) fn start_flush(&self, queue: &mut Queue) -> bool {
        if queue.members.is_empty() || queue.flushing >= self.max_flushes {
            return false;
        }
        queue.flushing += 1;
        self.most_concurrent
            .fetch_max(queue.flushing as u64, Ordering::Relaxed);
        true
    }
}

pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write of any kind, as the batch sees it.
pub(super) trait Member: Send {
    /// Applies the write's claim, rows and referrals on `conn` (the batch handles the
    /// savepoints); true when it is to be kept (written, not refused, replayed or failed).
    fn apply<'a>(&'a mut self, conn: &'a mut AnyConnection) -> BoxFuture<'a, bool>;
    /// Its feed events, in cursor order (appended at the batch's end when it is kept).
    fn events(&self) -> Box<dyn Iterator<Item = &NewFeedEvent> + '_>;
    /// Its exchange-log leaf (appended at the batch's end when it is kept).
    fn leaf(&self) -> Option<&LeafData>;
    /// The request it claims, if any.
    fn claim(&self) -> Option<&IdempotencyKey>;
    /// Records what the batch's end appended for it: its leaf and its events' cursors.
    fn appended(&mut self, leaf: Option<AppendedLeaf>, assigned: Vec<(AgencyId, u64)>);
    /// The feed cursors it appended, once applied and kept.
    fn assigned(&self) -> &[(AgencyId, u64)];
    /// It failed on a conflict with a concurrent transaction that a new attempt can pass
    /// (PostgreSQL's deadlock and serialization failures).
    fn transient(&self) -> bool;
    /// Answers the caller: the outcome of `apply` when the batch committed, else `failure`.
    fn finish(self: Box<Self>, failure: Option<StoreError>);
}
