//! Why a `FeedService` call failed, mapped into the one error core of `yrd_call` (which turns
//! it into a gRPC status). A stream's terminal statuses are chosen in `subscription`, where its
//! ends are.

use yrd_call::{FieldErrors, Kind, STORE_UNAVAILABLE};
use yrd_store::StoreError;

/// A failed unary call, or a stream refused at its start.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The server is shutting down: `UNAVAILABLE`.
    #[error("the exchange is shutting down")]
    ShuttingDown,
    /// A cursor beyond the latest of the caller's feed: `OUT_OF_RANGE` with a `BadRequest`.
    #[error("cursor beyond the latest of the feed")]
    BeyondLatest(FieldErrors),
    /// The store failed: `UNAVAILABLE`.
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
}

impl FeedError {
    /// `cursor` of `field` is beyond the feed's `latest` cursor.
    pub(crate) fn beyond_latest(field: &str, cursor: u64, latest: u64) -> FeedError {
        FeedError::BeyondLatest(FieldErrors::of(
            field,
            format!("cursor {cursor} is beyond the latest cursor of your feed ({latest})"),
        ))
    }
}

impl yrd_call::CallError for FeedError {
    fn kind(&self) -> Kind {
        match self {
            FeedError::ShuttingDown | FeedError::Store(_) => Kind::Unavailable,
            FeedError::BeyondLatest(_) => Kind::OutOfRange,
        }
    }

    fn bad_fields(&self) -> Option<&FieldErrors> {
        match self {
            FeedError::BeyondLatest(fields) => Some(fields),
            _ => None,
        }
    }

    fn public_message(&self) -> String {
        match self {
            FeedError::ShuttingDown => self.to_string(),
            _ => STORE_UNAVAILABLE.to_owned(),
        }
    }
}
