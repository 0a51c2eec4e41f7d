//! The deadline scheduler: flags referrals whose next deadline passed (REFERRAL_OVERDUE to both
//! parties and the reacting agencies) and, when the 75-day review deadline passed without a
//! conforming review, flags the referral for the "overdue, not corrected" announcement
//! (逾期不改正公告, REFERRAL_ANNOUNCEMENT_REQUIRED).
//!
//! Every tick reads the referrals whose `next_due_at` (the start of the day after the due date,
//! China Standard Time) lies in the past — an index range, however many referrals exist — and
//! applies the domain's `MarkOverdue` to each. Safe with several replicas on one database: the
//! write is conditional on the referral's revision, so when two replicas flag the same
//! deadline one commits (with its events) and the other's transaction writes nothing; and the
//! domain accepts `MarkOverdue` only for deadlines not flagged yet, so no event is raised twice.
//! Each flag is an entry of the exchange log (method [`SCHEDULER_METHOD`], no agency) committed
//! with it, so auditors see the exchange's own steps too. Time comes from the injected clock, so
//! tests move it by hand.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use yrd_call::periodic::{Trigger, every};
use yrd_domain::audit::LeafData;
use yrd_domain::clock::Clock;
use yrd_domain::referral::{Actor, ReferralCommand, apply};
use yrd_proto::v1 as pb;
use yrd_store::{ReferralChange, ReferralWriteError, Store, WriteOutcome};

use crate::error::CallError;
use crate::opener::Opener;
use crate::timeline::{StepContext, StepDetail, advance};

/// The method the exchange log records for the scheduler's own steps (no partner called).
pub const SCHEDULER_METHOD: &str = "yrd-exchange/DisposalScheduler/MarkOverdue";

/// Referrals flagged per tick at most; the rest wait for the next tick.
pub const BATCH: u32 = 100;

/// Flags passed deadlines every `interval`.
#[derive(Debug, Clone)]
pub struct DeadlineScheduler {
    store: Store,
    clock: Arc<dyn Clock>,
    opener: Opener,
    interval: Duration,
}

impl DeadlineScheduler {
    /// A scheduler over `store`, reading time from `clock`, with `opener`'s rules.
    pub fn new(store: Store, clock: Arc<dyn Clock>, opener: Opener, interval: Duration) -> Self {
        DeadlineScheduler {
            store,
            clock,
            opener,
            interval,
        }
    }

    /// Runs a tick every interval, and one per fire of `trigger`, until `stop`.
    pub fn spawn(
        self,
        trigger: Option<&Trigger>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        every(self.interval, trigger, stop, move || {
            let scheduler = self.clone();
            async move {
                if let Err(e) = scheduler.tick().await {
                    tracing::error!(error = %e, "referral deadline tick failed");
                }
            }
        })
    }

    /// One pass: flags every due referral (up to [`BATCH`]); answers how many it flagged.
    pub async fn tick(&self) -> Result<usize, CallError> {
        let now = self.clock.now();
        let now = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now);
        let mut flagged = 0;
        for id in self.store.due_referrals(now, BATCH).await? {
            match self.flag(&id, now).await {
                Ok(true) => flagged += 1,
                Ok(false) => {}
                Err(e) => tracing::error!(referral = %id, error = %e, "flagging a deadline failed"),
            }
        }
        Ok(flagged)
    }

    /// Flags referral `id`; `false` when there was nothing to flag or another replica did.
    async fn flag(&self, id: &str, now: OffsetDateTime) -> Result<bool, CallError> {
        let Some(stored) = self.store.get_referral(id).await? else {
            return Ok(false);
        };
        let t = match apply(
            &stored.machine,
            &ReferralCommand::MarkOverdue,
            &Actor::Scheduler,
            now,
            self.opener.rules(),
        ) {
            Ok(t) => t,
            Err(refusal) => {
                tracing::debug!(referral = %id, %refusal, "nothing to flag");
                return Ok(false);
            }
        };
        let before =
            pb::Referral::decode(stored.body.as_slice()).map_err(|source| CallError::Corrupt {
                what: "referral",
                source,
            })?;
        let (after, events) = advance(
            &before,
            &t,
            &StepDetail::None,
            StepContext {
                actor: None,
                officer: "",
                note: "",
                trace_id: "",
                at: now,
            },
        );
        let change = ReferralChange {
            key: None,
            id: id.to_owned(),
            expected_revision: stored.revision,
            machine: t.new_state,
            body: after.encode_to_vec(),
            at: now,
            reactor: None,
            events,
            leaf: Some(LeafData::of_exchange(
                SCHEDULER_METHOD,
                vec![format!("referrals/{id}")],
                now,
                uuid::Uuid::new_v4().simple().to_string(),
            )),
            response: Vec::new(),
        };
        match self.store.change_referral(&change).await {
            Ok(WriteOutcome::Written(_)) => {
                tracing::info!(referral = %id, "referral deadline flagged");
                Ok(true)
            }
            Ok(WriteOutcome::Replayed(_)) | Err(ReferralWriteError::Conflict(_)) => Ok(false),
            Err(e) => Err(CallError::of_write(&format!("referrals/{id}"), e)),
        }
    }
}
