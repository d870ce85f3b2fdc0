//! Correlating a batch with what came before it in its stream.
//!
//! CloudWatch Logs delivers a stream in batches, and the ping of a timeout
//! (or the `END` before its thaw) is often in an earlier one. The collector
//! correlates *context + batch* and reports only the findings the batch
//! settles (their timeout line is in it, or the START that decides which
//! invocation a timeout at the thaw belongs to), so the same events give the
//! same findings however they are split, and a redelivered batch gives them
//! again, not twice.
//!
//! Context comes from a bounded per-stream cache of the lines that matter
//! (platform, keepalive, failures) kept by a warm collector, and, when a
//! timeout in the batch still has no ping, from CloudWatch Logs itself
//! (`FilterLogEvents` on the same stream, a bounded window before the batch,
//! [`FILTER_PATTERN`] selecting only lines that matter).

pub mod cloudwatch;

use std::collections::{HashMap, VecDeque};

// Sets of event IDs are built for every batch (thousands of 56-digit IDs):
// a fast hasher, not SipHash. The IDs are CloudWatch's, not an attacker's
// choice of keys in a long-lived table.
use foldhash::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use thawtrace_analyzers::parse::RawText;

use thawtrace_analyzers::Collected;
use thawtrace_analyzers::{
    Config, Finding, FindingSink, Incident, InvocationWindow, LogEvent, Signal, StreamCorrelator,
    sort_stream,
};

/// A CloudWatch Logs filter pattern that keeps the lines correlation needs:
/// platform records (`platform.report`, which ends an invocation on Lambda
/// Managed Instances, and the init and SnapStart restore records, which
/// tell the execution mode, included), keepalive lines of every supported library (C-core's
/// ack timers and transport shutdowns too, which stand in for the timeout
/// line when the `http` tracer is off), connects (grpc-js) and Lambda's
/// function timeouts, urllib3's connections and botocore's retries at
/// DEBUG (a NAT idle reset a retry hid), the
/// failed calls attached to findings, the network failures of the
/// neighbouring kinds and SQS message IDs (`?` terms are ORed). A custom
/// idempotency key needs its name added.
pub const FILTER_PATTERN: &str = concat!(
    r#"?"START RequestId" ?"END RequestId" ?"platform.start" ?"platform.runtimeDone" "#,
    r#"?"platform.report" ?INIT_START ?"platform.initStart" ?RESTORE_START ?"platform.restoreStart" "#,
    r#"?"restore" "#,
    r#"?"| keepalive |" ?"Closing transport" ?"received ping ack" ?" sent [" ?"keepalive ping" "#,
    r#"?"ping timeout timer" ?"-> SHUTDOWN" ?"-> CONNECTING" ?"-> READY" ?"Established TCP connection" "#,
    r#"?"Task timed out" ?"HTTP connection (" ?"Retry needed" ?"retry needed" ?"HTTP/1.1" "#,
    r#"?"ping_sent" ?"ping_ack" ?"keepalive_timeout" ?frozen_ms "#,
    r#"?UNAVAILABLE ?DEADLINE_EXCEEDED ?CANCELLED ?Unavailable ?Cancelled ?DeadlineExceeded "#,
    r#"?ECONNRESET ?"Connection dropped" ?"socket hang up" ?"Connection reset by peer" "#,
    r#"?"timeout on endpoint URL" ?"valid response from endpoint URL" ?ETIMEDOUT ?messageId"#
);

/// An event kept or fetched as context, owning its text: the ID and the
/// message in one shared allocation, so the cache hands a batch its lines
/// without copying them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEvent {
    /// The CloudWatch event ID, then the message.
    text: Arc<str>,
    /// Where the ID ends in `text`.
    id_len: usize,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// True when the message is still the escaped body of a JSON string.
    pub escaped: bool,
}

