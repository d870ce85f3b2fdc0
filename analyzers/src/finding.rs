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
    /// A connection idle past the NAT gateway's idle timeout (350 s) failed
    /// at its next use: reset, or a reply that never came.
    NatIdleReset,
    /// Many execution environments resolved a destination and then timed
    /// out connecting to it, within one short window.
    ConnectStall,
    /// One event handled by more than one invocation: an async invocation
    /// retried under the same request ID, or the same idempotency key under
    /// several request IDs.
    DuplicateInvocation,
    /// A connection opened before a SnapStart restore whose first use after
    /// it failed: the snapshot kept a connection the network had forgotten.
    #[serde(rename = "snapstart_stale_connection")]
    SnapStartStaleConnection,
    /// A keepalive ping was in flight when the environment froze and
    /// survived: the ack was read at the thaw, `margin_ms` before its
    /// timer (or, negative, after the timer expired but lost the race).
    /// A warning, not a failure.
    KeepaliveNearMiss,
    /// A connection idle for most of the NAT gateway's idle timeout whose
    /// next use succeeded: `margin_ms` from a reset. A warning.
    NatIdleNearMiss,
    /// A connect that took at least `--connect-slow` (1 s: its first SYN
    /// was lost) and went through: the start of what, in a burst, becomes
    /// a `connect_stall`. A warning.
    ConnectSlow,
}

impl FindingKind {
    /// The name used in JSON output and metrics dimensions.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::KeepaliveFreezeTimeout => "keepalive_freeze_timeout",
            FindingKind::KeepaliveTimeout => "keepalive_timeout",
            FindingKind::NatIdleReset => "nat_idle_reset",
            FindingKind::ConnectStall => "connect_stall",
            FindingKind::DuplicateInvocation => "duplicate_invocation",
            FindingKind::SnapStartStaleConnection => "snapstart_stale_connection",
            FindingKind::KeepaliveNearMiss => "keepalive_near_miss",
            FindingKind::NatIdleNearMiss => "nat_idle_near_miss",
            FindingKind::ConnectSlow => "connect_slow",
        }
    }

    /// The CloudWatch metric (namespace `Thawtrace`) counting this kind.
    pub fn metric_name(self) -> &'static str {
        match self {
            FindingKind::KeepaliveFreezeTimeout => "KeepaliveFreezeTimeouts",
            FindingKind::KeepaliveTimeout => "KeepaliveTimeouts",
            FindingKind::NatIdleReset => "NatIdleResets",
            FindingKind::ConnectStall => "ConnectStalls",
            FindingKind::DuplicateInvocation => "DuplicateInvocations",
            FindingKind::SnapStartStaleConnection => "SnapStartStaleConnections",
            FindingKind::KeepaliveNearMiss => "KeepaliveNearMisses",
            FindingKind::NatIdleNearMiss => "NatIdleNearMisses",
            FindingKind::ConnectSlow => "SlowConnects",
        }
    }

    /// The OTLP span name of a finding of this kind.
    pub fn span_name(self) -> &'static str {
        match self {
            FindingKind::KeepaliveFreezeTimeout => "thawtrace.keepalive_freeze_timeout",
            FindingKind::KeepaliveTimeout => "thawtrace.keepalive_timeout",
            FindingKind::NatIdleReset => "thawtrace.nat_idle_reset",
            FindingKind::ConnectStall => "thawtrace.connect_stall",
            FindingKind::DuplicateInvocation => "thawtrace.duplicate_invocation",
            FindingKind::SnapStartStaleConnection => "thawtrace.snapstart_stale_connection",
            FindingKind::KeepaliveNearMiss => "thawtrace.keepalive_near_miss",
            FindingKind::NatIdleNearMiss => "thawtrace.nat_idle_near_miss",
            FindingKind::ConnectSlow => "thawtrace.connect_slow",
        }
    }

    /// The neighbouring kinds, an [`Incident`]'s, in [`FindingKind::ALL`]'s
    /// order.
    pub const NEIGHBOURS: [FindingKind; 7] = [
        FindingKind::NatIdleReset,
        FindingKind::ConnectStall,
        FindingKind::DuplicateInvocation,
        FindingKind::SnapStartStaleConnection,
        FindingKind::KeepaliveNearMiss,
        FindingKind::NatIdleNearMiss,
        FindingKind::ConnectSlow,
    ];

    /// Every kind, in a stable order.
    pub const ALL: [FindingKind; 9] = [
        FindingKind::KeepaliveFreezeTimeout,
        FindingKind::KeepaliveTimeout,
        FindingKind::NatIdleReset,
        FindingKind::ConnectStall,
        FindingKind::DuplicateInvocation,
        FindingKind::SnapStartStaleConnection,
        FindingKind::KeepaliveNearMiss,
        FindingKind::NatIdleNearMiss,
        FindingKind::ConnectSlow,
    ];

    /// Whether it warns of a failure that nearly happened (a near miss),
    /// rather than reporting one: its span's status is unset, not error.
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            FindingKind::KeepaliveNearMiss
                | FindingKind::NatIdleNearMiss
                | FindingKind::ConnectSlow
        )
    }
}

