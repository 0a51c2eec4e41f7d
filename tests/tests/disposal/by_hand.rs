//! Referrals opened by hand (`CreateReferral`) beside the automatic ones.

use std::sync::Arc;

use tonic::Code;
use yrd_domain::clock::ManualClock;
use yrd_e2e::fixtures::assert_refused;
use yrd_e2e::{JIANGSU, SHANDONG, SHANGHAI, TestApp, ZHEJIANG, violated_fields};
use yrd_proto::v1::{self as pb};

use crate::support::{Feed, Steps as _, close_request, publish, sample};

pub async fn referrals_by_hand(app: TestApp, _clock: Arc<ManualClock>) {
    let mut shanghai = app.as_agency(SHANGHAI).await;
    let mut jiangsu = app.as_agency(JIANGSU).await;
    // Made in Shanghai, sold from Jiangsu: the exchange opens one to Jiangsu (the seller).
    let published = publish(&mut shanghai, "pub-1", sample("310104", "320106")).await;
    let result = published.result.expect("result").name;
    assert_eq!(published.opened_referrals.len(), 1);
    let automatic = shanghai.get(&published.opened_referrals[0]).await;
    assert_eq!(automatic.handling_agency, format!("agencies/{JIANGSU}"));
    assert_eq!(
        automatic.jurisdiction_basis(),
        pb::JurisdictionBasis::Seller
    );

    // A referral of the result to `agency`, where the seller is.
    let create = |request_id: &str, agency: &str| pb::CreateReferralRequest {
        request_id: request_id.into(),
        result: result.clone(),
        result_version: 0,
        handling_agency: format!("agencies/{agency}"),
        jurisdiction_basis: pb::JurisdictionBasis::Seller as i32,
        requested_actions: vec![pb::MeasureKind::StopSales as i32],
        note: "请协查该网店".into(),
    };
    // One open referral per result and handling agency.
    let twice = shanghai
        .disposal
        .create_referral(create("c-1", JIANGSU))
        .await
        .expect_err("already open");
    assert_eq!(twice.code(), Code::AlreadyExists);
    // Jurisdiction must match the basis; another agency's result, a missing one are refused.
    let elsewhere = shanghai
        .disposal
        .create_referral(create("c-2", ZHEJIANG))
        .await
        .expect_err("the seller is not in Zhejiang");
    assert_eq!(violated_fields(&elsewhere), ["handling_agency"]);
    let foreign = jiangsu
        .disposal
        .create_referral(create("c-3", ZHEJIANG))
        .await
        .expect_err("Shanghai's result");
    assert_eq!(foreign.code(), Code::PermissionDenied);
    let missing = shanghai
        .disposal
        .create_referral(pb::CreateReferralRequest {
            result: "results/0190ffffffffffffffffffffffffffff".into(),
            ..create("c-4", JIANGSU)
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
            ..create("c-5", JIANGSU)
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
    let opened_by_correction = shanghai.get(&corrected.referrals[0]).await;
    assert_eq!(
        opened_by_correction.handling_agency,
        format!("agencies/{SHANDONG}")
    );
    assert_eq!(opened_by_correction.result_version, 2);
    assert_eq!(opened_by_correction.origin(), pb::ReferralOrigin::Automatic);

    // Once Jiangsu closed its referral, Shanghai may open another by hand.
    let name = automatic.name.clone();
    jiangsu.take_on(&name).await;
    let no_violation = close_request(&name, "close", pb::ReferralOutcome::NoViolationFound);
    jiangsu.close(no_violation).await.expect("close");
    let mut jiangsu_feed = Feed::open(&app, JIANGSU).await;
    let created = shanghai
        .disposal
        .create_referral(create("c-6", JIANGSU))
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
        .create_referral(create("c-6", JIANGSU))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, created);
}
