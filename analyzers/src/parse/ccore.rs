//! gRPC C-core traces, as grpcio writes them straight to stderr
//! (`GRPC_TRACE=http_keepalive,http2_ping,http GRPC_VERBOSITY=debug`).
//! Under Lambda they carry no runtime prefix and no request ID.
//!
//! Line headers:
//!
//! | era | header | real example |
//! |---|---|---|
//! | absl (1.66+) | `I1128 08:07:43.150213    2483 writing.cc:144] ` | `I1128 08:07:43.150213    2483 writing.cc:144] CLIENT[0x7fb9400086a0]: Ping 14023096099743521631 sent [ipv4:127.0.0.1:40427]: max_pings_without_data: 0, …` |
//! | absl, before logging init | `I0000 00:00:1758272687.581987 37923224 file.cc:71] ` | `I0000 00:00:1758272687.581987 37923224 chttp2_transport.cc:2072] ipv4:127.0.0.1:43193: Ping timeout. Closing transport.` |
//! | gpr (<= 1.65) | `I0731 09:43:50.370872238   13745 chttp2_transport.cc:2881]   ` | `E0731 09:43:50.370872238   13745 chttp2_transport.cc:2881]   ipv4:10.244.8.173:8442: Keepalive watchdog fired. Closing transport.` |
//!
//! Messages (upstream source in `src/core/ext/transport/chttp2/transport/`):
//!
//! | message | source | meaning |
//! |---|---|---|
//! | `CLIENT[<t>]: Ping <id> sent [<peer>]: …` | `writing.cc` (recorded, grpcio 1.85) | PING sent (keepalive or BDP) |
//! | `CLIENT[<t>]: received ping ack <id>` | `frame_ping.cc` (recorded, 1.85) | ack read |
//! | `CLIENT[<t>]: Set ping timeout timer of <n>ms for ping id <id>` | `writing.cc` (recorded, 1.85) | ack timer armed |
//! | `<peer>: Ping timeout. Closing transport.` | `chttp2_transport.cc`, `grpc_chttp2_ping_timeout` (recorded, 1.85) | ack timeout fired |
//! | `<peer>: Keepalive watchdog fired. Closing transport.` | `chttp2_transport.cc`, `keepalive_watchdog_fired_locked` (gpr era) | ack timeout fired |
//! | `<peer>: Keepalive timeout. Closing transport.` | `chttp2_transport.cc` (absl era, before `ping_timeout`) | ack timeout fired |
//! | `<peer>: Start keepalive ping` | `chttp2_transport.cc`, `init_keepalive_ping_locked` (gpr era) | keepalive PING sent |
//! | `<peer>: Finish keepalive ping` | `chttp2_transport.cc`, `finish_keepalive_ping_locked` (recorded, 1.85) | keepalive ack read |
//! | `ConnectivityStateTracker client_transport[<tracker>]: READY -> SHUTDOWN (close_transport, OK)` | `connectivity_state.cc` (recorded, 1.85, `connectivity_state` tracer) | the transport shut down |
//!
//! Which lines a user sees depends on the tracers they set. Without `http`
//! (say `GRPC_TRACE=http_keepalive,http2_ping,subchannel,connectivity_state`,
//! a common choice when debugging keepalive) C-core prints no timeout line
//! at all: the ping, its `Set ping timeout timer`, no ack, and the
//! transport's `READY -> SHUTDOWN` are all there is. The tracker's address
//! is a member of the transport, a few hundred bytes above its
//! `CLIENT[<t>]` address (`0x7f8fc40026a8` for `CLIENT[0x7f8fc4002420]`).

use memchr::memmem;

use super::{Keepalive, KeepaliveEvent, Library, RawText};

const PEER_TEXTS: &[(&str, KeepaliveEvent)] = &[
    (
        "Ping timeout. Closing transport.",
        KeepaliveEvent::PingTimeout,
    ),
    (
        "Keepalive watchdog fired. Closing transport.",
        KeepaliveEvent::PingTimeout,
    ),
    (
        "Keepalive timeout. Closing transport.",
        KeepaliveEvent::PingTimeout,
    ),
    (
        "Start keepalive ping",
        KeepaliveEvent::PingSent {
            ping_id: None,
            timeout_ms: None,
        },
    ),
    (
        "Finish keepalive ping",
        KeepaliveEvent::PingAck { ping_id: None },
    ),
];

