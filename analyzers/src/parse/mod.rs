//! Line parsers: one log message in, one [`Line`] out.
//!
//! Every format thawtrace reads is listed in one table per source, with a
//! real example next to its pattern:
//!
//! | source | module |
//! |---|---|
//! | Lambda platform lines, text and JSON | [`platform`] |
//! | Node.js and Python runtime prefixes, JSON application lines | [`runtime`] |
//! | @grpc/grpc-js traces (1.8 to 1.14) | [`grpcjs`] |
//! | gRPC C-core (grpcio) traces, gpr and absl eras | [`ccore`] |
//! | `thawtrace-instrument` events (Rust, tonic), text and JSON | [`instrument`] |
//! | grpc-java (Netty) frame lines, java.util.logging at FINE | [`grpc_java`] |
//! | grpc-go (1.33 recorded; current texts) and Go `log` lines | [`grpc_go`] |
//!
//! Parsers are anchored: each looks at the first bytes of a line to decide
//! whether it is theirs, so an ordinary application line costs a few byte
//! comparisons and is never unescaped.

pub mod ccore;
pub mod grpc_go;
pub mod grpc_java;
pub mod grpcjs;
pub mod instrument;
pub mod platform;
pub mod runtime;
mod text;

pub use text::{RawText, unescape_json};

/// Which client library wrote a keepalive line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Library {
    /// `@grpc/grpc-js` (Node.js).
    GrpcJs,
    /// gRPC C-core, as used by `grpcio` (Python).
    Grpcio,
    /// tonic (Rust), through `thawtrace-instrument`.
    Tonic,
    /// grpc-java with its Netty transport.
    GrpcJava,
    /// grpc-go (Go).
    GrpcGo,
}

impl Library {
    /// The name users know the library by.
    pub fn name(self) -> &'static str {
        match self {
            Library::GrpcJs => "grpc-js",
            Library::Grpcio => "grpcio",
            Library::Tonic => "tonic",
            Library::GrpcJava => "grpc-java",
            Library::GrpcGo => "grpc-go",
        }
    }
}

/// A Lambda platform record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformPhase {
    /// `START` / `platform.start`: the invocation was delivered.
    Start,
    /// `END` / `platform.runtimeDone`: the function answered.
    End,
    /// `REPORT` / `platform.report`: the bill; follows `END`.
    Report,
}

/// A record of an execution environment's life outside its invocations,
/// which tells the stream's [execution mode](crate::ExecutionMode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// `INIT_START` / `platform.initStart`, with what its
    /// `initializationType` says (JSON only).
    InitStart(InitType),
    /// `RESTORE_START` / `platform.restoreStart`, or
    /// `thawtrace-instrument`'s `restore` event: the environment was
    /// restored from a SnapStart snapshot.
    Restore,
    /// `RESTORE_REPORT` / `platform.restoreReport`: the restore is done.
    RestoreReport,
}

/// A `platform.initStart`'s `initializationType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitType {
    /// `on-demand`, `provisioned-concurrency`, or not said (text `INIT_START`).
    OnDemand,
    /// `snap-start`: the init before a snapshot.
    SnapStart,
    /// `lambda-managed-instances`.
    ManagedInstances,
}

