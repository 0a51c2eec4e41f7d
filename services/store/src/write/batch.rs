//! Group commit: concurrent writes committed in one transaction per flush, several flushes
//! at once on PostgreSQL.
//!
//! A write joins the queue; when fewer flushes run than the store allows
//! (`StoreOptions::max_flushes` on PostgreSQL, one on SQLite, which has one writer), its caller
//! starts one on the runtime (a task of its own, so that a caller that gives up cannot cancel
//! the others' commit). A flush takes the queued writes (at most [`MAX_BATCH`](super::queue::MAX_BATCH)); when it found
//! more than one and fewer than the maximum, it gives stragglers until the oldest has waited
//! [`MAX_WAIT`], since other writers are evidently active; a lone write is committed at once.
//! It then opens one transaction on a pooled connection of its own and applies each member's
//! claim, rows and referrals between `SAVEPOINT` and `RELEASE` (a refused or failing member is
//! rolled back to its savepoint; the others stay; a lone member needs no savepoint, its
//! transaction is its savepoint). At the batch's end it appends the kept members' leaves and
//! feed events, several rows per statement, advancing each recipient's feed head once, in
//! sorted order, so that concurrent batches hold the `feed_heads` rows they share only from
//! there to their commit and never deadlock on them. It commits, wakes the feed and answers
//! every caller. While flushes commit, new writes queue for the next one, so the batch grows
//! with the load and one fsync serves them all.
//!
//! When the batch's transaction fails as a whole (a statement that breaks the transaction, a
//! lost connection, a failed `COMMIT`), each member is applied again in a transaction of its
//! own, so one bad member cannot fail the others; when it failed because the database could not
//! be reached, every member is answered with that failure at once instead. A member that lost a conflict with a
//! concurrent transaction (PostgreSQL's deadlock or serialization failure) is applied once
//! more alone after its batch.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use sqlx::AnyConnection;
use tokio::sync::oneshot;
use tokio::time::Instant;
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;

use super::apply::{apply, events, exec, leaf};
use super::idempotency::{Answered, IdempotencyKey, WriteOutcome};
use super::queue::{BatchSizeObserver, BatchStats, BoxFuture, MAX_WAIT, Member};
use super::{Committed, Rows, Write, WriteError};
use crate::audit::leaves::{AppendedLeaf, append_leaves_in};
use crate::feed::NewFeedEvent;
use crate::feed::append::{FEED_CHANNEL, append_feed_events_in};
use crate::{Backend, Store, StoreError};

type Reply<R> = Result<Committed<<R as Rows>::Value>, WriteError<<R as Rows>::Refusal>>;

struct Typed<R: Rows> {
    write: Write<R>,
    outcome: Option<Reply<R>>,
    reply: oneshot::Sender<Reply<R>>,
}

