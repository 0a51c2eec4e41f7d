//! Cases (串案) end to end, on SQLite and PostgreSQL (docs/cases.md): three agencies publish
//! non-conforming results of one product, each spelling its model differently; one case forms,
//! every agency of it is told, each referral names it, and the handling agency's later step on
//! one agency's referral reaches the other two; a different product does not join.

mod audit_support;

use audit_support::wait_for;
use yrd_domain::Profile;
use yrd_e2e::fixtures::{non_conforming_toy, online_seller, stored_feed};
use yrd_e2e::{
    ANHUI, JIANGSU, SHANDONG, SHANGHAI, TestApp, ZHEJIANG, next_monday_morning, violated_fields,
};
use yrd_proto::v1::audit_service_client::AuditServiceClient;
use yrd_proto::v1::{self as pb, EventType};

yrd_e2e::on_both_stores!(
    one_product_found_by_three_agencies_becomes_one_case,
    case_service_reads_lists_and_unlinks
);

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

    // Every agency of the case is a reacting party of its referrals, as after a reaction:
    // Zhejiang, which joined last, lists Shanghai's and Jiangsu's referrals by the reacting
    // role, and Shanghai lists Zhejiang's, opened in the write that joined it. The handling
    // agency handles them; Anhui, in no case, reacts to none.
    let mut of_others: Vec<String> = [&sh, &js]
        .iter()
        .flat_map(|r| r.referrals.clone())
        .collect();
    of_others.sort();
    assert_eq!(reacting(&app, ZHEJIANG).await, of_others);
    assert_eq!(reacting(&app, SHANGHAI).await.len(), 2);
    assert!(reacting(&app, SHANGHAI).await.contains(&zj.referrals[0]));
    assert!(reacting(&app, SHANDONG).await.is_empty());
    assert!(reacting(&app, ANHUI).await.is_empty());

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
    let entries = case_log(&app, &case.name, "the case's calls in the log", |entries| {
        entries
            .iter()
            .any(|e| e.method.ends_with("AcknowledgeReferral"))
    })
    .await;
    let methods: Vec<&str> = entries.iter().map(|e| e.method.as_str()).collect();
    for method in ["PublishResult", "AcknowledgeReferral", "GetReferral"] {
        assert!(
            methods.iter().any(|m| m.ends_with(method)),
            "{method} in {methods:?}"
        );
    }
    // The first publication was made before the case existed and names Shanghai's result
    // alone; the query by the case finds it all the same, and a read of a result of the case
    // names the case. Calls about the other product are not in the case's story.
    app.as_agency(ANHUI)
        .await
        .results
        .get_result(pb::GetResultRequest {
            name: js.name.clone(),
        })
        .await
        .expect("read");
    let entries = case_log(&app, &case.name, "the whole story of the case", |entries| {
        entries.iter().any(|e| e.method.ends_with("GetResult"))
    })
    .await;
    let first = entries
        .iter()
        .find(|e| e.method.ends_with("PublishResult") && e.resource_names.contains(&sh.name))
        .expect("the first publication is in the case's story");
    assert!(!first.resource_names.contains(&case.name));
    let read = entries
        .iter()
        .find(|e| e.method.ends_with("GetResult"))
        .expect("the read");
    assert_eq!(read.resource_names, [js.name.clone(), case.name.clone()]);
    assert!(
        !entries
            .iter()
            .any(|e| e.resource_names.contains(&other.name)),
        "the other product's calls are not the case's"
    );
    assert!(
        !stored_feed(&app, ANHUI)
            .await
            .iter()
            .any(|e| e.resource_name == sh_referral.name),
        "Anhui is no party"
    );
}

/// The referrals `agency` lists by the reacting role (every page), sorted.
async fn reacting(app: &TestApp, agency: &str) -> Vec<String> {
    let client = app.as_agency(agency).await.disposal;
    let mut names: Vec<String> = yrd_client::list_all(
        "DisposalService.ListReferrals",
        pb::ListReferralsRequest {
            role: pb::ReferralRole::Reacting as i32,
            ..Default::default()
        },
        |r, token| r.page_token = token,
        |r| {
            let mut client = client.clone();
            async move {
                let page = client.list_referrals(r).await?.into_inner();
                Ok((page.referrals, page.next_page_token))
            }
        },
    )
    .await
    .expect("listed")
    .into_iter()
    .map(|r| r.name)
    .collect();
    names.sort();
    names
}

