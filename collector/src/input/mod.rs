//! Decoding what users and AWS send into log events.
//!
//! Accepted, per file (or stdin), detected from the content:
//!
//! | input | shape |
//! |---|---|
//! | Lambda subscription event | `{"awslogs":{"data":"<base64 gzip>"}}` |
//! | decoded subscription message | `{"messageType","logGroup","logStream","logEvents":[…]}` (also gzip, or several concatenated) |
//! | Kinesis event of subscription records | `{"Records":[{"kinesis":{"data":"<base64 gzip>"}}]}` |
//! | `aws logs filter-log-events` output | `{"events":[{"logStreamName","timestamp","message","eventId"}]}` |
//! | JSON lines | `{"id"?, "timestamp", "message", "logStream"?, "logGroup"?}` per line |
//! | CloudWatch Logs export object ([`exports`]) | `<RFC 3339 time> <message>` per line, stream from its folder |
//! | Firehose object of a subscription | subscription messages concatenated, gzipped per record or as a whole (or both), with or without newlines |
//!
//! A malformed line or event is counted and skipped; a file that yields no
//! event at all is unusable and reported with the reason.

pub mod awslogs;
mod b64;
pub mod exports;
mod fast;
mod files;
mod limits;
mod payloads;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use thawtrace_analyzers::parse::RawText;
use thawtrace_analyzers::time::parse_rfc3339;
use thawtrace_analyzers::{Batch, LogEvent};

pub use exports::{ExportPlace, looks_like_export, read_export};
pub use files::{Decoded, Found, decode_input, find_inputs, read_input};
pub use limits::{Budget, Limits, gunzip_into, is_gzip};
pub use payloads::{Unwrapped, decode_data, unwrap_payloads};

/// Why an input could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// What was wrong, in words.
    pub reason: String,
    /// True when a limit was met (`--max-decompressed-mb`,
    /// `--max-total-mb`): the whole input is refused, not one record.
    over_limit: bool,
}

impl InputError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        InputError {
            reason: reason.into(),
            over_limit: false,
        }
    }

    pub(crate) fn limit(reason: impl Into<String>) -> Self {
        InputError {
            reason: reason.into(),
            over_limit: true,
        }
    }

    /// True when the input met a limit rather than held something malformed.
    pub fn is_over_limit(&self) -> bool {
        self.over_limit
    }
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The group name used when an input does not say.
pub const UNKNOWN_GROUP: &str = "-";

/// What decoding one text yielded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DecodeStats {
    /// Log events added to the batch.
    pub events: u64,
    /// Lines or events skipped as malformed.
    pub malformed: u64,
    /// The first few reasons, with where.
    pub problems: Vec<String>,
}

impl DecodeStats {
    /// Counts one malformed line, event or payload, and keeps the first
    /// few reasons with where they were.
    pub fn skip(&mut self, wherein: impl std::fmt::Display, reason: impl std::fmt::Display) {
        self.malformed += 1;
        if self.problems.len() < 5 {
            self.problems.push(format!("{wherein}: {reason}"));
        }
    }
}

/// A timestamp as inputs give it: ms since the epoch (an integer, or a
/// float) or text. Read by a visitor of its own: serde's `untagged` would
/// buffer every event's timestamp before trying each shape.
enum Timestamp<'a> {
    Millis(i64),
    Float(f64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Timestamp<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Timestamp<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Timestamp::Millis(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Timestamp::Float(v as f64), Timestamp::Millis))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Timestamp::Float(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Timestamp::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Timestamp::Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

impl Timestamp<'_> {
    fn millis(&self) -> Option<i64> {
        match self {
            Timestamp::Millis(n) => Some(millis_of(*n)),
            Timestamp::Float(f) => float_millis(*f),
            Timestamp::Text(s) => match s.parse::<i64>() {
                Ok(n) => Some(millis_of(n)),
                Err(_) => s
                    .parse::<f64>()
                    .ok()
                    .and_then(float_millis)
                    .or_else(|| parse_rfc3339(s)),
            },
        }
    }
}

