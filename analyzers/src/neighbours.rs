//! Cross-stream analysis: connect stalls and duplicate invocations.
//!
//! A stream's correlator tells what it saw ([`Signal`]s: invocation
//! starts, connect timeouts, idempotency keys, each with the invocation that
//! owns it); `Neighbours` gathers them per log group and reports:
//!
//! - `connect_stall`: connect timeouts of at least
//!   [`Config::connect_stall_min_envs`] execution environments (log
//!   streams) within [`Config::connect_stall_window_ms`] of the first;
//! - `duplicate_invocation`: one request ID with more than one `START`
//!   (an async invocation retried), or one idempotency key under more than
//!   one request ID (an event delivered again).
//!
//! Time is event time: "now" is the [watermark](Neighbours::watermark_ms),
//! the newest signal time seen, never the wall clock, so a backlog replayed
//! hours or months late gives the same findings as a live feed. Memory is
//! bounded by count: at most [`Config::max_tracked`] signals are held; past
//! that, new ones are counted in [`Neighbours::dropped`] and ignored.
//! A batch caller reads everything and calls [`Neighbours::flush`]; a
//! long-running one calls [`Neighbours::emit_ready`] after each batch,
//! which reports what is new at once (streams arrive one batch at a time,
//! so a stall is reported when enough environments are in, a duplicate
//! when an attempt is added) and forgets what is older than the windows,
//! measured back from the watermark. Signals that arrive later than a
//! window behind the watermark are still reported with what is held, but
//! cannot be joined to signals already forgotten.
//!
//! ```
//! use thawtrace_analyzers::{Collected, Config, FindingKind, Neighbours, Signal, SignalKind};
//! let mut n = Neighbours::new(&Config::default());
//! for (stream, event) in [("a", "1"), ("b", "2")] {
//!     n.push(Signal {
//!         log_group: "/aws/lambda/orders".into(),
//!         log_stream: stream.into(),
//!         request_id: Some("5d1a0000-0000-4000-8000-000000000001".into()),
//!         at_ms: 1_000,
//!         event_id: event.into(),
//!         what: SignalKind::Start,
//!     });
//! }
//! let mut out = Collected::default();
//! n.flush(&mut out);
//! assert_eq!(out.incidents[0].kind(), FindingKind::DuplicateInvocation);
//! assert_eq!(out.incidents[0].log_streams, ["a", "b"]);
//! ```

use std::collections::BTreeSet;

// Keyed by request and event IDs, one entry per START seen: a fast hasher.
use foldhash::{HashMap, HashSet};
use std::collections::hash_map::Entry;
use std::sync::Arc;

use crate::correlate::Config;
use crate::finding::{Detail, DuplicateReason, FindingSink, Incident, Signal, SignalKind};

/// At most this many starts of one request ID, or logged copies of one
/// idempotency key, are kept: enough for any real retry count, and it
/// keeps the check for an event read twice short.
const MAX_HITS: usize = 64;

#[derive(Clone, Debug)]
struct Hit {
    stream: Arc<str>,
    request_id: Option<String>,
    at_ms: i64,
    event_id: String,
    destination: Option<String>,
}

#[derive(Debug, Default)]
struct Tracked {
    hits: Vec<Hit>,
    /// Distinct attempts already reported (streaming mode).
    reported: usize,
    /// An event of it came again since (a batch delivered again): its
    /// incident is given again, as the batch's other findings are.
    again: bool,
    /// Listed among the pending keys: it gained a hit, or one came again,
    /// since the last report.
    pending: bool,
}

/// Gathers the signals of many streams; see the module documentation.
#[derive(Debug)]
pub struct Neighbours {
    window_ms: i64,
    min_envs: usize,
    duplicate_window_ms: i64,
    cap: usize,
    held: usize,
    dropped: u64,
    /// The newest signal time seen (event time, ms since the epoch).
    watermark_ms: Option<i64>,
    stalls: HashMap<Arc<str>, Vec<Hit>>,
    /// The connect timeouts held, by event ID.
    stall_events: HashSet<String>,
    /// Stalls already reported (streaming mode), by their first event.
    reported_stalls: HashSet<String>,
    /// Connect timeouts that came again since the last report (a batch
    /// delivered again): the stalls holding them are given again.
    stall_events_again: HashSet<String>,
    starts: HashMap<(Arc<str>, String), Tracked>,
    keys: HashMap<(Arc<str>, String), Tracked>,
    /// The request IDs and keys that gained a second hit, or saw one
    /// again, since the last report: the only ones a report can be due
    /// for, so a batch does not walk every START held.
    pending_starts: Vec<(Arc<str>, String)>,
    pending_keys: Vec<(Arc<str>, String)>,
    /// No request ID or key held has all its hits older than this: while
    /// the forgetting horizon stays below it, nothing is forgotten and the
    /// maps are not walked.
    stalest_ms: i64,
}

