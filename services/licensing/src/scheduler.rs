//! The overdue scheduler: raises `APPLICATION_STEP_OVERDUE` to both provinces once per time
//! limit that passed unmet, and deems an application accepted when its 5-working-day
//! acceptance limit passed (行政许可法 art. 32(4)).
//!
//! Every replica runs one. Each tick reads the applications whose earliest unflagged limit lies
//! before today (an index range on `next_due`) and applies the domain's `MarkOverdue` to each;
//! the write is the same conditional update as a call's step, so when two replicas flag the same
//! application only the first commits, and the other's events never exist. Time comes from the
//! injected clock, so tests move a manual clock and wait for the feed event.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use yrd_call::periodic::{Trigger, every};
use yrd_domain::calendar::china_date;
use yrd_domain::spotcheck::format_date;

use crate::error::CallError;
use crate::service::LicensingHandler;

// Beside the scheduler, as the disposal scheduler's method is.
pub use crate::overdue::SCHEDULER_METHOD;

/// Applications looked at per tick; the rest wait for the next one.
const BATCH: u32 = 200;

impl LicensingHandler {
    /// One pass: flags everything newly overdue; answers how many applications it changed.
    pub async fn flag_overdue_once(&self) -> Result<usize, CallError> {
        let today = format_date(china_date(self.clock.now()));
        let due = self.store.applications_due_before(&today, BATCH).await?;
        let mut flagged = 0;
        for stored in &due {
            match self.flag_overdue(stored).await {
                Ok(true) => flagged += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(application = %stored.id, error = %e, "flagging an overdue application failed");
                }
            }
        }
        Ok(flagged)
    }

    /// Runs [`LicensingHandler::flag_overdue_once`] every `interval`, and once per fire of
    /// `trigger`, until `stop`.
    pub fn spawn_scheduler(
        self,
        interval: Duration,
        trigger: Option<&Trigger>,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        every(interval, trigger, stop, move || {
            let handler = self.clone();
            async move {
                if let Err(e) = handler.flag_overdue_once().await {
                    tracing::error!(error = %e, "licensing overdue scheduler pass failed");
                }
            }
        })
    }
}
