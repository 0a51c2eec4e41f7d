//! DisposalService over real mTLS (issue 6), on SQLite and PostgreSQL: a non-conforming result
//! published by Shanghai against a Shandong producer opens a referral in the same transaction;
//! Shandong's subscriber receives it and Shanghai's subscriber sees every step to closure; a
//! returned referral is rerouted; an objection is overturned by re-inspection; the scheduler
//! flags an overdue referral and then the announcement under a manual clock; illegal steps
//! name the state; a third agency may react but not act; each bad field is named.
//!
//! Every server runs on a manual clock that starts on the next Monday (so that advancing it by
//! the statutory 75 days stays within the dev certificates' year); its deadline scheduler runs a
//! round when the scenario, having moved the clock, asks for one. Tests synchronise on feed
//! events, never on sleeps.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tonic::Code;
use tonic::codec::Streaming;
use tonic_types::StatusExt as _;
use yrd_call::timestamp;
use yrd_domain::calendar::china_date;
use yrd_domain::clock::{Clock, ManualClock};
use yrd_e2e::fixtures::{self, uscc};
use yrd_e2e::spawn_for_deadlines as spawn;
use yrd_e2e::{ANHUI, AgencyClients, JIANGSU, SHANDONG, SHANGHAI, StoreKind, TestApp, ZHEJIANG};
use yrd_proto::v1::{self as pb};

/// How long a test waits for an event that should come at once.
const PROMPT: Duration = Duration::from_secs(20);

yrd_e2e::on_both_stores_with_clock!(
    a_referral_is_handled_to_closure_while_the_sampling_agency_watches,
    a_returned_referral_is_rerouted,
    an_objection_is_overturned_by_reinspection,
    the_objection_window_is_listed_until_it_closes,
    overdue_then_announcement_required_under_a_manual_clock,
    illegal_steps_are_refused_naming_the_state,
    a_third_agency_reacts_but_cannot_act,
    referrals_by_hand,
    each_bad_field_is_named,
);

/// Day 0 of every scenario.
fn start() -> OffsetDateTime {
    yrd_e2e::next_monday_morning()
}

/// An agency's live feed, remembering where it got to so it can be renewed.
struct Feed {
    agency: String,
    stream: Streaming<pb::SubscribeResponse>,
    cursor: Option<u64>,
}

