//! Refusing a call without hurting its connection.
//!
//! A layer that answers before the handler ran has not read the request body. If it answered
//! at once, HTTP/2 would reset the stream (`RST_STREAM(NO_ERROR)`) and then reset it again when
//! the client's body arrives (`STREAM_CLOSED`); h2 counts those resets against the connection's
//! reset-flood guard (`limits.max_local_error_reset_streams`) for the connection's whole life,
//! so a burst of refusals — a rate-limited agency, say — would end in `GOAWAY
//! ENHANCE_YOUR_CALM` and kill every call on that connection, the legitimate ones too.
//! Reading the (small, bounded) body first lets the refusal close the stream normally.

use std::time::Duration;

use http_body_util::{BodyExt as _, Limited};

use crate::server::intercept::{Answer, Request, RequestBody};

/// The longest a refusal waits for the rest of the request body: unary requests arrive with
/// their headers; a client stream that is still sending is cut after this.
const DRAIN_WAIT: Duration = Duration::from_millis(250);
/// The most of a refused request body that is read (a unary message is far smaller).
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

/// Reads (and drops) the request body, bounded in size and time, then answers `status`.
pub async fn after_draining<B>(body: B, status: tonic::Status) -> http::Response<tonic::body::Body>
where
    B: http_body::Body + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = tokio::time::timeout(DRAIN_WAIT, Limited::new(body, DRAIN_LIMIT).collect()).await;
    status.into_http()
}

/// A layer's refusal of `request` with `status`, after [`after_draining`] its body.
pub fn refused<B: RequestBody, E>(request: Request<B>, status: tonic::Status) -> Answer<E> {
    Box::pin(async move { Ok(after_draining(request.into_body(), status).await) })
}