impl Neighbours {
    /// An empty gatherer with the thresholds of `config`.
    pub fn new(config: &Config) -> Self {
        Neighbours {
            window_ms: config.connect_stall_window_ms,
            min_envs: config.connect_stall_min_envs.max(1),
            duplicate_window_ms: config.duplicate_window_ms,
            cap: config.max_tracked,
            held: 0,
            dropped: 0,
            watermark_ms: None,
            stalls: HashMap::default(),
            reported_stalls: HashSet::default(),
            stall_events_again: HashSet::default(),
            stall_events: HashSet::default(),
            starts: HashMap::default(),
            pending_starts: Vec::new(),
            pending_keys: Vec::new(),
            stalest_ms: i64::MAX,
            keys: HashMap::default(),
        }
    }

    /// Signals ignored: [`Config::max_tracked`] were held, or the 64
    /// attempts kept of one request ID or key were.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The newest event time among the signals pushed so far: the clock
    /// [`Neighbours::emit_ready`] forgets by. `None` before the first one.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.watermark_ms
    }

    /// Takes one signal.
    pub fn push(&mut self, signal: Signal) {
        self.watermark_ms = Some(
            self.watermark_ms
                .map_or(signal.at_ms, |w| w.max(signal.at_ms)),
        );
        if self.held >= self.cap {
            self.dropped += 1;
            return;
        }
        let Signal {
            log_group,
            log_stream,
            request_id,
            at_ms,
            event_id,
            what,
        } = signal;
        let mut hit = Hit {
            stream: log_stream,
            request_id,
            at_ms,
            event_id,
            destination: None,
        };
        let (map, pending, key) = match what {
            SignalKind::Start => {
                // The key holds the request ID; the hit need not.
                let Some(rid) = hit.request_id.take() else {
                    return;
                };
                (&mut self.starts, &mut self.pending_starts, (log_group, rid))
            }
            SignalKind::ConnectTimeout { destination } => {
                hit.destination = destination;
                self.connect_timeout(log_group, hit);
                return;
            }
            SignalKind::Key { key } => {
                if hit.request_id.is_none() {
                    return;
                }
                (&mut self.keys, &mut self.pending_keys, (log_group, key))
            }
        };
        self.stalest_ms = self.stalest_ms.min(hit.at_ms);
        let tracked = match map.entry(key) {
            Entry::Vacant(v) => {
                v.insert(Tracked {
                    hits: vec![hit],
                    ..Tracked::default()
                });
                self.held += 1;
                return;
            }
            Entry::Occupied(o) => {
                if !o.get().pending {
                    pending.push(o.key().clone());
                }
                let t = o.into_mut();
                t.pending = true;
                t
            }
        };
        // Once per event, as above; past MAX_HITS, more of one request ID or
        // key adds nothing but cost.
        if tracked.hits.iter().any(|h| h.event_id == hit.event_id) {
            tracked.again |= tracked.reported > 0;
            return;
        }
        if tracked.hits.len() >= MAX_HITS {
            self.dropped += 1;
            return;
        }
        tracked.hits.push(hit);
        self.held += 1;
    }

    /// A connect timeout, towards its group's stalls; the same event read
    /// twice (a batch and its lookback context) counts once.
    fn connect_timeout(&mut self, group: Arc<str>, hit: Hit) {
        if self.stall_events.insert(hit.event_id.clone()) {
            self.stalls.entry(group).or_default().push(hit);
            self.held += 1;
        } else {
            self.stall_events_again.insert(hit.event_id);
        }
    }

    /// The incidents a whole scan of `signals` reports (a fresh gatherer,
    /// [`Neighbours::flush`]ed): what collectors that share their signals
    /// compute from those stored, so both modes give one answer.
    ///
    /// ```
    /// use thawtrace_analyzers::{Config, Neighbours, Signal, SignalKind};
    /// let start = |stream: &str, event: &str| Signal {
    ///     log_group: "/aws/lambda/orders".into(),
    ///     log_stream: stream.into(),
    ///     request_id: Some("5d1a0000-0000-4000-8000-000000000001".into()),
    ///     at_ms: 1_000,
    ///     event_id: event.into(),
    ///     what: SignalKind::Start,
    /// };
    /// let found = Neighbours::incidents_of(&Config::default(), [start("b", "2"), start("a", "1")]);
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].evidence, ["1", "2"]);
    /// ```
    pub fn incidents_of(
        config: &Config,
        signals: impl IntoIterator<Item = Signal>,
    ) -> Vec<Incident> {
        let mut n = Neighbours::new(config);
        for signal in signals {
            n.push(signal);
        }
        let mut out = crate::Collected::default();
        n.flush(&mut out);
        out.incidents
    }

    /// Reports everything gathered and forgets it (batch callers).
    pub fn flush(&mut self, sink: &mut impl FindingSink) {
        let mut groups: Vec<_> = std::mem::take(&mut self.stalls).into_iter().collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        for (group, mut hits) in groups {
            self.stall_windows(&group, &mut hits, sink);
        }
        self.reported_stalls.clear();
        self.stall_events.clear();
        self.stall_events_again.clear();
        // Only what happened more than once is sorted and reported.
        for (key, tracked) in sorted(std::mem::take(&mut self.starts), |t| t.hits.len() >= 2) {
            retried(&key.0, &key.1, &tracked.hits, sink);
        }
        for (key, tracked) in sorted(std::mem::take(&mut self.keys), |t| t.hits.len() >= 2) {
            same_key(&key.0, &key.1, &tracked.hits, sink);
        }
        self.pending_starts.clear();
        self.pending_keys.clear();
        self.stalest_ms = i64::MAX;
        self.held = 0;
    }

    /// Long-running callers, after each batch: reports what is new. A
    /// connect stall is reported once, when its window holds
    /// [`Config::connect_stall_min_envs`] environments (with those seen so
    /// far: an early alarm); a duplicate when a request ID or key gains an
    /// attempt (again with each further one). Signals older than the
    /// [watermark](Neighbours::watermark_ms) minus the longer of
    /// [`Config::duplicate_window_ms`] and [`Config::connect_stall_window_ms`]
    /// are forgotten: event time, so a replayed backlog joins as a live
    /// feed does.
    pub fn emit_ready(&mut self, sink: &mut impl FindingSink) {
        let Some(now_ms) = self.watermark_ms else {
            return;
        };
        let horizon = now_ms.saturating_sub(self.duplicate_window_ms.max(self.window_ms));
        let mut groups: Vec<Arc<str>> = self.stalls.keys().cloned().collect();
        groups.sort();
        for group in groups {
            let mut hits = self.stalls.remove(&group).expect("listed");
            let reported = self.stall_windows(&group, &mut hits, sink);
            self.reported_stalls.extend(reported);
            let before = hits.len();
            hits.retain(|h| h.at_ms >= horizon);
            self.held -= before - hits.len();
            if !hits.is_empty() {
                self.stalls.insert(group, hits);
            }
        }
        self.stall_events_again.clear();
        let live: HashSet<&str> = self
            .stalls
            .values()
            .flatten()
            .map(|h| h.event_id.as_str())
            .collect();
        self.reported_stalls.retain(|id| live.contains(id.as_str()));
        self.stall_events.retain(|id| live.contains(id.as_str()));
        let forget = horizon > self.stalest_ms;
        let mut stalest = i64::MAX;
        for (tracked, pending, same) in [
            (&mut self.starts, &mut self.pending_starts, false),
            (&mut self.keys, &mut self.pending_keys, true),
        ] {
            let mut due = std::mem::take(pending);
            due.sort();
            for key in &due {
                let Some(t) = tracked.get_mut(key) else {
                    continue;
                };
                t.pending = false;
                if t.again || attempts(&t.hits, same) > t.reported.max(1) {
                    if same {
                        same_key(&key.0, &key.1, &t.hits, sink);
                    } else {
                        retried(&key.0, &key.1, &t.hits, sink);
                    }
                    t.reported = attempts(&t.hits, same);
                    t.again = false;
                }
            }
            if forget {
                let held = &mut self.held;
                tracked.retain(|_, t| {
                    let newest = t.hits.iter().map(|h| h.at_ms).max().unwrap_or(i64::MIN);
                    if newest < horizon {
                        *held -= t.hits.len();
                        return false;
                    }
                    stalest = stalest.min(newest);
                    true
                });
            }
        }
        if forget {
            self.stalest_ms = stalest;
        }
    }

    /// Sorts a group's connect timeouts into windows (each from its first
    /// timeout) and reports each window that is a stall and not reported
    /// yet; returns the first event IDs of those it reported.
    fn stall_windows(
        &self,
        group: &str,
        hits: &mut [Hit],
        sink: &mut impl FindingSink,
    ) -> Vec<String> {
        hits.sort_by(by_time);
        let mut reported = Vec::new();
        let mut i = 0;
        while i < hits.len() {
            let end = hits[i].at_ms.saturating_add(self.window_ms);
            let j = hits[i..].partition_point(|h| h.at_ms <= end) + i;
            // Not reported yet, or reported and an event of it came again.
            let fresh = !self.reported_stalls.contains(&hits[i].event_id)
                || hits[i..j]
                    .iter()
                    .any(|h| self.stall_events_again.contains(&h.event_id));
            if fresh && self.stall(group, &hits[i..j], sink) {
                reported.push(hits[i].event_id.clone());
            }
            i = j;
        }
        reported
    }

    /// Reports the hits of one window as a stall if enough environments
    /// are in it; says whether it did.
    fn stall(&self, group: &str, hits: &[Hit], sink: &mut impl FindingSink) -> bool {
        let streams: BTreeSet<&str> = hits.iter().map(|h| &*h.stream).collect();
        if streams.len() < self.min_envs {
            return false;
        }
        let destinations: BTreeSet<String> =
            hits.iter().filter_map(|h| h.destination.clone()).collect();
        sink.incident(Incident {
            log_group: group.to_owned(),
            log_stream: hits[0].stream.to_string(),
            log_streams: streams.iter().map(|s| (*s).to_owned()).collect(),
            request_ids: distinct_ids(hits),
            first_at_ms: hits[0].at_ms,
            last_at_ms: hits[hits.len() - 1].at_ms,
            detail: Detail::ConnectStall {
                environments: streams.len(),
                destinations: destinations.into_iter().collect(),
                window_ms: self.window_ms,
            },
            evidence: hits.iter().map(|h| h.event_id.clone()).collect(),
            tenant_id: None,
        });
        true
    }
}

