//! What every disposal scenario uses: the sample result, an agency's feed, and the steps of a
//! referral as one-line calls that answer the referral as it stands after the step.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tonic::codec::Streaming;
use yrd_domain::calendar::china_date;
use yrd_domain::clock::{Clock, ManualClock};
use yrd_e2e::fixtures;
use yrd_e2e::{AgencyClients, TestApp};
use yrd_proto::v1::{self as pb};

/// How long a test waits for an event that should come at once.
const PROMPT: Duration = Duration::from_secs(20);

/// Day 0 of every scenario.
pub fn start() -> OffsetDateTime {
    yrd_e2e::next_monday_morning()
}

/// An agency's live feed, remembering where it got to so it can be renewed.
pub struct Feed {
    agency: String,
    stream: Streaming<pb::SubscribeResponse>,
    cursor: Option<u64>,
}

impl Feed {
    pub async fn open(app: &TestApp, id: &str) -> Feed {
        Self::open_after(app, id, None).await
    }

    async fn open_after(app: &TestApp, id: &str, cursor: Option<u64>) -> Feed {
        let stream = app.subscribe(id, cursor).await;
        Feed {
            agency: id.to_owned(),
            stream,
            cursor,
        }
    }

    /// Subscribes again from the last event read, with a token of the server's current time:
    /// a subscription ends when its token expires, as it does when the test moves the clock
    /// by days.
    pub async fn renew(&mut self, app: &TestApp) {
        *self = Self::open_after(app, &self.agency, self.cursor).await;
    }

    /// The next event, skipping heartbeats.
    pub async fn next(&mut self) -> pb::FeedEvent {
        let event = fixtures::next_event(&mut self.stream, PROMPT).await;
        self.cursor = Some(event.cursor);
        event
    }

    /// The next event, which must be about a referral: its type, step kind and referral.
    pub async fn next_referral(&mut self) -> (pb::EventType, pb::ReferralStepKind, pb::Referral) {
        let event = self.next().await;
        let kind = event.event_type();
        let step = event.referral_step_kind();
        match event.resource {
            Some(pb::feed_event::Resource::Referral(r)) => (kind, step, r),
            other => panic!("expected a referral event, got {kind:?} with {other:?}"),
        }
    }

    /// The next event, which must be the referral step `step` announced as `kind`: answers the
    /// referral as the event carries it.
    pub async fn expect_step(
        &mut self,
        kind: pb::EventType,
        step: pb::ReferralStepKind,
    ) -> pb::Referral {
        let (got_kind, got_step, referral) = self.next_referral().await;
        assert_eq!((got_kind, got_step), (kind, step), "{referral:?}");
        referral
    }

    /// Reads past the published result and the referral it opened.
    pub async fn skip_opening(&mut self) {
        let _ = self.next().await; // the result
        let _ = self.next().await; // the referral
    }
}

/// A non-conforming online purchase of a toy made in `producer_region`, sold by a shop in
/// `seller_region`, sampled and reported a few weeks before the clock's start.
pub fn sample(producer_region: &str, seller_region: &str) -> pb::SpotCheckResult {
    fixtures::non_conforming_toy(producer_region, seller_region, start())
}

/// Publishes `result` as `who` with `request_id`.
pub async fn publish(
    who: &mut AgencyClients,
    request_id: &str,
    result: pb::SpotCheckResult,
) -> pb::PublishResultResponse {
    who.results
        .publish_result(pb::PublishResultRequest {
            request_id: request_id.into(),
            result: Some(result),
        })
        .await
        .expect("publish")
        .into_inner()
}

/// Publishes a result against a Shandong producer sold by a Shanghai shop: one referral, to
/// Shandong. Answers its name.
pub async fn referral_to_shandong(shanghai: &mut AgencyClients, request_id: &str) -> String {
    let published = publish(shanghai, request_id, sample("370102", "310104")).await;
    assert_eq!(published.opened_referrals.len(), 1, "{published:?}");
    published.opened_referrals[0].clone()
}

/// Today by `clock`, `YYYY-MM-DD` in China.
pub fn today(clock: &ManualClock) -> String {
    days_ago(clock, 0)
}

/// `n` days before today by `clock` (after it, for a negative `n`).
pub fn days_ago(clock: &ManualClock, n: i64) -> String {
    yrd_domain::spotcheck::format_date(china_date(clock.now()) - time::Duration::days(n))
}

/// A measure of `kind` taken now by one officer.
pub fn measure(kind: pb::MeasureKind, clock: &ManualClock) -> pb::Measure {
    pb::Measure {
        kind: kind as i32,
        occur_time: Some(yrd_call::timestamp(clock.now())),
        officers: vec![pb::Officer {
            id: "37010012345".into(),
            display_name: "张三".into(),
        }],
        detail: "on site".into(),
        ..Default::default()
    }
}

/// A review with `outcome`, taken now.
pub fn review(outcome: pb::Verdict, clock: &ManualClock) -> pb::Measure {
    pb::Measure {
        review_outcome: outcome as i32,
        ..measure(pb::MeasureKind::Review, clock)
    }
}

/// A closure as `outcome`, by request `request_id`.
pub fn close_request(
    name: &str,
    request_id: &str,
    outcome: pb::ReferralOutcome,
) -> pb::CloseReferralRequest {
    pb::CloseReferralRequest {
        request_id: request_id.into(),
        name: name.into(),
        closure: Some(pb::ReferralClosure {
            outcome: outcome as i32,
            summary: "整改到位，复查合格".into(),
        }),
    }
}

/// The kinds of `r`'s steps, in order.
pub fn kinds(r: &pb::Referral) -> Vec<pb::ReferralStepKind> {
    r.timeline.iter().map(|s| s.kind()).collect()
}

