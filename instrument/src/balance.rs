//! tonic's balanced channel, stamped: endpoint changes are logged
//! (`lb_endpoint_insert`, `lb_endpoint_remove`) and every connection task
//! the balancer spawns runs [`Stamped`](crate::Stamped), so its keepalive
//! PINGs and timeouts are reported like those of [`connect_lazy`](crate::connect_lazy)'s
//! (with the peer unknown: the balancer connects with tonic's connector).

use std::fmt::Debug;
use std::hash::Hash;

use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::SendError;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

use crate::{StampedExecutor, invocation};

/// Sends endpoint changes to a channel made by [`balance_channel`], logging each.
#[derive(Debug, Clone)]
pub struct BalanceSender<K> {
    inner: Sender<Change<K, Endpoint>>,
}

impl<K: Debug + Send + 'static> BalanceSender<K> {
    /// Adds (or replaces) an endpoint; its tasks are stamped, your settings kept.
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
            request_id = stamp.request_id.as_deref().unwrap_or("-"), between_invocations = stamp.between_invocations,
            "load balancer endpoint added");
        self.inner
            .send(Change::Insert(key, endpoint.executor(StampedExecutor)))
            .await
    }

    /// Removes an endpoint.
    ///
    /// # Errors
    ///
    /// The channel is gone.
    pub async fn remove(&self, key: K) -> Result<(), SendError<Change<K, Endpoint>>> {
        let stamp = invocation::current();
        tracing::info!(target: "thawtrace", event = "lb_endpoint_remove", key = ?key,
            request_id = stamp.request_id.as_deref().unwrap_or("-"), between_invocations = stamp.between_invocations,
            "load balancer endpoint removed");
        self.inner.send(Change::Remove(key)).await
    }
}

/// `Channel::balance_channel`, stamped and logged.
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
pub fn balance_channel<K>(capacity: usize) -> (Channel, BalanceSender<K>)
where
    K: Hash + Eq + Send + Clone + Debug + 'static,
{
    let (channel, inner) = Channel::balance_channel_with_executor(capacity, StampedExecutor);
    (channel, BalanceSender { inner })
}
