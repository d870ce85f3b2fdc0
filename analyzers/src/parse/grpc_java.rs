//! grpc-java (Netty transport) lines, as java.util.logging writes them to
//! stderr with `io.grpc.netty.level=FINE` (README, "Log formats read").
//!
//! grpc-java's `NettyClientHandler` logs every HTTP/2 frame through
//! Netty's `Http2FrameLogger` at DEBUG, which Netty's JDK logger writes at
//! FINE. The JDK's `SimpleFormatter` prints each record on two lines, a
//! header (`Dec 06, 2026 2:36:58 PM io.netty.handler.codec.http2.Http2FrameLogger logPing`)
//! and `FINE: <message>`; under Lambda each is a log event of its own, with
//! no runtime prefix and no request ID, in the text and the JSON log format
//! alike (stderr is not the runtime's logger). The message names the Netty
//! channel, `[id: 0x<id>, L:<local> - R:<remote>]` (` ! ` instead of ` - `
//! once the channel is closed): the channel id and the remote address are
//! the connection key.
//!
//! | message | real example (grpc-java 1.41.3, Netty 4.1.48) | meaning |
//! |---|---|---|
//! | `OUTBOUND PING: ack=false bytes=1111` | `FINE: [id: 0x3ae714ae, L:/127.0.0.1:58132 - R:/127.0.0.1:42807] OUTBOUND PING: ack=false bytes=1111` | keepalive PING sent (`KeepAliveManager` pings with the transport's ping payload, 1111) |
//! | `INBOUND PING: ack=true bytes=1111` | `FINE: [id: 0xceaabf1d, L:/127.0.0.1:51166 - R:/127.0.0.1:46817] INBOUND PING: ack=true bytes=1111` | its ack read |
//! | `OUTBOUND GO_AWAY: …` | `FINE: [id: 0x3ae714ae, L:/127.0.0.1:58132 - R:/127.0.0.1:42807] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=0 length=0 bytes=` | the client closed the connection: at a keepalive timeout (`Keepalive failed. The connection is likely gone`), and at any other shutdown |
//! | `OUTBOUND GO_AWAY: … bytes=436f6e6e656374696f6e207265736574` | `FINE: [id: 0x89667c7c, L:/127.0.0.1:50502 - R:/127.0.0.1:39015] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=2 length=16 bytes=436f6e6e656374696f6e207265736574` | the connection was reset: Netty closes a connection that failed with the exception's message as the GO_AWAY's debug data, hex-printed (here `Connection reset`, Java's `SocketException`); a network failure ([`reset`]), not a keepalive close |
//! | `OUTBOUND PING: ack=false bytes=1234` | `FINE: [id: 0xceaabf1d, L:/127.0.0.1:51166 - R:/127.0.0.1:46817] OUTBOUND PING: ack=false bytes=1234` | a flow-control (BDP) PING: no ack timeout, not read |
//!
//! With `io.grpc.ChannelLogger.level=FINEST` (grpc-java's channel trace,
//! which `ChannelLoggerImpl` writes to java.util.logging: its DEBUG and
//! INFO events at FINEST), each transport's connect is printed too: the
//! protocol negotiator's first step waits for the TCP connection.
//!
//! | message | real example (grpc-java 1.41.3) | meaning |
//! |---|---|---|
//! | `[NettyClientTransport<n>: (<addr>)] WaitUntilActive started` | `FINEST: [NettyClientTransport<4>: (/127.0.0.1:47124)] WaitUntilActive started` | a connect to `<addr>` started ([`connect`]) |
//! | `[NettyClientTransport<n>: (<addr>)] WaitUntilActive completed` | `FINEST: [NettyClientTransport<4>: (/127.0.0.1:47124)] WaitUntilActive completed` | its TCP connection was established |
//!
//! Current upstream (1.85-SNAPSHOT) logs the same texts, but maps the
//! channel trace's INFO events to FINER (1.41: FINEST): `completed` is
//! then a `FINER:` line, read the same (not recorded).
//!
//! grpc-java prints no line of its own at a keepalive timeout, and never the
//! ack timeout (`keepAliveTimeout`): the close (`GO_AWAY`) of a connection
//! whose keepalive PING is unanswered stands in for the timeout line
//! ([`KeepaliveEvent::ClientClosed`], `inferred_from: go_away`). The calls
//! on it fail with `UNAVAILABLE: Keepalive failed. The connection is likely
//! gone` (`KeepAliveManager.ClientKeepAlivePinger`), which the function
//! logs, if it does, in its own words.
//!
//! Current upstream (grpc-java 1.85-SNAPSHOT, Netty 4.1) has the same
//! payloads (`NettyClientHandler.USER_PING_PAYLOAD` 1111,
//! `AbstractNettyHandler.BDP_MEASUREMENT_PING` 1234), the same frame logger
//! and the same failure text; those lines are read the same (not recorded
//! with it: Debian packages 1.41.3).
//!
//! Other layouts: a line that is the message alone (a `SimpleFormatter`
//! format of `%5$s%n`) is read too, and a record behind a layout that puts
//! a `yyyy-MM-dd HH:mm:ss` date first (Log4j 2, recorded with AWS's
//! documented layout; [`after_layout`]). Not read: layouts that begin
//! otherwise.

