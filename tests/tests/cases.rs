//! Cases (串案) end to end, on SQLite and PostgreSQL (docs/cases.md): three agencies publish
//! non-conforming results of one product, each spelling its model differently; one case forms,
//! every agency of it is told, each referral names it, and the handling agency's later step on
//! one agency's referral reaches the other two; a different product does not join.

mod audit_support;

use audit_support::wait_for;
use yrd_domain::Profile;
use yrd_e2e::fixtures::{non_conforming_toy, online_seller, stored_feed};
use yrd_e2e::{ANHUI, JIANGSU, SHANDONG, SHANGHAI, TestApp, ZHEJIANG, next_monday_morning};
use yrd_proto::v1::audit_service_client::AuditServiceClient;
use yrd_proto::v1::{self as pb, EventType};

yrd_e2e::on_both_stores!(one_product_found_by_three_agencies_becomes_one_case);

/// Publishes, as `agency`, the toy made in Shandong with model `model`, sold in the agency's
/// own province; answers the result.
async fn publish(
    app: &TestApp,
    agency: &str,
    seller_region: &str,
    model: &str,
) -> pb::SpotCheckResult {
    let mut result = non_conforming_toy("370102", seller_region, next_monday_morning());
    result.seller = Some(online_seller("某商贸有限公司", seller_region));
    if let Some(product) = result.product.as_mut() {
        product.model = model.into();
    }
    app.as_agency(agency)
        .await
        .results
        .publish_result(pb::PublishResultRequest {
            request_id: format!("{agency}-{model}"),
            result: Some(result),
        })
        .await
        .expect("published")
        .into_inner()
        .result
        .expect("the result")
}

/// The names of the cases `agency`'s feed was told of with `CASE_LINKED`.
async fn linked(app: &TestApp, agency: &str) -> Vec<pb::Case> {
    stored_feed(app, agency)
        .await
        .into_iter()
        .filter(|e| e.event_type == EventType::CaseLinked as i32)
        .filter_map(|e| match e.resource {
            Some(pb::feed_event::Resource::Case(c)) => Some(c),
            _ => None,
        })
        .collect()
}

async fn referral(app: &TestApp, agency: &str, name: &str) -> pb::Referral {
    app.as_agency(agency)
        .await
        .disposal
        .get_referral(pb::GetReferralRequest { name: name.into() })
        .await
        .expect("referral")
        .into_inner()
        .referral
        .expect("the referral")
}

async fn one_product_found_by_three_agencies_becomes_one_case(app: TestApp) {
    let sh = publish(&app, SHANGHAI, "310104", "XK-100").await;
    let js = publish(&app, JIANGSU, "320106", "xk100").await;
    let zj = publish(&app, ZHEJIANG, "330106", "ＸＫ－１００").await;
    let other = publish(&app, ANHUI, "340104", "XK-200").await;

    // One case, told to every agency of it: the three publishers and the handling agency.
    let told = linked(&app, ZHEJIANG).await;
    let case = told.last().expect("Zhejiang was told").clone();
    let results: Vec<&str> = case.results.iter().map(|r| r.result.as_str()).collect();
    for r in [&sh.name, &js.name, &zj.name] {
        assert!(results.contains(&r.as_str()), "{r} in {results:?}");
    }
    assert!(!results.contains(&other.name.as_str()));
    assert_eq!(case.model, "xk100");
    assert_eq!(case.handling_agency, format!("agencies/{SHANDONG}"));
    for agency in [SHANGHAI, JIANGSU, ZHEJIANG, SHANDONG] {
        let cases = linked(&app, agency).await;
        assert!(
            cases.iter().any(|c| c.name == case.name),
            "{agency} was told of {}",
            case.name
        );
    }
    assert!(linked(&app, ANHUI).await.is_empty(), "Anhui is in no case");

    // Each referral names the case; the other product's does not.
    let sh_referral = referral(&app, SHANDONG, &sh.referrals[0]).await;
    assert_eq!(sh_referral.r#case, case.name);
    assert_eq!(
        referral(&app, SHANDONG, &other.referrals[0]).await.r#case,
        ""
    );

    // The handling agency's step on Shanghai's referral reaches Jiangsu and Zhejiang too.
    app.as_agency(SHANDONG)
        .await
        .disposal
        .acknowledge_referral(pb::AcknowledgeReferralRequest {
            request_id: "ack-1".into(),
            name: sh_referral.name.clone(),
            note: String::new(),
        })
        .await
        .expect("acknowledged");
    for agency in [SHANGHAI, JIANGSU, ZHEJIANG] {
        let feed = stored_feed(&app, agency).await;
        assert!(
            feed.iter()
                .any(|e| e.event_type == EventType::ReferralUpdated as i32
                    && e.resource_name == sh_referral.name),
            "{agency} saw the acknowledgement"
        );
    }
    // The log ties the case together: the publication that formed it, the one that joined
    // it and the step on its referral all name it.
    let auditor = app.session(SHANGHAI, Profile::Auditor).await;
    let log = AuditServiceClient::new(auditor.authed());
    let (log_ref, case_ref) = (&log, &case.name);
    let entries = wait_for("the case's calls in the log", || async move {
        let page = log_ref
            .clone()
            .list_audit_entries(pb::ListAuditEntriesRequest {
                resource_name: case_ref.clone(),
                ..Default::default()
            })
            .await
            .expect("an auditor lists by resource")
            .into_inner();
        (page.entries.len() >= 3).then_some(page.entries)
    })
    .await;
    let methods: Vec<&str> = entries.iter().map(|e| e.method.as_str()).collect();
    for method in ["PublishResult", "AcknowledgeReferral"] {
        assert!(
            methods.iter().any(|m| m.ends_with(method)),
            "{method} in {methods:?}"
        );
    }
    assert!(
        !stored_feed(&app, ANHUI)
            .await
            .iter()
            .any(|e| e.resource_name == sh_referral.name),
        "Anhui is no party"
    );
}
