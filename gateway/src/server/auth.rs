//! The token layer: every business call needs `authorization: Bearer <token>`, an ES256 token
//! the exchange issued to the certificate of this very connection (RFC 8705 `cnf.x5t#S256`),
//! granting the role the method requires (`yrd_domain::roles::METHOD_ROLES`).
//!
//! Public methods (token issuance, JWKS, health, reflection) pass without a token; they are
//! still behind the identity layer, so only holders of an exchange certificate reach them.
//! Unknown paths pass to the router, which answers `UNIMPLEMENTED`. A refused token answers
//! `UNAUTHENTICATED` with the reason (never the token or key material); a missing role answers
//! `PERMISSION_DENIED` naming the role. On success the [`Caller`] goes into the extensions.
//!
//! A token authorizes a stream only until its `exp`: the response body of a streaming call is a
//! [`LiveBody`](crate::server::live::LiveBody) that ends the stream with `UNAUTHENTICATED` ("expired")
//! when the token expires, as the next unary call with that token would be refused.

use std::sync::Arc;

use yrd_admin::TokenKeys;
use yrd_admin::token::{TokenRefusal, TokenSettings, TokenVerifier, VerifiedToken, VerifiedTokens};
use yrd_domain::AgencyIdentity;
use yrd_domain::audit::TokenNote;
use yrd_domain::clock::Clock;
use yrd_domain::roles::{Caller, Role, RoleRequirement, required_role};

use crate::server::intercept::{
    Answer, Inner, Intercept, Request, RequestBody, intercepted_layer, take_ready,
};
use crate::server::refuse::refused;

/// Verifies bearer tokens and roles.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    keys: Arc<TokenKeys>,
    settings: TokenSettings,
    clock: Arc<dyn Clock>,
    /// Tokens whose signature was verified before (see `yrd_admin::token::cache`).
    verified: VerifiedTokens,
}

impl AuthLayer {
    /// The layer, verifying with `keys` against `settings` at the time `clock` tells.
    pub fn new(keys: Arc<TokenKeys>, settings: TokenSettings, clock: Arc<dyn Clock>) -> Self {
        AuthLayer {
            shared: Arc::new(Shared {
                keys,
                settings,
                clock,
                verified: VerifiedTokens::default(),
            }),
        }
    }
}

intercepted_layer!(AuthLayer);

/// Why a call was not authorized.
enum Denied {
    Unauthenticated(String),
    PermissionDenied(String),
}

impl Shared {
    #[tracing::instrument(skip_all, name = "token.verify")]
    async fn verify(
        &self,
        token: &str,
        identity: &AgencyIdentity,
    ) -> Result<VerifiedToken, TokenRefusal> {
        let attempt = || {
            let ring = self.keys.ring();
            self.verified.verify(
                &TokenVerifier::new(&self.settings, &ring),
                token,
                &identity.cert_fingerprint,
                self.clock.now(),
            )
        };
        match attempt() {
            // Another replica may have rotated a key in: reload once and try again.
            Err(TokenRefusal::UnknownKey) if self.keys.reload_for_unknown_kid().await => attempt(),
            outcome => outcome,
        }
    }

    async fn authorize(
        &self,
        role: Role,
        header: Option<String>,
        identity: Option<AgencyIdentity>,
    ) -> Result<(Caller, i64), Denied> {
        let identity = identity.ok_or_else(|| {
            Denied::Unauthenticated("no client certificate identity on this call".into())
        })?;
        let header = header.ok_or_else(|| {
            Denied::Unauthenticated(
                "missing access token: send `authorization: Bearer <token>` from TokenService.IssueToken"
                    .into(),
            )
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Denied::Unauthenticated("the authorization header must be `Bearer <token>`".into())
            })?;
        let verified = self
            .verify(token, &identity)
            .await
            .map_err(|refusal| Denied::Unauthenticated(refusal.to_string()))?;
        if !verified.has_role(role) {
            return Err(Denied::PermissionDenied(format!(
                "this method needs the role {role}, which {} of {} is not granted",
                identity.profile.certificate(),
                identity.agency
            )));
        }
        Ok((
            Caller {
                identity,
                roles: verified.roles.clone(),
                officer: verified.officer.as_ref().map(|o| o.as_str().to_owned()),
                token_id: verified.claims.jti.to_string(),
            },
            verified.claims.exp,
        ))
    }
}