/// 2000-01-01 and 2100-01-01 in ms since the epoch: the times a log event
/// can plausibly have. Seconds, milliseconds, microseconds and nanoseconds
/// of that century fall in ranges a thousand times apart that do not
/// overlap, so the unit of a timestamp is never ambiguous there; anything
/// outside them is read as milliseconds, as CloudWatch Logs gives them.
const PLAUSIBLE_MS: std::ops::Range<i64> = 946_684_800_000..4_102_444_800_000;

/// A timestamp in whichever unit its size says, in ms.
fn millis_of(n: i64) -> i64 {
    let (lo, hi) = (PLAUSIBLE_MS.start, PLAUSIBLE_MS.end);
    if (lo / 1000..hi / 1000).contains(&n) {
        n * 1000
    } else if (lo * 1000..hi * 1000).contains(&n) {
        n / 1000
    } else if (lo * 1_000_000..hi * 1_000_000).contains(&n) {
        n / 1_000_000
    } else {
        n
    }
}

fn float_millis(f: f64) -> Option<i64> {
    if !f.is_finite() {
        return None;
    }
    let (lo, hi) = (PLAUSIBLE_MS.start as f64, PLAUSIBLE_MS.end as f64);
    let ms = if (lo / 1e3..hi / 1e3).contains(&f) {
        (f * 1e3).round()
    } else if (lo * 1e3..hi * 1e3).contains(&f) {
        f / 1e3
    } else if (lo * 1e6..hi * 1e6).contains(&f) {
        f / 1e6
    } else {
        f
    };
    // `as` saturates: a float beyond i64 is no usable time.
    (ms.abs() < 9.0e18).then_some(ms as i64)
}

/// One event in any of the accepted shapes.
#[derive(Deserialize)]
struct EventIn<'a> {
    #[serde(borrow, default, alias = "eventId")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<Timestamp<'a>>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "logStream", alias = "logStreamName")]
    log_stream: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "logGroup", alias = "logGroupName")]
    log_group: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(super) struct AwsLogs<'a> {
    #[serde(borrow)]
    pub(super) data: Cow<'a, str>,
}

#[derive(Deserialize)]
pub(super) struct KinesisData<'a> {
    #[serde(borrow, default)]
    pub(super) data: Option<Cow<'a, str>>,
    /// The record's metadata: `None` when it is not of the type Lambda
    /// gives it, rather than the whole event (or file) refused for a field
    /// only the partial batch response and the EMF time read.
    #[serde(default, rename = "sequenceNumber", deserialize_with = "lenient")]
    pub(super) sequence_number: Option<Cow<'a, str>>,
    /// Seconds since the Unix epoch, when Kinesis received the record.
    #[serde(
        default,
        rename = "approximateArrivalTimestamp",
        deserialize_with = "lenient"
    )]
    pub(super) arrival: Option<f64>,
}

/// A value of type `T`, or anything else in its place (a record of the
/// wrong shape, skipped on its own rather than the whole event refused).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Lenient<T> {
    Is(T),
    Other(serde::de::IgnoredAny),
}

impl<T> Lenient<T> {
    pub(super) fn ok(self) -> Option<T> {
        match self {
            Lenient::Is(t) => Some(t),
            Lenient::Other(_) => None,
        }
    }
}

/// A value of type `T`, or `None` for any other value.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Lenient::<T>::deserialize(d)?.ok())
}

#[derive(Deserialize)]
pub(super) struct KinesisRecord<'a> {
    /// `None` too when it is not an object of a Kinesis record's fields.
    #[serde(borrow, default, deserialize_with = "lenient")]
    pub(super) kinesis: Option<KinesisData<'a>>,
}

/// A subscription message read in one pass, its events with it: the
/// common input, and the fast path. Anything unusual in it (a wrapped
/// payload beside it, an event that does not parse, one near the size
/// limit) sends the text to the tolerant path, which names each problem.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, rename = "logEvents")]
    log_events: Vec<EventIn<'a>>,
    #[serde(borrow, default, rename = "messageType")]
    message_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "logGroup")]
    log_group: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "logStream")]
    log_stream: Option<Cow<'a, str>>,
    #[serde(default)]
    awslogs: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "Records")]
    records: Option<serde::de::IgnoredAny>,
}

