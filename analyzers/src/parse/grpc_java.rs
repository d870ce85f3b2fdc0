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
//! | `OUTBOUND PING: ack=false bytes=1234` | `FINE: [id: 0xceaabf1d, L:/127.0.0.1:51166 - R:/127.0.0.1:46817] OUTBOUND PING: ack=false bytes=1234` | a flow-control (BDP) PING: no ack timeout, not read |
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
//! format of `%5$s%n`) is read too. Not read: other formats (log4j2 or
//! SLF4J layouts through a JUL bridge), which put their own prefix first.

use super::{Keepalive, KeepaliveEvent, Library, RawText};

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

/// Parses a grpc-java frame line; `None` for any other message.
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
    let raw = text.raw();
    let rest = raw.strip_prefix("FINE: ").unwrap_or(raw);
    let channel = rest.strip_prefix("[id: ")?;
    let close = channel.find("] ")?;
    let (channel, said) = (&channel[..close], &channel[close + 2..]);
    let (id, addresses) = channel.split_once(", ")?;
    let remote = addresses.rsplit_once("R:")?.1;
    if !id.starts_with("0x") || remote.is_empty() {
        return None;
    }
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
        Frame::GoAway => KeepaliveEvent::ClientClosed,
        Frame::Ping | Frame::Ack => return None,
    };
    let connection = format!("{id} R:{remote}");
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
