//! A feed consumer: the caller's handler sees every event of its agency's feed, at least once,
//! across disconnects and restarts of either side.
//!
//! # Delivery
//!
//! The consumer subscribes after the cursor in its [`CursorStore`] (after the agency's
//! acknowledged position when the store is empty) and, for each event in cursor order:
//!
//! 1. calls the handler;
//! 2. only once the handler succeeded, saves the event's cursor in the store;
//! 3. acknowledges it to the exchange (`FeedService.Ack`), every `ack_every` events and when
//!    the feed goes idle (a heartbeat arrives), so the exchange's backlog figure stays current.
//!
//! A handler error stops the consumer with the event's cursor unsaved: the next run hands
//! the same event over again. When the stream ends or breaks (the exchange restarts, the
//! connection drops, the token the stream was opened with expires, the exchange drops a
//! subscriber that fell too far behind), the consumer reconnects with jittered exponential
//! backoff and resumes after the stored cursor.
//!
//! This is **at-least-once**: an event whose handler succeeded but whose cursor was not yet
//! saved when the process died is handed over again on the next run. Handlers must therefore
//! be idempotent, e.g. by remembering `FeedEvent.event_id`, which is the same on every
//! redelivery. Nothing is lost and nothing is reordered. Within one run an event at or before
//! the stored cursor is never handed over twice.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::{Code, Status};
use yrd_proto::v1::subscribe_response::Kind;
use yrd_proto::v1::{AckRequest, FeedEvent, SubscribeRequest};

use crate::Client;
use crate::error::RpcError;
use crate::retry::RetryPolicy;

/// Where a consumer keeps the cursor of the last event its handler processed.
pub trait CursorStore: Send + Sync {
    /// The stored cursor; `None` when nothing was stored yet.
    fn load(&self) -> impl Future<Output = io::Result<Option<u64>>> + Send;
    /// Stores `cursor`, durably, before answering.
    fn save(&self, cursor: u64) -> impl Future<Output = io::Result<()>> + Send;
}

/// A cursor in a file of its own, as decimal text.
///
/// A save writes a temporary file beside it, flushes it to disk, renames it over the file and
/// flushes the folder, so after a crash the file holds either the old cursor or the new one,
/// never a torn write.
#[derive(Debug, Clone)]
pub struct FileCursorStore {
    path: PathBuf,
}

impl FileCursorStore {
    /// The store at `path`; its folder must exist.
    pub fn new(path: impl Into<PathBuf>) -> FileCursorStore {
        FileCursorStore { path: path.into() }
    }

    /// The cursor file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn temporary(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        self.path.with_file_name(name)
    }

    fn load_now(&self) -> io::Result<Option<u64>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        text.trim().parse().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not hold a cursor: {text:?}", self.path.display()),
            )
        })
    }

    fn save_now(&self, cursor: u64) -> io::Result<()> {
        use std::io::Write as _;
        let temporary = self.temporary();
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(format!("{cursor}\n").as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, &self.path)?;
        let folder = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        // The rename is durable once the folder is flushed (POSIX; elsewhere a no-op).
        #[cfg(unix)]
        std::fs::File::open(folder)?.sync_all()?;
        #[cfg(not(unix))]
        let _ = folder;
        Ok(())
    }
}

impl CursorStore for FileCursorStore {
    async fn load(&self) -> io::Result<Option<u64>> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.load_now())
            .await
            .map_err(io::Error::other)?
    }

    async fn save(&self, cursor: u64) -> io::Result<()> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.save_now(cursor))
            .await
            .map_err(io::Error::other)?
    }
}

/// A cursor in memory, shared by its clones: for tests, and consumers that resume from the
/// exchange's acknowledged position on restart.
#[derive(Debug, Clone, Default)]
pub struct MemoryCursorStore {
    cursor: Arc<std::sync::Mutex<Option<u64>>>,
}

