//! A referral handled to closure while the sampling agency watches, and a returned referral
//! rerouted.

use std::sync::Arc;

use tonic::Code;
use yrd_domain::calendar::china_date;
use yrd_domain::clock::{Clock, ManualClock};
use yrd_e2e::fixtures::{assert_receipt, uscc};
use yrd_e2e::{ANHUI, SHANDONG, SHANGHAI, TestApp, ZHEJIANG};
use yrd_proto::v1::{self as pb, EventType as E, MeasureKind as M, ReferralStepKind as K};

use crate::support::{
    Feed, Steps as _, close_request, kinds, measure, publish, referral_to_shandong, review, sample,
};

pub async fn a_referral_is_handled_to_closure_while_the_sampling_agency_watches(
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
    assert_eq!(event.event_type(), E::ResultPublished);
    assert!(event.needs_disposal);
    let (kind, step, opened) = shandong_feed.next_referral().await;
    assert_eq!(kind, E::ReferralOpened);
    assert_eq!(step, K::Opened);
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
    assert_eq!(shanghai.get(&name).await, opened);

    // The result names its referral for every reader.
    let read = shandong.read_result(&result.name).await;
    assert_eq!(read.referrals, vec![name.clone()]);

    // Shandong acknowledges, starts, acts, orders correction, reviews and closes; Shanghai's
    // subscriber sees each step with the referral as it stands after it.
    let steps: Vec<(pb::ReferralStepKind, pb::ReferralState)> = vec![
        (K::Acknowledged, pb::ReferralState::Delivered),
        (K::HandlingStarted, pb::ReferralState::InProgress),
        (K::MeasureRecorded, pb::ReferralState::InProgress),
        (K::MeasureRecorded, pb::ReferralState::Rectifying),
        (K::MeasureRecorded, pb::ReferralState::Rectifying),
        (K::Closed, pb::ReferralState::Closed),
    ];
    let delivered = shandong.acknowledge(&name, "ack-1").await.expect("ack");
    assert!(delivered.next_deadline.is_none());
    shandong
        .start_handling(&name, "start-1")
        .await
        .expect("start");
    let stop = measure(M::StopProduction, &clock);
    shandong.record(&name, "m-1", stop).await.expect("stop");
    let order = measure(M::OrderRectification, &clock);
    let rectifying = shandong.record(&name, "m-2", order).await.expect("order");
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
    let conforming = review(pb::Verdict::Conforming, &clock);
    shandong
        .record(&name, "m-3", conforming)
        .await
        .expect("review");
    let close = close_request(&name, "close-1", pb::ReferralOutcome::Rectified);
    let closed = shandong.close(close.clone()).await.expect("close");
    assert_receipt(closed.receipt.as_ref());
    let receipt = closed.receipt.clone();
    let closed = closed.referral.expect("referral");
    assert_eq!(closed.state(), pb::ReferralState::Closed);
    assert_eq!(closed.outcome(), pb::ReferralOutcome::Rectified);
    assert_eq!(closed.outcome_summary, "整改到位，复查合格");
    assert!(closed.close_time.is_some());

    for (kind, state) in &steps {
        let seen = shanghai_feed.expect_step(E::ReferralUpdated, *kind).await;
        assert_eq!(seen.state(), *state);
        assert_eq!(seen.name, name);
    }
    let timeline = shanghai.get(&name).await;
    assert_eq!(timeline, closed);
    let mut expected = vec![K::Opened];
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
    let again = shandong.close(close.clone()).await.expect("retry");
    assert_eq!(again.receipt, receipt);
    let another_body = pb::CloseReferralRequest {
        closure: Some(pb::ReferralClosure {
            outcome: pb::ReferralOutcome::Other as i32,
            summary: "另一个结论".into(),
        }),
        ..close
    };
    let reused = shandong
        .close(another_body)
        .await
        .expect_err("another body");
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert_eq!(shanghai.get(&name).await, timeline);

    // Lists: by part, state, producer; newest first, paged.
    let second = referral_to_shandong(&mut shanghai, "pub-2").await;
    let (both, closed, opened) = (
        [second.as_str(), name.as_str()],
        [name.as_str()],
        [second.as_str()],
    );
    type Filter = fn(&mut pb::ListReferralsRequest);
    use pb::ReferralRole as Role;
    use pb::ReferralState as State;
    #[rustfmt::skip]
    let lists: [(&str, Role, Filter, &[&str]); 12] = [
        (SHANDONG, Role::Handling, |_| {}, &both),
        (SHANGHAI, Role::Sampling, |_| {}, &both),
        (SHANGHAI, Role::Handling, |_| {}, &[]),
        (SHANDONG, Role::Unspecified, |r| r.state = State::Closed as i32, &closed),
        (SHANDONG, Role::Unspecified, |r| r.state = State::Opened as i32, &opened),
        (SHANDONG, Role::Unspecified, |r| r.overdue = Some(false), &both),
        (SHANDONG, Role::Unspecified, |r| r.overdue = Some(true), &[]),
        (SHANDONG, Role::Unspecified, |r| r.announcement_required = Some(true), &[]),
        (SHANDONG, Role::Unspecified, |r| r.product_name_contains = "玩具".into(), &both),
        (SHANDONG, Role::Unspecified, |r| r.product_name_contains = "滑板".into(), &[]),
        (SHANDONG, Role::Unspecified, |r| r.producer_uscc = uscc("370102", 7), &both),
        (SHANDONG, Role::Unspecified, |r| r.producer_uscc = uscc("370102", 9), &[]),
    ];
    for (who, role, filter, expected) in lists {
        let mut request = pb::ListReferralsRequest {
            role: role as i32,
            ..Default::default()
        };
        filter(&mut request);
        let client = if who == SHANDONG {
            &mut shandong
        } else {
            &mut shanghai
        };
        let got = client.list(request.clone()).await;
        let got: Vec<&str> = got.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(got, expected, "{request:?}");
    }
    let page = |page_token: String| pb::ListReferralsRequest {
        page_size: 1,
        page_token,
        ..Default::default()
    };
    let first = shandong.disposal.list_referrals(page(String::new())).await;
    let first = first.expect("page 1").into_inner();
    assert_eq!(first.referrals.len(), 1);
    assert_eq!(first.referrals[0].name, second);
    let rest = shandong
        .disposal
        .list_referrals(page(first.next_page_token))
        .await;
    let rest = rest.expect("page 2").into_inner();
    assert_eq!(rest.referrals.len(), 1);
    assert_eq!(rest.referrals[0].name, name);
    assert!(rest.next_page_token.is_empty());
}