/// The message after a C-core header, or `None` when the line has none.
pub fn message(raw: &str) -> Option<&str> {
    let b = raw.as_bytes();
    if b.len() < 8
        || !matches!(b[0], b'I' | b'W' | b'E' | b'D' | b'F')
        || !b[1..5].iter().all(u8::is_ascii_digit)
        || b[5] != b' '
    {
        return None;
    }
    let at = memmem::find(&b[6..b.len().min(90)], b"] ")? + 6;
    Some(raw[at + 2..].trim_start())
}

/// Parses a C-core keepalive line; `None` for any other line.
///
/// ```
/// use thawtrace_analyzers::parse::{ccore, KeepaliveEvent, RawText};
/// let k = ccore::parse(RawText::Plain(
///     "I1128 08:08:24.724498    2751 chttp2_transport.cc:2072] ipv4:127.0.0.1:43193: Ping timeout. Closing transport.",
/// )).unwrap();
/// assert_eq!(k.connection, "ipv4:127.0.0.1:43193");
/// assert_eq!(k.event, KeepaliveEvent::PingTimeout);
/// ```
pub fn parse(text: RawText<'_>) -> Option<Keepalive> {
    let msg = message(text.raw())?;
    if let Some(rest) = msg.strip_prefix("CLIENT[") {
        client_line(rest)
    } else if let Some(rest) = msg.strip_prefix("ConnectivityStateTracker client_transport[") {
        tracker_line(rest)
    } else {
        peer_line(msg)
    }
}

fn keepalive(connection: &str, transport: Option<u64>, event: KeepaliveEvent) -> Keepalive {
    Keepalive {
        library: Library::Grpcio,
        connection: connection.to_owned(),
        transport,
        event,
    }
}

/// `CLIENT[<transport>]: …`: a ping sent, its timer set, its ack read.
fn client_line(rest: &str) -> Option<Keepalive> {
    let (address, said) = rest.split_once("]: ")?;
    let transport = hex_address(address);
    if let Some(ping) = said.strip_prefix("Ping ") {
        let (id, rest) = ping.split_once(' ')?;
        let peer = rest.strip_prefix("sent [")?.split(']').next()?;
        return Some(keepalive(
            peer,
            transport,
            KeepaliveEvent::PingSent {
                ping_id: Some(id.parse().ok()?),
                timeout_ms: None,
            },
        ));
    }
    if let Some(timer) = said.strip_prefix("Set ping timeout timer of ") {
        let (ms, id) = timer.split_once("ms for ping id ")?;
        return Some(keepalive(
            "",
            transport,
            KeepaliveEvent::PingTimerSet {
                ping_id: id.trim().parse().ok()?,
                timeout_ms: ms.parse().ok()?,
            },
        ));
    }
    let id = said.strip_prefix("received ping ack ")?;
    Some(keepalive(
        "",
        transport,
        KeepaliveEvent::PingAck {
            ping_id: Some(id.trim().parse().ok()?),
        },
    ))
}

/// `ConnectivityStateTracker client_transport[<tracker>]: X -> SHUTDOWN`.
fn tracker_line(rest: &str) -> Option<Keepalive> {
    let (address, said) = rest.split_once("]: ")?;
    let (_, to) = said.split_once(" -> ")?;
    if !to.starts_with("SHUTDOWN") {
        return None;
    }
    Some(keepalive(
        "",
        Some(hex_address(address)?),
        KeepaliveEvent::TransportShutdown,
    ))
}

/// `<peer>: <text>`; peers look like `ipv4:…`, `ipv6:[…]:…`, `unix:…`.
fn peer_line(msg: &str) -> Option<Keepalive> {
    if !(msg.starts_with("ipv") || msg.starts_with("unix:") || msg.starts_with("dns:")) {
        return None;
    }
    let split = super::find_short(msg.as_bytes(), b": ")?;
    let (peer, said) = (&msg[..split], &msg[split + 2..]);
    let (_, event) = PEER_TEXTS.iter().find(|(t, _)| said.starts_with(t))?;
    Some(keepalive(peer, None, event.clone()))
}