use super::{Keepalive, KeepaliveEvent, Library, NetCause, NetFailure, RawText};

/// The keepalive PING payload (`NettyClientHandler.USER_PING_PAYLOAD`).
const KEEPALIVE_PAYLOAD: &str = "1111";

/// Frame texts after the channel, with what they say.
const FRAMES: &[(&str, Frame)] = &[
    ("OUTBOUND PING: ack=false bytes=", Frame::Ping),
    ("INBOUND PING: ack=true bytes=", Frame::Ack),
    ("OUTBOUND GO_AWAY: ", Frame::GoAway),
];

#[derive(Clone, Copy)]
enum Frame {
    Ping,
    Ack,
    GoAway,
}

/// Whether a message may be a grpc-java frame line (its first bytes).
#[inline]
pub fn is_frame_line(raw: &str) -> bool {
    raw.starts_with("FINE: [id: 0x") || raw.starts_with("[id: 0x")
}

/// The grpc-java frame or channel-trace record inside a line that a
/// logging framework's layout begins with a `yyyy-MM-dd HH:mm:ss` date:
/// Log4j 2 with the layout AWS documents for Java functions
/// (`%d{yyyy-MM-dd HH:mm:ss} %X{AWSRequestId} %-5p %c{1} - %m%n`, recorded
/// with Debian's Log4j 2.19, as in the example below; the request ID is
/// empty on Netty's threads), or any layout that puts the date first and
/// the message after it. `None` for any other line; other date-first lines
/// cost one or two searches.
///
/// ```
/// use thawtrace_analyzers::parse::{grpc_java, RawText};
/// let line = "2026-12-07 00:17:31  DEBUG NettyClientHandler - [id: 0x19905019, L:/127.0.0.1:39358 - R:/127.0.0.1:40887] OUTBOUND PING: ack=false bytes=1111";
/// let inner = grpc_java::after_layout(RawText::Plain(line)).unwrap();
/// assert!(inner.raw().starts_with("[id: 0x19905019"));
/// assert!(grpc_java::after_layout(RawText::Plain("2026-12-06T21:07:32.000Z\tx\tINFO\t[id: 0x1, L:a - R:b] OUTBOUND PING: ack=false bytes=1111")).is_none());
/// ```
pub fn after_layout(text: RawText<'_>) -> Option<RawText<'_>> {
    let raw = text.raw();
    let b = raw.as_bytes();
    let dated = b.len() > 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':';
    if !dated {
        return None;
    }
    let at = 19
        + super::find_short(&b[19..], b"[id: 0x")
            .or_else(|| super::find_short(&b[19..], b"[NettyClientTransport<"))?;
    // The record follows the layout's separator (` - `, `: `, `] `), never
    // a word.
    (b[at - 1] == b' ').then(|| text.tail(at))
}

/// Whether an unprefixed line prints a grpc-java status as
/// `StatusRuntimeException.getMessage()` does (`UNAVAILABLE: Keepalive
/// failed. The connection is likely gone`, recorded; `DEADLINE_EXCEEDED:
/// deadline exceeded after …`, not recorded): a failed call, which the
/// Java runtime's text format prints without a level, so a stream whose
/// logging hides keepalive can be named as unjudged.
pub(crate) fn names_status(raw: &str) -> bool {
    let b = raw.as_bytes();
    super::find_short(b, b"UNAVAILABLE: ").is_some()
        || super::find_short(b, b"DEADLINE_EXCEEDED: ").is_some()
}

/// The parts of a frame line: the connection key, what follows the
/// channel (`OUTBOUND PING: …`), and the remote address.
fn frame(raw: &str) -> Option<(String, &str, &str)> {
    let rest = raw.strip_prefix("FINE: ").unwrap_or(raw);
    let channel = rest.strip_prefix("[id: ")?;
    let close = channel.find("] ")?;
    let (channel, said) = (&channel[..close], &channel[close + 2..]);
    let (id, addresses) = channel.split_once(", ")?;
    let remote = addresses.rsplit_once("R:")?.1;
    if !id.starts_with("0x") || remote.is_empty() {
        return None;
    }
    Some((format!("{id} R:{remote}"), said, remote))
}

/// What a connection error's GO_AWAY says the error was: `Connection
/// reset` (and `Connection reset by peer`), the message of the exception
/// Netty closed the connection for, which the frame logger prints as hex
/// after `bytes=`.
const RESET_MESSAGE: &[u8] = b"Connection reset";

/// A grpc-java frame line that says its connection was reset: a GO_AWAY
/// whose debug data is the reset's message. The destination is the remote
/// address (`127.0.0.1:39015`, without Netty's leading `/`).
///
/// ```
/// use thawtrace_analyzers::parse::{grpc_java, NetCause, RawText};
/// let f = grpc_java::reset(RawText::Plain(
///     "FINE: [id: 0x89667c7c, L:/127.0.0.1:50502 - R:/127.0.0.1:39015] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=2 length=16 bytes=436f6e6e656374696f6e207265736574",
/// )).unwrap();
/// assert_eq!(f.cause, NetCause::Reset);
/// assert_eq!(f.destination.as_deref(), Some("127.0.0.1:39015"));
/// ```
pub fn reset(text: RawText<'_>) -> Option<NetFailure> {
    let (_, said, remote) = frame(text.raw())?;
    let hex = said
        .strip_prefix("OUTBOUND GO_AWAY: ")?
        .rsplit_once("bytes=")?
        .1;
    let hex = hex.as_bytes().get(..RESET_MESSAGE.len() * 2)?;
    let decoded = hex
        .chunks_exact(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok());
    if !decoded.eq(RESET_MESSAGE.iter().map(|&b| Some(b))) {
        return None;
    }
    let remote = remote.trim_start_matches('/');
    let remote = match text {
        RawText::Plain(_) => remote.to_owned(),
        RawText::JsonEscaped(_) => super::unescape_json(remote).into_owned(),
    };
    Some(NetFailure {
        cause: NetCause::Reset,
        destination: Some(remote).filter(|r| !r.is_empty()),
    })
}

/// Whether a message may be a grpc-java channel trace line (its first
/// bytes).
#[inline]
pub fn is_trace_line(raw: &str) -> bool {
    let rest = raw
        .strip_prefix("FINEST: ")
        .or_else(|| raw.strip_prefix("FINER: "))
        .unwrap_or(raw);
    rest.starts_with("[NettyClientTransport<")
}

/// A connect in a grpc-java channel trace line (`FINEST:
/// [NettyClientTransport<4>: (/127.0.0.1:47124)] WaitUntilActive
/// started`): its destination (the address after Netty's `host/`) and
/// whether it got through (`completed`).
///
/// ```
/// use thawtrace_analyzers::parse::{grpc_java, RawText};
/// let line = "FINEST: [NettyClientTransport<4>: (localhost/127.0.0.1:47124)] WaitUntilActive started";
/// assert_eq!(grpc_java::connect(RawText::Plain(line)), Some(("127.0.0.1:47124".to_owned(), false)));
/// ```
pub fn connect(text: RawText<'_>) -> Option<(String, bool)> {
    let raw = text.raw();
    let rest = raw
        .strip_prefix("FINEST: ")
        .or_else(|| raw.strip_prefix("FINER: "))
        .unwrap_or(raw);
    let rest = rest.strip_prefix("[NettyClientTransport<")?;
    let (_, rest) = rest.split_once(">: (")?;
    let (address, said) = rest.split_once(")] ")?;
    let done = match said.trim_end() {
        "WaitUntilActive started" => false,
        "WaitUntilActive completed" => true,
        _ => return None,
    };
    let destination = address.rsplit('/').next().unwrap_or(address);
    if destination.is_empty() {
        return None;
    }
    let destination = match text {
        RawText::Plain(_) => destination.to_owned(),
        RawText::JsonEscaped(_) => super::unescape_json(destination).into_owned(),
    };
    Some((destination, done))
}

/// Parses a grpc-java frame line; `None` for any other message (and for a
/// reset's GO_AWAY: [`reset`]).
///
/// ```
/// use thawtrace_analyzers::parse::{grpc_java, KeepaliveEvent, RawText};
/// let k = grpc_java::parse(RawText::Plain(
///     "FINE: [id: 0x3ae714ae, L:/127.0.0.1:58132 - R:/127.0.0.1:42807] OUTBOUND PING: ack=false bytes=1111",
/// )).unwrap();
/// assert_eq!(k.connection, "0x3ae714ae R:/127.0.0.1:42807");
/// assert_eq!(k.event, KeepaliveEvent::PingSent { ping_id: None, timeout_ms: None });
/// ```
pub fn parse(text: RawText<'_>) -> Option<Keepalive> {
    let (connection, said, _) = frame(text.raw())?;
    let (after, frame) = FRAMES
        .iter()
        .find_map(|&(t, frame)| Some((said.strip_prefix(t)?, frame)))?;
    let event = match frame {
        Frame::Ping if after.trim_end() == KEEPALIVE_PAYLOAD => KeepaliveEvent::PingSent {
            ping_id: None,
            timeout_ms: None,
        },
        Frame::Ack if after.trim_end() == KEEPALIVE_PAYLOAD => {
            KeepaliveEvent::PingAck { ping_id: None }
        }
        Frame::GoAway if reset(text).is_none() => KeepaliveEvent::ClientClosed,
        Frame::GoAway | Frame::Ping | Frame::Ack => return None,
    };
    let connection = match text {
        RawText::Plain(_) => connection,
        RawText::JsonEscaped(_) => super::unescape_json(&connection).into_owned(),
    };
    Some(Keepalive {
        library: Library::GrpcJava,
        connection,
        transport: None,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> Option<(String, KeepaliveEvent)> {
        parse(RawText::Plain(line)).map(|k| (k.connection, k.event))
    }

    #[test]
    fn recorded_lines() {
        // grpc-java 1.41.3 with Netty 4.1.48 (tests/fixtures/recorded-java).
        assert_eq!(
            event(
                "FINE: [id: 0xceaabf1d, L:/127.0.0.1:51166 - R:/127.0.0.1:46817] INBOUND PING: ack=true bytes=1111"
            ),
            Some((
                "0xceaabf1d R:/127.0.0.1:46817".into(),
                KeepaliveEvent::PingAck { ping_id: None }
            ))
        );
        assert_eq!(
            event(
                "FINE: [id: 0x3ae714ae, L:/127.0.0.1:58132 - R:/127.0.0.1:42807] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=0 length=0 bytes="
            ),
            Some((
                "0x3ae714ae R:/127.0.0.1:42807".into(),
                KeepaliveEvent::ClientClosed
            ))
        );
        // A closed channel prints ` ! ` between its addresses: same key.
        assert_eq!(
            event(
                "FINE: [id: 0x3ae714ae, L:/127.0.0.1:58132 ! R:/127.0.0.1:42807] INBOUND PING: ack=true bytes=1111"
            )
            .map(|(c, _)| c),
            Some("0x3ae714ae R:/127.0.0.1:42807".into())
        );
        // Flow-control (BDP) pings have no ack timeout: not keepalive.
        assert_eq!(
            event(
                "FINE: [id: 0xceaabf1d, L:/127.0.0.1:51166 - R:/127.0.0.1:46817] OUTBOUND PING: ack=false bytes=1234"
            ),
            None
        );
        assert_eq!(
            event(
                "FINE: [id: 0xceaabf1d, L:/127.0.0.1:51166 - R:/127.0.0.1:46817] INBOUND PING: ack=false bytes=-4519466446095123082"
            ),
            None
        );
        // Other frames, the JUL header line, the function's own lines.
        assert_eq!(
            event(
                "FINE: [id: 0x3ae714ae, L:/127.0.0.1:58132 - R:/127.0.0.1:42807] OUTBOUND RST_STREAM: streamId=7 errorCode=8"
            ),
            None
        );
        assert_eq!(
            event(
                "Dec 06, 2026 2:36:58 PM io.netty.handler.codec.http2.Http2FrameLogger logGoAway"
            ),
            None
        );
        assert_eq!(event("FINE: Window: 1048576"), None);
        assert_eq!(event("FINE: [id: 0x3ae714ae"), None);
        assert_eq!(event("[id: ] x"), None);
    }

    #[test]
    fn a_reset_is_a_network_failure_not_a_close() {
        // grpc-java 1.41.3 (tests/fixtures/recorded-java-snapstart,
        // recorded-nat-java): the connection met a TCP reset.
        let line = "FINE: [id: 0x89667c7c, L:/127.0.0.1:50502 - R:/127.0.0.1:39015] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=2 length=16 bytes=436f6e6e656374696f6e207265736574";
        assert_eq!(event(line), None);
        assert_eq!(
            reset(RawText::Plain(line)),
            Some(NetFailure {
                cause: NetCause::Reset,
                destination: Some("127.0.0.1:39015".into())
            })
        );
        // `Connection reset by peer`, and a JSON-escaped line.
        assert!(
            reset(RawText::JsonEscaped(
                "FINE: [id: 0x1, L:/10.0.0.1:1 - R:/10.0.0.2:443] OUTBOUND GO_AWAY: lastStreamId=3 errorCode=2 length=24 bytes=436f6e6e656374696f6e2072657365742062792070656572"
            ))
            .is_some()
        );
        // Other debug data, none, short or not hex, or the server's: not
        // a reset.
        for other in [
            "FINE: [id: 0x1, L:/10.0.0.1:1 - R:/10.0.0.2:443] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=0 length=0 bytes=",
            "FINE: [id: 0x1, L:/10.0.0.1:1 - R:/10.0.0.2:443] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=2 length=11 bytes=42726f6b656e2070697065",
            "FINE: [id: 0x1, L:/10.0.0.1:1 - R:/10.0.0.2:443] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=2 length=2 bytes=436f",
            "FINE: [id: 0x1, L:/10.0.0.1:1 - R:/10.0.0.2:443] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=2 length=16 bytes=\u{e9}36f6e6e656374696f6e207265736574",
            "FINE: [id: 0x1, L:/10.0.0.1:1 - R:/10.0.0.2:443] INBOUND GO_AWAY: lastStreamId=0 errorCode=2 length=16 bytes=436f6e6e656374696f6e207265736574",
        ] {
            assert_eq!(reset(RawText::Plain(other)), None, "{other}");
        }
    }

    #[test]
    fn connects_in_the_channel_trace() {
        // grpc-java 1.41.3, io.grpc.ChannelLogger at FINEST.
        let c = |line| connect(RawText::Plain(line));
        assert_eq!(
            c("FINEST: [NettyClientTransport<4>: (/127.0.0.1:47124)] WaitUntilActive started"),
            Some(("127.0.0.1:47124".into(), false))
        );
        assert_eq!(
            c("FINEST: [NettyClientTransport<4>: (/127.0.0.1:47124)] WaitUntilActive completed"),
            Some(("127.0.0.1:47124".into(), true))
        );
        // Current upstream prints `completed` at FINER (not recorded).
        assert_eq!(
            c("FINER: [NettyClientTransport<4>: (/127.0.0.1:47124)] WaitUntilActive completed"),
            Some(("127.0.0.1:47124".into(), true))
        );
        assert_eq!(
            c("[NettyClientTransport<12>: (localhost/127.0.0.1:443)] WaitUntilActive started"),
            Some(("127.0.0.1:443".into(), false))
        );
        for other in [
            "FINEST: [Subchannel<3>: (127.0.0.1:47124)] Started transport NettyClientTransport<4>: (/127.0.0.1:47124)",
            "FINEST: [NettyClientTransport<4>: (/127.0.0.1:47124)] ClientTlsHandler started",
            "FINEST: [NettyClientTransport<4>: (/)] WaitUntilActive started",
            "FINEST: [NettyClientTransport<4>: (/127.0.0.1:47124",
            "FINEST: [NettyClientTransport<",
        ] {
            assert_eq!(c(other), None, "{other}");
        }
    }

    #[test]
    fn a_failed_call_names_its_status_and_remote_address() {
        // The recorded function's own line (tests/fixtures/recorded-java-snapstart,
        // text format: no prefix).
        let line = crate::parse::parse_line(
            RawText::Plain(
                "echo call 0 failed: DEADLINE_EXCEEDED: deadline exceeded after 1.999424365s. [closed=[], open=[[remote_addr=/127.0.0.1:44209]]] (order c47b3b1c)",
            ),
            false,
        );
        let crate::parse::LineKind::CallFailed(f) = line.kind else {
            panic!("{:?}", line.kind)
        };
        assert_eq!(f.code, Some("DEADLINE_EXCEEDED"));
        let net = f.net.unwrap();
        assert_eq!(net.cause, NetCause::DeadlineExceeded);
        assert_eq!(net.destination.as_deref(), Some("127.0.0.1:44209"));
    }

    #[test]
    fn message_only_layout() {
        // Not recorded: a SimpleFormatter format of `%5$s%n` prints the
        // message alone.
        assert_eq!(
            event(
                "[id: 0x3ae714ae, L:/127.0.0.1:58132 - R:/127.0.0.1:42807] OUTBOUND PING: ack=false bytes=1111"
            )
            .map(|(_, e)| e),
            Some(KeepaliveEvent::PingSent {
                ping_id: None,
                timeout_ms: None
            })
        );
    }
}
