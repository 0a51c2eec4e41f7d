//! The one write primitive of the store (docs/architecture.md "Storage").
//!
//! Every write of the exchange is a value, a [`Write`]: the request it answers ([`Claim`],
//! optional), its kind-specific row changes ([`Rows`]: a spot-check result's version, a
//! referral step, a licence step, a certificate, an agency, a signing key, a sequencing step,
//! a feed acknowledgement…), the feed events it raises, the referrals it opens and the call's
//! exchange-log leaf. One function commits it, [`crate::Store::commit`], in this order:
//!
//! 1. claim the request id ([`idempotency`]): answered before with the same body → the stored
//!    answer, nothing written; another body → [`WriteError::RequestIdReused`];
//! 2. apply the rows with their optimistic-concurrency guards: a guard that no longer holds is
//!    a typed refusal ([`WriteError::Refused`]) and nothing of the write stays;
//! 3. insert the referrals, record an encoded answer;
//! 4. append the leaf and the feed events (the write's and its referrals'), with those of the
//!    other writes of its batch;
//! 5. commit, then wake this replica's feed subscribers.
//!
//! Writes are **group-committed** ([`batch`]): concurrent writes are collected and committed
//! in one transaction per flush, each member between `SAVEPOINT` and `RELEASE`, so that a
//! refused or failing member is rolled back to its savepoint without touching the others; the
//! kept members' leaves and feed events follow at the batch's end, several rows per statement.
//! On PostgreSQL several flushes run at once. Each caller gets its own typed answer once the
//! batch is durable.

mod apply;
pub(crate) mod batch;
pub mod idempotency;
mod key;
mod prune;
pub(crate) mod queue;

use std::convert::Infallible;
use std::future::Future;

use sqlx::AnyConnection;
use time::OffsetDateTime;
use yrd_domain::AgencyId;
use yrd_domain::audit::LeafData;

use crate::StoreError;
use crate::audit::leaves::AppendedLeaf;
use crate::error::refuse_duplicate;
use crate::feed::append::NewFeedEvent;
use crate::referrals::model::NewReferral;

pub use idempotency::{Answer, Answered, Claim, IdempotencyKey, Response, WriteOutcome};

/// The kind-specific row changes of a write, applied on the write's connection inside its
/// transaction (between the member's savepoint and its release). Both backends run the same
/// statements (see the crate docs), so rows need not know which one they are on.
///
/// `apply` takes `&self` so that a write can be applied again in a transaction of its own
/// when the batch it was in failed as a whole (a PostgreSQL error that aborts the
/// transaction, a lost connection).
pub trait Rows: Send + Sync + 'static {
    /// What the rows produce (e.g. the updated agency; `()` for most writes).
    type Value: Send + 'static;
    /// Why the rows can be refused (a guard that no longer holds).
    type Refusal: Send + 'static;

    /// Applies the rows on `conn`. A refusal is `Err(WriteError::Refused(…))`.
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
    ) -> impl Future<Output = Result<Self::Value, WriteError<Self::Refusal>>> + Send + 'a;
}

/// No rows of its own: a write of feed events, referrals or a leaf alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRows;

impl Rows for NoRows {
    type Value = ();
    type Refusal = Infallible;

    async fn apply(&self, _conn: &mut AnyConnection) -> Result<(), WriteError<Infallible>> {
        Ok(())
    }
}

/// One write: everything that commits together, or not at all.
#[derive(Debug)]
pub struct Write<R: Rows> {
    /// The request it answers, for idempotency; `None` for writes that are no calls (the
    /// schedulers', the sequencer's, start-up's).
    pub claim: Option<Claim<R::Value>>,
    /// The kind-specific row changes.
    pub rows: R,
    /// The feed events it raises.
    pub events: Vec<NewFeedEvent>,
    /// The referrals it opens (each with its own feed events).
    pub referrals: Vec<NewReferral>,
    /// The call's exchange-log leaf.
    pub leaf: Option<LeafData>,
}

impl<R: Rows> Write<R> {
    /// A write of `rows` alone.
    pub fn new(rows: R) -> Write<R> {
        Write {
            claim: None,
            rows,
            events: Vec::new(),
            referrals: Vec::new(),
            leaf: None,
        }
    }

