//! SpotCheckService over real mTLS (issue 5): publishing, reading and searching results,
//! correcting and withdrawing them, idempotent retries, a table of invalid inputs, and other
//! agencies' attempts to change a result. Each scenario runs on SQLite and on PostgreSQL.

use tonic::Code;
use tonic_types::StatusExt as _;
use yrd_e2e::fixtures::{self, stored_feed, uscc};
use yrd_e2e::{JIANGSU, SHANDONG, SHANGHAI, TestApp, on_both_stores};
use yrd_proto::v1::spot_check_service_client::SpotCheckServiceClient;
use yrd_proto::v1::{
    self as pb, CorrectResultRequest, GetResultRequest, PublishResultRequest, SearchResultsRequest,
    WithdrawResultRequest,
};

on_both_stores!(
    a_result_is_published_read_searched_and_paged,
    corrections_and_withdrawal_keep_every_version_readable,
    a_retry_gets_the_first_answer_and_nothing_is_duplicated,
    each_invalid_input_is_refused_with_its_field_and_nothing_stored,
    only_the_publisher_may_correct_or_withdraw,
    subscribers_of_both_provinces_see_publish_correct_and_withdraw,
);

type Client = SpotCheckServiceClient<yrd_e2e::Authed>;

/// A non-conforming online purchase: a Shandong producer, a Jiangsu seller.
fn sample(product: &str) -> pb::SpotCheckResult {
    pb::SpotCheckResult {
        product: Some(pb::Product {
            name: product.into(),
            trademark: "/".into(),
            model: "XK-1".into(),
            production_date: "2024-03-01".into(),
            batch_number: "B1".into(),
            category: "儿童玩具".into(),
        }),
        producer: Some(pb::Party {
            name: "济南某玩具有限公司".into(),
            uscc: uscc("370102", 7),
            address: "山东省济南市历下区某路1号".into(),
            region_code: "370102".into(),
        }),
        seller: Some(fixtures::online_seller("南京某商贸有限公司", "320106")),
        sampling_way: pb::SamplingWay::OnlinePurchase as i32,
        sampling_date: "2024-05-10".into(),
        inspection_body: "上海市质量监督检验技术研究院".into(),
        report_number: "SQI-2024-00123".into(),
        report_date: "2024-06-01".into(),
        standards: vec!["GB 6675.1-2014".into()],
        test_items: vec![
            fixtures::failed_plasticiser(),
            pb::TestItem {
                name: "可触及的锐利边缘".into(),
                requirement: "无".into(),
                measured_value: "无".into(),
                unit: String::new(),
                verdict: pb::Verdict::Conforming as i32,
                is_safety_item: true,
            },
        ],
        verdict: pb::Verdict::NonConforming as i32,
        failed_items: vec!["增塑剂".into()],
        campaign: Some(pb::Campaign {
            code: "YRD-2024-01".into(),
            name: "2024年长三角儿童玩具联合抽查".into(),
            kind: pb::CampaignKind::Provincial as i32,
            product_kind: "儿童玩具".into(),
        }),
        attachments: vec![],
        ..Default::default()
    }
}

fn publish_request(request_id: &str, result: pb::SpotCheckResult) -> PublishResultRequest {
    PublishResultRequest {
        request_id: request_id.into(),
        result: Some(result),
    }
}

fn withdraw_request(request_id: &str, name: &str, reason: &str) -> WithdrawResultRequest {
    WithdrawResultRequest {
        request_id: request_id.into(),
        name: name.into(),
        reason: reason.into(),
    }
}

async fn publish(client: &mut Client, request_id: &str, product: &str) -> pb::SpotCheckResult {
    client
        .publish_result(publish_request(request_id, sample(product)))
        .await
        .expect("publish")
        .into_inner()
        .result
        .expect("result")
}

async fn search(client: &mut Client, request: SearchResultsRequest) -> pb::SearchResultsResponse {
    client
        .search_results(request)
        .await
        .expect("search")
        .into_inner()
}

