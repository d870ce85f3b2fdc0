//! The pure core of thawtrace: parse Lambda log lines, correlate them per
//! log stream, report keepalive pings frozen in flight.
//!
//! No I/O, no clock, no async: give it log events, get findings.
//!
//! ```
//! use thawtrace_analyzers::{Batch, Config, FindingKind};
//! use thawtrace_analyzers::parse::RawText;
//!
//! let a = "aaaaaaaa-0000-4000-8000-000000000001";
//! let b = "bbbbbbbb-0000-4000-8000-000000000002";
//! let ping = format!("2026-11-28T08:00:04.000Z\t{a}\tERROR\tD 2026-11-28T08:00:04.000Z | v1.14.7 8 | keepalive | (1) 10.0.0.1:443 Sending ping with timeout 1000ms");
//! // Node <= 22 prints A's request ID on the timeout line too: it fired at B's thaw.
//! let timeout = format!("2026-11-28T08:00:09.001Z\t{a}\tERROR\tD 2026-11-28T08:00:09.001Z | v1.14.7 8 | keepalive | (1) 10.0.0.1:443 Ping timeout passed without response");
//! let start_a = format!("START RequestId: {a} Version: $LATEST");
//! let end_a = format!("END RequestId: {a}");
//! let start_b = format!("START RequestId: {b} Version: $LATEST");
//! let lines = [(0, start_a), (4000, ping), (4004, end_a), (9000, start_b), (9001, timeout)];
//! let ids: Vec<String> = (0..lines.len()).map(|i| i.to_string()).collect();
//!
//! let mut batch = Batch::default();
//! // Events may come in any order; the batch sorts each stream.
//! for (i, (ts, msg)) in lines.iter().enumerate().rev() {
//!     batch.push("/aws/lambda/orders", "2026/11/28/[$LATEST]abc", ids[i].as_str(), *ts, RawText::Plain(msg));
//! }
//! let mut findings = Vec::new();
//! batch.analyze(&Config::default(), &mut findings);
//! assert_eq!(findings.len(), 1);
//! assert_eq!(findings[0].kind, FindingKind::KeepaliveFreezeTimeout);
//! assert_eq!(findings[0].ping_request_id.as_deref(), Some(a));
//! assert_eq!(findings[0].timeout_request_id.as_deref(), Some(b));
//! ```

#![warn(missing_docs)]

pub mod correlate;
pub mod finding;
pub mod neighbours;
pub mod parse;
pub mod risk;
pub mod time;

use std::borrow::Cow;
use std::collections::HashMap;

pub use correlate::{Config, IdempotencyKey, LogEvent, StreamCorrelator, StreamStats};
pub use finding::{
    Collected, Detail, DuplicateReason, ExecutionMode, FailedCall, Finding, FindingKind,
    FindingSink, Incident, Inference, InvocationWindow, KeepaliveKind, Signal, SignalKind,
};
pub use neighbours::{Neighbours, Settlement};

/// Log events of any number of streams, in any order, analysed together.
#[derive(Default)]
pub struct Batch<'a> {
    /// Each stream's key and events, in order of first appearance.
    streams: Vec<StreamEvents<'a>>,
    /// Where each stream is in `streams`.
    index: HashMap<(Cow<'a, str>, Cow<'a, str>), usize>,
    /// The stream pushed to last: events come in runs of one stream, and
    /// comparing two names is cheaper than hashing them.
    last: usize,
}

type StreamEvents<'a> = ((Cow<'a, str>, Cow<'a, str>), Vec<LogEvent<'a>>);

/// Totals over a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Log streams (execution environments) read.
    pub streams: u64,
    /// Totals of the streams' counts.
    pub totals: StreamStats,
    /// Cross-stream signals (invocation starts, connect timeouts,
    /// idempotency keys) ignored past [`Config::max_tracked`], or past the
    /// attempts kept of one request ID or key ([`Neighbours`]).
    pub dropped_signals: u64,
    /// The first [`Summary::NAMED`] streams (`group`, `stream`) whose
    /// trace output was too little to judge: failed gRPC calls, not one
    /// keepalive line ([`StreamStats::unjudged`]).
    pub unjudged_streams: Vec<(String, String)>,
    /// The first [`Summary::NAMED`] streams with keepalive lines but no
    /// platform records ([`StreamStats::guessed_windows`]).
    pub guessed_streams: Vec<(String, String)>,
    /// Events dropped as duplicates: the same event ID, timestamp and
    /// message in one stream (overlapping exports, a file read twice).
    pub duplicates: u64,
}

impl Summary {
    /// How many streams of each warning are named.
    pub const NAMED: usize = 10;
}

impl<'a> Batch<'a> {
    /// Adds one event of stream `(log_group, log_stream)`.
    pub fn push(
        &mut self,
        log_group: impl Into<Cow<'a, str>>,
        log_stream: impl Into<Cow<'a, str>>,
        id: impl Into<Cow<'a, str>>,
        timestamp_ms: i64,
        text: parse::RawText<'a>,
    ) {
        self.events_of(log_group.into(), log_stream.into())
            .push(LogEvent {
                id: id.into(),
                timestamp_ms,
                text,
            });
    }

