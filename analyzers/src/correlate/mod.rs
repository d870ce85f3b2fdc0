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
//!   one started (timer lines printed at the thaw carry the old ID); a
//!   timer line that fired late, or a line between a freeze and
//!   thawtrace-instrument's `thaw` event, was written at the thaw.
//!
//! A ping timeout is then paired with the ping it gave up on (the oldest
//! unanswered ping on its connection) and reported as a freeze timeout when
//! the two lines belong to different invocations.

use std::borrow::Cow;

use crate::parse::{
    InitType, Keepalive, KeepaliveEvent, Line, LineKind, NetFailure, PlatformPhase, RawText,
    parse_line,
};

mod go;
mod ledger;
mod modes;
mod near;
mod neighbour;
mod owner;
mod pairing;

/// Lines this close together are one burst: the work of one moment (a
/// call's request, its failure and the client's trace lines about it).
const BURST_MS: i64 = 200;

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
    /// A timer line this late (after the timer was due, per the interval or
    /// ack timeout the library printed) fired at a thaw: without platform
    /// records, it belongs to the invocation that starts next.
    pub late_timer_ms: i64,
    /// Remember the positions of the lines that matter (platform,
    /// keepalive, failures), for callers that keep context between batches.
    pub record_relevant: bool,
    /// The NAT gateway's idle timeout: a connection idle this long before
    /// its next use failed is a `nat_idle_reset` (AWS: 350 s).
    pub nat_idle_timeout_ms: i64,
    /// A connection idle at least this share of the NAT idle timeout (in
    /// percent) whose next use succeeded is a `nat_idle_near_miss`.
    pub nat_near_miss_percent: u8,
    /// Connect timeouts of many environments within this window of the
    /// first are one `connect_stall`.
    pub connect_stall_window_ms: i64,
    /// How many environments (log streams) make a `connect_stall`.
    pub connect_stall_min_envs: usize,
    /// A connect that took at least this long and succeeded is a
    /// `connect_slow` (a warning).
    pub connect_slow_ms: i64,
    /// How long a request ID or idempotency key is remembered to find a
    /// `duplicate_invocation` (Lambda keeps async events up to 6 h).
    pub duplicate_window_ms: i64,
    /// The idempotency keys looked for in logged events (default: SQS's
    /// `messageId`).
    pub idempotency_keys: std::sync::Arc<[IdempotencyKey]>,
    /// At most this many cross-stream signals are held (memory bound).
    pub max_tracked: usize,
}

/// An idempotency key looked for in logged events: a JSON path such as
/// `messageId` or `detail.orderId`, matched by its last name (and, for a
/// dotted path, the name before it earlier on the line).
///
/// ```
/// use thawtrace_analyzers::correlate::IdempotencyKey;
/// let key = IdempotencyKey::new("detail.orderId").unwrap();
/// let line = r#"event {"detail-type":"OrderPlaced","detail":{"orderId":"o-2001","total":5}}"#;
/// assert_eq!(key.find(line).collect::<Vec<_>>(), ["o-2001"]);
/// assert_eq!(key.find(r#"{"orderId":"o-1"}"#).count(), 0); // no `detail` before it
/// ```
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    path: String,
    parent: Option<String>,
    name: memchr::memmem::Finder<'static>,
}

impl IdempotencyKey {
    /// A key from its JSON path (`a.b.c`, names of letters, digits, `_`, `-`).
    pub fn new(path: &str) -> Result<Self, String> {
        let names: Vec<&str> = path.split('.').collect();
        if names.iter().any(|n| {
            n.is_empty()
                || !n
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        }) {
            return Err(format!(
                "idempotency key {path:?}: expected a JSON path of names like `detail.orderId`"
            ));
        }
        let name = names[names.len() - 1];
        Ok(IdempotencyKey {
            path: path.to_owned(),
            parent: (names.len() > 1).then(|| names[names.len() - 2].to_owned()),
            name: memchr::memmem::Finder::new(name.as_bytes()).into_owned(),
        })
    }