/// The exchange-log entries naming `case`, as an auditor lists them, once `enough` holds.
async fn case_log(
    app: &TestApp,
    case: &str,
    what: &str,
    enough: impl Fn(&[pb::AuditEntry]) -> bool,
) -> Vec<pb::AuditEntry> {
    let auditor = app.session(SHANGHAI, Profile::Auditor).await;
    let log = AuditServiceClient::new(auditor.authed());
    let enough = &enough;
    wait_for(what, || {
        let mut log = log.clone();
        async move {
            let page = log
                .list_audit_entries(pb::ListAuditEntriesRequest {
                    resource_name: case.to_owned(),
                    ..Default::default()
                })
                .await
                .expect("an auditor lists by resource")
                .into_inner();
            enough(&page.entries).then_some(page.entries)
        }
    })
    .await
}

/// Case `name` as `agency` reads it.
async fn get_case(app: &TestApp, agency: &str, name: &str) -> pb::Case {
    app.as_agency(agency)
        .await
        .cases
        .get_case(pb::GetCaseRequest { name: name.into() })
        .await
        .expect("got")
        .into_inner()
        .r#case
        .expect("the case")
}

/// The events of `event_type` in `agency`'s feed about `case`.
async fn told(app: &TestApp, agency: &str, event_type: EventType, case: &str) -> usize {
    stored_feed(app, agency)
        .await
        .iter()
        .filter(|e| e.event_type == event_type as i32 && e.resource_name == case)
        .count()
}

async fn list(app: &TestApp, agency: &str, request: pb::ListCasesRequest) -> pb::ListCasesResponse {
    app.as_agency(agency)
        .await
        .cases
        .list_cases(request)
        .await
        .expect("listed")
        .into_inner()
}

/// The fields Shanghai's refused `request` names.
async fn refused_list(app: &TestApp, request: pb::ListCasesRequest) -> Vec<String> {
    let status = app
        .as_agency(SHANGHAI)
        .await
        .cases
        .list_cases(request)
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    violated_fields(&status)
}

