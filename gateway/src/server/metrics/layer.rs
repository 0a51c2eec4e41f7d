//! The layer that counts every call and times it, by method and gRPC status code. It sits
//! outermost, so refusals by the inner layers are counted too. A method label is the gRPC path
//! of a method the server serves, or `other`: a partner sending made-up paths cannot grow the
//! label set.

use std::collections::HashSet;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use prost::Message as _;

use crate::server::intercept::{
    Answer, Inner, Intercept, Polled, Request, Watch, intercepted_layer, watched,
};
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

intercepted_layer!(CallMetricsLayer);

impl<B> Intercept<B> for CallMetricsLayer {
    fn intercept<S: Inner<B>>(&self, inner: &mut S, request: Request<B>) -> Answer<S::Error> {
        let path = request.uri().path();
        let method: Arc<str> = if self.methods.contains(path) {
            Arc::from(path)
        } else {
            Arc::from(OTHER)
        };
        let mut call = Call {
            metrics: Some(self.metrics.clone()),
            method,
            started: Instant::now(),
        };
        let response = inner.call(request);
        Box::pin(async move {
            match response.await {
                Ok(response) => {
                    // A trailers-only answer (a refusal, an error) has its status here.
                    if let Some(code) = grpc_status(response.headers()) {
                        call.finish(tonic::Code::from_i32(code));
                    }
                    Ok(response.map(|body| watched(body, call)))
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

/// A response body's call, recorded when its trailers carry the status.
impl Watch for Call {
    fn saw(&mut self, polled: &Polled) {
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.finish(tonic::Code::from_i32(code));
                }
            }
            Poll::Ready(Some(Err(status))) => self.finish(status.code()),
            // A body that ended without trailers after headers that carried no status.
            Poll::Ready(None) => self.finish(tonic::Code::Ok),
            Poll::Pending => {}
        }
    }
}