    /// The path it was made from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The values of this key on a line (plain or JSON-escaped text).
    pub fn find<'t>(&'t self, line: &'t str) -> impl Iterator<Item = &'t str> + 't {
        let b = line.as_bytes();
        let n = self.name.needle().len();
        self.name.find_iter(b).filter_map(move |at| {
            // A whole key: a quote before it, a quote (maybe escaped) after.
            if at == 0 || b[at - 1] != b'"' {
                return None;
            }
            if let Some(parent) = &self.parent
                && memchr::memmem::find(&b[..at], parent.as_bytes()).is_none()
            {
                return None;
            }
            let mut i = at + n;
            let mut quotes = 0;
            while i < b.len() && matches!(b[i], b'\\' | b'"' | b':' | b' ') {
                quotes += usize::from(b[i] == b'"');
                i += 1;
            }
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'-' | b'_' | b'.' | b'@'))
            {
                i += 1;
            }
            // `"key": "value"`: a closing quote, a colon, an opening quote.
            (quotes >= 2 && i > start && i - start <= 256).then(|| &line[start..i])
        })
    }
}

/// The SQS record's `messageId`: the default key.
pub fn default_idempotency_keys() -> std::sync::Arc<[IdempotencyKey]> {
    std::sync::Arc::from(vec![
        IdempotencyKey::new(Config::IDEMPOTENCY_KEY).expect("valid"),
    ])
}

impl Config {
    /// The NAT gateway's idle timeout (AWS: 350 s).
    pub const NAT_IDLE_TIMEOUT_MS: i64 = 350_000;
    /// The share of the NAT idle timeout (percent) an idle connection
    /// that survived must have reached to be a near miss.
    pub const NAT_NEAR_MISS_PERCENT: u8 = 75;
    /// The window of one `connect_stall`.
    pub const CONNECT_STALL_WINDOW_MS: i64 = 60_000;
    /// Environments that make a `connect_stall`.
    pub const CONNECT_STALL_MIN_ENVS: usize = 3;
    /// A connect this slow lost its first SYN at least (Linux retransmits
    /// an unanswered SYN after 1 s): a `connect_slow`.
    pub const CONNECT_SLOW_MS: i64 = 1_000;
    /// How long a `duplicate_invocation` is looked for (Lambda keeps async
    /// events up to 6 h).
    pub const DUPLICATE_WINDOW_MS: i64 = 6 * 3_600_000;
    /// The idempotency key looked for by default: SQS's `messageId`.
    pub const IDEMPOTENCY_KEY: &'static str = "messageId";
}

