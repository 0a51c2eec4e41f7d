//! The identity layer: turns the verified client certificate of the connection into the
//! caller's [`AgencyIdentity`], which every handler takes from the request extensions (never
//! from the message body).
//!
//! The certificate is read once per connection, at the handshake ([`PeerCertificate`]); this
//! layer only looks the result up and checks the certificate is still within its validity, so
//! a connection that outlives its certificate stops being served.
//!
//! The same check holds for a stream's whole life, not only its start: the response body of a
//! streaming call is a [`LiveBody`] that re-checks validity, revocation and suspension before
//! each message, when the revoked or suspended sets change, and when the certificate's
//! `notAfter` comes, and ends the stream with the refusal's status (see the `live` module).

use std::sync::Arc;

use yrd_domain::AgencyIdentity;
use yrd_domain::clock::Clock;

use crate::server::intercept::{
    Answer, Inner, Intercept, Request, RequestBody, Watch, intercepted_layer, watched,
};
use crate::server::live::{LiveBody, is_streaming};
use crate::server::peer::PeerCertificate;
use crate::server::refuse::refused;
use crate::server::revocation::Revocations;
use crate::server::tls::{CallGuard, ConnInfo};

/// Puts the caller's [`AgencyIdentity`] into each request, or answers `UNAUTHENTICATED`.
#[derive(Debug, Clone)]
pub struct IdentityLayer {
    clock: Arc<dyn Clock>,
    revocations: Arc<Revocations>,
}

impl IdentityLayer {
    /// The layer, reading validity against `clock` and revocation from `revocations`.
    pub fn new(clock: Arc<dyn Clock>, revocations: Arc<Revocations>) -> Self {
        IdentityLayer { clock, revocations }
    }
}

intercepted_layer!(IdentityLayer);

impl<B: RequestBody> Intercept<B> for IdentityLayer {
    fn intercept<S: Inner<B>>(&self, inner: &mut S, mut request: Request<B>) -> Answer<S::Error> {
        // The call counts as activity on its connection until its response body is done.
        let guard = request
            .extensions()
            .get::<ConnInfo>()
            .map(|conn| conn.activity.begin());
        let peer = request
            .extensions()
            .get::<ConnInfo>()
            .map(|conn| conn.peer.clone());
        let identity = match &peer {
            Some(peer) => authorize(peer, self.clock.as_ref(), &self.revocations).cloned(),
            None => Err(tonic::Status::unauthenticated(
                "the connection carries no TLS client identity",
            )),
        };
        match identity {
            Ok(identity) => {
                request.extensions_mut().insert(identity);
                // A stream keeps being checked while it runs; a unary call was checked now.
                let live = peer
                    .filter(|_| is_streaming(request.uri().path()))
                    .map(|peer| (peer, self.clock.clone(), self.revocations.clone()));
                let response = inner.call(request);
                Box::pin(async move {
                    let mut response = response.await?;
                    if let Some((peer, clock, revocations)) = live {
                        response = response.map(|body| live_body(body, peer, clock, revocations));
                    }
                    Ok(match guard {
                        Some(guard) => response.map(|body| watched(body, guard)),
                        None => response,
                    })
                })
            }
            Err(status) => {
                tracing::info!(reason = %status.message(), path = %request.uri().path(), "call refused: no identity");
                refused(request, status)
            }
        }
    }
}

/// Who `peer` names, if its certificate is valid now, not revoked, and its agency not
/// suspended; else the status that refuses the call (or ends the stream).
fn authorize<'p>(
    peer: &'p PeerCertificate,
    clock: &dyn Clock,
    revocations: &Revocations,
) -> Result<&'p AgencyIdentity, tonic::Status> {
    let identity = peer
        .identity_at(clock.now())
        .map_err(tonic::Status::unauthenticated)?;
    // Checked per call (and per message of a stream), so a revocation or a suspension cuts
    // connections already open too.
    if revocations.is_revoked(&identity.cert_fingerprint) {
        Err(tonic::Status::unauthenticated(
            "the client certificate has been revoked",
        ))
    } else if revocations.is_suspended(identity.agency.as_str()) {
        Err(tonic::Status::permission_denied(format!(
            "agency {} is suspended",
            identity.agency
        )))
    } else {
        Ok(identity)
    }
}

/// The body of a streaming response, re-authorized on every message, on every change of the
/// revoked or suspended sets, and when the certificate expires.
fn live_body(
    body: tonic::body::Body,
    peer: Arc<PeerCertificate>,
    clock: Arc<dyn Clock>,
    revocations: Arc<Revocations>,
) -> tonic::body::Body {
    let changes = revocations.changes();
    let not_after = peer.not_after;
    let check_clock = clock.clone();
    let check = Box::new(move || authorize(&peer, check_clock.as_ref(), &revocations).map(|_| ()));
    let mut live = LiveBody::new(body, check).on_changes(changes);
    if let Some(not_after) = not_after {
        // `identity_at` refuses from the first instant after `notAfter`.
        live = live.until(not_after + time::Duration::milliseconds(1), clock);
    }
    tonic::body::Body::new(live)
}

/// A response body's guard keeps its call counted as in flight until the body is finished or
/// dropped.
impl Watch for CallGuard {}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use time::OffsetDateTime;
    use yrd_domain::clock::SystemClock;
    use yrd_domain::{AgencyId, Profile};

    fn peer(not_after: OffsetDateTime) -> PeerCertificate {
        PeerCertificate {
            identity: Ok(AgencyIdentity {
                agency: AgencyId::parse("370000-AMR").expect("agency id"),
                profile: Profile::System,
                cert_fingerprint: "ab".repeat(32),
            }),
            serial: "01".to_owned(),
            not_after: Some(not_after),
            not_before: None,
        }
    }

    #[test]
    fn authorize_refuses_revoked_suspended_and_expired() {
        let clock = SystemClock;
        let revocations = Revocations::new();
        let valid = peer(clock.now() + time::Duration::days(1));
        assert!(authorize(&valid, &clock, &revocations).is_ok());

        let expired = peer(clock.now() - time::Duration::seconds(1));
        let status = authorize(&expired, &clock, &revocations).expect_err("expired");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);

        revocations.set_for_test(&[], &["370000-AMR"]);
        let status = authorize(&valid, &clock, &revocations).expect_err("suspended");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);

        revocations.set_for_test(&["ab".repeat(32).as_str()], &[]);
        let status = authorize(&valid, &clock, &revocations).expect_err("revoked");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(status.message().contains("revoked"));
    }

    #[tokio::test]
    async fn an_open_stream_ends_when_its_certificate_is_revoked() {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let revocations = Arc::new(Revocations::new());
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>(4);
        let inner = tonic::body::Body::new(http_body_util::StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ));
        let peer = Arc::new(peer(clock.now() + time::Duration::days(1)));
        let mut body = live_body(inner, peer, clock, revocations.clone());
        tx.send(Ok(http_body::Frame::data(bytes::Bytes::from_static(b"m"))))
            .await
            .expect("sent");
        assert!(body.frame().await.expect("frame").expect("ok").is_data());
        let waiting = tokio::spawn(async move { body.frame().await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        revocations.set_for_test(&["ab".repeat(32).as_str()], &[]);
        let frame = tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
            .await
            .expect("ended at the revocation")
            .expect("task")
            .expect("a frame")
            .expect("ok");
        let trailers = frame.into_trailers().expect("trailers");
        assert_eq!(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"16"[..])
        );
        assert!(tx.is_closed(), "the handler's stream was dropped");
    }
}
