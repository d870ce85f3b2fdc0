//! One JSON object per finding per line (contract: `kind`, `log_group`,
//! `log_stream`, `ping_request_id`, `timeout_request_id`, `connection`,
//! `ping_at`, `timeout_at`, `frozen_ms`, `evidence`), with the stream's
//! `execution_mode`, and `failed_request_ids` and `tenant_id` where known.

use serde::Serialize;
use thawtrace_analyzers::time::rfc3339;
use thawtrace_analyzers::{FailedCall, Finding, Incident};

#[derive(Serialize)]
struct FailedCallOut<'a> {
    event_id: &'a str,
    at: String,
    code: &'a str,
}

#[derive(Serialize)]
struct FindingOut<'a> {
    kind: &'a str,
    log_group: &'a str,
    log_stream: &'a str,
    ping_request_id: Option<&'a str>,
    timeout_request_id: Option<&'a str>,
    connection: &'a str,
    ping_at: String,
    timeout_at: String,
    frozen_ms: Option<i64>,
    evidence: &'a [String],
    library: &'a str,
    ping_line_request_id: Option<&'a str>,
    timeout_line_request_id: Option<&'a str>,
    ping_timeout_ms: Option<u32>,
    ping_event_id: &'a str,
    timeout_event_id: &'a str,
    ack_event_id: Option<&'a str>,
    failed_call: Option<FailedCallOut<'a>>,
    /// Absent when every line the finding rests on was printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    inferred_from: Option<&'static str>,
    /// The invocations whose calls failed after the timeout.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    failed_request_ids: &'a [String],
    execution_mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<&'a str>,
}

/// The finding as one line of JSON (no trailing newline).
pub fn to_line(f: &Finding) -> String {
    let out = FindingOut {
        kind: f.kind.as_str(),
        log_group: &f.log_group,
        log_stream: &f.log_stream,
        ping_request_id: f.ping_request_id.as_deref(),
        timeout_request_id: f.timeout_request_id.as_deref(),
        connection: &f.connection,
        ping_at: rfc3339(f.ping_at_ms),
        timeout_at: rfc3339(f.timeout_at_ms),
        frozen_ms: f.frozen_ms,
        evidence: &f.evidence,
        library: f.library.name(),
        ping_line_request_id: f.ping_line_request_id.as_deref(),
        timeout_line_request_id: f.timeout_line_request_id.as_deref(),
        ping_timeout_ms: f.ping_timeout_ms,
        ping_event_id: &f.ping_event_id,
        timeout_event_id: &f.timeout_event_id,
        ack_event_id: f.ack_event_id.as_deref(),
        failed_call: f.failed_call.as_ref().map(|c: &FailedCall| FailedCallOut {
            event_id: &c.event_id,
            at: rfc3339(c.at_ms),
            code: c.code,
        }),
        inferred_from: f.inferred_from.map(|i| i.as_str()),
        failed_request_ids: &f.failed_request_ids,
        execution_mode: f.execution_mode.as_str(),
        tenant_id: f.tenant_id.as_deref(),
    };
    serde_json::to_string(&out).expect("a finding always serializes")
}

#[derive(Serialize)]
struct IncidentOut<'a> {
    first_at: String,
    last_at: String,
    advice: &'static str,
    #[serde(flatten)]
    incident: &'a Incident,
}

/// A neighbouring failure as one line of JSON: `kind`, `log_group`,
/// `log_stream`, `log_streams`, `request_ids`, `first_at`, `last_at`, the
/// facts of its kind, `evidence`, `advice`.
pub fn incident_line(i: &Incident) -> String {
    let out = IncidentOut {
        first_at: rfc3339(i.first_at_ms),
        last_at: rfc3339(i.last_at_ms),
        advice: i.advice(),
        incident: i,
    };
    serde_json::to_string(&out).expect("an incident always serializes")
}
