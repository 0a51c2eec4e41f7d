//! Live authorization: a streaming response stays authorized for as long as it streams.
//!
//! The identity and token layers decide whether a call may *start*. A unary call ends moments
//! later, but a stream — `FeedService/Subscribe`, `AuditService/ExportAuditEntries`,
//! `grpc.health.v1.Health/Watch`, a reflection session — may stay open for the connection's
//! whole life (`limits.max_connection_age_s`, an hour by default). A certificate revoked for
//! key compromise, a suspended agency or an expired token must not keep receiving on a stream it
//! already holds, so the decision has to hold while the stream runs.
//!
//! [`LiveBody`] wraps the response body of every streaming call. It re-runs its layer's check
//! before it yields each frame, and whenever something the check reads may have changed: the
//! revoked and suspended sets moved (a [`tokio::sync::watch`] of their generation, see
//! `revocation::Revocations::changes`) or a validity deadline came (the token's `exp`, the
//! certificate's `notAfter`). On a refusal it drops the inner body, so the handler's producer
//! sees its receiver gone and stops, and ends the stream with gRPC trailers carrying the
//! refusal's status. A frame the handler produced after the change took effect is never
//! delivered, because the check runs between the handler's frame and the wire.
//!
//! One mechanism serves every layer: the identity layer and the token layer each wrap the body
//! with their own check and wake-ups. Which calls stream is read from the services' descriptors
//! ([`is_streaming`]), so a new streaming method is covered without a list to keep. Unary
//! responses are not wrapped: each is authorized when it starts, and its audit leaf is written
//! before its answer (see the `audit` module).

use std::collections::HashSet;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream as _;
use http_body::Frame;
use time::OffsetDateTime;
use tokio_stream::wrappers::WatchStream;
use yrd_domain::clock::Clock;

/// The shortest wait before a deadline is looked at again when the clock says it has not come
/// yet (a clock that is not the system's, as in tests, moves on its own schedule).
const RECHECK_FLOOR: Duration = Duration::from_millis(250);

/// The paths (`/package.Service/Method`) of every method whose response streams, read once
/// from the descriptors of the services `yrd serve` mounts.
static STREAMING: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut paths = HashSet::new();
    for encoded in [
        yrd_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = <prost_types::FileDescriptorSet as prost::Message>::decode(encoded) else {
            tracing::error!("a compiled-in descriptor set does not decode");
            continue;
        };
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    if method.server_streaming() {
                        paths.insert(format!(
                            "/{}.{}/{}",
                            file.package(),
                            service.name(),
                            method.name()
                        ));
                    }
                }
            }
        }
    }
    paths
});

/// True when the method at `path` answers with a stream of messages (server or bidirectional
/// streaming); false for unary methods and unknown paths.
pub fn is_streaming(path: &str) -> bool {
    STREAMING.contains(path)
}

/// The check a [`LiveBody`] re-runs: `Ok` while the call may go on, else the status to end with.
pub type Check = Box<dyn FnMut() -> Result<(), tonic::Status> + Send>;

/// A moment after which the check must run again (a token's `exp`, a certificate's
/// `notAfter`), timed on the exchange's clock.
struct Deadline {
    at: OffsetDateTime,
    clock: Arc<dyn Clock>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Deadline {
    fn new(at: OffsetDateTime, clock: Arc<dyn Clock>) -> Deadline {
        let sleep = Box::pin(tokio::time::sleep(Self::wait(at, clock.as_ref(), false)));
        Deadline { at, clock, sleep }
    }

    /// How long until `at` by `clock`; after a wake-up too early for the clock, at least
    /// [`RECHECK_FLOOR`].
    fn wait(at: OffsetDateTime, clock: &dyn Clock, again: bool) -> Duration {
        let left = Duration::try_from(at - clock.now()).unwrap_or(Duration::ZERO);
        if again { left.max(RECHECK_FLOOR) } else { left }
    }

    /// Ready (and re-armed) when the deadline may have come.
    fn poll_due(&mut self, cx: &mut Context<'_>) -> bool {
        if self.sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        let next = tokio::time::Instant::now() + Self::wait(self.at, self.clock.as_ref(), true);
        self.sleep.as_mut().reset(next);
        // Register the re-armed timer with this task.
        let _ = self.sleep.as_mut().poll(cx);
        true
    }
}

/// A response body that ends with the check's status as soon as the check refuses.
pub struct LiveBody {
    /// The handler's body; `None` once refused (dropped, so its producer stops).
    inner: Option<tonic::body::Body>,
    check: Check,
    /// Wakes the body when the revoked or suspended sets change.
    changes: Option<WatchStream<i64>>,
    deadline: Option<Deadline>,
    /// The refusal's trailers, once sent: nothing follows them.
    ended: bool,
}

impl std::fmt::Debug for LiveBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveBody")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl LiveBody {
    /// Wraps `inner`, re-running `check` before each frame.
    pub fn new(inner: tonic::body::Body, check: Check) -> LiveBody {
        LiveBody {
            inner: Some(inner),
            check,
            changes: None,
            deadline: None,
            ended: false,
        }
    }