/// How Lambda ran the execution environment a log stream is from, as the
/// log itself shows it (`execution_mode` in the JSON output).
///
/// - `classic`: on demand, one invocation at a time, frozen between them;
/// - `managed-instances`: Lambda Managed Instances, several invocations at
///   once, never frozen (`platform.initStart` with `initializationType`
///   `lambda-managed-instances`, or invocations that overlap);
/// - `snapstart`: restored from a SnapStart snapshot (`RESTORE_START`),
///   otherwise classic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionMode {
    /// One invocation at a time, frozen between invocations.
    #[default]
    Classic,
    /// Lambda Managed Instances: concurrent invocations, never frozen.
    ManagedInstances,
    /// Restored from a SnapStart snapshot; frozen between invocations.
    #[serde(rename = "snapstart")]
    SnapStart,
}

impl ExecutionMode {
    /// The name used in JSON output, span attributes and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Classic => "classic",
            ExecutionMode::ManagedInstances => "managed-instances",
            ExecutionMode::SnapStart => "snapstart",
        }
    }
}

/// The kind of a keepalive [`Finding`]: the only kinds one can be. Its
/// name is [`FindingKind`]'s (`kind` in the JSON output).
///
/// ```
/// use thawtrace_analyzers::{FindingKind, KeepaliveKind};
/// assert_eq!(FindingKind::from(KeepaliveKind::FreezeTimeout), FindingKind::KeepaliveFreezeTimeout);
/// assert_eq!(KeepaliveKind::Timeout, FindingKind::KeepaliveTimeout);
/// assert_ne!(KeepaliveKind::Timeout, FindingKind::NatIdleReset);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeepaliveKind {
    /// [`FindingKind::KeepaliveFreezeTimeout`].
    FreezeTimeout,
    /// [`FindingKind::KeepaliveTimeout`].
    Timeout,
}

impl KeepaliveKind {
    /// Both, in [`FindingKind::ALL`]'s order.
    pub const ALL: [KeepaliveKind; 2] = [KeepaliveKind::FreezeTimeout, KeepaliveKind::Timeout];

    /// The kind among all kinds.
    pub fn kind(self) -> FindingKind {
        match self {
            KeepaliveKind::FreezeTimeout => FindingKind::KeepaliveFreezeTimeout,
            KeepaliveKind::Timeout => FindingKind::KeepaliveTimeout,
        }
    }

    /// [`FindingKind::as_str`].
    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }
}

impl From<KeepaliveKind> for FindingKind {
    fn from(k: KeepaliveKind) -> Self {
        k.kind()
    }
}

impl PartialEq<FindingKind> for KeepaliveKind {
    fn eq(&self, other: &FindingKind) -> bool {
        self.kind() == *other
    }
}

impl Serialize for KeepaliveKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.kind().serialize(s)
    }
}