impl Default for Config {
    fn default() -> Self {
        Config {
            failure_window_ms: 30_000,
            late_ack_window_ms: 1_000,
            ack_race_window_ms: 100,
            late_timer_ms: 200,
            record_relevant: false,
            nat_idle_timeout_ms: Config::NAT_IDLE_TIMEOUT_MS,
            nat_near_miss_percent: Config::NAT_NEAR_MISS_PERCENT,
            connect_stall_window_ms: Config::CONNECT_STALL_WINDOW_MS,
            connect_stall_min_envs: Config::CONNECT_STALL_MIN_ENVS,
            connect_slow_ms: Config::CONNECT_SLOW_MS,
            duplicate_window_ms: Config::DUPLICATE_WINDOW_MS,
            idempotency_keys: default_idempotency_keys(),
            max_tracked: 1_000_000,
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
    /// Streams with failed gRPC calls but not one keepalive trace line:
    /// the trace flags hide pings and their timeouts, so a keepalive
    /// timeout there can be neither found nor ruled out.
    pub unjudged: u64,
    /// Streams of Lambda Managed Instances (concurrent invocations, never
    /// frozen): see [`crate::ExecutionMode`].
    pub managed_instances: u64,
    /// Streams restored from a SnapStart snapshot.
    pub snapstart: u64,
}

#[derive(Debug)]
struct Invocation {
    request_id: String,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    /// Position and event ID of its START.
    start_event: Option<(u32, String)>,
    /// The stretch before it (in `betweens`), whose `next` it is.
    before: Option<u32>,
    /// `tenantId` on its `platform.start` (tenant isolation).
    tenant: Option<String>,
}

/// A SnapStart restore, placed in the stream.
#[derive(Debug)]
struct Restore {
    pos: u32,
    ts: i64,
    id: Text,
    /// Invocations started before it.
    after_invocations: usize,
    /// The connections it carried over, where the instrument's `restore`
    /// event names them.
    carried: Vec<String>,
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
    /// Event ID of its first line.
    first_event: String,
}

/// A freeze the instrument reported, placed in the stream.
#[derive(Debug, Clone, Copy)]
struct Thawed {
    /// The first line after the silence of the freeze.
    from: u32,
    /// The `thaw` event.
    thaw: u32,
    frozen_ms: i64,
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
    /// A network failure, with the function's silence before its line.
    Net(NetFailure, i64),
    /// An idempotency key: `name=value`.
    Key(String),
    /// Traffic on an HTTP connection to this destination (its last use).
    Traffic(String),
    /// A new HTTP connection to this destination (activity, no reuse).
    Opened(String),
    /// The HTTP client is about to send a failed request again.
    Retrying,
    /// A connect to this destination started, or (`true`) got through.
    Connect(String, bool),
}

#[derive(Debug)]
struct Mark {
    pos: u32,
    ts: i64,
    /// The event's ID, in [`StreamCorrelator::texts`].
    id: Text,
    /// The request ID the line printed, in [`StreamCorrelator::texts`].
    printed: Option<Text>,
    place: Place,
    what: What,
}

/// Where a mark's string is in [`Texts`].
#[derive(Clone, Copy, Debug)]
struct Text {
    at: u32,
    len: u32,
}

/// The marks' event IDs and printed request IDs, in one string: a mark
/// holds where its own are, so marking a line allocates nothing, and a
/// request ID printed on consecutive lines is kept once.
#[derive(Default)]
struct Texts {
    all: String,
    last_printed: Option<Text>,
}

impl Texts {
    fn add(&mut self, s: &str) -> Text {
        let text = Text {
            at: u32::try_from(self.all.len()).unwrap_or(u32::MAX),
            len: u32::try_from(s.len()).unwrap_or(0),
        };
        if text.at == u32::MAX || text.at.checked_add(text.len).is_none() {
            // Past 4 GiB of IDs in one stream: the rest are kept empty.
            return Text { at: 0, len: 0 };
        }
        self.all.push_str(s);
        text
    }

    fn printed(&mut self, s: &str) -> Text {
        match self.last_printed {
            Some(t) if self.get(t) == s => t,
            _ => {
                let t = self.add(s);
                self.last_printed = Some(t);
                t
            }
        }
    }

    fn get(&self, t: Text) -> &str {
        self.all
            .get(t.at as usize..(t.at + t.len) as usize)
            .unwrap_or("")
    }

    fn owned(&self, t: Option<Text>) -> Option<String> {
        t.map(|t| self.get(t).to_owned())
    }
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
    first_ts: Option<i64>,
    prev_ts: Option<i64>,
    /// When the function last spoke: its last line of its own, or the
    /// START of its invocation (platform records are not the function's).
    spoke_at: Option<i64>,
    /// The position of that last line of the function's own, and of the
    /// one before the current burst (what the burst's silence runs from).
    spoke_pos: Option<u32>,
    burst_from_pos: Option<u32>,
    /// The function's silence before its current burst of lines.
    burst_silence: i64,
    place: Place,
    invocations: Vec<Invocation>,
    betweens: Vec<Between>,
    runs: Vec<Run>,
    marks: Vec<Mark>,
    texts: Texts,
    /// Recent silences of 100 ms or more: (length, position after it).
    silences: std::collections::VecDeque<(i64, u32)>,
    /// Without platform records: lines from a freeze to the instrument's
    /// `thaw` event (positions `from..thaw`) were written at the thaw.
    thaws: Vec<Thawed>,
    watch_failures_until: i64,
    relevant: Vec<u32>,
    /// See [`StreamCorrelator::unannounced_lines`].
    unannounced: Vec<String>,
    /// What `INIT_START` / `platform.initStart` said of the environment.
    init_type: Option<InitType>,
    /// Invocations overlapped: a JSON `platform.report` of an invocation
    /// that started and never had its `platform.runtimeDone`, which only
    /// Lambda Managed Instances leave out.
    overlapping: bool,
    /// SnapStart restores.
    restores: Vec<Restore>,
    /// Invocations by request ID, built when a stream needs it (Managed
    /// Instances attribute lines by the request ID they print).
    by_id: std::cell::OnceCell<foldhash::HashMap<String, u32>>,
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
            first_ts: None,
            prev_ts: None,
            spoke_at: None,
            spoke_pos: None,
            burst_from_pos: None,
            burst_silence: -1,
            place: Place::Init,
            invocations: Vec::new(),
            betweens: Vec::new(),
            runs: Vec::new(),
            marks: Vec::new(),
            texts: Texts::default(),
            silences: std::collections::VecDeque::new(),
            thaws: Vec::new(),
            watch_failures_until: i64::MIN,
            relevant: Vec::new(),
            unannounced: Vec::new(),
            init_type: None,
            overlapping: false,
            restores: Vec::new(),
            by_id: std::cell::OnceCell::new(),
            stats: StreamStats::default(),
        }
    }

