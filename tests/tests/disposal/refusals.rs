//! What is refused: illegal steps (naming the state), a third agency's acts (it may react),
//! and each bad field, by name.

use std::sync::Arc;

use tonic::Code;
use yrd_call::timestamp;
use yrd_domain::clock::{Clock, ManualClock};
use yrd_e2e::fixtures::assert_refused;
use yrd_e2e::{JIANGSU, SHANDONG, SHANGHAI, TestApp, ZHEJIANG, violated_fields};
use yrd_proto::v1::{self as pb, EventType as E, MeasureKind as M, ReferralStepKind as K};

use crate::support::{
    Feed, Steps as _, close_request, days_ago, measure, publish, referral_to_shandong, review,
    sample, step,
};

pub async fn illegal_steps_are_refused_naming_the_state(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let before = shanghai.get(&name).await;

    // Before delivery: no handling, no closing, no rerouting, no measure.
    let recall = measure(M::Recall, &clock);
    let other = close_request(&name, "c-1", pb::ReferralOutcome::Other);
    let producer = pb::JurisdictionBasis::Producer;
    let close = shandong.close(other).await.map(drop);
    assert_eq!(
        close.expect_err("not handled").message(),
        "CloseReferral is not allowed in state REFERRAL_STATE_OPENED (已移送)"
    );
    for (refused, message) in [
        (
            shandong.start_handling(&name, "s-1").await.map(drop),
            "StartHandling is not allowed in state REFERRAL_STATE_OPENED (已移送)",
        ),
        (
            shanghai
                .reroute(&name, "r-1", ZHEJIANG, producer, "x")
                .await
                .map(drop),
            "RerouteReferral is not allowed in state REFERRAL_STATE_OPENED",
        ),
        (
            shandong.record(&name, "m-0", recall).await.map(drop),
            "RecordMeasure is not allowed in state REFERRAL_STATE_OPENED",
        ),
    ] {
        let status = refused.expect_err(message);
        assert_refused(&status, Code::FailedPrecondition, message);
    }
    assert_eq!(shanghai.get(&name).await, before, "nothing was written");

    shandong.acknowledge(&name, "a-1").await.expect("ack");
    let twice = shandong
        .acknowledge(&name, "a-2")
        .await
        .expect_err("already");
    assert_refused(
        &twice,
        Code::FailedPrecondition,
        "AcknowledgeReferral is not allowed in state REFERRAL_STATE_DELIVERED (已送达)",
    );
    shandong.start_handling(&name, "s-2").await.expect("start");
    let conforming = review(pb::Verdict::Conforming, &clock);
    let review_first = shandong
        .record(&name, "m-1", conforming)
        .await
        .expect_err("no order yet");
    assert_refused(&review_first, Code::FailedPrecondition, "ordered first");
    let overturned = shandong
        .close(close_request(&name, "c-2", pb::ReferralOutcome::Overturned))
        .await
        .expect_err("only a re-inspection overturns");
    assert_refused(
        &overturned,
        Code::FailedPrecondition,
        "REFERRAL_STATE_IN_PROGRESS",
    );
    let rectified = shandong
        .close(close_request(&name, "c-3", pb::ReferralOutcome::Rectified))
        .await
        .expect_err("no conforming review");
    // The contract's method, state and outcome, the Chinese terms beside them.
    assert_eq!(
        rectified.message(),
        "CloseReferral is not allowed in state REFERRAL_STATE_IN_PROGRESS (处置中): closing as \
         REFERRAL_OUTCOME_RECTIFIED needs a conforming review (复查)"
    );
    // A measure dated after today is a bad field, not a state question.
    let mut future = measure(M::Recall, &clock);
    future.occur_time = Some(timestamp(clock.now() + time::Duration::days(1)));
    let future = shandong
        .record(&name, "m-2", future)
        .await
        .expect_err("future");
    assert_eq!(violated_fields(&future), ["measure.occur_time"]);
    let missing = shandong
        .acknowledge("referrals/0190ffffffffffffffffffffffffffff", "a-3")
        .await
        .expect_err("no such referral");
    assert_eq!(missing.code(), Code::NotFound);
}