/// Any top-level JSON object we accept, told apart by its keys.
#[derive(Deserialize)]
struct TopLevel<'a> {
    #[serde(borrow, default, rename = "logEvents")]
    log_events: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    events: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    awslogs: Option<AwsLogs<'a>>,
    #[serde(borrow, default, rename = "Records")]
    records: Option<Vec<KinesisRecord<'a>>>,
    #[serde(borrow, default, rename = "messageType")]
    message_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "logGroup")]
    log_group: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "logStream")]
    log_stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

/// Reads the log events of one text into the batch, which borrows from it.
pub fn read_text<'a>(
    name: &str,
    text: &'a str,
    limits: &Limits,
    batch: &mut Batch<'a>,
) -> Result<DecodeStats, InputError> {
    let body = text.trim_start_matches('\u{feff}');
    if body.trim().is_empty() {
        return Err(InputError::new("empty input: no log events"));
    }
    let mut reader = TextReader {
        name,
        limits,
        batch,
        stats: DecodeStats::default(),
    };
    let first = body.trim_start().as_bytes()[0];
    if first == b'{' && reader.read_message_fast(body) {
        return Ok(reader.stats);
    }
    if first != b'{' && first != b'[' {
        return Err(InputError::new(
            "not JSON: expected a subscription payload, filter-log-events output or JSON lines",
        ));
    }
    // Whole-text JSON values (pretty-printed CLI output, concatenated
    // subscription messages); on a syntax error, fall back to lines.
    match json_values(body) {
        Some(values) if values.len() == 1 => reader.read_value(None, values[0])?,
        // One value per line: JSON lines, read line by line so problems name their line.
        Some(values) if values.len() > 1 && one_per_line(body, &values) => reader.read_lines(body),
        Some(values) => reader.read_values(body, values),
        None => reader.read_lines(body),
    }
    Ok(reader.stats)
}

/// The JSON values a whole text holds, one after another; `None` when it
/// is not all JSON.
fn json_values(body: &str) -> Option<Vec<&RawValue>> {
    let mut values = Vec::new();
    for v in serde_json::Deserializer::from_str(body).into_iter::<&RawValue>() {
        values.push(v.ok()?);
    }
    Some(values)
}

/// True when each of the text's non-blank lines holds one of its values.
fn one_per_line(body: &str, values: &[&RawValue]) -> bool {
    body.lines().filter(|l| !l.trim().is_empty()).count() == values.len()
}

/// One text being read: its input's name, the limits, the batch its events
/// go to and what was skipped so far.
struct TextReader<'r, 'a> {
    name: &'r str,
    limits: &'r Limits,
    batch: &'r mut Batch<'a>,
    stats: DecodeStats,
}

