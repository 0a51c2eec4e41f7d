//! The feed store on both backends: per-agency gap-free cursors, reads after a cursor,
//! forward-only acknowledgements, and wake-ups.

use std::time::Duration;

use time::OffsetDateTime;
use yrd_domain::audit::{LEAF_VERSION, LeafData};
use yrd_store::{AckError, NewFeedEvent, Store};

mod common;

use common::agency;

yrd_store::on_both_backends!(
    cursors_are_per_agency_and_gap_free,
    acks_only_move_forward,
    appends_wake_watchers,
    ack_commits_its_leaf_or_nothing
);

fn event(to: &str, n: u32) -> NewFeedEvent {
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
    NewFeedEvent {
        needs_disposal: n % 2 == 0,
        payload: vec![1, 2, 3, u8::try_from(n).unwrap_or(0)],
        ..common::published_event(to, format!("{to}-{n}"), &format!("r{n}"), at)
    }
}

async fn cursors_are_per_agency_and_gap_free(store: Store) {
    let assigned = store
        .append_feed_events(&[
            event("370000-AMR", 1),
            event("320000-AMR", 2),
            event("370000-AMR", 3),
        ])
        .await
        .expect("append");
    let cursors: Vec<(String, u64)> = assigned.iter().map(|(a, c)| (a.to_string(), *c)).collect();
    assert_eq!(
        cursors,
        vec![
            ("370000-AMR".to_owned(), 1),
            ("320000-AMR".to_owned(), 1),
            ("370000-AMR".to_owned(), 2)
        ]
    );
    let shandong = store
        .feed_events_after(&agency("370000-AMR"), 0, 10)
        .await
        .expect("read");
    assert_eq!(shandong.len(), 2);
    assert_eq!(shandong[1].cursor, 2);
    assert_eq!(shandong[1].event, event("370000-AMR", 3));
    let after_first = store
        .feed_events_after(&agency("370000-AMR"), 1, 10)
        .await
        .expect("read");
    assert_eq!(after_first.len(), 1);
    assert!(
        store
            .feed_events_after(&agency("330000-AMR"), 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
}

async fn acks_only_move_forward(store: Store) {
    let sd = agency("370000-AMR");
    store
        .append_feed_events(&[event("370000-AMR", 1), event("370000-AMR", 2)])
        .await
        .expect("append");
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_100).expect("time");
    assert_eq!(store.ack_feed(&sd, 2, now).await.expect("ack"), 2);
    assert_eq!(store.ack_feed(&sd, 1, now).await.expect("older ack"), 2);
    let beyond = store.ack_feed(&sd, 3, now).await;
    assert!(
        matches!(
            beyond,
            Err(AckError::BeyondLatest {
                cursor: 3,
                latest: 2
            })
        ),
        "{beyond:?}"
    );
    let position = store.feed_position(&sd).await.expect("position");
    assert_eq!((position.acked, position.latest), (2, 2));
}

async fn appends_wake_watchers(store: Store) {
    let mut watch = store.watch_feed(&agency("340000-AMR"));
    let waiter = tokio::spawn(async move {
        watch.changed().await.expect("a wake-up");
        *watch.borrow()
    });
    store
        .append_feed_events(&[event("340000-AMR", 1)])
        .await
        .expect("append");
    let latest = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .expect("task");
    assert_eq!(latest, 1);
}

fn ack_leaf(n: i64) -> LeafData {
    LeafData {
        v: LEAF_VERSION,
        time_us: 1_700_000_000_000_000 + n,
        trace_id: format!("{n:032x}"),
        span_id: format!("{n:016x}"),
        agency: "370000-AMR".into(),
        cert_fingerprint: "ab".repeat(32),
        profile: "system".into(),
        officer: String::new(),
        token_id: format!("jti-{n}"),
        method: "/yrd.exchange.v1.FeedService/Ack".into(),
        resources: vec!["agencies/370000-AMR/feed".into()],
        code: 0,
        message: String::new(),
        request_sha256: "00".repeat(32),
        duration_us: 1,
    }
}

async fn ack_commits_its_leaf_or_nothing(store: Store) {
    let sd = agency("370000-AMR");
    store
        .append_feed_events(&[event("370000-AMR", 1)])
        .await
        .expect("append");
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_100).expect("time");
    let accepted = ack_leaf(1);
    assert_eq!(
        store
            .ack_feed_with_leaf(&sd, 1, now, Some(&accepted))
            .await
            .expect("ack"),
        1
    );
    let refused = ack_leaf(2);
    let beyond = store.ack_feed_with_leaf(&sd, 5, now, Some(&refused)).await;
    assert!(
        matches!(
            beyond,
            Err(AckError::BeyondLatest {
                cursor: 5,
                latest: 1
            })
        ),
        "{beyond:?}"
    );
    let pending: Vec<_> = store
        .unsequenced_leaves(10)
        .await
        .expect("leaves")
        .into_iter()
        .map(|(_, hash)| hash)
        .collect();
    assert_eq!(
        pending,
        vec![accepted.leaf_hash()],
        "only the accepted ack's leaf is stored"
    );
}
