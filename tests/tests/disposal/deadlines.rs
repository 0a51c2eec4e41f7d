//! Deadlines under a manual clock: overdue, then the announcement; several replicas'
//! schedulers flag each deadline once.

use std::sync::Arc;

use tonic::Code;
use yrd_domain::calendar::china_date;
use yrd_domain::clock::{Clock, ManualClock};
use yrd_e2e::fixtures::{assert_refused, scheduler_leaves};
use yrd_e2e::{SHANDONG, SHANGHAI, StoreKind, TestApp};
use yrd_proto::v1::{self as pb, EventType as E, MeasureKind as M, ReferralStepKind as K};

use crate::support::{Feed, Steps as _, kinds, measure, referral_to_shandong, scheduler, start};

pub async fn overdue_then_announcement_required_under_a_manual_clock(
    app: TestApp,
    clock: Arc<ManualClock>,
) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let mut shanghai_feed = Feed::open(&app, SHANGHAI).await;
    let mut shandong_feed = Feed::open(&app, SHANDONG).await;
    shandong_feed.skip_opening().await;

    // Opened on Monday, due Wednesday: on Thursday the scheduler flags it, to both parties.
    clock.advance(time::Duration::days(3));
    app.tick_schedulers();
    shanghai_feed.renew(&app).await;
    shandong_feed.renew(&app).await;
    for feed in [&mut shanghai_feed, &mut shandong_feed] {
        let seen = feed
            .expect_step(E::ReferralOverdue, K::OverdueFlagged)
            .await;
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
    let second = scheduler(&app.store, &clock);
    assert_eq!(second.tick().await.expect("tick"), 0);

    // Late acknowledgement clears the flag; correction is ordered.
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let overdue = pb::ListReferralsRequest {
        overdue: Some(true),
        ..Default::default()
    };
    assert_eq!(shanghai.list(overdue).await.len(), 1);
    let delivered = shandong.acknowledge(&name, "ack").await.expect("ack");
    assert!(!delivered.overdue);
    shandong
        .start_handling(&name, "start")
        .await
        .expect("start");
    let order = measure(M::OrderRectification, &clock);
    let ordered = shandong.record(&name, "order", order).await.expect("order");
    for _ in 0..3 {
        let (kind, _, _) = shanghai_feed.next_referral().await;
        assert_eq!(kind, E::ReferralUpdated);
    }
    // Announcing before anything failed is refused.
    let announcement = measure(M::PublicAnnouncement, &clock);
    let early = shandong
        .record(&name, "announce-early", announcement)
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
    assert_eq!(kind, E::ReferralOverdue);
    assert!(seen.overdue && !seen.announcement_required);
    assert_eq!(
        seen.next_deadline.as_ref().map(|d| d.kind()),
        Some(pb::ReferralDeadlineKind::Review)
    );

    // The 75-day review deadline passes without a review: overdue, then the announcement flag.
    let (kind, _, _) = shandong_feed.next_referral().await;
    assert_eq!(kind, E::ReferralOverdue, "Shandong is told too");
    clock.advance(time::Duration::days(days_to(review_due)));
    app.tick_schedulers();
    shanghai_feed.renew(&app).await;
    shandong_feed.renew(&app).await;
    for feed in [&mut shanghai_feed, &mut shandong_feed] {
        feed.expect_step(E::ReferralOverdue, K::OverdueFlagged)
            .await;
        let seen = feed
            .expect_step(E::ReferralAnnouncementRequired, K::AnnouncementFlagged)
            .await;
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
    scheduler_leaves(&app, yrd_disposal::scheduler::SCHEDULER_METHOD, &name, 3).await;

    let mut shandong = app.as_agency(SHANDONG).await;
    let flagged = pb::ListReferralsRequest {
        announcement_required: Some(true),
        ..Default::default()
    };
    assert_eq!(shandong.list(flagged).await.len(), 1);
    let announcement = measure(M::PublicAnnouncement, &clock);
    let announced = shandong
        .record(&name, "announce", announcement)
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

/// Two replicas on one database, each with two schedulers ticking at the same instant after a
/// deadline passed: exactly one tick flags it, and the parties get one overdue event each.
pub async fn concurrent_schedulers(kind: StoreKind) {
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

    let schedulers = [
        scheduler(&app.store, &clock),
        scheduler(&app.store, &clock),
        scheduler(&replica.store, &clock),
        scheduler(&replica.store, &clock),
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
    let referral = shanghai.get(&name).await;
    assert_eq!(kinds(&referral), [K::Opened, K::OverdueFlagged]);
    drop(replica);
}
