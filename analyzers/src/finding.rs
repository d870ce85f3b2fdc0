//! What the correlator reports, and the trait it reports through.

use serde::Serialize;

use crate::parse::Library;

/// The kind of a finding; its `snake_case` name is the `kind` field of the
/// JSON output (contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A keepalive ping sent in one invocation timed out in another: the
    /// environment was frozen with the ping in flight.
    KeepaliveFreezeTimeout,
    /// A keepalive ping timed out inside the invocation that sent it: a
    /// genuine network timeout.
    KeepaliveTimeout,
}

impl FindingKind {
    /// The name used in JSON output and metrics dimensions.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::KeepaliveFreezeTimeout => "keepalive_freeze_timeout",
            FindingKind::KeepaliveTimeout => "keepalive_timeout",
        }
    }

    /// The CloudWatch metric (namespace `Thawtrace`) counting this kind.
    pub fn metric_name(self) -> &'static str {
        match self {
            FindingKind::KeepaliveFreezeTimeout => "KeepaliveFreezeTimeouts",
            FindingKind::KeepaliveTimeout => "KeepaliveTimeouts",
        }
    }

    /// The OTLP span name of a finding of this kind.
    pub fn span_name(self) -> &'static str {
        match self {
            FindingKind::KeepaliveFreezeTimeout => "thawtrace.keepalive_freeze_timeout",
            FindingKind::KeepaliveTimeout => "thawtrace.keepalive_timeout",
        }
    }

    /// Every kind, in a stable order.
    pub const ALL: [FindingKind; 2] = [
        FindingKind::KeepaliveFreezeTimeout,
        FindingKind::KeepaliveTimeout,
    ];
}

/// An invocation window as the platform records (or request IDs) show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvocationWindow {
    /// The log group (function).
    pub log_group: String,
    /// The log stream (execution environment).
    pub log_stream: String,
    /// The invocation's request ID.
    pub request_id: String,
    /// `START`, ms since the Unix epoch, when the input holds it.
    pub start_ms: Option<i64>,
    /// `END`, ms since the Unix epoch, when the input holds it.
    pub end_ms: Option<i64>,
}

/// The RPC that failed because of a keepalive timeout, when the log shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedCall {
    /// Event ID of the line reporting the failure.
    pub event_id: String,
    /// When it was logged, ms since the Unix epoch.
    pub at_ms: i64,
    /// The gRPC status named on the line (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, ...).
    pub code: &'static str,
    /// Index of the line in its stream (for local display only).
    #[serde(skip)]
    pub line: u32,
}

/// One keepalive timeout, explained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Freeze timeout or genuine timeout.
    pub kind: FindingKind,
    /// The log group (function) the stream belongs to.
    pub log_group: String,
    /// The log stream: one execution environment.
    pub log_stream: String,
    /// The client library that wrote the keepalive lines.
    pub library: Library,
    /// The invocation that owns the ping line (by position, not by the ID printed on it).
    pub ping_request_id: Option<String>,
    /// The invocation that owns the timeout line.
    pub timeout_request_id: Option<String>,
    /// The request ID the runtime printed on the ping line, if any.
    pub ping_line_request_id: Option<String>,
    /// The request ID the runtime printed on the timeout line, if any.
    pub timeout_line_request_id: Option<String>,
    /// The connection: grpc-js `(<id>) <address>`, C-core the peer.
    pub connection: String,
    /// When the ping was sent, ms since the Unix epoch.
    pub ping_at_ms: i64,
    /// When the timeout fired, ms since the Unix epoch.
    pub timeout_at_ms: i64,
    /// The ack timeout the library printed with the ping, if it did.
    pub ping_timeout_ms: Option<u32>,
    /// How long the environment was frozen before the timeout's invocation:
    /// from the end of the previous invocation to the start of the next, or
    /// the silent gap between lines where platform lines are missing.
    pub frozen_ms: Option<i64>,
    /// Event ID of the ping line.
    pub ping_event_id: String,
    /// Event ID of the timeout line.
    pub timeout_event_id: String,
    /// The ack read right after the timeout (it was waiting in the socket):
    /// the signature of a freeze.
    pub ack_event_id: Option<String>,
    /// The RPC that failed after the timeout, when the log shows one.
    pub failed_call: Option<FailedCall>,
    /// Every event ID this finding rests on.
    pub evidence: Vec<String>,
    /// Index of the ping line in its sorted stream (for local display only).
    #[serde(skip)]
    pub ping_line: u32,
    /// Index of the timeout line in its sorted stream (for local display only).
    #[serde(skip)]
    pub timeout_line: u32,
    /// The event that made this finding final: its timeout line, or the
    /// later START that decided which invocation a line written at the thaw
    /// belongs to. `None` while the input ends before that START: a caller
    /// reading batches reports the finding with the batch holding this event.
    #[serde(skip)]
    pub settled_by: Option<String>,
}

/// Receives findings as the correlator produces them.
///
/// The correlator pushes; it never buffers findings for its caller nor
/// reaches for an exporter. A sink decides what a finding becomes: a line
/// of text, a JSON object, an OTLP span, a metric. Push beats pull here
/// because a stream's findings are only known once the stream's last line
/// is read, and a sink that exports can start at once.
///
/// Only [`FindingSink::finding`] is required; [`FindingSink::invocation`]
/// reports each invocation window of the stream and does nothing unless
/// implemented. `Vec<Finding>` is a sink.
///
/// ```
/// use thawtrace_analyzers::{Finding, FindingSink};
/// struct Count(usize);
/// impl FindingSink for Count {
///     fn finding(&mut self, _: Finding) { self.0 += 1 }
/// }
/// ```
pub trait FindingSink {
    /// Called once per finding, in timeout order within a stream.
    fn finding(&mut self, finding: Finding);

    /// Called once per invocation of the stream, in order, before its
    /// findings, when [`FindingSink::wants_invocations`] says so.
    fn invocation(&mut self, _invocation: &InvocationWindow) {}

    /// Whether [`FindingSink::invocation`] is wanted; false by default, so a
    /// sink of findings only does not pay for building the windows.
    fn wants_invocations(&self) -> bool {
        false
    }

    /// Called for a ping timeout whose ping is not in the input (it was in
    /// an earlier batch): the caller may look it up and correlate again.
    fn unpaired_timeout(&mut self, _event_id: &str, _at_ms: i64) {}
}

impl FindingSink for Vec<Finding> {
    fn finding(&mut self, finding: Finding) {
        self.push(finding);
    }
}