impl MemoryCursorStore {
    /// The cursor stored now.
    pub fn get(&self) -> Option<u64> {
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CursorStore for MemoryCursorStore {
    async fn load(&self) -> io::Result<Option<u64>> {
        Ok(self.get())
    }

    async fn save(&self, cursor: u64) -> io::Result<()> {
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = Some(cursor);
        Ok(())
    }
}

/// Why a consumer stopped.
#[derive(Debug, thiserror::Error)]
pub enum FeedError<E: fmt::Debug + fmt::Display> {
    /// The handler failed; the event's cursor was not saved, so it is handed over again.
    #[error("the handler failed on the event at cursor {cursor}: {error}")]
    Handler {
        /// The event's cursor.
        cursor: u64,
        /// The handler's error.
        error: E,
    },
    /// The cursor store failed.
    #[error("the cursor store failed: {0}")]
    Store(#[source] io::Error),
    /// The exchange refused the subscription or the acknowledgement in a way a reconnect
    /// cannot mend (e.g. `PERMISSION_DENIED`, `OUT_OF_RANGE` for a stored cursor beyond the
    /// feed's end).
    #[error(transparent)]
    Rpc(RpcError),
}

/// Whether a broken or refused subscription is worth reconnecting for.
fn reconnectable(status: &Status) -> bool {
    !matches!(
        status.code(),
        Code::InvalidArgument
            | Code::OutOfRange
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::NotFound
            | Code::Unimplemented
            | Code::FailedPrecondition
    )
}

/// Consumes the feed of the client's agency; see the [module documentation](self).
#[derive(Debug)]
pub struct FeedConsumer<S> {
    client: Client,
    store: S,
    reconnect: RetryPolicy,
    ack_every: u64,
}

impl<S: CursorStore> FeedConsumer<S> {
    /// A consumer for `client`'s agency keeping its cursor in `store`; reconnects with the
    /// default backoff (100 ms doubling to 5 s, jittered) and acknowledges every 100 events.
    pub fn new(client: Client, store: S) -> FeedConsumer<S> {
        FeedConsumer {
            client,
            store,
            reconnect: RetryPolicy::default(),
            ack_every: 100,
        }
    }

    /// The backoff between reconnects (its `initial_delay` and `max_delay`; the consumer
    /// reconnects without limit).
    pub fn reconnect_backoff(mut self, policy: RetryPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Acknowledge to the exchange every `n` events (at least 1), besides when idle.
    pub fn ack_every(mut self, n: u64) -> Self {
        self.ack_every = n.max(1);
        self
    }

    /// The cursor store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Hands each event to `handler`, in cursor order, until `shutdown` completes (then it
    /// answers `Ok`) or something a reconnect cannot mend happens. `shutdown` is looked at
    /// between events: a handler that started runs to its end.
    pub async fn run<H, Fut, E>(
        &self,
        mut handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), FeedError<E>>
    where
        H: FnMut(FeedEvent) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: fmt::Debug + fmt::Display,
    {
        tokio::pin!(shutdown);
        let mut feed = self.client.feed();
        let mut failures = 0u32;
        let mut pending_ack: Option<u64> = None;
        let mut since_ack = 0u64;
        loop {
            let stored = self.store.load().await.map_err(FeedError::Store)?;
            let request = SubscribeRequest {
                from_cursor: stored,
            };
            let subscribed = tokio::select! {
                biased;
                () = &mut shutdown => return self.flush(pending_ack).await,
                subscribed = feed.subscribe(request) => subscribed,
            };
            let (broken, established) = match subscribed {
                Err(status) => (status, false),
                Ok(response) => {
                    tracing::debug!(?stored, "subscribed to the feed");
                    let mut stream = response.into_inner();
                    let mut last = stored.unwrap_or(0);
                    loop {
                        let message = tokio::select! {
                            biased;
                            () = &mut shutdown => return self.flush(pending_ack).await,
                            message = stream.message() => message,
                        };
                        match message {
                            Ok(Some(message)) => {
                                failures = 0;
                                match message.kind {
                                    Some(Kind::Event(event)) if event.cursor > last => {
                                        let cursor = event.cursor;
                                        handler(event).await.map_err(|error| {
                                            FeedError::Handler { cursor, error }
                                        })?;
                                        self.store.save(cursor).await.map_err(FeedError::Store)?;
                                        last = cursor;
                                        pending_ack = Some(cursor);
                                        since_ack += 1;
                                        if since_ack >= self.ack_every {
                                            self.ack(&mut pending_ack, &mut since_ack).await?;
                                        }
                                    }
                                    Some(Kind::Heartbeat(_)) => {
                                        self.ack(&mut pending_ack, &mut since_ack).await?;
                                    }
                                    _ => {}
                                }
                            }
                            Ok(None) => {
                                break (Status::unavailable("the feed stream ended"), true);
                            }
                            Err(status) => break (status, true),
                        }
                    }
                }
            };
            // A stream ends with UNAUTHENTICATED when the token it was opened with expires;
            // the new subscription goes out with a renewed one.
            let expired = established && broken.code() == Code::Unauthenticated;
            if !expired && !reconnectable(&broken) {
                return Err(FeedError::Rpc(RpcError::new(
                    "FeedService.Subscribe",
                    broken,
                )));
            }
            failures = failures.saturating_add(1);
            let wait = self.reconnect.backoff(failures);
            tracing::info!(code = ?broken.code(), message = broken.message(), ?wait, "feed stream broken; reconnecting");
            tokio::select! {
                biased;
                () = &mut shutdown => return self.flush(pending_ack).await,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Acknowledges the pending cursor, if any. A failure that a reconnect mends is left for
    /// the next acknowledgement (the cursor is already in the store).
    async fn ack<E: fmt::Debug + fmt::Display>(
        &self,
        pending: &mut Option<u64>,
        since: &mut u64,
    ) -> Result<(), FeedError<E>> {
        let Some(cursor) = *pending else {
            return Ok(());
        };
        match self.client.feed().ack(AckRequest { cursor }).await {
            Ok(_) => {
                *pending = None;
                *since = 0;
                Ok(())
            }
            Err(status) if reconnectable(&status) => {
                tracing::debug!(cursor, code = ?status.code(), "ack failed; acknowledging later");
                Ok(())
            }
            Err(status) => Err(FeedError::Rpc(RpcError::new("FeedService.Ack", status))),
        }
    }

    /// At shutdown: acknowledges what is pending, best effort.
    async fn flush<E: fmt::Debug + fmt::Display>(
        &self,
        pending: Option<u64>,
    ) -> Result<(), FeedError<E>> {
        if let Some(cursor) = pending {
            if let Err(status) = self.client.feed().ack(AckRequest { cursor }).await {
                tracing::debug!(cursor, code = ?status.code(), "ack at shutdown failed");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_store_starts_empty_and_resumes_from_the_last_save() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("feed.cursor");
        let store = FileCursorStore::new(&path);
        assert_eq!(store.load().await.expect("load"), None);
        store.save(7).await.expect("save");
        store.save(42).await.expect("save");
        // A new store on the same file, as after a restart of the partner's process.
        let reopened = FileCursorStore::new(&path);
        assert_eq!(reopened.load().await.expect("load"), Some(42));
        assert!(!store.temporary().exists(), "no temporary file left behind");
    }

    #[tokio::test]
    async fn a_torn_temporary_file_from_a_crash_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileCursorStore::new(dir.path().join("feed.cursor"));
        store.save(41).await.expect("save");
        // A crash in the middle of the next save leaves a half-written temporary file.
        std::fs::write(store.temporary(), b"4").expect("torn write");
        assert_eq!(store.load().await.expect("load"), Some(41));
        store.save(43).await.expect("a save after the crash");
        assert_eq!(store.load().await.expect("load"), Some(43));
    }

    #[test]
    fn a_reader_never_sees_a_partial_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileCursorStore::new(dir.path().join("feed.cursor"));
        store.save_now(1).expect("first save");
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                let mut last = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let cursor = store
                        .load_now()
                        .expect("always a whole cursor")
                        .expect("never missing once saved");
                    assert!(cursor >= last, "went back from {last} to {cursor}");
                    last = cursor;
                    reads += 1;
                }
                reads
            })
        };
        // Cursors of different lengths, so a torn write would show as a wrong number.
        for cursor in (1..400u64).map(|i| i * i * 1_000_003) {
            store.save_now(cursor).expect("save");
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let reads = reader.join().expect("the reader saw only whole cursors");
        assert!(reads > 0);
        assert_eq!(store.load_now().expect("load"), Some(399 * 399 * 1_000_003));
    }

    #[tokio::test]
    async fn garbage_in_the_file_is_an_error_not_a_restart_from_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileCursorStore::new(dir.path().join("feed.cursor"));
        std::fs::write(store.path(), b"not a number").expect("write");
        let error = store.load().await.expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_memory_store_is_shared_by_its_clones() {
        let store = MemoryCursorStore::default();
        let clone = store.clone();
        assert_eq!(clone.load().await.expect("load"), None);
        store.save(5).await.expect("save");
        assert_eq!(clone.get(), Some(5));
    }

    #[test]
    fn only_mendable_statuses_reconnect() {
        assert!(reconnectable(&Status::unavailable("restart")));
        assert!(reconnectable(&Status::resource_exhausted(
            "slow subscriber"
        )));
        assert!(reconnectable(&Status::cancelled("shutdown")));
        assert!(!reconnectable(&Status::permission_denied("not yours")));
        assert!(!reconnectable(&Status::out_of_range("beyond the feed")));
    }
}
