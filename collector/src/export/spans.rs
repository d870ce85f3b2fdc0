//! Findings and invocation windows as OTLP spans.
//!
//! - one span per invocation (`faas.invocation_id` = request ID, FaaS and
//!   cloud semantic conventions), exported once its `END` is in the input;
//! - one span per finding, named `thawtrace.keepalive_freeze_timeout` (or
//!   `thawtrace.keepalive_timeout`), status error, a child of the invocation
//!   in which the ping timed out, linked to the invocation that sent it.
//!
//! Spans carry parsed fields only (kind, request IDs, connection, times,
//! event IDs), never a raw log message: application lines can hold secrets.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use foldhash::HashSet;
use opentelemetry::trace::{Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use thawtrace_analyzers::parse::NetCause;
use thawtrace_analyzers::{
    Collected, Detail, DuplicateReason, Finding, Incident, InvocationWindow, KeepaliveKind,
};

use super::ids;

/// Where the logs come from, for the `cloud.*` attributes.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// `cloud.region`, when known.
    pub region: Option<String>,
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// The function name of a `/aws/lambda/<name>` log group.
pub fn function_name(group: &str) -> &str {
    group.strip_prefix("/aws/lambda/").unwrap_or(group)
}

fn strings<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    Value::Array(Array::String(
        values
            .into_iter()
            .map(|v| StringValue::from(v.to_owned()))
            .collect(),
    ))
}