impl ContextEvent {
    /// The event with ID `id` at `timestamp_ms`; `escaped` when `message`
    /// is still the escaped body of a JSON string.
    pub fn new(id: &str, timestamp_ms: i64, message: &str, escaped: bool) -> Self {
        // Joined in a buffer kept per thread, then copied once into the
        // shared allocation: a fresh `String` would be a second allocation
        // per line, freed at once.
        thread_local! {
            static JOINED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let text = JOINED.with_borrow_mut(|joined| {
            joined.clear();
            joined.push_str(id);
            joined.push_str(message);
            Arc::<str>::from(joined.as_str())
        });
        ContextEvent {
            text,
            id_len: id.len(),
            timestamp_ms,
            escaped,
        }
    }

    /// The CloudWatch event ID.
    pub fn id(&self) -> &str {
        &self.text[..self.id_len]
    }

    /// The message (escaped if [`ContextEvent::escaped`]).
    pub fn message(&self) -> &str {
        &self.text[self.id_len..]
    }

    fn as_log_event(&self) -> LogEvent<'_> {
        LogEvent {
            id: self.id().into(),
            timestamp_ms: self.timestamp_ms,
            text: if self.escaped {
                RawText::JsonEscaped(self.message())
            } else {
                RawText::Plain(self.message())
            },
        }
    }
}

/// What [`LogSource::fetch`] gives: the events, or the error in words.
pub type Fetching<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<ContextEvent>, String>> + Send + 'a>>;

/// Where earlier events of a stream can be fetched from.
pub trait LogSource: Send + Sync {
    /// Events of `stream` in `[start_ms, end_ms)` that may matter.
    fn fetch<'a>(
        &'a self,
        group: &'a str,
        stream: &'a str,
        start_ms: i64,
        end_ms: i64,
    ) -> Fetching<'a>;
}

/// Bounds of the context kept and fetched.
#[derive(Debug, Clone, Copy)]
pub struct LookbackLimits {
    /// How far before a batch context reaches.
    pub window_ms: i64,
    /// Lines kept per stream.
    pub events_per_stream: usize,
    /// Streams kept (least recently used ones go first).
    pub streams: usize,
}

impl Default for LookbackLimits {
    fn default() -> Self {
        LookbackLimits {
            window_ms: 15 * 60 * 1000,
            events_per_stream: 256,
            streams: 512,
        }
    }
}

#[derive(Default)]
struct Cache {
    streams: HashMap<(String, String), VecDeque<ContextEvent>>,
    recency: VecDeque<(String, String)>,
}

/// What correlating one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Findings reported (timeout line in the batch).
    pub findings: u64,
    /// Context lines taken from the cache.
    pub cached: u64,
    /// Context lines fetched from the source.
    pub fetched: u64,
    /// Timeouts in the batch whose ping was found nowhere.
    pub unpaired: u64,
    /// A look back was needed and the source gave nothing (failed, timed
    /// out or skipped; logged): the batch went on with what it had.
    pub lookup_failed: bool,
    /// Why, when [`BatchOutcome::lookup_failed`].
    pub lookup_error: Option<String>,
    /// The timeouts of the batch whose ping could not be looked up, when
    /// [`BatchOutcome::lookup_failed`]: their event IDs and times.
    pub unlooked: Vec<(String, i64)>,
}

/// Keeps context between batches and fetches what is missing.
pub struct Lookback {
    limits: LookbackLimits,
    cache: Option<Mutex<Cache>>,
    source: Option<Box<dyn LogSource>>,
}

/// What correlating context + batch gave: the findings and windows, and
/// the timeouts whose ping was missing.
#[derive(Default)]
struct Gathered {
    collected: Collected,
    unpaired: Vec<(String, i64)>,
    /// The `END` and `REPORT` lines of invocations whose `START` was not
    /// read ([`StreamCorrelator::unannounced_lines`]).
    unannounced: Vec<String>,
}

impl FindingSink for Gathered {
    fn finding(&mut self, finding: Finding) {
        self.collected.finding(finding);
    }
    fn incident(&mut self, incident: Incident) {
        self.collected.incident(incident);
    }
    fn signal(&mut self, signal: Signal) {
        self.collected.signal(signal);
    }
    fn wants_signals(&self) -> bool {
        true
    }
    fn invocation(&mut self, invocation: InvocationWindow) {
        self.collected.invocation(invocation);
    }
    fn wants_invocations(&self) -> bool {
        true
    }
    fn unpaired_timeout(&mut self, event_id: &str, at_ms: i64) {
        self.unpaired.push((event_id.to_owned(), at_ms));
    }
}

impl Lookback {
    /// A lookback with an optional warm cache and an optional source.
    pub fn new(limits: LookbackLimits, cache: bool, source: Option<Box<dyn LogSource>>) -> Self {
        Lookback {
            limits,
            cache: cache.then(|| Mutex::new(Cache::default())),
            source,
        }
    }

