//! Which invocation an event belongs to.
//!
//! Classic Lambda runs one invocation at a time per execution environment,
//! and freezes it between invocations: one process-wide "current
//! invocation" is the truth for every task, including background tasks
//! spawned in an earlier invocation that outlive it.
//!
//! Lambda Managed Instances (`AWS_LAMBDA_MAX_CONCURRENCY` above 1) run
//! several invocations at once in one process, never frozen. There an event
//! belongs to the invocation of its own context: the `Lambda runtime invoke`
//! span it runs in, else the invocation that spawned its task (a
//! connection's task: the invocation whose request opened the connection),
//! else none. See [`Stamp`].

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use tracing::Span;
use tracing_subscriber::registry::{LookupSpan, Registry};

/// A snapshot of the invocation state, as stamped on an event.
///
/// In classic mode (`AWS_LAMBDA_MAX_CONCURRENCY` unset or 1) lambda_runtime opens a `Lambda runtime invoke` span per invocation; the
/// layer follows it, and everything stamped meanwhile names that request:
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry().with(thawtrace_instrument::layer());
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "8e7f0d5a");
///     let stamp = thawtrace_instrument::current();
///     assert_eq!(stamp.request_id.as_deref(), Some("8e7f0d5a"));
///     assert!(!stamp.between_invocations);
///     drop(span); // the response was sent: Lambda freezes the environment now
///     assert!(thawtrace_instrument::current().between_invocations);
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The request ID of the invocation running now, or of the last one when
    /// between invocations. `None` before the first invocation (init).
    pub request_id: Option<Arc<str>>,
    /// True after the last invocation answered and before the next starts:
    /// Lambda freezes the environment then, and anything that fires is a
    /// timer that expired while frozen or a late event of the last one.
    pub between_invocations: bool,
    /// How many invocations are in flight, in concurrent mode (Lambda
    /// Managed Instances, `AWS_LAMBDA_MAX_CONCURRENCY` above 1); `None` in
    /// classic mode, where it is 0 or 1 and the events do not print it.
    ///
    /// In concurrent mode `request_id` is the invocation of the event's own
    /// context, never another one in flight: the `Lambda runtime invoke`
    /// span the event runs in, else the invocation that spawned its task
    /// ([`spawn`](crate::spawn), or a connection's task: the request that
    /// opened the connection), else `None`. `between_invocations` is true
    /// only when no invocation is in flight.
    pub in_flight: Option<u64>,
}

/// How the runtime delivers invocations: read once from
/// `AWS_LAMBDA_MAX_CONCURRENCY`, as lambda_runtime reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One invocation at a time, frozen between.
    Classic,
    /// Several at once, never frozen (Lambda Managed Instances).
    Concurrent,
}

pub(crate) fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let limit = std::env::var("AWS_LAMBDA_MAX_CONCURRENCY")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok());
        if limit.is_some_and(|n| n > 1) {
            Mode::Concurrent
        } else {
            Mode::Classic
        }
    })
}

/// One invocation, shared by its span and the tasks it spawned.
#[derive(Debug)]
pub(crate) struct Invocation {
    pub(crate) request_id: Arc<str>,
    /// Concurrent mode: the `thawtrace` span of its tasks, and the
    /// `between_invocations` it was made with.
    span: Mutex<Option<(bool, Span)>>,
}

/// The [`Invocation`] of a `Lambda runtime invoke` span, in its extensions.
pub(crate) struct InvocationSpan(pub(crate) Arc<Invocation>);

#[derive(Default)]
struct State {
    request_id: Option<Arc<str>>,
    between: bool,
    /// Bumped on every change, so cached stamp spans know they are stale.
    epoch: u64,
    last_end: Option<Instant>,
    /// The thaw measured at the start of the current invocation, not yet logged.
    pending_thaw: Option<Thaw>,
    span: Option<(u64, Span)>,
    /// Invocations started and not ended.
    in_flight: u64,
    /// Concurrent mode: the `thawtrace` span of tasks no invocation owns.
    unowned_span: Option<(bool, Span)>,
}

