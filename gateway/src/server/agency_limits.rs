//! Per-agency rate and concurrency limits, so one agency's flood cannot slow the others.
//!
//! Each agency has its own token bucket (GCRA, `governor`) and its own bound on calls in
//! flight. A call over either answers `RESOURCE_EXHAUSTED` at once — never queued, so the
//! flood costs the server almost nothing — with a `google.rpc.RetryInfo` saying when to come
//! back. Health checks are exempt: load balancers probe with their own rhythm.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};
use yrd_domain::{AgencyId, AgencyIdentity};

use crate::server::intercept::{
    Answer, Inner, Intercept, Request, RequestBody, intercepted_layer, take_ready,
};
use crate::server::refuse::refused;

/// The bounds, per agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgencyLimits {
    /// Sustained calls per second.
    pub rate_per_second: NonZeroU32,
    /// Calls allowed in a burst above the sustained rate.
    pub burst: NonZeroU32,
    /// Calls in flight at once.
    pub concurrency: usize,
}

/// Applies [`AgencyLimits`] to every agency separately.
#[derive(Clone)]
pub struct AgencyLimitLayer {
    shared: Arc<Shared>,
}

struct Shared {
    limits: AgencyLimits,
    rate: DefaultKeyedRateLimiter<AgencyId>,
    clock: DefaultClock,
    in_flight: Mutex<HashMap<AgencyId, Arc<Semaphore>>>,
}

impl std::fmt::Debug for AgencyLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgencyLimitLayer")
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl AgencyLimitLayer {
    /// The layer with `limits` for each agency.
    pub fn new(limits: AgencyLimits) -> Self {
        let quota = Quota::per_second(limits.rate_per_second).allow_burst(limits.burst);
        AgencyLimitLayer {
            shared: Arc::new(Shared {
                limits,
                rate: governor::RateLimiter::keyed(quota),
                clock: DefaultClock::default(),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl Shared {
    fn semaphore(&self, agency: &AgencyId) -> Arc<Semaphore> {
        let mut map = match self.in_flight.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(agency.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.limits.concurrency)))
            .clone()
    }
}

fn exhausted(message: String, retry_after: Duration) -> tonic::Status {
    tonic::Status::with_error_details(
        Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(Some(retry_after)),
    )
}

intercepted_layer!(AgencyLimitLayer);

impl<B: RequestBody> Intercept<B> for AgencyLimitLayer {
    fn intercept<S: Inner<B>>(&self, inner: &mut S, request: Request<B>) -> Answer<S::Error> {
        let mut inner = take_ready(inner);
        let exempt = request.uri().path().starts_with("/grpc.health.v1.");
        let agency = request
            .extensions()
            .get::<AgencyIdentity>()
            .map(|i| i.agency.clone());
        let (Some(agency), false) = (agency, exempt) else {
            return Box::pin(inner.call(request));
        };
        if let Err(not_until) = self.shared.rate.check_key(&agency) {
            let wait = not_until.wait_time_from(self.shared.clock.now());
            let status = exhausted(
                format!(
                    "agency {agency} is over its rate limit of {} calls/s (burst {})",
                    self.shared.limits.rate_per_second, self.shared.limits.burst
                ),
                wait.max(Duration::from_millis(1)),
            );
            return refused(request, status);
        }
        let permit = match self.shared.semaphore(&agency).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let status = exhausted(
                    format!(
                        "agency {agency} already has {} calls in flight",
                        self.shared.limits.concurrency
                    ),
                    Duration::from_millis(50),
                );
                return refused(request, status);
            }
        };
        Box::pin(async move {
            let response = inner.call(request).await;
            drop(permit);
            response
        })
    }
}
