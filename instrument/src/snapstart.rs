//! SnapStart: the `restore` event, and a hook that re-creates channels.
//!
//! A SnapStart function runs its init once, is snapshotted, and every new
//! execution environment is restored from that snapshot. A connection
//! opened during init is in the snapshot; after the restore its socket is
//! gone (the peer never saw the new microVM), and the first call on it
//! fails. The `restore` event names the connections alive at the restore,
//! so a log reader can tell a connection opened before the restore from one
//! opened after. On AWS it is the only record of them in the restored
//! environment's log stream: Lambda runs a SnapStart function's init when
//! the version is published, so the init's `connect_done` lines are in
//! that environment's log, not in the restored ones'. Connection ids are
//! unique per snapshot (the counter is in it), so a later event with one of
//! the named `conn` ids (a `connection_closed` or `keepalive_timeout` at the
//! first use) is about a connection opened before the restore.

use crate::{invocation, task};

/// Logs the `restore` event (target `thawtrace`, INFO): the environment was
/// restored from a SnapStart snapshot. `conns` lists the ids of the
/// connections alive at the restore (opened before the snapshot),
/// comma-separated, or `-` when there are none, and `peers` their peers in
/// the same order (`unknown` for a connection of another connector), so
/// each `#<conn> <peer>` connection key is in the line; `request_id` and
/// `between_invocations` are as for any event (`-` and `false` before the
/// first invocation).
///
/// Call it first in your after-restore hook; `OnRestore` does (feature
/// `snapstart`).
///
/// ```
/// use tracing_subscriber::prelude::*;
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Clone, Default)]
/// # struct Log(Arc<Mutex<Vec<u8>>>);
/// # impl std::io::Write for Log {
/// #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
/// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// # }
/// let log = Log::default(); // the function's stdout
/// let writer = log.clone();
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().json().with_writer(move || writer.clone()))
///     .with(thawtrace_instrument::layer());
/// tracing::subscriber::with_default(subscriber, thawtrace_instrument::log_restore);
///
/// let line = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
/// let event: serde_json::Value = serde_json::from_str(&line).unwrap();
/// assert_eq!(event["fields"]["event"], "restore");
/// // The connections alive now: none in this example ("-").
/// assert!(event["fields"]["conns"].is_string() && event["fields"]["peers"].is_string());
/// ```
pub fn log_restore() {
    let stamp = invocation::current();
    let live = task::live_connections();
    let conns = comma_list(live.iter().map(|(id, _)| id.to_string()));
    let peers = comma_list(
        live.iter()
            .map(|(_, peer)| peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string())),
    );
    tracing::info!(target: "thawtrace", event = "restore", conns = %conns, peers = %peers,
        request_id = stamp.request_id.as_deref().unwrap_or("-"),
        between_invocations = stamp.between_invocations, in_flight = stamp.in_flight,
        "restored from a SnapStart snapshot");
}

/// `a,b,c`, or `-` for none.
fn comma_list(items: impl Iterator<Item = String>) -> String {
    let list = items.collect::<Vec<_>>().join(",");
    if list.is_empty() {
        "-".to_owned()
    } else {
        list
    }
}

/// A lambda_runtime `SnapStartResource` (feature `snapstart`): after a
/// restore it logs the `restore` event ([`log_restore`]), then runs your
/// hook, typically re-creating the channels made during init so that no
/// call goes out on a connection the snapshot carried over.
///
/// Register it first (lambda_runtime runs `after_restore` hooks in
/// registration order), so the `restore` line precedes everything the
/// other hooks log. Outside SnapStart (`AWS_LAMBDA_INITIALIZATION_TYPE`
/// is not `snap-start`) lambda_runtime never calls it.
///
/// ```no_run
/// use std::sync::{Arc, RwLock};
/// use lambda_runtime::{Error, LambdaEvent, Runtime, service_fn};
/// use tonic::transport::{Channel, Endpoint};
///
/// fn endpoint() -> Endpoint {
///     Endpoint::from_static("http://orders.internal:50051")
/// }
///
/// static CHANNEL: RwLock<Option<Channel>> = RwLock::new(None);
///
/// # async fn handler(_: LambdaEvent<serde_json::Value>) -> Result<(), Error> { Ok(()) }
/// #[tokio::main]
/// async fn main() -> Result<(), Error> {
///     thawtrace_instrument::init();
///     *CHANNEL.write().unwrap() = Some(thawtrace_instrument::connect_lazy(endpoint()));
///     let restore = thawtrace_instrument::OnRestore::new(|| {
///         *CHANNEL.write().unwrap() = Some(thawtrace_instrument::connect_lazy(endpoint()));
///     });
///     Runtime::new(service_fn(handler))
///         .register_snapstart_resource(Arc::new(restore))
///         .run()
///         .await
/// }
/// ```
#[cfg(feature = "snapstart")]
pub struct OnRestore {
    hook: Box<dyn Fn() + Send + Sync>,
}

#[cfg(feature = "snapstart")]
impl OnRestore {
    /// Logs the restore, then runs `hook`.
    ///
    /// ```
    /// let resource = thawtrace_instrument::OnRestore::new(|| println!("re-create the channels"));
    /// # drop(resource);
    /// ```
    pub fn new(hook: impl Fn() + Send + Sync + 'static) -> Self {
        OnRestore {
            hook: Box::new(hook),
        }
    }

    /// Only logs the restore: the channels made during init are kept.
    ///
    /// ```
    /// let resource = thawtrace_instrument::OnRestore::log_only();
    /// # drop(resource);
    /// ```
    pub fn log_only() -> Self {
        OnRestore::new(|| {})
    }
}

#[cfg(feature = "snapstart")]
impl std::fmt::Debug for OnRestore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnRestore").finish_non_exhaustive()
    }
}

#[cfg(feature = "snapstart")]
impl lambda_runtime::SnapStartResource for OnRestore {
    fn after_restore(&self) -> lambda_runtime::BoxFuture<'_, Result<(), lambda_runtime::Error>> {
        Box::pin(async move {
            log_restore();
            (self.hook)();
            Ok(())
        })
    }
}
