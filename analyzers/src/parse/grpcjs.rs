//! `@grpc/grpc-js` traces (`GRPC_TRACE=keepalive,… GRPC_VERBOSITY=DEBUG`).
//!
//! grpc-js prints traces with `console.error`, so under Lambda they carry the
//! Node.js runtime prefix; this parser sees the message after it.
//!
//! Line layout (`logging.ts`, `trace()`):
//!
//! | version | layout | real example |
//! |---|---|---|
//! | 1.10 – 1.14 | `D <ISO ts> \| v<version> <pid> \| <tracer> \| <text>` | `D 2026-11-28T08:07:10.293Z \| v1.14.7 2257 \| keepalive \| (2) 127.0.0.1:45905 Sending ping with timeout 1000ms` |
//! | 1.8 | `D <ISO ts> \| <tracer> \| <text>` | `D 2026-11-28T08:09:41.518Z \| keepalive \| (3) 127.0.0.1:41625 Sending ping with timeout 1000ms` |
//!
//! Keepalive texts (`transport.ts`, `keepaliveTrace()`), each prefixed with
//! `(<channelz id>) <address> `, the connection key:
//!
//! | text | meaning |
//! |---|---|
//! | `Sending ping with timeout <n>ms` | ping sent, ack timeout armed |
//! | `Received ping response` | ack read |
//! | `Ping timeout passed without response` | ack timeout fired: the connection is closed |
//! | `Starting keepalive timer for <n>ms` | the next ping is due in n ms |
//!
//! grpc-js before 1.8 wrote the same texts under the `transport` or
//! `subchannel` tracer, which are accepted too.

use super::{Keepalive, KeepaliveEvent, Library, LineKind, RawText};

/// Reads what follows a keepalive text (`1000ms`) into the event.
type EventOf = fn(&str) -> KeepaliveEvent;

const KEEPALIVE_TEXTS: &[(&str, EventOf)] = &[
    ("Sending ping with timeout ", |rest| {
        KeepaliveEvent::PingSent {
            ping_id: None,
            timeout_ms: rest.trim_end_matches("ms").parse().ok(),
        }
    }),
    ("Received ping response", |_| KeepaliveEvent::PingAck {
        ping_id: None,
    }),
    ("Ping timeout passed without response", |_| {
        KeepaliveEvent::PingTimeout
    }),
    ("Starting keepalive timer for ", |rest| {
        KeepaliveEvent::KeepaliveTimerStarted {
            interval_ms: rest.trim_end_matches("ms").parse().unwrap_or(0),
        }
    }),
];

const TRACERS: &[&str] = &["keepalive", "transport", "subchannel"];

/// True when the message is a grpc-js trace line of any tracer.
pub fn is_trace(body: &str) -> bool {
    let b = body.as_bytes();
    b.len() > 30
        && matches!(b[0], b'D' | b'I' | b'E')
        && b[1] == b' '
        && b[2].is_ascii_digit()
        && b[6] == b'-'
        && super::find_short(&b[20..], b" | ").is_some()
}

/// Parses a grpc-js keepalive trace; `None` for any other message.
///
/// ```
/// use thawtrace_analyzers::parse::{grpcjs, KeepaliveEvent, RawText};
/// let k = grpcjs::parse(RawText::Plain(
///     "D 2026-11-28T08:07:13.137Z | v1.14.7 2257 | keepalive | (2) 127.0.0.1:45905 Ping timeout passed without response",
/// )).unwrap();
/// assert_eq!(k.connection, "(2) 127.0.0.1:45905");
/// assert_eq!(k.event, KeepaliveEvent::PingTimeout);
/// ```
pub fn parse(body: RawText<'_>) -> Option<Keepalive> {
    let (tracer, text) = tracer_and_text(body.raw())?;
    keepalive(body, tracer, text)
}