impl<B: RequestBody> Intercept<B> for AuthLayer {
    fn intercept<S: Inner<B>>(&self, inner: &mut S, mut request: Request<B>) -> Answer<S::Error> {
        let mut inner = take_ready(inner);
        let role = match required_role(request.uri().path()) {
            RoleRequirement::Public | RoleRequirement::Unknown => {
                return Box::pin(inner.call(request));
            }
            RoleRequirement::Role(role) => role,
        };
        let shared = self.shared.clone();
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let identity = request.extensions().get::<AgencyIdentity>().cloned();
        Box::pin(async move {
            match shared.authorize(role, header, identity).await {
                Ok((caller, exp)) => {
                    tracing::Span::current().record("agency", caller.agency().as_str());
                    // For the audit layer, in the answer (docs/architecture.md, "The exchange log").
                    let token = TokenNote {
                        officer: caller.officer.clone().unwrap_or_default(),
                        token_id: caller.token_id.clone(),
                    };
                    request.extensions_mut().insert(caller);
                    let streaming = crate::server::live::is_streaming(request.uri().path());
                    let mut response = inner.call(request).await?;
                    response.extensions_mut().insert(token);
                    Ok(if streaming {
                        response.map(|body| expiring_body(body, exp, shared.clock.clone()))
                    } else {
                        response
                    })
                }
                Err(Denied::Unauthenticated(why)) => {
                    tracing::info!(reason = %why, path = %request.uri().path(), "call refused: token");
                    let status = tonic::Status::unauthenticated(why);
                    refused(request, status).await
                }
                Err(Denied::PermissionDenied(why)) => {
                    tracing::info!(reason = %why, path = %request.uri().path(), "call refused: role");
                    let status = tonic::Status::permission_denied(why);
                    refused(request, status).await
                }
            }
        })
    }
}

/// The body of a streaming response, ended with `UNAUTHENTICATED` from the second of the
/// token's `exp` on (the verifier allows no leeway on `exp`).
fn expiring_body(body: tonic::body::Body, exp: i64, clock: Arc<dyn Clock>) -> tonic::body::Body {
    let check_clock = clock.clone();
    let check = Box::new(move || {
        if check_clock.now().unix_timestamp() >= exp {
            // The words a unary call with this token now gets.
            Err(tonic::Status::unauthenticated(
                TokenRefusal::Expired.to_string(),
            ))
        } else {
            Ok(())
        }
    });
    let live = crate::server::live::LiveBody::new(body, check);
    tonic::body::Body::new(match time::OffsetDateTime::from_unix_timestamp(exp) {
        Ok(at) => live.until(at, clock),
        // An `exp` beyond the calendar never comes; the per-message check still holds.
        Err(_) => live,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use yrd_domain::clock::SystemClock;

    #[tokio::test]
    async fn an_open_stream_ends_at_its_tokens_exp() {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let exp = clock.now().unix_timestamp() + 1;
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>(4);
        let inner = tonic::body::Body::new(http_body_util::StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ));
        let body = expiring_body(inner, exp, clock.clone());
        // Idle until the token expires: the expiry alone ends the stream.
        let frame = tokio::time::timeout(std::time::Duration::from_secs(3), {
            let mut body = body;
            async move { body.frame().await }
        })
        .await
        .expect("ended at exp")
        .expect("a frame")
        .expect("ok");
        assert!(clock.now().unix_timestamp() >= exp);
        let trailers = frame.into_trailers().expect("trailers");
        assert_eq!(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"16"[..])
        );
        assert!(tx.is_closed(), "the handler's stream was dropped");
    }
}