fn context(trace_id: opentelemetry::trace::TraceId, span_id: SpanId) -> SpanContext {
    SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

fn common<'a>(
    group: &str,
    streams: impl IntoIterator<Item = &'a str>,
    origin: &Origin,
) -> Vec<KeyValue> {
    // Room for what every span adds after these (see the callers).
    let mut kv = Vec::with_capacity(10);
    kv.extend([
        KeyValue::new("cloud.provider", "aws"),
        KeyValue::new("cloud.platform", "aws_lambda"),
        KeyValue::new("faas.name", function_name(group).to_owned()),
        KeyValue::new("aws.log.group.names", strings([group])),
        KeyValue::new("aws.log.stream.names", strings(streams)),
    ]);
    if let Some(region) = &origin.region {
        kv.push(KeyValue::new("cloud.region", region.clone()));
    }
    kv
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("thawtrace")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

fn invocation_span(inv: &InvocationWindow, (start, end): (i64, i64), origin: &Origin) -> SpanData {
    let (group, stream, request_id) = (&inv.log_group, &inv.log_stream, &inv.request_id);
    let mut attributes = common(group, [stream.as_str()], origin);
    attributes.push(KeyValue::new("faas.invocation_id", request_id.to_owned()));
    attributes.push(KeyValue::new(
        "thawtrace.execution_mode",
        inv.execution_mode.as_str(),
    ));
    if let Some(tenant) = &inv.tenant_id {
        attributes.push(KeyValue::new("tenant.id", tenant.clone()));
    }
    SpanData {
        span_context: context(
            ids::invocation_trace_id(group, stream, request_id),
            ids::invocation_span_id(group, stream, request_id),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("lambda invocation"),
        start_time: time(start),
        end_time: time(end.max(start)),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope(),
    }
}

fn finding_span(f: &Finding, origin: &Origin) -> SpanData {
    let group = &f.log_group;
    let stream = &f.log_stream;
    let timeout_rid = f.timeout_request_id.as_deref().unwrap_or("-");
    let ping_rid = f.ping_request_id.as_deref().unwrap_or("-");
    let mut attributes = common(group, [stream.as_ref()], origin);
    attributes.extend([
        KeyValue::new("faas.invocation_id", timeout_rid.to_owned()),
        KeyValue::new("thawtrace.kind", f.kind.as_str()),
        KeyValue::new("thawtrace.library", f.library.name()),
        KeyValue::new("thawtrace.connection", f.connection.clone()),
        KeyValue::new("thawtrace.ping_request_id", ping_rid.to_owned()),
        KeyValue::new("thawtrace.timeout_request_id", timeout_rid.to_owned()),
        KeyValue::new("thawtrace.ping_event_id", f.ping_event_id.clone()),
        KeyValue::new("thawtrace.timeout_event_id", f.timeout_event_id.clone()),
        KeyValue::new(
            "thawtrace.evidence",
            strings(f.evidence.iter().map(String::as_str)),
        ),
    ]);
    if let Some(frozen) = f.frozen_ms {
        attributes.push(KeyValue::new("thawtrace.frozen_ms", frozen));
    }
    if let Some(call) = &f.failed_call {
        attributes.push(KeyValue::new("thawtrace.failed_call.code", call.code));
    }
    if let Some(inference) = f.inferred_from {
        attributes.push(KeyValue::new("thawtrace.inferred_from", inference.as_str()));
    }
    attributes.push(KeyValue::new(
        "thawtrace.execution_mode",
        f.execution_mode.as_str(),
    ));
    if !f.failed_request_ids.is_empty() {
        attributes.push(KeyValue::new(
            "thawtrace.failed_request_ids",
            strings(f.failed_request_ids.iter().map(String::as_str)),
        ));
    }
    if let Some(tenant) = &f.tenant_id {
        attributes.push(KeyValue::new("tenant.id", tenant.clone()));
    }
    let ping_link = Link::with_context(context(
        ids::invocation_trace_id(group, stream, ping_rid),
        ids::invocation_span_id(group, stream, ping_rid),
    ));
    let mut links = SpanLinks::default();
    links.links.push(ping_link);
    let description = match f.kind {
        KeepaliveKind::FreezeTimeout => "keepalive ping sent before a freeze timed out at the thaw",
        KeepaliveKind::Timeout => "keepalive ping unanswered within the invocation",
    };
    problem_span(
        (group, stream, timeout_rid),
        ids::finding_span_id(group, stream, f.kind.as_str(), &f.timeout_event_id),
        f.kind.kind().span_name(),
        (f.ping_at_ms, f.timeout_at_ms),
        attributes,
        links,
        description,
    )
}

/// At most this many links from an incident span to the invocations it
/// names (a connect stall can name hundreds).
const MAX_LINKS: usize = 32;

/// The span of a neighbouring failure: its common attributes, the facts
/// of its kind, links to the other invocations it names.
fn incident_span(i: &Incident, origin: &Origin) -> SpanData {
    let group = &i.log_group;
    let stream = &i.log_stream;
    let rid = i.request_ids.first().map_or("-", String::as_str);
    let mut attributes = common(group, i.log_streams.iter().map(String::as_str), origin);
    attributes.extend([
        KeyValue::new("faas.invocation_id", rid.to_owned()),
        KeyValue::new("thawtrace.kind", i.kind().as_str()),
        KeyValue::new(
            "thawtrace.request_ids",
            strings(i.request_ids.iter().map(String::as_str)),
        ),
        KeyValue::new(
            "thawtrace.evidence",
            strings(i.evidence.iter().map(String::as_str)),
        ),
    ]);
    let (facts, description) = match &i.detail {
        Detail::NatIdleReset {
            cause,
            idle_ms,
            nat_idle_timeout_ms,
            destination,
        } => nat_idle_reset_facts(
            *cause,
            *idle_ms,
            *nat_idle_timeout_ms,
            destination.as_deref(),
        ),
        Detail::ConnectStall {
            environments,
            destinations,
            window_ms,
        } => connect_stall_facts(*environments, destinations, *window_ms),
        Detail::DuplicateInvocation {
            reason,
            attempts,
            key,
        } => duplicate_invocation_facts(*reason, *attempts, key.as_deref()),
        Detail::SnapStartStaleConnection {
            connection,
            restore_at_ms,
            failure,
            ..
        } => {
            let mut facts = vec![
                KeyValue::new("thawtrace.restore_at_ms", *restore_at_ms),
                KeyValue::new("thawtrace.failure", *failure),
                KeyValue::new("thawtrace.execution_mode", "snapstart"),
            ];
            if let Some(c) = connection {
                facts.push(KeyValue::new("thawtrace.connection", c.clone()));
            }
            (
                facts,
                "a connection restored from a SnapStart snapshot failed at its first use",
            )
        }
        Detail::ConnectSlow {
            destination,
            connect_ms,
            threshold_ms,
            ..
        } => (
            vec![
                KeyValue::new("server.address", destination.clone()),
                KeyValue::new("thawtrace.connect_ms", *connect_ms),
                KeyValue::new("thawtrace.threshold_ms", *threshold_ms),
            ],
            "a connect lost SYNs and went through late: a near miss of a connect stall",
        ),
        Detail::NatIdleNearMiss {
            destination,
            idle_ms,
            nat_idle_timeout_ms,
            margin_ms,
            ..
        } => (
            vec![
                KeyValue::new("server.address", destination.clone()),
                KeyValue::new("thawtrace.idle_ms", *idle_ms),
                KeyValue::new("thawtrace.nat_idle_timeout_ms", *nat_idle_timeout_ms),
                KeyValue::new("thawtrace.margin_ms", *margin_ms),
            ],
            "a connection idle for most of the NAT idle timeout survived: a near miss",
        ),
        Detail::KeepaliveNearMiss {
            library,
            connection,
            waited_ms,
            ack_timeout_ms,
            margin_ms,
            frozen_ms,
            ..
        } => {
            let mut facts = vec![
                KeyValue::new("thawtrace.library", library.name()),
                KeyValue::new("thawtrace.connection", connection.clone()),
                KeyValue::new("thawtrace.waited_ms", *waited_ms),
            ];
            for (key, v) in [
                ("thawtrace.ack_timeout_ms", ack_timeout_ms),
                ("thawtrace.margin_ms", margin_ms),
                ("thawtrace.frozen_ms", frozen_ms),
            ] {
                if let Some(v) = v {
                    facts.push(KeyValue::new(key, *v));
                }
            }
            (
                facts,
                "a keepalive ping in flight at a freeze survived it: a near miss",
            )
        }
    };
    attributes.extend(facts);
    if let Some(tenant) = &i.tenant_id {
        attributes.push(KeyValue::new("tenant.id", tenant.clone()));
    }
    let first_event = i.evidence.first().map_or("-", String::as_str);
    let mut span = problem_span(
        (group, stream, rid),
        ids::finding_span_id(group, stream, i.kind().as_str(), first_event),
        i.kind().span_name(),
        (i.first_at_ms, i.last_at_ms),
        attributes,
        incident_links(i, rid),
        description,
    );
    // A near miss warns: nothing failed.
    if i.kind().is_warning() {
        span.status = Status::Unset;
    }
    span
}

/// A NAT idle reset's attributes, and its status description.
fn nat_idle_reset_facts(
    cause: NetCause,
    idle_ms: i64,
    nat_idle_timeout_ms: i64,
    destination: Option<&str>,
) -> (Vec<KeyValue>, &'static str) {
    let mut attributes = vec![
        KeyValue::new("thawtrace.cause", cause.as_str()),
        KeyValue::new("thawtrace.idle_ms", idle_ms),
        KeyValue::new("thawtrace.nat_idle_timeout_ms", nat_idle_timeout_ms),
    ];
    if let Some(d) = destination {
        attributes.push(KeyValue::new("server.address", d.to_owned()));
    }
    (
        attributes,
        "a connection idle past the NAT idle timeout failed at its next use",
    )
}

/// A connect stall's attributes, and its status description.
fn connect_stall_facts(
    environments: usize,
    destinations: &[String],
    window_ms: i64,
) -> (Vec<KeyValue>, &'static str) {
    let attributes = vec![
        KeyValue::new("thawtrace.environments", environments as i64),
        KeyValue::new(
            "thawtrace.destinations",
            strings(destinations.iter().map(String::as_str)),
        ),
        KeyValue::new("thawtrace.window_ms", window_ms),
    ];
    (
        attributes,
        "connection attempts of many environments timed out together",
    )
}

/// A duplicate invocation's attributes, and its status description.
fn duplicate_invocation_facts(
    reason: DuplicateReason,
    attempts: usize,
    key: Option<&str>,
) -> (Vec<KeyValue>, &'static str) {
    let mut attributes = vec![
        KeyValue::new("thawtrace.reason", reason.as_str()),
        KeyValue::new("thawtrace.attempts", attempts as i64),
    ];
    if let Some(k) = key {
        attributes.push(KeyValue::new("thawtrace.idempotency_key", k.to_owned()));
    }
    (attributes, "one event handled by more than one invocation")
}

/// Links from an incident's span to the invocations it names besides its
/// own (`rid` in its stream), every stream with every request ID, at most
/// [`MAX_LINKS`].
fn incident_links(i: &Incident, rid: &str) -> SpanLinks {
    let group = &i.log_group;
    let stream = &i.log_stream;
    let mut links = SpanLinks::default();
    for (s, r) in i
        .log_streams
        .iter()
        .flat_map(|s| i.request_ids.iter().map(move |r| (s, r)))
        .filter(|&(s, r)| (s.as_str(), r.as_str()) != (stream.as_str(), rid))
        .take(MAX_LINKS)
    {
        links.links.push(Link::with_context(context(
            ids::invocation_trace_id(group, s, r),
            ids::invocation_span_id(group, s, r),
        )));
    }
    links
}

/// The span of a finding or incident: status error, a child of the span of
/// the invocation `(group, stream, request ID)` it happened in.
fn problem_span(
    (group, stream, request_id): (&str, &str, &str),
    span_id: SpanId,
    name: &'static str,
    (start, end): (i64, i64),
    attributes: Vec<KeyValue>,
    links: SpanLinks,
    description: &'static str,
) -> SpanData {
    SpanData {
        span_context: context(ids::invocation_trace_id(group, stream, request_id), span_id),
        parent_span_id: ids::invocation_span_id(group, stream, request_id),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed(name),
        start_time: time(start),
        end_time: time(end.max(start)),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links,
        status: Status::error(description),
        instrumentation_scope: scope(),
    }
}

/// The spans of a batch: every invocation whose `END` is in it, every
/// invocation a finding names, every finding and every incident.
pub fn spans(collected: &Collected, origin: &Origin) -> Vec<SpanData> {
    let mut out = Vec::new();
    let mut named: HashSet<(&str, &str, &str)> = HashSet::default();
    for f in &collected.findings {
        for rid in [&f.ping_request_id, &f.timeout_request_id]
            .into_iter()
            .flatten()
        {
            named.insert((&f.log_group, &f.log_stream, rid));
        }
    }
    let mut seen = HashSet::default();
    for inv in &collected.invocations {
        let key = (
            inv.log_group.as_str(),
            inv.log_stream.as_str(),
            inv.request_id.as_str(),
        );
        let (start, end) = match (inv.start_ms, inv.end_ms) {
            (Some(s), Some(e)) => (s, e),
            (None, Some(e)) => (e, e),
            (Some(s), None) if named.contains(&key) => (s, s),
            _ => continue,
        };
        // An async retry repeats a request ID: one span per ID and stream.
        if seen.insert(key) {
            out.push(invocation_span(inv, (start, end), origin));
        }
    }
    out.extend(collected.findings.iter().map(|f| finding_span(f, origin)));
    out.extend(collected.incidents.iter().map(|i| incident_span(i, origin)));
    out
}
