//! One way to run a background task "every period until stopped": the revocation watcher, the
//! key rings' reload and rotation, the sequencer, the deadline schedulers and housekeeping all
//! go through [`every`], so they share one tick discipline (a round at once, then one per
//! period; a round that overruns delays the next instead of bursting) and one way to stop.
//!
//! A task whose round depends on time passing in the domain (a scheduler flagging deadlines)
//! reads that time from the injected clock, not from its timer. Tests therefore move a manual
//! clock and [`Trigger::fire`] the task for a round at once, instead of sleeping until its
//! period comes round.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a periodic task does each round. Closures returning a future are tasks too; a type of
/// its own suits a task that keeps state from one round to the next.
pub trait Periodic: Send + 'static {
    /// One round. Failures are the task's to log: the next round comes regardless.
    fn round(&mut self) -> impl Future<Output = ()> + Send;

    /// After the last round, once `stop` came: what the task lets go of (a lock it holds).
    fn stopped(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        std::future::ready(())
    }
}

impl<F, Fut> Periodic for F
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    fn round(&mut self) -> impl Future<Output = ()> + Send {
        self()
    }
}

/// Asks the tasks spawned with it for a round now, without waiting for their period. A fire
/// that comes while a round runs is kept: one more round follows it.
#[derive(Debug, Clone)]
pub struct Trigger(Arc<watch::Sender<u64>>);

impl Default for Trigger {
    fn default() -> Self {
        Trigger::new()
    }
}

impl Trigger {
    /// A trigger no task listens to yet.
    pub fn new() -> Self {
        Trigger(Arc::new(watch::Sender::new(0)))
    }

    /// Every task spawned with this trigger runs a round as soon as it is free.
    pub fn fire(&self) {
        self.0.send_modify(|fired| *fired = fired.wrapping_add(1));
    }
}

/// Spawns `task`: a round at once, then one every `period` (and one per [`Trigger::fire`] of
/// `trigger`), until `stop` is cancelled; then [`Periodic::stopped`]. A round in progress when
/// `stop` comes finishes first.
pub fn every<T: Periodic>(
    period: Duration,
    trigger: Option<&Trigger>,
    stop: CancellationToken,
    mut task: T,
) -> JoinHandle<()> {
    // A zero period would make `interval` panic; a millisecond is the shortest that means it.
    let period = period.max(Duration::from_millis(1));
    let mut fired = trigger.map(|t| t.0.subscribe());
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = timer.tick() => {}
                Some(()) = next_fire(&mut fired) => {}
            }
            task.round().await;
        }
        task.stopped().await;
    })
}

/// A ring of signing keys kept in the store (the token keys, the log keys): what
/// [`keep_rotated`] reloads and rotates.
pub trait RotatedKeys: Send + Sync + 'static {
    /// Why a reload or a rotation failed.
    type Error: std::fmt::Display + Send;
    /// What the keys sign, in log lines (`token`, `log`).
    const SIGNS: &'static str;
    /// Reads the ring again from the store.
    fn reload(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Rotates the keys that are due, logging each rotation.
    fn rotate_due(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Spawns the one reload-and-rotate loop of a key ring: every `period` until `stop` is
/// cancelled, reloads `keys` and rotates those due. A failure is logged and the next round
/// comes regardless.
pub fn keep_rotated<K: RotatedKeys>(
    keys: Arc<K>,
    period: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    every(period, None, stop, move || {
        let keys = keys.clone();
        async move {
            if let Err(e) = keys.reload().await {
                tracing::warn!(error = %e, "{} key ring not reloaded", K::SIGNS);
            }
            if let Err(e) = keys.rotate_due().await {
                tracing::warn!(error = %e, "{} signing key not rotated", K::SIGNS);
            }
        }
    })
}

/// Resolves at the trigger's next fire; never without a trigger, or once it is gone.
async fn next_fire(fired: &mut Option<watch::Receiver<u64>>) -> Option<()> {
    match fired {
        Some(rx) => rx.changed().await.ok(),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counter() -> (Arc<AtomicUsize>, impl Periodic) {
        let rounds = Arc::new(AtomicUsize::new(0));
        let counted = rounds.clone();
        let task = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(())
        };
        (rounds, task)
    }

    /// Waits (bounded) until `rounds` reaches `n`.
    async fn reaches(rounds: &AtomicUsize, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while rounds.load(Ordering::SeqCst) < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} rounds, got {}", rounds.load(Ordering::SeqCst)));
    }

    #[tokio::test]
    async fn a_round_at_once_then_one_per_fire_and_none_after_stop() {
        let (rounds, task) = counter();
        let trigger = Trigger::new();
        let stop = CancellationToken::new();
        // An hour's period: every round after the first is the trigger's.
        let handle = every(
            Duration::from_secs(3600),
            Some(&trigger),
            stop.clone(),
            task,
        );
        reaches(&rounds, 1).await;
        trigger.fire();
        reaches(&rounds, 2).await;
        trigger.fire();
        reaches(&rounds, 3).await;
        stop.cancel();
        handle.await.expect("the task ends cleanly");
        trigger.fire();
        tokio::task::yield_now().await;
        assert_eq!(rounds.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn rounds_follow_the_period_without_a_trigger() {
        let (rounds, task) = counter();
        let stop = CancellationToken::new();
        let handle = every(Duration::from_millis(10), None, stop.clone(), task);
        reaches(&rounds, 3).await;
        stop.cancel();
        handle.await.expect("the task ends cleanly");
    }

    #[derive(Default)]
    struct Stateful {
        seen: Vec<usize>,
        log: Arc<std::sync::Mutex<Vec<usize>>>,
    }

    impl Periodic for Stateful {
        async fn round(&mut self) {
            self.seen.push(self.seen.len());
            if let Ok(mut log) = self.log.lock() {
                *log = self.seen.clone();
            }
        }
    }

    #[tokio::test]
    async fn a_task_type_keeps_its_state_between_rounds() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let trigger = Trigger::new();
        let stop = CancellationToken::new();
        let task = Stateful {
            log: log.clone(),
            ..Stateful::default()
        };
        let handle = every(
            Duration::from_secs(3600),
            Some(&trigger),
            stop.clone(),
            task,
        );
        let rounds = |n: usize| {
            let log = log.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(10), async {
                    while log.lock().map(|l| l.len()).unwrap_or(0) < n {
                        tokio::task::yield_now().await;
                    }
                })
                .await
                .unwrap_or_else(|_| panic!("{n} rounds"));
            }
        };
        rounds(1).await;
        trigger.fire();
        rounds(2).await;
        trigger.fire();
        rounds(3).await;
        stop.cancel();
        handle.await.expect("the task ends cleanly");
        assert_eq!(*log.lock().expect("log"), vec![0, 1, 2]);
    }
}
