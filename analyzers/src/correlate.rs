//! Correlation within one log stream (one execution environment).
//!
//! A line belongs to the invocation whose window holds it, by position and
//! time, never by the request ID printed on it:
//!
//! - windows come from platform records (`START` .. `END`);
//! - a line between `END A` and `START B` belongs to A if it was written
//!   before the freeze that followed A, to B if it was written at the thaw.
//!   The freeze is the longest silence between `END A` and `START B`
//!   (included): nothing is written while frozen;
//! - without platform records (a filter dropped them), windows come from the
//!   request IDs printed on application lines: a new ID starts a window, and
//!   the boundary with the previous one is the longest silence since that
//!   one started (timer lines printed at the thaw carry the old ID).
//!
//! A ping timeout is then paired with the ping it gave up on (the oldest
//! unanswered ping on its connection) and reported as a freeze timeout when
//! the two lines belong to different invocations.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::finding::{FailedCall, Finding, FindingKind, FindingSink, InvocationWindow};
use crate::parse::{Keepalive, KeepaliveEvent, LineKind, PlatformPhase, RawText, parse_line};

/// Settings of the correlator.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long after a keepalive timeout a failed RPC in the same
    /// invocation is attributed to it.
    pub failure_window_ms: i64,
    /// How soon after a timeout an ack on the same connection shows the ack
    /// was waiting in the socket all along.
    pub late_ack_window_ms: i64,
    /// C-core's event engine can read a late ack and fire that ping's
    /// timeout at the same thaw, the ack first: a timeout this soon after an
    /// ack, with nothing else outstanding, is that acked ping's.
    pub ack_race_window_ms: i64,
    /// Remember the positions of the lines that matter (platform,
    /// keepalive, failures), for callers that keep context between batches.
    pub record_relevant: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            failure_window_ms: 30_000,
            late_ack_window_ms: 1_000,
            ack_race_window_ms: 100,
            record_relevant: false,
        }
    }
}

/// One log event, in the order of its stream.
#[derive(Clone, Debug)]
pub struct LogEvent<'a> {
    /// The CloudWatch event ID (or a stand-in naming the input line).
    pub id: Cow<'a, str>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The message.
    pub text: RawText<'a>,
}

/// Counts of what a stream held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Lines read.
    pub lines: u64,
    /// Invocations seen (platform `START`s, or request IDs without them).
    pub invocations: u64,
    /// Keepalive lines recognised.
    pub keepalive_lines: u64,
    /// Ping timeouts whose ping was not in the input.
    pub unpaired_timeouts: u64,
    /// Streams whose invocation windows were guessed from printed request
    /// IDs: they had no platform records (`START`/`END`).
    pub guessed_windows: u64,
}

#[derive(Debug)]
struct Invocation {
    request_id: String,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    /// Position and event ID of its START.
    start_event: Option<(u32, String)>,
}

/// The stretch from `END A` to `START B`, and where its freeze was.
#[derive(Debug)]
struct Between {
    prev: u32,
    next: Option<u32>,
    /// Position of the first line after the longest silence.
    freeze_pos: u32,
    gap_ms: i64,
}

/// A request-ID window, for streams without platform records.
#[derive(Debug)]
struct Run {
    request_id: String,
    first_pos: u32,
    /// Lines from here on (up to `first_pos`) were written at the thaw.
    thaw_pos: u32,
    gap_ms: i64,
    /// Event ID of its first line.
    first_event: String,
}

#[derive(Debug, Clone, Copy)]
enum Place {
    Init,
    In(u32),
    Between(u32),
}

#[derive(Debug)]
enum What {
    Keepalive(Keepalive),
    Failure(&'static str),
}

#[derive(Debug)]
struct Mark {
    pos: u32,
    ts: i64,
    id: String,
    printed: Option<String>,
    place: Place,
    what: What,
}

/// The owner of a line once the stream is read: an epoch (even numbers are
/// invocations in order, odd ones the unknown invocation after one) and its
/// request ID.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owner {
    epoch: i64,
    request_id: Option<String>,
    frozen_before_ms: Option<i64>,
    settled: Settled,
}

