//! `FeedService`: the caller agency's feed. Callable with the `feed:read` role (the gateway's
//! policy layer checks it); the agency is always the caller's own, taken from the identity the
//! gateway put in the request, so no message field can name another agency's feed.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use yrd_call::{receipt, request_sha256, timestamp};
use yrd_domain::AgencyId;
use yrd_domain::audit::AuditCall;
use yrd_domain::clock::Clock;
use yrd_pki::ReceiptSigner;
use yrd_proto::v1::feed_service_server::FeedService;
use yrd_proto::v1::{
    AckRequest, AckResponse, GetFeedPositionRequest, GetFeedPositionResponse, SubscribeRequest,
};
use yrd_store::{AckError, Store};

use crate::options::FeedOptions;
use crate::status::{beyond_latest, caller_agency, store_failure};
use crate::subscription::{Outbound, SlowDrops, Subscription};

/// The `FeedService` handler.
#[derive(Debug, Clone)]
pub struct FeedHandler {
    store: Store,
    clock: Arc<dyn Clock>,
    /// Signs the receipts of `Ack`, the service's one write.
    receipts: Arc<ReceiptSigner>,
    options: FeedOptions,
    /// Counts the subscribers dropped as too slow.
    slow_drops: SlowDrops,
    /// The server's shutdown: cancelling it ends every open stream with `UNAVAILABLE`, so
    /// graceful shutdown does not wait on streams that never end by themselves.
    stop: CancellationToken,
}

impl FeedHandler {
    /// A handler reading feeds from `store`; streams end when `stop` is cancelled.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        receipts: Arc<ReceiptSigner>,
        options: FeedOptions,
        stop: CancellationToken,
    ) -> Self {
        FeedHandler {
            store,
            clock,
            receipts,
            options: options.sanitized(),
            slow_drops: SlowDrops::default(),
            stop,
        }
    }

    /// The handler counting the subscribers it drops as too slow in `slow_drops`.
    pub fn with_slow_drops(self, slow_drops: SlowDrops) -> Self {
        FeedHandler { slow_drops, ..self }
    }
}

/// The resource name of an agency's feed, as the audit log records it.
fn feed_name(agency: &AgencyId) -> String {
    format!("agencies/{agency}/feed")
}

/// Records in the call's audit notes which feed it touched (the audit layer writes the leaf of
/// a read; `Ack` writes its own).
fn note<T: prost::Message>(request: &Request<T>, agency: &AgencyId) -> Option<AuditCall> {
    let audit = AuditCall::new(request.extensions().get(), request.extensions().get())?;
    audit.note(vec![feed_name(agency)], request_sha256(request.get_ref()));
    Some(audit)
}

#[tonic::async_trait]
impl FeedService for FeedHandler {
    type SubscribeStream = Outbound;

    #[tracing::instrument(skip_all, fields(agency, from_cursor))]
    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let agency = caller_agency(&request)?;
        note(&request, &agency);
        let from_cursor = request.get_ref().from_cursor;
        tracing::Span::current()
            .record("agency", tracing::field::display(&agency))
            .record("from_cursor", tracing::field::debug(from_cursor));
        if self.stop.is_cancelled() {
            return Err(Status::unavailable("the exchange is shutting down"));
        }
        let position = self
            .store
            .feed_position(&agency)
            .await
            .map_err(|e| store_failure(&e))?;
        let after = match from_cursor {
            Some(cursor) if cursor > position.latest => {
                return Err(beyond_latest("from_cursor", cursor, position.latest));
            }
            Some(cursor) => cursor,
            None => position.acked,
        };
        let stream = Subscription {
            store: self.store.clone(),
            clock: self.clock.clone(),
            options: self.options,
            slow_drops: self.slow_drops.clone(),
            agency,
            after,
        }
        .start(&self.stop);
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all, fields(agency, cursor = request.get_ref().cursor))]
    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<AckResponse>, Status> {
        let agency = caller_agency(&request)?;
        tracing::Span::current().record("agency", tracing::field::display(&agency));
        let audit = note(&request, &agency);
        let leaf = audit.as_ref().map(AuditCall::success_leaf);
        let cursor = request.get_ref().cursor;
        let now = self.clock.now();
        let acked = self
            .store
            .ack_feed_with_leaf(&agency, cursor, now, leaf.as_ref())
            .await
            .map_err(|e| match e {
                AckError::BeyondLatest { cursor, latest } => {
                    beyond_latest("cursor", cursor, latest)
                }
                AckError::Store(e) => store_failure(&e),
            })?;
        let receipt = match (audit, leaf) {
            (Some(audit), Some(leaf)) => {
                audit.mark_written();
                Some(receipt(&self.receipts.sign(&leaf.leaf_hash(), now)))
            }
            _ => None,
        };
        Ok(Response::new(AckResponse {
            acked_cursor: acked,
            receipt,
        }))
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn get_feed_position(
        &self,
        request: Request<GetFeedPositionRequest>,
    ) -> Result<Response<GetFeedPositionResponse>, Status> {
        let agency = caller_agency(&request)?;
        tracing::Span::current().record("agency", tracing::field::display(&agency));
        note(&request, &agency);
        let position = self
            .store
            .feed_position(&agency)
            .await
            .map_err(|e| store_failure(&e))?;
        // Cursors are gap-free per agency, so the backlog is a difference, not a count query.
        let backlog = position.latest.saturating_sub(position.acked);
        let oldest_unacked_event_time = if backlog == 0 {
            None
        } else {
            self.store
                .feed_events_after(&agency, position.acked, 1)
                .await
                .map_err(|e| store_failure(&e))?
                .first()
                .map(|record| timestamp(record.event.event_time))
        };
        Ok(Response::new(GetFeedPositionResponse {
            acked_cursor: position.acked,
            latest_cursor: position.latest,
            backlog,
            oldest_unacked_event_time,
        }))
    }
}
