//! Group commit: concurrent writes committed in one transaction per flush.
//!
//! A write joins the queue; when no flush is running, its caller starts one on the runtime
//! (a task of its own, so that a caller that gives up cannot cancel the others' commit). A
//! flush takes the queued writes (at most [`MAX_BATCH`]); when it found more than one and
//! fewer than the maximum, it gives stragglers until the oldest has waited [`MAX_WAIT`], since
//! other writers are evidently active; a lone write is committed at once. It then opens one
//! transaction, applies each member between `SAVEPOINT` and `RELEASE` (a refused or failing
//! member is rolled back to its savepoint; the others stay), commits, wakes the feed and
//! answers every caller. While a flush commits, new writes queue for the next one, so the
//! batch grows with the load and one fsync serves them all.
//!
//! When the batch's transaction fails as a whole (a statement that breaks the transaction, a
//! lost connection, a failed `COMMIT`), each member is applied again in a transaction of its
//! own, so one bad member cannot fail the others.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sqlx::AnyConnection;
use tokio::sync::oneshot;
use tokio::time::Instant;
use yrd_domain::AgencyId;

use super::apply::{apply, exec};
use super::idempotency::Answered;
use super::{Committed, Rows, Write, WriteError};
use crate::feed::append::FEED_CHANNEL;
use crate::{Backend, Store, StoreError};

/// The most writes one flush commits, by default (`StoreOptions::max_batch`).
pub const MAX_BATCH: usize = 64;
/// How long a flush that found several writes waits for more (from the oldest's arrival).
pub const MAX_WAIT: Duration = Duration::from_millis(1);

/// How many transactions the group committer committed and how many writes they held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchStats {
    /// Batch transactions committed (a member applied again alone counts as one more).
    pub flushes: u64,
    /// Writes answered.
    pub writes: u64,
}