/// What fixed a line's owner: the line itself, a later event (the START a
/// line written at the thaw waits for), or nothing yet (the input ends
/// before it): a finding is final once both its lines are settled.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Settled {
    Line,
    Event(u32, String),
    Open,
}

/// Correlates one log stream. Push its events in stream order (timestamp,
/// then event ID), then [`finish`](StreamCorrelator::finish).
///
/// ```
/// use thawtrace_analyzers::{LogEvent, StreamCorrelator, Config, FindingKind};
/// use thawtrace_analyzers::parse::RawText;
/// let lines = [
///     (0, "START RequestId: aaaaaaaa-0000-4000-8000-000000000001 Version: $LATEST"),
///     (4000, "2026-11-28T08:00:04.000Z\taaaaaaaa-0000-4000-8000-000000000001\tERROR\tD 2026-11-28T08:00:04.000Z | v1.14.7 8 | keepalive | (1) 10.0.0.1:443 Sending ping with timeout 1000ms"),
///     (4004, "END RequestId: aaaaaaaa-0000-4000-8000-000000000001"),
///     (9000, "START RequestId: bbbbbbbb-0000-4000-8000-000000000002 Version: $LATEST"),
///     (9001, "2026-11-28T08:00:09.001Z\taaaaaaaa-0000-4000-8000-000000000001\tERROR\tD 2026-11-28T08:00:09.001Z | v1.14.7 8 | keepalive | (1) 10.0.0.1:443 Ping timeout passed without response"),
/// ];
/// let ids: Vec<String> = (0..lines.len()).map(|i| format!("e{i}")).collect();
/// let mut c = StreamCorrelator::new("/aws/lambda/f", "s", Config::default());
/// for (i, (ts, msg)) in lines.iter().enumerate() {
///     c.push(&LogEvent { id: ids[i].as_str().into(), timestamp_ms: *ts, text: RawText::Plain(msg) });
/// }
/// let mut findings = Vec::new();
/// c.finish(&mut findings);
/// assert_eq!(findings[0].kind, FindingKind::KeepaliveFreezeTimeout);
/// assert_eq!(findings[0].ping_request_id.as_deref(), Some("aaaaaaaa-0000-4000-8000-000000000001"));
/// assert_eq!(findings[0].timeout_request_id.as_deref(), Some("bbbbbbbb-0000-4000-8000-000000000002"));
/// assert_eq!(findings[0].frozen_ms, Some(4996));
/// ```
pub struct StreamCorrelator {
    log_group: String,
    log_stream: String,
    config: Config,
    pos: u32,
    prev_ts: Option<i64>,
    place: Place,
    invocations: Vec<Invocation>,
    betweens: Vec<Between>,
    runs: Vec<Run>,
    run_gap: (i64, u32),
    marks: Vec<Mark>,
    watch_failures_until: i64,
    relevant: Vec<u32>,
    stats: StreamStats,
}

impl StreamCorrelator {
    /// A correlator for one stream.
    pub fn new(log_group: &str, log_stream: &str, config: Config) -> Self {
        StreamCorrelator {
            log_group: log_group.to_owned(),
            log_stream: log_stream.to_owned(),
            config,
            pos: 0,
            prev_ts: None,
            place: Place::Init,
            invocations: Vec::new(),
            betweens: Vec::new(),
            runs: Vec::new(),
            run_gap: (-1, 0),
            marks: Vec::new(),
            watch_failures_until: i64::MIN,
            relevant: Vec::new(),
            stats: StreamStats::default(),
        }
    }