impl Feed {
    async fn open(app: &TestApp, id: &str) -> Feed {
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
    async fn renew(&mut self, app: &TestApp) {
        *self = Self::open_after(app, &self.agency, self.cursor).await;
    }

    /// The next event, skipping heartbeats.
    async fn next(&mut self) -> pb::FeedEvent {
        let event = fixtures::next_event(&mut self.stream, PROMPT).await;
        self.cursor = Some(event.cursor);
        event
    }

    /// The next event, which must be about a referral: its type, step kind and referral.
    async fn next_referral(&mut self) -> (pb::EventType, pb::ReferralStepKind, pb::Referral) {
        let event = self.next().await;
        let kind = event.event_type();
        let step = event.referral_step_kind();
        match event.resource {
            Some(pb::feed_event::Resource::Referral(r)) => (kind, step, r),
            other => panic!("expected a referral event, got {kind:?} with {other:?}"),
        }
    }
}

/// A non-conforming online purchase of a toy made in `producer_region`, sold by a shop in
/// `seller_region`, sampled and reported a few weeks before the clock's start.
fn sample(producer_region: &str, seller_region: &str) -> pb::SpotCheckResult {
    let day = |weeks: i64| {
        yrd_domain::spotcheck::format_date(china_date(start()) - time::Duration::weeks(weeks))
    };
    pb::SpotCheckResult {
        product: Some(pb::Product {
            name: "儿童塑料玩具车".into(),
            trademark: "/".into(),
            model: "XK-1".into(),
            production_date: day(10),
            batch_number: "B1".into(),
            category: "儿童玩具".into(),
        }),
        producer: Some(pb::Party {
            name: "某玩具有限公司".into(),
            uscc: uscc(producer_region, 7),
            address: "某路1号".into(),
            region_code: producer_region.into(),
        }),
        seller: Some(pb::Seller {
            name: "某商贸有限公司".into(),
            uscc: uscc(seller_region, 8),
            address: String::new(),
            region_code: seller_region.into(),
            platform: "某电商平台".into(),
            shop_name: "某玩具旗舰店".into(),
            shop_url: "https://shop.example.com/toys?id=1".into(),
        }),
        sampling_way: pb::SamplingWay::OnlinePurchase as i32,
        sampling_date: day(4),
        inspection_body: "上海市质量监督检验技术研究院".into(),
        report_number: "SQI-2024-00123".into(),
        report_date: day(2),
        standards: vec!["GB 6675.1-2014".into()],
        test_items: vec![pb::TestItem {
            name: "增塑剂".into(),
            requirement: "≤ 0.1 %".into(),
            measured_value: "0.35".into(),
            unit: "%".into(),
            verdict: pb::Verdict::NonConforming as i32,
            is_safety_item: true,
        }],
        verdict: pb::Verdict::NonConforming as i32,
        failed_items: vec!["增塑剂".into()],
        campaign: Some(pb::Campaign {
            code: "SH-2024-01".into(),
            name: "2024年儿童玩具网络销售抽查".into(),
            kind: pb::CampaignKind::Provincial as i32,
            product_kind: "儿童玩具".into(),
        }),
        ..Default::default()
    }
}

async fn publish(
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
async fn referral_to_shandong(shanghai: &mut AgencyClients, request_id: &str) -> String {
    let published = publish(shanghai, request_id, sample("370102", "310104")).await;
    assert_eq!(published.opened_referrals.len(), 1, "{published:?}");
    published.opened_referrals[0].clone()
}

fn today(clock: &ManualClock) -> String {
    yrd_domain::spotcheck::format_date(china_date(clock.now()))
}

fn days_ago(clock: &ManualClock, n: i64) -> String {
    yrd_domain::spotcheck::format_date(china_date(clock.now()) - time::Duration::days(n))
}

fn measure(kind: pb::MeasureKind, clock: &ManualClock) -> pb::Measure {
    pb::Measure {
        kind: kind as i32,
        occur_time: Some(timestamp(clock.now())),
        officers: vec![pb::Officer {
            id: "37010012345".into(),
            display_name: "张三".into(),
        }],
        detail: "on site".into(),
        ..Default::default()
    }
}

fn review(outcome: pb::Verdict, clock: &ManualClock) -> pb::Measure {
    pb::Measure {
        review_outcome: outcome as i32,
        ..measure(pb::MeasureKind::Review, clock)
    }
}

async fn get(who: &mut AgencyClients, name: &str) -> pb::Referral {
    who.disposal
        .get_referral(pb::GetReferralRequest { name: name.into() })
        .await
        .expect("get referral")
        .into_inner()
        .referral
        .expect("referral")
}

async fn acknowledge(
    who: &mut AgencyClients,
    name: &str,
    request_id: &str,
) -> Result<pb::Referral, tonic::Status> {
    who.disposal
        .acknowledge_referral(pb::AcknowledgeReferralRequest {
            request_id: request_id.into(),
            name: name.into(),
            note: "案件登记号 SD-2024-001".into(),
        })
        .await
        .map(|r| r.into_inner().referral.expect("referral"))
}

async fn start_handling(
    who: &mut AgencyClients,
    name: &str,
    request_id: &str,
) -> Result<pb::Referral, tonic::Status> {
    who.disposal
        .start_handling(pb::StartHandlingRequest {
            request_id: request_id.into(),
            name: name.into(),
            note: String::new(),
        })
        .await
        .map(|r| r.into_inner().referral.expect("referral"))
}

async fn record(
    who: &mut AgencyClients,
    name: &str,
    request_id: &str,
    m: pb::Measure,
) -> Result<pb::Referral, tonic::Status> {
    who.disposal
        .record_measure(pb::RecordMeasureRequest {
            request_id: request_id.into(),
            name: name.into(),
            measure: Some(m),
            note: String::new(),
        })
        .await
        .map(|r| r.into_inner().referral.expect("referral"))
}

fn close_request(
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

fn kinds(r: &pb::Referral) -> Vec<pb::ReferralStepKind> {
    r.timeline.iter().map(|s| s.kind()).collect()
}

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn assert_refused(status: &tonic::Status, code: Code, contains: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(contains),
        "{:?} should mention {contains:?}",
        status.message()
    );
}

// ----------------------------------------------------------------------------------------------

async fn a_referral_is_handled_to_closure_while_the_sampling_agency_watches(
    app: TestApp,
    clock: Arc<ManualClock>,
) {
    let mut shandong_feed = Feed::open(&app, SHANDONG).await;
    let mut shanghai_feed = Feed::open(&app, SHANGHAI).await;
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;

    // Published by Shanghai against a Shandong producer: one referral, opened with the result.
    let published = publish(&mut shanghai, "pub-1", sample("370102", "310104")).await;
    let result = published.result.expect("result");
    assert_eq!(published.opened_referrals.len(), 1);
    let name = published.opened_referrals[0].clone();
    assert_eq!(result.referrals, published.opened_referrals);

    let event = shandong_feed.next().await;
    assert_eq!(event.event_type(), pb::EventType::ResultPublished);
    assert!(event.needs_disposal);
    let (kind, step, opened) = shandong_feed.next_referral().await;
    assert_eq!(kind, pb::EventType::ReferralOpened);
    assert_eq!(step, pb::ReferralStepKind::Opened);
    assert_eq!(opened.name, name);
    assert_eq!(opened.result, result.name);
    assert_eq!(opened.result_version, 1);
    assert_eq!(opened.sampling_agency, format!("agencies/{SHANGHAI}"));
    assert_eq!(opened.handling_agency, format!("agencies/{SHANDONG}"));
    assert_eq!(opened.jurisdiction_basis(), pb::JurisdictionBasis::Producer);
    assert_eq!(opened.origin(), pb::ReferralOrigin::Automatic);
    assert_eq!(opened.state(), pb::ReferralState::Opened);
    assert_eq!(opened.product_name, "儿童塑料玩具车");
    assert!(
        opened
            .requested_actions
            .contains(&(pb::MeasureKind::OrderRectification as i32))
    );
    // Opened on a Monday: two working days to acknowledge, so Wednesday.
    let ack = opened
        .next_deadline
        .clone()
        .expect("acknowledgement deadline");
    assert_eq!(ack.kind(), pb::ReferralDeadlineKind::Acknowledgement);
    assert_eq!(
        ack.due_date,
        yrd_domain::spotcheck::format_date(china_date(clock.now()) + time::Duration::days(2))
    );
    assert_eq!(get(&mut shanghai, &name).await, opened);

    // The result names its referral for every reader.
    let read = shandong
        .results
        .get_result(pb::GetResultRequest {
            name: result.name.clone(),
        })
        .await
        .expect("get result")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(read.referrals, vec![name.clone()]);

    // Shandong acknowledges, starts, acts, orders correction, reviews and closes; Shanghai's
    // subscriber sees each step with the referral as it stands after it.
    let steps: Vec<(pb::ReferralStepKind, pb::ReferralState)> = vec![
        (
            pb::ReferralStepKind::Acknowledged,
            pb::ReferralState::Delivered,
        ),
        (
            pb::ReferralStepKind::HandlingStarted,
            pb::ReferralState::InProgress,
        ),
        (
            pb::ReferralStepKind::MeasureRecorded,
            pb::ReferralState::InProgress,
        ),
        (
            pb::ReferralStepKind::MeasureRecorded,
            pb::ReferralState::Rectifying,
        ),
        (
            pb::ReferralStepKind::MeasureRecorded,
            pb::ReferralState::Rectifying,
        ),
        (pb::ReferralStepKind::Closed, pb::ReferralState::Closed),
    ];
    let delivered = acknowledge(&mut shandong, &name, "ack-1")
        .await
        .expect("acknowledge");
    assert!(delivered.next_deadline.is_none());
    start_handling(&mut shandong, &name, "start-1")
        .await
        .expect("start");
    record(
        &mut shandong,
        &name,
        "m-1",
        measure(pb::MeasureKind::StopProduction, &clock),
    )
    .await
    .expect("stop production");
    let rectifying = record(
        &mut shandong,
        &name,
        "m-2",
        measure(pb::MeasureKind::OrderRectification, &clock),
    )
    .await
    .expect("order correction");
    let day0 = china_date(clock.now());
    assert_eq!(
        rectifying.rectification_deadline,
        yrd_domain::spotcheck::format_date(
            yrd_domain::calendar::WorkingCalendar::weekends_only()
                .calendar_deadline(day0, 60)
                .expect("date")
        )
    );
    assert!(!rectifying.review_deadline.is_empty());
    assert_eq!(
        rectifying.next_deadline.as_ref().map(|d| d.kind()),
        Some(pb::ReferralDeadlineKind::Rectification)
    );
    record(
        &mut shandong,
        &name,
        "m-3",
        review(pb::Verdict::Conforming, &clock),
    )
    .await
    .expect("review");
    let close = close_request(&name, "close-1", pb::ReferralOutcome::Rectified);
    let closed = shandong
        .disposal
        .close_referral(close.clone())
        .await
        .expect("close")
        .into_inner();
    let receipt = closed.receipt.clone().expect("a signed receipt");
    assert_eq!(receipt.leaf_hash.len(), 32);
    let closed = closed.referral.expect("referral");
    assert_eq!(closed.state(), pb::ReferralState::Closed);
    assert_eq!(closed.outcome(), pb::ReferralOutcome::Rectified);
    assert_eq!(closed.outcome_summary, "整改到位，复查合格");
    assert!(closed.close_time.is_some());

    for (kind, state) in &steps {
        let (event, step, seen) = shanghai_feed.next_referral().await;
        assert_eq!(event, pb::EventType::ReferralUpdated);
        assert_eq!((step, seen.state()), (*kind, *state));
        assert_eq!(seen.name, name);
    }
    let timeline = get(&mut shanghai, &name).await;
    assert_eq!(timeline, closed);
    let mut expected = vec![pb::ReferralStepKind::Opened];
    expected.extend(steps.iter().map(|(k, _)| *k));
    assert_eq!(kinds(&timeline), expected);
    assert!(
        timeline
            .timeline
            .iter()
            .skip(1)
            .all(|s| s.agency == format!("agencies/{SHANDONG}"))
    );
    assert_eq!(timeline.timeline[1].note, "案件登记号 SD-2024-001");
    match &timeline.timeline[3].detail {
        Some(pb::referral_step::Detail::Measure(m)) => {
            assert_eq!(m.kind(), pb::MeasureKind::StopProduction);
            assert_eq!(m.officers[0].id, "37010012345");
        }
        other => panic!("a measure step carries its measure, got {other:?}"),
    }

    // A retry gets the first answer; the same id with another body is refused.
    let again = shandong
        .disposal
        .close_referral(close.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again.receipt, Some(receipt));
    let reused = shandong
        .disposal
        .close_referral(pb::CloseReferralRequest {
            closure: Some(pb::ReferralClosure {
                outcome: pb::ReferralOutcome::Other as i32,
                summary: "另一个结论".into(),
            }),
            ..close
        })
        .await
        .expect_err("another body");
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert_eq!(get(&mut shanghai, &name).await, timeline);

    // Lists: by part, state, producer; newest first, paged.
    let list = |role: pb::ReferralRole, f: fn(&mut pb::ListReferralsRequest)| {
        let mut r = pb::ListReferralsRequest {
            role: role as i32,
            ..Default::default()
        };
        f(&mut r);
        r
    };
    let names = |response: pb::ListReferralsResponse| -> Vec<String> {
        response.referrals.into_iter().map(|r| r.name).collect()
    };
    let second = referral_to_shandong(&mut shanghai, "pub-2").await;
    let both = vec![second.clone(), name.clone()];
    let unspecified = pb::ReferralRole::Unspecified;
    for (who, request, expected) in [
        (
            SHANDONG,
            list(pb::ReferralRole::Handling, |_| {}),
            both.clone(),
        ),
        (
            SHANGHAI,
            list(pb::ReferralRole::Sampling, |_| {}),
            both.clone(),
        ),
        (SHANGHAI, list(pb::ReferralRole::Handling, |_| {}), vec![]),
        (
            SHANDONG,
            list(unspecified, |r| r.state = pb::ReferralState::Closed as i32),
            vec![name.clone()],
        ),
        (
            SHANDONG,
            list(unspecified, |r| r.state = pb::ReferralState::Opened as i32),
            vec![second.clone()],
        ),
        (
            SHANDONG,
            list(unspecified, |r| r.overdue = Some(false)),
            both.clone(),
        ),
        (
            SHANDONG,
            list(unspecified, |r| r.overdue = Some(true)),
            vec![],
        ),
        (
            SHANDONG,
            list(unspecified, |r| r.announcement_required = Some(true)),
            vec![],
        ),
        (
            SHANDONG,
            list(unspecified, |r| r.product_name_contains = "玩具".into()),
            both.clone(),
        ),
        (
            SHANDONG,
            list(unspecified, |r| r.product_name_contains = "滑板".into()),
            vec![],
        ),
        (
            SHANDONG,
            list(unspecified, |r| r.producer_uscc = uscc("370102", 7)),
            both.clone(),
        ),
        (
            SHANDONG,
            list(unspecified, |r| r.producer_uscc = uscc("370102", 9)),
            vec![],
        ),
    ] {
        let client = if who == SHANDONG {
            &mut shandong
        } else {
            &mut shanghai
        };
        let got = names(
            client
                .disposal
                .list_referrals(request.clone())
                .await
                .expect("list")
                .into_inner(),
        );
        assert_eq!(got, expected, "{request:?}");
    }
    let page = shandong
        .disposal
        .list_referrals(pb::ListReferralsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(page.referrals.len(), 1);
    assert_eq!(page.referrals[0].name, second);
    let rest = shandong
        .disposal
        .list_referrals(pb::ListReferralsRequest {
            page_size: 1,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(names(rest.clone()), vec![name.clone()]);
    assert!(rest.next_page_token.is_empty());
}

async fn a_returned_referral_is_rerouted(app: TestApp, _clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let mut zhejiang = app.as_agency(ZHEJIANG).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let mut shanghai_feed = Feed::open(&app, SHANGHAI).await;
    let mut zhejiang_feed = Feed::open(&app, ZHEJIANG).await;

    // Shandong returns it as outside its jurisdiction; Shanghai's subscriber sees it.
    let returned = shandong
        .disposal
        .return_referral(pb::ReturnReferralRequest {
            request_id: "ret-1".into(),
            name: name.clone(),
            reason: "生产者已迁至浙江".into(),
            suggested_agency: String::new(),
        })
        .await
        .expect("return")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(returned.state(), pb::ReferralState::Returned);
    let (kind, step, seen) = shanghai_feed.next_referral().await;
    assert_eq!(
        (kind, step),
        (
            pb::EventType::ReferralUpdated,
            pb::ReferralStepKind::Returned
        )
    );
    assert_eq!(seen.state(), pb::ReferralState::Returned);

    // Shanghai reroutes it to Zhejiang, where it starts again as opened.
    let rerouted = shanghai
        .disposal
        .reroute_referral(pb::RerouteReferralRequest {
            request_id: "reroute-1".into(),
            name: name.clone(),
            handling_agency: format!("agencies/{ZHEJIANG}"),
            jurisdiction_basis: pb::JurisdictionBasis::Producer as i32,
            reason: "生产者现住所地在杭州".into(),
        })
        .await
        .expect("reroute")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(rerouted.state(), pb::ReferralState::Opened);
    assert_eq!(rerouted.handling_agency, format!("agencies/{ZHEJIANG}"));
    assert_eq!(
        rerouted.previous_handling_agencies,
        vec![format!("agencies/{SHANDONG}")]
    );
    assert!(rerouted.next_deadline.is_some());
    let (kind, step, seen) = zhejiang_feed.next_referral().await;
    assert_eq!(
        (kind, step),
        (
            pb::EventType::ReferralOpened,
            pb::ReferralStepKind::Rerouted
        )
    );
    assert_eq!(seen, rerouted);

    // Shandong is a bystander now; Zhejiang handles it.
    let denied = acknowledge(&mut shandong, &name, "ack-sd")
        .await
        .expect_err("not Shandong's");
    assert_eq!(denied.code(), Code::PermissionDenied);
    acknowledge(&mut zhejiang, &name, "ack-zj")
        .await
        .expect("Zhejiang acknowledges");
    let (_, step, _) = shanghai_feed.next_referral().await;
    assert_eq!(step, pb::ReferralStepKind::Acknowledged);

    // Zhejiang returns it naming Anhui: it goes straight to Anhui.
    let mut anhui_feed = Feed::open(&app, ANHUI).await;
    let to_anhui = zhejiang
        .disposal
        .return_referral(pb::ReturnReferralRequest {
            request_id: "ret-2".into(),
            name: name.clone(),
            reason: "生产者在安徽".into(),
            suggested_agency: format!("agencies/{ANHUI}"),
        })
        .await
        .expect("return naming Anhui")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(to_anhui.state(), pb::ReferralState::Opened);
    assert_eq!(to_anhui.handling_agency, format!("agencies/{ANHUI}"));
    let (kind, _, _) = anhui_feed.next_referral().await;
    assert_eq!(kind, pb::EventType::ReferralUpdated, "first the return");
    let (kind, step, _) = anhui_feed.next_referral().await;
    assert_eq!(
        (kind, step),
        (
            pb::EventType::ReferralOpened,
            pb::ReferralStepKind::Rerouted
        )
    );
    assert_eq!(
        &kinds(&to_anhui)[1..],
        &[
            pb::ReferralStepKind::Returned,
            pb::ReferralStepKind::Rerouted,
            pb::ReferralStepKind::Acknowledged,
            pb::ReferralStepKind::Returned,
            pb::ReferralStepKind::Rerouted,
        ]
    );
}

async fn an_objection_is_overturned_by_reinspection(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    acknowledge(&mut shandong, &name, "ack").await.expect("ack");
    start_handling(&mut shandong, &name, "start")
        .await
        .expect("start");
    let ordered = record(
        &mut shandong,
        &name,
        "order",
        measure(pb::MeasureKind::OrderRectification, &clock),
    )
    .await
    .expect("order");
    assert!(
        objection_window(&ordered).is_some(),
        "rectifying, the window is still open: {:?}",
        ordered.deadlines
    );
    let mut shandong_feed = Feed::open(&app, SHANDONG).await;
    let _ = shandong_feed.next().await; // the result
    let _ = shandong_feed.next().await; // the referral

    let objection = |received: String, filed: String| pb::Objection {
        party_name: "某玩具有限公司".into(),
        result_received_date: received,
        received_date: filed,
        grounds: "送检样品非本公司生产批次".into(),
        attachments: vec![pb::Attachment {
            file_name: "异议申请书.pdf".into(),
            media_type: "application/pdf".into(),
            sha256: "ab".repeat(32),
            size_bytes: 1024,
            description: String::new(),
        }],
    };
    // Out of the 15-day window: refused, nothing written.
    let late = shanghai
        .disposal
        .file_objection(pb::FileObjectionRequest {
            request_id: "obj-late".into(),
            name: name.clone(),
            objection: Some(objection(days_ago(&clock, 20), today(&clock))),
            note: String::new(),
        })
        .await
        .expect_err("too late");
    assert_refused(&late, Code::FailedPrecondition, "objection window closed");
    // The handling agency does not record objections: they go to the sampling agency.
    let wrong = shandong
        .disposal
        .file_objection(pb::FileObjectionRequest {
            request_id: "obj-sd".into(),
            name: name.clone(),
            objection: Some(objection(days_ago(&clock, 2), today(&clock))),
            note: String::new(),
        })
        .await
        .expect_err("not the handling agency's step");
    assert_eq!(wrong.code(), Code::PermissionDenied);

    let pending = shanghai
        .disposal
        .file_objection(pb::FileObjectionRequest {
            request_id: "obj-1".into(),
            name: name.clone(),
            objection: Some(objection(days_ago(&clock, 2), today(&clock))),
            note: "已受理复检申请".into(),
        })
        .await
        .expect("objection")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(pending.state(), pb::ReferralState::ObjectionPending);
    assert!(pending.clock_paused);
    assert!(pending.next_deadline.is_none());
    assert_eq!(
        objection_window(&pending),
        None,
        "an objection was filed: the window is no longer listed"
    );
    let (_, step, seen) = shandong_feed.next_referral().await;
    assert_eq!(step, pb::ReferralStepKind::ObjectionFiled);
    assert!(seen.clock_paused);

    let overturned = shanghai
        .disposal
        .record_reinspection(pb::RecordReinspectionRequest {
            request_id: "re-1".into(),
            name: name.clone(),
            reinspection: Some(pb::Reinspection {
                outcome: pb::Verdict::Conforming as i32,
                inspection_body: "山东省产品质量检验研究院".into(),
                report_number: "FJ-2024-009".into(),
                report_date: today(&clock),
                detail: String::new(),
                attachments: vec![],
            }),
            note: String::new(),
        })
        .await
        .expect("re-inspection")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(overturned.state(), pb::ReferralState::Closed);
    assert_eq!(overturned.outcome(), pb::ReferralOutcome::Overturned);
    assert!(overturned.outcome_summary.contains("FJ-2024-009"));
    let (_, step, seen) = shandong_feed.next_referral().await;
    assert_eq!(step, pb::ReferralStepKind::ReinspectionRecorded);
    assert_eq!(seen.outcome(), pb::ReferralOutcome::Overturned);
    // Closed means closed.
    let after = record(
        &mut shandong,
        &name,
        "late-measure",
        measure(pb::MeasureKind::Recall, &clock),
    )
    .await
    .expect_err("closed");
    assert_refused(
        &after,
        Code::FailedPrecondition,
        "RecordMeasure is not allowed in state REFERRAL_STATE_CLOSED (已办结, \
         REFERRAL_OUTCOME_OVERTURNED)",
    );
}

/// The objection window listed on `r`, if any.
fn objection_window(r: &pb::Referral) -> Option<&pb::ReferralDeadline> {
    r.deadlines
        .iter()
        .find(|d| d.kind() == pb::ReferralDeadlineKind::ObjectionWindow)
}

/// Issue 16: `REFERRAL_DEADLINE_KIND_OBJECTION_WINDOW` is listed from delivery (送达) for 15
/// calendar days, to both parties, in answers and reads alike, never overdue and never the
/// next deadline; the day after its last day it is gone from reads without any step.
async fn the_objection_window_is_listed_until_it_closes(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let opened = get(&mut shanghai, &name).await;
    assert_eq!(objection_window(&opened), None, "not before delivery");

    let delivered = acknowledge(&mut shandong, &name, "ack").await.expect("ack");
    let last_day = yrd_domain::calendar::WorkingCalendar::weekends_only()
        .calendar_deadline(china_date(clock.now()), 15)
        .expect("a date");
    let expected = pb::ReferralDeadline {
        kind: pb::ReferralDeadlineKind::ObjectionWindow as i32,
        due_date: yrd_domain::spotcheck::format_date(last_day),
        overdue: false,
    };
    assert_eq!(objection_window(&delivered), Some(&expected));
    assert!(
        delivered.next_deadline.is_none(),
        "no agency owes the window"
    );
    assert_eq!(
        objection_window(&get(&mut shanghai, &name).await),
        Some(&expected),
        "the sampling agency, which records objections, reads it too"
    );

    // On its last day it is still listed; the day after, reads no longer list it, though no
    // step was taken, and nothing became overdue.
    let days_left = (last_day - china_date(clock.now())).whole_days();
    clock.advance(time::Duration::days(days_left));
    let mut shanghai = app.as_agency(SHANGHAI).await;
    assert_eq!(
        objection_window(&get(&mut shanghai, &name).await),
        Some(&expected)
    );
    clock.advance(time::Duration::days(1));
    app.tick_schedulers();
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let closed = get(&mut shanghai, &name).await;
    assert_eq!(objection_window(&closed), None, "{:?}", closed.deadlines);
    assert!(!closed.overdue);
    let listed = shanghai
        .disposal
        .list_referrals(pb::ListReferralsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.referrals.len(), 1);
    assert_eq!(objection_window(&listed.referrals[0]), None);
}

async fn overdue_then_announcement_required_under_a_manual_clock(
    app: TestApp,
    clock: Arc<ManualClock>,
) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let mut shanghai_feed = Feed::open(&app, SHANGHAI).await;
    let mut shandong_feed = Feed::open(&app, SHANDONG).await;
    let _ = shandong_feed.next().await; // the result
    let _ = shandong_feed.next().await; // the referral

    // Opened on Monday, due Wednesday: on Thursday the scheduler flags it, to both parties.
    clock.advance(time::Duration::days(3));
    app.tick_schedulers();
    shanghai_feed.renew(&app).await;
    shandong_feed.renew(&app).await;
    for feed in [&mut shanghai_feed, &mut shandong_feed] {
        let (kind, step, seen) = feed.next_referral().await;
        assert_eq!(
            (kind, step),
            (
                pb::EventType::ReferralOverdue,
                pb::ReferralStepKind::OverdueFlagged
            )
        );
        assert!(seen.overdue);
        match &seen.timeline.last().and_then(|s| s.detail.clone()) {
            Some(pb::referral_step::Detail::Deadline(d)) => {
                assert_eq!(d.kind(), pb::ReferralDeadlineKind::Acknowledgement);
                assert!(d.overdue);
            }
            other => panic!("an overdue step names its deadline, got {other:?}"),
        }
        assert_eq!(seen.timeline.last().map(|s| s.agency.as_str()), Some(""));
    }
    // Another replica's scheduler (or a second tick) finds nothing left to flag.
    let second = yrd_disposal::DeadlineScheduler::new(
        app.store.clone(),
        clock.clone(),
        yrd_disposal::Opener::default(),
        Duration::from_secs(3600),
    );
    assert_eq!(second.tick().await.expect("tick"), 0);

    // Late acknowledgement clears the flag; correction is ordered.
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let listed = shanghai
        .disposal
        .list_referrals(pb::ListReferralsRequest {
            overdue: Some(true),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.referrals.len(), 1);
    let delivered = acknowledge(&mut shandong, &name, "ack").await.expect("ack");
    assert!(!delivered.overdue);
    start_handling(&mut shandong, &name, "start")
        .await
        .expect("start");
    let ordered = record(
        &mut shandong,
        &name,
        "order",
        measure(pb::MeasureKind::OrderRectification, &clock),
    )
    .await
    .expect("order");
    for _ in 0..3 {
        let (kind, _, _) = shanghai_feed.next_referral().await;
        assert_eq!(kind, pb::EventType::ReferralUpdated);
    }
    // Announcing before anything failed is refused.
    let early = record(
        &mut shandong,
        &name,
        "announce-early",
        measure(pb::MeasureKind::PublicAnnouncement, &clock),
    )
    .await
    .expect_err("nothing to announce");
    assert_refused(
        &early,
        Code::FailedPrecondition,
        "RecordMeasure is not allowed in state REFERRAL_STATE_RECTIFYING (整改中)",
    );

    // The 60-day correction deadline passes: overdue, no announcement yet.
    let correction_due =
        yrd_domain::spotcheck::parse_date(&ordered.rectification_deadline).expect("date");
    let review_due = yrd_domain::spotcheck::parse_date(&ordered.review_deadline).expect("date");
    let days_to = |due: time::Date| (due - china_date(clock.now())).whole_days() + 1;
    clock.advance(time::Duration::days(days_to(correction_due)));
    app.tick_schedulers();
    shanghai_feed.renew(&app).await;
    shandong_feed.renew(&app).await;
    let (kind, _, seen) = shanghai_feed.next_referral().await;
    assert_eq!(kind, pb::EventType::ReferralOverdue);
    assert!(seen.overdue && !seen.announcement_required);
    assert_eq!(
        seen.next_deadline.as_ref().map(|d| d.kind()),
        Some(pb::ReferralDeadlineKind::Review)
    );

    // The 75-day review deadline passes without a review: overdue, then the announcement flag.
    let (kind, _, _) = shandong_feed.next_referral().await;
    assert_eq!(kind, pb::EventType::ReferralOverdue, "Shandong is told too");
    clock.advance(time::Duration::days(days_to(review_due)));
    app.tick_schedulers();
    shanghai_feed.renew(&app).await;
    shandong_feed.renew(&app).await;
    for feed in [&mut shanghai_feed, &mut shandong_feed] {
        let (kind, step, _) = feed.next_referral().await;
        assert_eq!(
            (kind, step),
            (
                pb::EventType::ReferralOverdue,
                pb::ReferralStepKind::OverdueFlagged
            )
        );
        let (kind, step, seen) = feed.next_referral().await;
        assert_eq!(
            (kind, step),
            (
                pb::EventType::ReferralAnnouncementRequired,
                pb::ReferralStepKind::AnnouncementFlagged
            )
        );
        assert!(seen.announcement_required);
    }
    assert_eq!(
        second.tick().await.expect("tick"),
        0,
        "each flag is raised once"
    );

    // Each of the scheduler's three writes (acknowledgement; correction; review with the
    // announcement flag) is an entry of the exchange log too, without an agency, committed
    // with it (read once sequenced, within the merge delay the receipts promise).
    let flags = 3;
    let filter = yrd_store::LeafFilter {
        method: Some(yrd_disposal::scheduler::SCHEDULER_METHOD.into()),
        resource: Some(name.clone()),
        ..Default::default()
    };
    let leaves = fixtures::sequenced_leaves(&app, &filter, flags, Duration::from_secs(15)).await;
    assert!(
        leaves
            .iter()
            .all(|l| l.leaf.agency.is_empty() && l.leaf.code == 0),
        "scheduler leaves: {leaves:?}"
    );

    let mut shandong = app.as_agency(SHANDONG).await;
    let flagged = shandong
        .disposal
        .list_referrals(pb::ListReferralsRequest {
            announcement_required: Some(true),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(flagged.referrals.len(), 1);
    let announced = record(
        &mut shandong,
        &name,
        "announce",
        measure(pb::MeasureKind::PublicAnnouncement, &clock),
    )
    .await
    .expect("announce");
    assert_eq!(announced.state(), pb::ReferralState::Announced);
    let window = announced
        .second_review_window
        .expect("second-review window");
    assert_eq!(
        window.start_date,
        yrd_domain::spotcheck::format_date(china_date(clock.now()) + time::Duration::days(60))
    );
}

async fn illegal_steps_are_refused_naming_the_state(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let before = get(&mut shanghai, &name).await;

    let start = start_handling(&mut shandong, &name, "s-1")
        .await
        .expect_err("not delivered");
    assert_refused(
        &start,
        Code::FailedPrecondition,
        "StartHandling is not allowed in state REFERRAL_STATE_OPENED (已移送)",
    );
    let close = shandong
        .disposal
        .close_referral(close_request(&name, "c-1", pb::ReferralOutcome::Other))
        .await
        .expect_err("not handled");
    assert_eq!(
        close.message(),
        "CloseReferral is not allowed in state REFERRAL_STATE_OPENED (已移送)"
    );
    let reroute = shanghai
        .disposal
        .reroute_referral(pb::RerouteReferralRequest {
            request_id: "r-1".into(),
            name: name.clone(),
            handling_agency: format!("agencies/{ZHEJIANG}"),
            jurisdiction_basis: pb::JurisdictionBasis::Producer as i32,
            reason: "x".into(),
        })
        .await
        .expect_err("not returned");
    assert_refused(
        &reroute,
        Code::FailedPrecondition,
        "RerouteReferral is not allowed in state REFERRAL_STATE_OPENED",
    );
    let measure_early = record(
        &mut shandong,
        &name,
        "m-0",
        measure(pb::MeasureKind::Recall, &clock),
    )
    .await
    .expect_err("not handling yet");
    assert_refused(
        &measure_early,
        Code::FailedPrecondition,
        "RecordMeasure is not allowed in state REFERRAL_STATE_OPENED",
    );
    assert_eq!(
        get(&mut shanghai, &name).await,
        before,
        "nothing was written"
    );

    acknowledge(&mut shandong, &name, "a-1").await.expect("ack");
    let twice = acknowledge(&mut shandong, &name, "a-2")
        .await
        .expect_err("already");
    assert_refused(
        &twice,
        Code::FailedPrecondition,
        "AcknowledgeReferral is not allowed in state REFERRAL_STATE_DELIVERED (已送达)",
    );
    start_handling(&mut shandong, &name, "s-2")
        .await
        .expect("start");
    let review_first = record(
        &mut shandong,
        &name,
        "m-1",
        review(pb::Verdict::Conforming, &clock),
    )
    .await
    .expect_err("no order yet");
    assert_refused(&review_first, Code::FailedPrecondition, "ordered first");
    let overturned = shandong
        .disposal
        .close_referral(close_request(&name, "c-2", pb::ReferralOutcome::Overturned))
        .await
        .expect_err("only a re-inspection overturns");
    assert_refused(
        &overturned,
        Code::FailedPrecondition,
        "REFERRAL_STATE_IN_PROGRESS",
    );
    let rectified = shandong
        .disposal
        .close_referral(close_request(&name, "c-3", pb::ReferralOutcome::Rectified))
        .await
        .expect_err("no conforming review");
    // Issue 16: the contract's method, state and outcome, the Chinese terms beside them.
    assert_eq!(
        rectified.message(),
        "CloseReferral is not allowed in state REFERRAL_STATE_IN_PROGRESS (处置中): closing as \
         REFERRAL_OUTCOME_RECTIFIED needs a conforming review (复查)"
    );
    // A measure dated after today is a bad field, not a state question.
    let mut future = measure(pb::MeasureKind::Recall, &clock);
    future.occur_time = Some(timestamp(clock.now() + time::Duration::days(1)));
    let future = record(&mut shandong, &name, "m-2", future)
        .await
        .expect_err("future");
    assert_eq!(bad_fields(&future), ["measure.occur_time"]);
    let missing = acknowledge(
        &mut shandong,
        "referrals/0190ffffffffffffffffffffffffffff",
        "a-3",
    )
    .await
    .expect_err("no such referral");
    assert_eq!(missing.code(), Code::NotFound);
}

async fn a_third_agency_reacts_but_cannot_act(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let mut jiangsu = app.as_agency(JIANGSU).await;
    let published = publish(&mut shanghai, "pub-1", sample("370102", "310104")).await;
    let result = published.result.expect("result");

    // Jiangsu learns of the referral from the (public) result.
    let read = jiangsu
        .results
        .get_result(pb::GetResultRequest {
            name: result.name.clone(),
        })
        .await
        .expect("get result")
        .into_inner()
        .result
        .expect("result");
    let name = read.referrals[0].clone();
    assert_eq!(
        get(&mut jiangsu, &name).await.handling_agency,
        format!("agencies/{SHANDONG}")
    );

    for status in [
        acknowledge(&mut jiangsu, &name, "j-1")
            .await
            .expect_err("not Jiangsu's"),
        record(
            &mut jiangsu,
            &name,
            "j-2",
            measure(pb::MeasureKind::Recall, &clock),
        )
        .await
        .expect_err("not Jiangsu's"),
        jiangsu
            .disposal
            .close_referral(close_request(&name, "j-3", pb::ReferralOutcome::Other))
            .await
            .expect_err("not Jiangsu's"),
        jiangsu
            .disposal
            .reroute_referral(pb::RerouteReferralRequest {
                request_id: "j-4".into(),
                name: name.clone(),
                handling_agency: format!("agencies/{JIANGSU}"),
                jurisdiction_basis: pb::JurisdictionBasis::Seller as i32,
                reason: "x".into(),
            })
            .await
            .expect_err("not Jiangsu's"),
    ] {
        assert_refused(&status, Code::PermissionDenied, "not party");
    }

    let mut shanghai_feed = Feed::open(&app, SHANGHAI).await;
    let mut shandong_feed = Feed::open(&app, SHANDONG).await;
    let _ = shandong_feed.next().await; // the result
    let _ = shandong_feed.next().await; // the referral
    let reaction = pb::Reaction {
        kind: pb::ReactionKind::FoundOnSaleHere as i32,
        text: "同款产品在南京某网店有售，已责令下架".into(),
        ..Default::default()
    };
    let reacted = jiangsu
        .disposal
        .add_reaction(pb::AddReactionRequest {
            request_id: "react-1".into(),
            name: name.clone(),
            reaction: Some(reaction.clone()),
        })
        .await
        .expect("react")
        .into_inner()
        .referral
        .expect("referral");
    assert_eq!(reacted.reactions.len(), 1);
    assert_eq!(reacted.reactions[0].agency, format!("agencies/{JIANGSU}"));
    assert_eq!(reacted.reactions[0].seq, 1);
    for feed in [&mut shanghai_feed, &mut shandong_feed] {
        let (kind, _, seen) = feed.next_referral().await;
        assert_eq!(kind, pb::EventType::ReactionAdded);
        assert_eq!(seen.reactions, reacted.reactions);
    }
    // The parties do not react to their own referral.
    let own = shanghai
        .disposal
        .add_reaction(pb::AddReactionRequest {
            request_id: "react-sh".into(),
            name: name.clone(),
            reaction: Some(reaction),
        })
        .await
        .expect_err("a party");
    assert_eq!(own.code(), Code::PermissionDenied);

    // Having reacted, Jiangsu hears of later steps and lists the referral as reacting.
    let mut jiangsu_feed = Feed::open(&app, JIANGSU).await;
    acknowledge(&mut shandong, &name, "ack").await.expect("ack");
    let (kind, step, _) = jiangsu_feed.next_referral().await;
    assert_eq!(
        (kind, step),
        (
            pb::EventType::ReferralUpdated,
            pb::ReferralStepKind::Acknowledged
        )
    );
    let mine = jiangsu
        .disposal
        .list_referrals(pb::ListReferralsRequest {
            role: pb::ReferralRole::Reacting as i32,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(mine.referrals.len(), 1);
    let not_mine = jiangsu
        .disposal
        .list_referrals(pb::ListReferralsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(not_mine.referrals.is_empty());
}

async fn referrals_by_hand(app: TestApp, _clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut jiangsu = app.as_agency(JIANGSU).await;
    // Made in Shanghai, sold from Jiangsu: the exchange opens one to Jiangsu (the seller).
    let published = publish(&mut shanghai, "pub-1", sample("310104", "320106")).await;
    let result = published.result.expect("result").name;
    assert_eq!(published.opened_referrals.len(), 1);
    let automatic = get(&mut shanghai, &published.opened_referrals[0]).await;
    assert_eq!(automatic.handling_agency, format!("agencies/{JIANGSU}"));
    assert_eq!(
        automatic.jurisdiction_basis(),
        pb::JurisdictionBasis::Seller
    );

    let create =
        |request_id: &str, agency: &str, basis: pb::JurisdictionBasis| pb::CreateReferralRequest {
            request_id: request_id.into(),
            result: result.clone(),
            result_version: 0,
            handling_agency: format!("agencies/{agency}"),
            jurisdiction_basis: basis as i32,
            requested_actions: vec![pb::MeasureKind::StopSales as i32],
            note: "请协查该网店".into(),
        };
    // One open referral per result and handling agency.
    let twice = shanghai
        .disposal
        .create_referral(create("c-1", JIANGSU, pb::JurisdictionBasis::Seller))
        .await
        .expect_err("already open");
    assert_eq!(twice.code(), Code::AlreadyExists);
    // Jurisdiction must match the basis; another agency's result, a missing one are refused.
    let elsewhere = shanghai
        .disposal
        .create_referral(create("c-2", ZHEJIANG, pb::JurisdictionBasis::Seller))
        .await
        .expect_err("the seller is not in Zhejiang");
    assert_eq!(bad_fields(&elsewhere), ["handling_agency"]);
    let foreign = jiangsu
        .disposal
        .create_referral(create("c-3", ZHEJIANG, pb::JurisdictionBasis::Seller))
        .await
        .expect_err("Shanghai's result");
    assert_eq!(foreign.code(), Code::PermissionDenied);
    let missing = shanghai
        .disposal
        .create_referral(pb::CreateReferralRequest {
            result: "results/0190ffffffffffffffffffffffffffff".into(),
            ..create("c-4", JIANGSU, pb::JurisdictionBasis::Seller)
        })
        .await
        .expect_err("no such result");
    assert_eq!(missing.code(), Code::NotFound);
    let mut conforming = sample("310104", "310104");
    conforming.test_items[0].verdict = pb::Verdict::Conforming as i32;
    conforming.verdict = pb::Verdict::Conforming as i32;
    conforming.failed_items.clear();
    let fine = publish(&mut shanghai, "pub-2", conforming).await;
    assert!(fine.opened_referrals.is_empty());
    let fine_name = fine.result.expect("result").name;
    let not_referable = shanghai
        .disposal
        .create_referral(pb::CreateReferralRequest {
            result: fine_name.clone(),
            ..create("c-5", JIANGSU, pb::JurisdictionBasis::Seller)
        })
        .await
        .expect_err("conforming");
    assert_refused(&not_referable, Code::FailedPrecondition, "conforming");
    // A correction that makes it non-conforming, naming a Shandong producer, opens the
    // referral there with the new version.
    let corrected = shanghai
        .results
        .correct_result(pb::CorrectResultRequest {
            request_id: "fix-1".into(),
            name: fine_name.clone(),
            result: Some(sample("370102", "310104")),
            reason: "检验结论录入错误".into(),
            base_version: 1,
        })
        .await
        .expect("correct")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(corrected.referrals.len(), 1);
    let opened_by_correction = get(&mut shanghai, &corrected.referrals[0]).await;
    assert_eq!(
        opened_by_correction.handling_agency,
        format!("agencies/{SHANDONG}")
    );
    assert_eq!(opened_by_correction.result_version, 2);
    assert_eq!(opened_by_correction.origin(), pb::ReferralOrigin::Automatic);

    // Once Jiangsu closed its referral, Shanghai may open another by hand.
    let name = automatic.name.clone();
    acknowledge(&mut jiangsu, &name, "ack").await.expect("ack");
    start_handling(&mut jiangsu, &name, "start")
        .await
        .expect("start");
    jiangsu
        .disposal
        .close_referral(close_request(
            &name,
            "close",
            pb::ReferralOutcome::NoViolationFound,
        ))
        .await
        .expect("close");
    let mut jiangsu_feed = Feed::open(&app, JIANGSU).await;
    let created = shanghai
        .disposal
        .create_referral(create("c-6", JIANGSU, pb::JurisdictionBasis::Seller))
        .await
        .expect("by hand")
        .into_inner();
    let manual = created.referral.clone().expect("referral");
    assert!(created.receipt.is_some());
    assert_eq!(manual.origin(), pb::ReferralOrigin::Manual);
    assert_eq!(
        manual.requested_actions,
        vec![pb::MeasureKind::StopSales as i32]
    );
    assert_eq!(manual.note, "请协查该网店");
    // Jiangsu's feed holds the result and the first referral's opening before it.
    let event = loop {
        let event = jiangsu_feed.next().await;
        if event.resource_name == manual.name {
            break event;
        }
    };
    assert_eq!(event.event_type(), pb::EventType::ReferralOpened);
    assert_eq!(
        event.resource,
        Some(pb::feed_event::Resource::Referral(manual.clone()))
    );
    // A retry answers the first referral.
    let retry = shanghai
        .disposal
        .create_referral(create("c-6", JIANGSU, pb::JurisdictionBasis::Seller))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, created);
}

async fn each_bad_field_is_named(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let before = get(&mut shanghai, &name).await;
    let mut d = shanghai.disposal.clone();

    let check = |status: tonic::Status, expected: &[&str]| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let mut got = bad_fields(&status);
        got.sort();
        let mut expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        assert_eq!(got, expected, "{}", status.message());
    };
    check(
        d.create_referral(pb::CreateReferralRequest {
            requested_actions: vec![0, 99],
            ..Default::default()
        })
        .await
        .expect_err("empty"),
        &[
            "request_id",
            "result",
            "handling_agency",
            "jurisdiction_basis",
            "requested_actions[0]",
            "requested_actions[1]",
        ],
    );
    check(
        d.create_referral(pb::CreateReferralRequest {
            request_id: "x".into(),
            result: "results/abc".into(),
            handling_agency: "agencies/990000-XX".into(),
            jurisdiction_basis: pb::JurisdictionBasis::Producer as i32,
            ..Default::default()
        })
        .await
        .expect_err("unknown agency"),
        &["handling_agency"],
    );
    check(
        d.acknowledge_referral(pb::AcknowledgeReferralRequest {
            request_id: String::new(),
            name: "results/abc".into(),
            note: String::new(),
        })
        .await
        .expect_err("bad"),
        &["request_id", "name"],
    );
    check(
        d.record_measure(pb::RecordMeasureRequest {
            request_id: "m".into(),
            name: name.clone(),
            measure: Some(pb::Measure {
                kind: pb::MeasureKind::AdministrativePenalty as i32,
                review_outcome: pb::Verdict::Conforming as i32,
                deadline: "2024-01-01".into(),
                ..Default::default()
            }),
            note: String::new(),
        })
        .await
        .expect_err("bad measure"),
        &[
            "measure.occur_time",
            "measure.review_outcome",
            "measure.deadline",
            "measure.decision_number",
        ],
    );
    check(
        d.record_measure(pb::RecordMeasureRequest {
            request_id: "m".into(),
            name: name.clone(),
            measure: Some(pb::Measure {
                kind: pb::MeasureKind::Other as i32,
                ..measure(pb::MeasureKind::Other, &clock)
            })
            .map(|mut m| {
                m.detail.clear();
                m
            }),
            note: String::new(),
        })
        .await
        .expect_err("other needs a detail"),
        &["measure.detail"],
    );
    check(
        d.file_objection(pb::FileObjectionRequest {
            request_id: "o".into(),
            name: name.clone(),
            objection: Some(pb::Objection {
                result_received_date: "2024/01/01".into(),
                ..Default::default()
            }),
            note: String::new(),
        })
        .await
        .expect_err("bad objection"),
        &[
            "objection.party_name",
            "objection.result_received_date",
            "objection.received_date",
            "objection.grounds",
        ],
    );
    check(
        d.record_reinspection(pb::RecordReinspectionRequest {
            request_id: "r".into(),
            name: name.clone(),
            reinspection: Some(pb::Reinspection {
                outcome: pb::Verdict::NotJudged as i32,
                report_date: days_ago(&clock, -3),
                ..Default::default()
            }),
            note: String::new(),
        })
        .await
        .expect_err("bad re-inspection"),
        &[
            "reinspection.outcome",
            "reinspection.inspection_body",
            "reinspection.report_number",
            "reinspection.report_date",
        ],
    );
    check(
        d.return_referral(pb::ReturnReferralRequest {
            request_id: "r".into(),
            name: name.clone(),
            reason: " ".into(),
            suggested_agency: "agencies/nope".into(),
        })
        .await
        .expect_err("bad return"),
        &["reason", "suggested_agency"],
    );
    check(
        d.reroute_referral(pb::RerouteReferralRequest {
            request_id: "r".into(),
            name: name.clone(),
            handling_agency: String::new(),
            jurisdiction_basis: 7,
            reason: String::new(),
        })
        .await
        .expect_err("bad reroute"),
        &["handling_agency", "jurisdiction_basis", "reason"],
    );
    check(
        d.close_referral(pb::CloseReferralRequest {
            request_id: "c".into(),
            name: name.clone(),
            closure: Some(pb::ReferralClosure::default()),
        })
        .await
        .expect_err("bad closure"),
        &["closure.outcome", "closure.summary"],
    );
    check(
        d.add_reaction(pb::AddReactionRequest {
            request_id: "a".into(),
            name: name.clone(),
            reaction: Some(pb::Reaction {
                attachments: vec![pb::Attachment {
                    file_name: "a/b.pdf".into(),
                    media_type: "pdf".into(),
                    sha256: "XYZ".into(),
                    size_bytes: 0,
                    description: String::new(),
                }],
                ..Default::default()
            }),
        })
        .await
        .expect_err("bad reaction"),
        &[
            "reaction.kind",
            "reaction.text",
            "reaction.attachments[0].file_name",
            "reaction.attachments[0].media_type",
            "reaction.attachments[0].sha256",
            "reaction.attachments[0].size_bytes",
        ],
    );
    check(
        d.list_referrals(pb::ListReferralsRequest {
            role: 9,
            state: 42,
            producer_uscc: "123".into(),
            page_size: -1,
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad list"),
        &["role", "state", "producer_uscc", "page_size", "page_token"],
    );
    check(
        d.get_referral(pb::GetReferralRequest {
            name: "referrals/".into(),
        })
        .await
        .expect_err("bad name"),
        &["name"],
    );
    assert_eq!(
        get(&mut shanghai, &name).await,
        before,
        "nothing was written"
    );
}

// ----------------------------------------------------------------------------------------------
// Several replicas' schedulers on one database.
// ----------------------------------------------------------------------------------------------

mod concurrent_schedulers_flag_each_deadline_once {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::concurrent_schedulers(yrd_e2e::StoreKind::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::concurrent_schedulers(yrd_e2e::StoreKind::Postgres).await;
    }
}

/// Two replicas on one database, each with two schedulers ticking at the same instant after a
/// deadline passed: exactly one tick flags it, and the parties get one overdue event each.
async fn concurrent_schedulers(kind: StoreKind) {
    let clock = Arc::new(ManualClock::new(start()));
    // The servers' own schedulers wait an hour between ticks: only the test's ones race.
    let Some(app) = TestApp::spawn_with(
        kind,
        |settings| settings.disposal.scheduler_interval_ms = 3_600_000,
        clock.clone(),
    )
    .await
    else {
        return;
    };
    let replica = app.spawn_replica().await;
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    clock.advance(time::Duration::days(3));

    let scheduler = |store: &yrd_store::Store| {
        yrd_disposal::DeadlineScheduler::new(
            store.clone(),
            clock.clone(),
            yrd_disposal::Opener::default(),
            Duration::from_secs(3600),
        )
    };
    let schedulers = [
        scheduler(&app.store),
        scheduler(&app.store),
        scheduler(&replica.store),
        scheduler(&replica.store),
    ];
    let ticks = futures::future::join_all(schedulers.iter().map(|s| s.tick())).await;
    let flagged: usize = ticks.into_iter().map(|t| t.expect("tick")).sum();
    assert_eq!(flagged, 1, "one scheduler flags the deadline");

    for party in [SHANGHAI, SHANDONG] {
        let overdue = app
            .store
            .feed_events_after(&yrd_e2e::agency_id(party), 0, 100)
            .await
            .expect("feed")
            .into_iter()
            .filter(|e| e.event.event_type == "EVENT_TYPE_REFERRAL_OVERDUE")
            .count();
        assert_eq!(overdue, 1, "{party}");
    }
    let mut shanghai = app.as_agency(SHANGHAI).await; // a token for the new day
    let referral = get(&mut shanghai, &name).await;
    assert_eq!(
        kinds(&referral),
        [
            pb::ReferralStepKind::Opened,
            pb::ReferralStepKind::OverdueFlagged
        ]
    );
    drop(replica);
}