/// What a keepalive line says happened on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeepaliveEvent {
    /// A PING frame was sent; `ping_id` when the library prints one
    /// (C-core), `timeout_ms` when it prints the ack timeout (grpc-js).
    PingSent {
        /// The PING payload, as C-core prints it.
        ping_id: Option<u64>,
        /// The ack timeout the library armed.
        timeout_ms: Option<u32>,
    },
    /// The PING ack was read.
    PingAck {
        /// The acknowledged PING payload, as C-core prints it.
        ping_id: Option<u64>,
    },
    /// The library gave up waiting for the ack and closes the connection.
    PingTimeout,
    /// The keepalive interval timer started (grpc-js): the next ping is due
    /// `interval_ms` later, unless the process is frozen meanwhile.
    KeepaliveTimerStarted {
        /// The keepalive interval.
        interval_ms: u32,
    },
    /// The ack timer armed for a ping (C-core prints it on a line of its own).
    PingTimerSet {
        /// The PING payload.
        ping_id: u64,
        /// The ack timeout.
        timeout_ms: u32,
    },
    /// The connection's transport shut down (C-core's connectivity tracker:
    /// `READY -> SHUTDOWN`), for whatever reason: with a ping whose ack
    /// deadline had passed, it stands in for a timeout line the trace flags
    /// did not print.
    TransportShutdown,
    /// The client closed the connection (grpc-java's `OUTBOUND GO_AWAY`),
    /// for whatever reason: with a keepalive ping unanswered on it, it
    /// stands in for the timeout line grpc-java does not print.
    ClientClosed,
    /// grpc-go: the subchannel's transport is up (`READY`).
    TransportReady,
    /// grpc-go: the client's transport closed, with the reason its lines
    /// give; grpc-go prints no ping nor ack, so this close is all a
    /// keepalive timeout leaves. `quiet_ms`: the function's silence before
    /// the line's burst, set by the correlator (`None` from the parser).
    TransportClosed {
        /// What the lines say the close was for.
        reason: grpc_go::CloseReason,
        /// The function's silence before the close, ms.
        quiet_ms: Option<i64>,
    },
}

/// One keepalive line: what happened, on which connection, from which library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// The library that wrote the line.
    pub library: Library,
    /// The connection key: grpc-js `(<channelz id>) <address>`, C-core the
    /// peer (`ipv4:10.0.0.1:443`), grpc-go its one channel
    /// ([`grpc_go::CONNECTION`]). Empty for a C-core ack, which names only
    /// its ping id.
    pub connection: String,
    /// C-core: the address the line names, `CLIENT[<transport>]` or the
    /// connectivity tracker's `client_transport[<tracker>]` (a member of
    /// the transport, so a little above its address). One transport is one
    /// connection for its life, where a peer is reused by every reconnect.
    pub transport: Option<u64>,
    /// What happened.
    pub event: KeepaliveEvent,
}

/// The meaning of one log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineKind<'a> {
    /// A platform record and the request ID it names.
    Platform(PlatformPhase, &'a str),
    /// A keepalive event.
    Keepalive(Keepalive),
    /// A failed call reported by the application or its runtime: a gRPC
    /// status (`14 UNAVAILABLE`, `StatusCode.DEADLINE_EXCEEDED`, ...), a
    /// network cause (`ECONNRESET`, botocore's `Read timeout on endpoint
    /// URL`, ...), or both. Looked for on error lines, or when asked.
    CallFailed(Failure),
    /// `thawtrace-instrument`'s `thaw` event: the environment was frozen
    /// this many ms before the invocation that logged it.
    Thaw(i64),
    /// A record of the environment's life outside invocations: its init,
    /// a SnapStart restore.
    Lifecycle(Lifecycle),
    /// Traffic on an HTTP connection to this `host:port` (urllib3 at
    /// DEBUG: a connection opened, a response read): the connection's last
    /// activity, for the NAT idle timeout.
    Traffic(String),
    /// A new HTTP connection to this `host:port` (urllib3 at DEBUG:
    /// `Starting new HTTP connection (1)`): activity, but not the reuse of
    /// an idle one.
    Opened(String),
    /// A connection attempt to `destination` started, or (`done`) its TCP
    /// connection was established (grpc-js `subchannel`/`transport`).
    Connect {
        /// `host:port`.
        destination: String,
        /// Established, not started.
        done: bool,
    },
    /// The HTTP client decided to send a failed request again (botocore
    /// at DEBUG: `Retry needed, …`); the reason may be a lost connection or
    /// a throttled answer.
    Retrying,
    /// Anything else.
    Other,
}