/// What the instrument measured at the start of an invocation: logged once
/// per invocation as a `thaw` event by [`ThawLogLayer`](crate::ThawLogLayer)
/// (or by the next stamped task), with these fields.
///
/// Two invocations 30 ms apart, and the handler called twice in the
/// second: one `thaw`, read back from the function's JSON log.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use thawtrace_instrument::{Thaw, ThawLogLayer};
/// use tower::{Layer, ServiceExt};
/// use tracing_subscriber::prelude::*;
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Clone, Default)]
/// # struct Log(Arc<Mutex<Vec<u8>>>);
/// # impl std::io::Write for Log {
/// #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
/// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// # }
/// # impl Log { fn lines(&self) -> Vec<String> { String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect() } }
/// let log = Log::default(); // the function's stdout
/// let writer = log.clone();
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().json().with_writer(move || writer.clone()))
///     .with(thawtrace_instrument::layer());
/// let invoke = |request_id: &str| {
///     tracing::info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = request_id)
/// };
/// let handler = ThawLogLayer.layer(tower::service_fn(|_: ()| async { Ok::<_, Infallible>(()) }));
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// tracing::subscriber::with_default(subscriber, || {
///     drop(invoke("e5ad8bd3")); // answered: Lambda freezes the environment
///     std::thread::sleep(Duration::from_millis(30));
///     let _second = invoke("c1e20ff7").entered();
///     runtime.block_on(async {
///         handler.clone().oneshot(()).await.unwrap();
///         handler.clone().oneshot(()).await.unwrap();
///     });
/// });
///
/// let thaws: Vec<Thaw> = log
///     .lines()
///     .iter()
///     .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["fields"].take())
///     .filter(|fields| fields["event"] == "thaw")
///     .map(|f| Thaw {
///         request_id: f["request_id"].as_str().unwrap().into(),
///         previous_request_id: f["previous_request_id"].as_str().map(Into::into),
///         frozen_ms: f["frozen_ms"].as_u64().unwrap(),
///     })
///     .collect();
/// assert_eq!(thaws.len(), 1, "once per invocation");
/// assert_eq!(&*thaws[0].request_id, "c1e20ff7");
/// assert_eq!(thaws[0].previous_request_id.as_deref(), Some("e5ad8bd3"));
/// assert!(thaws[0].frozen_ms >= 30, "the whole freeze: {thaws:?}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thaw {
    /// The invocation that starts.
    pub request_id: Arc<str>,
    /// The invocation before it.
    pub previous_request_id: Option<Arc<str>>,
    /// Time from the previous invocation's end to this start: Lambda keeps
    /// the environment frozen for all of it.
    pub frozen_ms: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<State>> {
    // A poisoned lock only means a panic elsewhere while holding it; the
    // state itself stays consistent (plain assignments).
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut guard = state();
    f(guard.get_or_insert_with(State::default))
}

/// Marks the start of an invocation, and keeps the thaw it ends for
/// [`take_pending_thaw`] (classic mode only: Managed Instances are never
/// frozen).
pub(crate) fn start(request_id: &str) -> Arc<Invocation> {
    let concurrent = mode() == Mode::Concurrent;
    with(|s| {
        let now = Instant::now();
        let request_id: Arc<str> = Arc::from(request_id);
        let thaw = s.last_end.filter(|_| !concurrent).map(|end| Thaw {
            request_id: request_id.clone(),
            previous_request_id: s.request_id.clone(),
            frozen_ms: now.duration_since(end).as_millis() as u64,
        });
        s.request_id = Some(request_id.clone());
        s.between = false;
        s.epoch += 1;
        s.in_flight += 1;
        s.pending_thaw = thaw;
        Arc::new(Invocation {
            request_id,
            span: Mutex::new(None),
        })
    })
}

/// Marks the end of `invocation` (its response was sent).
pub(crate) fn end(invocation: &Invocation) {
    with(|s| {
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.request_id.as_deref() == Some(&*invocation.request_id) && !s.between {
            s.between = true;
            s.epoch += 1;
            s.last_end = Some(Instant::now());
        }
    })
}