    /// Reads the next event of the stream.
    pub fn push(&mut self, event: &LogEvent<'_>) {
        let pos = self.pos;
        self.pos += 1;
        self.stats.lines += 1;
        let ts = event.timestamp_ms;
        let gap = self.prev_ts.map_or(-1, |p| ts - p);
        self.prev_ts = Some(ts);
        if let Place::Between(b) = self.place {
            let between = &mut self.betweens[b as usize];
            if gap > between.gap_ms {
                between.gap_ms = gap;
                between.freeze_pos = pos;
            }
        }
        let line = parse_line(event.text, ts <= self.watch_failures_until);
        if self.invocations.is_empty() {
            self.track_run(pos, gap, line.printed_request_id, &event.id);
        }
        if self.config.record_relevant && line.kind != LineKind::Other {
            self.relevant.push(pos);
        }
        let what = match line.kind {
            LineKind::Other => return,
            LineKind::Platform(phase, request_id) => {
                self.platform(phase, request_id, pos, ts, &event.id);
                return;
            }
            LineKind::Keepalive(k) => {
                self.stats.keepalive_lines += 1;
                if k.event == KeepaliveEvent::PingTimeout {
                    self.watch_failures_until = ts.saturating_add(self.config.failure_window_ms);
                }
                What::Keepalive(k)
            }
            LineKind::CallFailed(code) => What::Failure(code),
        };
        self.marks.push(Mark {
            pos,
            ts,
            id: event.id.clone().into_owned(),
            printed: line.printed_request_id.map(str::to_owned),
            place: self.place,
            what,
        });
    }

    fn track_run(&mut self, pos: u32, gap: i64, printed: Option<&str>, event_id: &str) {
        if gap > self.run_gap.0 {
            self.run_gap = (gap, pos);
        }
        let Some(id) = printed else { return };
        if self.runs.last().is_some_and(|r| r.request_id == id)
            || self.runs.iter().any(|r| r.request_id == id)
        {
            return;
        }
        let (gap_ms, thaw_pos) = if self.runs.is_empty() || self.run_gap.0 < 0 {
            (0, pos)
        } else {
            self.run_gap
        };
        self.runs.push(Run {
            request_id: id.to_owned(),
            first_pos: pos,
            thaw_pos,
            gap_ms,
            first_event: event_id.to_owned(),
        });
        self.run_gap = (-1, pos);
    }

    fn platform(
        &mut self,
        phase: PlatformPhase,
        request_id: &str,
        pos: u32,
        ts: i64,
        event_id: &str,
    ) {
        match phase {
            PlatformPhase::Start => {
                let idx = self.invocations.len() as u32;
                match self.place {
                    Place::Between(b) => self.betweens[b as usize].next = Some(idx),
                    // A window that never ended: everything before this START was its.
                    Place::In(prev) => self.betweens.push(Between {
                        prev,
                        next: Some(idx),
                        freeze_pos: pos,
                        gap_ms: 0,
                    }),
                    Place::Init => {}
                }
                self.invocations.push(Invocation {
                    request_id: request_id.to_owned(),
                    start_ms: Some(ts),
                    end_ms: None,
                    start_event: Some((pos, event_id.to_owned())),
                });
                self.stats.invocations += 1;
                self.place = Place::In(idx);
            }
            PlatformPhase::End => {
                let Place::In(cur) = self.place else { return };
                if self.invocations[cur as usize].request_id != request_id {
                    return;
                }
                self.invocations[cur as usize].end_ms = Some(ts);
                self.betweens.push(Between {
                    prev: cur,
                    next: None,
                    freeze_pos: u32::MAX,
                    gap_ms: -1,
                });
                self.place = Place::Between(self.betweens.len() as u32 - 1);
            }
            PlatformPhase::Report => {}
        }
    }

    fn invocation_owner(&self, idx: u32) -> Owner {
        let inv = &self.invocations[idx as usize];
        // The freeze before an invocation: from the previous one's END to its START.
        let frozen_before_ms = self
            .betweens
            .iter()
            .find(|b| b.next == Some(idx))
            .and_then(|b| {
                let prev = &self.invocations[b.prev as usize];
                match (prev.end_ms, inv.start_ms) {
                    (Some(end), Some(start)) => Some(start - end),
                    _ => (b.gap_ms >= 0).then_some(b.gap_ms),
                }
            });
        Owner {
            epoch: 2 * i64::from(idx),
            request_id: Some(inv.request_id.clone()),
            frozen_before_ms,
            settled: Settled::Line,
        }
    }