/// A parsed line: its meaning, and the request ID the runtime printed on it
/// (which, for timer-fired lines, may not be the invocation that owns it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// What the line says.
    pub kind: LineKind<'a>,
    /// The request ID printed by the runtime prefix, if any.
    pub printed_request_id: Option<&'a str>,
}

/// Parses one message.
///
/// `want_failures` asks the parser to also recognise failed RPCs in
/// application lines; the correlator sets it only right after a keepalive
/// timeout, so ordinary traffic does not pay for that search.
///
/// ```
/// use thawtrace_analyzers::parse::{parse_line, LineKind, PlatformPhase, RawText};
/// let line = parse_line(RawText::Plain("END RequestId: 6428b781-c80d-44e1-b961-5794a2f9cdad"), false);
/// assert_eq!(line.kind, LineKind::Platform(PlatformPhase::End, "6428b781-c80d-44e1-b961-5794a2f9cdad"));
/// ```
pub fn parse_line(text: RawText<'_>, want_failures: bool) -> Line<'_> {
    let raw = text.raw();
    if let Some(line) = platform::parse_text(raw) {
        return line;
    }
    // grpc-java through a logging framework's layout (Log4j 2): read as
    // the record it holds.
    let (text, raw) = match grpc_java::after_layout(text) {
        Some(inner) => (inner, inner.raw()),
        None => (text, raw),
    };
    if let Some(kind) = grpc_java_record(text) {
        return Line {
            kind,
            printed_request_id: None,
        };
    }
    let b = raw.as_bytes();
    // Go: `YYYY/MM/DD …` (Go's `log`, grpc-go today) or `INFO: YYYY/…` (grpc-go 1.33).
    if (b.get(4) == Some(&b'/') || matches!(b.first(), Some(b'I' | b'W' | b'E' | b'F')))
        && let Some(line) = grpc_go::parse(text, want_failures)
    {
        return line;
    }
    match b.first() {
        Some(b'{') => runtime::parse_json(text, want_failures),
        Some(b'[') => runtime::parse_python(text, want_failures),
        Some(c) if c.is_ascii_digit() => runtime::parse_node(text, want_failures),
        Some(b'I' | b'W' | b'E' | b'D' | b'F' | b'T' | b' ') if ccore::message(raw).is_none() => {
            instrument::parse_text(text).unwrap_or(Line {
                kind: LineKind::Other,
                printed_request_id: None,
            })
        }
        Some(b'I' | b'W' | b'E' | b'D' | b'F') => Line {
            kind: ccore::parse(text).map_or(LineKind::Other, LineKind::Keepalive),
            printed_request_id: None,
        },
        // A line with no runtime prefix (the Java runtime's LambdaLogger in
        // the text format prints the message as is): a failure when looked
        // for, or when it prints a grpc-java status.
        _ => Line {
            kind: if want_failures || grpc_java::names_status(raw) {
                call_failure(&text.unescape()).map_or(LineKind::Other, LineKind::CallFailed)
            } else {
                LineKind::Other
            },
            printed_request_id: None,
        },
    }
}

/// What a grpc-java record says, when `text` is one: a frame of Netty's
/// HTTP/2 frame logger (a keepalive ping or ack, a GO_AWAY; a reset's
/// GO_AWAY is the call's network failure) or a line of the channel trace
/// (a connect). `None` for any other text.
pub(crate) fn grpc_java_record(text: RawText<'_>) -> Option<LineKind<'static>> {
    let raw = text.raw();
    if grpc_java::is_frame_line(raw) {
        return Some(match grpc_java::reset(text) {
            Some(net) => LineKind::CallFailed(Failure {
                code: None,
                net: Some(net),
            }),
            None => grpc_java::parse(text).map_or(LineKind::Other, LineKind::Keepalive),
        });
    }
    grpc_java::is_trace_line(raw).then(|| {
        grpc_java::connect(text).map_or(LineKind::Other, |(destination, done)| LineKind::Connect {
            destination,
            done,
        })
    })
}

/// What a failure line says: the gRPC status and the network cause, when
/// it names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The gRPC status (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, ...).
    pub code: Option<&'static str>,
    /// The network cause, for the neighbouring failures.
    pub net: Option<NetFailure>,
}

impl Failure {
    /// A failure with a gRPC status only.
    pub fn code(code: &'static str) -> Self {
        Failure {
            code: Some(code),
            net: None,
        }
    }
}

/// Why a call failed on the network, as the client library wrote it.
///
/// | cause | real example (library) |
/// |---|---|
/// | `Reset` | `14 UNAVAILABLE: read ECONNRESET`, `14 UNAVAILABLE: Connection dropped` (grpc-js 1.14); `ConnectionClosedError: Connection was closed before we received a valid response from endpoint URL: "http://127.0.0.1:39339/reports?list-type=2&encoding-type=url".` (botocore 1.44); Node's `socket hang up`, `Connection reset by peer` |
/// | `ReadTimeout` | `ReadTimeoutError: Read timeout on endpoint URL: "http://127.0.0.1:39339/slow-8000?list-type=2&encoding-type=url"` (botocore) |
/// | `ConnectTimeout` | `14 UNAVAILABLE: No connection established. Last error: Error: connect ETIMEDOUT 127.0.0.1:37299.` (grpc-js); `ConnectTimeoutError: Connect timeout on endpoint URL: "http://localhost:37299/checkout?list-type=2&encoding-type=url"` (botocore) |
/// | `ConnectTimeout` (C-core) | `StatusCode.UNAVAILABLE failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:53777: Failed to connect to remote host: getsockopt(SO_ERROR): Connection timed out` (grpcio 1.85) |
/// | `FunctionTimeout` | `2026-11-28T12:01:09.611Z 9d0e3c5a-… Task timed out after 9.00 seconds` (Lambda's own line; in the JSON log format, `platform.runtimeDone` with `"status": "timeout"`) |
/// | `DeadlineExceeded` | `echo call 0 failed: 4 4 DEADLINE_EXCEEDED: Deadline exceeded after 2.000s,remote_addr=127.0.0.1:45769` (grpc-js 1.14); `StatusCode.DEADLINE_EXCEEDED` (grpcio); `echo call 0 failed: DEADLINE_EXCEEDED: deadline exceeded after 1.999552113s. [closed=[], open=[[remote_addr=/127.0.0.1:44707]]]` (grpc-java 1.41) |
/// | `Retried` | `[DEBUG]\t…\tStarting new HTTP connection (2): 127.0.0.1:42739` (urllib3 under botocore, after `Retry needed, retrying request after delay of: …`): the pooled connection was lost and the request sent again on a new one |
/// | `ConnectRefused` | `No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:34533.` (grpc-js) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetCause {
    /// The peer (or a NAT in between) reset or dropped an open connection.
    Reset,
    /// A reply never came: the client gave up reading.
    ReadTimeout,
    /// The connection could not be established in time (SYNs unanswered).
    ConnectTimeout,
    /// The connection was refused at once: something answered, no listener.
    ConnectRefused,
    /// Lambda ended the invocation at its timeout (`Task timed out after N
    /// seconds`, or a `platform.runtimeDone` with status `timeout`): often a
    /// call whose reply never came.
    FunctionTimeout,
    /// A gRPC call's deadline passed before its reply came.
    DeadlineExceeded,
    /// The client lost a request on a pooled connection and sent it again
    /// on a new one (the call may have succeeded).
    Retried,
}

