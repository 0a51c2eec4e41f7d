//! The layer that counts every call and times it, by method and gRPC status code. It sits
//! outermost, so refusals by the inner layers are counted too. A method label is the gRPC path
//! of a method the server serves, or `other`: a partner sending made-up paths cannot grow the
//! label set.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prost::Message as _;
use tower::{Layer, Service};

use crate::server::metrics::Metrics;
use crate::server::trace::grpc_status;

/// The label of a path the server does not serve.
const OTHER: &str = "other";

/// Counts and times calls into [`Metrics`].
#[derive(Clone, Debug)]
pub struct CallMetricsLayer {
    metrics: Metrics,
    methods: Arc<HashSet<String>>,
}

impl CallMetricsLayer {
    /// The layer over the methods of the descriptor sets given (encoded `FileDescriptorSet`s).
    pub fn new(metrics: Metrics, descriptor_sets: &[&[u8]]) -> Self {
        let mut methods = HashSet::new();
        for encoded in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*encoded) else {
                continue;
            };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let service_name = service.name.unwrap_or_default();
                    for method in service.method {
                        let method_name = method.name.unwrap_or_default();
                        let qualified = if package.is_empty() {
                            format!("/{service_name}/{method_name}")
                        } else {
                            format!("/{package}.{service_name}/{method_name}")
                        };
                        methods.insert(qualified);
                    }
                }
            }
        }
        CallMetricsLayer {
            metrics,
            methods: Arc::new(methods),
        }
    }
}

impl<S> Layer<S> for CallMetricsLayer {
    type Service = CallMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallMetricsService {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`CallMetricsLayer`].
#[derive(Clone, Debug)]
pub struct CallMetricsService<S> {
    inner: S,
    layer: CallMetricsLayer,
}

impl<S, B> Service<http::Request<B>> for CallMetricsService<S>
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
        let path = request.uri().path();
        let method: Arc<str> = if self.layer.methods.contains(path) {
            Arc::from(path)
        } else {
            Arc::from(OTHER)
        };
        let mut call = Call {
            metrics: Some(self.layer.metrics.clone()),
            method,
            started: Instant::now(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            match response.await {
                Ok(response) => {
                    // A trailers-only answer (a refusal, an error) has its status here.
                    if let Some(code) = grpc_status(response.headers()) {
                        call.finish(tonic::Code::from_i32(code));
                    }
                    Ok(response.map(|body| tonic::body::Body::new(MeteredBody { body, call })))
                }
                Err(error) => {
                    call.finish(tonic::Code::Unknown);
                    Err(error)
                }
            }
        })
    }
}

/// One call until its status is known; recorded once.
struct Call {
    /// `None` once recorded.
    metrics: Option<Metrics>,
    method: Arc<str>,
    started: Instant,
}

impl Call {
    fn finish(&mut self, code: tonic::Code) {
        if let Some(metrics) = self.metrics.take() {
            metrics.record_call(&self.method, code, self.started.elapsed());
        }
    }
}

impl Drop for Call {
    /// A body dropped before its trailers: the client went away.
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}

/// A response body that records its call when the trailers carry the status.
struct MeteredBody {
    body: tonic::body::Body,
    call: Call,
}

impl http_body::Body for MeteredBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    this.call.finish(tonic::Code::from_i32(code));
                }
            }
            Poll::Ready(Some(Err(status))) => this.call.finish(status.code()),
            // A body that ended without trailers after headers that carried no status.
            Poll::Ready(None) => this.call.finish(tonic::Code::Ok),
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