/// Hits in event time, those of one millisecond by event ID: the same
/// order however the signals came in (a whole scan, batches, or a
/// collector's read of the shared state), so a window's first event, and
/// the incident's ID derived from it, never depend on arrival order.
fn by_time(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    (a.at_ms, &a.event_id).cmp(&(b.at_ms, &b.event_id))
}

/// How collectors that share their signals agree on a cross-stream
/// incident: which one it is, when it may be reported, and when to report
/// it again. Pure: a store of reported markers (the collector's DynamoDB
/// table) keeps `size` under `identity`.
///
/// ```
/// use thawtrace_analyzers::neighbours::Settlement;
/// use thawtrace_analyzers::{Detail, DuplicateReason, Incident};
/// let retried = Incident {
///     log_group: "/aws/lambda/orders".into(),
///     log_stream: "a".into(),
///     log_streams: vec!["a".into(), "b".into()],
///     request_ids: vec!["r1".into()],
///     first_at_ms: 1_000,
///     last_at_ms: 61_000,
///     detail: Detail::DuplicateInvocation { reason: DuplicateReason::Retried, attempts: 2, key: None },
///     evidence: vec!["1".into(), "2".into()],
///     tenant_id: None,
/// };
/// let s = Settlement::of(&retried).unwrap();
/// assert_eq!(s.identity, "duplicate_invocation#retried#/aws/lambda/orders#r1");
/// assert_eq!(s.size, 2);
/// assert!(s.is_closed(i64::MIN), "a duplicate is reported at once");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// Names the incident whatever batch or collector computes it: a
    /// stall by its window's first event, a duplicate by its request ID
    /// or idempotency key (each with the kind and log group).
    pub identity: String,
    /// Reported again when this grows: a duplicate's attempts, a stall's
    /// connect timeouts.
    pub size: usize,
    /// A connect stall's window is final once the event-time watermark
    /// (the newest event any collector has seen) passes this: its end plus
    /// one more window, so timeouts up to a window late still join it
    /// as a whole scan would. `None` for a duplicate, reported as soon
    /// as it is one and again with each attempt.
    pub closed_after_ms: Option<i64>,
}