impl NetCause {
    /// The name used in JSON output and span attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            NetCause::Reset => "reset",
            NetCause::ReadTimeout => "read_timeout",
            NetCause::ConnectTimeout => "connect_timeout",
            NetCause::ConnectRefused => "connect_refused",
            NetCause::FunctionTimeout => "function_timeout",
            NetCause::DeadlineExceeded => "deadline_exceeded",
            NetCause::Retried => "retried",
        }
    }
}

/// A network failure and where the call was going.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetFailure {
    /// What happened.
    pub cause: NetCause,
    /// `host:port` the call was going to, when the line names it.
    pub destination: Option<String>,
}

/// Network causes by the text libraries print, most specific first, with
/// where the destination follows (an address after the needle, or a quoted
/// endpoint URL).
const NET_CAUSES: &[(&str, NetCause, Dest)] = &[
    (
        "connect ETIMEDOUT ",
        NetCause::ConnectTimeout,
        Dest::Address,
    ),
    (
        "Connect timeout on endpoint URL: ",
        NetCause::ConnectTimeout,
        Dest::Url,
    ),
    (
        "connect ECONNREFUSED ",
        NetCause::ConnectRefused,
        Dest::Address,
    ),
    (
        "Read timeout on endpoint URL: ",
        NetCause::ReadTimeout,
        Dest::Url,
    ),
    (
        "Connection was closed before we received a valid response from endpoint URL: ",
        NetCause::Reset,
        Dest::Url,
    ),
    ("ECONNRESET", NetCause::Reset, Dest::None),
    ("Connection dropped", NetCause::Reset, Dest::None),
    ("socket hang up", NetCause::Reset, Dest::None),
    ("Connection reset by peer", NetCause::Reset, Dest::None),
];