impl<'a> TextReader<'_, 'a> {
    /// Several JSON values in one text: each a unit, named by the line it
    /// starts on.
    fn read_values(&mut self, body: &'a str, values: Vec<&'a RawValue>) {
        let mut line = 1;
        let mut at = 0;
        for v in values {
            let start = v.get().as_ptr() as usize - body.as_ptr() as usize;
            line += memchr::memchr_iter(b'\n', &body.as_bytes()[at..start]).count();
            at = start;
            if let Err(e) = self.read_value(Some(line), v) {
                self.stats.skip(format_args!("line {line}"), e);
            }
        }
    }

    /// JSON lines: each line a unit, skipped with its number when it is
    /// too long, not JSON or not of a shape we read.
    fn read_lines(&mut self, body: &'a str) {
        for (n, line) in body.lines().enumerate() {
            let line_no = n + 1;
            if line.trim().is_empty() {
                continue;
            }
            if line.len() > self.limits.max_event_bytes {
                self.stats.skip(
                    format_args!("line {line_no}"),
                    format_args!(
                        "{} bytes, over the {} KiB event limit",
                        line.len(),
                        self.limits.max_event_bytes >> 10
                    ),
                );
                continue;
            }
            match serde_json::from_str::<&RawValue>(line) {
                Ok(v) => {
                    if let Err(e) = self.read_value(Some(line_no), v) {
                        self.stats.skip(format_args!("line {line_no}"), e);
                    }
                }
                Err(e) => self.stats.skip(
                    format_args!("line {line_no}"),
                    format_args!("not JSON ({e})"),
                ),
            }
        }
    }

    /// The fast path: the whole text is one well-formed subscription
    /// message. Returns false, having read nothing, when the text needs
    /// the tolerant path.
    fn read_message_fast(&mut self, body: &'a str) -> bool {
        match fast::scan_message(body) {
            Some(m) => self.read_scanned(m),
            None => self.read_message(body),
        }
    }

    /// A message the fast scanner read. Anything to say about an event
    /// (its size, its time) is said by the tolerant path: false then.
    fn read_scanned(&mut self, m: fast::FastMessage<'a>) -> bool {
        let limits = self.limits;
        let times = m.events.iter().map(|e| {
            limits
                .message_fits(e.message)
                .then(|| Timestamp::Millis(e.timestamp).millis())
                .flatten()
        });
        if times.clone().any(|t| t.is_none()) {
            return false;
        }
        if m.message_type == Some("CONTROL_MESSAGE") {
            return true;
        }
        let group = m.log_group.unwrap_or(UNKNOWN_GROUP);
        let stream = m
            .log_stream
            .map_or(Cow::Owned(self.name.to_owned()), Cow::Borrowed);
        self.stats.events += m.events.len() as u64;
        // Every time is there (checked above): flatten drops none.
        let events = m
            .events
            .iter()
            .zip(times.flatten())
            .map(|(e, ts)| LogEvent {
                id: Cow::Borrowed(e.id),
                timestamp_ms: ts,
                text: RawText::JsonEscaped(e.message),
            });
        self.batch.extend(group, stream, events);
        true
    }

    /// A message the fast scanner could not read, parsed by serde in one
    /// pass. False, having read nothing, when anything in it needs the
    /// tolerant path: a wrapped payload beside it, an event that does not
    /// parse, one near the size limit.
    fn read_message(&mut self, body: &'a str) -> bool {
        let Ok(message) = serde_json::from_str::<Message<'a>>(body) else {
            return false;
        };
        if message.awslogs.is_some()
            || message.records.is_some()
            || message
                .log_events
                .iter()
                .any(|e| e.message.is_some_and(|m| !self.fits(m)))
        {
            return false;
        }
        if message.message_type.as_deref() == Some("CONTROL_MESSAGE") {
            return true;
        }
        for (i, ev) in message.log_events.into_iter().enumerate() {
            let place = Place {
                name: self.name,
                group: message.log_group.clone(),
                stream: message.log_stream.clone(),
                line: 0,
                index: Some(i),
            };
            accept_event(place, ev, self.batch, &mut self.stats);
        }
        true
    }

    /// One JSON value, at `line` when the text has lines that count: an
    /// array of events, a subscription message, filter-log-events output
    /// or a single event.
    fn read_value(&mut self, line: Option<usize>, value: &'a RawValue) -> Result<(), InputError> {
        let raw = value.get();
        let line = line.unwrap_or(0);
        if raw.starts_with('[') {
            let items: Vec<&'a RawValue> = serde_json::from_str(raw)
                .map_err(|e| InputError::new(format!("not a JSON array of events ({e})")))?;
            self.read_events(None, None, line, items);
            return Ok(());
        }
        let top: TopLevel<'a> = serde_json::from_str(raw)
            .map_err(|e| InputError::new(format!("JSON of the wrong shape ({e})")))?;
        if top.awslogs.is_some() || top.records.is_some() {
            return Err(InputError::new(
                "a wrapped payload (awslogs or Kinesis) among other JSON values; give it a file of its own",
            ));
        }
        if let Some(events) = top.log_events {
            if top.message_type.as_deref() != Some("CONTROL_MESSAGE") {
                self.read_events(top.log_group, top.log_stream, line, events);
            }
            return Ok(());
        }
        if let Some(events) = top.events {
            self.read_events(top.log_group, None, line, events);
            return Ok(());
        }
        if top.message.is_some() {
            let place = Place {
                name: self.name,
                group: None,
                stream: None,
                line,
                index: None,
            };
            self.read_event(place, value);
            return Ok(());
        }
        Err(InputError::new(
            "JSON of the wrong shape: expected a subscription message (logEvents), an awslogs event, a Kinesis event, filter-log-events output (events) or a log event (timestamp, message)",
        ))
    }

    /// The events of one value, each named by its index in it, in the
    /// group and stream the value names (if any).
    fn read_events(
        &mut self,
        group: Option<Cow<'a, str>>,
        stream: Option<Cow<'a, str>>,
        line: usize,
        events: Vec<&'a RawValue>,
    ) {
        for (i, ev) in events.into_iter().enumerate() {
            let place = Place {
                name: self.name,
                group: group.clone(),
                stream: stream.clone(),
                line,
                index: Some(i),
            };
            self.read_event(place, ev);
        }
    }

    /// One event, from `place`: skipped when it is not an event or its
    /// message is over the event limit.
    fn read_event(&mut self, place: Place<'_, 'a>, value: &'a RawValue) {
        let ev: EventIn<'a> = match serde_json::from_str(value.get()) {
            Ok(ev) => ev,
            Err(e) => {
                self.stats
                    .skip(place.wherein(), format_args!("not a log event ({e})"));
                return;
            }
        };
        if let Some(m) = ev.message.filter(|m| !self.fits(m)) {
            self.stats.skip(
                place.wherein(),
                format_args!(
                    "a message of {} bytes, over the {} KiB event limit",
                    m.get().len(),
                    self.limits.max_event_bytes >> 10
                ),
            );
            return;
        }
        accept_event(place, ev, self.batch, &mut self.stats);
    }

    /// Whether a message (a JSON value; only strings are messages) is
    /// within the event limit ([`Limits::message_fits`]).
    fn fits(&self, message: &RawValue) -> bool {
        let json = message.get();
        let content = json
            .strip_prefix('"')
            .and_then(|m| m.strip_suffix('"'))
            .unwrap_or(json);
        self.limits.message_fits(content)
    }
}