/// The stamp for an event firing now (see [`Stamp`] for the mechanism).
///
/// ```
/// // `None` before the first invocation (the init phase).
/// let stamp = thawtrace_instrument::current();
/// println!("request {:?}, between invocations: {}", stamp.request_id, stamp.between_invocations);
/// ```
pub fn current() -> Stamp {
    match mode() {
        Mode::Classic => classic(),
        Mode::Concurrent => owned_by(spawning_owner().as_ref()),
    }
}

fn classic() -> Stamp {
    with(|s| Stamp {
        request_id: s.request_id.clone(),
        between_invocations: s.between,
        in_flight: None,
    })
}

/// The stamp for an event of a task `owner` spawned: the invocation of the
/// event's own context comes first (in concurrent mode).
pub(crate) fn for_task(owner: Option<&Arc<Invocation>>) -> Stamp {
    match mode() {
        Mode::Classic => classic(),
        Mode::Concurrent => match context_invocation() {
            Some(context) => owned_by(Some(&context)),
            None => owned_by(owner),
        },
    }
}

fn owned_by(owner: Option<&Arc<Invocation>>) -> Stamp {
    let in_flight = with(|s| s.in_flight);
    Stamp {
        request_id: owner.map(|o| o.request_id.clone()),
        between_invocations: in_flight == 0,
        in_flight: Some(in_flight),
    }
}

/// The invocation whose `Lambda runtime invoke` span encloses the current
/// span, found through the subscriber's registry (`None` with a subscriber
/// not built on `tracing_subscriber::registry()`).
fn context_invocation() -> Option<Arc<Invocation>> {
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let current = dispatch.current_span();
        let span = registry.span(current.id()?)?;
        span.scope()
            .find_map(|s| s.extensions().get::<InvocationSpan>().map(|i| i.0.clone()))
    })
}

/// Concurrent mode: the invocation a task spawned now belongs to, the
/// invocation of the spawning context, else the spawning task's. Classic
/// mode needs none: every task has the process-wide invocation.
pub(crate) fn spawning_owner() -> Option<Arc<Invocation>> {
    match mode() {
        Mode::Classic => None,
        Mode::Concurrent => context_invocation().or_else(crate::task::current_owner),
    }
}

/// Takes the thaw measured at the last invocation start, if not yet logged.
pub(crate) fn take_pending_thaw() -> Option<Thaw> {
    with(|s| s.pending_thaw.take())
}

/// The `thawtrace` span that stamps the work of a task `owner` spawned.
/// Classic mode: one per invocation state, naming the current invocation.
/// Concurrent mode: one per owner, naming it. Created outside any other span.
pub(crate) fn stamp_span(owner: Option<&Arc<Invocation>>) -> Span {
    if mode() == Mode::Classic {
        return classic_stamp_span();
    }
    let between = with(|s| s.in_flight == 0);
    let cached = match owner {
        Some(o) => lock(&o.span).clone(),
        None => with(|s| s.unowned_span.clone()),
    };
    if let Some((made_between, span)) = cached
        && made_between == between
    {
        return span;
    }
    let span = new_stamp_span(owner.map(|o| &*o.request_id), between);
    let entry = Some((between, span.clone()));
    match owner {
        Some(o) => *lock(&o.span) = entry,
        None => with(|s| s.unowned_span = entry),
    }
    span
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_stamp_span(request_id: Option<&str>, between: bool) -> Span {
    // Created without a lock held: creating a span calls into the
    // subscriber, and our own layer takes the state's lock for Lambda's spans.
    tracing::info_span!(
        target: "thawtrace",
        parent: None,
        "thawtrace",
        request_id = request_id.unwrap_or("-"),
        between_invocations = between,
    )
}

fn classic_stamp_span() -> Span {
    let fresh = with(|s| match &s.span {
        Some((epoch, span)) if *epoch == s.epoch => Ok(span.clone()),
        _ => Err((s.epoch, s.request_id.clone(), s.between)),
    });
    let (epoch, request_id, between) = match fresh {
        Ok(span) => return span,
        Err(state) => state,
    };
    let span = new_stamp_span(request_id.as_deref(), between);
    with(|s| {
        if s.epoch == epoch {
            s.span = Some((epoch, span.clone()));
        }
    });
    span
}