#[derive(Clone, Copy)]
enum Dest {
    None,
    Address,
    Url,
}

/// gRPC C-core (grpcio 1.85) names the address, then the socket error:
/// `failed to connect to all addresses; last error: UNKNOWN:
/// ipv4:127.0.0.1:53777: Failed to connect to remote host:
/// getsockopt(SO_ERROR): Connection timed out`.
fn ccore_connect_failure(body: &str) -> Option<NetFailure> {
    use memchr::memmem;
    const NEEDLE: &str = ": Failed to connect to remote host: ";
    static FINDER: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(NEEDLE));
    let at = FINDER.find(body.as_bytes())?;
    let error = &body.as_bytes()[at + NEEDLE.len()..];
    let cause = if memmem::find(error, b"timed out").is_some() {
        NetCause::ConnectTimeout
    } else if memmem::find(error, b"Connection refused").is_some() {
        NetCause::ConnectRefused
    } else {
        return None;
    };
    let address = body[..at].rsplit(' ').next().unwrap_or("");
    let address = address
        .strip_prefix("ipv4:")
        .or_else(|| address.strip_prefix("ipv6:"))
        .unwrap_or(address);
    Some(NetFailure {
        cause,
        destination: (!address.is_empty()).then(|| address.to_owned()),
    })
}

/// One searcher per needle of a table, built once: building a searcher
/// costs more than searching a line with it.
fn finders<const N: usize>(needles: [&'static str; N]) -> [memchr::memmem::Finder<'static>; N] {
    needles.map(memchr::memmem::Finder::new)
}

fn net_failure(body: &str) -> Option<NetFailure> {
    static FINDERS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; NET_CAUSES.len()]> =
        std::sync::LazyLock::new(|| finders(std::array::from_fn(|i| NET_CAUSES[i].0)));
    let b = body.as_bytes();
    if let Some(f) = ccore_connect_failure(body) {
        return Some(f);
    }
    NET_CAUSES
        .iter()
        .zip(FINDERS.iter())
        .find_map(|(&(needle, cause, dest), finder)| {
            let at = finder.find(b)? + needle.len();
            let rest = &body[at..];
            let destination = match dest {
                Dest::None => None,
                Dest::Address => {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
                        .unwrap_or(rest.len());
                    Some(rest[..end].trim_end_matches('.').to_owned())
                }
                Dest::Url => {
                    // Quoted, and the quotes escaped when the line is a JSON record.
                    let rest = rest.trim_start_matches(['\\', '"']);
                    let url = &rest[..rest.find(['"', '\\']).unwrap_or(rest.len())];
                    let host = url.split_once("://").map_or(url, |(_, h)| h);
                    Some(host[..host.find('/').unwrap_or(host.len())].to_owned())
                }
            };
            Some(NetFailure {
                cause,
                destination: destination.filter(|d| !d.is_empty()),
            })
        })
}