impl Settlement {
    /// The settlement of a cross-stream incident; `None` for a
    /// `nat_idle_reset` or a `snapstart_stale_connection`, which one
    /// stream settles.
    pub fn of(incident: &Incident) -> Option<Settlement> {
        let group = &incident.log_group;
        match &incident.detail {
            Detail::NatIdleReset { .. }
            | Detail::SnapStartStaleConnection { .. }
            | Detail::KeepaliveNearMiss { .. }
            | Detail::NatIdleNearMiss { .. }
            | Detail::ConnectSlow { .. } => None,
            Detail::ConnectStall { window_ms, .. } => Some(Settlement {
                identity: format!(
                    "connect_stall#{group}#{}",
                    incident.evidence.first().map_or("", String::as_str)
                ),
                size: incident.evidence.len(),
                closed_after_ms: Some(
                    incident
                        .first_at_ms
                        .saturating_add(window_ms.saturating_mul(2)),
                ),
            }),
            Detail::DuplicateInvocation {
                reason,
                attempts,
                key,
            } => {
                let what = match reason {
                    DuplicateReason::Retried => {
                        incident.request_ids.first().map_or("", String::as_str)
                    }
                    DuplicateReason::SameKey => key.as_deref().unwrap_or(""),
                };
                Some(Settlement {
                    identity: format!("duplicate_invocation#{}#{group}#{what}", reason.as_str()),
                    size: *attempts,
                    closed_after_ms: None,
                })
            }
        }
    }

