//! The tower service under every typed client: a bearer token, a `traceparent`, and retries
//! of the calls that may be retried.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http_body_util::{BodyExt as _, Full};
use tonic::body::Body;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::{Service, ServiceExt as _};

use crate::retry::{RetryPolicy, idempotency};
use crate::token::{Token, TokenSource};
use crate::trace::{TRACEPARENT, TraceParent};

/// The error type of [`Authed`]: a `tonic::Status` (or a transport error) in a box, which the
/// generated clients turn back into the `Status` they return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A channel whose calls carry the access token, a `traceparent`, and are retried when that
/// is safe. Every typed client of a [`crate::Client`] runs on one; it is cheap to clone and all
/// clones share the connection and the token.
///
/// Per call:
///
/// 1. a `traceparent` is added unless the request has one (see [`crate::trace`]);
/// 2. for every method but `TokenService`'s, `authorization: Bearer <token>` is added, the
///    token fetched or renewed first when due (see [`crate::token`]);
/// 3. an answer of `UNAVAILABLE` or `RESOURCE_EXHAUSTED` to a method that may be retried (see
///    [`crate::retry`]) is retried after the server's `RetryInfo` delay or a jittered backoff,
///    up to the policy's attempts; the last answer is returned as it came;
/// 4. an answer of `UNAUTHENTICATED` renews the token and sends the call once more. The
///    exchange refuses a bad token before any handler runs, so this re-sends nothing that took
///    effect.
///
/// The request message is kept in memory for the retries (requests are single messages; v1
/// has no client-streaming method). Only answers that fail before any response message
/// (gRPC "trailers-only" answers, and connections that fail) are retried; a stream that breaks
/// later is the caller's to resume (the feed consumer does).
#[derive(Clone)]
pub struct Authed {
    channel: Channel,
    shared: Arc<Shared>,
}

struct Shared {
    tokens: Arc<TokenSource>,
    policy: RetryPolicy,
    /// Attempts sent again after a retryable failure, over the client's life.
    retries: AtomicU64,
}

impl std::fmt::Debug for Authed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authed")
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

impl Authed {
    /// Calls over `channel` with tokens from `tokens`, retried by `policy`.
    pub fn new(channel: Channel, tokens: Arc<TokenSource>, policy: RetryPolicy) -> Authed {
        Authed {
            channel,
            shared: Arc::new(Shared {
                tokens,
                policy,
                retries: AtomicU64::new(0),
            }),
        }
    }

    /// How many times a call was sent again (or its token asked for again) after
    /// `UNAVAILABLE` or `RESOURCE_EXHAUSTED`, over the life of this channel and its clones;
    /// renewals after `UNAUTHENTICATED` are not counted.
    pub fn retries(&self) -> u64 {
        self.shared.retries.load(Ordering::Relaxed)
    }
}

impl Service<http::Request<Body>> for Authed {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each attempt waits for the channel itself (`send`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(send(self.channel.clone(), self.shared.clone(), request))
    }
}

/// Whether the method at `path` needs the bearer token: all of the exchange's but
/// `TokenService`'s, which authenticate by the certificate alone.
fn needs_token(path: &str) -> bool {
    path.starts_with("/yrd.exchange.v1.") && !path.starts_with("/yrd.exchange.v1.TokenService/")
}

async fn send(
    mut channel: Channel,
    shared: Arc<Shared>,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, BoxError> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let retryable = idempotency(&path).retryable();
    let with_token = needs_token(&path);
    if !parts.headers.contains_key(TRACEPARENT) {
        if let Ok(value) = TraceParent::random().to_string().parse() {
            parts.headers.insert(TRACEPARENT, value);
        }
    }
    let message = body
        .collect()
        .await
        .map_err(|status| Box::new(status) as BoxError)?
        .to_bytes();

    let mut failures = 0u32;
    let mut renewed = false;
    let mut refused: Option<Arc<Token>> = None;
    loop {
        let mut sent_token = None;
        if with_token {
            let token = match refused.take() {
                Some(old) => shared.tokens.renew_after_refusal(&old).await,
                None => shared.tokens.token().await,
            };
            match token {
                Ok(token) => {
                    parts.headers.insert(AUTHORIZATION, token.header().clone());
                    sent_token = Some(token);
                }
                Err(status) => {
                    // No token, so the call was not sent: waiting and trying again is safe
                    // for any method.
                    failures += 1;
                    match shared.policy.delay_after(&status, failures) {
                        Some(wait) => {
                            tracing::debug!(%path, code = ?status.code(), ?wait, "token not issued; retrying");
                            shared.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        None => return Err(Box::new(status)),
                    }
                }
            }
        }

        let attempt = rebuild(&parts, message.clone());
        let outcome = match channel.ready().await {
            Ok(ready) => ready.call(attempt).await,
            Err(e) => Err(e),
        };
        let (status, response) = match outcome {
            Ok(response) => match Status::from_header_map(response.headers()) {
                Some(status) if status.code() != Code::Ok => (status, Some(response)),
                _ => return Ok(response),
            },
            Err(error) => (Status::from_error(Box::new(error)), None),
        };

        if status.code() == Code::Unauthenticated && !renewed && sent_token.is_some() {
            renewed = true;
            refused = sent_token;
            tracing::debug!(%path, "token refused; renewing it and sending the call again");
            continue;
        }
        failures += 1;
        let wait = if retryable {
            shared.policy.delay_after(&status, failures)
        } else {
            None
        };
        match wait {
            Some(wait) => {
                tracing::debug!(%path, code = ?status.code(), failures, ?wait, "retrying");
                shared.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
            }
            None => {
                return match response {
                    Some(response) => Ok(response),
                    None => Err(Box::new(status)),
                };
            }
        }
    }
}

/// The request of `parts` with `message` as its body, for one attempt.
fn rebuild(parts: &http::request::Parts, message: Bytes) -> http::Request<Body> {
    let mut request = http::Request::new(Body::new(Full::new(message)));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    *request.extensions_mut() = parts.extensions.clone();
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_service_calls_carry_no_token() {
        assert!(!needs_token("/yrd.exchange.v1.TokenService/IssueToken"));
        assert!(!needs_token("/grpc.health.v1.Health/Check"));
        assert!(needs_token("/yrd.exchange.v1.FeedService/Subscribe"));
    }
}
