//! `FeedService`: the caller agency's feed. Callable with the `feed:read` role (the gateway's
//! policy layer checks it); the agency is always the caller's own, taken from the identity the
//! gateway put in the request, so no message field can name another agency's feed.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use yrd_call::{Call, receipt, timestamp};
use yrd_domain::AgencyId;
use yrd_domain::clock::Clock;
use yrd_pki::ReceiptSigner;
use yrd_proto::v1::feed_service_server::FeedService;
use yrd_proto::v1::{
    AckRequest, AckResponse, GetFeedPositionRequest, GetFeedPositionResponse, SubscribeRequest,
};
use yrd_store::{AckError, Store};

use crate::options::FeedOptions;
use crate::status::FeedError;
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

#[tonic::async_trait]
impl FeedService for FeedHandler {
    type SubscribeStream = Outbound;

    #[tracing::instrument(skip_all, fields(agency, from_cursor))]
    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let mut call = Call::of(&request)?;
        let agency = call.agency().clone();
        // The audit layer writes the leaf of the stream; it records which feed it read.
        call.note(vec![feed_name(&agency)]);
        let from_cursor = request.get_ref().from_cursor;
        let result = self.subscribe_call(agency, from_cursor).await;
        call.respond(result)
    }

    #[tracing::instrument(skip_all, fields(agency, cursor = request.get_ref().cursor))]
    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<AckResponse>, Status> {
        let mut call = Call::of(&request)?;
        let result = self.ack_call(&mut call, request.get_ref().cursor).await;
        call.respond(result)
    }

    #[tracing::instrument(skip_all, fields(agency))]
    async fn get_feed_position(
        &self,
        request: Request<GetFeedPositionRequest>,
    ) -> Result<Response<GetFeedPositionResponse>, Status> {
        let mut call = Call::of(&request)?;
        let agency = call.agency().clone();
        call.note(vec![feed_name(&agency)]);
        let result = self.position_call(agency).await;
        call.respond(result)
    }
}

impl FeedHandler {
    async fn subscribe_call(
        &self,
        agency: AgencyId,
        from_cursor: Option<u64>,
    ) -> Result<Outbound, FeedError> {
        tracing::Span::current()
            .record("agency", tracing::field::display(&agency))
            .record("from_cursor", tracing::field::debug(from_cursor));
        if self.stop.is_cancelled() {
            return Err(FeedError::ShuttingDown);
        }
        let position = self.store.feed_position(&agency).await?;
        let after = match from_cursor {
            Some(cursor) if cursor > position.latest => {
                return Err(FeedError::beyond_latest(
                    "from_cursor",
                    cursor,
                    position.latest,
                ));
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
        Ok(stream)
    }

    async fn ack_call(&self, call: &mut Call, cursor: u64) -> Result<AckResponse, FeedError> {
        let agency = call.agency().clone();
        tracing::Span::current().record("agency", tracing::field::display(&agency));
        call.note(vec![feed_name(&agency)]);
        let leaf = call.success_leaf();
        let now = self.clock.now();
        let acked = self
            .store
            .ack_feed_with_leaf(&agency, cursor, now, leaf.as_ref())
            .await
            .map_err(|e| match e {
                AckError::BeyondLatest { cursor, latest } => {
                    FeedError::beyond_latest("cursor", cursor, latest)
                }
                AckError::Store(e) => FeedError::Store(e),
            })?;
        let receipt = leaf.map(|leaf| {
            call.mark_written();
            receipt(&self.receipts.sign(&leaf.leaf_hash(), now))
        });
        Ok(AckResponse {
            acked_cursor: acked,
            receipt,
        })
    }

    async fn position_call(&self, agency: AgencyId) -> Result<GetFeedPositionResponse, FeedError> {
        tracing::Span::current().record("agency", tracing::field::display(&agency));
        let position = self.store.feed_position(&agency).await?;
        // Cursors are gap-free per agency, so the backlog is a difference, not a count query.
        let backlog = position.latest.saturating_sub(position.acked);
        let oldest_unacked_event_time = if backlog == 0 {
            None
        } else {
            self.store
                .feed_events_after(&agency, position.acked, 1)
                .await?
                .first()
                .map(|record| timestamp(record.event.event_time))
        };
        Ok(GetFeedPositionResponse {
            acked_cursor: position.acked,
            latest_cursor: position.latest,
            backlog,
            oldest_unacked_event_time,
        })
    }
}