/// Where an event came from: its input, the group and stream its message
/// names, its line (0: none) and its index among the events of a value
/// that holds several.
struct Place<'n, 'a> {
    name: &'n str,
    group: Option<Cow<'a, str>>,
    stream: Option<Cow<'a, str>>,
    line: usize,
    index: Option<usize>,
}

impl Place<'_, '_> {
    /// Where, for a problem's message.
    fn wherein(&self) -> String {
        match (self.line, self.index) {
            (0, i) => format!("event {}", i.unwrap_or(0)),
            (line, None) => format!("line {line}"),
            (line, Some(i)) => format!("line {line}, event {i}"),
        }
    }
}

/// Adds a parsed event to the batch, or counts why it cannot be.
fn accept_event<'a>(
    place: Place<'_, 'a>,
    ev: EventIn<'a>,
    batch: &mut Batch<'a>,
    stats: &mut DecodeStats,
) {
    let Some(ts) = ev.timestamp.as_ref().and_then(Timestamp::millis) else {
        stats.skip(
            place.wherein(),
            "no usable timestamp (ms since the epoch or RFC 3339)",
        );
        return;
    };
    let Some(message) = ev
        .message
        .map(RawValue::get)
        .and_then(|m| m.strip_prefix('"')?.strip_suffix('"'))
    else {
        stats.skip(place.wherein(), "no message string");
        return;
    };
    let Place {
        name,
        group,
        stream,
        line,
        index,
    } = place;
    let group = ev
        .log_group
        .or(group)
        .unwrap_or(Cow::Borrowed(UNKNOWN_GROUP));
    let stream = match ev.log_stream.or(stream) {
        Some(s) => s,
        None => Cow::Owned(name.to_owned()),
    };
    let id = match (ev.id, line, index) {
        (Some(id), _, _) => id,
        (None, 0, i) => Cow::Owned(format!("{name}#{}", i.unwrap_or(0))),
        (None, line, None) => Cow::Owned(format!("{name}:{line}")),
        (None, line, Some(i)) => Cow::Owned(format!("{name}:{line}#{i}")),
    };
    batch.push(group, stream, id, ts, RawText::JsonEscaped(message));
    stats.events += 1;
}