    /// Reads the next event of the stream.
    pub fn push(&mut self, event: &LogEvent<'_>) {
        let pos = self.pos;
        self.pos += 1;
        self.stats.lines += 1;
        let ts = event.timestamp_ms;
        self.tick(pos, ts);
        let line = parse_line(event.text, ts <= self.watch_failures_until);
        let silence = self.silence_before(pos, ts, &line.kind);
        if self.invocations.is_empty() {
            self.track_run(pos, line.printed_request_id, &event.id);
        }
        if self.config.record_relevant && line.kind != LineKind::Other {
            self.relevant.push(pos);
        }
        self.read(pos, event, line, silence);
    }

    /// The stream's clock at a line: the longest gap of the current
    /// freeze, and (without platform records) the recent silences a `thaw`
    /// event may point back to.
    fn tick(&mut self, pos: u32, ts: i64) {
        let gap = self.prev_ts.map_or(-1, |p| ts.saturating_sub(p));
        self.first_ts.get_or_insert(ts);
        self.prev_ts = Some(ts);
        if let Place::Between(b) = self.place {
            let between = &mut self.betweens[b as usize];
            if gap > between.gap_ms {
                between.gap_ms = gap;
                between.freeze_pos = pos;
            }
        }
        // Only streams without platform records place lines by thaw events.
        if gap >= 100 && self.invocations.is_empty() {
            if self.silences.len() == 16 {
                self.silences.pop_front();
            }
            self.silences.push_back((gap, pos));
        }
    }

    /// How long the function was silent before a line (for a failure: what
    /// preceded the call that failed).
    ///
    /// A failure's silence is the function's: a platform record written in
    /// between (END flushed before the error line) does not end it. It is
    /// the silence before the burst of lines the failure ends (a reset
    /// prints the client's trace lines, a retry botocore's request lines,
    /// in the same few ms). A platform record (Lambda's timeout among them)
    /// is not the function's: its silence runs to it, unless the function
    /// spoke in the moment before.
    fn silence_before(&mut self, pos: u32, ts: i64, kind: &LineKind<'_>) -> i64 {
        let since_spoke = self.spoke_at.map_or(-1, |at| ts.saturating_sub(at));
        let in_burst = (0..=BURST_MS).contains(&since_spoke);
        let own = !matches!(kind, LineKind::Platform(phase, _) if *phase != PlatformPhase::Start);
        if own {
            if !in_burst {
                self.burst_silence = since_spoke;
                self.burst_from_pos = self.spoke_pos;
            }
            self.spoke_at = Some(ts);
            self.spoke_pos = Some(pos);
        }
        if own || in_burst {
            self.burst_silence
        } else {
            since_spoke
        }
    }

