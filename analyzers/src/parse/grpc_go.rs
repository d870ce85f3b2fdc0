//! grpc-go, as a Go function on `provided.al2023` prints it: plain
//! stdout/stderr lines, no runtime prefix, no request ID. grpc-go's own
//! logger (grpclog's loggerv2) writes to stderr under
//! `GRPC_GO_LOG_SEVERITY_LEVEL` (`info`, `warning`, `error`; unset: errors
//! only) and `GRPC_GO_LOG_VERBOSITY_LEVEL` (its `V(2)` lines need 2 or more);
//! the function's own lines come from Go's `log` package.
//!
//! Line headers:
//!
//! | who | header | real example |
//! |---|---|---|
//! | grpc-go 1.33 (Debian's 1.33.3) | `<SEVERITY>: <date> <time> ` | `INFO: 2026/12/06 14:33:33 [core] Subchannel Connectivity change to CONNECTING` (recorded) |
//! | grpc-go 1.4x and later (Debian trixie's 1.64.0; current 1.85) | `<date> <time> <SEVERITY>: ` | `2026/12/06 17:37:50 INFO: [core] [Channel #1 SubChannel #2]Subchannel Connectivity change to IDLE` (1.64, recorded; 1.76 added a space after the channelz entity, upstream #8564) |
//! | Go's `log` (the function) | `<date> <time> ` | `2026/12/06 14:33:33 echo call 0 failed: rpc error: code = Unavailable desc = transport is closing` (recorded) |
//!
//! grpc-go prints nothing when it sends a keepalive ping or reads its ack,
//! at any verbosity, in 1.33 as today. What it prints is the transport
//! closing; the messages (upstream `clientconn.go`,
//! `internal/transport/http2_client.go`, `controlbuf.go`):
//!
//! | message | version | meaning |
//! |---|---|---|
//! | `[core] Subchannel Connectivity change to READY` | 1.33 (recorded) | the transport is up |
//! | `[core] [Channel #1 SubChannel #2]Subchannel Connectivity change to READY` | 1.64 (recorded; 1.76+ with a space after `]`) | the transport is up |
//! | `[core] Subchannel Connectivity change to CONNECTING` (or `TRANSIENT_FAILURE`, `IDLE`) after READY | 1.33 (recorded), current | the transport went down, for a reason not said |
//! | `[transport] transport: loopyWriter.run returning. connection error: desc = "transport is closing"` | 1.33 (recorded, verbosity 2) | the client closed its transport itself: keepalive, a read error, or the channel's close |
//! | `[transport] [client-transport 0xc0001a86c8] Closing: connection error: desc = "keepalive ping failed to receive ACK within timeout"` | 1.64 (recorded, verbosity 2), current | the keepalive ack timed out |
//! | `[transport] [client-transport 0xc0001a86c8] loopyWriter exiting with error: connection error: desc = "…"` | 1.64 (recorded, verbosity 2), current | the same close, its writer's end: not read (the `Closing:` line before it is) |
//! | `[transport] [client-transport 0xc000180000] Closing: connection error: desc = "<other reason>"` | 1.38+ (not recorded) | closed for that reason, not keepalive |
//! | `rpc error: code = Unavailable desc = transport is closing` | 1.33 (recorded, on the function's failed call) | the call's transport was closed under it, reason not said |
//! | `rpc error: code = Unavailable desc = keepalive ping failed to receive ACK within timeout` | 1.64 (recorded), 1.38+ | the call's transport closed on a keepalive timeout |
//! | `rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp <addr>: connect: connection timed out"` (or `connection refused`) | 1.64 (recorded against a SYN-dropping / closed listener) | the call's connect timed out (a `connect_stall` when environments stall together) or was refused |
//! | `rpc error: code = Unavailable desc = error reading from server: read tcp <local>-><remote>: read: connection reset by peer` | 1.64 (recorded through the NAT proxy) | a failed call whose connection the peer (a NAT that forgot it) reset: a network failure, for `nat_idle_reset` |
//! | `rpc error: code = Unavailable desc = error reading from server: EOF` | 1.64 (recorded through the NAT proxy, keepalive on: the ping's write at the thaw took the reset's error, `write: connection reset by peer` at verbosity 2, and the reader then read end of file) | the same: a connection the peer dropped without an HTTP/2 goodbye (a graceful server close sends GOAWAY, and the call fails otherwise); as grpc-js's `socket hang up`, a server that closed with a bare FIN reads the same |
//!
//! In 1.33 a transport the keepalive closes and one whose read failed (the
//! server's EOF or RST) both end in `transport is closing`: the reason
//! arrived with grpc-go 1.38 (upstream #4311, `keepalive ping failed to
//! receive ACK within timeout`, `error reading from server: …`). grpc-go
//! names no connection on these lines consistently, so they are all keyed
//! to the function's one channel, [`CONNECTION`].

