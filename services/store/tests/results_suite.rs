//! The results store on both backends: idempotent writes (same body → the first answer,
//! another body → refused, nothing duplicated), versions and their refusals, withdrawal, and
//! search pages that stay stable while new results arrive.

use time::{Date, Duration, OffsetDateTime};
use yrd_domain::spotcheck::{SpotCheckResult, Verdict};
use yrd_domain::uscc::Uscc;
use yrd_store::{
    IdempotencyKey, NewCorrection, NewFeedEvent, NewPublication, NewWithdrawal, ResultCursor,
    ResultFilter, ResultState, ResultWriteError, Store, WriteOutcome,
};

mod common;

use common::{JS, SD, SH, agency, feed, t0, uscc};

yrd_store::on_both_backends!(
    a_retry_returns_the_first_answer_and_writes_nothing,
    corrections_add_versions_and_keep_the_old_ones,
    refusals_name_what_no_longer_holds,
    withdrawal_keeps_the_result_readable,
    pages_stay_stable_while_results_arrive,
    filters_use_every_search_column,
);

fn today() -> Date {
    time::macros::date!(2024 - 06 - 30)
}

/// A valid result: product `name`, producer in `producer_region`, seller in `seller_region`.
fn result(
    name: &str,
    producer_region: &str,
    seller_region: &str,
    verdict: Verdict,
) -> SpotCheckResult {
    common::result(name, producer_region, seller_region, verdict, today())
}

fn key(request_id: &str, digest: &str) -> IdempotencyKey {
    common::key(
        "/yrd.exchange.v1.SpotCheckService/PublishResult",
        request_id,
        digest,
    )
}

fn event(to: &str, id: &str, n: u32) -> NewFeedEvent {
    common::published_event(to, format!("{id}-{to}-{n}"), id, t0())
}

async fn publish(store: &Store, id: &str, r: &SpotCheckResult, at: OffsetDateTime) -> WriteOutcome {
    store
        .publish_result(&NewPublication {
            cases: Default::default(),
            key: key(&format!("req-{id}"), &format!("digest-{id}")),
            id: id.into(),
            publisher: agency(SH),
            result: r,
            body: format!("body of {id} v1").into_bytes(),
            at,
            events: vec![],
            referrals: vec![],
            leaf: None,
            response: format!("answer {id}").into_bytes(),
        })
        .await
        .expect("publish")
}

/// The ids of the first page (10) of results `filter` finds.
async fn found_ids(store: Store, filter: ResultFilter) -> Vec<String> {
    store
        .search_results(&filter, None, 10)
        .await
        .expect("search")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

async fn a_retry_returns_the_first_answer_and_writes_nothing(store: Store) {
    let r = result("儿童塑料玩具车", "370102", "320106", Verdict::NonConforming);
    let first = NewPublication {
        cases: Default::default(),
        key: key("req-1", "digest-a"),
        id: "a1".into(),
        publisher: agency(SH),
        result: &r,
        body: b"v1".to_vec(),
        at: t0(),
        events: vec![event(SD, "a1", 1), event(JS, "a1", 1)],
        referrals: vec![],
        leaf: None,
        response: b"first answer".to_vec(),
    };
    let outcome = store.publish_result(&first).await.expect("publish");
    assert!(
        matches!(&outcome, WriteOutcome::Written(a) if a.len() == 2),
        "{outcome:?}"
    );

    // Same request id and digest: the first answer, and nothing new is written (another id
    // and other events would have been).
    let retry = NewPublication {
        cases: Default::default(),
        id: "a2".into(),
        events: vec![event(SD, "a2", 1)],
        response: b"second answer".to_vec(),
        ..first.clone()
    };
    assert_eq!(
        store.publish_result(&retry).await.expect("retry"),
        WriteOutcome::Replayed(b"first answer".to_vec())
    );
    assert_eq!(
        store.answered_request(&first.key).await.expect("lookup"),
        Some(b"first answer".to_vec())
    );
    assert!(store.get_result("a2", None).await.expect("get").is_none());
    assert_eq!(feed(&store, SD).await.len(), 1);

    // Same request id, another body: refused, nothing written.
    let conflict = NewPublication {
        cases: Default::default(),
        key: key("req-1", "digest-b"),
        ..retry.clone()
    };
    match store.publish_result(&conflict).await {
        Err(ResultWriteError::RequestIdReused { request_id }) => assert_eq!(request_id, "req-1"),
        other => panic!("expected RequestIdReused, got {other:?}"),
    }
    assert!(matches!(
        store.answered_request(&conflict.key).await,
        Err(yrd_store::StoreError::RequestIdReused { .. })
    ));
    let all = store
        .search_results(&ResultFilter::default(), None, 10)
        .await
        .expect("search");
    assert_eq!(all.len(), 1);
    assert_eq!(feed(&store, SD).await.len(), 1);

    // The same request id from another agency is another request.
    let other_agency = NewPublication {
        cases: Default::default(),
        key: IdempotencyKey {
            agency: agency(JS),
            ..key("req-1", "digest-b")
        },
        publisher: agency(JS),
        events: vec![],
        ..retry
    };
    assert!(matches!(
        store.publish_result(&other_agency).await.expect("publish"),
        WriteOutcome::Written(_)
    ));
}

fn correction<'a>(
    id: &str,
    base: u32,
    r: &'a SpotCheckResult,
    request_id: &str,
) -> NewCorrection<'a> {
    NewCorrection {
        cases: Default::default(),
        key: IdempotencyKey {
            method: "/yrd.exchange.v1.SpotCheckService/CorrectResult".into(),
            ..key(request_id, request_id)
        },
        id: id.into(),
        publisher: agency(SH),
        base_version: base,
        result: r,
        body: format!("body v{}", base + 1).into_bytes(),
        reason: format!("correction {}", base + 1),
        at: t0() + Duration::minutes(i64::from(base)),
        events: vec![event(SD, request_id, base)],
        referrals: vec![],
        leaf: None,
        response: format!("corrected to {}", base + 1).into_bytes(),
    }
}

