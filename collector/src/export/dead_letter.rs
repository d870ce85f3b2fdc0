//! Spans the OTLP endpoint did not take, kept in an SQS queue the operator
//! names (`THAWTRACE_DEAD_LETTER_QUEUE_URL`; the template's
//! `DeadLetterQueue` parameter creates one), and replayed from it by
//! `thawtrace replay-spans`.
//!
//! A message holds a batch's spans as JSON (at most [`MAX_BODY_BYTES`]; a
//! larger batch takes several messages). Span and trace IDs are derived
//! from the log stream and request ID, so replaying a message twice, or
//! one whose spans did reach the endpoint, gives the same spans again, not
//! new ones.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sqs::Client;
use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value as OtelValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use serde_json::{Map, Value, json};

/// The largest message body written, under SQS's 256 KiB.
pub const MAX_BODY_BYTES: usize = 200 * 1024;

/// What a message's body says it is.
const FORMAT: &str = "thawtrace.spans.v1";

fn ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn value_json(v: &OtelValue) -> Value {
    match v {
        OtelValue::Bool(b) => json!({"b": b}),
        OtelValue::I64(i) => json!({"i": i}),
        OtelValue::F64(f) => json!({"f": f}),
        OtelValue::String(s) => json!({"s": s.as_str()}),
        OtelValue::Array(Array::Bool(v)) => json!({"bs": v}),
        OtelValue::Array(Array::I64(v)) => json!({"is": v}),
        OtelValue::Array(Array::F64(v)) => json!({"fs": v}),
        OtelValue::Array(Array::String(v)) => {
            json!({"ss": v.iter().map(StringValue::as_str).collect::<Vec<_>>()})
        }
        _ => json!({"s": v.to_string()}),
    }
}

fn value_of(v: &Value) -> Option<OtelValue> {
    let (tag, v) = v.as_object()?.iter().next()?;
    Some(match tag.as_str() {
        "b" => OtelValue::Bool(v.as_bool()?),
        "i" => OtelValue::I64(v.as_i64()?),
        "f" => OtelValue::F64(v.as_f64()?),
        "s" => OtelValue::String(v.as_str()?.to_owned().into()),
        "bs" => OtelValue::Array(Array::Bool(
            v.as_array()?
                .iter()
                .map(Value::as_bool)
                .collect::<Option<_>>()?,
        )),
        "is" => OtelValue::Array(Array::I64(
            v.as_array()?
                .iter()
                .map(Value::as_i64)
                .collect::<Option<_>>()?,
        )),
        "fs" => OtelValue::Array(Array::F64(
            v.as_array()?
                .iter()
                .map(Value::as_f64)
                .collect::<Option<_>>()?,
        )),
        "ss" => OtelValue::Array(Array::String(
            v.as_array()?
                .iter()
                .map(|s| s.as_str().map(|s| StringValue::from(s.to_owned())))
                .collect::<Option<_>>()?,
        )),
        _ => return None,
    })
}

fn attributes_json(kvs: &[KeyValue]) -> Value {
    kvs.iter()
        .map(|kv| json!([kv.key.as_str(), value_json(&kv.value)]))
        .collect()
}

fn attributes_of(v: &Value) -> Option<Vec<KeyValue>> {
    v.as_array()?
        .iter()
        .map(|pair| {
            let key = pair.get(0)?.as_str()?.to_owned();
            Some(KeyValue::new(key, value_of(pair.get(1)?)?))
        })
        .collect()
}

fn kind_str(k: &SpanKind) -> &'static str {
    match k {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    }
}

fn kind_of(s: &str) -> Option<SpanKind> {
    Some(match s {
        "client" => SpanKind::Client,
        "server" => SpanKind::Server,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        _ => return None,
    })
}

