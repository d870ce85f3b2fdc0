//! Stamps every gRPC keepalive, DNS and connection event of a Rust Lambda
//! function with the request ID of the invocation running when it fires,
//! including events of background tasks that outlive their invocation.
//!
//! Lambda freezes the environment between invocations. A keepalive PING
//! sent at the end of one invocation and left unanswered while frozen
//! makes hyper close a healthy connection at the thaw, and the next
//! invocation's first call fails (`Cancelled` or `Unavailable`). hyper logs
//! nothing when that happens; with this crate the function's log says:
//!
//! ```text
//! INFO thawtrace{request_id="8e7f…" between_invocations=false}: thawtrace: keepalive ping sent event="ping_sent" conn=1 peer=10.0.12.7:443 ping=4 request_id="8e7f…" between_invocations=false
//! WARN thawtrace{request_id="f493…" between_invocations=false}: thawtrace: connection closed by keepalive: ping unanswered event="keepalive_timeout" conn=1 peer=10.0.12.7:443 outstanding_ms=2283 …
//! ```
//!
//! and `thawtrace scan` ties the two to their invocations.
//!
//! # Use
//!
//! ```no_run
//! use lambda_runtime::{Error, LambdaEvent, Runtime, layers::TracingLayer, service_fn};
//! use std::time::Duration;
//!
//! # async fn handler(_: LambdaEvent<serde_json::Value>) -> Result<(), Error> { Ok(()) }
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     thawtrace_instrument::init();                                       // 1. subscriber + layer
//!     let endpoint = tonic::transport::Endpoint::from_static("http://orders.internal:50051")
//!         .http2_keep_alive_interval(Duration::from_secs(5))             //    your settings stay
//!         .keep_alive_timeout(Duration::from_secs(1));
//!     let channel = thawtrace_instrument::connect_lazy(endpoint);        // 2. instrumented channel
//!     # drop(channel);
//!     Runtime::new(service_fn(handler))
//!         .layer(thawtrace_instrument::ThawLogLayer)                     // 3. log each thaw
//!         .layer(TracingLayer::new())
//!         .run()
//!         .await
//! }
//! ```
//!
//! With a subscriber of your own, add [`layer()`] to it, and give your other
//! layers *per-layer* filters (`.with_filter(...)`): a global filter that
//! drops h2's DEBUG events hides the PING frames from this layer too.
//!
//! # Events
//!
//! All under target `thawtrace`, with a stable `event` field, `request_id`
//! and `between_invocations` (true after the response was sent and before
//! the next invocation: a timer that fired at a thaw, or a late event), and
//! `in_flight` in concurrent mode only (see [Execution modes](#execution-modes)):
//!
//! | `event` | level | fields |
//! |---|---|---|
//! | `ping_sent` | INFO | `conn`, `peer`, `ping` (count on the connection) |
//! | `ping_ack` | INFO | `conn`, `peer`, `rtt_us` |
//! | `keepalive_timeout` | WARN | `conn`, `peer`, `outstanding_ms`: hyper closed the connection with a PING unanswered |
//! | `connection_closed` | INFO | `conn`, `peer` |
//! | `dns_start` / `dns_result` / `dns_error` | DEBUG / INFO / WARN | `host`, `addrs`, `duration_ms`, `error` |
//! | `connect_start` / `connect_done` / `connect_error` | DEBUG / INFO / WARN | `conn`, `peer`, `duration_ms`, `error` |
//! | `thaw` | INFO | `previous_request_id`, `frozen_ms`: time since the previous invocation ended |
//! | `lb_endpoint_insert` / `lb_endpoint_remove` | INFO | `key`, `uri` ([`balance_channel`]) |
//! | `lb_pick` | INFO | `key`, `uri`, `path`: the endpoint the balancer chose for a request |
//! | `tls_done` | INFO | `conn`, `peer`, `duration_ms` since connected: tonic's TLS (over the [`Connector`]'s socket) finished its handshake, read from the TLS record headers the client writes |
//! | `restore` | INFO | `conns`: the ids of the connections alive when a SnapStart snapshot was restored (`1,3`, or `-`), `peers`: their peers in the same order; logged by [`log_restore`] / `OnRestore` |
//!
//! # Execution modes
//!
//! The mode is read once, from `AWS_LAMBDA_MAX_CONCURRENCY`, as
//! lambda_runtime reads it.
//!
//! **Classic** (unset, or 1): one invocation at a time, frozen between.
//! Every event carries the invocation running when it fires, whichever task
//! fires it; after the response, `between_invocations=true` and the last
//! request ID. Each invocation after the first logs a `thaw`.
//!
//! **Lambda Managed Instances** (above 1; lambda_runtime's `run_concurrent`,
//! feature `concurrency-tokio`): several invocations in flight in one
//! process, never frozen, so there is no single "current" invocation and no
//! `thaw` is logged. An event carries the invocation of its own context: the
//! `Lambda runtime invoke` span it runs in; else, in a task spawned with
//! [`spawn`] or through [`StampedExecutor`], the invocation that spawned the
//! task — so a connection's events (PINGs, acks, close) carry the invocation
//! whose request opened the connection, as Node's async context does; else
//! (a task spawned during init) `request_id="-"`. Never another invocation
//! that happens to be in flight. Every event adds `in_flight` (how many
//! invocations are in flight), and `between_invocations` is true only when
//! that is 0:
//!
//! ```text
//! INFO worker{task_id=4}:Lambda runtime invoke{requestId="7a0e9c41-0002"}: thawtrace: connected event="connect_done" conn=1 peer=127.0.0.1:32905 duration_ms=0 request_id="7a0e9c41-0002" between_invocations=false in_flight=2
//! INFO thawtrace{request_id="0b8e4d0c-bbbb" between_invocations=true}: thawtrace: connection closed event="connection_closed" conn=1 peer=127.0.0.1:38237 request_id="0b8e4d0c-bbbb" between_invocations=true in_flight=0
//! ```
//!
//! (The request ID is found through the subscriber's span registry: build
//! the subscriber on `tracing_subscriber::registry()`, as [`init`] does.)
//!
//! **SnapStart** (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`): init runs
//! once, before the snapshot; each environment is restored from it. A
//! connection opened during init is in the snapshot and dead after the
//! restore. Register `OnRestore` (feature `snapstart`) with
//! `Runtime::register_snapstart_resource`, first: after the restore it logs
//! `restore`, naming the connections alive then (the init's `connect_done`
//! lines have the same `conn`, but on AWS they are in the log of the
//! version's publication, not of the restored environment), and runs your
//! hook, which can re-create the channels. Without lambda_runtime in your dependencies,
//! call [`log_restore`] from your own hook.
//!
//! ```text
//! INFO thawtrace: restored from a SnapStart snapshot event="restore" conns=1 peers=127.0.0.1:41409 request_id="-" between_invocations=false
//! {"timestamp":"2026-12-06T11:46:13.756119Z","level":"INFO","fields":{"message":"restored from a SnapStart snapshot","event":"restore","conns":"1","peers":"127.0.0.1:37401","request_id":"-","between_invocations":false},"target":"thawtrace"}
//! ```
//!
//! `examples/lambda_grpc.rs` runs in all three modes.

