//! Open streams end when their caller stops being authorized (issue 16, items 1, 2 and 11),
//! over real mTLS, on SQLite and PostgreSQL, on the replica that made the change and on another.
//!
//! * A live `FeedService/Subscribe` stream ends with `UNAUTHENTICATED` when its certificate is
//!   revoked or its token expires, `PERMISSION_DENIED` when its agency is suspended, and a
//!   result published after the change is never delivered on it; `Health/Watch` ends too.
//! * A revocation is in force when `RevokeCertificate` answers: a call sent on an already open
//!   connection right after the answer is refused, and so is a new handshake, every time (20
//!   tries, each with a certificate of its own).
//! * The exchange log records the outcome a stream really had: `CANCELLED` when the client went
//!   away, `UNAUTHENTICATED` when a revocation ended it.
//!
//! The timing scenarios print, with `eprintln!`, the medians of the time from the admin's call
//! returning to the stream's end and to the first refused call.

use std::time::{Duration, Instant};

use rustls::AlertDescription;
use rustls::version::TLS13;
use tonic::Code;
use tonic::codec::Streaming;
use yrd_domain::Profile;
use yrd_e2e::raw_tls::{ClientCert, Outcome, attempt};
use yrd_e2e::{
    Authed, JIANGSU, SHANDONG, SHANGHAI, Session, TestApp, agency_id, call_path, on_both_stores,
    passed,
};
use yrd_gateway::client::ClientFiles;
use yrd_proto::v1::feed_service_client::FeedServiceClient;
use yrd_proto::v1::{
    AgencyState, IssueCertificateRequest, RevocationReason, SubscribeRequest, SubscribeResponse,
    subscribe_response,
};
use yrd_store::{LeafFilter, NewFeedEvent};

/// A method every `system` token may call (an empty search).
const PROBE: &str = "/yrd.exchange.v1.SpotCheckService/SearchResults";
const SUBSCRIBE: &str = "/yrd.exchange.v1.FeedService/Subscribe";
/// The bound of the issue: a change holds within the revocation watcher's poll (250 ms) on
/// every replica; this leaves room for a loaded test machine.
const BOUND: Duration = Duration::from_secs(1);
/// How many times the race between the answer and the next call is tried.
const TRIES: usize = 20;

/// A published result for `to`, as the partner receives it.
fn result_event(to: &str, event_id: &str) -> NewFeedEvent {
    yrd_e2e::fixtures::result_event(to, event_id, event_id, 0)
}

/// Publishes one result for `to` (appended straight into the store, as a publishing service
/// does in its write's transaction).
async fn publish(app: &TestApp, to: &str, event_id: &str) {
    app.store
        .append_feed_events(&[result_event(to, event_id)])
        .await
        .expect("append a feed event");
}

async fn subscribe(session: &Session) -> Streaming<SubscribeResponse> {
    FeedServiceClient::<Authed>::new(session.authed())
        .subscribe(SubscribeRequest { from_cursor: None })
        .await
        .expect("subscribe")
        .into_inner()
}

/// How a stream ended: the status, when, and the events it delivered on the way.
#[derive(Debug)]
struct Ended {
    status: tonic::Status,
    at: Instant,
    events: Vec<String>,
}

/// Reads `stream` until it ends (or `within` passes: a panic), keeping the events' ids.
async fn read_to_end(mut stream: Streaming<SubscribeResponse>, within: Duration) -> Ended {
    let mut events = Vec::new();
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.message()).await {
            Err(_) => panic!("the stream still open after {within:?}; delivered {events:?}"),
            Ok(Ok(Some(message))) => {
                if let Some(subscribe_response::Kind::Event(event)) = message.kind {
                    events.push(event.event_id);
                }
            }
            Ok(Ok(None)) => panic!("the stream ended with OK; delivered {events:?}"),
            Ok(Err(status)) => {
                return Ended {
                    status,
                    at: Instant::now(),
                    events,
                };
            }
        }
    }
}