async fn get(client: &mut Client, name: &str) -> Result<pb::SpotCheckResult, tonic::Status> {
    client
        .get_result(GetResultRequest { name: name.into() })
        .await
        .map(|r| r.into_inner().result.expect("result"))
}

/// Every event in `agency`'s feed, decoded.
async fn all_events(app: &TestApp, agency: &str) -> Vec<pb::FeedEvent> {
    stored_feed(app, agency).await
}

/// The result events in `agency`'s feed (the referrals a non-conforming result opens raise
/// their own events, which `disposal.rs` follows).
async fn feed(app: &TestApp, agency: &str) -> Vec<pb::FeedEvent> {
    all_events(app, agency)
        .await
        .into_iter()
        .filter(|e| !matches!(e.resource, Some(pb::feed_event::Resource::Referral(_))))
        .collect()
}

fn assert_receipt(receipt: Option<&pb::Receipt>) {
    let receipt = receipt.expect("a write answers with a receipt");
    assert_eq!(receipt.leaf_hash.len(), 32);
    assert!(!receipt.signature.is_empty());
    assert!(!receipt.key_id.is_empty());
}

async fn a_result_is_published_read_searched_and_paged(app: TestApp) {
    let mut shanghai = app.as_agency(SHANGHAI).await.results;
    let response = shanghai
        .publish_result(publish_request("pub-1", sample(" 儿童塑料玩具车 ")))
        .await
        .expect("publish")
        .into_inner();
    assert_receipt(response.receipt.as_ref());
    let published = response.result.expect("result");
    assert!(published.name.starts_with("results/"));
    assert_eq!(published.version, 1);
    assert_eq!(
        published.version_name,
        format!("{}/versions/1", published.name)
    );
    assert_eq!(published.state, pb::ResultState::Published as i32);
    assert_eq!(published.publisher_agency, format!("agencies/{SHANGHAI}"));
    assert!(published.safety_item_failed);
    assert_eq!(
        published.product.as_ref().map(|p| p.name.as_str()),
        Some("儿童塑料玩具车")
    );
    assert_eq!(
        published.product.as_ref().map(|p| p.trademark.as_str()),
        Some("")
    );

    // Every agency with the read role reads it, latest or by version.
    let mut shandong = app.as_agency(SHANDONG).await.results;
    assert_eq!(
        get(&mut shandong, &published.name).await.expect("get"),
        published
    );
    assert_eq!(
        get(&mut shandong, &published.version_name)
            .await
            .expect("get v1"),
        published
    );
    let missing = get(&mut shandong, "results/0190ffffffffffffffffffffffffffff").await;
    assert_eq!(missing.expect_err("missing").code(), Code::NotFound);
    let missing_version = get(&mut shandong, &format!("{}/versions/2", published.name)).await;
    assert_eq!(missing_version.expect_err("no v2").code(), Code::NotFound);

    // Routed to the producer's (Shandong) and the seller's (Jiangsu) province, both needing
    // disposal there; never to the publisher itself.
    for agency in [SHANDONG, JIANGSU] {
        let events = feed(&app, agency).await;
        assert_eq!(events.len(), 1, "{agency}");
        let event = &events[0];
        assert_eq!(event.event_type, pb::EventType::ResultPublished as i32);
        assert_eq!(event.resource_name, published.name);
        assert_eq!(event.resource_version, 1);
        assert!(event.needs_disposal);
        assert_eq!(event.actor_agency, format!("agencies/{SHANGHAI}"));
        assert_eq!(
            event.resource,
            Some(pb::feed_event::Resource::Result(published.clone()))
        );
    }
    assert!(all_events(&app, SHANGHAI).await.is_empty());
    // Each also got the referral opened to it in the publication's transaction.
    assert_eq!(response.opened_referrals.len(), 2);
    assert_eq!(published.referrals, response.opened_referrals);
    for agency in [SHANDONG, JIANGSU] {
        let referrals: Vec<pb::Referral> = all_events(&app, agency)
            .await
            .into_iter()
            .filter_map(|e| match e.resource {
                Some(pb::feed_event::Resource::Referral(r)) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(referrals.len(), 1, "{agency}");
        assert_eq!(referrals[0].handling_agency, format!("agencies/{agency}"));
        assert!(response.opened_referrals.contains(&referrals[0].name));
    }

    // Search by each kind of filter.
    let by = |f: fn(&mut SearchResultsRequest)| {
        let mut r = SearchResultsRequest::default();
        f(&mut r);
        r
    };
    for request in [
        by(|r| r.producer_uscc = uscc("370102", 7)),
        by(|r| r.seller_uscc = uscc("320106", 8)),
        by(|r| r.product_name_contains = "玩具车".into()),
        by(|r| r.region_code = "370000".into()),
        by(|r| r.verdict = pb::Verdict::NonConforming as i32),
        by(|r| r.campaign_code = "YRD-2024-01".into()),
        by(|r| r.publisher_agency = format!("agencies/{SHANGHAI}")),
        by(|r| {
            r.sampling_date = Some(pb::DateRange {
                start_date: "2024-05-01".into(),
                end_date: "2024-05-31".into(),
            })
        }),
    ] {
        let found = search(&mut shandong, request.clone()).await;
        assert_eq!(found.results, vec![published.clone()], "{request:?}");
    }
    for request in [
        by(|r| r.region_code = "330000".into()),
        by(|r| r.verdict = pb::Verdict::Conforming as i32),
        by(|r| r.state = pb::ResultState::Withdrawn as i32),
    ] {
        assert!(
            search(&mut shandong, request.clone())
                .await
                .results
                .is_empty(),
            "{request:?}"
        );
    }
    let bad = shandong
        .search_results(by(|r| r.region_code = "99".into()))
        .await
        .expect_err("bad region");
    assert_eq!(bad.code(), Code::InvalidArgument);

    // Pages of two, newest first, stable while new results arrive between pages.
    for n in 2..=6 {
        publish(&mut shanghai, &format!("pub-{n}"), &format!("玩具{n}")).await;
    }
    let everything = search(&mut shandong, SearchResultsRequest::default()).await;
    assert_eq!(everything.results.len(), 6);
    assert!(everything.next_page_token.is_empty());
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = search(
            &mut shandong,
            SearchResultsRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await;
        pages += 1;
        seen.extend(page.results.into_iter().map(|r| r.name));
        publish(&mut shanghai, &format!("late-{pages}"), "后来的玩具").await;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = everything.results.into_iter().map(|r| r.name).collect();
    assert_eq!(seen, expected);
    assert_eq!(seen.last(), Some(&published.name), "oldest last");
}

async fn corrections_and_withdrawal_keep_every_version_readable(app: TestApp) {
    let mut shanghai = app.as_agency(SHANGHAI).await.results;
    let v1 = publish(&mut shanghai, "c-1", "儿童滑板车").await;

    // The correction makes the result conforming.
    let mut content = sample("儿童滑板车");
    content.test_items[0].verdict = pb::Verdict::Conforming as i32;
    content.verdict = pb::Verdict::Conforming as i32;
    content.failed_items.clear();
    let correct = |request_id: &str, base_version: u32| CorrectResultRequest {
        request_id: request_id.into(),
        name: v1.name.clone(),
        result: Some(content.clone()),
        reason: "复检合格，更正检验结论".into(),
        base_version,
    };
    let response = shanghai
        .correct_result(correct("fix-1", 1))
        .await
        .expect("correct")
        .into_inner();
    assert_receipt(response.receipt.as_ref());
    let v2 = response.result.expect("result");
    assert_eq!((v2.version, v2.version_count), (2, 2));
    assert_eq!(v2.correction_reason, "复检合格，更正检验结论");
    assert_eq!(v2.create_time, v1.create_time);
    assert!(!v2.safety_item_failed);

    let mut shandong = app.as_agency(SHANDONG).await.results;
    assert_eq!(get(&mut shandong, &v1.name).await.expect("latest"), v2);
    let old = get(&mut shandong, &v1.version_name)
        .await
        .expect("v1 stays readable");
    assert_eq!(old.verdict, pb::Verdict::NonConforming as i32);
    assert_eq!((old.version, old.version_count), (1, 2));

    // A correction built on version 1 after version 2 exists is ABORTED.
    let stale = shanghai
        .correct_result(correct("fix-2", 1))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);

    let withdrawn = shanghai
        .withdraw_result(withdraw_request("wd-1", &v1.name, "样品信息登记错误"))
        .await
        .expect("withdraw")
        .into_inner();
    assert_receipt(withdrawn.receipt.as_ref());
    let withdrawn = withdrawn.result.expect("result");
    assert_eq!(withdrawn.state, pb::ResultState::Withdrawn as i32);
    assert_eq!(withdrawn.withdrawal_reason, "样品信息登记错误");
    assert!(withdrawn.withdraw_time.is_some());
    assert_eq!(
        get(&mut shandong, &v1.name).await.expect("still readable"),
        withdrawn
    );
    let found = search(
        &mut shandong,
        SearchResultsRequest {
            state: pb::ResultState::Withdrawn as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(found.results, vec![withdrawn.clone()]);

    let late = shanghai
        .correct_result(correct("fix-3", 0))
        .await
        .expect_err("withdrawn");
    assert_eq!(late.code(), Code::FailedPrecondition);
    let again = shanghai
        .withdraw_result(withdraw_request("wd-2", &v1.name, "再次撤回"))
        .await
        .expect_err("withdrawn twice");
    assert_eq!(again.code(), Code::FailedPrecondition);

    // Shandong's feed: published, corrected, withdrawn, each with the version it concerns.
    let kinds: Vec<(i32, u32)> = feed(&app, SHANDONG)
        .await
        .iter()
        .map(|e| (e.event_type, e.resource_version))
        .collect();
    assert_eq!(
        kinds,
        [
            (pb::EventType::ResultPublished as i32, 1),
            (pb::EventType::ResultCorrected as i32, 2),
            (pb::EventType::ResultWithdrawn as i32, 2),
        ]
    );
}

async fn a_retry_gets_the_first_answer_and_nothing_is_duplicated(app: TestApp) {
    let mut shanghai = app.as_agency(SHANGHAI).await.results;
    let first = shanghai
        .publish_result(publish_request("same-id", sample("儿童玩具车")))
        .await
        .expect("publish")
        .into_inner();
    // The retry spells the same content differently; it is the same request.
    let retry = shanghai
        .publish_result(publish_request("same-id", sample("  儿童玩具车  ")))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "the first answer, receipt included");

    let conflict = shanghai
        .publish_result(publish_request("same-id", sample("另一个产品")))
        .await
        .expect_err("another body");
    assert_eq!(conflict.code(), Code::AlreadyExists);

    let all = search(&mut shanghai, SearchResultsRequest::default()).await;
    assert_eq!(all.results.len(), 1);
    assert_eq!(feed(&app, SHANDONG).await.len(), 1);
    assert_eq!(feed(&app, JIANGSU).await.len(), 1);

    // Retried corrections and withdrawals too.
    let name = first.result.expect("result").name;
    let correct = CorrectResultRequest {
        request_id: "fix".into(),
        name: name.clone(),
        result: Some(sample("儿童玩具车（更正）")),
        reason: "产品名称更正".into(),
        base_version: 1,
    };
    let corrected = shanghai
        .correct_result(correct.clone())
        .await
        .expect("correct")
        .into_inner();
    let again = shanghai
        .correct_result(correct)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again, corrected);
    let withdraw = withdraw_request("wd", &name, "撤回");
    let withdrawn = shanghai
        .withdraw_result(withdraw.clone())
        .await
        .expect("withdraw")
        .into_inner();
    let again = shanghai
        .withdraw_result(withdraw)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again, withdrawn);
    let latest = get(&mut shanghai, &name).await.expect("get");
    assert_eq!(latest.version_count, 2);
    assert_eq!(feed(&app, SHANDONG).await.len(), 3);
}

type Mutation = fn(&mut PublishResultRequest);

fn result_of(r: &mut PublishResultRequest) -> &mut pb::SpotCheckResult {
    r.result.as_mut().expect("result")
}

#[rustfmt::skip]
const INVALID: &[(&str, Mutation, &str)] = &[
    ("no request id", |r| r.request_id.clear(), "request_id"),
    ("no result", |r| r.result = None, "result"),
    ("no product name", |r| result_of(r).product.as_mut().expect("p").name.clear(), "result.product.name"),
    ("production date in the future", |r| result_of(r).product.as_mut().expect("p").production_date = "2999-01-01".into(), "result.product.production_date"),
    ("producer USCC check character", |r| result_of(r).producer.as_mut().expect("p").uscc = "91350100M000100Y44".into(), "result.producer.uscc"),
    ("producer region unknown", |r| result_of(r).producer.as_mut().expect("p").region_code = "990000".into(), "result.producer.region_code"),
    ("seller USCC check character", |r| result_of(r).seller.as_mut().expect("s").uscc = "91330100799655058C".into(), "result.seller.uscc"),
    ("shop URL not http", |r| result_of(r).seller.as_mut().expect("s").shop_url = "ftp://shop.example.com/".into(), "result.seller.shop_url"),
    ("online purchase without platform", |r| result_of(r).seller.as_mut().expect("s").platform.clear(), "result.seller.platform"),
    ("sampling way unspecified", |r| result_of(r).sampling_way = 0, "result.sampling_way"),
    ("sampling date in the future", |r| result_of(r).sampling_date = "2999-01-01".into(), "result.sampling_date"),
    ("sampling after the report", |r| result_of(r).sampling_date = "2024-06-02".into(), "result.sampling_date"),
    ("report date not a date", |r| result_of(r).report_date = "2024/06/01".into(), "result.report_date"),
    ("no standard", |r| result_of(r).standards.clear(), "result.standards"),
    ("item verdict unspecified", |r| result_of(r).test_items[1].verdict = 0, "result.test_items[1].verdict"),
    ("overall verdict not judged", |r| result_of(r).verdict = pb::Verdict::NotJudged as i32, "result.verdict"),
    ("non-conforming without failed items", |r| result_of(r).failed_items.clear(), "result.failed_items"),
    ("failed item names a conforming item", |r| result_of(r).failed_items.push("可触及的锐利边缘".into()), "result.failed_items[1]"),
    ("campaign without code", |r| result_of(r).campaign.as_mut().expect("c").code.clear(), "result.campaign.code"),
    ("product name too long", |r| result_of(r).product.as_mut().expect("p").name = "玩".repeat(201), "result.product.name"),
];

async fn each_invalid_input_is_refused_with_its_field_and_nothing_stored(app: TestApp) {
    let mut shanghai = app.as_agency(SHANGHAI).await.results;
    let mut failures = Vec::new();
    for (n, (case, mutate, field)) in INVALID.iter().enumerate() {
        let mut request = publish_request(&format!("bad-{n}"), sample("儿童玩具车"));
        mutate(&mut request);
        failures.extend(fixtures::refused_for_field(
            case,
            field,
            shanghai.publish_result(request).await,
        ));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Several bad fields at once are all named.
    let mut request = publish_request("", sample("儿童玩具车"));
    result_of(&mut request)
        .product
        .as_mut()
        .expect("p")
        .name
        .clear();
    result_of(&mut request).standards.clear();
    let status = shanghai.publish_result(request).await.expect_err("bad");
    let fields: Vec<String> = status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["request_id", "result.product.name", "result.standards"]
    );

    // Nothing was stored: no result, no event.
    assert!(
        search(&mut shanghai, SearchResultsRequest::default())
            .await
            .results
            .is_empty()
    );
    for agency in [SHANDONG, JIANGSU] {
        assert!(feed(&app, agency).await.is_empty(), "{agency}");
    }
    // The valid request under a refused request id is accepted: a refusal claims nothing.
    publish(&mut shanghai, "bad-0", "儿童玩具车").await;
}

async fn only_the_publisher_may_correct_or_withdraw(app: TestApp) {
    let mut shanghai = app.as_agency(SHANGHAI).await.results;
    let published = publish(&mut shanghai, "mine", "儿童玩具车").await;
    let mut shandong = app.as_agency(SHANDONG).await.results;

    let correct = shandong
        .correct_result(CorrectResultRequest {
            request_id: "theirs-1".into(),
            name: published.name.clone(),
            result: Some(sample("改名")),
            reason: "不是我发布的".into(),
            base_version: 0,
        })
        .await
        .expect_err("not the publisher");
    assert_eq!(correct.code(), Code::PermissionDenied);
    let withdraw = shandong
        .withdraw_result(withdraw_request(
            "theirs-2",
            &published.name,
            "不是我发布的",
        ))
        .await
        .expect_err("not the publisher");
    assert_eq!(withdraw.code(), Code::PermissionDenied);
    let missing = shandong
        .withdraw_result(withdraw_request(
            "theirs-3",
            "results/0190ffffffffffffffffffffffffffff",
            "不存在",
        ))
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);

    // Unchanged: still version 1, published, and only the publication event in the feeds.
    assert_eq!(
        get(&mut shandong, &published.name).await.expect("get"),
        published
    );
    assert_eq!(feed(&app, JIANGSU).await.len(), 1);
}