    fn owner(&self, mark: &Mark) -> Owner {
        if self.invocations.is_empty() {
            return self.run_owner(mark);
        }
        match mark.place {
            Place::Init => Owner {
                epoch: -1,
                request_id: mark.printed.clone(),
                frozen_before_ms: None,
                settled: Settled::Line,
            },
            Place::In(i) => self.invocation_owner(i),
            Place::Between(b) => {
                let between = &self.betweens[b as usize];
                if mark.pos < between.freeze_pos {
                    return self.invocation_owner(between.prev);
                }
                match between.next {
                    Some(next) => {
                        let mut owner = self.invocation_owner(next);
                        owner.settled = match &self.invocations[next as usize].start_event {
                            Some((pos, id)) => Settled::Event(*pos, id.clone()),
                            None => Settled::Line,
                        };
                        owner
                    }
                    // Written at a thaw whose START is not in the input.
                    None => Owner {
                        epoch: 2 * i64::from(between.prev) + 1,
                        request_id: None,
                        frozen_before_ms: Some(between.gap_ms),
                        settled: Settled::Open,
                    },
                }
            }
        }
    }

    fn run_owner(&self, mark: &Mark) -> Owner {
        let at = self.runs.partition_point(|r| r.first_pos <= mark.pos);
        // The window's end is known once the next request ID appears.
        let settled = match self.runs.get(at) {
            Some(next) => Settled::Event(next.first_pos, next.first_event.clone()),
            None if at == 0 => Settled::Line,
            None => Settled::Open,
        };
        // Lines at the thaw before the next window's first line are its.
        let k = match self.runs.get(at) {
            Some(next) if next.thaw_pos <= mark.pos => at + 1,
            _ => at,
        };
        if k == 0 {
            return Owner {
                epoch: -1,
                request_id: mark.printed.clone(),
                frozen_before_ms: None,
                settled: Settled::Line,
            };
        }
        let run = &self.runs[k - 1];
        Owner {
            epoch: 2 * (k as i64 - 1),
            request_id: Some(run.request_id.clone()),
            frozen_before_ms: (k > 1).then_some(run.gap_ms),
            settled,
        }
    }

    /// Positions (in push order) of the lines that matter to correlation,
    /// when [`Config::record_relevant`] is set: what a caller keeps to
    /// correlate the next batch of the stream with this one.
    pub fn relevant_positions(&self) -> &[u32] {
        &self.relevant
    }