/// A neighbouring failure (`nat_idle_reset`, `connect_stall`,
/// `duplicate_invocation`): the streams and request IDs it is about, its
/// time span, what it rests on, and the facts of its kind (which decide
/// the kind: serialized first, as `kind`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    /// The log group (function).
    pub log_group: String,
    /// The first log stream it is about (the one, for one-stream kinds).
    pub log_stream: String,
    /// Every log stream (execution environment) it is about, sorted.
    pub log_streams: Vec<String>,
    /// Every request ID it is about, in time order.
    pub request_ids: Vec<String>,
    /// Its first event, ms since the Unix epoch.
    pub first_at_ms: i64,
    /// Its last event, ms since the Unix epoch.
    pub last_at_ms: i64,
    /// The facts of its kind.
    pub detail: Detail,
    /// Every event ID it rests on.
    pub evidence: Vec<String>,
    /// The tenant whose invocation it is about, for functions with tenant
    /// isolation (`tenantId` on the invocation's `platform.start`).
    pub tenant_id: Option<String>,
}

impl Serialize for Incident {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            kind: FindingKind,
            log_group: &'a str,
            log_stream: &'a str,
            log_streams: &'a [String],
            request_ids: &'a [String],
            first_at_ms: i64,
            last_at_ms: i64,
            #[serde(flatten)]
            detail: &'a Detail,
            evidence: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            tenant_id: Option<&'a str>,
        }
        Out {
            kind: self.kind(),
            log_group: &self.log_group,
            log_stream: &self.log_stream,
            log_streams: &self.log_streams,
            request_ids: &self.request_ids,
            first_at_ms: self.first_at_ms,
            last_at_ms: self.last_at_ms,
            detail: &self.detail,
            evidence: &self.evidence,
            tenant_id: self.tenant_id.as_deref(),
        }
        .serialize(s)
    }
}

impl Incident {
    /// Its kind, which its facts decide.
    pub fn kind(&self) -> FindingKind {
        self.detail.kind()
    }

    /// What to do about it, in one paragraph (text, JSON and HTML output).
    pub fn advice(&self) -> &'static str {
        match self.detail {
            Detail::NatIdleReset { .. } => {
                "The connection sat idle past the NAT gateway's idle timeout (350 s), which then drops it without telling either end. Keep connections alive below 350 s: TCP keepalive (botocore: tcp_keepalive = true in the AWS config file; Node: an http.Agent with keepAlive; tonic: Endpoint::tcp_keepalive), or HTTP/2 keepalive pings (grpc-go: keepalive.ClientParameters{Time, PermitWithoutStream: true}, a Time below 350 s; its ping at a thaw then meets the dead connection instead of the call); make calls that wait longer than that asynchronous."
            }
            Detail::ConnectStall { .. } => {
                "Connection attempts from many environments timed out together after DNS answered: a NAT gateway out of ports (55,000 simultaneous connections per destination per address, up to 8 addresses = 440,000; NAT metric ErrorPortAllocation) or a Hyperplane ENI at 65,000 connections (no metric). Add secondary NAT addresses, spread over more subnets and NAT gateways, use PrivateLink or VPC endpoints, and reuse connections across invocations."
            }
            Detail::NatIdleNearMiss { .. } => {
                "This connection sat idle for most of the NAT gateway's idle timeout (350 s) and survived, this time; a little longer and the NAT drops it without telling either end, and the next call is reset or never answered. Keep connections alive below 350 s (TCP keepalive: tcp_keepalive = true in botocore's config; an http.Agent with keepAlive in Node), or open a new connection after a long idle."
            }
            Detail::KeepaliveNearMiss { .. } => {
                "Lambda froze this environment with a keepalive ping in flight; the freeze was short enough that the ack was read at the thaw, this time. A longer freeze closes a healthy connection and fails the next calls. In Lambda, leave client keepalive off, or set the keepalive ack timeout above the longest freeze you expect."
            }
            Detail::SnapStartStaleConnection { .. } => {
                "This connection was opened before the SnapStart snapshot and restored with it, but the network had long forgotten it: its first use after the restore failed. Re-create clients after a restore (Java: a new grpc-java ManagedChannel, the old one shut down, in a CRaC Resource's afterRestore, registered with Core.getGlobalContext().register; Python: @register_after_restore from snapshot_restore_py; Rust: a lambda_runtime SnapStartResource's after_restore, or thawtrace_instrument's restore hook), or connect lazily on the first invocation instead of during init."
            }
            Detail::ConnectSlow { .. } => {
                "This connect took over a second and went through: its first SYN went unanswered and the kernel sent it again (after 1 s, then 3 s, 7 s). Alone it costs an invocation a second or more; in a burst of new environments it is what comes before connect timeouts: a NAT gateway short of ports for the destination (metric ErrorPortAllocation) or a Hyperplane ENI near its 65,000 connections. Reuse connections across invocations, open them during init, and add NAT addresses, subnets or VPC endpoints before bursts time out."
            }
            Detail::DuplicateInvocation { .. } => {
                "The same event was handled more than once (async retries, at-least-once delivery). Make the handler idempotent (a DynamoDB conditional write, Powertools Idempotency), and set MaximumRetryAttempts to 0 where a retry is unsafe."
            }
        }
    }
}

