//! Periodic clean-up that keeps the store from growing without bound.
//!
//! Today: the answers kept for idempotent writes (request ids) older than the configured
//! retention are deleted every hour. Every replica runs it; the delete is idempotent, so
//! replicas racing each other only delete the same rows once.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use yrd_call::periodic::every;
use yrd_domain::clock::Clock;
use yrd_store::Store;

/// How often the pruner runs.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Prunes request-id answers older than `retention` now and then every [`PRUNE_INTERVAL`],
/// until `stop` is cancelled. A failure is logged and retried at the next tick.
pub fn spawn_answer_pruner(
    store: Store,
    clock: Arc<dyn Clock>,
    retention: time::Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    every(PRUNE_INTERVAL, None, stop, move || {
        let (store, clock) = (store.clone(), clock.clone());
        async move {
            match store.prune_answers(clock.now() - retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "expired request-id answers pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning request-id answers failed"),
            }
        }
    })
}