    /// What a parsed line means for the stream: a mark for the ledger, a
    /// platform record, a thaw, or (an application line) its idempotency
    /// keys.
    fn read(&mut self, pos: u32, event: &LogEvent<'_>, line: Line<'_>, silence: i64) {
        let ts = event.timestamp_ms;
        let printed = line.printed_request_id;
        let what = match line.kind {
            LineKind::Other => {
                if !self.config.idempotency_keys.is_empty() {
                    self.keys(pos, ts, event, printed);
                }
                return;
            }
            LineKind::Platform(phase, request_id) => {
                if phase == PlatformPhase::End
                    && crate::parse::platform::timed_out(event.text.raw())
                {
                    let timeout = NetFailure {
                        cause: crate::parse::NetCause::FunctionTimeout,
                        destination: None,
                    };
                    self.mark(
                        pos,
                        ts,
                        event,
                        Some(request_id),
                        What::Net(timeout, silence),
                    );
                }
                self.platform(phase, request_id, pos, ts, event);
                return;
            }
            LineKind::Lifecycle(life) => {
                self.lifecycle(life, pos, ts, event);
                return;
            }
            LineKind::Thaw(frozen_ms) => {
                self.thaw(pos, frozen_ms);
                return;
            }
            LineKind::Keepalive(mut k) => {
                self.stats.keepalive_lines += 1;
                if matches!(
                    k.event,
                    KeepaliveEvent::PingTimeout
                        | KeepaliveEvent::TransportShutdown
                        | KeepaliveEvent::ClientClosed
                        | KeepaliveEvent::TransportClosed { .. }
                ) {
                    self.watch_failures_until = ts.saturating_add(self.config.failure_window_ms);
                }
                // grpc-go's close: how long the function was quiet before it.
                if let KeepaliveEvent::TransportClosed { quiet_ms, .. } = &mut k.event {
                    *quiet_ms = Some(silence);
                }
                What::Keepalive(k)
            }
            LineKind::Traffic(destination) => What::Traffic(destination),
            LineKind::Opened(destination) => What::Opened(destination),
            LineKind::Retrying => What::Retrying,
            LineKind::Connect { destination, done } => What::Connect(destination, done),
            LineKind::CallFailed(failure) => {
                if let Some(net) = failure.net {
                    self.mark(pos, ts, event, printed, What::Net(net, silence));
                }
                match failure.code {
                    Some(code) => What::Failure(code),
                    None => return,
                }
            }
        };
        self.mark(pos, ts, event, printed, what);
    }

    /// The instrument's `thaw` event: the freeze is the latest silence at
    /// least that long (the log's clock saw it whole, give or take a few
    /// ms); the lines since it were written at the thaw.
    fn thaw(&mut self, pos: u32, frozen_ms: i64) {
        if let Some(&(_, from)) = self
            .silences
            .iter()
            .rev()
            .find(|&&(gap, _)| gap + 50 >= frozen_ms)
        {
            self.thaws.push(Thawed {
                from,
                thaw: pos,
                frozen_ms,
            });
        }
    }

    fn mark(&mut self, pos: u32, ts: i64, event: &LogEvent<'_>, printed: Option<&str>, what: What) {
        self.marks.push(Mark {
            pos,
            ts,
            id: self.texts.add(&event.id),
            printed: printed.map(|p| self.texts.printed(p)),
            place: self.place,
            what,
        });
    }

    /// Idempotency keys on an application line.
    #[cold]
    fn keys_found(&mut self, pos: u32, ts: i64, event: &LogEvent<'_>, printed: Option<&str>) {
        let keys = self.config.idempotency_keys.clone();
        let raw = event.text.raw();
        for key in keys.iter() {
            for value in key.find(raw) {
                let what = What::Key(format!("{}={value}", key.path()));
                self.mark(pos, ts, event, printed, what);
            }
        }
        if self.config.record_relevant {
            self.relevant.push(pos);
        }
    }

    fn keys(&mut self, pos: u32, ts: i64, event: &LogEvent<'_>, printed: Option<&str>) {
        let raw = event.text.raw().as_bytes();
        if self
            .config
            .idempotency_keys
            .iter()
            .any(|k| k.name.find(raw).is_some())
        {
            self.keys_found(pos, ts, event, printed);
        }
    }

    fn track_run(&mut self, pos: u32, printed: Option<&str>, event_id: &str) {
        let Some(id) = printed else { return };
        if self.runs.last().is_some_and(|r| r.request_id == id)
            || self.runs.iter().any(|r| r.request_id == id)
        {
            return;
        }
        self.runs.push(Run {
            request_id: id.to_owned(),
            first_pos: pos,
            first_event: event_id.to_owned(),
        });
    }