/// The queue of writes waiting for the next flush.
pub(crate) struct Batcher {
    /// The most writes one flush takes.
    max_batch: usize,
    queue: Mutex<Queue>,
    flushes: AtomicU64,
    writes: AtomicU64,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Queue {
    members: VecDeque<(Instant, Box<dyn Member>)>,
    /// A flush task is running (it takes what is queued before it stops).
    flushing: bool,
}

impl Batcher {
    /// A committer taking at most `max_batch` (at least 1) writes per transaction.
    pub(crate) fn new(max_batch: usize) -> Batcher {
        Batcher {
            max_batch: max_batch.max(1),
            queue: Mutex::default(),
            flushes: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> BatchStats {
        BatchStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        match self.queue.lock() {
            Ok(queue) => queue,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a member's savepoint ended.
enum Applied {
    /// Released: its rows stay in the batch.
    Kept,
    /// Rolled back to its savepoint: it wrote nothing (refused, replayed or failed).
    RolledBack,
    /// The savepoint bookkeeping itself failed: the transaction is unusable.
    Broken(sqlx::Error),
}

/// A write of any kind, as the batch sees it.
trait Member: Send {
    /// Applies the write on `conn` between its savepoint and the release (or rollback).
    fn apply<'a>(
        &'a mut self,
        conn: &'a mut AnyConnection,
        backend: Backend,
    ) -> BoxFuture<'a, Applied>;
    /// The feed cursors it appended, once applied and kept.
    fn assigned(&self) -> &[(AgencyId, u64)];
    /// Answers the caller: the outcome of `apply` when the batch committed, else `failure`.
    fn finish(self: Box<Self>, failure: Option<StoreError>);
}

type Reply<R> = Result<Committed<<R as Rows>::Value>, WriteError<<R as Rows>::Refusal>>;

struct Typed<R: Rows> {
    write: Write<R>,
    outcome: Option<Reply<R>>,
    reply: oneshot::Sender<Reply<R>>,
}

impl<R: Rows> Member for Typed<R> {
    fn apply<'a>(
        &'a mut self,
        conn: &'a mut AnyConnection,
        backend: Backend,
    ) -> BoxFuture<'a, Applied> {
        Box::pin(async move {
            self.outcome = None;
            if let Err(e) = exec(conn, "SAVEPOINT yrd_write").await {
                return Applied::Broken(e);
            }
            let outcome = apply(&self.write, conn, backend).await;
            let keep = matches!(outcome, Ok(Answered::Written(_)));
            self.outcome = Some(outcome);
            let end = if keep {
                exec(conn, "RELEASE SAVEPOINT yrd_write").await
            } else {
                match exec(conn, "ROLLBACK TO SAVEPOINT yrd_write").await {
                    Ok(()) => exec(conn, "RELEASE SAVEPOINT yrd_write").await,
                    Err(e) => Err(e),
                }
            };
            match end {
                Err(e) => Applied::Broken(e),
                Ok(()) if keep => Applied::Kept,
                Ok(()) => Applied::RolledBack,
            }
        })
    }

    fn assigned(&self) -> &[(AgencyId, u64)] {
        match &self.outcome {
            Some(Ok(Answered::Written(w))) => &w.assigned,
            _ => &[],
        }
    }

    fn finish(self: Box<Self>, failure: Option<StoreError>) {
        let answer = match (failure, self.outcome) {
            (None, Some(outcome)) => outcome,
            (Some(e), _) => Err(WriteError::Store(e)),
            (None, None) => Err(WriteError::Store(StoreError::corrupt(
                "write batch",
                "a member was answered without being applied",
            ))),
        };
        // The caller may have given up; its write stands either way.
        let _ = self.reply.send(answer);
    }
}

impl Store {
    /// Commits `write`: the one place the store commits a write (see the module docs). It
    /// joins the next group-committed batch and answers once that batch is durable.
    #[tracing::instrument(name = "db.transaction", skip_all, fields(db.operation = operation::<R>(), db.system = self.backend().as_str()))]
    pub async fn commit<R: Rows>(
        &self,
        write: Write<R>,
    ) -> Result<Committed<R::Value>, WriteError<R::Refusal>> {
        submit(self, write).await
    }

    /// The flushes and writes the group committer has done so far (for tests and the
    /// benchmark).
    pub fn batch_stats(&self) -> BatchStats {
        self.batcher.stats()
    }
}

/// The kind of rows a write carries, for its span (`ResultRows`, `NoRows`, …).
fn operation<R>() -> &'static str {
    let name = std::any::type_name::<R>();
    name.rsplit("::").next().unwrap_or(name)
}

/// Queues `write` for the next flush and waits for its answer.
async fn submit<R: Rows>(store: &Store, write: Write<R>) -> Reply<R> {
    let (reply, answer) = oneshot::channel();
    let member = Box::new(Typed {
        write,
        outcome: None,
        reply,
    });
    let start = {
        let mut queue = store.batcher.lock();
        queue.members.push_back((Instant::now(), member));
        !std::mem::replace(&mut queue.flushing, true)
    };
    if start {
        tokio::spawn(flush(store.clone()));
    }
    match answer.await {
        Ok(answer) => answer,
        Err(_) => Err(WriteError::Store(StoreError::corrupt(
            "write batch",
            "the group committer stopped before answering",
        ))),
    }
}

/// Resets the queue's flag if a flush task ends abnormally (a panic in a member), handing
/// what is still queued to a new flush.
struct FlushGuard {
    store: Store,
    done: bool,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let restart = {
            let mut queue = self.store.batcher.lock();
            queue.flushing = !queue.members.is_empty();
            queue.flushing
        };
        if restart {
            tokio::spawn(flush(self.store.clone()));
        }
    }
}

/// Takes queued members into `batch`, up to the batch limit.
fn take(store: &Store, batch: &mut Vec<Box<dyn Member>>, oldest: &mut Option<Instant>) {
    let mut queue = store.batcher.lock();
    while batch.len() < store.batcher.max_batch {
        let Some((at, member)) = queue.members.pop_front() else {
            break;
        };
        oldest.get_or_insert(at);
        batch.push(member);
    }
}

/// Flushes batches until the queue is empty.
async fn flush(store: Store) {
    let mut guard = FlushGuard {
        store: store.clone(),
        done: false,
    };
    loop {
        let mut batch: Vec<Box<dyn Member>> = Vec::new();
        let mut oldest = None;
        {
            let mut queue = store.batcher.lock();
            if queue.members.is_empty() {
                queue.flushing = false;
                guard.done = true;
                return;
            }
        }
        take(&store, &mut batch, &mut oldest);
        if batch.len() > 1 && batch.len() < store.batcher.max_batch {
            if let Some(oldest) = oldest {
                tokio::time::sleep_until(oldest + MAX_WAIT).await;
            }
            take(&store, &mut batch, &mut oldest);
        }
        commit_batch(&store, batch).await;
    }
}

/// Commits `batch` in one transaction and answers its members; when the transaction fails as
/// a whole, applies each member again alone.
async fn commit_batch(store: &Store, mut batch: Vec<Box<dyn Member>>) {
    match run(store, &mut batch).await {
        Ok(()) => answer(store, batch),
        Err(e) if batch.len() == 1 => {
            if let Some(member) = batch.into_iter().next() {
                member.finish(Some(e));
            }
            store.batcher.writes.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            tracing::warn!(error = %e, members = batch.len(), "write batch failed; retrying its members one by one");
            for member in batch {
                let mut alone = vec![member];
                match run(store, &mut alone).await {
                    Ok(()) => answer(store, alone),
                    Err(e) => {
                        if let Some(member) = alone.into_iter().next() {
                            member.finish(Some(e));
                        }
                        store.batcher.writes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// Wakes the feed and answers the members of a committed batch.
fn answer(store: &Store, batch: Vec<Box<dyn Member>>) {
    store.batcher.flushes.fetch_add(1, Ordering::Relaxed);
    store
        .batcher
        .writes
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    for member in batch {
        store.feed_committed(member.assigned());
        member.finish(None);
    }
}

/// Applies every member of `batch` in one transaction and commits it.
async fn run(store: &Store, batch: &mut [Box<dyn Member>]) -> Result<(), StoreError> {
    let backend = store.backend();
    let mut tx = store.write.begin().await?;
    let mut kept = false;
    for member in batch.iter_mut() {
        match member.apply(&mut tx, backend).await {
            Applied::Kept => kept = true,
            Applied::RolledBack => {}
            Applied::Broken(e) => return Err(e.into()),
        }
    }
    if !kept {
        // Nothing to make durable: refusals and replays only.
        tx.rollback().await?;
        return Ok(());
    }
    if backend == Backend::Postgres {
        // One cross-replica wake-up per agency and batch, delivered at commit.
        let agencies: BTreeSet<&str> = batch
            .iter()
            .flat_map(|m| m.assigned().iter().map(|(a, _)| a.as_str()))
            .collect();
        for agency in agencies {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(FEED_CHANNEL)
                .bind(agency)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