async fn corrections_add_versions_and_keep_the_old_ones(store: Store) {
    let r = result("儿童塑料玩具车", "370102", "320106", Verdict::NonConforming);
    publish(&store, "c1", &r, t0()).await;
    // The correction moves the producer to Zhejiang and makes the result conforming.
    let corrected = result("儿童电动玩具车", "330106", "320106", Verdict::Conforming);
    let outcome = store
        .correct_result(&correction("c1", 1, &corrected, "fix-1"))
        .await
        .expect("correct");
    assert!(matches!(outcome, WriteOutcome::Written(_)));

    let latest = store
        .get_result("c1", None)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((latest.version, latest.latest_version), (2, 2));
    assert_eq!(latest.body, b"body v2");
    assert_eq!(latest.correction_reason.as_deref(), Some("correction 2"));
    assert_eq!(latest.created_at, t0(), "publication time stays");
    assert_eq!(latest.version_created_at, t0() + Duration::minutes(1));
    let v1 = store
        .get_result("c1", Some(1))
        .await
        .expect("get")
        .expect("v1 stays");
    assert_eq!((v1.version, v1.latest_version), (1, 2));
    assert_eq!(v1.body, b"body of c1 v1");
    assert_eq!(v1.correction_reason, None);
    assert!(
        store
            .get_result("c1", Some(3))
            .await
            .expect("get")
            .is_none()
    );

    // Search sees the latest version's columns only.
    let search = |filter: ResultFilter| found_ids(store.clone(), filter);
    let region = |code: &str| ResultFilter {
        region: Some(yrd_domain::RegionCode::parse(code).expect("region")),
        ..Default::default()
    };
    assert_eq!(search(region("330000")).await, ["c1"]);
    assert!(search(region("370000")).await.is_empty());
    let name = |text: &str| ResultFilter {
        product_name_contains: Some(text.into()),
        ..Default::default()
    };
    assert_eq!(search(name("电动")).await, ["c1"]);
    assert!(search(name("塑料")).await.is_empty());
    assert!(
        search(ResultFilter {
            verdict: Some(Verdict::NonConforming),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // A retried correction answers again without a third version.
    assert_eq!(
        store
            .correct_result(&correction("c1", 1, &corrected, "fix-1"))
            .await
            .expect("retry"),
        WriteOutcome::Replayed(b"corrected to 2".to_vec())
    );
    let latest = store
        .get_result("c1", None)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(latest.latest_version, 2);
}

async fn refusals_name_what_no_longer_holds(store: Store) {
    let r = result("学生文具", "370102", "320106", Verdict::NonConforming);
    publish(&store, "d1", &r, t0()).await;

    let stale = store
        .correct_result(&correction("d1", 5, &r, "stale"))
        .await;
    assert!(
        matches!(
            stale,
            Err(ResultWriteError::Stale {
                expected: 5,
                latest: 1,
                ..
            })
        ),
        "{stale:?}"
    );
    let missing = store
        .correct_result(&correction("nope", 1, &r, "missing"))
        .await;
    assert!(
        matches!(missing, Err(ResultWriteError::NotFound(_))),
        "{missing:?}"
    );
    let mut foreign = correction("d1", 1, &r, "foreign");
    foreign.publisher = agency(SD);
    foreign.key.agency = agency(SD);
    let foreign = store.correct_result(&foreign).await;
    assert!(
        matches!(&foreign, Err(ResultWriteError::NotPublisher { publisher, .. }) if publisher.as_str() == SH),
        "{foreign:?}"
    );
    // A refused write leaves nothing: no version, no event, and its request id unclaimed.
    let latest = store
        .get_result("d1", None)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(latest.latest_version, 1);
    assert!(feed(&store, SD).await.is_empty());
    assert_eq!(
        store
            .answered_request(&correction("d1", 5, &r, "stale").key)
            .await
            .expect("lookup"),
        None
    );

    store
        .withdraw_result(&withdrawal("d1", 1, "w1"))
        .await
        .expect("withdraw");
    let after = store.correct_result(&correction("d1", 1, &r, "late")).await;
    assert!(
        matches!(after, Err(ResultWriteError::Withdrawn(_))),
        "{after:?}"
    );
    let again = store.withdraw_result(&withdrawal("d1", 1, "w2")).await;
    assert!(
        matches!(again, Err(ResultWriteError::Withdrawn(_))),
        "{again:?}"
    );
}

fn withdrawal(id: &str, version: u32, request_id: &str) -> NewWithdrawal {
    NewWithdrawal {
        cases: Default::default(),
        key: IdempotencyKey {
            method: "/yrd.exchange.v1.SpotCheckService/WithdrawResult".into(),
            ..key(request_id, request_id)
        },
        id: id.into(),
        publisher: agency(SH),
        version,
        reason: "检验报告有误".into(),
        at: t0() + Duration::hours(1),
        events: vec![event(SD, request_id, 9)],
        leaf: None,
        response: b"withdrawn".to_vec(),
    }
}

async fn withdrawal_keeps_the_result_readable(store: Store) {
    let r = result("儿童滑板车", "370102", "320106", Verdict::NonConforming);
    publish(&store, "w1", &r, t0()).await;
    let outcome = store
        .withdraw_result(&withdrawal("w1", 1, "wd"))
        .await
        .expect("withdraw");
    assert!(matches!(outcome, WriteOutcome::Written(ref a) if a.len() == 1));
    let got = store
        .get_result("w1", None)
        .await
        .expect("get")
        .expect("readable");
    assert_eq!(got.state, ResultState::Withdrawn);
    assert_eq!(got.withdrawal_reason.as_deref(), Some("检验报告有误"));
    assert_eq!(got.withdrawn_at, Some(t0() + Duration::hours(1)));
    assert_eq!(got.body, b"body of w1 v1");
    assert_eq!(
        store
            .withdraw_result(&withdrawal("w1", 1, "wd"))
            .await
            .expect("retry"),
        WriteOutcome::Replayed(b"withdrawn".to_vec())
    );
    let withdrawn = ResultFilter {
        state: Some(ResultState::Withdrawn),
        ..Default::default()
    };
    assert_eq!(
        store
            .search_results(&withdrawn, None, 10)
            .await
            .expect("search")
            .len(),
        1
    );
    let published = ResultFilter {
        state: Some(ResultState::Published),
        ..Default::default()
    };
    assert!(
        store
            .search_results(&published, None, 10)
            .await
            .expect("search")
            .is_empty()
    );
}

async fn pages_stay_stable_while_results_arrive(store: Store) {
    let r = result("儿童玩具", "370102", "320106", Verdict::NonConforming);
    // 25 results; four share one publication time, so the id breaks ties.
    for n in 0..25u32 {
        let at = t0() + Duration::seconds(i64::from(n.min(21)));
        publish(&store, &format!("p{n:02}"), &r, at).await;
    }
    let filter = ResultFilter {
        region: Some(yrd_domain::RegionCode::parse("370000").expect("region")),
        ..Default::default()
    };
    for filter in [ResultFilter::default(), filter] {
        // What the filter matches before the paging starts, newest first.
        let expected: Vec<String> = store
            .search_results(&filter, None, 1000)
            .await
            .expect("search")
            .into_iter()
            .map(|r| r.id)
            .collect();
        if filter == ResultFilter::default() {
            // Newest first; the four published at the same instant in id order, descending.
            let order: Vec<String> = (0..25u32).rev().map(|n| format!("p{n:02}")).collect();
            assert_eq!(expected, order);
        }
        let mut seen: Vec<String> = Vec::new();
        let mut after: Option<ResultCursor> = None;
        let mut extra = 0;
        loop {
            let page = store
                .search_results(&filter, after.as_ref(), 7)
                .await
                .expect("search");
            if page.is_empty() {
                break;
            }
            seen.extend(page.iter().map(|r| r.id.clone()));
            after = page.last().map(|r| r.cursor());
            // Newer results arrive between pages; they must not shift the pages.
            publish(
                &store,
                &format!("new{}-{extra}", seen.len()),
                &r,
                t0() + Duration::hours(1),
            )
            .await;
            extra += 1;
        }
        assert_eq!(seen, expected);
        assert!(extra > 3, "results arrived between pages");
    }
}

async fn filters_use_every_search_column(store: Store) {
    let a = result("儿童玩具车", "370102", "320106", Verdict::NonConforming);
    let b = result("学生书包", "330106", "310104", Verdict::Conforming);
    publish(&store, "fa", &a, t0()).await;
    publish(&store, "fb", &b, t0() + Duration::seconds(1)).await;
    let ids = |filter: ResultFilter| found_ids(store.clone(), filter);
    let parse_uscc = |s: String| Uscc::parse(&s).expect("uscc");
    let cases: Vec<(&str, ResultFilter, Vec<&str>)> = vec![
        (
            "everything, newest first",
            ResultFilter::default(),
            vec!["fb", "fa"],
        ),
        (
            "producer uscc",
            ResultFilter {
                producer_uscc: Some(parse_uscc(uscc("370102", 1))),
                ..Default::default()
            },
            vec!["fa"],
        ),
        (
            "seller uscc",
            ResultFilter {
                seller_uscc: Some(parse_uscc(uscc("310104", 2))),
                ..Default::default()
            },
            vec!["fb"],
        ),
        (
            "name, case and one character",
            ResultFilter {
                product_name_contains: Some("书".into()),
                ..Default::default()
            },
            vec!["fb"],
        ),
        (
            "name wildcard is literal",
            ResultFilter {
                product_name_contains: Some("玩%".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            "platform",
            ResultFilter {
                platform: Some("淘宝".into()),
                ..Default::default()
            },
            vec!["fb", "fa"],
        ),
        (
            "platform exact",
            ResultFilter {
                platform: Some("淘".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            "seller province",
            ResultFilter {
                region: Some(yrd_domain::RegionCode::parse("310000").expect("r")),
                ..Default::default()
            },
            vec!["fb"],
        ),
        (
            "producer city",
            ResultFilter {
                region: Some(yrd_domain::RegionCode::parse("370100").expect("r")),
                ..Default::default()
            },
            vec!["fa"],
        ),
        (
            "province + verdict",
            ResultFilter {
                region: Some(yrd_domain::RegionCode::parse("330000").expect("r")),
                verdict: Some(Verdict::NonConforming),
                ..Default::default()
            },
            vec![],
        ),
        (
            "verdict",
            ResultFilter {
                verdict: Some(Verdict::Conforming),
                ..Default::default()
            },
            vec!["fb"],
        ),
        (
            "campaign",
            ResultFilter {
                campaign_code: Some("YRD-2024-01".into()),
                ..Default::default()
            },
            vec!["fb", "fa"],
        ),
        (
            "campaign kind",
            ResultFilter {
                campaign_kind: Some(yrd_domain::spotcheck::CampaignKind::National),
                ..Default::default()
            },
            vec![],
        ),
        (
            "sampling range",
            ResultFilter {
                sampled_from: Some(time::macros::date!(2024 - 05 - 01)),
                sampled_to: Some(time::macros::date!(2024 - 05 - 01)),
                ..Default::default()
            },
            vec!["fb", "fa"],
        ),
        (
            "sampling range before",
            ResultFilter {
                sampled_to: Some(time::macros::date!(2024 - 04 - 30)),
                ..Default::default()
            },
            vec![],
        ),
        (
            "publisher",
            ResultFilter {
                publisher: Some(agency(SD)),
                ..Default::default()
            },
            vec![],
        ),
    ];
    let mut failures = Vec::new();
    for (case, filter, expected) in cases {
        let got = ids(filter).await;
        if got != expected {
            failures.push(format!("{case}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