/// The facts of a neighbouring failure, by kind (flattened into the JSON
/// object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Detail {
    /// `nat_idle_reset`.
    NatIdleReset {
        /// `reset` (the next use met an RST) or `read_timeout` (a reply
        /// that never came).
        cause: crate::parse::NetCause,
        /// How long the connection sat idle before it failed: the freeze
        /// before the invocation, or the silence before a read timeout.
        idle_ms: i64,
        /// The NAT idle timeout it was compared with.
        nat_idle_timeout_ms: i64,
        /// Where the call was going, when the line names it.
        destination: Option<String>,
    },
    /// `connect_stall`.
    ConnectStall {
        /// Execution environments (log streams) whose connects timed out.
        environments: usize,
        /// Where they were connecting to.
        destinations: Vec<String>,
        /// The window they fell in.
        window_ms: i64,
    },
    /// `duplicate_invocation`.
    DuplicateInvocation {
        /// Why it counts as one event handled again.
        reason: DuplicateReason,
        /// How many times the event was handled.
        attempts: usize,
        /// The idempotency key, as `name=value`, for `same_key`.
        key: Option<String>,
    },
    /// `keepalive_near_miss`.
    KeepaliveNearMiss {
        /// The client library.
        library: Library,
        /// The connection.
        connection: String,
        /// The invocation that sent the ping.
        ping_request_id: Option<String>,
        /// The invocation at whose start (the thaw) the ack was read.
        ack_request_id: Option<String>,
        /// When the ping was sent, ms since the Unix epoch.
        ping_at_ms: i64,
        /// How long the ping waited for its ack to be read.
        waited_ms: i64,
        /// The ack timeout the library printed, if it did.
        ack_timeout_ms: Option<i64>,
        /// The ack timeout minus the wait: how close it came (negative: the
        /// timer had expired, the ack won the race at the thaw).
        margin_ms: Option<i64>,
        /// The freeze the ping waited through.
        frozen_ms: Option<i64>,
    },
    /// `nat_idle_near_miss`.
    NatIdleNearMiss {
        /// The invocation whose use of the connection survived.
        request_id: Option<String>,
        /// Where the connection goes.
        destination: String,
        /// How long it sat idle before that use.
        idle_ms: i64,
        /// The NAT idle timeout it was compared with.
        nat_idle_timeout_ms: i64,
        /// How far it stayed from it.
        margin_ms: i64,
    },
    /// `connect_slow`.
    ConnectSlow {
        /// The invocation that started the connect.
        request_id: Option<String>,
        /// Where it connected.
        destination: String,
        /// From the attempt's start to the connection, as the log shows
        /// them.
        connect_ms: i64,
        /// The threshold it was compared with (`--connect-slow`).
        threshold_ms: i64,
    },
    /// `snapstart_stale_connection`.
    SnapStartStaleConnection {
        /// The invocation whose call failed.
        request_id: String,
        /// The connection, where the lines after the restore name it.
        connection: Option<String>,
        /// When the environment was restored, ms since the Unix epoch.
        restore_at_ms: i64,
        /// How the call failed: its gRPC status, or the network cause.
        failure: &'static str,
    },
}