use super::{
    Failure, Keepalive, KeepaliveEvent, Library, Line, LineKind, NetCause, NetFailure, RawText,
};

/// The connection key of every grpc-go line: the function's channel.
pub const CONNECTION: &str = "grpc-go";

/// Why a grpc-go transport closed, as far as its lines say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The keepalive ack timed out (grpc-go 1.38+ says so).
    Keepalive,
    /// Not said: grpc-go 1.33's `transport is closing`, or a subchannel
    /// that left READY.
    Unsaid,
    /// Another reason, said (`error reading from server: EOF`, …).
    Other,
}

/// A message after a grpc-go or Go `log` header: `(severity, message)`,
/// the severity `None` on the function's own `log` lines.
///
/// ```
/// use thawtrace_analyzers::parse::grpc_go::header;
/// assert_eq!(header("INFO: 2026/12/06 14:33:33 [core] x"), Some((Some("INFO"), "[core] x")));
/// assert_eq!(header("2026/12/06 14:33:33 WARNING: [core] x"), Some((Some("WARNING"), "[core] x")));
/// assert_eq!(header("2026/12/06 14:33:33 echo call 0 ok"), Some((None, "echo call 0 ok")));
/// assert_eq!(header("2026-12-06T14:33:33.000Z\tid\tINFO\tx"), None);
/// ```
pub fn header(raw: &str) -> Option<(Option<&'static str>, &str)> {
    const SEVERITIES: [&str; 4] = ["INFO", "WARNING", "ERROR", "FATAL"];
    let severity = |s: &str| -> Option<(&'static str, usize)> {
        SEVERITIES.iter().find_map(|&sev| {
            s.strip_prefix(sev)
                .and_then(|r| r.strip_prefix(": "))
                .map(|_| (sev, sev.len() + 2))
        })
    };
    // grpc-go 1.33: the severity before the date.
    let (first, rest) = match severity(raw) {
        Some((sev, n)) => (Some(sev), &raw[n..]),
        None => (None, raw),
    };
    let rest = date_time(rest)?;
    if first.is_some() {
        return Some((first, rest));
    }
    // grpc-go today: the severity after the date; else the function's `log` line.
    Some(match severity(rest) {
        Some((sev, n)) => (Some(sev), &rest[n..]),
        None => (None, rest),
    })
}

/// `YYYY/MM/DD HH:MM:SS ` (Go's `log.LstdFlags`): what follows it.
fn date_time(s: &str) -> Option<&str> {
    const SHAPE: &[u8; 20] = b"0000/00/00 00:00:00 ";
    let b = s.as_bytes();
    if b.len() < SHAPE.len() {
        return None;
    }
    let fits = SHAPE.iter().zip(b).all(|(&want, &c)| {
        if want == b'0' {
            c.is_ascii_digit()
        } else {
            c == want
        }
    });
    fits.then(|| &s[SHAPE.len()..])
}

/// What a grpc-go message says, by the table in the module docs: the
/// needle, where it must be, and the event.
enum Says {
    Ready,
    Closed(CloseReason),
}

/// Subchannel states after `Subchannel Connectivity change to `: READY is
/// up; the others, after READY, are a transport that went down.
const SUBCHANNEL: &str = "Subchannel Connectivity change to ";

