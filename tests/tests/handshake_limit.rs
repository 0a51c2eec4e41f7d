//! Silent connections (issue 16, item 3): clients that open TCP connections and never send a
//! byte hold a place among the connections waiting for their TLS handshake only up to the
//! caps, in total (`tls.max_pending_handshakes`) and per source address
//! (`tls.max_pending_handshakes_per_source`); beyond them the server closes the socket at once.
//! Meanwhile an agency connecting from another address gets its handshake and its answers
//! promptly, and an agency already connected is served even while the total is full.
//!
//! The silent clients bind other loopback addresses (127.0.0.2, …) so that each is its own
//! source. The handshake timeout is long here, so what frees the server is the caps, not the
//! timeout. The figures (connections held, the agency's latencies) are printed.
//!
//! Stalled handshakes (issue 21, "Slow and abusive peers"): clients that send their
//! ClientHello, get the server's answer and never send their own flight are closed by the
//! handshake timeout (`tls.handshake_timeout_ms`), while another agency's paced calls are
//! timed before and during.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpSocket, TcpStream};
use yrd_domain::Profile;
use yrd_domain::clock::SystemClock;
use yrd_e2e::calm::{CalmAgency, report};
use yrd_e2e::raw_tls::stall_mid_handshake;
use yrd_e2e::{JIANGSU, StoreKind, TestApp, ZHEJIANG, call_path, on_both_stores_spawned_by};

const TOTAL_CAP: usize = 256;
const PER_SOURCE_CAP: usize = 32;
/// Connections each silent source tries: more than its cap.
const ATTEMPTS_PER_SOURCE: usize = 48;
/// A public method, answered after the identity and limit layers like any other.
const JWKS: &str = "/yrd.exchange.v1.TokenService/GetJwks";

async fn spawn(kind: StoreKind) -> Option<TestApp> {
    TestApp::spawn_with(
        kind,
        |s| {
            s.tls.max_pending_handshakes = TOTAL_CAP;
            s.tls.max_pending_handshakes_per_source = PER_SOURCE_CAP;
            s.tls.handshake_timeout_ms = 120_000;
        },
        Arc::new(SystemClock),
    )
    .await
}

mod silent_connections_leave_other_agencies_served {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = super::spawn(yrd_e2e::StoreKind::Sqlite)
            .await
            .expect("SQLite is always available");
        super::silent_connections_leave_other_agencies_served(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = super::spawn(yrd_e2e::StoreKind::Postgres).await {
            super::silent_connections_leave_other_agencies_served(app).await;
        }
    }
}

/// 127.0.0.`n`.
fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// A TCP connection to `server` from `source` that will never send a byte.
async fn silent_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket
        .connect(server)
        .await
        .unwrap_or_else(|e| panic!("connect from {source}: {e}"))
}

/// `ATTEMPTS_PER_SOURCE` silent connections from each of `sources`, one source after the other,
/// each with whether the server still holds it `WAIT` later (`false`: it closed it).
async fn open_silent(
    server: SocketAddr,
    sources: impl IntoIterator<Item = u8>,
) -> Vec<(u8, TcpStream, bool)> {
    let mut opened = Vec::new();
    for source in sources {
        for _ in 0..ATTEMPTS_PER_SOURCE {
            opened.push((source, silent_from(loopback(source), server).await));
        }
    }
    let checks = opened.into_iter().map(|(source, stream)| async move {
        let (stream, held) = still_held(stream).await;
        (source, stream, held)
    });
    futures::future::join_all(checks).await
}

/// How long a refused connection may take to be seen closed.
const WAIT: Duration = Duration::from_secs(2);

/// Whether the server still holds `stream` open after `WAIT` (a refused one reads end-of-file
/// or a reset at once).
async fn still_held(mut stream: TcpStream) -> (TcpStream, bool) {
    let mut byte = [0u8; 1];
    let held = match tokio::time::timeout(WAIT, stream.read(&mut byte)).await {
        Err(_) => true,
        Ok(Ok(0) | Err(_)) => false,
        Ok(Ok(_)) => panic!("the server sent a byte to a client that never spoke"),
    };
    (stream, held)
}