impl Detail {
    /// The kind these facts are of.
    pub fn kind(&self) -> FindingKind {
        match self {
            Detail::NatIdleReset { .. } => FindingKind::NatIdleReset,
            Detail::ConnectStall { .. } => FindingKind::ConnectStall,
            Detail::DuplicateInvocation { .. } => FindingKind::DuplicateInvocation,
            Detail::SnapStartStaleConnection { .. } => FindingKind::SnapStartStaleConnection,
            Detail::KeepaliveNearMiss { .. } => FindingKind::KeepaliveNearMiss,
            Detail::NatIdleNearMiss { .. } => FindingKind::NatIdleNearMiss,
            Detail::ConnectSlow { .. } => FindingKind::ConnectSlow,
        }
    }
}

/// Why a `duplicate_invocation` is one (`reason` in the JSON output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateReason {
    /// One request ID started several times: an async invocation retried.
    Retried,
    /// One idempotency key handled under several request IDs.
    SameKey,
}

impl DuplicateReason {
    /// The name used in JSON output and span attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateReason::Retried => "retried",
            DuplicateReason::SameKey => "same_key",
        }
    }
}

/// What one stream tells the cross-stream analysis (connect stalls,
/// duplicates): produced by the correlator, consumed by
/// [`crate::Neighbours`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    /// The log group (shared by a stream's signals).
    pub log_group: std::sync::Arc<str>,
    /// The log stream (shared by a stream's signals).
    pub log_stream: std::sync::Arc<str>,
    /// The invocation that owns the line.
    pub request_id: Option<String>,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// The event it rests on.
    pub event_id: String,
    /// What it says.
    pub what: SignalKind,
}

/// The kinds of [`Signal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignalKind {
    /// An invocation started (`START`).
    Start,
    /// A connection attempt timed out.
    ConnectTimeout {
        /// Where to.
        destination: Option<String>,
    },
    /// An idempotency key was logged.
    Key {
        /// `name=value`.
        key: String,
    },
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
    /// `END`, ms since the Unix epoch, when the input holds it (Managed
    /// Instances: its `platform.report`).
    pub end_ms: Option<i64>,
    /// How Lambda ran its execution environment.
    pub execution_mode: ExecutionMode,
    /// The tenant it served, for functions with tenant isolation.
    pub tenant_id: Option<String>,
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
    pub kind: KeepaliveKind,
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
    /// The invocations whose calls failed after the timeout, in time
    /// order: the timeout's own (with `failed_call`), or on Lambda Managed
    /// Instances every invocation in flight then whose call failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_request_ids: Vec<String>,
    /// How Lambda ran the stream's execution environment: no freeze
    /// timeout comes from a `managed-instances` stream.
    pub execution_mode: ExecutionMode,
    /// The tenant of the timeout's invocation, for functions with tenant
    /// isolation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Every event ID this finding rests on.
    pub evidence: Vec<String>,
    /// What stood in for a line the library did not print, when the
    /// finding rests on inference; `None` when every line was printed.
    pub inferred_from: Option<Inference>,
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

