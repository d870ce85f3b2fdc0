//! The collector's hot path: one Lambda subscription event
//! (`{"awslogs":{"data":"<base64 gzip>"}}`) to findings, reusing buffers
//! across invocations and never unescaping a message nobody reads.

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use thawtrace_analyzers::parse::RawText;
use thawtrace_analyzers::{
    Config, FindingSink, LogEvent, StreamCorrelator, StreamStats, sort_stream,
};

use super::{InputError, Limits, gunzip_into, is_gzip};

/// Buffers kept between payloads so a warm collector does not allocate
/// them again.
#[derive(Default)]
pub struct Scratch {
    compressed: Vec<u8>,
    text: Vec<u8>,
}

#[derive(Deserialize)]
struct LambdaEvent<'a> {
    #[serde(borrow)]
    awslogs: AwsLogs<'a>,
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

/// Decodes one awslogs subscription event and correlates its stream,
/// pushing findings into `sink`. A `CONTROL_MESSAGE` yields nothing.
///
/// ```
/// use std::io::Write;
/// use base64::Engine;
/// use thawtrace::input::{Limits, awslogs::{Scratch, analyze_event}};
/// use thawtrace_analyzers::{Config, Finding};
///
/// let msg = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/lambda/f","logStream":"s","subscriptionFilters":["t"],"logEvents":[{"id":"1","timestamp":1,"message":"START RequestId: aaaaaaaa-0000-4000-8000-000000000001 Version: $LATEST"}]}"#;
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// gz.write_all(msg.as_bytes()).unwrap();
/// let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
/// let event = format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#);
/// let mut findings: Vec<Finding> = Vec::new();
/// let stats = analyze_event(event.as_bytes(), &mut Scratch::default(), &Limits::default(), &Config::default(), &mut findings).unwrap();
/// assert_eq!(stats.invocations, 1);
/// ```
pub fn analyze_event(
    payload: &[u8],
    scratch: &mut Scratch,
    limits: &Limits,
    config: &Config,
    sink: &mut impl FindingSink,
) -> Result<StreamStats, InputError> {
    let event: LambdaEvent<'_> = serde_json::from_slice(payload)
        .map_err(|e| InputError::new(format!("not an awslogs subscription event ({e})")))?;
    scratch.compressed.clear();
    base64::engine::general_purpose::STANDARD
        .decode_vec(event.awslogs.data, &mut scratch.compressed)
        .map_err(|e| InputError::new(format!("invalid base64 in awslogs.data: {e}")))?;
    if !is_gzip(&scratch.compressed) {
        return Err(InputError::new("awslogs.data is not gzip"));
    }
    gunzip_into(
        &scratch.compressed,
        limits.max_decompressed_bytes,
        &mut scratch.text,
    )?;
    let text = std::str::from_utf8(&scratch.text)
        .map_err(|_| InputError::new("awslogs data is not UTF-8"))?;
    let message: Message<'_> = serde_json::from_str(text)
        .map_err(|e| InputError::new(format!("not a subscription message ({e})")))?;
    if message.message_type == "CONTROL_MESSAGE" {
        return Ok(StreamStats::default());
    }
    let mut events: Vec<LogEvent<'_>> = Vec::with_capacity(message.log_events.len());
    for ev in &message.log_events {
        let raw = ev.message.get();
        if raw.len() > limits.max_event_bytes {
            continue;
        }
        let Some(body) = raw.strip_prefix('"').and_then(|m| m.strip_suffix('"')) else {
            continue;
        };
        events.push(LogEvent {
            id: ev.id.into(),
            timestamp_ms: ev.timestamp,
            text: RawText::JsonEscaped(body),
        });
    }
    if !events
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
    {
        sort_stream(&mut events);
    }
    let mut correlator =
        StreamCorrelator::new(message.log_group, message.log_stream, config.clone());
    for ev in &events {
        correlator.push(ev);
    }
    Ok(correlator.finish(sink))
}