    /// Answers the request of `claim`.
    pub fn claim(mut self, claim: Option<Claim<R::Value>>) -> Self {
        self.claim = claim;
        self
    }

    /// Answers request `key` (`None` for the exchange's own writes, which are no calls) with
    /// `response`, built before the write; the request is claimed at `at`.
    pub fn claim_ready(
        self,
        key: Option<&IdempotencyKey>,
        response: &[u8],
        at: OffsetDateTime,
    ) -> Self {
        self.claim(key.map(|key| Claim::ready(key.clone(), response.to_vec(), at)))
    }

    /// Raises `events`.
    pub fn events(mut self, events: Vec<NewFeedEvent>) -> Self {
        self.events = events;
        self
    }

    /// Opens `referrals`.
    pub fn referrals(mut self, referrals: Vec<NewReferral>) -> Self {
        self.referrals = referrals;
        self
    }

    /// Appends the call's `leaf`.
    pub fn leaf(mut self, leaf: Option<LeafData>) -> Self {
        self.leaf = leaf;
        self
    }
}

/// What a committed write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<T> {
    /// What its rows produced.
    pub value: T,
    /// The `(recipient, cursor)` of each feed event it appended (its referrals' included).
    pub assigned: Vec<(AgencyId, u64)>,
    /// The leaf it appended.
    pub leaf: Option<AppendedLeaf>,
}

/// What [`Store::commit`] answers: written, or the earlier answer of the same request.
pub type Committed<T> = Answered<Written<T>>;

/// Why a write was not committed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<E> {
    /// The rows were refused (a guard that no longer holds); nothing was written.
    #[error("write refused")]
    Refused(E),
    /// The request id was used before by this agency for this method with another body.
    #[error("request id {request_id:?} was already used for a different request")]
    RequestIdReused {
        /// The request id.
        request_id: String,
    },
    /// A referral it opens duplicates an open referral of the same result to the same agency.
    #[error("result {result_id} already has an open referral to {handling_agency}")]
    ReferralAlreadyOpen {
        /// The result.
        result_id: String,
        /// The handling agency.
        handling_agency: AgencyId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E> From<sqlx::Error> for WriteError<E> {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Store(e.into())
    }
}

impl<E> WriteError<E> {
    /// The same error with its refusal mapped by `f`.
    pub fn map_refusal<F>(self, f: impl FnOnce(E) -> F) -> WriteError<F> {
        match self {
            WriteError::Refused(e) => WriteError::Refused(f(e)),
            WriteError::RequestIdReused { request_id } => {
                WriteError::RequestIdReused { request_id }
            }
            WriteError::ReferralAlreadyOpen {
                result_id,
                handling_agency,
            } => WriteError::ReferralAlreadyOpen {
                result_id,
                handling_agency,
            },
            WriteError::Store(e) => WriteError::Store(e),
        }
    }
}

impl<E> WriteError<E> {
    /// The refusal, or what else went wrong as a [`StoreError`] (a reused request id and a
    /// duplicate open referral keep their meaning as `RequestIdReused` and `AlreadyExists`).
    pub fn refusal(self) -> Result<E, StoreError> {
        match self {
            WriteError::Refused(e) => Ok(e),
            WriteError::RequestIdReused { request_id } => {
                Err(StoreError::RequestIdReused { request_id })
            }
            WriteError::ReferralAlreadyOpen {
                result_id,
                handling_agency,
            } => Err(StoreError::AlreadyExists {
                what: format!("open referral of result {result_id} to {handling_agency}"),
            }),
            WriteError::Store(e) => Err(e),
        }
    }
}

impl<E: Into<StoreError>> WriteError<E> {
    /// The error as a [`StoreError`], for writes whose refusal is one (or that cannot be
    /// refused at all).
    pub fn into_store(self) -> StoreError {
        match self.refusal() {
            Ok(refused) => refused.into(),
            Err(e) => e,
        }
    }
}

/// `result` of an insert, with a unique-key violation refused as
/// [`StoreError::AlreadyExists`] (`what` names the row and its key).
pub(crate) fn refuse_existing<T>(
    result: Result<T, sqlx::Error>,
    what: impl FnOnce() -> String,
) -> Result<T, WriteError<StoreError>> {
    refuse_duplicate(result, || {
        WriteError::Refused(StoreError::AlreadyExists { what: what() })
    })
}