    /// Adds events of one stream `(log_group, log_stream)`, in order: a
    /// subscription message's, whose stream is named once for all of them.
    pub fn extend(
        &mut self,
        log_group: impl Into<Cow<'a, str>>,
        log_stream: impl Into<Cow<'a, str>>,
        events: impl IntoIterator<Item = LogEvent<'a>>,
    ) {
        self.events_of(log_group.into(), log_stream.into())
            .extend(events);
    }

    /// The events of a stream, added to the batch if new.
    fn events_of(&mut self, group: Cow<'a, str>, stream: Cow<'a, str>) -> &mut Vec<LogEvent<'a>> {
        let at = match self.streams.get(self.last) {
            Some(((g, s), _)) if *g == group && *s == stream => self.last,
            _ => {
                let next = self.streams.len();
                let at = *self
                    .index
                    .entry((group.clone(), stream.clone()))
                    .or_insert(next);
                if at == next {
                    self.streams.push(((group, stream), Vec::new()));
                }
                self.last = at;
                at
            }
        };
        &mut self.streams[at].1
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.streams.iter().map(|(_, events)| events.len()).sum()
    }

    /// True when no event was pushed.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Sorts each stream by timestamp, then event ID, drops the second
    /// copies of events (counted in [`Summary::duplicates`]), correlates it, and
    /// pushes its findings; streams in name order. Then the cross-stream
    /// incidents ([`Neighbours`]) of the whole batch.
    pub fn analyze(self, config: &Config, sink: &mut impl FindingSink) -> Summary {
        let mut streams = self.streams;
        streams.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut summary = Summary::default();
        let mut sink = WithNeighbours {
            neighbours: Neighbours::new(config),
            sink,
        };
        for ((group, stream), mut events) in streams {
            sort_stream(&mut events);
            // CloudWatch event IDs are unique: a second copy of an event
            // sorts next to the first and is not counted again.
            let before = events.len();
            events.dedup_by(|b, a| {
                a.timestamp_ms == b.timestamp_ms && a.id == b.id && a.text == b.text
            });
            summary.duplicates += (before - events.len()) as u64;
            let mut correlator = StreamCorrelator::new(&group, &stream, config.clone());
            for event in &events {
                correlator.push(event);
            }
            let stats = correlator.finish(&mut sink);
            summary.streams += 1;
            summary.totals.lines += stats.lines;
            summary.totals.invocations += stats.invocations;
            summary.totals.keepalive_lines += stats.keepalive_lines;
            summary.totals.unpaired_timeouts += stats.unpaired_timeouts;
            summary.totals.guessed_windows += stats.guessed_windows;
            summary.totals.unjudged += stats.unjudged;
            summary.totals.managed_instances += stats.managed_instances;
            summary.totals.snapstart += stats.snapstart;
            for (flag, names) in [
                (stats.unjudged, &mut summary.unjudged_streams),
                (stats.guessed_windows, &mut summary.guessed_streams),
            ] {
                if flag > 0 && names.len() < Summary::NAMED {
                    names.push((group.to_string(), stream.to_string()));
                }
            }
        }
        sink.neighbours.flush(sink.sink);
        summary.dropped_signals = sink.neighbours.dropped();
        summary
    }
}

/// A sink that also gathers the streams' signals for the cross-stream
/// analysis.
struct WithNeighbours<'s, S> {
    neighbours: Neighbours,
    sink: &'s mut S,
}

impl<S: FindingSink> FindingSink for WithNeighbours<'_, S> {
    fn finding(&mut self, finding: Finding) {
        self.sink.finding(finding);
    }
    fn invocation(&mut self, invocation: InvocationWindow) {
        self.sink.invocation(invocation);
    }
    fn wants_invocations(&self) -> bool {
        self.sink.wants_invocations()
    }
    fn unpaired_timeout(&mut self, event_id: &str, at_ms: i64) {
        self.sink.unpaired_timeout(event_id, at_ms);
    }
    fn incident(&mut self, incident: Incident) {
        self.sink.incident(incident);
    }
    fn signal(&mut self, signal: Signal) {
        self.neighbours.push(signal);
    }
    fn exposure(&mut self, exposure: risk::Exposure) {
        self.sink.exposure(exposure);
    }
    fn wants_signals(&self) -> bool {
        true
    }
}

/// Stream order: timestamp, then event ID (CloudWatch IDs are decimal
/// strings: shorter is smaller), then arrival order.
pub fn sort_stream(events: &mut [LogEvent<'_>]) {
    events.sort_by(|a, b| stream_order((a.timestamp_ms, &a.id), (b.timestamp_ms, &b.id)));
}

/// The order of a stream's events, by `(timestamp, event ID)`: time, then
/// the ID as a number (CloudWatch's IDs are decimal digits; a shorter one
/// is smaller), then as text. Everything that orders events uses it.
pub fn stream_order(a: (i64, &str), b: (i64, &str)) -> std::cmp::Ordering {
    a.0.cmp(&b.0)
        .then_with(|| a.1.len().cmp(&b.1.len()))
        .then_with(|| a.1.cmp(b.1))
}