impl Finding {
    /// What to do about it, in one paragraph naming the library's own
    /// options (text, JSON and HTML output).
    pub fn advice(&self) -> &'static str {
        if self.execution_mode == ExecutionMode::ManagedInstances {
            return "On Lambda Managed Instances the environment is never frozen: either the peer did not answer the ping in time (a network or server stall), or the function's event loop was busy longer than the ack timeout (a CPU-bound step in one invocation delays every timer and every read of the others) and the ack was read too late. Keep CPU-bound work off the event loop (worker threads), or raise the keepalive ack timeout above the longest busy stretch; check the server and the path to it.";
        }
        match (self.kind, self.library) {
            (KeepaliveKind::FreezeTimeout, Library::GrpcJs) => {
                "Lambda froze this environment with a keepalive ping in flight; at the thaw the ack timer fired before the ack was read, and a healthy connection was closed. In Lambda, leave client keepalive off (omit 'grpc.keepalive_time_ms'), or set 'grpc.keepalive_timeout_ms' above the longest freeze you expect; retry UNAVAILABLE on the first call after a thaw."
            }
            (KeepaliveKind::FreezeTimeout, Library::Grpcio) => {
                "Lambda froze this environment with a PING in flight; at the thaw C-core's ping timer fired first and closed the transport. In Lambda, leave keepalive off (omit 'grpc.keepalive_time_ms'; 'grpc.http2.bdp_probe': 0 stops BDP pings too), or set 'grpc.keepalive_timeout_ms' and 'grpc.http2.ping_timeout_ms' above the longest freeze you expect; retry UNAVAILABLE after a thaw."
            }
            (KeepaliveKind::FreezeTimeout, Library::Tonic) => {
                "Lambda froze this environment with a PING in flight; at the thaw hyper's keepalive timer fired before h2 read the ack and closed the connection, so the first call after the thaw failed (often Cancelled, sometimes Unavailable). In Lambda, leave keepalive off (do not call Endpoint::http2_keep_alive_interval), or set Endpoint::keep_alive_timeout above the longest freeze you expect; retry Cancelled as well as Unavailable on the first call after a thaw."
            }
            (KeepaliveKind::FreezeTimeout, Library::GrpcJava) => {
                "Lambda froze this environment with a keepalive PING in flight; at the thaw grpc-java's keepalive timer fired before Netty read the ack and closed the connection (its calls fail with UNAVAILABLE: Keepalive failed. The connection is likely gone). In Lambda, leave keepalive off (do not call keepAliveTime on the channel builder; keepAliveWithoutCalls(false) keeps idle channels from pinging), or set keepAliveTimeout above the longest freeze you expect; retry UNAVAILABLE on the first call after a thaw."
            }
            (KeepaliveKind::FreezeTimeout, Library::GrpcGo) => {
                "Lambda froze this environment with a keepalive ping in flight; at the thaw grpc-go's keepalive timer fired before the ack was read and closed the transport. In Lambda, leave keepalive off (no grpc.WithKeepaliveParams), or set keepalive.ClientParameters{Timeout} above the longest freeze you expect and PermitWithoutStream: false so that no ping goes out between invocations; retry codes.Unavailable on the first call after a thaw."
            }
            (KeepaliveKind::Timeout, Library::GrpcGo) => {
                "grpc-go closed the transport when its keepalive ping went unanswered while the function ran: a genuine network or server stall, not a freeze. Check the server and the path to it (NAT, load balancer); keepalive.ClientParameters{Time, Timeout} set how soon such a stall is noticed (grpc-go raises a Time under 10 s to 10 s)."
            }
            (KeepaliveKind::Timeout, _) => {
                "The peer did not answer a keepalive ping within the timeout while the function ran: a genuine network or server stall, not a freeze. Check the server and the path to it (NAT, load balancer)."
            }
        }
    }
}

/// What stood in for a line a library did not print (the trace flags the
/// user chose leave it out): the `inferred_from` field of the JSON output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Inference {
    /// No ping-timeout line: the ping's ack deadline (its timer line) had
    /// passed without an ack read in time, and the connection's transport
    /// shut down (C-core's `READY -> SHUTDOWN`). The shutdown is the
    /// finding's timeout line.
    TransportShutdown,
    /// No timeout line (grpc-java prints none): the client closed the
    /// connection (`OUTBOUND GO_AWAY`) with its keepalive ping unanswered.
    /// The close is the finding's timeout line.
    GoAway,
    /// grpc-go prints neither the ping nor (before 1.38) the timeout: the
    /// client closed its own transport (`transport is closing`, or 1.38+'s
    /// keepalive reason) after the function had waited on it in silence
    /// inside one invocation, or (with the keepalive reason) at a thaw.
    /// The close is the finding's ping and timeout line.
    TransportClose,
}

