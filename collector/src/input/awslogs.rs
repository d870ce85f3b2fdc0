//! The collector's hot path: one Lambda event from CloudWatch Logs (the
//! subscription event `{"awslogs":{"data":"<base64 gzip>"}}`, or a Kinesis
//! event of subscription records) to findings, reusing buffers across
//! invocations and never unescaping a message nobody reads.

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use thawtrace_analyzers::parse::RawText;
use thawtrace_analyzers::{Config, FindingSink, LogEvent, StreamCorrelator, sort_stream};

use super::{InputError, Limits, gunzip_into, is_gzip};

/// Buffers kept between payloads so a warm collector does not allocate
/// them again.
#[derive(Default)]
pub struct Scratch {
    compressed: Vec<u8>,
    text: Vec<u8>,
}

#[derive(Deserialize)]
struct AwsLogs<'a> {
    data: &'a str,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "messageType")]
    message_type: &'a str,
    #[serde(rename = "logGroup")]
    log_group: &'a str,
    #[serde(rename = "logStream")]
    log_stream: &'a str,
    #[serde(borrow, rename = "logEvents")]
    log_events: Vec<Event<'a>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    id: &'a str,
    timestamp: i64,
    #[serde(borrow)]
    message: &'a RawValue,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow, default)]
    awslogs: Option<AwsLogs<'a>>,
    #[serde(borrow, default, rename = "Records")]
    records: Option<Vec<KinesisRecord<'a>>>,
}

#[derive(Deserialize)]
struct KinesisRecord<'a> {
    #[serde(borrow)]
    kinesis: KinesisData<'a>,
}

#[derive(Deserialize)]
struct KinesisData<'a> {
    data: &'a str,
}

/// The base64 subscription data a Lambda event carries: one awslogs
/// payload, or one per Kinesis record.
fn subscription_data(payload: &[u8]) -> Result<Vec<&str>, InputError> {
    let parsed: Payload<'_> = serde_json::from_slice(payload)
        .map_err(|e| InputError::new(format!("not a CloudWatch Logs or Kinesis event ({e})")))?;
    match (parsed.awslogs, parsed.records) {
        (Some(awslogs), _) => Ok(vec![awslogs.data]),
        (None, Some(records)) => Ok(records.iter().map(|r| r.kinesis.data).collect()),
        (None, None) => Err(InputError::new(
            "neither an awslogs subscription event nor a Kinesis event (no awslogs, no Records)",
        )),
    }
}

/// What one payload held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PayloadStats {
    /// Subscription messages read (one per stream and batch).
    pub messages: u64,
    /// Log events read.
    pub events: u64,
    /// Log events refused (over the size limit, message not a string).
    pub refused: u64,
}

/// Decodes a Lambda event from CloudWatch Logs, either the subscription
/// event (`{"awslogs":{"data":…}}`) or a Kinesis event whose records carry
/// subscription data (account-level subscriptions), and correlates every
/// stream in it, pushing findings into `sink`.
///
/// ```
/// use std::io::Write;
/// use base64::Engine;
/// use thawtrace::input::{Limits, awslogs::{Scratch, analyze_payload}};
/// use thawtrace_analyzers::{Config, Finding};
///
/// let msg = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/lambda/f","logStream":"s","subscriptionFilters":["t"],"logEvents":[{"id":"1","timestamp":1,"message":"START RequestId: aaaaaaaa-0000-4000-8000-000000000001 Version: $LATEST"}]}"#;
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// gz.write_all(msg.as_bytes()).unwrap();
/// let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
/// let mut findings: Vec<Finding> = Vec::new();
/// let (limits, config, mut scratch) = (Limits::default(), Config::default(), Scratch::default());
/// for event in [format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#), format!(r#"{{"Records":[{{"kinesis":{{"data":"{data}"}}}}]}}"#)] {
///     let stats = analyze_payload(event.as_bytes(), &mut scratch, &limits, &config, &mut findings).unwrap();
///     assert_eq!((stats.messages, stats.events), (1, 1));
/// }
/// ```
///
/// # Errors
///
/// A payload that is neither, or whose data does not decode.
pub fn analyze_payload(
    payload: &[u8],
    scratch: &mut Scratch,
    limits: &Limits,
    config: &Config,
    sink: &mut impl FindingSink,
) -> Result<PayloadStats, InputError> {
    let mut stats = PayloadStats::default();
    let datas = subscription_data(payload)?;
    for (i, data) in datas.into_iter().enumerate() {
        let one = analyze_data(data, scratch, limits, config, sink)
            .map_err(|e| InputError::new(format!("record {i}: {e}")))?;
        stats.messages += 1;
        stats.events += one.events;
        stats.refused += one.refused;
    }
    Ok(stats)
}

/// One decoded subscription message, its events borrowed from the text.
#[derive(Debug)]
pub struct DecodedMessage<'a> {
    /// The log group.
    pub log_group: &'a str,
    /// The log stream.
    pub log_stream: &'a str,
    /// Its events, in stream order.
    pub events: Vec<LogEvent<'a>>,
    /// Events refused (over the size limit, message not a string).
    pub refused: u64,
}

