//! Background tasks stamped with the current invocation, and the connection
//! events they report.
//!
//! tonic spawns each HTTP/2 connection through the `Endpoint`'s executor;
//! hyper drives keepalive inside that task, and when a keepalive times out
//! the task simply ends. [`StampedExecutor`] wraps every spawned task in
//! [`Stamped`]: while it is polled, events inside it carry a `thawtrace`
//! span naming the current invocation, the connection it drives is known
//! (the instrumented socket binds itself to the task on first use), and the
//! PINGs the layer observed are logged when the poll returns (tracing drops
//! events emitted from inside a subscriber, so the layer only records).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::invocation::{self, Invocation, Stamp};

/// One TCP connection made by the instrumented connector.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) id: u64,
    /// `None` for a connection made by another connector (a balanced
    /// channel's): the instrument knows its task, not its address.
    pub(crate) peer: Option<SocketAddr>,
    ping: Mutex<PingState>,
    /// The task driving it: the last to do I/O on it. tonic's connecting
    /// future does the handshake's I/O inside the channel's worker task,
    /// then hands the connection to a task of its own; only that one may
    /// report the close.
    driver: Mutex<Weak<TaskState>>,
}

#[derive(Debug, Default)]
struct PingState {
    outstanding: Option<Instant>,
    sent: u64,
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// The connections alive now (made and not yet dropped) by id, with their
/// peers, for the `restore` event: the connections a snapshot carried over.
static LIVE: Mutex<BTreeMap<u64, Option<SocketAddr>>> = Mutex::new(BTreeMap::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<u64, Option<SocketAddr>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connections alive now, in the order they were made: id and peer.
pub(crate) fn live_connections() -> Vec<(u64, Option<SocketAddr>)> {
    live().iter().map(|(id, peer)| (*id, *peer)).collect()
}

impl Connection {
    pub(crate) fn new(peer: Option<SocketAddr>) -> Arc<Self> {
        let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        live().insert(id, peer);
        Arc::new(Connection {
            id,
            peer,
            ping: Mutex::new(PingState::default()),
            driver: Mutex::new(Weak::new()),
        })
    }

    fn peer(&self) -> String {
        self.peer
            .map_or_else(|| "unknown".to_owned(), |p| p.to_string())
    }

    fn ping(&self) -> std::sync::MutexGuard<'_, PingState> {
        self.ping.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        live().remove(&self.id);
    }
}

/// What the layer saw inside a task's poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    PingSent,
    PingAck,
}

#[derive(Default)]
struct TaskState {
    connection: Mutex<Option<Arc<Connection>>>,
    /// Concurrent mode: the invocation that spawned the task (directly, or
    /// through the task that spawned it).
    owner: Option<Arc<Invocation>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<TaskState>>> = const { RefCell::new(None) };
    static PENDING: RefCell<Vec<(Observed, Arc<Connection>, Instant)>> = const { RefCell::new(Vec::new()) };
}

/// Called by the layer for a PING frame: remembered for the task being
/// polled. A task whose socket is not ours (another connector) is its own
/// connection, of unknown peer.
pub(crate) fn observe(what: Observed) {
    let connection = CURRENT.with(|c| {
        c.borrow().as_ref().map(|t| {
            t.connection
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| Connection::new(None))
                .clone()
        })
    });
    if let Some(connection) = connection {
        PENDING.with(|p| p.borrow_mut().push((what, connection, Instant::now())));
    }
}

/// The invocation that owns the task being polled, if any.
pub(crate) fn current_owner() -> Option<Arc<Invocation>> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(|t| t.owner.clone()))
}

/// Called by the instrumented socket on every read and write: the task
/// doing I/O on a connection is the task driving it.
pub(crate) fn bind(connection: &Arc<Connection>) {
    // The common case, the same task again, takes one uncontended lock.
    let Some(task) = CURRENT.with(|c| {
        let current = c.borrow();
        let task = current.as_ref()?;
        let mut bound = task.connection.lock().unwrap_or_else(|e| e.into_inner());
        if bound.as_ref().is_some_and(|b| Arc::ptr_eq(b, connection)) {
            return None;
        }
        *bound = Some(connection.clone());
        Some(task.clone())
    }) else {
        return;
    };
    // A new driver: the previous one lets go of it (one lock at a time).
    let previous = std::mem::replace(
        &mut *connection.driver.lock().unwrap_or_else(|e| e.into_inner()),
        Arc::downgrade(&task),
    );
    if let Some(previous) = previous.upgrade()
        && !Arc::ptr_eq(&previous, &task)
    {
        let mut bound = previous
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if bound.as_ref().is_some_and(|b| Arc::ptr_eq(b, connection)) {
            *bound = None;
        }
    }
}