impl<R: Rows> Member for Typed<R> {
    fn apply<'a>(&'a mut self, conn: &'a mut AnyConnection) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.outcome = None;
            let outcome = apply(&self.write, conn).await;
            let keep = matches!(outcome, Ok(Answered::Written(_)));
            self.outcome = Some(outcome);
            keep
        })
    }

    fn events(&self) -> Box<dyn Iterator<Item = &NewFeedEvent> + '_> {
        Box::new(events(&self.write))
    }

    fn leaf(&self) -> Option<&LeafData> {
        leaf(&self.write)
    }

    fn claim(&self) -> Option<&IdempotencyKey> {
        self.write.claim.as_ref().map(|c| &c.key)
    }

    fn appended(&mut self, appended: Option<AppendedLeaf>, cursors: Vec<(AgencyId, u64)>) {
        if let Some(Ok(Answered::Written(w))) = &mut self.outcome {
            w.leaf = appended;
            w.assigned = cursors;
        }
    }

    fn assigned(&self) -> &[(AgencyId, u64)] {
        match &self.outcome {
            Some(Ok(Answered::Written(w))) => &w.assigned,
            _ => &[],
        }
    }

    fn transient(&self) -> bool {
        match &self.outcome {
            Some(Err(WriteError::Store(e))) => is_transient(e),
            _ => false,
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

/// PostgreSQL's `deadlock_detected` and `serialization_failure`: the transaction lost a
/// conflict with a concurrent one, and the same statements can pass on a new attempt.
fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// When `e` says the database could not be reached (no connection within the acquire timeout,
/// a connection broken by I/O, a closed pool), a copy of it for each member of a batch;
/// `None` for a failure of the statements themselves.
fn unreachable(e: &StoreError) -> Option<StoreError> {
    let StoreError::Database(db) = e else {
        return None;
    };
    let copy = match db {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        _ => return None,
    };
    Some(StoreError::Database(copy))
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

    /// Commits the write of a call ([`Store::commit`]) and answers what the call reports:
    /// the feed cursors it assigned, or the earlier answer of the same request.
    pub(crate) async fn commit_call<R: Rows>(
        &self,
        write: Write<R>,
    ) -> Result<WriteOutcome, WriteError<R::Refusal>> {
        self.commit(write)
            .await
            .map(|done| done.map(|w| w.assigned))
    }

    /// The flushes and writes the group committer has done so far (for tests and the
    /// benchmark).
    pub fn batch_stats(&self) -> BatchStats {
        self.batcher.stats()
    }

    /// Has `observe` told the number of writes of every transaction the group committer
    /// commits from now on (the server's batch-size histogram). Set once per store; answers
    /// false when an observer was already set.
    pub fn observe_batch_sizes(&self, observe: BatchSizeObserver) -> bool {
        self.batcher.sizes.set(observe).is_ok()
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
        store.batcher.start_flush(&mut queue)
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

/// Hands the queue back if a flush task ends abnormally (a panic in a member): the flush no
/// longer counts, and what is still queued goes to a new one.
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
            queue.flushing = queue.flushing.saturating_sub(1);
            self.store.batcher.start_flush(&mut queue)
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
                queue.flushing = queue.flushing.saturating_sub(1);
                guard.done = true;
                return;
            }
        }
        take(&store, &mut batch, &mut oldest);
        if batch.is_empty() {
            // Another flush took them between the check and the take.
            continue;
        }
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
/// a whole, applies each member again alone. A member that lost a conflict with a concurrent
/// transaction is applied once more alone.
async fn commit_batch(store: &Store, mut batch: Vec<Box<dyn Member>>) {
    match run(store, &mut batch).await {
        Ok(()) => {
            let (again, done): (Vec<_>, Vec<_>) = batch.into_iter().partition(|m| m.transient());
            answer(store, done);
            for member in again {
                alone(store, member).await;
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(member) = batch.into_iter().next() {
                if is_transient(&e) {
                    alone(store, member).await;
                } else {
                    member.finish(Some(e));
                    store.batcher.writes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Err(e) if unreachable(&e).is_some() => {
            // Alone, each member would wait for a connection once more (the acquire timeout
            // each, one after the other): while the database is down, every caller would be
            // answered only after the whole batch's waits (docs/reliability.md, "Database
            // outage"). Each gets the failure now; a retry with its request id is safe.
            tracing::warn!(error = %e, members = batch.len(), "write batch failed: the database is unreachable");
            for member in batch {
                member.finish(unreachable(&e));
                store.batcher.writes.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, members = batch.len(), "write batch failed; retrying its members one by one");
            for member in batch {
                alone(store, member).await;
            }
        }
    }
}

/// Applies `member` again in a transaction of its own and answers it.
async fn alone(store: &Store, member: Box<dyn Member>) {
    store.batcher.retried.fetch_add(1, Ordering::Relaxed);
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

/// Wakes the feed and answers the members of a committed batch.
fn answer(store: &Store, batch: Vec<Box<dyn Member>>) {
    if batch.is_empty() {
        return;
    }
    store.batcher.flushes.fetch_add(1, Ordering::Relaxed);
    if let Some(observe) = store.batcher.sizes.get() {
        observe(batch.len());
    }
    store
        .batcher
        .writes
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    for member in batch {
        store.feed_committed(member.assigned());
        member.finish(None);
    }
}

/// The order in which a batch's members claim their requests.
fn claim_order(key: Option<&IdempotencyKey>) -> Option<(&str, &str, &str)> {
    key.map(|k| (k.agency.as_str(), k.method.as_str(), k.request_id.as_str()))
}

/// Applies every member of `batch` in one transaction, appends the kept members' leaves and
/// feed events, and commits.
async fn run(store: &Store, batch: &mut [Box<dyn Member>]) -> Result<(), StoreError> {
    let backend = store.backend();
    // Concurrent batches claim request ids in one order (two retries of one request wait on
    // each other's claim row; claimed in opposite orders, two batches would deadlock). The
    // sort is stable: members claiming one id keep their arrival order.
    batch.sort_by(|a, b| claim_order(a.claim()).cmp(&claim_order(b.claim())));
    // On SQLite the transaction takes the write lock at once: begun deferred, a transaction
    // whose first statement reads would have to upgrade its lock later, and SQLite answers
    // such an upgrade "busy" at once, without waiting, when another process (a second
    // replica on the same file, a `yrd` command) wrote in between.
    let mut tx = match backend {
        Backend::Sqlite => store.write.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => store.write.begin().await?,
    };
    // A lone member's transaction is its savepoint: refused, it is rolled back whole.
    let savepoints = batch.len() > 1;
    let mut kept = vec![false; batch.len()];
    // The savepoint of the member before is still to be released: that goes in the same round
    // trip as the next member's savepoint (the last one is committed without a release).
    let mut release = false;
    for (member, kept) in batch.iter_mut().zip(kept.iter_mut()) {
        if savepoints {
            let open = if release {
                "RELEASE SAVEPOINT yrd_write; SAVEPOINT yrd_write"
            } else {
                "SAVEPOINT yrd_write"
            };
            exec(&mut tx, open).await?;
        }
        *kept = member.apply(&mut tx).await;
        release = savepoints && *kept;
        if savepoints && !*kept {
            exec(
                &mut tx,
                "ROLLBACK TO SAVEPOINT yrd_write; RELEASE SAVEPOINT yrd_write",
            )
            .await?;
        }
    }
    if !kept.contains(&true) {
        // Nothing to make durable: refusals and replays only.
        tx.rollback().await?;
        return Ok(());
    }

    // The batch's end: every kept member's leaf, then every kept member's feed events (the
    // feed heads last, so they are held only from here to the commit).
    let appended = {
        let leaves: Vec<&LeafData> = batch
            .iter()
            .zip(&kept)
            .filter_map(|(m, k)| if *k { m.leaf() } else { None })
            .collect();
        append_leaves_in(&mut tx, &leaves).await?
    };
    let (assigned, counts) = {
        let mut events: Vec<&NewFeedEvent> = Vec::new();
        let mut counts = Vec::with_capacity(batch.len());
        for (member, kept) in batch.iter().zip(&kept) {
            let before = events.len();
            if *kept {
                events.extend(member.events());
            }
            counts.push(events.len() - before);
        }
        (append_feed_events_in(&mut tx, &events).await?, counts)
    };
    if backend == Backend::Postgres && !assigned.is_empty() {
        // One cross-replica wake-up per agency and batch, delivered at commit.
        let agencies: BTreeSet<&str> = assigned.iter().map(|(a, _)| a.as_str()).collect();
        let calls: Vec<String> = (0..agencies.len())
            .map(|i| format!("pg_notify($1, ${})", i + 2))
            .collect();
        let sql = format!("SELECT {}", calls.join(", "));
        let mut notify = sqlx::query(&sql).bind(FEED_CHANNEL);
        for agency in agencies {
            notify = notify.bind(agency);
        }
        notify.execute(&mut *tx).await?;
    }
    let mut leaves = appended.into_iter();
    let mut cursors = assigned.into_iter();
    for ((member, kept), count) in batch.iter_mut().zip(&kept).zip(counts) {
        if !*kept {
            continue;
        }
        let leaf = match member.leaf() {
            Some(_) => leaves.next(),
            None => None,
        };
        member.appended(leaf, cursors.by_ref().take(count).collect());
    }
    tx.commit().await?;
    Ok(())
}