    /// Ends the stream: pairs pings with timeouts and pushes the findings.
    pub fn finish(mut self, sink: &mut impl FindingSink) -> StreamStats {
        if self.invocations.is_empty() {
            self.stats.invocations = self.runs.len() as u64;
            self.stats.guessed_windows = u64::from(self.stats.keepalive_lines > 0);
        }
        let mut outstanding: HashMap<String, Vec<usize>> = HashMap::new();
        let mut findings: Vec<Finding> = Vec::new();
        // Index of the last finding per connection, for late acks.
        let mut last_on: HashMap<String, usize> = HashMap::new();
        // Pings acked too late to stop their timer (at or after its expiry,
        // or of unknown timer), with their acks, per connection.
        let mut acked: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        // When each ping's ack timer expires, where the library says.
        let mut expiry: HashMap<usize, i64> = HashMap::new();
        for (i, mark) in self.marks.iter().enumerate() {
            match &mark.what {
                What::Keepalive(k) => match &k.event {
                    KeepaliveEvent::PingSent {
                        ping_id,
                        timeout_ms,
                    } => {
                        if let Some(t) = timeout_ms {
                            expiry.insert(i, mark.ts + i64::from(*t));
                        }
                        let pending = outstanding.entry(k.connection.clone()).or_default();
                        if ping_id.is_none() {
                            // Libraries without ping ids keep one ping in flight.
                            pending.retain(|&p| ping_id_of(&self.marks[p]).is_some());
                        }
                        pending.push(i);
                    }
                    KeepaliveEvent::PingTimerSet {
                        ping_id,
                        timeout_ms,
                    } => {
                        let armed = outstanding
                            .values()
                            .flatten()
                            .find(|&&p| ping_id_of(&self.marks[p]) == Some(*ping_id));
                        if let Some(&p) = armed {
                            expiry.insert(p, self.marks[p].ts + i64::from(*timeout_ms));
                        }
                    }
                    KeepaliveEvent::PingAck { ping_id } => {
                        let acks = |p: usize| match ping_id {
                            Some(id) => ping_id_of(&self.marks[p]) == Some(*id),
                            None => ping_id_of(&self.marks[p]).is_none(),
                        };
                        let connections: Vec<String> = match ping_id {
                            // C-core names the ping, not the connection.
                            Some(_) => outstanding.keys().cloned().collect(),
                            None => vec![k.connection.clone()],
                        };
                        let mut found = false;
                        for connection in connections {
                            let pending = outstanding.entry(connection.clone()).or_default();
                            let Some(at) = pending.iter().position(|&p| acks(p)) else {
                                continue;
                            };
                            let p = pending.remove(at);
                            found = true;
                            // An ack read after the timer expired did not stop it.
                            if expiry.get(&p).is_none_or(|&e| mark.ts >= e) {
                                acked.entry(connection).or_default().push((p, i));
                            }
                        }
                        if !found && ping_id.is_none() {
                            // The ack of a ping that already timed out: it
                            // was waiting in the socket through the freeze.
                            if let Some(&f) = last_on.get(&k.connection) {
                                let finding = &mut findings[f];
                                if finding.ack_event_id.is_none()
                                    && mark.ts - finding.timeout_at_ms
                                        <= self.config.late_ack_window_ms
                                {
                                    finding.ack_event_id = Some(mark.id.clone());
                                    finding.evidence.push(mark.id.clone());
                                }
                            }
                        }
                    }
                    KeepaliveEvent::PingTimeout => {
                        let pending = outstanding.remove(&k.connection).unwrap_or_default();
                        let late = acked.remove(&k.connection).unwrap_or_default();
                        let Some((ping_idx, ack)) = self.timed_out(mark, &pending, &late, &expiry)
                        else {
                            self.stats.unpaired_timeouts += 1;
                            sink.unpaired_timeout(&mark.id, mark.ts);
                            continue;
                        };
                        last_on.insert(k.connection.clone(), findings.len());
                        let mut finding = self.finding(&self.marks[ping_idx], mark, k);
                        if let Some(ack) = ack {
                            finding.ack_event_id = Some(self.marks[ack].id.clone());
                            finding.evidence.push(self.marks[ack].id.clone());
                        }
                        findings.push(finding);
                    }
                },
                What::Failure(_) => {}
            }
        }
        self.attach_failures(&mut findings);
        self.report_invocations(sink);
        for f in findings {
            sink.finding(f);
        }
        self.stats
    }

    fn report_invocations(&self, sink: &mut impl FindingSink) {
        if !sink.wants_invocations() {
            return;
        }
        let window = |request_id: &str, start_ms, end_ms| InvocationWindow {
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            request_id: request_id.to_owned(),
            start_ms,
            end_ms,
        };
        if self.invocations.is_empty() {
            for run in &self.runs {
                sink.invocation(&window(&run.request_id, None, None));
            }
        }
        for inv in &self.invocations {
            sink.invocation(&window(&inv.request_id, inv.start_ms, inv.end_ms));
        }
    }

    /// Which ping a timeout gave up on, and the ack that came too late for
    /// it, if any. Where the library printed the ack timeout, only a ping
    /// whose timer had expired can have timed out: the latest such one (at a
    /// thaw, C-core may read a late ack and send a new ping just before the
    /// expired timer fires). Otherwise the oldest unanswered ping, else one
    /// acked a moment before (the ack and the timer raced at the thaw).
    fn timed_out(
        &self,
        timeout: &Mark,
        pending: &[usize],
        late: &[(usize, usize)],
        expiry: &HashMap<usize, i64>,
    ) -> Option<(usize, Option<usize>)> {
        const SLACK_MS: i64 = 5;
        let expired = |p: usize| expiry.get(&p).is_some_and(|&e| e <= timeout.ts + SLACK_MS);
        let candidates = pending
            .iter()
            .map(|&p| (p, None))
            .chain(late.iter().map(|&(p, a)| (p, Some(a))));
        if let Some(best) = candidates
            .filter(|&(p, _)| expired(p))
            .max_by_key(|&(p, _)| self.marks[p].pos)
        {
            return Some(best);
        }
        if let Some(&p) = pending.iter().find(|&&p| !expiry.contains_key(&p)) {
            return Some((p, None));
        }
        late.iter()
            .rev()
            .find(|&&(p, ack)| {
                !expiry.contains_key(&p)
                    && timeout.ts - self.marks[ack].ts <= self.config.ack_race_window_ms
            })
            .map(|&(p, ack)| (p, Some(ack)))
    }