/// grpc-go's own messages (after `[core] ` or `[transport] `).
fn grpc_message(msg: &str) -> Option<Says> {
    let (component, rest) = msg.split_once("] ")?;
    match component {
        "[core" => {
            // Later versions put the channelz entity first:
            // `[Channel #1 SubChannel #2]Subchannel Connectivity change to …`
            // (1.64, recorded), with a space after `]` since 1.76.
            let rest = match rest.strip_prefix('[') {
                Some(r) => r
                    .split_once(']')
                    .map_or(r, |(_, r)| r.trim_start_matches(' ')),
                None => rest,
            };
            let said = rest.strip_prefix(SUBCHANNEL)?;
            let state = said.split([',', ' ']).next().unwrap_or(said);
            // Current versions add the transport's error: `IDLE, last
            // error: connection error: desc = "keepalive ping failed …"`.
            let reason = said
                .split_once("last error: ")
                .map_or(CloseReason::Unsaid, |(_, e)| reason_of(desc(e)));
            match state {
                "READY" => Some(Says::Ready),
                "CONNECTING" | "TRANSIENT_FAILURE" | "IDLE" => Some(Says::Closed(reason)),
                _ => None,
            }
        }
        "[transport" => {
            // 1.33, at verbosity 2 (recorded).
            if rest.starts_with("transport: loopyWriter.run returning. ")
                && desc(rest.split_once("connection error: ")?.1)
                    .starts_with("transport is closing")
            {
                return Some(Says::Closed(CloseReason::Unsaid));
            }
            // 1.38+: `[client-transport 0x…] Closing: connection error:
            // desc = "<reason>"` (http2_client.go `Close`, at verbosity 2;
            // 1.64 recorded).
            let rest = rest
                .strip_prefix("[client-transport ")
                .and_then(|r| r.split_once("] "))
                .map(|(_, r)| r)?;
            let reason = rest.strip_prefix("Closing: ")?;
            Some(Says::Closed(reason_of(desc(reason))))
        }
        _ => None,
    }
}

/// The description inside a `ConnectionError`'s text, `connection error:
/// desc = "<desc>"` (the quote JSON-escaped or not), or the text itself.
fn desc(error: &str) -> &str {
    let d = error.strip_prefix("connection error: ").unwrap_or(error);
    let d = d.strip_prefix("desc = ").unwrap_or(d);
    d.strip_prefix("\\\"")
        .or_else(|| d.strip_prefix('"'))
        .unwrap_or(d)
}

/// The reason a close names: keepalive (1.38+), none (1.33), or another.
fn reason_of(desc: &str) -> CloseReason {
    if desc.starts_with("keepalive ping failed to receive ACK within timeout") {
        CloseReason::Keepalive
    } else if desc.starts_with("transport is closing") {
        CloseReason::Unsaid
    } else {
        CloseReason::Other
    }
}

/// The description of a failed call as grpc-go's status error prints it,
/// `rpc error: code = Unavailable desc = <desc>`: what follows `desc = `.
fn unavailable_desc(msg: &str) -> Option<&str> {
    static CALL: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| {
            memchr::memmem::Finder::new("rpc error: code = Unavailable desc = ")
        });
    let at = CALL.find(msg.as_bytes())?;
    Some(&msg[at + CALL.needle().len()..])
}

/// A failed call's [`unavailable_desc`] that says its transport closed.
fn call_closed(desc: &str) -> Option<CloseReason> {
    match reason_of(desc) {
        CloseReason::Other => None,
        reason => Some(reason),
    }
}

/// A failed call's [`unavailable_desc`] when its transport the peer reset (grpc-go
/// 1.64, recorded through the NAT proxy: `rpc error: code = Unavailable
/// desc = error reading from server: read tcp <local>-><remote>: read:
/// connection reset by peer`, Go's lower-case ECONNRESET text): a failed
/// call with a network cause, read at any setting, for the neighbouring
/// failures (a NAT that forgot the connection).
///
/// `error reading from server: EOF` is the same failure when a write took
/// the reset's error first (recorded, keepalive on: the ping at the thaw)
/// and the reader then read end of file: a connection dropped with no
/// GOAWAY. Either is a NAT idle reset only after an idle gap past the
/// NAT's timeout.
fn call_reset(desc: &str) -> Option<Failure> {
    let eof = desc
        .strip_prefix("error reading from server: EOF")
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric()));
    if !eof {
        memchr::memmem::find(desc.as_bytes(), b"connection reset by peer")?;
    }
    Some(Failure {
        code: Some("UNAVAILABLE"),
        net: Some(NetFailure {
            cause: NetCause::Reset,
            destination: None,
        }),
    })
}