/// The next event of a feed stream that is not about a referral: referral events (the
/// disposal the result opened) are disposal.rs's to follow.
async fn next_event(stream: &mut tonic::Streaming<pb::SubscribeResponse>) -> pb::FeedEvent {
    fixtures::next_event_where(stream, std::time::Duration::from_secs(10), |event| {
        !matches!(event.resource, Some(pb::feed_event::Resource::Referral(_)))
    })
    .await
}

/// Publish → the producer's (Shandong) and the seller's (Jiangsu) subscribers, connected
/// before, receive the full result live; the correction and the withdrawal reach them too, in
/// order; the publisher's own feed stays empty.
async fn subscribers_of_both_provinces_see_publish_correct_and_withdraw(app: TestApp) {
    let mut streams = Vec::new();
    for agency in [SHANDONG, JIANGSU] {
        streams.push((agency, app.subscribe(agency, None).await));
    }
    let mut shanghai = app.as_agency(SHANGHAI).await.results;
    let published = publish(&mut shanghai, "live-1", "儿童电动车").await;
    let mut content = sample("儿童电动车");
    content.test_items[0].verdict = pb::Verdict::Conforming as i32;
    content.verdict = pb::Verdict::Conforming as i32;
    content.failed_items.clear();
    shanghai
        .correct_result(CorrectResultRequest {
            request_id: "live-2".into(),
            name: published.name.clone(),
            result: Some(content),
            reason: "复检合格".into(),
            base_version: 1,
        })
        .await
        .expect("correct");
    shanghai
        .withdraw_result(withdraw_request("live-3", &published.name, "登记错误"))
        .await
        .expect("withdraw");

    for (agency, stream) in &mut streams {
        let first = next_event(stream).await;
        assert_eq!(
            first.event_type(),
            pb::EventType::ResultPublished,
            "{agency}"
        );
        assert_eq!(first.resource_name, published.name, "{agency}");
        let Some(pb::feed_event::Resource::Result(result)) = &first.resource else {
            panic!("{agency}: the event carries the full result");
        };
        assert_eq!(result, &published, "{agency}: the result as published");
        let second = next_event(stream).await;
        assert_eq!(
            second.event_type(),
            pb::EventType::ResultCorrected,
            "{agency}"
        );
        assert_eq!(second.resource_version, 2, "{agency}");
        let third = next_event(stream).await;
        assert_eq!(
            third.event_type(),
            pb::EventType::ResultWithdrawn,
            "{agency}"
        );
        assert!(
            first.cursor < second.cursor && second.cursor < third.cursor,
            "{agency}: in order"
        );
    }
    let position = app
        .as_agency(SHANGHAI)
        .await
        .feed
        .get_feed_position(pb::GetFeedPositionRequest::default())
        .await
        .expect("position")
        .into_inner();
    assert_eq!(
        position.latest_cursor, 0,
        "the publisher never gets its own event"
    );
}