/// One span as JSON: its IDs, kind, name, times (ns), attributes, links
/// and status (events are not kept: the spans carry none).
fn span_json(s: &SpanData) -> Value {
    let status = match &s.status {
        Status::Unset => json!("unset"),
        Status::Ok => json!("ok"),
        Status::Error { description } => json!({"error": description}),
    };
    let mut o = Map::new();
    o.insert(
        "trace_id".into(),
        json!(s.span_context.trace_id().to_string()),
    );
    o.insert(
        "span_id".into(),
        json!(s.span_context.span_id().to_string()),
    );
    o.insert("parent_span_id".into(), json!(s.parent_span_id.to_string()));
    o.insert("kind".into(), json!(kind_str(&s.span_kind)));
    o.insert("name".into(), json!(s.name));
    o.insert("start_ns".into(), json!(ns(s.start_time)));
    o.insert("end_ns".into(), json!(ns(s.end_time)));
    o.insert("attributes".into(), attributes_json(&s.attributes));
    o.insert(
        "links".into(),
        s.links
            .links
            .iter()
            .map(|l| {
                json!({
                    "trace_id": l.span_context.trace_id().to_string(),
                    "span_id": l.span_context.span_id().to_string(),
                    "attributes": attributes_json(&l.attributes),
                })
            })
            .collect(),
    );
    o.insert("status".into(), status);
    Value::Object(o)
}

fn context_of(trace: &Value, span: &Value) -> Option<SpanContext> {
    Some(SpanContext::new(
        TraceId::from_hex(trace.as_str()?).ok()?,
        SpanId::from_hex(span.as_str()?).ok()?,
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    ))
}

fn span_of(v: &Value, scope: &InstrumentationScope) -> Option<SpanData> {
    let time = |k: &str| v[k].as_u64().map(|n| UNIX_EPOCH + Duration::from_nanos(n));
    let mut links = SpanLinks::default();
    for l in v["links"].as_array()? {
        links.links.push(Link::new(
            context_of(&l["trace_id"], &l["span_id"])?,
            attributes_of(&l["attributes"])?,
            0,
        ));
    }
    let status = match &v["status"] {
        Value::String(s) if s == "ok" => Status::Ok,
        Value::String(s) if s == "unset" => Status::Unset,
        Value::Object(o) => Status::Error {
            description: Cow::Owned(o.get("error")?.as_str()?.to_owned()),
        },
        _ => return None,
    };
    Some(SpanData {
        span_context: context_of(&v["trace_id"], &v["span_id"])?,
        parent_span_id: SpanId::from_hex(v["parent_span_id"].as_str()?).ok()?,
        parent_span_is_remote: false,
        span_kind: kind_of(v["kind"].as_str()?)?,
        name: Cow::Owned(v["name"].as_str()?.to_owned()),
        start_time: time("start_ns")?,
        end_time: time("end_ns")?,
        attributes: attributes_of(&v["attributes"])?,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links,
        status,
        instrumentation_scope: scope.clone(),
    })
}

/// The message bodies holding `spans`, each at most [`MAX_BODY_BYTES`]
/// (a single span larger than that gets a message of its own).
///
/// ```
/// use thawtrace::export::dead_letter::{decode, encode};
/// assert!(encode(&[]).is_empty());
/// assert!(decode("{}").is_err());
/// ```
pub fn encode(spans: &[SpanData]) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 0;
    let wrap = |parts: &[String]| {
        format!(
            "{{\"format\":\"{FORMAT}\",\"spans\":[{}]}}",
            parts.join(",")
        )
    };
    for s in spans {
        let one = span_json(s).to_string();
        if !current.is_empty() && size + one.len() + 64 > MAX_BODY_BYTES {
            bodies.push(wrap(&current));
            current.clear();
            size = 0;
        }
        size += one.len() + 1;
        current.push(one);
    }
    if !current.is_empty() {
        bodies.push(wrap(&current));
    }
    bodies
}

/// The spans of a message body.
///
/// # Errors
///
/// A body that is not one [`encode`] wrote, saying what is wrong.
pub fn decode(body: &str) -> Result<Vec<SpanData>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if v["format"] != FORMAT {
        return Err(format!("not a message of spans ({FORMAT})"));
    }
    let scope = InstrumentationScope::builder("thawtrace")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    v["spans"]
        .as_array()
        .ok_or("no spans")?
        .iter()
        .enumerate()
        .map(|(i, s)| span_of(s, &scope).ok_or_else(|| format!("span {i} is malformed")))
        .collect()
}

/// An SQS client from the standard AWS configuration chain, with a short
/// connect timeout and few retries (the caller bounds the whole call).
pub async fn client(endpoint_url: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(crate::guard::CONNECT_TIMEOUT)
                .build(),
        );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Client::new(&loader.load().await)
}