/// Looks for a failed call in an application message (plain text).
pub(crate) fn call_failure(body: &str) -> Option<Failure> {
    let code = grpc_status(body);
    let net = net_failure(body).or_else(|| {
        (code == Some("DEADLINE_EXCEEDED")).then(|| NetFailure {
            cause: NetCause::DeadlineExceeded,
            // grpc-java 1.41 closes the list it is in and prefixes
            // Netty's `/`: `open=[[remote_addr=/127.0.0.1:44707]]]`.
            destination: after(body, "remote_addr=").map(|rest| {
                rest[..rest.find([',', ' ', '"', '\\']).unwrap_or(rest.len())]
                    .trim_end_matches(']')
                    .trim_start_matches('/')
                    .to_owned()
            }),
        })
    });
    (code.is_some() || net.is_some()).then_some(Failure { code, net })
}

/// What follows `needle` in `body`, if it occurs.
fn after<'b>(body: &'b str, needle: &str) -> Option<&'b str> {
    let at = memchr::memmem::find(body.as_bytes(), needle.as_bytes())?;
    Some(&body[at + needle.len()..])
}

/// urllib3 and botocore at DEBUG (Python runtime lines), the connection
/// ledger of an HTTP client:
///
/// | message | real example (botocore 1.44, urllib3 2) | meaning |
/// |---|---|---|
/// | `Starting new HTTP connection (<n>): <host:port>` | `Starting new HTTP connection (1): 127.0.0.1:42739` | a connection opened; n >= 2 after a retry: the one before was lost |
/// | `<scheme>://<host:port> "<request> HTTP/1.1" <status> <size>` | `http://127.0.0.1:42739 "GET /reports?list-type=2&encoding-type=url HTTP/1.1" 200 238` | a response read: traffic |
/// | `Retry needed, retrying request after delay of: <s>` | `Retry needed, retrying request after delay of: 0.028323931710490153` (standard retry mode) | a retry; with a new connection after it, the old one was lost |
/// | `Retry needed, action of: <s>` | `Retry needed, action of: 0.12676149991884944` (legacy retry mode) | likewise |
/// | `retry needed, retryable exception caught: <error>` | `retry needed, retryable exception caught: Connection was closed before we received a valid response from endpoint URL: "http://127.0.0.1:42739/reports?list-type=2&encoding-type=url".` (legacy retry mode) | the request failed with that error, and is retried |
pub(crate) fn http_client_debug(msg: &str) -> Option<LineKind<'static>> {
    if let Some(rest) = msg
        .strip_prefix("Starting new HTTP connection (")
        .or_else(|| msg.strip_prefix("Starting new HTTPS connection ("))
    {
        let (n, host) = rest.split_once("): ")?;
        let host = host.trim_end().to_owned();
        return Some(if n.parse::<u32>().ok()? >= 2 {
            LineKind::CallFailed(Failure {
                code: None,
                net: Some(NetFailure {
                    cause: NetCause::Retried,
                    destination: Some(host),
                }),
            })
        } else {
            LineKind::Opened(host)
        });
    }
    if msg.starts_with("Retry needed, retrying request after delay of: ")
        || msg.starts_with("Retry needed, action of: ")
    {
        return Some(LineKind::Retrying);
    }
    if let Some(error) = msg.strip_prefix("retry needed, retryable exception caught: ") {
        return net_failure(error).map(|net| {
            LineKind::CallFailed(Failure {
                code: None,
                net: Some(net),
            })
        });
    }
    let rest = msg
        .strip_prefix("http://")
        .or_else(|| msg.strip_prefix("https://"))?;
    let (host, request) = rest.split_once(" \"")?;
    memchr::memmem::find(request.as_bytes(), b" HTTP/1.1\" ")?;
    Some(LineKind::Traffic(host.to_owned()))
}