pub async fn a_returned_referral_is_rerouted(app: TestApp, _clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let mut zhejiang = app.as_agency(ZHEJIANG).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let mut shanghai_feed = Feed::open(&app, SHANGHAI).await;
    let mut zhejiang_feed = Feed::open(&app, ZHEJIANG).await;

    // Shandong returns it as outside its jurisdiction; Shanghai's subscriber sees it.
    let returned = shandong
        .return_referral(&name, "ret-1", "生产者已迁至浙江", "")
        .await;
    assert_eq!(returned.state(), pb::ReferralState::Returned);
    let seen = shanghai_feed
        .expect_step(E::ReferralUpdated, K::Returned)
        .await;
    assert_eq!(seen.state(), pb::ReferralState::Returned);

    // Shanghai reroutes it to Zhejiang, where it starts again as opened.
    let rerouted = shanghai
        .reroute(
            &name,
            "reroute-1",
            ZHEJIANG,
            pb::JurisdictionBasis::Producer,
            "生产者现住所地在杭州",
        )
        .await
        .expect("reroute");
    assert_eq!(rerouted.state(), pb::ReferralState::Opened);
    assert_eq!(rerouted.handling_agency, format!("agencies/{ZHEJIANG}"));
    assert_eq!(
        rerouted.previous_handling_agencies,
        vec![format!("agencies/{SHANDONG}")]
    );
    assert!(rerouted.next_deadline.is_some());
    let seen = zhejiang_feed
        .expect_step(E::ReferralOpened, K::Rerouted)
        .await;
    assert_eq!(seen, rerouted);

    // Shandong is a bystander now; Zhejiang handles it.
    let denied = shandong
        .acknowledge(&name, "ack-sd")
        .await
        .expect_err("not Shandong's");
    assert_eq!(denied.code(), Code::PermissionDenied);
    zhejiang
        .acknowledge(&name, "ack-zj")
        .await
        .expect("Zhejiang acknowledges");
    let (_, step, _) = shanghai_feed.next_referral().await;
    assert_eq!(step, K::Acknowledged);

    // Zhejiang returns it naming Anhui: it goes straight to Anhui.
    let mut anhui_feed = Feed::open(&app, ANHUI).await;
    let anhui = format!("agencies/{ANHUI}");
    let to_anhui = zhejiang
        .return_referral(&name, "ret-2", "生产者在安徽", &anhui)
        .await;
    assert_eq!(to_anhui.state(), pb::ReferralState::Opened);
    assert_eq!(to_anhui.handling_agency, anhui);
    let (kind, _, _) = anhui_feed.next_referral().await;
    assert_eq!(kind, E::ReferralUpdated, "first the return");
    anhui_feed.expect_step(E::ReferralOpened, K::Rerouted).await;
    assert_eq!(
        &kinds(&to_anhui)[1..],
        &[
            K::Returned,
            K::Rerouted,
            K::Acknowledged,
            K::Returned,
            K::Rerouted,
        ]
    );
}