    /// The cached lines of a stream from `from_ms` on, but those the batch
    /// holds (a batch delivered again). An event ID names one event, at
    /// one time: only the batch's events within the cached lines' times can
    /// be among them, and those are few (the cache ends where the batch
    /// begins), so only they are looked up.
    fn cached(
        &self,
        key: &(String, String),
        from_ms: i64,
        batch: &[LogEvent<'_>],
    ) -> Vec<ContextEvent> {
        let Some(cache) = &self.cache else {
            return Vec::new();
        };
        let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        let Some(events) = cache.streams.get(key) else {
            return Vec::new();
        };
        let newest = events
            .iter()
            .map(|e| e.timestamp_ms)
            .max()
            .unwrap_or(i64::MIN);
        let again: HashSet<&str> = batch
            .iter()
            .filter(|e| e.timestamp_ms >= from_ms && e.timestamp_ms <= newest)
            .map(|e| e.id.as_ref())
            .collect();
        events
            .iter()
            .filter(|e| e.timestamp_ms >= from_ms && !again.contains(e.id()))
            .cloned()
            .collect()
    }

    fn remember(&self, key: (String, String), relevant: Vec<ContextEvent>) {
        let Some(cache) = &self.cache else { return };
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        let limit = self.limits.events_per_stream;
        let window = self.limits.window_ms;
        let events = cache.streams.entry(key.clone()).or_default();
        let order = |a: &ContextEvent, b: &ContextEvent| {
            thawtrace_analyzers::stream_order((a.timestamp_ms, a.id()), (b.timestamp_ms, b.id()))
        };
        // Only what the cache does not hold yet (a batch delivered again
        // holds nothing new). An event ID names one event, at one time:
        // only the cached lines from the earliest new one's time on (the
        // cache is in stream order) can be the same.
        let earliest = relevant
            .iter()
            .map(|e| e.timestamp_ms)
            .min()
            .unwrap_or(i64::MAX);
        let mut new: Vec<ContextEvent> = {
            let from = events.partition_point(|e| e.timestamp_ms < earliest);
            let mut seen: HashSet<&str> = events.range(from..).map(ContextEvent::id).collect();
            let keep: Vec<bool> = relevant.iter().map(|e| seen.insert(e.id())).collect();
            relevant
                .into_iter()
                .zip(keep)
                .filter_map(|(e, keep)| keep.then_some(e))
                .collect()
        };
        new.sort_by(order);
        // New lines usually follow the cached ones: sorted by themselves,
        // they are appended; otherwise all are sorted again.
        let follows = match (events.back(), new.first()) {
            (Some(last), Some(first)) => order(last, first).is_le(),
            _ => true,
        };
        events.extend(new);
        if !follows {
            events.make_contiguous().sort_by(order);
        }
        // The window runs back from the newest line the stream has shown.
        let newest = events.back().map_or(i64::MIN, |e| e.timestamp_ms);
        while events.len() > limit
            || events
                .front()
                .is_some_and(|e| e.timestamp_ms < newest.saturating_sub(window))
        {
            events.pop_front();
        }
        cache.recency.retain(|k| *k != key);
        cache.recency.push_back(key);
        while cache.recency.len() > self.limits.streams {
            if let Some(old) = cache.recency.pop_front() {
                cache.streams.remove(&old);
            }
        }
    }

    /// Correlates the context (its first `in_cache` events from the
    /// cache, the rest fetched) with the batch; returns what was found and
    /// the lines worth caching that the cache does not hold.
    fn correlate(
        group: &str,
        stream: &str,
        context: &[ContextEvent],
        in_cache: usize,
        batch: &[LogEvent<'_>],
        config: &Config,
    ) -> (Gathered, Vec<ContextEvent>) {
        let mut events: Vec<LogEvent<'_>> =
            context.iter().map(ContextEvent::as_log_event).collect();
        events.extend(batch.iter().cloned());
        sort_stream(&mut events);
        let config = Config {
            record_relevant: true,
            ..config.clone()
        };
        let mut correlator = StreamCorrelator::new(group, stream, config);
        for e in &events {
            correlator.push(e);
        }
        // The context is in the cache already: only the batch's relevant
        // lines are new to it, and the function's last lines of its own,
        // which the silence before the next batch's first line is measured
        // from (as a scan of the whole stream measures it).
        let cached: HashSet<&str> = context[..in_cache].iter().map(ContextEvent::id).collect();
        let lines = correlator.relevant_positions();
        // (Positions are recorded in stream order: a binary search says
        // whether a last line of its own is already among them.)
        let spoken = correlator
            .last_spoken_positions()
            .filter(|p| lines.binary_search(p).is_err());
        let relevant = lines
            .iter()
            .copied()
            .chain(spoken)
            .map(|p| &events[p as usize])
            .filter(|e| !cached.contains(e.id.as_ref()))
            .map(|e| {
                let (message, escaped) = match e.text {
                    RawText::Plain(s) => (s, false),
                    RawText::JsonEscaped(s) => (s, true),
                };
                ContextEvent::new(&e.id, e.timestamp_ms, message, escaped)
            })
            .collect();
        let mut gathered = Gathered {
            unannounced: correlator.unannounced_lines().map(str::to_owned).collect(),
            ..Gathered::default()
        };
        correlator.finish(&mut gathered);
        (gathered, relevant)
    }

    /// Correlates one batch of one stream with its context and pushes the
    /// findings this batch settles (their timeout line, or the START that
    /// decides the owner of a timeout written at the thaw, is in it), and the
    /// invocations whose `END` is in it.
    ///
    /// A source that fails (or is slow, or skipped: see [`crate::guard`])
    /// costs the batch only what it would have given: the batch goes on
    /// with the cache, and the timeouts whose ping was missing are named in
    /// [`BatchOutcome::unlooked`], for the caller to report as such.
    ///
    /// # Errors
    ///
    /// None today: the `Result` is kept for sources whose failure a caller
    /// must see.
    pub async fn analyze(
        &self,
        group: &str,
        stream: &str,
        batch: &[LogEvent<'_>],
        config: &Config,
        sink: &mut impl FindingSink,
    ) -> Result<BatchOutcome, String> {
        let mut outcome = BatchOutcome::default();
        let Some(bounds) = BatchBounds::of(batch) else {
            return Ok(outcome);
        };
        let key = (group.to_owned(), stream.to_owned());
        let mut context = self.cached(&key, bounds.start_ms - self.limits.window_ms, batch);
        outcome.cached = context.len() as u64;
        let in_cache = context.len();
        let (mut gathered, mut relevant) =
            Self::correlate(group, stream, &context, in_cache, batch, config);
        let (missing, incomplete) = {
            let ours = InBatch::of(&context);
            let missing: Vec<i64> = ours.unpaired(&gathered).map(|&(_, ts)| ts).collect();
            // A batch that ends an invocation the cached lines never
            // started: the stream's batch with its START went to another
            // instance. The cache is not the whole story: look back, as a
            // collector new to the stream does.
            let incomplete = in_cache > 0
                && gathered
                    .unannounced
                    .iter()
                    .any(|id| ours.contains(id.as_str()));
            (missing, incomplete)
        };
        let lookup_from = self.lookup_from(&missing, &context, &key, bounds.start_ms, incomplete);
        if let (Some(source), Some(earliest)) = (&self.source, lookup_from) {
            let fetched = self
                .fetch_before(
                    source.as_ref(),
                    (group, stream),
                    earliest,
                    bounds.start_ms,
                    &mut outcome,
                )
                .await;
            if !fetched.is_empty() {
                outcome.fetched = add_fetched(&mut context, fetched, batch);
                (gathered, relevant) =
                    Self::correlate(group, stream, &context, in_cache, batch, config);
            }
        }
        let ours = InBatch::of(&context);
        outcome.unpaired = ours.unpaired(&gathered).count() as u64;
        if outcome.lookup_failed {
            outcome.unlooked = ours.unpaired(&gathered).cloned().collect();
        }
        self.remember(key, relevant);
        outcome.findings = report_settled(gathered.collected, &bounds, &ours, sink);
        Ok(outcome)
    }

    /// How far back a look at the stream must reach, if it needs one: to
    /// the earliest timeout in the batch whose ping is `missing` (or the
    /// batch's start, if earlier); or, for a stream this collector has not
    /// seen, to the batch's start.
    fn lookup_from(
        &self,
        missing: &[i64],
        context: &[ContextEvent],
        key: &(String, String),
        batch_start: i64,
        incomplete: bool,
    ) -> Option<i64> {
        // A collector that has not seen this stream looks back once: a
        // timeout written at the thaw just before this batch's first START
        // is settled by that START, and the pings of timeouts to come are
        // in earlier batches.
        let cold = incomplete
            || context.is_empty()
                && self.cache.as_ref().is_none_or(|c| {
                    !c.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .streams
                        .contains_key(key)
                });
        match (missing.iter().min(), cold) {
            (Some(&earliest), _) => Some(earliest.min(batch_start)),
            (None, true) => Some(batch_start),
            (None, false) => None,
        }
    }

    /// The stream's lines from a window before `earliest` up to the batch.
    /// When the source fails, the failure is logged and noted in
    /// `outcome`, and the batch goes on without.
    async fn fetch_before(
        &self,
        source: &dyn LogSource,
        (group, stream): (&str, &str),
        earliest: i64,
        batch_start: i64,
        outcome: &mut BatchOutcome,
    ) -> Vec<ContextEvent> {
        match source
            .fetch(
                group,
                stream,
                earliest - self.limits.window_ms,
                batch_start + 1,
            )
            .await
        {
            Ok(fetched) => fetched,
            Err(e) => {
                outcome.lookup_failed = true;
                eprintln!(
                    "{}",
                    serde_json::json!({"thawtrace": "lookback_failed", "error_type": "LookbackUnavailable", "log_group": group, "log_stream": stream, "error": e})
                );
                outcome.lookup_error = Some(e);
                Vec::new()
            }
        }
    }
}

/// The times a batch spans.
struct BatchBounds {
    start_ms: i64,
    end_ms: i64,
}

impl BatchBounds {
    /// `None` for an empty batch.
    fn of(batch: &[LogEvent<'_>]) -> Option<Self> {
        let start_ms = batch.iter().map(|e| e.timestamp_ms).min()?;
        let end_ms = batch
            .iter()
            .map(|e| e.timestamp_ms)
            .max()
            .unwrap_or(start_ms);
        Some(BatchBounds { start_ms, end_ms })
    }
}

/// Which of the events the correlator saw are the batch's. It saw the
/// context and the batch, which share no event (the context leaves out
/// what the batch holds), so an ID is the batch's when the context does
/// not hold it: a set of the context's few hundred IDs, not of the
/// batch's thousands.
struct InBatch<'c> {
    context: HashSet<&'c str>,
}

impl<'c> InBatch<'c> {
    fn of(context: &'c [ContextEvent]) -> Self {
        InBatch {
            context: context.iter().map(ContextEvent::id).collect(),
        }
    }

    /// True for an ID of an event the correlator saw that is not the
    /// context's.
    fn contains(&self, id: &str) -> bool {
        !self.context.contains(id)
    }

    /// The timeouts in this batch whose ping is missing: their event IDs
    /// and times.
    fn unpaired<'g>(&self, gathered: &'g Gathered) -> impl Iterator<Item = &'g (String, i64)> {
        gathered
            .unpaired
            .iter()
            .filter(|(id, _)| self.contains(id.as_str()))
    }
}

/// Adds to the context the fetched lines that neither it nor the batch
/// holds; returns how many.
fn add_fetched(
    context: &mut Vec<ContextEvent>,
    fetched: Vec<ContextEvent>,
    batch: &[LogEvent<'_>],
) -> u64 {
    let known: HashSet<String> = context
        .iter()
        .map(|e| e.id().to_owned())
        .chain(batch.iter().map(|e| e.id.clone().into_owned()))
        .collect();
    let before = context.len();
    context.extend(fetched.into_iter().filter(|e| !known.contains(e.id())));
    (context.len() - before) as u64
}

/// Pushes to `sink` what the batch settles: the invocations whose `END` is
/// in it, the findings whose settling line is, and the incidents and
/// signals it ends. Returns how many findings and incidents it pushed.
fn report_settled(
    collected: Collected,
    batch: &BatchBounds,
    ours: &InBatch<'_>,
    sink: &mut impl FindingSink,
) -> u64 {
    let mut reported = 0;
    for inv in collected.invocations {
        if inv
            .end_ms
            .is_some_and(|end| (batch.start_ms..=batch.end_ms).contains(&end))
        {
            sink.invocation(inv);
        }
    }
    for f in collected.findings {
        if f.settled_by.as_deref().is_some_and(|id| ours.contains(id)) {
            reported += 1;
            sink.finding(f);
        }
    }
    // A NAT idle reset is reported with the batch holding its last
    // failure line; signals with the batch holding their line.
    for i in collected.incidents {
        if i.evidence
            .last()
            .is_some_and(|id| ours.contains(id.as_str()))
        {
            reported += 1;
            sink.incident(i);
        }
    }
    for s in collected.signals {
        if ours.contains(s.event_id.as_str()) {
            sink.signal(s);
        }
    }
    reported
}