fn grpc_status(body: &str) -> Option<&'static str> {
    // Status codes as grpc-js (`14 UNAVAILABLE: ...`) and grpcio
    // (`StatusCode.UNAVAILABLE`) put them in error messages.
    const FAILURES: [(&str, &str); 7] = [
        ("UNAVAILABLE", "UNAVAILABLE"),
        ("DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"),
        ("CANCELLED", "CANCELLED"),
        ("INTERNAL: ", "INTERNAL"),
        // tonic's `Code` as `Debug` prints it.
        ("Unavailable", "UNAVAILABLE"),
        ("Cancelled", "CANCELLED"),
        ("DeadlineExceeded", "DEADLINE_EXCEEDED"),
    ];
    static FINDERS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; FAILURES.len()]> =
        std::sync::LazyLock::new(|| finders(FAILURES.map(|(needle, _)| needle)));
    FAILURES
        .iter()
        .zip(FINDERS.iter())
        .find(|(_, finder)| finder.find(body.as_bytes()).is_some())
        .map(|(&(_, code), _)| code)
        .or_else(|| {
            // tonic turns a connection that failed under a call (reset, a
            // restored SnapStart connection) into `Unknown` "transport
            // error" (recorded, tonic 0.14).
            let b = body.as_bytes();
            (find_short(b, b"Unknown").is_some() && find_short(b, b"transport error").is_some())
                .then_some("UNKNOWN")
        })
}

/// The body of a message after its runtime prefix: grpc-js traces and
/// failures live there.
pub(crate) fn parse_body<'a>(
    body: RawText<'_>,
    printed_request_id: Option<&'a str>,
    want_failures: bool,
) -> Line<'a> {
    let kind = if let Some(kind) = grpcjs::traced(body) {
        kind
    } else if want_failures && !grpcjs::is_trace(body.raw()) {
        call_failure(&body.unescape()).map_or(LineKind::Other, LineKind::CallFailed)
    } else {
        LineKind::Other
    };
    Line {
        kind,
        printed_request_id,
    }
}

/// Where a short needle first occurs in a short haystack (a log line):
/// memchr on the needle's least common byte, then a compare. Building a
/// `memmem` searcher per call costs more than this on lines of a few
/// hundred bytes; needles searched on every line belong in a static
/// `memmem::Finder` instead when they are long.
///
/// ```
/// use thawtrace_analyzers::parse::find_short;
/// assert_eq!(find_short(b"a | b | c", b" | "), Some(1));
/// assert_eq!(find_short(b"a\\tb", b"\\t"), Some(1));
/// assert_eq!(find_short(b"|| |", b" | "), None);
/// assert_eq!(find_short(b"x", b""), Some(0));
/// ```
pub fn find_short(hay: &[u8], needle: &[u8]) -> Option<usize> {
    // Bytes common in log text: a needle's rarest other byte is searched.
    fn common(c: u8) -> bool {
        c == b' ' || c.is_ascii_lowercase() || c.is_ascii_digit()
    }
    let Some(pivot) = needle
        .iter()
        .position(|&c| !common(c))
        .or((!needle.is_empty()).then_some(0))
    else {
        return Some(0);
    };
    let mut from = pivot;
    while let Some(i) = memchr::memchr(needle[pivot], hay.get(from..)?) {
        let start = from + i - pivot;
        if hay[start..].starts_with(needle) {
            return Some(start);
        }
        from += i + 1;
    }
    None
}

