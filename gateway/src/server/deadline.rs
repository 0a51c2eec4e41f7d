//! The request timeout: a call whose answer has not come within `limits.request_timeout_ms`, or
//! within the deadline its client sent (`grpc-timeout`), whichever is shorter, is answered
//! `DEADLINE_EXCEEDED` and its handler dropped. A stream is timed to its opening (its response
//! headers), not for as long as it streams.
//!
//! tonic's own server timeout answers `CANCELLED` instead, which tells the partner the call was
//! cancelled (by itself, usually) rather than that it ran out of time; docs/reliability.md
//! ("Request timeout") gives the reasoning from gRPC's status codes. The layer sits inside the
//! audit and metrics layers, so a call cut by it is counted and logged with the code it was
//! answered.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

/// Cuts calls at the request timeout or the client's deadline.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    /// The layer for a request timeout of `limit` (`limits.request_timeout_ms`).
    pub fn new(limit: Duration) -> Self {
        DeadlineLayer { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

/// The service [`DeadlineLayer`] makes.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (limit, whose) = match grpc_timeout(request.headers()) {
            Some(client) if client < self.limit => (client, "the deadline the client sent"),
            _ => (self.limit, "the exchange's request timeout"),
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, answer).await {
                Ok(answer) => answer,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call was not answered within {} ms ({whose}) and was cut; a write may \
                     still have been applied: send it again with the same request_id to learn \
                     its answer",
                    limit.as_millis()
                ))
                .into_http()),
            }
        })
    }
}

/// The client's deadline from its `grpc-timeout` header (gRPC over HTTP/2: one to eight digits
/// and a unit, `H`, `M`, `S`, `m`, `u` or `n`); `None` when absent or malformed.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3_600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler answering `OK` after `delay`.
    fn slow(
        delay: Duration,
    ) -> impl Service<
        http::Request<()>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone {
        tower::service_fn(move |_request: http::Request<()>| async move {
            tokio::time::sleep(delay).await;
            Ok(http::Response::new(tonic::body::Body::empty()))
        })
    }

    fn request(grpc_timeout: Option<&str>) -> http::Request<()> {
        let mut request = http::Request::new(());
        if let Some(value) = grpc_timeout {
            request
                .headers_mut()
                .insert("grpc-timeout", value.parse().expect("a header value"));
        }
        request
    }

    /// The gRPC code of a response: `grpc-status` of its headers, `0` (OK) when absent.
    fn code(response: &http::Response<tonic::body::Body>) -> tonic::Code {
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        tonic::Code::from_i32(code)
    }

    /// The call took `limit` (and not much more: the test machine may be slow).
    fn within(started: tokio::time::Instant, limit: Duration) {
        let took = started.elapsed();
        assert!(
            took >= limit && took < limit + Duration::from_secs(2),
            "took {took:?}, the limit was {limit:?}"
        );
    }

    #[tokio::test]
    async fn a_call_past_the_request_timeout_is_answered_deadline_exceeded() {
        let mut cut =
            DeadlineLayer::new(Duration::from_millis(300)).layer(slow(Duration::from_secs(5)));
        let started = tokio::time::Instant::now();
        let response = cut.call(request(None)).await.expect("an answer");
        assert_eq!(code(&response), tonic::Code::DeadlineExceeded);
        within(started, Duration::from_millis(300));
        let message = response.headers()["grpc-message"].to_str().expect("text");
        assert!(message.contains("timeout"), "{message}");

        let mut fast =
            DeadlineLayer::new(Duration::from_millis(300)).layer(slow(Duration::from_millis(200)));
        let response = fast.call(request(None)).await.expect("an answer");
        assert_eq!(code(&response), tonic::Code::Ok);
    }

    #[tokio::test]
    async fn the_clients_shorter_deadline_cuts_first_and_a_longer_one_does_not_extend() {
        let layer = DeadlineLayer::new(Duration::from_secs(30));
        // The client's 250 ms, shorter than the exchange's 30 s, cuts the call.
        let started = tokio::time::Instant::now();
        let response = layer
            .layer(slow(Duration::from_secs(60)))
            .call(request(Some("250m")))
            .await
            .expect("an answer");
        assert_eq!(code(&response), tonic::Code::DeadlineExceeded);
        within(started, Duration::from_millis(250));

        // The client's two minutes do not extend the exchange's 200 ms.
        let short = DeadlineLayer::new(Duration::from_millis(200));
        let started = tokio::time::Instant::now();
        let response = short
            .layer(slow(Duration::from_secs(60)))
            .call(request(Some("2M")))
            .await
            .expect("an answer");
        assert_eq!(code(&response), tonic::Code::DeadlineExceeded);
        within(started, Duration::from_millis(200));
    }

    #[test]
    fn grpc_timeout_is_read_by_its_unit_and_malformed_ones_ignored() {
        let read = |value: &str| grpc_timeout(request(Some(value)).headers());
        assert_eq!(read("1H"), Some(Duration::from_secs(3_600)));
        assert_eq!(read("2M"), Some(Duration::from_secs(120)));
        assert_eq!(read("3S"), Some(Duration::from_secs(3)));
        assert_eq!(read("250m"), Some(Duration::from_millis(250)));
        assert_eq!(read("7u"), Some(Duration::from_micros(7)));
        assert_eq!(read("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "10", "10s", "123456789S", "-1S", "1.5S"] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }
}
