//! The referrals store on both backends: a referral written with its result in one
//! transaction, the one-open-referral-per-result-and-agency index, revision-conditional
//! changes (the loser of a race writes nothing, its events included), due deadlines by index,
//! and lists by party and filter.

use time::{Date, Duration, OffsetDateTime};
use yrd_domain::referral::{
    Actor, Outcome, Referral, ReferralCommand, ReferralRules, Remark, apply,
};
use yrd_domain::spotcheck::{SpotCheckResult, Verdict};
use yrd_store::{
    IdempotencyKey, NewFeedEvent, NewPublication, NewReferral, ReferralChange, ReferralFilter,
    ReferralParty, ReferralWriteError, Store, WriteOutcome,
};

mod common;

use common::{JS, SD, SH, agency, uscc};

yrd_store::on_both_backends!(
    a_referral_commits_with_its_result_and_only_one_is_open_per_agency,
    a_change_applies_only_at_the_revision_it_was_decided_on,
    due_referrals_and_lists,
);

/// Monday 3 June 2024, 10:00 in Beijing.
fn t0() -> OffsetDateTime {
    time::macros::datetime!(2024-06-03 10:00 +8)
}

fn today() -> Date {
    time::macros::date!(2024 - 06 - 03)
}

/// A non-conforming result of product `name`: a Shandong producer, a Jiangsu seller, outside
/// any campaign.
fn result(name: &str) -> SpotCheckResult {
    let mut input = common::result_input(name, "370102", "320106", Verdict::NonConforming);
    if let Some(seller) = input.seller.as_mut() {
        seller.platform = "某平台".into();
    }
    input.campaign = None;
    SpotCheckResult::parse(input, today()).expect("valid result")
}

fn key(request_id: &str) -> IdempotencyKey {
    common::key(
        "/yrd.exchange.v1.DisposalService/Test",
        request_id,
        request_id,
    )
}

fn event(to: &str, tag: &str) -> NewFeedEvent {
    NewFeedEvent {
        recipient: agency(to),
        event_id: tag.into(),
        event_type: "EVENT_TYPE_REFERRAL_OPENED".into(),
        resource_name: format!("referrals/{tag}"),
        resource_version: 1,
        event_time: t0(),
        actor_agency: SH.into(),
        trace_id: String::new(),
        needs_disposal: false,
        payload: tag.as_bytes().to_vec(),
    }
}

/// A referral of `result_id` to `to`, opened at `at`.
fn referral(id: &str, result_id: &str, to: &str, at: OffsetDateTime) -> NewReferral {
    let opened =
        Referral::open(agency(SH), agency(to), at, &ReferralRules::default()).expect("open");
    NewReferral {
        id: id.into(),
        result_id: result_id.into(),
        result_version: 1,
        product_name: "儿童玩具车".into(),
        producer_uscc: uscc("370102", 1),
        machine: opened.new_state,
        body: format!("body of {id}").into_bytes(),
        at,
        events: vec![event(to, id)],
    }
}

/// Publishes result `id` (opening `referrals` with it).
async fn publish(store: &Store, id: &str, referrals: Vec<NewReferral>) -> WriteOutcome {
    let r = result("儿童玩具车");
    store
        .publish_result(&NewPublication {
            cases: Default::default(),
            key: IdempotencyKey {
                method: "/yrd.exchange.v1.SpotCheckService/PublishResult".into(),
                ..key(&format!("pub-{id}"))
            },
            id: id.into(),
            publisher: agency(SH),
            result: &r,
            body: b"result".to_vec(),
            at: t0(),
            events: vec![],
            referrals,
            leaf: None,
            response: b"published".to_vec(),
        })
        .await
        .expect("publish")
}

async fn feed_len(store: &Store, to: &str) -> usize {
    common::feed(store, to).await.len()
}

fn change(
    id: &str,
    stored: &yrd_store::StoredReferral,
    command: ReferralCommand,
    actor: &str,
    tag: &str,
) -> ReferralChange {
    let t = apply(
        &stored.machine,
        &command,
        &Actor::Agency(agency(actor)),
        t0(),
        &ReferralRules::default(),
    )
    .expect("accepted");
    ReferralChange {
        key: Some(key(tag)),
        id: id.into(),
        expected_revision: stored.revision,
        machine: t.new_state,
        body: format!("body after {tag}").into_bytes(),
        at: t0(),
        reactor: None,
        events: vec![event(SH, tag)],
        leaf: None,
        response: tag.as_bytes().to_vec(),
    }
}