async fn unlink(
    app: &TestApp,
    agency: &str,
    request_id: &str,
    case: &str,
    result: &str,
    reason: &str,
) -> Result<pb::UnlinkResultResponse, tonic::Status> {
    app.as_agency(agency)
        .await
        .cases
        .unlink_result(pb::UnlinkResultRequest {
            request_id: request_id.into(),
            name: case.into(),
            result: result.into(),
            reason: reason.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn case_service_reads_lists_and_unlinks(app: TestApp) {
    let sh = publish(&app, SHANGHAI, "310104", "XK-100").await;
    publish(&app, JIANGSU, "320106", "xk100").await;
    let zj = publish(&app, ZHEJIANG, "330106", "ＸＫ－１００").await;
    // A second product, a second case, of Anhui and Jiangsu.
    publish(&app, ANHUI, "340104", "XK-200").await;
    publish(&app, JIANGSU, "320106", "XK 200").await;
    let case = linked(&app, ZHEJIANG).await.last().expect("a case").clone();

    // Any agency handling referrals reads a case, as it reads a referral.
    let got = get_case(&app, ANHUI, &case.name).await;
    assert_eq!(got.results.len(), 3);
    assert_eq!(got.state, pb::CaseState::Open as i32);
    let missing = app
        .as_agency(ANHUI)
        .await
        .cases
        .get_case(pb::GetCaseRequest {
            name: "cases/nope".into(),
        })
        .await
        .expect_err("no such case");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Filters: agency, producer, model (normalised), state.
    let names = |r: &pb::ListCasesResponse| -> Vec<String> {
        r.cases.iter().map(|c| c.name.clone()).collect()
    };
    let all = list(&app, SHANGHAI, pb::ListCasesRequest::default()).await;
    assert_eq!(all.cases.len(), 2, "{:?}", names(&all));
    let of_zhejiang = pb::ListCasesRequest {
        agency: format!("agencies/{ZHEJIANG}"),
        ..Default::default()
    };
    assert_eq!(
        names(&list(&app, SHANGHAI, of_zhejiang).await),
        [case.name.as_str()]
    );
    let of_jiangsu = pb::ListCasesRequest {
        agency: JIANGSU.into(),
        ..Default::default()
    };
    assert_eq!(list(&app, SHANGHAI, of_jiangsu).await.cases.len(), 2);
    let by_model = pb::ListCasesRequest {
        model: "xk 100".into(),
        producer_uscc: case.producer_uscc.clone(),
        ..Default::default()
    };
    assert_eq!(
        names(&list(&app, SHANGHAI, by_model).await),
        [case.name.as_str()]
    );
    let malformed = pb::ListCasesRequest {
        producer_uscc: "not-a-uscc".into(),
        ..Default::default()
    };
    assert_eq!(refused_list(&app, malformed).await, ["producer_uscc"]);
    let dissolved = pb::ListCasesRequest {
        state: pb::CaseState::Dissolved as i32,
        ..Default::default()
    };
    assert!(
        list(&app, SHANGHAI, dissolved.clone())
            .await
            .cases
            .is_empty()
    );

    // Keyset pages of one, newest first, then the end.
    let first = list(
        &app,
        SHANGHAI,
        pb::ListCasesRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(first.cases.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = list(
        &app,
        SHANGHAI,
        pb::ListCasesRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(second.cases.len(), 1);
    assert_ne!(second.cases[0].name, first.cases[0].name);
    assert_eq!(second.next_page_token, "");
    let bad_token = pb::ListCasesRequest {
        page_token: "zz".into(),
        ..Default::default()
    };
    assert_eq!(refused_list(&app, bad_token).await, ["page_token"]);

    // Unlinking needs a reason, named when blank.
    let blank = unlink(&app, ZHEJIANG, "u-0", &case.name, &zj.name, "  ")
        .await
        .expect_err("no reason");
    assert_eq!(blank.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&blank), ["reason"]);
    // Only an agency of the case unlinks: Anhui reads it but is not in it.
    let outsider = unlink(&app, ANHUI, "u-1", &case.name, &zj.name, "另一型号")
        .await
        .expect_err("not Anhui's case");
    assert_eq!(outsider.code(), tonic::Code::PermissionDenied);
    assert!(
        outsider.message().contains(&case.name),
        "{}",
        outsider.message()
    );

    // Zhejiang unlinks its own result: the case keeps two, every agency of it is told.
    let after = unlink(
        &app,
        ZHEJIANG,
        "u-2",
        &case.name,
        &zj.name,
        "批次不同，误匹配",
    )
    .await
    .expect("unlinked");
    assert!(after.receipt.is_some());
    let after = after.r#case.expect("the case after");
    assert_eq!(after.results.len(), 2);
    assert_eq!(after.state, pb::CaseState::Open as i32);
    assert_eq!(after.unlinks.len(), 1);
    assert_eq!(after.unlinks[0].result, zj.name);
    assert_eq!(after.unlinks[0].reason, "批次不同，误匹配");
    assert_eq!(after.unlinks[0].agency, format!("agencies/{ZHEJIANG}"));
    // A retry answers the first answer; the same id for another body is refused.
    let again = unlink(
        &app,
        ZHEJIANG,
        "u-2",
        &case.name,
        &zj.name,
        "批次不同，误匹配",
    )
    .await
    .expect("replayed")
    .r#case
    .expect("the case");
    assert_eq!(again, after);
    for agency in [SHANGHAI, JIANGSU, ZHEJIANG, SHANDONG] {
        assert_eq!(
            told(&app, agency, EventType::CaseUnlinked, &case.name).await,
            1,
            "{agency} was told of the unlink once"
        );
    }
    assert_eq!(
        told(&app, ANHUI, EventType::CaseUnlinked, &case.name).await,
        0
    );
    let stored = get_case(&app, SHANGHAI, &case.name).await;
    assert_eq!(stored.results, after.results);
    assert_eq!(stored.unlinks.len(), 1);
    // A result no longer in the case cannot be unlinked again.
    let gone = unlink(&app, SHANGHAI, "u-3", &case.name, &zj.name, "再次")
        .await
        .expect_err("not in the case any more");
    assert_eq!(gone.code(), tonic::Code::FailedPrecondition);

    // Unlinking one more leaves one result: the case is dissolved.
    let dissolved_case = unlink(
        &app,
        SHANGHAI,
        "u-4",
        &case.name,
        &sh.name,
        "型号相同而产品不同",
    )
    .await
    .expect("unlinked")
    .r#case
    .expect("the case");
    assert_eq!(dissolved_case.state, pb::CaseState::Dissolved as i32);
    assert!(dissolved_case.results.is_empty());
    assert_eq!(
        names(&list(&app, SHANGHAI, dissolved).await),
        [case.name.as_str()]
    );

    // The exchange log by `cases/{id}` includes the unlinks.
    let entries = case_log(&app, &case.name, "the unlinks in the log", |entries| {
        entries
            .iter()
            .filter(|e| e.method.ends_with("CaseService/UnlinkResult") && e.outcome_code == 0)
            .count()
            >= 2
    })
    .await;
    assert!(entries.iter().any(|e| e.method.ends_with("PublishResult")));
}