/// Sends `bodies` to the queue, one message each.
///
/// # Errors
///
/// The first send that failed, in words, and how many were sent before.
pub async fn send(client: &Client, queue_url: &str, bodies: &[String]) -> Result<(), String> {
    for (i, body) in bodies.iter().enumerate() {
        client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "SendMessage to {queue_url} (message {} of {}): {}",
                    i + 1,
                    bodies.len(),
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
    }
    Ok(())
}

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Messages exported and deleted.
    pub messages: u64,
    /// Their spans.
    pub spans: u64,
    /// Messages that are not spans (left in the queue).
    pub malformed: u64,
}

/// Reads the queue until it is empty (or `max_messages` were read),
/// exports each message's spans and deletes it once exported. A message
/// that cannot be read is left in the queue and counted.
///
/// # Errors
///
/// An SQS call that failed, or an export that failed (the message stays
/// in the queue, for the next replay).
pub async fn replay(
    client: &Client,
    queue_url: &str,
    exporter: &opentelemetry_otlp::SpanExporter,
    retry: &super::otlp::Retry,
    max_messages: u64,
) -> Result<Replayed, String> {
    let mut done = Replayed::default();
    let mut read = 0u64;
    while read < max_messages {
        let want = (max_messages - read).min(10) as i32;
        let page = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(want)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "ReceiveMessage from {queue_url}: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        let messages = page.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            read += 1;
            let spans = match decode(m.body().unwrap_or_default()) {
                Ok(spans) => spans,
                Err(e) => {
                    done.malformed += 1;
                    eprintln!(
                        "thawtrace: message {} is left in the queue: {e}",
                        m.message_id().unwrap_or("?")
                    );
                    continue;
                }
            };
            let n = spans.len() as u64;
            super::otlp::export(exporter, spans, retry).await?;
            if let Some(handle) = m.receipt_handle() {
                client
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "DeleteMessage from {queue_url}: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(&e)
                        )
                    })?;
            }
            done.messages += 1;
            done.spans += n;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use thawtrace_analyzers::{Batch, Collected, Config};

    fn demo_spans() -> Vec<SpanData> {
        let mut batch = Batch::default();
        crate::input::read_text(
            "demo",
            crate::DEMO_EVENTS,
            &crate::input::Limits::default(),
            &mut batch,
        )
        .unwrap();
        let mut found = Collected::default();
        batch.analyze(&Config::default(), &mut found);
        crate::export::spans::spans(
            &found,
            &crate::export::Origin {
                region: Some("eu-west-1".into()),
            },
        )
    }

    #[test]
    fn spans_come_back_from_their_messages_as_they_were() {
        let spans = demo_spans();
        assert!(spans.len() > 3);
        let bodies = encode(&spans);
        assert_eq!(bodies.len(), 1);
        let back = decode(&bodies[0]).unwrap();
        assert_eq!(back.len(), spans.len());
        for (a, b) in spans.iter().zip(&back) {
            assert_eq!(a.span_context, b.span_context);
            assert_eq!(a.parent_span_id, b.parent_span_id);
            assert_eq!(a.span_kind, b.span_kind);
            assert_eq!(a.name, b.name);
            assert_eq!(a.start_time, b.start_time);
            assert_eq!(a.end_time, b.end_time);
            assert_eq!(a.attributes, b.attributes);
            assert_eq!(a.links.links, b.links.links);
            assert_eq!(a.status, b.status);
        }
    }

    #[test]
    fn a_large_batch_takes_several_messages_under_the_limit() {
        let spans: Vec<SpanData> = demo_spans().into_iter().cycle().take(3000).collect();
        let bodies = encode(&spans);
        assert!(bodies.len() > 1);
        assert!(bodies.iter().all(|b| b.len() <= MAX_BODY_BYTES));
        let total: usize = bodies.iter().map(|b| decode(b).unwrap().len()).sum();
        assert_eq!(total, 3000);
    }

    #[test]
    fn what_is_not_a_message_of_spans_is_refused() {
        assert!(decode("not json").is_err());
        assert!(decode(r#"{"format":"thawtrace.spans.v1","spans":[{"trace_id":"zz"}]}"#).is_err());
    }
}