async fn a_referral_commits_with_its_result_and_only_one_is_open_per_agency(store: Store) {
    let outcome = publish(&store, "r1", vec![referral("f1", "r1", SD, t0())]).await;
    assert!(matches!(outcome, WriteOutcome::Written(ref a) if a.len() == 1));
    let stored = store
        .get_referral("f1")
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.result_id, "r1");
    assert_eq!(stored.revision, 1);
    assert_eq!(stored.body, b"body of f1");
    assert_eq!(feed_len(&store, SD).await, 1);

    // A second open referral of r1 to Shandong is refused by the index; nothing is written.
    let again = store
        .create_referral(&key("c-1"), &referral("f2", "r1", SD, t0()), None, b"x")
        .await;
    assert!(
        matches!(again, Err(ReferralWriteError::AlreadyOpen { ref handling_agency, .. }) if *handling_agency == agency(SD)),
        "{again:?}"
    );
    assert!(store.get_referral("f2").await.expect("get").is_none());
    assert_eq!(feed_len(&store, SD).await, 1);
    assert_eq!(
        store.answered_request(&key("c-1")).await.expect("lookup"),
        None
    );
    // To another agency it is fine.
    store
        .create_referral(&key("c-2"), &referral("f3", "r1", JS, t0()), None, b"y")
        .await
        .expect("to Jiangsu");

    // Once the first is closed, another may be opened to Shandong.
    let mut stored = store.get_referral("f1").await.expect("get").expect("f1");
    for (n, command) in [
        ReferralCommand::Acknowledge,
        ReferralCommand::StartHandling,
        ReferralCommand::Close {
            outcome: Outcome::NoViolationFound,
            summary: Remark::parse("summary", "nothing found").expect("text"),
        },
    ]
    .into_iter()
    .enumerate()
    {
        let tag = format!("step-{n}");
        store
            .change_referral(&ReferralChange {
                key: Some(IdempotencyKey {
                    agency: agency(SD),
                    ..key(&tag)
                }),
                ..change("f1", &stored, command, SD, &tag)
            })
            .await
            .expect("step");
        stored = store.get_referral("f1").await.expect("get").expect("f1");
    }
    assert_eq!(
        store
            .referrals_of_result("r1")
            .await
            .expect("of result")
            .iter()
            .map(|r| (r.id.as_str(), r.open))
            .collect::<Vec<_>>(),
        [("f1", false), ("f3", true)]
    );
    store
        .create_referral(&key("c-3"), &referral("f4", "r1", SD, t0()), None, b"z")
        .await
        .expect("a new one after closure");
}

async fn a_change_applies_only_at_the_revision_it_was_decided_on(store: Store) {
    publish(&store, "r1", vec![referral("f1", "r1", SD, t0())]).await;
    let stored = store.get_referral("f1").await.expect("get").expect("f1");
    let ack = change("f1", &stored, ReferralCommand::Acknowledge, SD, "ack");
    // A second writer decided on the same revision: the first commits, the second is a
    // conflict and writes nothing (no event, no idempotency claim).
    let ret = change(
        "f1",
        &stored,
        ReferralCommand::Return {
            reason: Remark::parse("reason", "not ours").expect("text"),
            suggested_agency: None,
        },
        SD,
        "ret",
    );
    assert!(matches!(
        store.change_referral(&ack).await,
        Ok(WriteOutcome::Written(_))
    ));
    let before = feed_len(&store, SH).await;
    assert!(matches!(
        store.change_referral(&ret).await,
        Err(ReferralWriteError::Conflict(_))
    ));
    assert_eq!(feed_len(&store, SH).await, before);
    assert_eq!(
        store.answered_request(&key("ret")).await.expect("lookup"),
        None
    );
    let now = store.get_referral("f1").await.expect("get").expect("f1");
    assert_eq!(now.revision, 2);
    assert_eq!(now.body, b"body after ack");
    // The same request again is answered from the first write.
    assert_eq!(
        store.change_referral(&ack).await.expect("retry"),
        WriteOutcome::Replayed(b"ack".to_vec())
    );
    // An unknown referral is NotFound.
    let missing = ReferralChange {
        key: Some(key("ghost")),
        id: "ghost".into(),
        ..ack
    };
    assert!(matches!(
        store.change_referral(&missing).await,
        Err(ReferralWriteError::NotFound(_))
    ));
}

async fn due_referrals_and_lists(store: Store) {
    publish(
        &store,
        "r1",
        vec![
            referral("f1", "r1", SD, t0()),
            referral("f2", "r1", JS, t0() + Duration::days(7)),
        ],
    )
    .await;
    // Opened Monday 3 June: acknowledgement due Wednesday 5 June, passed from Thursday 00:00.
    let thursday = time::macros::datetime!(2024-06-06 00:00 +8);
    assert!(
        store
            .due_referrals(thursday - Duration::seconds(1), 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        store.due_referrals(thursday, 10).await.expect("due"),
        ["f1"]
    );
    assert_eq!(
        store
            .due_referrals(thursday + Duration::days(30), 10)
            .await
            .expect("due"),
        ["f1", "f2"]
    );

    let list = |agency_id: &str, party| ReferralFilter {
        agency: agency(agency_id),
        party,
        state: None,
        overdue: None,
        announcement_required: None,
        product_name_contains: None,
        producer_uscc: None,
    };
    let ids = |rows: Vec<yrd_store::StoredReferral>| -> Vec<String> {
        rows.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(
        ids(store
            .list_referrals(&list(SH, ReferralParty::Sampling), None, 10)
            .await
            .expect("list")),
        ["f2", "f1"]
    );
    assert_eq!(
        ids(store
            .list_referrals(&list(SD, ReferralParty::SamplingOrHandling), None, 10)
            .await
            .expect("list")),
        ["f1"]
    );
    let page = store
        .list_referrals(&list(SH, ReferralParty::SamplingOrHandling), None, 1)
        .await
        .expect("page");
    let rest = store
        .list_referrals(
            &list(SH, ReferralParty::SamplingOrHandling),
            Some(&page[0].cursor()),
            10,
        )
        .await
        .expect("rest");
    assert_eq!(
        (ids(page), ids(rest)),
        (vec!["f2".to_owned()], vec!["f1".to_owned()])
    );
    let filtered = ReferralFilter {
        state: Some("opened"),
        product_name_contains: Some("玩具".into()),
        producer_uscc: Some(uscc("370102", 1)),
        overdue: Some(false),
        ..list(SH, ReferralParty::Sampling)
    };
    assert_eq!(
        store
            .list_referrals(&filtered, None, 10)
            .await
            .expect("list")
            .len(),
        2
    );
    let none = ReferralFilter {
        product_name_contains: Some("100%_".into()),
        ..list(SH, ReferralParty::Sampling)
    };
    assert!(
        store
            .list_referrals(&none, None, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .list_referrals(&list(JS, ReferralParty::Reacting), None, 10)
            .await
            .expect("list")
            .is_empty()
    );
}
