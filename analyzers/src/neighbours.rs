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
//! assert_eq!(out.incidents[0].kind, FindingKind::DuplicateInvocation);
//! assert_eq!(out.incidents[0].log_streams, ["a", "b"]);
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::correlate::Config;
use crate::finding::{Detail, FindingKind, FindingSink, Incident, Signal, SignalKind};

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
    stall_events: std::collections::HashSet<String>,
    /// Stalls already reported (streaming mode), by their first event.
    reported_stalls: std::collections::HashSet<String>,
    starts: HashMap<(Arc<str>, String), Tracked>,
    keys: HashMap<(Arc<str>, String), Tracked>,
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
            stalls: HashMap::new(),
            reported_stalls: std::collections::HashSet::new(),
            stall_events: std::collections::HashSet::new(),
            starts: HashMap::new(),
            keys: HashMap::new(),
        }
    }

    /// Signals ignored because [`Config::max_tracked`] were held.
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
        let hits = match what {
            SignalKind::Start => {
                // The key holds the request ID; the hit need not.
                let Some(rid) = hit.request_id.take() else {
                    return;
                };
                &mut self.starts.entry((log_group, rid)).or_default().hits
            }
            SignalKind::ConnectTimeout { destination } => {
                // The same event read twice (a batch and its lookback
                // context) counts once.
                if !self.stall_events.insert(hit.event_id.clone()) {
                    return;
                }
                hit.destination = destination;
                self.stalls.entry(log_group).or_default().push(hit);
                self.held += 1;
                return;
            }
            SignalKind::Key { key } => {
                if hit.request_id.is_none() {
                    return;
                }
                &mut self.keys.entry((log_group, key)).or_default().hits
            }
        };
        // Once per event, as above; past MAX_HITS, more of one request ID or
        // key adds nothing but cost.
        if hits.len() >= MAX_HITS {
            self.dropped += 1;
            return;
        }
        if hits.iter().any(|h| h.event_id == hit.event_id) {
            return;
        }
        hits.push(hit);
        self.held += 1;
    }

    /// Reports everything gathered and forgets it (batch callers).
    pub fn flush(&mut self, sink: &mut impl FindingSink) {
        let mut groups: Vec<_> = std::mem::take(&mut self.stalls).into_iter().collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        for (group, mut hits) in groups {
            hits.sort_by_key(|h| h.at_ms);
            let mut i = 0;
            while i < hits.len() {
                let end = hits[i].at_ms.saturating_add(self.window_ms);
                let j = hits[i..].partition_point(|h| h.at_ms <= end) + i;
                if !self.reported_stalls.contains(&hits[i].event_id) {
                    self.stall(&group, &hits[i..j], sink);
                }
                i = j;
            }
        }
        self.reported_stalls.clear();
        self.stall_events.clear();
        // Only what happened more than once is sorted and reported.
        for (key, tracked) in sorted(std::mem::take(&mut self.starts), |t| t.hits.len() >= 2) {
            retried(&key.0, &key.1, &tracked.hits, sink);
        }
        for (key, tracked) in sorted(std::mem::take(&mut self.keys), |t| t.hits.len() >= 2) {
            same_key(&key.0, &key.1, &tracked.hits, sink);
        }
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
            hits.sort_by_key(|h| h.at_ms);
            let mut i = 0;
            while i < hits.len() {
                let end = hits[i].at_ms.saturating_add(self.window_ms);
                let j = hits[i..].partition_point(|h| h.at_ms <= end) + i;
                let first = hits[i].event_id.clone();
                if !self.reported_stalls.contains(&first) && self.stall(&group, &hits[i..j], sink) {
                    self.reported_stalls.insert(first);
                }
                i = j;
            }
            let before = hits.len();
            hits.retain(|h| h.at_ms >= horizon);
            self.held -= before - hits.len();
            if !hits.is_empty() {
                self.stalls.insert(group, hits);
            }
        }
        let live: std::collections::HashSet<&str> = self
            .stalls
            .values()
            .flatten()
            .map(|h| h.event_id.as_str())
            .collect();
        self.reported_stalls.retain(|id| live.contains(id.as_str()));
        self.stall_events.retain(|id| live.contains(id.as_str()));
        for (tracked, same) in [(&mut self.starts, false), (&mut self.keys, true)] {
            let mut ready: Vec<_> = tracked
                .iter_mut()
                .filter(|(_, t)| attempts(&t.hits, same) > t.reported.max(1))
                .collect();
            ready.sort_by(|a, b| a.0.cmp(b.0));
            for ((group, key), t) in ready {
                if same {
                    same_key(group, key, &t.hits, sink);
                } else {
                    retried(group, key, &t.hits, sink);
                }
                t.reported = attempts(&t.hits, same);
            }
            let held = &mut self.held;
            tracked.retain(|_, t| {
                let keep = t.hits.iter().any(|h| h.at_ms >= horizon);
                if !keep {
                    *held -= t.hits.len();
                }
                keep
            });
        }
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
            kind: FindingKind::ConnectStall,
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
        });
        true
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
    let mut by_time: Vec<&Hit> = hits.iter().collect();
    by_time.sort_by_key(|h| h.at_ms);
    let mut ids: Vec<String> = Vec::new();
    for h in by_time {
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
    reason: &'static str,
    attempts: usize,
    key: Option<String>,
) -> Incident {
    let mut hits: Vec<&Hit> = hits.iter().collect();
    hits.sort_by_key(|h| h.at_ms);
    let streams: BTreeSet<&str> = hits.iter().map(|h| &*h.stream).collect();
    Incident {
        kind: FindingKind::DuplicateInvocation,
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
    }
}

fn retried(group: &str, request_id: &str, hits: &[Hit], sink: &mut impl FindingSink) {
    if hits.len() >= 2 {
        let ids = vec![request_id.to_owned()];
        sink.incident(duplicate(group, hits, ids, "retried", hits.len(), None));
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
            "same_key",
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

    #[test]
    fn a_late_signal_does_not_move_event_time_back() {
        let mut n = Neighbours::new(&Config::default());
        n.push(start("a", "1", 10 * DAY_MS));
        n.push(start("b", "2", DAY_MS));
        assert_eq!(n.watermark_ms(), Some(10 * DAY_MS));
    }
}