    /// Whether it may be reported once the watermark is at `watermark_ms`.
    pub fn is_closed(&self, watermark_ms: i64) -> bool {
        self.closed_after_ms.is_none_or(|t| watermark_ms > t)
    }
}

fn sorted<V>(
    map: HashMap<(Arc<str>, String), V>,
    keep: impl Fn(&V) -> bool,
) -> Vec<((Arc<str>, String), V)> {
    let mut v: Vec<_> = map.into_iter().filter(|(_, t)| keep(t)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn attempts(hits: &[Hit], same_key: bool) -> usize {
    if same_key {
        distinct_ids(hits).len()
    } else {
        hits.len()
    }
}

fn distinct_ids(hits: &[Hit]) -> Vec<String> {
    let mut ordered: Vec<&Hit> = hits.iter().collect();
    ordered.sort_by(|a, b| by_time(a, b));
    let mut ids: Vec<String> = Vec::new();
    for h in ordered {
        if let Some(id) = &h.request_id
            && !ids.contains(id)
        {
            ids.push(id.clone());
        }
    }
    ids
}

fn duplicate(
    group: &str,
    hits: &[Hit],
    request_ids: Vec<String>,
    reason: DuplicateReason,
    attempts: usize,
    key: Option<String>,
) -> Incident {
    let mut hits: Vec<&Hit> = hits.iter().collect();
    hits.sort_by(|a, b| by_time(a, b));
    let streams: BTreeSet<&str> = hits.iter().map(|h| &*h.stream).collect();
    Incident {
        log_group: group.to_owned(),
        log_stream: hits[0].stream.to_string(),
        log_streams: streams.iter().map(|s| (*s).to_owned()).collect(),
        request_ids,
        first_at_ms: hits[0].at_ms,
        last_at_ms: hits[hits.len() - 1].at_ms,
        detail: Detail::DuplicateInvocation {
            reason,
            attempts,
            key,
        },
        evidence: hits.iter().map(|h| h.event_id.clone()).collect(),
        tenant_id: None,
    }
}

fn retried(group: &str, request_id: &str, hits: &[Hit], sink: &mut impl FindingSink) {
    if hits.len() >= 2 {
        let ids = vec![request_id.to_owned()];
        sink.incident(duplicate(
            group,
            hits,
            ids,
            DuplicateReason::Retried,
            hits.len(),
            None,
        ));
    }
}

fn same_key(group: &str, key: &str, hits: &[Hit], sink: &mut impl FindingSink) {
    let ids = distinct_ids(hits);
    let n = ids.len();
    if n >= 2 {
        sink.incident(duplicate(
            group,
            hits,
            ids,
            DuplicateReason::SameKey,
            n,
            Some(key.to_owned()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Collected;

    const DAY_MS: i64 = 86_400_000;

    fn start(stream: &str, event: &str, at_ms: i64) -> Signal {
        Signal {
            log_group: "/aws/lambda/orders".into(),
            log_stream: stream.into(),
            request_id: Some("5d1a0000-0000-4000-8000-000000000001".into()),
            at_ms,
            event_id: event.into(),
            what: SignalKind::Start,
        }
    }

    fn emitted(n: &mut Neighbours) -> Vec<Incident> {
        let mut out = Collected::default();
        n.emit_ready(&mut out);
        out.incidents
    }

    /// A batch delivered again (its export failed) gives its cross-stream
    /// incidents again, the same ones, as it gives its other findings;
    /// a batch that brings nothing new gives none.
    #[test]
    fn a_batch_delivered_again_gives_its_incidents_again() {
        let mut n = Neighbours::new(&Config::default());
        let timeout = |stream: &str, event: &str, at_ms| Signal {
            what: SignalKind::ConnectTimeout {
                destination: Some("10.0.0.1:443".into()),
            },
            ..start(stream, event, at_ms)
        };
        let batch = [
            start("a", "1", 1_000),
            start("b", "2", 2_000),
            timeout("a", "3", 5_000),
            timeout("b", "4", 5_100),
            timeout("c", "5", 5_200),
        ];
        for s in batch.clone() {
            n.push(s);
        }
        let first = emitted(&mut n);
        assert_eq!(first.len(), 2, "{first:#?}");
        assert!(emitted(&mut n).is_empty(), "nothing new, nothing again");
        for s in batch {
            n.push(s);
        }
        assert_eq!(emitted(&mut n), first);
        n.push(start("c", "6", 9_000));
        let third = emitted(&mut n);
        assert_eq!(third.len(), 1, "only the duplicate gained an attempt");
    }

    #[test]
    fn a_backlog_years_old_is_joined_across_batches_as_a_live_feed_is() {
        // Two attempts of one invocation, an hour apart, delivered in two
        // batches, years before whatever the wall clock says.
        for base in [0, 365 * DAY_MS, 40 * 365 * DAY_MS] {
            let mut n = Neighbours::new(&Config::default());
            n.push(start("a", "1", base + 1_000));
            assert!(emitted(&mut n).is_empty());
            n.push(start("b", "2", base + 3_600_000));
            let found = emitted(&mut n);
            assert_eq!(found.len(), 1, "base {base}");
            assert_eq!(found[0].log_streams, ["a", "b"]);
            assert_eq!(n.watermark_ms(), Some(base + 3_600_000));
        }
    }

    #[test]
    fn what_falls_a_window_behind_the_newest_event_is_forgotten() {
        let config = Config::default();
        let mut n = Neighbours::new(&config);
        n.push(start("a", "1", 1_000));
        assert!(emitted(&mut n).is_empty());
        // Another stream's line, more than the duplicate window later, moves
        // event time on: the first start is forgotten, by event time alone.
        n.push(Signal {
            request_id: Some("00000000-0000-4000-8000-0000000000ff".into()),
            ..start("c", "3", 1_000 + config.duplicate_window_ms + 1)
        });
        assert!(emitted(&mut n).is_empty());
        n.push(start("b", "2", 1_000 + config.duplicate_window_ms + 2));
        assert!(emitted(&mut n).is_empty(), "joined to a forgotten start");
    }

    fn timeout(stream: &str, event: &str, at_ms: i64) -> Signal {
        Signal {
            what: SignalKind::ConnectTimeout {
                destination: Some("10.0.0.1:443".into()),
            },
            request_id: Some(format!("r-{stream}-{at_ms}")),
            ..start(stream, event, at_ms)
        }
    }

    /// Collectors sharing their signals read them back in the table's
    /// order (time, then event ID), not in the order a scan met them: the
    /// incidents, a window's first event (the incident's ID) included, are
    /// the same, also when streams' events share a millisecond.
    #[test]
    fn incidents_do_not_depend_on_the_order_signals_come_in() {
        let config = Config::default();
        let signals = vec![
            timeout("c", "09", 5_000),
            timeout("a", "10", 5_000),
            timeout("b", "11", 5_000),
            timeout("d", "12", 5_000 + config.connect_stall_window_ms + 1),
            start("a", "01", 1_000),
            start("b", "02", 1_000),
            start("c", "03", 2_000),
        ];
        let want = Neighbours::incidents_of(&config, signals.clone());
        assert_eq!(want.len(), 2, "{want:#?}");
        let stall = want
            .iter()
            .find(|i| i.kind() == crate::FindingKind::ConnectStall)
            .unwrap();
        assert_eq!(stall.evidence, ["09", "10", "11"]);
        assert_eq!(stall.log_stream, "c");
        let mut order = signals;
        for _ in 0..order.len() {
            order.rotate_left(1);
            assert_eq!(Neighbours::incidents_of(&config, order.clone()), want);
            order.reverse();
            assert_eq!(Neighbours::incidents_of(&config, order.clone()), want);
        }
    }

    #[test]
    fn a_stall_settles_a_window_after_its_window_a_duplicate_at_once() {
        let config = Config::default();
        let w = config.connect_stall_window_ms;
        let found = Neighbours::incidents_of(
            &config,
            [
                timeout("a", "1", 5_000),
                timeout("b", "2", 5_100),
                timeout("c", "3", 5_200),
                start("a", "4", 6_000),
                start("b", "5", 7_000),
            ],
        );
        let settled: Vec<Settlement> = found.iter().filter_map(Settlement::of).collect();
        assert_eq!(
            settled,
            [
                Settlement {
                    identity: "connect_stall#/aws/lambda/orders#1".into(),
                    size: 3,
                    closed_after_ms: Some(5_000 + 2 * w),
                },
                Settlement {
                    identity: "duplicate_invocation#retried#/aws/lambda/orders#5d1a0000-0000-4000-8000-000000000001".into(),
                    size: 2,
                    closed_after_ms: None,
                },
            ]
        );
        assert!(!settled[0].is_closed(5_000 + 2 * w));
        assert!(settled[0].is_closed(5_000 + 2 * w + 1));
        assert!(settled[1].is_closed(0));
    }

    #[test]
    fn a_key_names_its_duplicate_and_a_nat_reset_needs_no_settling() {
        let key = |stream: &str, event: &str, rid: &str| Signal {
            request_id: Some(rid.into()),
            what: SignalKind::Key {
                key: "messageId=m-1".into(),
            },
            ..start(stream, event, 1_000)
        };
        let found = Neighbours::incidents_of(
            &Config::default(),
            [
                key("a", "1", "r1"),
                key("b", "2", "r2"),
                key("b", "3", "r2"),
            ],
        );
        assert_eq!(found.len(), 1);
        let s = Settlement::of(&found[0]).unwrap();
        assert_eq!(
            s.identity,
            "duplicate_invocation#same_key#/aws/lambda/orders#messageId=m-1"
        );
        assert_eq!(s.size, 2, "two request IDs, whatever the lines");
        let nat = Incident {
            detail: Detail::NatIdleReset {
                cause: crate::parse::NetCause::Reset,
                idle_ms: 400_000,
                nat_idle_timeout_ms: 350_000,
                destination: None,
            },
            ..found[0].clone()
        };
        assert_eq!(Settlement::of(&nat), None);
    }

    #[test]
    fn a_late_signal_does_not_move_event_time_back() {
        let mut n = Neighbours::new(&Config::default());
        n.push(start("a", "1", 10 * DAY_MS));
        n.push(start("b", "2", DAY_MS));
        assert_eq!(n.watermark_ms(), Some(10 * DAY_MS));
    }
}
