//! The one `tower::Service` the gateway's layers share. Each layer (metrics, trace, audit,
//! identity, agency limits, auth; their order is in docs/architecture.md) says
//! only what it does to a call, as an [`Intercept`]; [`Intercepted`] is the service around it,
//! so the readiness and boxing plumbing is written once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::Service;

/// What every layer answers: tonic's response, its body possibly wrapped by the layer.
pub type Response = http::Response<tonic::body::Body>;

/// The future of a call through a layer: its response, or the inner service's error.
pub type Answer<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

/// A request body as tonic's server hands it on: bytes, sendable, errors boxable.
pub trait RequestBody:
    http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> RequestBody for B where
    B: http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}

/// A request whose body is `B`.
pub type Request<B> = http::Request<B>;

/// The service inside a layer, taking requests with bodies `B`: the next layer, or tonic's
/// router.
pub trait Inner<B>:
    Service<Request<B>, Response = Response, Future: Send + 'static> + Clone + Send + 'static
{
}

impl<B, S> Inner<B> for S where
    S: Service<Request<B>, Response = Response, Future: Send + 'static> + Clone + Send + 'static
{
}

/// What one layer does to a call whose request body is `B`. (The message-limit layer, which
/// hands the inner service a wrapped request body, is a service of its own.)
pub trait Intercept<B> {
    /// Serves `request` through `inner`, which is ready; a layer that calls it only after an
    /// await takes it with [`take_ready`].
    fn intercept<S: Inner<B>>(&self, inner: &mut S, request: Request<B>) -> Answer<S::Error>;
}

/// `impl Layer` for a layer type that is an [`Intercept`]: its service is [`Intercepted`].
macro_rules! intercepted_layer {
    ($layer:ty) => {
        impl<S> tower::Layer<S> for $layer {
            type Service = $crate::server::intercept::Intercepted<S, $layer>;

            fn layer(&self, inner: S) -> Self::Service {
                $crate::server::intercept::Intercepted::new(inner, self.clone())
            }
        }
    };
}
pub(crate) use intercepted_layer;

/// The service a layer makes: the inner service and the layer, whose state it shares.
#[derive(Debug, Clone)]
pub struct Intercepted<S, L> {
    inner: S,
    layer: L,
}

impl<S, L> Intercepted<S, L> {
    /// `layer` in front of `inner`.
    pub fn new(inner: S, layer: L) -> Self {
        Intercepted { inner, layer }
    }
}

impl<S, B, L> Service<Request<B>> for Intercepted<S, L>
where
    L: Intercept<B>,
    S: Inner<B>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.layer.intercept(&mut self.inner, request)
    }
}

/// The inner service that was driven to readiness, for a call that uses it after an await; a
/// clone takes its place (tower's usual swap).
pub fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// One poll of a response body's frames.
pub type Polled = Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>>;

/// What a layer does as its call's response body goes by (the body's frames pass unchanged):
/// count it, trace it, log it, or only hold something until the body is done.
pub trait Watch: Unpin {
    /// Runs one poll of the body; a watch that must be current while the body works (a span)
    /// wraps it.
    fn around(&mut self, poll: impl FnOnce() -> Polled) -> Polled {
        poll()
    }

    /// Sees what one poll of the body gave.
    fn saw(&mut self, _polled: &Polled) {}

    /// The body is being dropped, before the body it wraps is.
    fn dropping(&mut self) {}
}

/// A response body that `watch` watches.
pub struct Watched<W: Watch> {
    body: tonic::body::Body,
    watch: W,
}

/// `body`, watched by `watch`.
pub fn watched<W: Watch + Send + 'static>(body: tonic::body::Body, watch: W) -> tonic::body::Body {
    tonic::body::Body::new(Watched { body, watch })
}

impl<W: Watch> http_body::Body for Watched<W> {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let Watched { body, watch } = &mut *self;
        let polled = watch.around(|| Pin::new(body).poll_frame(cx));
        watch.saw(&polled);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl<W: Watch> Drop for Watched<W> {
    fn drop(&mut self) {
        self.watch.dropping();
    }
}
