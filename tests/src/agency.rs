//! The fixtures that set a scenario up: one agency's ready clients, and the server the
//! deadline suites run on.

use std::sync::Arc;

use tonic::codec::Streaming;
use yrd_domain::Profile;
use yrd_domain::clock::ManualClock;
use yrd_proto::v1::case_service_client::CaseServiceClient;
use yrd_proto::v1::disposal_service_client::DisposalServiceClient;
use yrd_proto::v1::feed_service_client::FeedServiceClient;
use yrd_proto::v1::licensing_service_client::LicensingServiceClient;
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;
use yrd_proto::v1::{self as pb};

use crate::{Authed, StoreKind, TestApp, next_monday_morning};

/// One agency's clients of the partner-facing services, on the system certificate and with a
/// token issued at the server's current time (a scenario that moves the clock far asks for a
/// fresh set).
pub struct AgencyClients {
    /// Spot-check results.
    pub results: SpotCheckServiceClient<Authed>,
    /// Disposal referrals.
    pub disposal: DisposalServiceClient<Authed>,
    /// Cases across agencies (串案).
    pub cases: CaseServiceClient<Authed>,
    /// Licence applications.
    pub licensing: LicensingServiceClient<Authed>,
    /// The agency's feed.
    pub feed: FeedServiceClient<Authed>,
}

impl TestApp {
    /// The clients of `agency` (its system profile), ready to call.
    pub async fn as_agency(&self, agency: &str) -> AgencyClients {
        let session = self.session(agency, Profile::System).await;
        AgencyClients {
            results: SpotCheckServiceClient::new(session.authed()),
            disposal: DisposalServiceClient::new(session.authed()),
            cases: CaseServiceClient::new(session.authed()),
            licensing: LicensingServiceClient::new(session.authed()),
            feed: FeedServiceClient::new(session.authed()),
        }
    }

    /// `agency`'s live feed, streaming the events after `cursor` (from its acknowledged
    /// position when `None`), with a token of the server's current time.
    pub async fn subscribe(
        &self,
        agency: &str,
        cursor: Option<u64>,
    ) -> Streaming<pb::SubscribeResponse> {
        self.as_agency(agency)
            .await
            .feed
            .subscribe(pb::SubscribeRequest {
                from_cursor: cursor,
            })
            .await
            .expect("subscribe")
            .into_inner()
    }
}

/// A server for the deadline suites: on a manual clock standing at [`next_monday_morning`],
/// with the disposal and licensing schedulers waiting an hour between rounds, so that a
/// scenario moves the clock past a deadline and asks for a round itself
/// ([`TestApp::tick_schedulers`]). Suites name it `spawn` for [`crate::on_both_stores_with_clock`].
pub async fn spawn_for_deadlines(kind: StoreKind) -> Option<(TestApp, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(next_monday_morning()));
    let app = TestApp::spawn_with(
        kind,
        |settings| {
            settings.disposal.scheduler_interval_ms = 3_600_000;
            settings.licensing.scheduler_interval_ms = 3_600_000;
        },
        clock.clone(),
    )
    .await?;
    Some((app, clock))
}
