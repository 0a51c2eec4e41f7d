//! Abusive peers (docs/reliability.md, "Slow and abusive peers") not covered by a suite of
//! their own: a client that opens streams up to `limits.max_concurrent_streams` on one HTTP/2
//! connection and holds them, then opens more than the server advertised. Each extra stream is
//! refused (`RST_STREAM REFUSED_STREAM`) while the held ones stay open, the same agency's other
//! connection is served, and another agency's paced calls are timed before and during.
//!
//! (The other abuses are in the suites of the limit they meet: `feed.rs` a subscriber that
//! never reads, `handshake_limit.rs` silent and stalled handshakes, `message_limit.rs`
//! oversized messages, `access_limits.rs` floods of served and of refused calls.)

use std::sync::Arc;
use std::time::Duration;

use yrd_domain::Profile;
use yrd_domain::clock::SystemClock;
use yrd_e2e::calm::{CalmAgency, report};
use yrd_e2e::raw_h2::{HEADERS, REFUSED_STREAM, RST_STREAM, RawH2};
use yrd_e2e::{JIANGSU, StoreKind, TestApp, ZHEJIANG, call_path, on_both_stores_spawned_by};

/// The streams one connection may hold here (the default is 128; fewer keep the test short).
const STREAM_CAP: u32 = 8;
/// Streams opened beyond the cap.
const EXTRA: u32 = 4;
/// A public method: past the identity and limit layers like any other, it waits for its
/// request message, so a stream opened without one stays open.
const JWKS: &str = "/yrd.exchange.v1.TokenService/GetJwks";

async fn spawn(kind: StoreKind) -> Option<TestApp> {
    TestApp::spawn_with(
        kind,
        |s| s.limits.max_concurrent_streams = STREAM_CAP,
        Arc::new(SystemClock),
    )
    .await
}

on_both_stores_spawned_by!(spawn; streams_held_up_to_the_limit_leave_other_connections_served);

async fn streams_held_up_to_the_limit_leave_other_connections_served(app: TestApp) {
    let mut calm = CalmAgency::new(&app, JIANGSU).await;
    let before = calm.paced("before", 20, Duration::from_millis(50)).await;

    let cert = app.client_cert(ZHEJIANG, Profile::System);
    let mut abuser = RawH2::connect(app.addr, &app.ca_pem(), &cert).await;
    assert_eq!(abuser.max_concurrent_streams, Some(STREAM_CAP));
    let during = calm.spawn_paced("during", 40, Duration::from_millis(50));

    let mut held = Vec::new();
    for _ in 0..STREAM_CAP {
        held.push(abuser.open(JWKS).await);
    }
    let mut extra = Vec::new();
    for _ in 0..EXTRA {
        extra.push(abuser.open(JWKS).await);
    }
    // Each extra stream is refused at once; the held ones get nothing (no answer, no reset).
    let frames = abuser.frames_for(Duration::from_secs(1)).await;
    let mut refused: Vec<u32> = frames
        .iter()
        .filter(|f| f.kind == RST_STREAM && f.error_code() == Some(REFUSED_STREAM))
        .map(|f| f.stream)
        .collect();
    refused.sort_unstable();
    assert_eq!(refused, extra, "the streams refused; frames: {frames:?}");
    let touched: Vec<_> = frames.iter().filter(|f| held.contains(&f.stream)).collect();
    assert!(touched.is_empty(), "the held streams got {touched:?}");

    // The same agency's other connection is served meanwhile.
    let other = app.channel(ZHEJIANG, Profile::System).await;
    call_path(&other, None, JWKS)
        .await
        .expect("another connection of the abusing agency is served");

    // A held stream, given its message, is answered; its place is then free for a new one.
    let first = held[0];
    abuser.finish(first, &[]).await;
    abuser
        .wait_for(Duration::from_secs(5), |f| {
            f.kind == HEADERS && f.stream == first
        })
        .await
        .expect("the held stream answered once its message came");
    let next = abuser.open(JWKS).await;
    abuser.finish(next, &[]).await;
    let answer = abuser
        .wait_for(Duration::from_secs(5), |f| f.stream == next)
        .await
        .expect("an answer on the stream opened in the freed place");
    assert_eq!(answer.kind, HEADERS, "{answer:?}");
    for stream in &held[1..] {
        abuser.cancel(*stream).await;
    }

    let during = during.await.expect("the calm agency's calls");
    println!(
        "streams: {STREAM_CAP} held and {EXTRA} refused with REFUSED_STREAM on one connection"
    );
    report(
        "streams held up to max_concurrent_streams",
        &before,
        &during,
    );
}