pub async fn a_third_agency_reacts_but_cannot_act(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut shandong = app.as_agency(SHANDONG).await;
    let mut jiangsu = app.as_agency(JIANGSU).await;
    let published = publish(&mut shanghai, "pub-1", sample("370102", "310104")).await;
    let result = published.result.expect("result");

    // Jiangsu learns of the referral from the (public) result.
    let read = jiangsu.read_result(&result.name).await;
    let name = read.referrals[0].clone();
    assert_eq!(
        jiangsu.get(&name).await.handling_agency,
        format!("agencies/{SHANDONG}")
    );

    let recall = measure(M::Recall, &clock);
    let other = close_request(&name, "j-3", pb::ReferralOutcome::Other);
    let seller = pb::JurisdictionBasis::Seller;
    for refused in [
        jiangsu.acknowledge(&name, "j-1").await.map(drop),
        jiangsu.record(&name, "j-2", recall).await.map(drop),
        jiangsu.close(other).await.map(drop),
        jiangsu
            .reroute(&name, "j-4", JIANGSU, seller, "x")
            .await
            .map(drop),
    ] {
        let status = refused.expect_err("not Jiangsu's");
        assert_refused(&status, Code::PermissionDenied, "not party");
    }

    let mut shanghai_feed = Feed::open(&app, SHANGHAI).await;
    let mut shandong_feed = Feed::open(&app, SHANDONG).await;
    shandong_feed.skip_opening().await;
    let reaction = pb::Reaction {
        kind: pb::ReactionKind::FoundOnSaleHere as i32,
        text: "同款产品在南京某网店有售，已责令下架".into(),
        ..Default::default()
    };
    let react = |request_id: &str| pb::AddReactionRequest {
        request_id: request_id.into(),
        name: name.clone(),
        reaction: Some(reaction.clone()),
    };
    let reacted = step(jiangsu.disposal.add_reaction(react("react-1")).await).expect("react");
    assert_eq!(reacted.reactions.len(), 1);
    assert_eq!(reacted.reactions[0].agency, format!("agencies/{JIANGSU}"));
    assert_eq!(reacted.reactions[0].seq, 1);
    for feed in [&mut shanghai_feed, &mut shandong_feed] {
        let (kind, _, seen) = feed.next_referral().await;
        assert_eq!(kind, E::ReactionAdded);
        assert_eq!(seen.reactions, reacted.reactions);
    }
    // The parties do not react to their own referral.
    let own = shanghai
        .disposal
        .add_reaction(react("react-sh"))
        .await
        .expect_err("a party");
    assert_eq!(own.code(), Code::PermissionDenied);

    // Having reacted, Jiangsu hears of later steps and lists the referral as reacting.
    let mut jiangsu_feed = Feed::open(&app, JIANGSU).await;
    shandong.acknowledge(&name, "ack").await.expect("ack");
    jiangsu_feed
        .expect_step(E::ReferralUpdated, K::Acknowledged)
        .await;
    let reacting = pb::ListReferralsRequest {
        role: pb::ReferralRole::Reacting as i32,
        ..Default::default()
    };
    assert_eq!(jiangsu.list(reacting).await.len(), 1);
    let not_mine = jiangsu.list(pb::ListReferralsRequest::default()).await;
    assert!(not_mine.is_empty());
}

pub async fn each_bad_field_is_named(app: TestApp, clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let name = referral_to_shandong(&mut shanghai, "pub-1").await;
    let before = shanghai.get(&name).await;
    let mut d = shanghai.disposal.clone();

    let check = |status: tonic::Status, expected: &[&str]| {
        let mut got = violated_fields(&status);
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
                kind: M::AdministrativePenalty as i32,
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
                kind: M::Other as i32,
                ..measure(M::Other, &clock)
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
    assert_eq!(shanghai.get(&name).await, before, "nothing was written");
}