impl Inference {
    /// The name used in JSON output and span attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Inference::TransportShutdown => "transport_shutdown",
            Inference::GoAway => "go_away",
            Inference::TransportClose => "transport_close",
        }
    }

    /// What was inferred, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Inference::TransportShutdown => {
                "no timeout line was printed (trace flags): the ack deadline passed unanswered and the transport shut down"
            }
            Inference::GoAway => {
                "grpc-java prints no timeout line: the client closed the connection (GO_AWAY) with its keepalive ping unanswered"
            }
            Inference::TransportClose => {
                "grpc-go prints no keepalive ping and (before 1.38) no timeout: the client closed its own transport after the function waited on it in silence"
            }
        }
    }
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
    fn invocation(&mut self, _invocation: InvocationWindow) {}

    /// Whether [`FindingSink::invocation`] is wanted; false by default, so a
    /// sink of findings only does not pay for building the windows.
    fn wants_invocations(&self) -> bool {
        false
    }

    /// Called for a ping timeout whose ping is not in the input (it was in
    /// an earlier batch): the caller may look it up and correlate again.
    fn unpaired_timeout(&mut self, _event_id: &str, _at_ms: i64) {}

    /// Called once per neighbouring failure (`nat_idle_reset`,
    /// `connect_stall`, `duplicate_invocation`); ignored by default.
    fn incident(&mut self, _incident: Incident) {}

    /// Called once per stream with keepalive lines: what it showed of the
    /// function's exposure to freeze timeouts ([`crate::risk`]); ignored
    /// by default.
    fn exposure(&mut self, _exposure: crate::risk::Exposure) {}

    /// Called with what a stream tells the cross-stream analysis, when
    /// [`FindingSink::wants_signals`] says so ([`crate::Batch`] does).
    fn signal(&mut self, _signal: Signal) {}

    /// Whether [`FindingSink::signal`] is wanted; false by default.
    fn wants_signals(&self) -> bool {
        false
    }
}

/// Everything a batch's streams report, collected: findings, invocation
/// windows, incidents and the signals for the cross-stream analysis.
#[derive(Debug, Default)]
pub struct Collected {
    /// The findings, in stream order.
    pub findings: Vec<Finding>,
    /// The invocation windows, in stream order.
    pub invocations: Vec<InvocationWindow>,
    /// The neighbouring failures (NAT idle resets, connect stalls,
    /// duplicate invocations).
    pub incidents: Vec<Incident>,
    /// What the streams told the cross-stream analysis, for a caller that
    /// keeps it between batches (the Lambda collector).
    pub signals: Vec<Signal>,
    /// What each stream with keepalive lines showed of its exposure to
    /// freeze timeouts.
    pub exposures: Vec<crate::risk::Exposure>,
}

impl FindingSink for Collected {
    fn finding(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    fn incident(&mut self, incident: Incident) {
        self.incidents.push(incident);
    }

    fn signal(&mut self, signal: Signal) {
        self.signals.push(signal);
    }

    fn exposure(&mut self, exposure: crate::risk::Exposure) {
        self.exposures.push(exposure);
    }

    fn wants_signals(&self) -> bool {
        true
    }

    fn invocation(&mut self, invocation: InvocationWindow) {
        self.invocations.push(invocation);
    }

    fn wants_invocations(&self) -> bool {
        true
    }
}

impl FindingSink for Vec<Finding> {
    fn finding(&mut self, finding: Finding) {
        self.push(finding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_serializes_as_its_name() {
        for k in FindingKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for m in [
            ExecutionMode::Classic,
            ExecutionMode::ManagedInstances,
            ExecutionMode::SnapStart,
        ] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
    }
}
