//! A balanced channel, instrumented: endpoint changes are logged
//! (`lb_endpoint_insert`, `lb_endpoint_remove`), and so is every pick
//! (`lb_pick`: which endpoint the balancer chose for a request). Each
//! endpoint connects with the instrumented [`Connector`](crate::Connector)
//! and runs its connection task [`Stamped`](crate::Stamped), so its DNS,
//! connect, keepalive PINGs and timeouts are reported with the peer, like
//! those of [`connect_lazy`](crate::connect_lazy).
//!
//! The balancer is tower's power-of-two-choices over pending requests, as
//! in tonic's own `Channel::balance_channel`; the difference is that the
//! endpoints' services are ours, so a pick can be seen.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc::error::SendError;
use tokio::sync::mpsc::{Receiver, Sender};
use tonic::body::Body;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::load::{CompleteOnResponse, PendingRequests};
use tower::{BoxError, Service};

use crate::{Connector, StampedExecutor, invocation};

type Request = http::Request<Body>;
type Response = http::Response<Body>;
type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send>>;

/// Sends endpoint changes to a channel made by [`balance_channel`], logging each.
#[derive(Debug, Clone)]
pub struct BalanceSender<K> {
    inner: Sender<Change<K, Endpoint>>,
}

impl<K: Debug + Send + 'static> BalanceSender<K> {
    /// Adds (or replaces) an endpoint; it connects with the instrumented
    /// connector, its settings kept as by [`connect_lazy`](crate::connect_lazy).
    ///
    /// # Errors
    ///
    /// The channel is gone.
    pub async fn insert(
        &self,
        key: K,
        endpoint: Endpoint,
    ) -> Result<(), SendError<Change<K, Endpoint>>> {
        let stamp = invocation::current();
        tracing::info!(target: "thawtrace", event = "lb_endpoint_insert", key = ?key, uri = %endpoint.uri(),
            request_id = stamp.request_id.as_deref().unwrap_or("-"), between_invocations = stamp.between_invocations, in_flight = stamp.in_flight,
            "load balancer endpoint added");
        self.inner.send(Change::Insert(key, endpoint)).await
    }

    /// Removes an endpoint.
    ///
    /// # Errors
    ///
    /// The channel is gone.
    pub async fn remove(&self, key: K) -> Result<(), SendError<Change<K, Endpoint>>> {
        let stamp = invocation::current();
        tracing::info!(target: "thawtrace", event = "lb_endpoint_remove", key = ?key,
            request_id = stamp.request_id.as_deref().unwrap_or("-"), between_invocations = stamp.between_invocations, in_flight = stamp.in_flight,
            "load balancer endpoint removed");
        self.inner.send(Change::Remove(key)).await
    }
}

/// One endpoint's channel; logs `lb_pick` for each request sent to it.
struct Picked<K> {
    key: K,
    uri: http::Uri,
    channel: Channel,
}

impl<K: Debug> Service<Request> for Picked<K> {
    type Response = Response;
    type Error = tonic::transport::Error;
    type Future = <Channel as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let stamp = invocation::current();
        tracing::info!(target: "thawtrace", event = "lb_pick", key = ?self.key, uri = %self.uri,
            path = request.uri().path(),
            request_id = stamp.request_id.as_deref().unwrap_or("-"), between_invocations = stamp.between_invocations, in_flight = stamp.in_flight,
            "load balancer picked an endpoint");
        self.channel.call(request)
    }
}

type Member<K> = PendingRequests<Picked<K>, CompleteOnResponse>;

/// The endpoint changes as tower's discovery stream.
struct Discover<K> {
    changes: Receiver<Change<K, Endpoint>>,
}

impl<K: Debug + Clone + Unpin> futures_core::Stream for Discover<K> {
    type Item = Result<tower::discover::Change<K, Member<K>>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(match std::task::ready!(self.changes.poll_recv(cx)) {
            None => None,
            Some(Change::Insert(key, endpoint)) => {
                let uri = endpoint.uri().clone();
                let connector = Connector::from(&endpoint);
                let channel = endpoint
                    .executor(StampedExecutor)
                    .connect_with_connector_lazy(connector);
                let member = PendingRequests::new(
                    Picked {
                        key: key.clone(),
                        uri,
                        channel,
                    },
                    CompleteOnResponse::default(),
                );
                Some(Ok(tower::discover::Change::Insert(key, member)))
            }
            Some(Change::Remove(key)) => Some(Ok(tower::discover::Change::Remove(key))),
        })
    }
}

/// A load-balanced channel: clone it freely, use it like tonic's `Channel`
/// (generated clients take it, `tonic::client::Grpc::new` too).
#[derive(Clone)]
pub struct BalancedChannel {
    inner: Buffer<Request, ResponseFuture>,
}

impl Debug for BalancedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalancedChannel").finish_non_exhaustive()
    }
}

impl Service<Request> for BalancedChannel {
    type Response = Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        Box::pin(self.inner.call(request))
    }
}

/// A balanced channel like `Channel::balance_channel`, instrumented: every
/// endpoint connects with the instrumented connector and stamped tasks, and
/// every pick is logged.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// let (channel, endpoints) = thawtrace_instrument::balance_channel::<&'static str>(8);
/// let endpoint = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
///     .http2_keep_alive_interval(Duration::from_secs(5))
///     .keep_alive_timeout(Duration::from_secs(1));
/// endpoints.insert("zone-a", endpoint).await.unwrap();
/// endpoints.remove("zone-a").await.unwrap();
/// # drop(channel);
/// # });
/// ```
pub fn balance_channel<K>(capacity: usize) -> (BalancedChannel, BalanceSender<K>)
where
    K: Hash + Eq + Send + Sync + Clone + Debug + Unpin + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
    let balance = Balance::new(Discover { changes: rx });
    let service = tower::util::BoxService::new(balance);
    let (inner, worker) = Buffer::pair(service, capacity.max(1));
    crate::spawn(worker);
    (BalancedChannel { inner }, BalanceSender { inner: tx })
}