/// The objection window listed on `r`, if any.
pub fn objection_window(r: &pb::Referral) -> Option<&pb::ReferralDeadline> {
    r.deadlines
        .iter()
        .find(|d| d.kind() == pb::ReferralDeadlineKind::ObjectionWindow)
}

/// A deadline scheduler on `store`, as another replica (or a second task) would run it.
pub fn scheduler(
    store: &yrd_store::Store,
    clock: &Arc<ManualClock>,
) -> yrd_disposal::DeadlineScheduler {
    yrd_disposal::DeadlineScheduler::new(
        store.clone(),
        clock.clone(),
        yrd_disposal::Opener::default(),
        Duration::from_secs(3600),
    )
}

/// The referral a step's answer carries.
pub trait Answer {
    /// The referral after the step.
    fn referral(self) -> pb::Referral;
}

yrd_e2e::carries!(
    Answer::referral -> pb::Referral;
    pb::AcknowledgeReferralResponse,
    pb::StartHandlingResponse,
    pb::RecordMeasureResponse,
    pb::FileObjectionResponse,
    pb::RecordReinspectionResponse,
    pb::ReturnReferralResponse,
    pb::RerouteReferralResponse,
    pb::CloseReferralResponse,
    pb::AddReactionResponse,
    pb::CreateReferralResponse,
    pb::GetReferralResponse,
);

/// The referral a step answered, or its refusal.
pub fn step<R: Answer>(
    answer: Result<tonic::Response<R>, tonic::Status>,
) -> Result<pb::Referral, tonic::Status> {
    answer.map(|r| r.into_inner().referral())
}

/// The calls of `DisposalService` as one agency's one-line steps.
pub trait Steps {
    /// The agency's clients.
    fn clients(&mut self) -> &mut AgencyClients;

    /// `GetReferral`.
    async fn get(&mut self, name: &str) -> pb::Referral {
        let request = pb::GetReferralRequest { name: name.into() };
        step(self.clients().disposal.get_referral(request).await).expect("get referral")
    }

    /// `GetResult`: the published result `name`.
    async fn read_result(&mut self, name: &str) -> pb::SpotCheckResult {
        let request = pb::GetResultRequest { name: name.into() };
        let read = self.clients().results.get_result(request).await;
        read.expect("get result")
            .into_inner()
            .result
            .expect("result")
    }

    /// `ListReferrals`.
    async fn list(&mut self, request: pb::ListReferralsRequest) -> Vec<pb::Referral> {
        let listed = self.clients().disposal.list_referrals(request).await;
        listed.expect("list").into_inner().referrals
    }

    /// `AcknowledgeReferral`, noting the case number.
    async fn acknowledge(
        &mut self,
        name: &str,
        request_id: &str,
    ) -> Result<pb::Referral, tonic::Status> {
        let request = pb::AcknowledgeReferralRequest {
            request_id: request_id.into(),
            name: name.into(),
            note: "案件登记号 SD-2024-001".into(),
        };
        step(self.clients().disposal.acknowledge_referral(request).await)
    }

    /// `StartHandling`.
    async fn start_handling(
        &mut self,
        name: &str,
        request_id: &str,
    ) -> Result<pb::Referral, tonic::Status> {
        let request = pb::StartHandlingRequest {
            request_id: request_id.into(),
            name: name.into(),
            note: String::new(),
        };
        step(self.clients().disposal.start_handling(request).await)
    }

    /// Acknowledges (`ack`) and starts handling (`start`): the referral in progress.
    async fn take_on(&mut self, name: &str) -> pb::Referral {
        self.acknowledge(name, "ack").await.expect("ack");
        self.start_handling(name, "start").await.expect("start")
    }

    /// `RecordMeasure`.
    async fn record(
        &mut self,
        name: &str,
        request_id: &str,
        m: pb::Measure,
    ) -> Result<pb::Referral, tonic::Status> {
        let request = pb::RecordMeasureRequest {
            request_id: request_id.into(),
            name: name.into(),
            measure: Some(m),
            note: String::new(),
        };
        step(self.clients().disposal.record_measure(request).await)
    }

    /// `CloseReferral`, answering the whole response (its receipt too).
    async fn close(
        &mut self,
        request: pb::CloseReferralRequest,
    ) -> Result<pb::CloseReferralResponse, tonic::Status> {
        let closed = self.clients().disposal.close_referral(request).await;
        closed.map(tonic::Response::into_inner)
    }

    /// `ReturnReferral` for `reason`, suggesting `suggested_agency` (or none).
    async fn return_referral(
        &mut self,
        name: &str,
        request_id: &str,
        reason: &str,
        suggested_agency: &str,
    ) -> pb::Referral {
        let request = pb::ReturnReferralRequest {
            request_id: request_id.into(),
            name: name.into(),
            reason: reason.into(),
            suggested_agency: suggested_agency.into(),
        };
        step(self.clients().disposal.return_referral(request).await).expect("return")
    }

    /// `RerouteReferral` to `agency` on `basis`, for `reason`.
    async fn reroute(
        &mut self,
        name: &str,
        request_id: &str,
        agency: &str,
        basis: pb::JurisdictionBasis,
        reason: &str,
    ) -> Result<pb::Referral, tonic::Status> {
        let request = pb::RerouteReferralRequest {
            request_id: request_id.into(),
            name: name.into(),
            handling_agency: format!("agencies/{agency}"),
            jurisdiction_basis: basis as i32,
            reason: reason.into(),
        };
        step(self.clients().disposal.reroute_referral(request).await)
    }
}

impl Steps for AgencyClients {
    fn clients(&mut self) -> &mut AgencyClients {
        self
    }
}