/// Whether a JSON record (plain or escaped, any spacing) has `value` just
/// after `key`: a `value` whose last few bytes before it hold the key
/// (`"level":"ERROR"`, `\"level\": \"ERROR`). No decoding.
pub(crate) fn json_value_after_key(b: &[u8], key: &[u8], value: &[u8]) -> bool {
    // Called on every JSON line: short needles, no searcher built per call.
    let mut from = 0;
    while let Some(i) = find_short(&b[from..], value) {
        let at = from + i;
        if find_short(&b[at.saturating_sub(14)..at], key).is_some() {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Takes a request ID (UUID-like token) at the start of `s`.
pub(crate) fn request_id_prefix(s: &str) -> Option<&str> {
    let end = s
        .bytes()
        .position(|c| !(c.is_ascii_alphanumeric() || c == b'-'))
        .unwrap_or(s.len());
    let id = &s[..end];
    // `undefined` and `-` are what runtimes print outside any invocation.
    if id.len() < 8 || id == "undefined" {
        None
    } else {
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(body: &str) -> Option<(NetCause, Option<String>)> {
        call_failure(body).and_then(|f| f.net.map(|n| (n.cause, n.destination)))
    }

    #[test]
    fn network_causes_from_real_lines() {
        // grpc-js 1.14, recorded behind the idle-dropping proxy and the
        // SYN-dropping listener.
        assert_eq!(
            net("echo call 0 failed: 14 14 UNAVAILABLE: read ECONNRESET"),
            Some((NetCause::Reset, None))
        );
        assert_eq!(
            net("echo call 0 failed: 14 14 UNAVAILABLE: Connection dropped"),
            Some((NetCause::Reset, None))
        );
        assert_eq!(
            net(
                "echo call 0 failed: 14 14 UNAVAILABLE: No connection established. Last error: Error: connect ETIMEDOUT 127.0.0.1:37299. Resolution note: "
            ),
            Some((NetCause::ConnectTimeout, Some("127.0.0.1:37299".into())))
        );
        assert_eq!(
            net(
                "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:34533. Resolution note: "
            ),
            Some((NetCause::ConnectRefused, Some("127.0.0.1:34533".into())))
        );
        // botocore 1.44 through the Python runtime's error line, plain and
        // as a JSON record (quotes escaped).
        assert_eq!(
            net(
                r#"[ERROR] ReadTimeoutError: Read timeout on endpoint URL: "http://127.0.0.1:39339/slow-8000?list-type=2&encoding-type=url"Traceback"#
            ),
            Some((NetCause::ReadTimeout, Some("127.0.0.1:39339".into())))
        );
        assert_eq!(
            net(
                r#"{"errorMessage": "Connect timeout on endpoint URL: \"http://localhost:37299/checkout?list-type=2\""}"#
            ),
            Some((NetCause::ConnectTimeout, Some("localhost:37299".into())))
        );
        assert_eq!(
            net(
                r#"ConnectionClosedError: Connection was closed before we received a valid response from endpoint URL: "http://127.0.0.1:39339/reports?list-type=2&encoding-type=url"."#
            ),
            Some((NetCause::Reset, Some("127.0.0.1:39339".into())))
        );
        // grpcio 1.85 (C-core), recorded against the SYN-dropping listener.
        assert_eq!(
            net(
                "echo call 0 failed: StatusCode.UNAVAILABLE failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:53777: Failed to connect to remote host: getsockopt(SO_ERROR): Connection timed out"
            ),
            Some((NetCause::ConnectTimeout, Some("127.0.0.1:53777".into())))
        );
        assert_eq!(net("echo call 0 failed: 14 UNAVAILABLE: http2 error"), None);
        // Lambda's own timeout line, as the emulator prints it.
        let line = parse_line(
            RawText::Plain(
                "2026-11-28T11:55:49.730Z 903c2ac9-3167-44fe-981e-290aae9af169 Task timed out after 9.00 seconds",
            ),
            false,
        );
        assert_eq!(
            line.printed_request_id,
            Some("903c2ac9-3167-44fe-981e-290aae9af169")
        );
        let LineKind::CallFailed(Failure { net: Some(f), .. }) = line.kind else {
            panic!("{line:?}")
        };
        assert_eq!(f.cause, NetCause::FunctionTimeout);
        assert_eq!(net("all good"), None);
    }
}
