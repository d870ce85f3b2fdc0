//! The process-wide "current invocation": which request the function is
//! serving now, or served last and is frozen after.
//!
//! Lambda runs one invocation at a time per execution environment, so one
//! global is the truth for every task, including background tasks that were
//! spawned in an earlier invocation and outlive it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tracing::Span;

/// A snapshot of the invocation state, as stamped on an event.
///
/// lambda_runtime opens a `Lambda runtime invoke` span per invocation; the
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
}

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

/// Marks the start of an invocation. Returns the thaw it ends.
pub fn start(request_id: &str) -> Option<Thaw> {
    with(|s| {
        let now = Instant::now();
        let request_id: Arc<str> = Arc::from(request_id);
        let thaw = s.last_end.map(|end| Thaw {
            request_id: request_id.clone(),
            previous_request_id: s.request_id.clone(),
            frozen_ms: now.duration_since(end).as_millis() as u64,
        });
        s.request_id = Some(request_id);
        s.between = false;
        s.epoch += 1;
        s.pending_thaw.clone_from(&thaw);
        thaw
    })
}

/// Marks the end of the invocation `request_id` (its response was sent).
pub fn end(request_id: &str) {
    with(|s| {
        if s.request_id.as_deref() == Some(request_id) && !s.between {
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
    with(|s| Stamp {
        request_id: s.request_id.clone(),
        between_invocations: s.between,
    })
}

/// Takes the thaw measured at the last invocation start, if not yet logged.
pub(crate) fn take_pending_thaw() -> Option<Thaw> {
    with(|s| s.pending_thaw.take())
}

/// The `thawtrace` span that stamps background work with the current
/// invocation; one per invocation state, created outside any other span.
pub(crate) fn stamp_span() -> Span {
    let fresh = with(|s| match &s.span {
        Some((epoch, span)) if *epoch == s.epoch => Ok(span.clone()),
        _ => Err((s.epoch, s.request_id.clone(), s.between)),
    });
    let (epoch, request_id, between) = match fresh {
        Ok(span) => return span,
        Err(state) => state,
    };
    // Created without the lock held: creating a span calls into the
    // subscriber, and our own layer takes this lock for Lambda's spans.
    let span = tracing::info_span!(
        target: "thawtrace",
        parent: None,
        "thawtrace",
        request_id = request_id.as_deref().unwrap_or("-"),
        between_invocations = between,
    );
    with(|s| {
        if s.epoch == epoch {
            s.span = Some((epoch, span.clone()));
        }
    });
    span
}