    fn platform(
        &mut self,
        phase: PlatformPhase,
        request_id: &str,
        pos: u32,
        ts: i64,
        event: &LogEvent<'_>,
    ) {
        let event_id: &str = &event.id;
        match phase {
            PlatformPhase::Start => {
                let idx = self.invocations.len() as u32;
                let before = match self.place {
                    Place::Between(b) => {
                        self.betweens[b as usize].next = Some(idx);
                        Some(b)
                    }
                    // A window that never ended: everything before this START was its.
                    Place::In(prev) => {
                        self.betweens.push(Between {
                            prev,
                            next: Some(idx),
                            freeze_pos: pos,
                            gap_ms: 0,
                        });
                        Some(self.betweens.len() as u32 - 1)
                    }
                    Place::Init => None,
                };
                let raw = event.text.raw();
                self.invocations.push(Invocation {
                    request_id: request_id.to_owned(),
                    start_ms: Some(ts),
                    end_ms: None,
                    start_event: Some((pos, event_id.to_owned())),
                    before,
                    tenant: raw
                        .starts_with('{')
                        .then(|| crate::parse::platform::tenant_id(raw))
                        .flatten()
                        .map(str::to_owned),
                });
                self.stats.invocations += 1;
                self.place = Place::In(idx);
            }
            PlatformPhase::End => {
                let cur = match self.place {
                    Place::In(cur) if self.invocations[cur as usize].request_id == request_id => {
                        cur
                    }
                    _ => return self.unannounced_end(request_id, event_id),
                };
                self.invocations[cur as usize].end_ms = Some(ts);
                self.betweens.push(Between {
                    prev: cur,
                    next: None,
                    freeze_pos: u32::MAX,
                    gap_ms: -1,
                });
                self.place = Place::Between(self.betweens.len() as u32 - 1);
            }
            PlatformPhase::Report => {
                if event.text.raw().starts_with('{') {
                    self.json_report(request_id, ts);
                }
                if !matches!(self.place, Place::Between(_)) {
                    self.unannounced_end(request_id, event_id);
                }
            }
        }
    }

    /// From the stream's first event to its last, ms.
    pub(super) fn span_ms(&self) -> i64 {
        match (self.first_ts, self.prev_ts) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        }
    }

    /// Positions (in push order) of the lines that matter to correlation,
    /// when [`Config::record_relevant`] is set: what a caller keeps to
    /// correlate the next batch of the stream with this one.
    pub fn relevant_positions(&self) -> &[u32] {
        &self.relevant
    }

    /// The positions of the function's last line of its own so far (not a
    /// platform record) and of the one before its current burst of lines:
    /// the next line's silence is measured from them, so a caller that
    /// keeps context between batches keeps them too.
    pub fn last_spoken_positions(&self) -> impl Iterator<Item = u32> {
        self.burst_from_pos.into_iter().chain(self.spoke_pos)
    }

    /// The event IDs of the `END` and `REPORT` lines, read with
    /// [`Config::record_relevant`], of invocations whose `START` was not
    /// read: the lines read lack that start (a batch of the stream that
    /// another collector instance got), so lines between it and its end
    /// may be taken for the wrong invocation. At most a few are kept.
    pub fn unannounced_lines(&self) -> impl Iterator<Item = &str> {
        self.unannounced.iter().map(String::as_str)
    }

    /// Notes the end of an invocation whose START was not read.
    fn unannounced_end(&mut self, request_id: &str, event_id: &str) {
        const KEPT: usize = 8;
        if self.config.record_relevant
            && self.unannounced.len() < KEPT
            && !self
                .invocations
                .iter()
                .rev()
                .any(|i| i.request_id == request_id)
        {
            self.unannounced.push(event_id.to_owned());
        }
    }
}

/// Runs lines `(event time, message)` through a correlator as one stream
/// (event IDs `e0`, `e1`, …): what unit tests of the correlation need.
#[cfg(test)]
pub(crate) fn run_stream<S: AsRef<str>>(
    lines: &[(i64, S)],
    config: Config,
) -> (crate::Collected, StreamStats) {
    let mut c = StreamCorrelator::new("/aws/lambda/f", "s", config);
    let ids: Vec<String> = (0..lines.len()).map(|i| format!("e{i}")).collect();
    for (i, (ts, msg)) in lines.iter().enumerate() {
        c.push(&LogEvent {
            id: ids[i].as_str().into(),
            timestamp_ms: *ts,
            text: RawText::Plain(msg.as_ref()),
        });
    }
    let mut out = crate::Collected::default();
    let stats = c.finish(&mut out);
    (out, stats)
}