/// A trace line's meaning, read once: a keepalive event, a connection
/// attempt, or nothing we read; `None` when it is not a grpc-js trace.
pub(crate) fn traced(body: RawText<'_>) -> Option<LineKind<'static>> {
    let (tracer, text) = tracer_and_text(body.raw())?;
    Some(if let Some(k) = keepalive(body, tracer, text) {
        LineKind::Keepalive(k)
    } else if let Some((destination, done)) = connect_of(tracer, text) {
        LineKind::Connect { destination, done }
    } else {
        LineKind::Other
    })
}

/// [`parse`] of a line already split into tracer and text.
fn keepalive(body: RawText<'_>, tracer: &str, text: &str) -> Option<Keepalive> {
    if !TRACERS.contains(&tracer) {
        return None;
    }
    // `(<id>) <address> <text>`
    if !text.starts_with('(') {
        return None;
    }
    let close = super::find_short(text.as_bytes(), b") ")?;
    let after_id = &text[close + 2..];
    let space = after_id.find(' ')?;
    let connection_len = close + 2 + space;
    let said = &text[connection_len + 1..];
    let (rest, event) = KEEPALIVE_TEXTS
        .iter()
        .find_map(|&(t, event)| Some((said.strip_prefix(t)?, event)))?;
    let connection = match body {
        RawText::Plain(_) => text[..connection_len].to_owned(),
        RawText::JsonEscaped(_) => super::unescape_json(&text[..connection_len]).into_owned(),
    };
    Some(Keepalive {
        library: Library::GrpcJs,
        connection,
        transport: None,
        event: event(rest.trim()),
    })
}

/// Splits at the first ` | `.
fn split(s: &str) -> Option<(&str, &str)> {
    let at = super::find_short(s.as_bytes(), b" | ")?;
    Some((&s[..at], &s[at + 3..]))
}

/// The tracer and the text of a grpc-js trace line.
fn tracer_and_text(raw: &str) -> Option<(&str, &str)> {
    if !is_trace(raw) {
        return None;
    }
    let (_sev_ts, rest) = split(raw)?;
    let (mut tracer, mut text) = split(rest)?;
    // 1.10+: a `v<version> <pid>` field before the tracer.
    if tracer.starts_with('v') && tracer.as_bytes().get(1).is_some_and(u8::is_ascii_digit) {
        (tracer, text) = split(text)?;
    }
    Some((tracer, text))
}

/// A connection attempt, from the `subchannel` and `transport` tracers:
/// `(destination, done)`, where `done` means the TCP connection was
/// established (a connect that never gets there stalled).
///
/// | tracer | text (recorded, grpc-js 1.14.7) | meaning |
/// |---|---|---|
/// | `subchannel` | `(1) 127.0.0.1:59875 IDLE -> CONNECTING` | connect started |
/// | `transport` | `dns:localhost:59875 127.0.0.1:59875 Established TCP connection` | TCP connected |
/// | `subchannel` | `(1) 127.0.0.1:59875 CONNECTING -> READY` | connected (HTTP/2 up) |
///
/// ```
/// use thawtrace_analyzers::parse::{grpcjs, RawText};
/// let line = "D 2026-12-06T01:16:30.102Z | v1.14.7 7578 | subchannel | (1) 127.0.0.1:59875 IDLE -> CONNECTING";
/// assert_eq!(grpcjs::connect(RawText::Plain(line)), Some(("127.0.0.1:59875".to_owned(), false)));
/// ```
pub fn connect(body: RawText<'_>) -> Option<(String, bool)> {
    let (tracer, text) = tracer_and_text(body.raw())?;
    connect_of(tracer, text)
}

/// [`connect`] of a line already split into tracer and text.
fn connect_of(tracer: &str, text: &str) -> Option<(String, bool)> {
    let (destination, done) = match tracer {
        "subchannel" => {
            let rest = &text[super::find_short(text.as_bytes(), b") ")? + 2..];
            let (address, said) = rest.split_once(' ')?;
            match said {
                "IDLE -> CONNECTING" | "TRANSIENT_FAILURE -> CONNECTING" => (address, false),
                "CONNECTING -> READY" => (address, true),
                _ => return None,
            }
        }
        "transport" => {
            let rest = text.strip_suffix(" Established TCP connection")?;
            (rest.rsplit(' ').next()?, true)
        }
        _ => return None,
    };
    Some((destination.to_owned(), done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts() {
        let new = "D 2026-11-28T08:07:10.293Z | v1.14.7 2257 | keepalive | (2) 127.0.0.1:45905 Sending ping with timeout 1000ms";
        let old = "D 2026-11-28T08:09:41.518Z | keepalive | (3) [::1]:41625 Sending ping with timeout 1000ms";
        let k = parse(RawText::Plain(new)).unwrap();
        assert_eq!(
            k.event,
            KeepaliveEvent::PingSent {
                ping_id: None,
                timeout_ms: Some(1000)
            }
        );
        assert_eq!(k.connection, "(2) 127.0.0.1:45905");
        let k = parse(RawText::Plain(old)).unwrap();
        assert_eq!(k.connection, "(3) [::1]:41625");
    }

    #[test]
    fn other_tracers_and_texts_are_not_keepalive() {
        for s in [
            "D 2026-11-28T08:07:13.138Z | v1.14.7 2257 | subchannel | (1) 127.0.0.1:45905 READY -> IDLE",
            "D 2026-11-28T08:07:13.138Z | v1.14.7 2257 | resolving_load_balancer | dns:127.0.0.1:45905 READY -> IDLE",
            "D short",
        ] {
            assert_eq!(parse(RawText::Plain(s)), None, "{s}");
        }
    }
}
