//! Oversized request messages answer `RESOURCE_EXHAUSTED`, naming the size and the limit.
//!
//! tonic enforces `limits.max_message_bytes` itself (each service's
//! `max_decoding_message_size`) and refuses a longer message with `OUT_OF_RANGE`, but the gRPC
//! status-code guide gives `RESOURCE_EXHAUSTED` for a message over a size limit, and a partner
//! cannot tell which limit its message broke. This layer keeps tonic's enforcement and corrects
//! only its answer, without matching tonic's wording: it watches the request body go by and
//! reads the 5-byte header of every gRPC message in it (compressed flag, then the length,
//! big-endian). Only when a header declared more than the limit *and* the call answers
//! `OUT_OF_RANGE` is the answer rewritten. Our own handlers' `OUT_OF_RANGE` answers (a feed
//! cursor beyond the latest event, say) come after a message within the limit, so they pass
//! unchanged.
//!
//! tonic decodes a unary or server-streaming request before the handler runs and answers a
//! refusal "trailers-only", so the status is in the response headers; the contract has no
//! client-streaming method. The layer sits inside the audit layer, so the call's leaf records
//! the answer the partner got.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

/// Rewrites tonic's answer to an oversized request message.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimitLayer {
    limit: usize,
}

impl MessageLimitLayer {
    /// The layer for `limit` bytes, the same value given to each service's
    /// `max_decoding_message_size` (`limits.max_message_bytes`).
    pub fn new(limit: usize) -> Self {
        MessageLimitLayer { limit }
    }
}

impl<S> Layer<S> for MessageLimitLayer {
    type Service = MessageLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageLimitService {
            inner,
            limit: self.limit,
        }
    }
}

/// The service [`MessageLimitLayer`] makes.
#[derive(Debug, Clone)]
pub struct MessageLimitService<S> {
    inner: S,
    limit: usize,
}

impl<S, B> Service<http::Request<B>> for MessageLimitService<S>
where
    S: Service<http::Request<FrameWatch<B>>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limit = self.limit;
        let oversized = Arc::new(AtomicU64::new(0));
        let request = request.map(|body| FrameWatch {
            inner: body,
            scan: FrameScan::default(),
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            oversized: oversized.clone(),
        });
        let call = self.inner.call(request);
        Box::pin(async move {
            let mut response = call.await?;
            let found = oversized.load(Ordering::SeqCst);
            if found > 0 && answers_out_of_range(response.headers()) {
                let status = tonic::Status::resource_exhausted(format!(
                    "the request message is {found} bytes; the limit is {limit} bytes (limits.max_message_bytes)"
                ));
                let headers = response.headers_mut();
                headers.remove(GRPC_STATUS_DETAILS);
                if let Err(e) = status.add_header(headers) {
                    tracing::error!(error = %e, "cannot rewrite an oversized message's answer");
                }
            }
            Ok(response)
        })
    }
}

const GRPC_STATUS_DETAILS: &str = "grpc-status-details-bin";

/// True when the response is a trailers-only `OUT_OF_RANGE`.
fn answers_out_of_range(headers: &http::HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        == Some(tonic::Code::OutOfRange as i32)
}

/// A request body that passes every frame through unchanged and notes the largest message
/// length declared over the limit.
#[derive(Debug)]
pub struct FrameWatch<B> {
    inner: B,
    scan: FrameScan,
    limit: u64,
    /// The largest declared length over the limit; 0 while none was.
    oversized: Arc<AtomicU64>,
}

impl<B> Body for FrameWatch<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                if let Some(longest) = this.scan.feed(data) {
                    if u64::from(longest) > this.limit {
                        this.oversized
                            .fetch_max(u64::from(longest), Ordering::SeqCst);
                    }
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Where a scan of gRPC length-prefixed messages stands: inside a 5-byte header, or skipping
/// the rest of a message. Data may split anywhere, a header included.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct FrameScan {
    header: [u8; 5],
    /// Header bytes read so far (0 to 4; at 5 the header is complete and decoded).
    have: usize,
    /// Message bytes still to skip before the next header.
    skip: u64,
}

impl FrameScan {
    /// Reads `data`, the next bytes of the body, and answers the largest message length
    /// declared by a header completed in it.
    fn feed(&mut self, mut data: &[u8]) -> Option<u32> {
        let mut longest = None;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 5 {
                let [_, a, b, c, d] = self.header;
                let length = u32::from_be_bytes([a, b, c, d]);
                longest = longest.max(Some(length));
                self.skip = u64::from(length);
                self.have = 0;
            }
        }
        longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(length: u32) -> Vec<u8> {
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend(std::iter::repeat_n(7u8, length as usize));
        bytes
    }

    #[test]
    fn a_header_is_read_however_the_body_is_split() {
        let mut body = message(3);
        body.extend(message(300));
        body.extend(message(0));
        body.extend(message(20));
        for chunk in [1, 2, 4, 5, 6, 7, 64, body.len()] {
            let mut scan = FrameScan::default();
            let longest = body.chunks(chunk).filter_map(|c| scan.feed(c)).max();
            assert_eq!(longest, Some(300), "chunks of {chunk}");
            assert_eq!((scan.have, scan.skip), (0, 0), "ends between messages");
        }
    }

    #[test]
    fn the_declared_length_counts_before_the_message_arrives() {
        let mut scan = FrameScan::default();
        assert_eq!(scan.feed(&[0, 0, 0x40]), None);
        assert_eq!(scan.feed(&[0, 1, 9, 9]), Some(0x40_0001));
        assert_eq!(scan.skip, 0x40_0001 - 2);
    }

    #[test]
    fn only_an_out_of_range_answer_is_rewritten() {
        let mut headers = http::HeaderMap::new();
        assert!(!answers_out_of_range(&headers), "a stream that opened");
        headers.insert("grpc-status", http::HeaderValue::from_static("11"));
        assert!(answers_out_of_range(&headers));
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        assert!(!answers_out_of_range(&headers));
    }
}