/// A failed call's [`unavailable_desc`] when its connect failed (grpc-go 1.64,
/// recorded against a listener that drops SYNs and one that refuses:
/// `rpc error: code = Unavailable desc = connection error: desc =
/// "transport: Error while dialing: dial tcp <addr>: connect: connection
/// timed out"`, or `connection refused`): a network failure naming its
/// destination, read at any setting, for `connect_stall`.
fn call_dial_failure(desc: &str) -> Option<Failure> {
    const DIAL: &str = "Error while dialing: dial tcp ";
    let at = memchr::memmem::find(desc.as_bytes(), DIAL.as_bytes())?;
    let (destination, why) = desc[at + DIAL.len()..].split_once(": connect: ")?;
    let cause = if why.starts_with("connection timed out") {
        NetCause::ConnectTimeout
    } else if why.starts_with("connection refused") {
        NetCause::ConnectRefused
    } else {
        return None;
    };
    Some(Failure {
        code: Some("UNAVAILABLE"),
        net: Some(NetFailure {
            cause,
            destination: Some(destination.to_owned()),
        }),
    })
}

fn keepalive(event: KeepaliveEvent) -> LineKind<'static> {
    LineKind::Keepalive(Keepalive {
        library: Library::GrpcGo,
        connection: CONNECTION.to_owned(),
        transport: None,
        event,
    })
}