    /// Attaches to each finding the first failed call of its invocation
    /// from just before the timeout (another thread may log the failure
    /// first) to the end of the failure window.
    fn attach_failures(&self, findings: &mut [Finding]) {
        const BEFORE_MS: i64 = 100;
        let failures: Vec<(&Mark, &'static str, Option<String>)> = self
            .marks
            .iter()
            .filter_map(|m| match m.what {
                What::Failure(code) => Some((m, code, self.owner(m).request_id)),
                _ => None,
            })
            .collect();
        let mut used = vec![false; failures.len()];
        for finding in findings {
            let from = finding.timeout_at_ms - BEFORE_MS;
            let to = finding
                .timeout_at_ms
                .saturating_add(self.config.failure_window_ms);
            let hit = failures.iter().enumerate().find(|(i, (m, _, owner))| {
                !used[*i] && (from..=to).contains(&m.ts) && *owner == finding.timeout_request_id
            });
            if let Some((i, (mark, code, _))) = hit {
                used[i] = true;
                finding.evidence.push(mark.id.clone());
                finding.failed_call = Some(FailedCall {
                    event_id: mark.id.clone(),
                    at_ms: mark.ts,
                    code,
                    line: mark.pos,
                });
            }
        }
    }

    fn finding(&self, ping: &Mark, timeout: &Mark, k: &Keepalive) -> Finding {
        let ping_owner = self.owner(ping);
        let timeout_owner = self.owner(timeout);
        let freeze = ping_owner.epoch != timeout_owner.epoch;
        let settled_by = [
            (&ping_owner.settled, ping),
            (&timeout_owner.settled, timeout),
        ]
        .into_iter()
        .map(|(settled, mark)| match settled {
            Settled::Line => Some((mark.pos, mark.id.clone())),
            Settled::Event(pos, id) => Some((*pos, id.clone())),
            Settled::Open => None,
        })
        .collect::<Option<Vec<_>>>()
        .and_then(|v| v.into_iter().max_by_key(|(pos, _)| *pos))
        .map(|(_, id)| id);
        let ping_timeout_ms = match &ping.what {
            What::Keepalive(Keepalive {
                event: KeepaliveEvent::PingSent { timeout_ms, .. },
                ..
            }) => *timeout_ms,
            _ => None,
        };
        Finding {
            kind: if freeze {
                FindingKind::KeepaliveFreezeTimeout
            } else {
                FindingKind::KeepaliveTimeout
            },
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            library: k.library,
            ping_request_id: ping_owner.request_id,
            timeout_request_id: timeout_owner.request_id,
            ping_line_request_id: ping.printed.clone(),
            timeout_line_request_id: timeout.printed.clone(),
            connection: k.connection.clone(),
            ping_at_ms: ping.ts,
            timeout_at_ms: timeout.ts,
            ping_timeout_ms,
            frozen_ms: if freeze {
                timeout_owner.frozen_before_ms
            } else {
                None
            },
            ping_event_id: ping.id.clone(),
            timeout_event_id: timeout.id.clone(),
            ack_event_id: None,
            failed_call: None,
            evidence: vec![ping.id.clone(), timeout.id.clone()],
            ping_line: ping.pos,
            timeout_line: timeout.pos,
            settled_by,
        }
    }
}

fn ping_id_of(mark: &Mark) -> Option<u64> {
    match &mark.what {
        What::Keepalive(Keepalive {
            event: KeepaliveEvent::PingSent { ping_id, .. },
            ..
        }) => *ping_id,
        _ => None,
    }
}