fn held_from(connections: &[(u8, TcpStream, bool)], source: u8) -> usize {
    connections
        .iter()
        .filter(|(s, _, held)| *s == source && *held)
        .count()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn silent_connections_leave_other_agencies_served(app: TestApp) {
    // Six silent sources try 48 connections each: 288, more than the total cap, but each
    // source is stopped at its own cap first.
    let first = open_silent(app.addr, 2..=7).await;
    let held: usize = first.iter().filter(|(_, _, held)| *held).count();
    for source in 2..=7 {
        assert_eq!(
            held_from(&first, source),
            PER_SOURCE_CAP,
            "connections from 127.0.0.{source} held"
        );
    }
    assert_eq!(held, 6 * PER_SOURCE_CAP);

    // Meanwhile an agency from 127.0.0.1 gets its handshake and its answers promptly.
    let started = Instant::now();
    let calm = app.channel(JIANGSU, Profile::System).await;
    let handshake = started.elapsed();
    let mut latencies = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        call_path(&calm, None, JWKS).await.unwrap_or_else(|status| {
            panic!("call {i} while silent connections are held: {status:?}")
        });
        latencies.push(started.elapsed());
    }
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    let typical = median(&mut latencies);
    println!(
        "{held} of {} silent connections held ({PER_SOURCE_CAP} per source from 6 sources); \
         another agency meanwhile: connected with its handshake in {handshake:?}, \
         20 calls median {typical:?}, slowest {slowest:?}",
        first.len()
    );
    assert!(
        handshake < Duration::from_secs(2),
        "the handshake took {handshake:?}"
    );
    assert!(slowest < Duration::from_secs(1), "a call took {slowest:?}");

    // Two more sources fill the total: then even a new source is closed at once, while the
    // agencies already connected go on being served.
    let second = open_silent(app.addr, 8..=9).await;
    let held_now = held + second.iter().filter(|(_, _, held)| *held).count();
    assert_eq!(held_now, TOTAL_CAP, "silent connections held in total");
    let (_, newcomer_held) = still_held(silent_from(loopback(10), app.addr).await).await;
    assert!(
        !newcomer_held,
        "a new source is refused while the total is full"
    );
    call_path(&calm, None, JWKS)
        .await
        .expect("an established connection is served while the total is full");

    // Once the silent clients go away, their places are free again at once.
    drop(first);
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    let other = loop {
        // A new agency connection may still be refused for a moment, while the server notices
        // the silent ones closed.
        let files = app.client_files(ZHEJIANG, Profile::System);
        match yrd_gateway::client::connect(&app.addr.to_string(), "localhost", &files).await {
            Ok(channel) => break channel,
            Err(e) => {
                assert!(Instant::now() < deadline, "still refused: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    call_path(&other, None, JWKS)
        .await
        .expect("a new agency is served once the silent clients left");
}

/// The handshake timeout of the stalled-handshake scenario.
const STALL_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Stalled handshakes at once, from one source: within its cap, so the timeout is what
/// frees them.
const STALLED: usize = 16;

async fn spawn_short_timeout(kind: StoreKind) -> Option<TestApp> {
    TestApp::spawn_with(
        kind,
        |s| s.tls.handshake_timeout_ms = 1_000,
        Arc::new(SystemClock),
    )
    .await
}

on_both_stores_spawned_by!(spawn_short_timeout; handshakes_stalled_midway_are_closed_by_the_timeout);

async fn handshakes_stalled_midway_are_closed_by_the_timeout(app: TestApp) {
    let mut calm = CalmAgency::new(&app, JIANGSU).await;
    let before = calm.paced("before", 20, Duration::from_millis(50)).await;
    let during = calm.spawn_paced("during", 30, Duration::from_millis(50));
    let stalled = (0..STALLED).map(|_| stall_mid_handshake(app.addr, Duration::from_secs(10)));
    let outcomes = futures::future::join_all(stalled).await;
    let during = during.await.expect("the calm agency's calls");

    let mut closed_after = Vec::new();
    for (i, (closed, received)) in outcomes.into_iter().enumerate() {
        assert!(
            received > 0,
            "stalled handshake {i}: the server answered no ClientHello"
        );
        let closed =
            closed.unwrap_or_else(|| panic!("stalled handshake {i} still open after 10 s"));
        assert!(
            closed >= STALL_TIMEOUT && closed < STALL_TIMEOUT + Duration::from_millis(1_500),
            "stalled handshake {i} closed after {closed:?}, the timeout is {STALL_TIMEOUT:?}"
        );
        closed_after.push(closed);
    }
    closed_after.sort();
    println!(
        "{STALLED} handshakes stalled after the ServerHello: closed after {:?} to {:?} \
         (tls.handshake_timeout_ms {STALL_TIMEOUT:?})",
        closed_after[0],
        closed_after[STALLED - 1]
    );
    report("handshakes stalled midway", &before, &during);
}