/// Parses a line with a grpc-go or Go `log` header; `None` for any other
/// line. The function's failed calls are read always when they say the
/// transport closed, other failures only when `want_failures`.
///
/// ```
/// use thawtrace_analyzers::parse::{grpc_go, KeepaliveEvent, LineKind, RawText};
/// let line = grpc_go::parse(RawText::Plain(
///     "2026/12/06 14:33:33 echo call 0 failed: rpc error: code = Unavailable desc = transport is closing",
/// ), false).unwrap();
/// let LineKind::Keepalive(k) = line.kind else { panic!() };
/// assert!(matches!(k.event, KeepaliveEvent::TransportClosed { reason: grpc_go::CloseReason::Unsaid, .. }));
/// ```
pub fn parse(text: RawText<'_>, want_failures: bool) -> Option<Line<'static>> {
    let (severity, msg) = header(text.raw())?;
    let kind = match severity.and_then(|_| grpc_message(msg)) {
        Some(Says::Ready) => keepalive(KeepaliveEvent::TransportReady),
        Some(Says::Closed(reason)) => keepalive(KeepaliveEvent::TransportClosed {
            reason,
            quiet_ms: None,
        }),
        None => {
            let desc = unavailable_desc(msg);
            match desc.and_then(call_closed) {
                Some(reason) => keepalive(KeepaliveEvent::TransportClosed {
                    reason,
                    quiet_ms: None,
                }),
                None => match desc.and_then(|d| call_reset(d).or_else(|| call_dial_failure(d))) {
                    Some(failure) => LineKind::CallFailed(failure),
                    None if want_failures => {
                        super::call_failure(msg).map_or(LineKind::Other, LineKind::CallFailed)
                    }
                    None => LineKind::Other,
                },
            }
        }
    };
    Some(Line {
        kind,
        printed_request_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(raw: &str) -> Option<KeepaliveEvent> {
        match parse(RawText::Plain(raw), true)?.kind {
            LineKind::Keepalive(k) => {
                assert_eq!(k.library, Library::GrpcGo);
                assert_eq!(k.connection, CONNECTION);
                Some(k.event)
            }
            _ => None,
        }
    }

    fn closed(reason: CloseReason) -> Option<KeepaliveEvent> {
        Some(KeepaliveEvent::TransportClosed {
            reason,
            quiet_ms: None,
        })
    }

    /// Every pattern, each beside its line: recorded from grpc-go 1.33.3
    /// (tests/fixtures/recorded-go), or the current upstream text where
    /// said (grpc-go 1.85.0-dev, not recorded), or from 1.64.0 (Debian
    /// trixie, `record_go.py --grpc 1.64`).
    #[test]
    fn each_pattern_beside_its_line() {
        // Recorded, 1.33.3, GRPC_GO_LOG_SEVERITY_LEVEL=info.
        assert_eq!(
            event("INFO: 2026/12/06 14:33:34 [core] Subchannel Connectivity change to READY"),
            Some(KeepaliveEvent::TransportReady)
        );
        assert_eq!(
            event("INFO: 2026/12/06 14:33:33 [core] Subchannel Connectivity change to CONNECTING"),
            closed(CloseReason::Unsaid)
        );
        // Recorded, 1.33.3, verbosity 2.
        assert_eq!(
            event(
                "INFO: 2026/12/06 14:33:33 [transport] transport: loopyWriter.run returning. connection error: desc = \"transport is closing\""
            ),
            closed(CloseReason::Unsaid)
        );
        // Recorded, 1.33.3, any setting: the function's failed call.
        assert_eq!(
            event(
                "2026/12/06 14:33:33 echo call 0 failed: rpc error: code = Unavailable desc = transport is closing"
            ),
            closed(CloseReason::Unsaid)
        );
        // Recorded, 1.64.0 (Debian trixie), GRPC_GO_LOG_SEVERITY_LEVEL=info.
        assert_eq!(
            event(
                "2026/12/06 17:37:51 INFO: [core] [Channel #1 SubChannel #2]Subchannel Connectivity change to READY"
            ),
            Some(KeepaliveEvent::TransportReady)
        );
        assert_eq!(
            event(
                "2026/12/06 17:37:50 INFO: [core] [Channel #1 SubChannel #2]Subchannel Connectivity change to IDLE"
            ),
            closed(CloseReason::Unsaid)
        );
        // Recorded, 1.64.0, verbosity 2.
        assert_eq!(
            event(
                "2026/12/06 17:37:50 INFO: [transport] [client-transport 0xc0001a86c8] Closing: connection error: desc = \"keepalive ping failed to receive ACK within timeout\""
            ),
            closed(CloseReason::Keepalive)
        );
        assert_eq!(
            event(
                "2026/12/06 17:37:50 INFO: [transport] [client-transport 0xc0001a86c8] loopyWriter exiting with error: connection error: desc = \"keepalive ping failed to receive ACK within timeout\""
            ),
            None
        );
        // Recorded, 1.64.0, any setting: the function's failed call.
        assert_eq!(
            event(
                "2026/12/06 17:37:36 echo call 0 failed: rpc error: code = Unavailable desc = keepalive ping failed to receive ACK within timeout"
            ),
            closed(CloseReason::Keepalive)
        );
        // Current upstream texts (1.76+: a space after the channelz entity).
        assert_eq!(
            event(
                "2026/12/06 14:33:33 INFO: [core] [Channel #1 SubChannel #2] Subchannel Connectivity change to READY"
            ),
            Some(KeepaliveEvent::TransportReady)
        );
        assert_eq!(
            event(
                "2026/12/06 14:33:33 INFO: [core] [Channel #1 SubChannel #2] Subchannel Connectivity change to IDLE, last error: connection error: desc = \"keepalive ping failed to receive ACK within timeout\""
            ),
            closed(CloseReason::Keepalive)
        );
        assert_eq!(
            event(
                "2026/12/06 14:33:33 INFO: [transport] [client-transport 0xc000180000] Closing: connection error: desc = \"error reading from server: EOF\""
            ),
            closed(CloseReason::Other)
        );
        assert_eq!(
            event(
                "2026/12/06 14:33:33 echo call 0 failed: rpc error: code = Unavailable desc = keepalive ping failed to receive ACK within timeout"
            ),
            closed(CloseReason::Keepalive)
        );
        // Recorded, 1.64.0 against a listener that drops SYNs / refuses
        // (record_network.py --only stall-go), any setting.
        for (reason, cause) in [
            ("connection timed out", NetCause::ConnectTimeout),
            ("connection refused", NetCause::ConnectRefused),
        ] {
            let line = format!(
                "2026/12/06 18:09:26 echo call 0 failed: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:39355: connect: {reason}\""
            );
            assert_eq!(
                parse(RawText::Plain(&line), false).unwrap().kind,
                LineKind::CallFailed(Failure {
                    code: Some("UNAVAILABLE"),
                    net: Some(NetFailure {
                        cause,
                        destination: Some("127.0.0.1:39355".into())
                    }),
                })
            );
        }
        // Not a close: the initial CONNECTING is read as one, and the
        // correlator drops it (no READY before it); other lines are Other.
        assert_eq!(
            event("INFO: 2026/12/06 14:33:26 [core] Channel Connectivity change to READY"),
            None
        );
        assert_eq!(
            event("INFO: 2026/12/06 14:33:26 [core] parsed scheme: \"\""),
            None
        );
        assert_eq!(event("2026/12/06 14:33:27 echo call 0 ok"), None);
        // Recorded, 1.64.0 through the NAT proxy (record_network.py
        // --only nat-go), any setting: a failed call with a network cause.
        let reset = "2026/12/06 18:00:47 echo call 0 failed: rpc error: code = Unavailable desc = error reading from server: read tcp 127.0.0.1:44030->127.0.0.1:39301: read: connection reset by peer";
        assert_eq!(
            parse(RawText::Plain(reset), false).unwrap().kind,
            LineKind::CallFailed(Failure {
                code: Some("UNAVAILABLE"),
                net: Some(NetFailure {
                    cause: NetCause::Reset,
                    destination: None
                }),
            })
        );
        // Recorded, 1.64.0 through the NAT proxy with keepalive on
        // (record_network.py --only nat-go, seed 207): the ping's write
        // took the reset's error, the reader then read end of file.
        let eof = "2026/12/06 21:02:16 echo call 0 failed: rpc error: code = Unavailable desc = error reading from server: EOF";
        assert_eq!(
            parse(RawText::Plain(eof), false).unwrap().kind,
            parse(RawText::Plain(reset), false).unwrap().kind
        );
        assert_eq!(event(eof), None);
        // Other unavailable calls are no reset.
        let other = "2026/12/06 21:02:16 echo call 0 failed: rpc error: code = Unavailable desc = error reading from server: EOFX";
        assert_ne!(
            parse(RawText::Plain(other), false).unwrap().kind,
            parse(RawText::Plain(reset), false).unwrap().kind
        );
    }

    /// Lines read from a JSON export keep their escapes: `\"` around the
    /// connection error's description.
    #[test]
    fn escaped_quotes_read_the_same() {
        for raw in [
            r#"2026/12/06 17:37:50 INFO: [transport] [client-transport 0xc0001a86c8] Closing: connection error: desc = \"keepalive ping failed to receive ACK within timeout\""#,
            r#"2026/12/06 14:33:33 INFO: [core] [Channel #1 SubChannel #2] Subchannel Connectivity change to IDLE, last error: connection error: desc = \"keepalive ping failed to receive ACK within timeout\""#,
        ] {
            let line = parse(RawText::JsonEscaped(raw), false).unwrap();
            let LineKind::Keepalive(k) = line.kind else {
                panic!("{raw}")
            };
            assert_eq!(k.event, closed(CloseReason::Keepalive).unwrap(), "{raw}");
        }
        let bare = r#"INFO: 2026/12/06 14:33:33 [transport] transport: loopyWriter.run returning. connection error: desc = \"transport is closing\""#;
        let LineKind::Keepalive(k) = parse(RawText::JsonEscaped(bare), false).unwrap().kind else {
            panic!("{bare}")
        };
        assert_eq!(k.event, closed(CloseReason::Unsaid).unwrap());
    }

    #[test]
    fn malformed_headers_are_not_grpc_go() {
        for raw in [
            "",
            "INFO: ",
            "INFO: 2026/12/06",
            "INFO: 2026-12-06 14:33:33 [core] x",
            "2026/12/0x 14:33:33 x",
            "INFO 2026/12/06 14:33:33 [core] Subchannel Connectivity change to READY",
            "INFO: 2026/12/06 14:33:33 [core",
            "INFO: 2026/12/06 14:33:33 [transport] [client-transport 0x1",
        ] {
            assert!(
                parse(RawText::Plain(raw), true).is_none_or(|l| l.kind == LineKind::Other),
                "{raw:?}"
            );
        }
    }
}
