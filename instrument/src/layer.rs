//! The `tracing` layer: follows Lambda invocations and reads h2's PING
//! frames, then keeps h2's per-frame DEBUG noise out of every other layer.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::invocation::{self, InvocationSpan};
use crate::task;

const INVOCATION_SPAN: &str = "Lambda runtime invoke";
const H2_WRITE: &str = "h2::codec::framed_write";
const H2_READ: &str = "h2::codec::framed_read";

/// The layer behind [`layer()`](crate::layer), without its filter. Always
/// use it with [`ThawtraceFilter`]: unfiltered, it would enable every
/// callsite for the whole subscriber.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use thawtrace_instrument::{ThawtraceFilter, ThawtraceLayer};
/// let subscriber = tracing_subscriber::registry()
///     .with(ThawtraceLayer::default().with_filter(ThawtraceFilter::default()));
/// # drop(subscriber);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct ThawtraceLayer {
    _private: (),
}

/// The per-layer filter of [`ThawtraceLayer`]: it enables only the
/// callsites the layer reads (Lambda's invocation span, h2's frame events),
/// so the layer neither widens nor narrows what other layers see.
///
/// A layer behind it is shown the invocation span and h2's frame events,
/// nothing else; a layer beside it, filtered at INFO, is shown what it
/// would be without it (h2's DEBUG frames stay out):
///
/// ```
/// use thawtrace_instrument::ThawtraceFilter;
/// use tracing_subscriber::filter::LevelFilter;
/// use tracing_subscriber::prelude::*;
/// # use std::sync::{Arc, Mutex};
/// # use tracing_subscriber::layer::Context;
/// # /// Writes down each span and event it is shown.
/// # #[derive(Clone, Default)]
/// # struct Shown(Arc<Mutex<Vec<String>>>);
/// # impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Shown {
/// #     fn on_new_span(&self, a: &tracing::span::Attributes<'_>, _: &tracing::span::Id, _: Context<'_, S>) {
/// #         self.0.lock().unwrap().push(format!("span {}", a.metadata().name()));
/// #     }
/// #     fn on_event(&self, e: &tracing::Event<'_>, _: Context<'_, S>) {
/// #         self.0.lock().unwrap().push(format!("event {}", e.metadata().target()));
/// #     }
/// # }
/// # impl Shown { fn list(&self) -> Vec<String> { self.0.lock().unwrap().clone() } }
/// let (behind, beside) = (Shown::default(), Shown::default());
/// let subscriber = tracing_subscriber::registry()
///     .with(behind.clone().with_filter(ThawtraceFilter::default()))
///     .with(beside.clone().with_filter(LevelFilter::INFO));
/// tracing::subscriber::with_default(subscriber, || {
///     let _invocation = tracing::info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "8e7f0d5a").entered();
///     tracing::debug!(target: "h2::codec::framed_write", frame = ?"Ping { ack: false, payload: [0, 0, 0, 0, 0, 0, 0, 1] }", "send frame");
///     tracing::info!(target: "orders", "order placed");
///     tracing::info_span!(target: "orders", "charge card").in_scope(|| {});
/// });
/// assert_eq!(behind.list(), ["span Lambda runtime invoke", "event h2::codec::framed_write"]);
/// assert_eq!(beside.list(), ["span Lambda runtime invoke", "event orders", "span charge card"]);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct ThawtraceFilter {
    _private: (),
}

fn is_h2_frame(meta: &Metadata<'_>) -> bool {
    meta.is_event() && matches!(meta.target(), H2_WRITE | H2_READ)
}

fn is_invocation_span(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == INVOCATION_SPAN && meta.target().starts_with("lambda_runtime")
}

impl<S> Filter<S> for ThawtraceFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        is_h2_frame(meta) || is_invocation_span(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_h2_frame(meta) || is_invocation_span(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
}

#[derive(Default)]
struct RequestIdVisitor(Option<String>);

impl Visit for RequestIdVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "requestId" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "requestId" && self.0.is_none() {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

/// Formats at most 24 bytes of a `Debug` value on the stack: enough to tell
/// `Ping { ack: true, … }` from other frames without allocating.
struct Prefix {
    buf: [u8; 24],
    len: usize,
}

impl fmt::Write for Prefix {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let take = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

#[derive(Default)]
struct PingVisitor {
    ack: Option<bool>,
}

impl Visit for PingVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() != "frame" {
            return;
        }
        let mut p = Prefix {
            buf: [0; 24],
            len: 0,
        };
        let _ = write!(p, "{value:?}");
        let text = &p.buf[..p.len];
        if text.starts_with(b"Ping { ack: true") {
            self.ack = Some(true);
        } else if text.starts_with(b"Ping { ack: false") {
            self.ack = Some(false);
        }
    }
}

impl<S> Layer<S> for ThawtraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if !is_invocation_span(attrs.metadata()) {
            return;
        }
        let mut v = RequestIdVisitor::default();
        attrs.record(&mut v);
        let Some(request_id) = v.0 else { return };
        let started = invocation::start(&request_id);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(InvocationSpan(started));
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(InvocationSpan(started)) = span.extensions().get::<InvocationSpan>() {
            invocation::end(started);
        }
    }

    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if !is_h2_frame(meta) {
            return true;
        }
        let mut v = PingVisitor::default();
        event.record(&mut v);
        match (meta.target(), v.ack) {
            // Our PING out, and its ack in. (The peer's PINGs and our acks
            // of them say nothing about our keepalive.)
            (H2_WRITE, Some(false)) => task::observe(task::Observed::PingSent),
            (H2_READ, Some(true)) => task::observe(task::Observed::PingAck),
            _ => {}
        }
        // Every h2 frame event stops here: one per frame is noise in a
        // function's logs, and the PINGs come out as `thawtrace` events.
        false
    }
}

/// The layer with its per-layer filter, ready for `.with(...)`.
pub(crate) fn filtered<S>() -> Filtered<ThawtraceLayer, ThawtraceFilter, S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ThawtraceLayer::default().with_filter(ThawtraceFilter::default())
}
