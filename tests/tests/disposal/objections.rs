//! Objections: one overturned by re-inspection, and the window in which they may be filed.

use std::sync::Arc;

use tonic::Code;
use yrd_domain::calendar::china_date;
use yrd_domain::clock::{Clock, ManualClock};
use yrd_e2e::fixtures::{assert_refused, pdf};
use yrd_e2e::{SHANDONG, SHANGHAI, TestApp};
use yrd_proto::v1::{self as pb, MeasureKind as M, ReferralStepKind as K};

use crate::support::{
    Feed, Steps as _, days_ago, measure, objection_window, referral_to_shandong, step, today,
};

pub async fn an_objection_is_overturned_by_reinspection(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    shandong.take_on(&name).await;
    let order = measure(M::OrderRectification, &clock);
    let ordered = shandong.record(&name, "order", order).await.expect("order");
    assert!(
        objection_window(&ordered).is_some(),
        "rectifying, the window is still open: {:?}",
        ordered.deadlines
    );
    let mut shandong_feed = Feed::open(&app, SHANDONG).await;
    shandong_feed.skip_opening().await;

    // An objection of the producer's, received `received` days ago, filed today.
    let objection = |request_id: &str, received: i64, note: &str| pb::FileObjectionRequest {
        request_id: request_id.into(),
        name: name.clone(),
        objection: Some(pb::Objection {
            party_name: "某玩具有限公司".into(),
            result_received_date: days_ago(&clock, received),
            received_date: today(&clock),
            grounds: "送检样品非本公司生产批次".into(),
            attachments: vec![pdf("异议申请书.pdf", "")],
        }),
        note: note.into(),
    };
    // Out of the 15-day window: refused, nothing written.
    let late = shanghai
        .disposal
        .file_objection(objection("obj-late", 20, ""))
        .await
        .expect_err("too late");
    assert_refused(&late, Code::FailedPrecondition, "objection window closed");
    // The handling agency does not record objections: they go to the sampling agency.
    let wrong = shandong
        .disposal
        .file_objection(objection("obj-sd", 2, ""))
        .await
        .expect_err("not the handling agency's step");
    assert_eq!(wrong.code(), Code::PermissionDenied);

    let filed = shanghai
        .disposal
        .file_objection(objection("obj-1", 2, "已受理复检申请"))
        .await;
    let pending = step(filed).expect("objection");
    assert_eq!(pending.state(), pb::ReferralState::ObjectionPending);
    assert!(pending.clock_paused);
    assert!(pending.next_deadline.is_none());
    assert_eq!(
        objection_window(&pending),
        None,
        "an objection was filed: the window is no longer listed"
    );
    let (_, step_kind, seen) = shandong_feed.next_referral().await;
    assert_eq!(step_kind, K::ObjectionFiled);
    assert!(seen.clock_paused);

    let reinspected = shanghai
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
        .await;
    let overturned = step(reinspected).expect("re-inspection");
    assert_eq!(overturned.state(), pb::ReferralState::Closed);
    assert_eq!(overturned.outcome(), pb::ReferralOutcome::Overturned);
    assert!(overturned.outcome_summary.contains("FJ-2024-009"));
    let (_, step_kind, seen) = shandong_feed.next_referral().await;
    assert_eq!(step_kind, K::ReinspectionRecorded);
    assert_eq!(seen.outcome(), pb::ReferralOutcome::Overturned);
    // Closed means closed.
    let recall = measure(M::Recall, &clock);
    let after = shandong
        .record(&name, "late-measure", recall)
        .await
        .expect_err("closed");
    assert_refused(
        &after,
        Code::FailedPrecondition,
        "RecordMeasure is not allowed in state REFERRAL_STATE_CLOSED (已办结, \
         REFERRAL_OUTCOME_OVERTURNED)",
    );
}

/// `REFERRAL_DEADLINE_KIND_OBJECTION_WINDOW` is listed from delivery (送达) for 15
/// calendar days, to both parties, in answers and reads alike, never overdue and never the
/// next deadline; the day after its last day it is gone from reads without any step.
pub async fn the_objection_window_is_listed_until_it_closes(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let opened = shanghai.get(&name).await;
    assert_eq!(objection_window(&opened), None, "not before delivery");

    let delivered = shandong.acknowledge(&name, "ack").await.expect("ack");
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
        objection_window(&shanghai.get(&name).await),
        Some(&expected),
        "the sampling agency, which records objections, reads it too"
    );

    // On its last day it is still listed; the day after, reads no longer list it, though no
    // step was taken, and nothing became overdue.
    let days_left = (last_day - china_date(clock.now())).whole_days();
    clock.advance(time::Duration::days(days_left));
    let mut shanghai = app.as_agency(SHANGHAI).await;
    assert_eq!(
        objection_window(&shanghai.get(&name).await),
        Some(&expected)
    );
    clock.advance(time::Duration::days(1));
    app.tick_schedulers();
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let closed = shanghai.get(&name).await;
    assert_eq!(objection_window(&closed), None, "{:?}", closed.deadlines);
    assert!(!closed.overdue);
    let listed = shanghai.list(pb::ListReferralsRequest::default()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(objection_window(&listed[0]), None);
}