#![warn(missing_docs)]

mod balance;
mod connector;
mod invocation;
mod layer;
mod snapstart;
mod task;
mod tcp;
mod thaw;

pub use balance::{BalanceSender, BalancedChannel, balance_channel};
pub use connector::{Connector, ObservedStream};
pub use invocation::{Stamp, Thaw, current};
pub use layer::{ThawtraceFilter, ThawtraceLayer};
#[cfg(feature = "snapstart")]
pub use snapstart::OnRestore;
pub use snapstart::log_restore;
pub use task::{Stamped, StampedExecutor, spawn};
pub use thaw::{ThawLogLayer, ThawLogService};

use tracing::Subscriber;
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::registry::LookupSpan;

/// The layer to add to your subscriber: it follows lambda_runtime's
/// invocation spans, turns h2's PING frames into `thawtrace` events, and
/// keeps h2's per-frame DEBUG events out of every layer.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::filter::LevelFilter;
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO))
///     .with(thawtrace_instrument::layer());
/// # drop(subscriber);
/// ```
pub fn layer<S>() -> Filtered<ThawtraceLayer, ThawtraceFilter, S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    layer::filtered()
}

/// Installs a global subscriber the way a Lambda function wants it: `fmt`
/// output (JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, plain text otherwise),
/// level from `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL` (default INFO) as a
/// per-layer filter, plus [`layer()`]. Does nothing if a global subscriber
/// is already set.
///
/// ```
/// thawtrace_instrument::init();
/// tracing::info!("logged with the instrument in place");
/// ```
pub fn init() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::prelude::*;
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = || EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(true);
    let result = if json {
        tracing_subscriber::registry()
            .with(fmt.json().with_filter(filter()))
            .with(layer())
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(fmt.with_filter(filter()))
            .with(layer())
            .try_init()
    };
    let _ = result;
}

/// Builds a lazily connecting channel from your `Endpoint` with the
/// instrumented [`Connector`] and [`StampedExecutor`]. The endpoint's
/// settings are kept: HTTP/2 keepalive, request and connect timeouts, TLS,
/// TCP keepalive and `TCP_NODELAY` (see [`Connector`]); only
/// `local_address` is not.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// let endpoint = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
///     .http2_keep_alive_interval(Duration::from_secs(5))
///     .keep_alive_timeout(Duration::from_secs(1))
///     .keep_alive_while_idle(true)
///     .tcp_keepalive(Some(Duration::from_secs(60)))
///     .connect_timeout(Duration::from_secs(2));
/// let channel = thawtrace_instrument::connect_lazy(endpoint);
/// # drop(channel);
/// # });
/// ```
pub fn connect_lazy(endpoint: tonic::transport::Endpoint) -> tonic::transport::Channel {
    let connector = Connector::from(&endpoint);
    endpoint
        .executor(StampedExecutor)
        .connect_with_connector_lazy(connector)
}

/// Like [`connect_lazy`], connecting now.
///
/// ```no_run
/// # async fn f() -> Result<(), tonic::transport::Error> {
/// let endpoint = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051");
/// let channel = thawtrace_instrument::connect(endpoint).await?;
/// # drop(channel); Ok(()) }
/// ```
///
/// # Errors
///
/// The connection error, as tonic reports it (an expired connect timeout
/// has an `io::Error` of kind `TimedOut` among its sources).
pub async fn connect(
    endpoint: tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let connector = Connector::from(&endpoint);
    endpoint
        .executor(StampedExecutor)
        .connect_with_connector(connector)
        .await
}