/// Parses a decoded subscription message; `None` for a `CONTROL_MESSAGE`.
///
/// # Errors
///
/// Text that is not a subscription message.
pub fn parse_message<'a>(
    text: &'a str,
    limits: &Limits,
) -> Result<Option<DecodedMessage<'a>>, InputError> {
    // The one-pass reader first; serde_json for what it leaves (and to
    // name what is wrong). The limit is on the message as a JSON string,
    // quotes included.
    if let Some(m) = super::fast::scan_message(text)
        && let (Some(message_type), Some(log_group), Some(log_stream)) =
            (m.message_type, m.log_group, m.log_stream)
    {
        if message_type == "CONTROL_MESSAGE" {
            return Ok(None);
        }
        let events = m.events.into_iter().map(|e| {
            let body = (e.message.len() + 2 <= limits.max_event_bytes).then_some(e.message);
            (e.id, e.timestamp, body)
        });
        return Ok(Some(decoded(log_group, log_stream, events)));
    }
    let message: Message<'a> = serde_json::from_str(text)
        .map_err(|e| InputError::new(format!("not a subscription message ({e})")))?;
    if message.message_type == "CONTROL_MESSAGE" {
        return Ok(None);
    }
    let events = message.log_events.iter().map(|ev| {
        let raw = ev.message.get();
        let body = (raw.len() <= limits.max_event_bytes)
            .then(|| raw.strip_prefix('"').and_then(|m| m.strip_suffix('"')))
            .flatten();
        (ev.id, ev.timestamp, body)
    });
    Ok(Some(decoded(message.log_group, message.log_stream, events)))
}

/// A message's events `(id, time, message)` in stream order; those without
/// a message (over the size limit, not a string) are counted as refused.
fn decoded<'a>(
    log_group: &'a str,
    log_stream: &'a str,
    items: impl ExactSizeIterator<Item = (&'a str, i64, Option<&'a str>)>,
) -> DecodedMessage<'a> {
    let mut refused = 0;
    let mut events: Vec<LogEvent<'a>> = Vec::with_capacity(items.len());
    for (id, timestamp_ms, body) in items {
        match body {
            Some(body) => events.push(LogEvent {
                id: id.into(),
                timestamp_ms,
                text: RawText::JsonEscaped(body),
            }),
            None => refused += 1,
        }
    }
    if !events
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
    {
        sort_stream(&mut events);
    }
    DecodedMessage {
        log_group,
        log_stream,
        events,
        refused,
    }
}

/// The subscription messages of a Lambda event (awslogs or Kinesis), each
/// decoded (base64, gunzip) into text of its own.
///
/// # Errors
///
/// A payload that is neither, or whose data does not decode.
pub fn decode_messages(payload: &[u8], limits: &Limits) -> Result<Vec<String>, InputError> {
    let mut texts = Vec::new();
    decode_messages_into(payload, limits, &mut Scratch::default(), &mut texts)?;
    Ok(texts)
}

/// [`decode_messages`] into `texts`, reusing the buffers `texts` and
/// `scratch` hold from the event before: a warm collector does not fault
/// in fresh pages for every batch.
///
/// # Errors
///
/// As [`decode_messages`]; `texts` is then left in no useful state.
pub fn decode_messages_into(
    payload: &[u8],
    limits: &Limits,
    scratch: &mut Scratch,
    texts: &mut Vec<String>,
) -> Result<(), InputError> {
    let datas = subscription_data(payload)?;
    texts.truncate(datas.len());
    for (i, data) in datas.into_iter().enumerate() {
        if let Some(old) = texts.get_mut(i) {
            scratch.text = std::mem::take(old).into_bytes();
        }
        let text = decode_data(data, scratch, limits)
            .and_then(|()| {
                String::from_utf8(std::mem::take(&mut scratch.text))
                    .map_err(|_| InputError::new("subscription data is not UTF-8"))
            })
            .map_err(|e| InputError::new(format!("record {i}: {e}")))?;
        match texts.get_mut(i) {
            Some(slot) => *slot = text,
            None => texts.push(text),
        }
    }
    Ok(())
}

fn decode_data(data: &str, scratch: &mut Scratch, limits: &Limits) -> Result<(), InputError> {
    scratch.compressed.clear();
    base64::engine::general_purpose::STANDARD
        .decode_vec(data, &mut scratch.compressed)
        .map_err(|e| InputError::new(format!("invalid base64 in the subscription data: {e}")))?;
    if !is_gzip(&scratch.compressed) {
        return Err(InputError::new("subscription data is not gzip"));
    }
    gunzip_into(
        &scratch.compressed,
        limits.max_decompressed_bytes,
        &mut scratch.text,
    )
}

fn analyze_data(
    data: &str,
    scratch: &mut Scratch,
    limits: &Limits,
    config: &Config,
    sink: &mut impl FindingSink,
) -> Result<PayloadStats, InputError> {
    decode_data(data, scratch, limits)?;
    let text = std::str::from_utf8(&scratch.text)
        .map_err(|_| InputError::new("subscription data is not UTF-8"))?;
    let Some(message) = parse_message(text, limits)? else {
        return Ok(PayloadStats::default());
    };
    let mut correlator =
        StreamCorrelator::new(message.log_group, message.log_stream, config.clone());
    for ev in &message.events {
        correlator.push(ev);
    }
    correlator.finish(sink);
    Ok(PayloadStats {
        messages: 0,
        events: message.events.len() as u64,
        refused: message.refused,
    })
}