/// Revokes `name` through `admin` (key compromise).
async fn revoke(admin: &Session, name: &str) {
    admin.revoke(name, RevocationReason::KeyCompromise).await;
}

/// Suspends or resumes `agency` through `admin`.
async fn set_state(admin: &Session, agency: &str, state: AgencyState, n: usize) {
    let request_id = format!("set {agency} {state:?} {n}");
    admin
        .set_agency_state(agency, state, request_id)
        .await
        .expect("update the agency's state");
}

/// A fresh `system` certificate of `agency` issued through `admin` (each try of a timing
/// scenario revokes one), and its resource name; the files live in `dir`.
async fn fresh_certificate(
    app: &TestApp,
    admin: &Session,
    agency: &str,
    n: usize,
    dir: &std::path::Path,
) -> (ClientFiles, String) {
    fresh_certificate_for(app, admin, agency, n, dir, 86_400).await
}

/// As [`fresh_certificate`], valid for `seconds`.
async fn fresh_certificate_for(
    app: &TestApp,
    admin: &Session,
    agency: &str,
    n: usize,
    dir: &std::path::Path,
    seconds: i64,
) -> (ClientFiles, String) {
    let (key_pem, csr_pem) = yrd_pki::make_csr(&agency_id(agency), Profile::System).expect("CSR");
    let issued = admin
        .admin()
        .issue_certificate(IssueCertificateRequest {
            request_id: format!("issue {agency} {n}"),
            agency: format!("agencies/{agency}"),
            profile: yrd_proto::v1::Profile::System as i32,
            csr_pem,
            validity: Some(prost_types::Duration { seconds, nanos: 0 }),
        })
        .await
        .expect("issue a certificate")
        .into_inner()
        .certificate
        .expect("the certificate");
    let files = ClientFiles {
        ca: app.client_files(agency, Profile::System).ca,
        cert: dir.join(format!("{n}.pem")),
        key: dir.join(format!("{n}.key")),
    };
    std::fs::write(&files.cert, issued.certificate_pem).expect("write the certificate");
    std::fs::write(&files.key, key_pem).expect("write the key");
    (files, issued.name)
}

/// A session (connection and token) presenting `files` to `app`.
async fn session_with(app: &TestApp, files: &ClientFiles) -> Session {
    let channel = app.channel_with(files).await;
    let token = TestApp::token_over(&channel, None)
        .await
        .expect("a token for the fresh certificate");
    Session { channel, token }
}

/// Milliseconds from `from` to `to`, negative when `to` came first (a stream the server ended
/// before its answer reached the admin).
fn ms_between(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64() * 1e3
    } else {
        -((from - to).as_secs_f64() * 1e3)
    }
}

/// The median and the largest of `samples` (milliseconds; sorted in place).
fn median_max(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples.last().copied().unwrap_or_default(),
    )
}

