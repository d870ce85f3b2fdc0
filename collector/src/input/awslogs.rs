//! The collector's hot path: one Lambda event from CloudWatch Logs (the
//! subscription event `{"awslogs":{"data":"<base64 gzip>"}}`, or a Kinesis
//! event of subscription records) to findings, reusing buffers across
//! invocations and never unescaping a message nobody reads.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use thawtrace_analyzers::parse::RawText;
use thawtrace_analyzers::{Config, FindingSink, LogEvent, StreamCorrelator, sort_stream};

use super::{Budget, InputError, Limits};

use super::payloads::Wrapper;
pub use super::payloads::{Carrier, Scratch};

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

/// One payload of a Lambda event: the awslogs data, or one Kinesis
/// record's.
#[derive(Debug)]
pub struct EventPayload<'a> {
    /// Where it is: `awslogs`, or `record 3 (sequence number …)`.
    pub place: String,
    /// What carried it.
    pub carrier: Carrier,
    /// The Kinesis record's sequence number (what a partial batch
    /// response names).
    pub sequence_number: Option<Cow<'a, str>>,
    /// When Kinesis received the record, ms since the Unix epoch.
    pub arrival_ms: Option<i64>,
    /// Its base64 data; `None` for a record without `kinesis.data`.
    pub data: Option<Cow<'a, str>>,
}

/// The payloads of a Lambda event from CloudWatch Logs: one for a
/// subscription event, one per record for a Kinesis event. Only their
/// shape is read here; each is decoded on its own
/// ([`super::payloads::decode_payload`]), so a bad one is skipped, not the
/// event.
///
/// # Errors
///
/// An event that is neither.
pub fn event_payloads(payload: &[u8]) -> Result<Vec<EventPayload<'_>>, InputError> {
    let parsed: Wrapper<'_> = serde_json::from_slice(payload)
        .map_err(|e| InputError::new(format!("not a CloudWatch Logs or Kinesis event ({e})")))?;
    match (parsed.awslogs, parsed.records) {
        (Some(awslogs), _) => Ok(vec![EventPayload {
            place: "awslogs".into(),
            carrier: Carrier::Awslogs,
            sequence_number: None,
            arrival_ms: None,
            data: Some(awslogs.data),
        }]),
        (None, Some(records)) => Ok(records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let k = r.ok().and_then(|r| r.kinesis);
                let sequence_number = k.as_ref().and_then(|k| k.sequence_number.clone());
                EventPayload {
                    place: match &sequence_number {
                        Some(n) => format!("record {i} (sequence number {n})"),
                        None => format!("record {i}"),
                    },
                    carrier: Carrier::Kinesis,
                    sequence_number,
                    arrival_ms: k
                        .as_ref()
                        .and_then(|k| k.arrival)
                        .filter(|s| s.is_finite())
                        .map(|s| (s * 1000.0) as i64),
                    data: k.and_then(|k| k.data),
                }
            })
            .collect()),
        (None, None) => Err(InputError::new(
            "neither an awslogs subscription event nor a Kinesis event (no awslogs, no Records)",
        )),
    }
}

impl EventPayload<'_> {
    /// Decodes this payload into `scratch.text`, charged to `budget`.
    ///
    /// # Errors
    ///
    /// As [`super::payloads::decode_payload`]; a record without data.
    pub fn decode<'s>(
        &self,
        budget: &mut Budget,
        scratch: &'s mut Scratch,
    ) -> Result<&'s str, InputError> {
        let data = self
            .data
            .as_deref()
            .ok_or_else(|| InputError::new("no kinesis.data"))?;
        super::payloads::decode_payload(data, self.carrier, budget, scratch)
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
    let mut budget = Budget::for_input(limits, 0);
    for p in event_payloads(payload)? {
        let one = p
            .decode(&mut budget, scratch)
            .and_then(|text| analyze_text(text, limits, config, sink))
            .map_err(|e| InputError::new(format!("{}: {e}", p.place)))?;
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
            let body = limits.message_fits(e.message).then_some(e.message);
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
        let body = raw
            .strip_prefix('"')
            .and_then(|m| m.strip_suffix('"'))
            .filter(|m| limits.message_fits(m));
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

fn analyze_text(
    text: &str,
    limits: &Limits,
    config: &Config,
    sink: &mut impl FindingSink,
) -> Result<PayloadStats, InputError> {
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

#[cfg(test)]
mod shape_tests {
    use super::*;

    /// A record of the wrong shape is one payload that cannot be read, not
    /// the reason to refuse the event.
    #[test]
    fn records_of_the_wrong_shape_are_payloads_without_data() {
        let event = br#"{"Records":["junk",{"kinesis":5},{"kinesis":{"data":7,"sequenceNumber":"2"}},{"kinesis":{"data":"e30=","sequenceNumber":"3"}}]}"#;
        let payloads = event_payloads(event).unwrap();
        assert_eq!(payloads.len(), 4);
        assert!(payloads[..3].iter().all(|p| p.data.is_none()));
        assert_eq!(payloads[3].data.as_deref(), Some("e30="));
        assert_eq!(payloads[3].sequence_number.as_deref(), Some("3"));
        assert_eq!(payloads[3].place, "record 3 (sequence number 3)");
    }
}
