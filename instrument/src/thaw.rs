//! A tower layer for `lambda_runtime::Runtime::layer` that logs the thaw
//! (frozen time since the previous invocation) once per invocation, inside
//! the invocation's span.

use std::task::{Context, Poll};

/// Logs a `thaw` event (target `thawtrace`) at the start of each invocation
/// after the first (classic mode only: Lambda Managed Instances are never
/// frozen, and log none). Add it *before* lambda_runtime's `TracingLayer`, so the
/// event lands inside the invocation span:
///
/// ```no_run
/// # async fn handler(_: lambda_runtime::LambdaEvent<serde_json::Value>) -> Result<(), lambda_runtime::Error> { Ok(()) }
/// # async fn run() -> Result<(), lambda_runtime::Error> {
/// use lambda_runtime::{Runtime, layers::TracingLayer, service_fn};
/// Runtime::new(service_fn(handler))
///     .layer(thawtrace_instrument::ThawLogLayer)
///     .layer(TracingLayer::new())
///     .run()
///     .await
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ThawLogLayer;

impl<S> tower::Layer<S> for ThawLogLayer {
    type Service = ThawLogService<S>;

    fn layer(&self, inner: S) -> ThawLogService<S> {
        ThawLogService { inner }
    }
}

/// The service of [`ThawLogLayer`]: any tower service, which it calls after
/// logging the pending thaw.
///
/// ```
/// use tower::{Layer, Service, ServiceExt};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut service = thawtrace_instrument::ThawLogLayer
///     .layer(tower::service_fn(|n: u32| async move { Ok::<_, std::convert::Infallible>(n + 1) }));
/// assert_eq!(service.ready().await.unwrap().call(41).await.unwrap(), 42);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct ThawLogService<S> {
    inner: S,
}

impl<S, R> tower::Service<R> for ThawLogService<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        crate::task::log_pending_thaw();
        self.inner.call(request)
    }
}