    /// Also re-runs the check whenever `changes` moves, even while the stream is idle.
    pub fn on_changes(mut self, changes: tokio::sync::watch::Receiver<i64>) -> LiveBody {
        self.changes = Some(WatchStream::from_changes(changes));
        self
    }

    /// Also re-runs the check when `at` has come by `clock`, even while the stream is idle.
    pub fn until(mut self, at: OffsetDateTime, clock: Arc<dyn Clock>) -> LiveBody {
        self.deadline = Some(Deadline::new(at, clock));
        self
    }

    /// Drops the inner body and answers the trailers that end the stream with `status`.
    fn end(&mut self, status: &tonic::Status) -> Frame<bytes::Bytes> {
        self.inner = None;
        self.changes = None;
        self.deadline = None;
        self.ended = true;
        tracing::info!(code = ?status.code(), reason = %status.message(), "open stream ended: no longer authorized");
        let mut trailers = http::HeaderMap::new();
        if status.add_header(&mut trailers).is_err() {
            // Only a message that cannot be a header value fails; the code alone still says it.
            trailers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
        }
        Frame::trailers(trailers)
    }
}

impl http_body::Body for LiveBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        // Poll the wake-ups first so that both stay registered with this task; what they say is
        // only "look again", which the check below does on every poll anyway.
        if let Some(changes) = this.changes.as_mut() {
            while let Poll::Ready(Some(_)) = Pin::new(&mut *changes).poll_next(cx) {}
        }
        if let Some(deadline) = this.deadline.as_mut() {
            let _ = deadline.poll_due(cx);
        }
        if let Err(status) = (this.check)() {
            return Poll::Ready(Some(Ok(this.end(&status))));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            // A data frame made while the check was passing may still have waited in the
            // handler's channel past a change: look once more before it goes out.
            Poll::Ready(Some(Ok(frame))) if frame.is_data() => match (this.check)() {
                Ok(()) => Poll::Ready(Some(Ok(frame))),
                Err(status) => Poll::Ready(Some(Ok(this.end(&status)))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.as_ref().is_some_and(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.inner {
            Some(body) if !self.ended => {
                // Trailers may replace what is left: only the lower bound of nothing holds.
                let mut hint = http_body::SizeHint::new();
                if let Some(upper) = body.size_hint().upper() {
                    hint.set_upper(upper);
                }
                hint
            }
            _ => http_body::SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    use yrd_domain::clock::ManualClock;

    /// A body that yields `"a"`, then whatever is sent on the returned channel.
    fn streaming_body() -> (tonic::body::Body, tokio::sync::mpsc::Sender<bytes::Bytes>) {
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
        let stream = futures::stream::once(async { bytes::Bytes::from_static(b"a") })
            .chain(tokio_stream::wrappers::ReceiverStream::new(rx))
            .map(|b| Ok::<_, tonic::Status>(Frame::data(b)));
        (
            tonic::body::Body::new(http_body_util::StreamBody::new(stream)),
            tx,
        )
    }

    use futures::StreamExt as _;

    fn flag_check(refused: Arc<AtomicBool>) -> Check {
        Box::new(move || {
            if refused.load(Ordering::SeqCst) {
                Err(tonic::Status::unauthenticated("revoked"))
            } else {
                Ok(())
            }
        })
    }

    fn status_of(frame: &Frame<bytes::Bytes>) -> Option<(String, String)> {
        let trailers = frame.trailers_ref()?;
        Some((
            trailers.get("grpc-status")?.to_str().ok()?.to_owned(),
            trailers
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        ))
    }

    #[test]
    fn streaming_methods_come_from_the_descriptors() {
        assert!(is_streaming("/yrd.exchange.v1.FeedService/Subscribe"));
        assert!(is_streaming(
            "/yrd.exchange.v1.AuditService/ExportAuditEntries"
        ));
        assert!(is_streaming("/grpc.health.v1.Health/Watch"));
        assert!(is_streaming(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(is_streaming(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_streaming("/grpc.health.v1.Health/Check"));
        assert!(!is_streaming(
            "/yrd.exchange.v1.FeedService/GetFeedPosition"
        ));
        assert!(!is_streaming("/nope/Nope"));
    }

    #[tokio::test]
    async fn a_change_ends_an_idle_stream_and_stops_the_producer() {
        let (body, tx) = streaming_body();
        let refused = Arc::new(AtomicBool::new(false));
        let (changes, watched) = tokio::sync::watch::channel(0_i64);
        let mut live = LiveBody::new(body, flag_check(refused.clone())).on_changes(watched);
        let first = live.frame().await.expect("a frame").expect("ok");
        assert_eq!(first.into_data().ok().as_deref(), Some(&b"a"[..]));
        // Idle: nothing to send. The change alone must wake the body and end it.
        let waiting = tokio::spawn(async move {
            let frame = live.frame().await.expect("a frame").expect("ok");
            let after = live.frame().await;
            (frame, after.is_none(), live)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        refused.store(true, Ordering::SeqCst);
        changes.send_replace(1);
        let (frame, done, _live) = tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("ended at the change")
            .expect("task");
        assert_eq!(
            status_of(&frame),
            Some(("16".to_owned(), "revoked".to_owned()))
        );
        assert!(done, "nothing follows the refusal");
        // The inner body was dropped: its producer finds the channel closed.
        assert!(tx.send(bytes::Bytes::from_static(b"late")).await.is_err());
    }

    #[tokio::test]
    async fn a_frame_made_before_the_refusal_is_not_delivered_after_it() {
        let (body, tx) = streaming_body();
        let refused = Arc::new(AtomicBool::new(false));
        let mut live = LiveBody::new(body, flag_check(refused.clone()));
        let _ = live.frame().await;
        tx.send(bytes::Bytes::from_static(b"queued"))
            .await
            .expect("queued");
        refused.store(true, Ordering::SeqCst);
        let frame = live.frame().await.expect("a frame").expect("ok");
        assert!(!frame.is_data(), "the queued frame must not go out");
        assert_eq!(status_of(&frame).map(|s| s.0).as_deref(), Some("16"));
    }

    #[tokio::test]
    async fn a_deadline_ends_an_idle_stream() {
        let (body, _tx) = streaming_body();
        let clock = Arc::new(yrd_domain::clock::SystemClock);
        let at = clock.now() + time::Duration::milliseconds(200);
        let check_clock = clock.clone();
        let check: Check = Box::new(move || {
            if check_clock.now() >= at {
                Err(tonic::Status::unauthenticated("expired"))
            } else {
                Ok(())
            }
        });
        let mut live = LiveBody::new(body, check).until(at, clock);
        let _ = live.frame().await;
        let started = std::time::Instant::now();
        let frame = tokio::time::timeout(Duration::from_secs(2), live.frame())
            .await
            .expect("ended at the deadline")
            .expect("a frame")
            .expect("ok");
        assert_eq!(status_of(&frame).map(|s| s.0).as_deref(), Some("16"));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_clock_behind_the_timer_is_asked_again() {
        // The timer fires but the exchange's clock has not reached the deadline: the body keeps
        // streaming and looks again later, ending once the clock gets there.
        let start = yrd_domain::clock::SystemClock.now();
        let clock = Arc::new(ManualClock::new(start));
        let at = start + time::Duration::milliseconds(300);
        let (body, _tx) = streaming_body();
        let check_clock = clock.clone();
        // Every look at the deadline is counted, so the test waits for the looks themselves.
        let (asked, mut looks) = tokio::sync::watch::channel(0_u32);
        let check: Check = Box::new(move || {
            asked.send_modify(|n| *n += 1);
            if check_clock.now() >= at {
                Err(tonic::Status::unauthenticated("expired"))
            } else {
                Ok(())
            }
        });
        let mut live = LiveBody::new(body, check).until(at, clock.clone());
        let _ = live.frame().await;
        let before = *looks.borrow_and_update();
        let next = tokio::spawn(async move { live.frame().await.map(|f| f.ok()) });
        // The timer fires at `at` and the body looks again after it: two more looks, both
        // answered "not yet" by the clock, and the stream still open.
        tokio::time::timeout(Duration::from_secs(5), looks.wait_for(|n| *n >= before + 3))
            .await
            .expect("the body looked again after the timer fired")
            .expect("the check is alive");
        assert!(
            !next.is_finished(),
            "the clock has not reached the deadline"
        );
        clock.advance(time::Duration::seconds(1));
        let frame = tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .expect("ended once the clock got there")
            .expect("task")
            .flatten()
            .expect("a frame");
        assert_eq!(status_of(&frame).map(|s| s.0).as_deref(), Some("16"));
    }

    #[tokio::test]
    async fn a_stream_that_stays_authorized_is_untouched() {
        let (body, tx) = streaming_body();
        let live = LiveBody::new(body, Box::new(|| Ok(())));
        tx.send(bytes::Bytes::from_static(b"b"))
            .await
            .expect("sent");
        drop(tx);
        let collected = live.collect().await.expect("ok").to_bytes();
        assert_eq!(&collected[..], b"ab");
    }
}