/// `0x7f8fc4002420` as a number.
fn hex_address(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Keepalive> {
        parse(RawText::Plain(s))
    }

    #[test]
    fn recorded_lines() {
        let k = p("I1128 08:07:43.150213    2483 writing.cc:144] CLIENT[0x7fb9400086a0]: Ping 14023096099743521631 sent [ipv4:127.0.0.1:40427]: max_pings_without_data: 0").unwrap();
        assert_eq!(k.connection, "ipv4:127.0.0.1:40427");
        assert_eq!(
            k.event,
            KeepaliveEvent::PingSent {
                ping_id: Some(14023096099743521631),
                timeout_ms: None
            }
        );
        let k = p("I1128 08:07:43.272972    2483 frame_ping.cc:96] CLIENT[0x7fb9400086a0]: received ping ack 14023096099743521631").unwrap();
        assert_eq!(
            k.event,
            KeepaliveEvent::PingAck {
                ping_id: Some(14023096099743521631)
            }
        );
    }

    #[test]
    fn a_transport_shut_down_names_its_tracker() {
        // Recorded from grpcio 1.85 with GRPC_TRACE=http_keepalive,http2_ping,subchannel,connectivity_state.
        let k = p("I1206 00:34:32.629762   30801 connectivity_state.cc:150] ConnectivityStateTracker client_transport[0x7f8fc4004008]: READY -> SHUTDOWN (close_transport, OK)").unwrap();
        assert_eq!(k.event, KeepaliveEvent::TransportShutdown);
        assert_eq!(k.transport, Some(0x7f8fc4004008));
        let k = p("I1206 00:34:32.753136   30804 writing.cc:792] CLIENT[0x7f8fc4003d80]: Set ping timeout timer of 1000ms for ping id 7748786850433527177").unwrap();
        assert_eq!(k.transport, Some(0x7f8fc4003d80));
        // The channel's own tracker, and other transitions, are not a transport's end.
        assert!(p("I1206 00:34:32.629938   30804 connectivity_state.cc:150] ConnectivityStateTracker client_channel[0x564ff75ddd98]: READY -> IDLE (helper, OK)").is_none());
        assert!(p("I1206 00:34:32.629938   30804 connectivity_state.cc:150] ConnectivityStateTracker client_transport[0x564ff75ddd98]: CONNECTING -> READY (helper, OK)").is_none());
        assert!(p("I1206 00:34:32.629938   30804 connectivity_state.cc:150] ConnectivityStateTracker client_transport[zz]: READY -> SHUTDOWN (x)").is_none());
    }

    #[test]
    fn gpr_and_preinit_eras() {
        let k = p("E0731 09:43:50.370872238   13745 chttp2_transport.cc:2881]   ipv4:10.244.8.173:8442: Keepalive watchdog fired. Closing transport.").unwrap();
        assert_eq!(k.connection, "ipv4:10.244.8.173:8442");
        assert_eq!(k.event, KeepaliveEvent::PingTimeout);
        let k = p("I0000 00:00:1758272687.581987 37923224 chttp2_transport.cc:71] ipv6:[::1]:50051: Keepalive timeout. Closing transport.").unwrap();
        assert_eq!(k.connection, "ipv6:[::1]:50051");
    }

    #[test]
    fn noise_is_not_keepalive() {
        assert!(p("I1128 08:07:43.024890    2483 chttp2_transport.cc:1118] W:0x7fb9400086a0 CLIENT [ipv4:127.0.0.1:40427] state IDLE -> WRITING [START_NEW_STREAM]").is_none());
        assert!(p("I1128 08:08:23.144089    2751 chttp2_transport.cc:3423] ipv4:127.0.0.1:43193: Keepalive ping cancelled. Resetting timer.").is_none());
        assert!(p("INFO something").is_none());
    }
}