/// The sequenced leaf of `agency`'s `method` call, waiting for the sequencer.
async fn leaf_of(app: &TestApp, agency: &str, method: &str) -> yrd_domain::audit::LeafData {
    let filter = LeafFilter {
        agency: Some(agency.to_owned()),
        method: Some(method.to_owned()),
        ..LeafFilter::default()
    };
    let started = Instant::now();
    loop {
        let leaves = app
            .store
            .query_leaves(&filter, None, 10)
            .await
            .expect("query the exchange log");
        if let Some(found) = leaves.into_iter().next() {
            return found.leaf;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no leaf for {agency} {method}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_stores!(
    a_revoked_certificate_loses_its_stream_and_is_refused_at_once,
    a_revocation_through_another_replica_ends_the_stream_within_the_bound,
    a_suspension_ends_the_stream_and_holds_when_answered,
    an_expired_token_ends_the_stream,
    an_expired_certificate_ends_the_stream,
    health_watch_ends_on_revocation,
    a_cancelled_stream_is_logged_as_cancelled,
);

/// 20 times: a fresh certificate with an open Subscribe stream and an open connection; the
/// admin revokes it; the call sent right after the answer on the open connection is refused,
/// the stream ends with `UNAUTHENTICATED`, and a result published after the answer is not
/// delivered. The exchange log says the stream ended `UNAUTHENTICATED`.
async fn a_revoked_certificate_loses_its_stream_and_is_refused_at_once(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let dir = tempfile::tempdir().expect("a folder for the certificates");
    let (mut to_end, mut to_refusal) = (Vec::new(), Vec::new());
    for n in 0..TRIES {
        let (files, name) = fresh_certificate(&app, &admin, SHANDONG, n, dir.path()).await;
        let victim = session_with(&app, &files).await;
        let stream = subscribe(&victim).await;
        let reader = tokio::spawn(read_to_end(stream, BOUND + Duration::from_secs(5)));
        passed(call_path(&victim.channel, Some(&victim.token), PROBE).await);

        revoke(&admin, &name).await;
        let answered = Instant::now();
        let refused = call_path(&victim.channel, Some(&victim.token), PROBE).await;
        let refused_at = Instant::now();
        let late = format!("after-revocation-{n}");
        publish(&app, SHANDONG, &late).await;

        let status = refused.expect_err("the call right after the answer is refused");
        assert_eq!(status.code(), Code::Unauthenticated, "try {n}: {status:?}");
        assert!(status.message().contains("revoked"), "{status:?}");
        // The CRL in the acceptor was rebuilt before the answer too: a new handshake fails.
        let cert = ClientCert {
            cert_pem: std::fs::read(&files.cert).expect("certificate"),
            key_pem: std::fs::read(&files.key).expect("key"),
        };
        assert_eq!(
            attempt(app.addr, &app.ca_pem(), Some(&cert), &[&TLS13]).await,
            Outcome::Refused(rustls::Error::AlertReceived(
                AlertDescription::CertificateRevoked
            )),
            "try {n}: a handshake right after the answer"
        );
        let ended = reader.await.expect("reader");
        assert_eq!(ended.status.code(), Code::Unauthenticated, "{ended:?}");
        assert!(ended.status.message().contains("revoked"), "{ended:?}");
        // (Earlier tries' late results are this stream's backlog; this try's must not come.)
        assert!(
            !ended.events.contains(&late),
            "a result published after the revocation was delivered: {ended:?}"
        );
        let end = ms_between(answered, ended.at);
        assert!(
            end < BOUND.as_secs_f64() * 1e3,
            "the stream ended {end} ms after the answer"
        );
        to_end.push(end);
        to_refusal.push(ms_between(answered, refused_at));
    }
    let ((end, end_max), (refusal, refusal_max)) =
        (median_max(&mut to_end), median_max(&mut to_refusal));
    eprintln!(
        "[{:?}] same replica, {TRIES} revocations: answer -> stream end median {end:.2} ms \
         (max {end_max:.2}; negative: ended before the answer reached the admin); \
         answer -> first call refused median {refusal:.2} ms (max {refusal_max:.2})",
        app.store_kind,
    );
    let leaf = leaf_of(&app, SHANDONG, SUBSCRIBE).await;
    assert_eq!(leaf.code, Code::Unauthenticated as i32, "{leaf:?}");
    assert!(leaf.message.contains("revoked"), "{leaf:?}");
}

/// The same through replica A while the stream and the connection are on replica B: both end
/// within the bound (B's watcher poll), and nothing published after the answer reaches B's
/// stream once B has applied the change.
async fn a_revocation_through_another_replica_ends_the_stream_within_the_bound(a: TestApp) {
    let b = a.spawn_replica().await;
    let admin = a.session(SHANGHAI, Profile::Admin).await;
    let dir = tempfile::tempdir().expect("a folder for the certificates");
    let (mut to_end, mut to_refusal) = (Vec::new(), Vec::new());
    for n in 0..5 {
        let (files, name) = fresh_certificate(&a, &admin, SHANDONG, n, dir.path()).await;
        let victim = session_with(&b, &files).await;
        let stream = subscribe(&victim).await;
        let reader = tokio::spawn(read_to_end(stream, BOUND + Duration::from_secs(5)));

        revoke(&admin, &name).await;
        let answered = Instant::now();
        let (status, refused_after) = yrd_e2e::refused_within(
            "a call on replica B after the revocation through A",
            BOUND,
            Code::Unauthenticated,
            || call_path(&victim.channel, Some(&victim.token), PROBE),
        )
        .await;
        assert!(status.message().contains("revoked"), "{status:?}");
        // B refuses the certificate now: what is published from here on must not reach it.
        let late = format!("after-refusal-{n}");
        publish(&b, SHANDONG, &late).await;

        let ended = reader.await.expect("reader");
        assert_eq!(ended.status.code(), Code::Unauthenticated, "{ended:?}");
        assert!(
            !ended.events.contains(&late),
            "delivered after the change held on B: {ended:?}"
        );
        let end = ms_between(answered, ended.at);
        assert!(
            end < BOUND.as_secs_f64() * 1e3,
            "B's stream ended {end} ms after the answer"
        );
        to_end.push(end);
        to_refusal.push(refused_after.as_secs_f64() * 1e3);
    }
    let ((end, end_max), (refusal, refusal_max)) =
        (median_max(&mut to_end), median_max(&mut to_refusal));
    eprintln!(
        "[{:?}] other replica, 5 revocations: answer -> stream end median {end:.2} ms \
         (max {end_max:.2}); answer -> first call refused (calls every 20 ms) median \
         {refusal:.2} ms (max {refusal_max:.2})",
        a.store_kind,
    );
    b.shutdown().await.expect("replica B stops");
}

/// Suspending an agency ends its open stream with `PERMISSION_DENIED` and refuses the call
/// sent right after the answer; resuming lets it subscribe again. Repeated, for the race.
async fn a_suspension_ends_the_stream_and_holds_when_answered(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let victim = app.session(SHANDONG, Profile::System).await;
    let (mut to_end, mut to_refusal) = (Vec::new(), Vec::new());
    for n in 0..TRIES / 2 {
        let stream = subscribe(&victim).await;
        let reader = tokio::spawn(read_to_end(stream, BOUND + Duration::from_secs(5)));
        set_state(&admin, SHANDONG, AgencyState::Suspended, n).await;
        let answered = Instant::now();
        let refused = call_path(&victim.channel, Some(&victim.token), PROBE).await;
        let refused_at = Instant::now();
        let late = format!("after-suspension-{n}");
        publish(&app, SHANDONG, &late).await;

        let status = refused.expect_err("the call right after the answer is refused");
        assert_eq!(status.code(), Code::PermissionDenied, "try {n}: {status:?}");
        assert!(status.message().contains("suspended"), "{status:?}");
        let ended = reader.await.expect("reader");
        assert_eq!(ended.status.code(), Code::PermissionDenied, "{ended:?}");
        assert!(
            !ended.events.contains(&late),
            "delivered after the suspension: {ended:?}"
        );
        to_end.push(ms_between(answered, ended.at));
        to_refusal.push(ms_between(answered, refused_at));

        set_state(&admin, SHANDONG, AgencyState::Active, n).await;
        // Served again at once; the backlog it missed is still there for it.
        passed(call_path(&victim.channel, Some(&victim.token), PROBE).await);
    }
    let ((end, end_max), (refusal, refusal_max)) =
        (median_max(&mut to_end), median_max(&mut to_refusal));
    eprintln!(
        "[{:?}] same replica, {} suspensions: answer -> stream end median {end:.2} ms \
         (max {end_max:.2}); answer -> first call refused median {refusal:.2} ms \
         (max {refusal_max:.2})",
        app.store_kind,
        TRIES / 2,
    );
}

/// A stream opened with a token that expires in two seconds ends with `UNAUTHENTICATED` at the
/// token's `exp`, and a result published once the token expired is not delivered on it.
async fn an_expired_token_ends_the_stream(app: TestApp) {
    let channel = app.channel(SHANDONG, Profile::System).await;
    let mut claims = app.claims_for(SHANDONG, Profile::System);
    claims.exp = claims.iat + 2;
    let exp = claims.exp;
    let token = app.exchange_key().await.sign(&claims);
    let session = Session { channel, token };
    let stream = subscribe(&session).await;
    let reader = tokio::spawn(read_to_end(stream, Duration::from_secs(10)));
    publish(&app, SHANDONG, "before-expiry").await;

    // Wait, by the server's clock, for the token's `exp`, then publish at once.
    while app.clock.now().unix_timestamp() < exp {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let expired = Instant::now();
    publish(&app, SHANDONG, "after-expiry").await;

    let ended = reader.await.expect("reader");
    assert_eq!(ended.status.code(), Code::Unauthenticated, "{ended:?}");
    assert!(ended.status.message().contains("expired"), "{ended:?}");
    assert_eq!(ended.events, vec!["before-expiry".to_owned()]);
    let late = ended.at.saturating_duration_since(expired);
    assert!(late < BOUND, "ended {late:?} after the token's exp");
    eprintln!("[{:?}] token exp -> stream end {late:?}", app.store_kind);
}

/// A stream opened with a certificate that expires a few seconds later ends with
/// `UNAUTHENTICATED` once it has expired, and a result published after that is not delivered.
async fn an_expired_certificate_ends_the_stream(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let dir = tempfile::tempdir().expect("a folder for the certificate");
    let (files, _) = fresh_certificate_for(&app, &admin, SHANDONG, 0, dir.path(), 3).await;
    let not_after = {
        let pem = std::fs::read_to_string(&files.cert).expect("certificate");
        yrd_pki::CertInfo::from_pem(&pem)
            .expect("certificate parses")
            .not_after
    };
    let session = session_with(&app, &files).await;
    let stream = subscribe(&session).await;
    let reader = tokio::spawn(read_to_end(stream, Duration::from_secs(10)));

    // Past `notAfter` by the server's clock, publish at once.
    while app.clock.now() <= not_after {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let expired = Instant::now();
    publish(&app, SHANDONG, "after-certificate-expiry").await;

    let ended = reader.await.expect("reader");
    assert_eq!(ended.status.code(), Code::Unauthenticated, "{ended:?}");
    assert!(ended.status.message().contains("expired"), "{ended:?}");
    assert!(
        !ended
            .events
            .contains(&"after-certificate-expiry".to_owned()),
        "{ended:?}"
    );
    let late = ms_between(expired, ended.at);
    assert!(
        late < BOUND.as_secs_f64() * 1e3,
        "ended {late} ms after notAfter"
    );
    eprintln!(
        "[{:?}] certificate notAfter -> stream end {late:.2} ms",
        app.store_kind
    );
}

/// `grpc.health.v1.Health/Watch` (public: no token) ends with `UNAUTHENTICATED` when the
/// connection's certificate is revoked.
async fn health_watch_ends_on_revocation(app: TestApp) {
    let admin = app.session(SHANGHAI, Profile::Admin).await;
    let channel = app.channel(SHANDONG, Profile::System).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("a status").expect("open");
    assert_eq!(
        first.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    revoke(&admin, &app.certificate_name(SHANDONG, Profile::System)).await;
    let answered = Instant::now();
    let outcome = tokio::time::timeout(BOUND, watch.message())
        .await
        .expect("the watch ends within the bound");
    let status = outcome.expect_err("the watch ends with a refusal");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    eprintln!(
        "[{:?}] Health/Watch ended {:?} after the answer",
        app.store_kind,
        answered.elapsed()
    );
}

/// A Subscribe the client cancels is logged `CANCELLED`, not `OK`.
async fn a_cancelled_stream_is_logged_as_cancelled(app: TestApp) {
    let session = app.session(JIANGSU, Profile::System).await;
    publish(&app, JIANGSU, "one").await;
    let mut stream = subscribe(&session).await;
    let message = stream.message().await.expect("a message").expect("open");
    assert!(message.kind.is_some());
    drop(stream);
    let leaf = leaf_of(&app, JIANGSU, SUBSCRIBE).await;
    assert_eq!(leaf.code, Code::Cancelled as i32, "{leaf:?}");
}