/// Logs the thaw measured at the last invocation start, once.
pub(crate) fn log_pending_thaw() {
    if let Some(thaw) = invocation::take_pending_thaw() {
        tracing::info!(
            target: "thawtrace",
            event = "thaw",
            request_id = &*thaw.request_id,
            previous_request_id = thaw.previous_request_id.as_deref().unwrap_or("-"),
            frozen_ms = thaw.frozen_ms,
            "thawed after the previous invocation"
        );
    }
}

fn log_observed(what: Observed, c: &Connection, at: Instant, stamp: &Stamp) {
    let request_id = stamp.request_id.as_deref().unwrap_or("-");
    let between = stamp.between_invocations;
    let in_flight = stamp.in_flight;
    match what {
        Observed::PingSent => {
            let n = {
                let mut p = c.ping();
                p.outstanding = Some(at);
                p.sent += 1;
                p.sent
            };
            tracing::info!(target: "thawtrace", event = "ping_sent", conn = c.id, peer = %c.peer(), ping = n,
                request_id, between_invocations = between, in_flight, "keepalive ping sent");
        }
        Observed::PingAck => {
            let sent = c.ping().outstanding.take();
            let rtt_us = sent.map(|s| at.duration_since(s).as_micros() as u64);
            tracing::info!(target: "thawtrace", event = "ping_ack", conn = c.id, peer = %c.peer(), rtt_us,
                request_id, between_invocations = between, in_flight, "keepalive ping acknowledged");
        }
    }
}

/// The end of a connection task: a PING still unanswered means hyper closed
/// it for keepalive (it reports nothing else when that happens).
fn log_closed(c: &Connection, stamp: &Stamp) {
    let request_id = stamp.request_id.as_deref().unwrap_or("-");
    let between = stamp.between_invocations;
    let in_flight = stamp.in_flight;
    match c.ping().outstanding.take() {
        Some(sent) => {
            let outstanding_ms = sent.elapsed().as_millis() as u64;
            tracing::warn!(target: "thawtrace", event = "keepalive_timeout", conn = c.id, peer = %c.peer(),
                outstanding_ms, request_id, between_invocations = between, in_flight,
                "connection closed by keepalive: ping unanswered");
        }
        None => {
            tracing::info!(target: "thawtrace", event = "connection_closed", conn = c.id, peer = %c.peer(),
                request_id, between_invocations = between, in_flight, "connection closed");
        }
    }
}

/// A future stamped with the invocation running whenever it is polled
/// (classic mode), or with the invocation that made it (concurrent mode:
/// the invocation of the context [`Stamped::new`] is called in, else of the
/// stamped task that calls it; see [`Stamp`](crate::Stamp)).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let value = thawtrace_instrument::Stamped::new(async { 40 + 2 }).await;
/// assert_eq!(value, 42);
/// # });
/// ```
pub struct Stamped<F> {
    inner: Pin<Box<F>>,
    state: Arc<TaskState>,
}

impl<F: Future> Stamped<F> {
    /// Wraps `future`.
    pub fn new(future: F) -> Self {
        Stamped {
            inner: Box::pin(future),
            state: Arc::new(TaskState {
                connection: Mutex::default(),
                owner: invocation::spawning_owner(),
            }),
        }
    }
}

impl<F: Future> Future for Stamped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let owner = self.state.owner.as_ref();
        let span = invocation::stamp_span(owner);
        let _entered = span.enter();
        log_pending_thaw();
        let previous = CURRENT.with(|c| c.replace(Some(self.state.clone())));
        let polled = self.inner.as_mut().poll(cx);
        CURRENT.with(|c| *c.borrow_mut() = previous);
        let observed = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        let connection = if polled.is_ready() {
            self.state
                .connection
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
        } else {
            None
        };
        if !observed.is_empty() || connection.is_some() {
            let stamp = invocation::for_task(self.state.owner.as_ref());
            for (what, c, at) in observed {
                log_observed(what, &c, at, &stamp);
            }
            if let Some(c) = connection {
                log_closed(&c, &stamp);
            }
        }
        polled
    }
}

/// Spawns `future` on the current tokio runtime, stamped: events inside it
/// carry the invocation running whenever it runs, even after the invocation
/// that spawned it has ended (classic mode), or the invocation that spawned
/// it (concurrent mode, see [`Stamp`](crate::Stamp)).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let handle = thawtrace_instrument::spawn(async {
///     tracing::info!("background work");
/// });
/// handle.await.unwrap();
/// # });
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Stamped::new(future))
}

/// An executor for tonic's `Endpoint::executor` that spawns every task
/// [`Stamped`] on tokio.
///
/// ```
/// let endpoint = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
///     .executor(thawtrace_instrument::StampedExecutor);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StampedExecutor;

impl<F> hyper::rt::Executor<F> for StampedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Stamped::new(future));
    }
}
