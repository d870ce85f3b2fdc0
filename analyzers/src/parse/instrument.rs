//! Events of `thawtrace-instrument` (Rust functions using tonic), as
//! `tracing-subscriber`'s `fmt` layer writes them, text or JSON.
//!
//! | output | real example |
//! |---|---|
//! | text | `2026-11-28T08:40:11.482061Z  INFO thawtrace{request_id="8e7f0d5a-…" between_invocations=false}: thawtrace: keepalive ping sent event="ping_sent" conn=1 peer=127.0.0.1:41625 ping=3 request_id="8e7f0d5a-…" between_invocations=false` |
//! | JSON | `{"timestamp":"2026-11-28T08:40:11.482061Z","level":"INFO","fields":{"message":"keepalive ping sent","event":"ping_sent","conn":1,"peer":"127.0.0.1:41625","ping":3,"request_id":"8e7f0d5a-…","between_invocations":false},"target":"thawtrace",…}` |
//!
//! | `event` | meaning |
//! |---|---|
//! | `ping_sent` | PING sent on connection `conn` |
//! | `ping_ack` | its ack read |
//! | `keepalive_timeout` | hyper closed the connection with the PING unanswered |
//! | `thaw` | logged at an invocation's start after a freeze, with `frozen_ms` |
//! | `restore` | logged when a SnapStart snapshot was restored |
//!
//! The connection key is `#<conn> <peer>`. The `request_id` field is what the
//! instrument knew when the event fired: at a thaw it can still be the
//! previous invocation's, like any printed ID.

use memchr::memmem;

use super::{
    Keepalive, KeepaliveEvent, Library, Lifecycle, Line, LineKind, RawText, request_id_prefix,
};

const EVENTS: &[(&str, KeepaliveEvent)] = &[
    (
        "ping_sent",
        KeepaliveEvent::PingSent {
            ping_id: None,
            timeout_ms: None,
        },
    ),
    ("ping_ack", KeepaliveEvent::PingAck { ping_id: None }),
    ("keepalive_timeout", KeepaliveEvent::PingTimeout),
];

/// The value of `key=value` / `key="value"` in fmt's text output.
fn text_field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = memmem::find(&s.as_bytes()[from..], key.as_bytes()) {
        let start = from + at;
        let after = start + key.len();
        from = after;
        let boundary = start == 0 || s.as_bytes()[start - 1] == b' ';
        if !boundary || s.as_bytes().get(after) != Some(&b'=') {
            continue;
        }
        let v = &s[after + 1..];
        return Some(
            match v.strip_prefix('"').or_else(|| v.strip_prefix("\\\"")) {
                Some(q) => &q[..q.find(['"', '\\']).unwrap_or(q.len())],
                None => &v[..v.find([' ', '\\']).unwrap_or(v.len())],
            },
        );
    }
    None
}

fn keepalive(event: &str, conn: &str, peer: &str) -> Option<Keepalive> {
    let (_, e) = EVENTS.iter().find(|(name, _)| *name == event)?;
    Some(Keepalive {
        library: Library::Tonic,
        connection: format!("#{conn} {peer}"),
        transport: None,
        event: e.clone(),
    })
}

/// The connections a `restore` event (text or JSON, escaped or not) says
/// the snapshot carried over, as connection keys (`#<conn> <peer>`).
///
/// ```
/// use thawtrace_analyzers::parse::instrument::restored_connections;
/// let text = r#"2026-12-06T11:46:13.630065Z  INFO thawtrace: restored from a SnapStart snapshot event="restore" conns=1,3 peers=127.0.0.1:41409,10.0.0.7:443 request_id="-" between_invocations=false"#;
/// assert_eq!(restored_connections(text), ["#1 127.0.0.1:41409", "#3 10.0.0.7:443"]);
/// let json = r#"{"fields":{"message":"restored from a SnapStart snapshot","event":"restore","conns":"1","peers":"127.0.0.1:37401"},"target":"thawtrace"}"#;
/// assert_eq!(restored_connections(json), ["#1 127.0.0.1:37401"]);
/// assert!(restored_connections(r#"event="restore" conns=- peers=-"#).is_empty());
/// ```
pub fn restored_connections(raw: &str) -> Vec<String> {
    fn value<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
        let at = memmem::find(raw.as_bytes(), key.as_bytes())?;
        let rest = raw[at + key.len()..].trim_start_matches(['"', '\\']);
        let rest = rest
            .strip_prefix('=')
            .or_else(|| rest.strip_prefix(':'))?
            .trim_start_matches(['"', '\\']);
        Some(&rest[..rest.find(['"', '\\', ' ']).unwrap_or(rest.len())])
    }
    let (Some(conns), Some(peers)) = (value(raw, "conns"), value(raw, "peers")) else {
        return Vec::new();
    };
    if conns == "-" {
        return Vec::new();
    }
    conns
        .split(',')
        .zip(peers.split(','))
        .take(64)
        .map(|(c, p)| format!("#{c} {p}"))
        .collect()
}

/// Parses an instrument text line; `None` when the line is not one.
pub fn parse_text(text: RawText<'_>) -> Option<Line<'_>> {
    let raw = text.raw();
    let at = memmem::find(raw.as_bytes(), b" thawtrace: ")?;
    let fields = &raw[at..];
    let printed = text_field(fields, "request_id").and_then(request_id_prefix);
    let kind = match (
        text_field(fields, "event"),
        text_field(fields, "conn"),
        text_field(fields, "peer"),
    ) {
        (Some("thaw"), _, _) => text_field(fields, "frozen_ms")
            .and_then(|v| v.parse().ok())
            .map_or(LineKind::Other, LineKind::Thaw),
        (Some("restore"), _, _) => LineKind::Lifecycle(Lifecycle::Restore),
        (Some(event), Some(conn), Some(peer)) => {
            keepalive(event, conn, peer).map_or(LineKind::Other, LineKind::Keepalive)
        }
        _ => LineKind::Other,
    };
    Some(Line {
        kind,
        printed_request_id: printed,
    })
}

/// Parses an instrument JSON line (fmt's `.json()`); `None` when not one.
pub fn parse_json(text: RawText<'_>) -> Option<Line<'_>> {
    let raw = text.raw();
    let b = raw.as_bytes();
    // Asked of every JSON line: the searchers are built once.
    static TARGET: std::sync::LazyLock<[memmem::Finder<'static>; 2]> =
        std::sync::LazyLock::new(|| {
            [
                memmem::Finder::new(b"\"target\":\"thawtrace\""),
                memmem::Finder::new(br#"\"target\":\"thawtrace\""#),
            ]
        });
    TARGET.iter().find_map(|f| f.find(b))?;
    #[derive(serde::Deserialize)]
    struct Fields {
        event: Option<String>,
        conn: Option<serde_json::Value>,
        peer: Option<String>,
        frozen_ms: Option<i64>,
    }
    #[derive(serde::Deserialize)]
    struct Record {
        fields: Fields,
    }
    let decoded = text.unescape();
    let record: Record = serde_json::from_str(&decoded).ok()?;
    let printed = super::platform::json_string_field(raw, "request_id");
    if record.fields.event.as_deref() == Some("restore") {
        return Some(Line {
            kind: LineKind::Lifecycle(Lifecycle::Restore),
            printed_request_id: printed,
        });
    }
    if record.fields.event.as_deref() == Some("thaw") {
        return Some(Line {
            kind: record
                .fields
                .frozen_ms
                .map_or(LineKind::Other, LineKind::Thaw),
            printed_request_id: printed,
        });
    }
    let conn = match record.fields.conn? {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s,
        _ => return None,
    };
    let k = keepalive(
        record.fields.event.as_deref()?,
        &conn,
        record.fields.peer.as_deref()?,
    )?;
    Some(Line {
        kind: LineKind::Keepalive(k),
        printed_request_id: printed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json() {
        let t = r#"2026-11-28T08:40:11.482061Z  INFO thawtrace{request_id="8e7f0d5a-3f22-47b4-990a-cf35686f07bb" between_invocations=false}: thawtrace: keepalive ping sent event="ping_sent" conn=1 peer=127.0.0.1:41625 ping=3 request_id="8e7f0d5a-3f22-47b4-990a-cf35686f07bb" between_invocations=false"#;
        let l = parse_text(RawText::Plain(t)).unwrap();
        assert_eq!(
            l.printed_request_id,
            Some("8e7f0d5a-3f22-47b4-990a-cf35686f07bb")
        );
        let LineKind::Keepalive(k) = l.kind else {
            panic!()
        };
        assert_eq!(k.connection, "#1 127.0.0.1:41625");
        let escaped = t.replace('"', "\\\"");
        let l = parse_text(RawText::JsonEscaped(&escaped)).unwrap();
        assert!(matches!(l.kind, LineKind::Keepalive(_)));

        let j = r#"{"timestamp":"2026-11-28T08:40:11.482061Z","level":"WARN","fields":{"message":"connection closed by keepalive: ping unanswered","event":"keepalive_timeout","conn":1,"peer":"127.0.0.1:41625","outstanding_ms":2283,"request_id":"-","between_invocations":false},"target":"thawtrace"}"#;
        let l = parse_json(RawText::Plain(j)).unwrap();
        let LineKind::Keepalive(k) = l.kind else {
            panic!()
        };
        assert_eq!(k.event, KeepaliveEvent::PingTimeout);
    }

    #[test]
    fn other_lines() {
        assert!(parse_text(RawText::Plain("2026-11-28T08:40:11Z INFO lambda: hello")).is_none());
        let l = parse_text(RawText::Plain(
            r#"x INFO thawtrace: connected event="connect_done" conn=1 peer=1.2.3.4:5"#,
        ))
        .unwrap();
        assert_eq!(l.kind, LineKind::Other);
    }

    #[test]
    fn thaw_events_text_and_json() {
        let t = r#"2026-11-28T08:28:16.358911Z  INFO Lambda runtime invoke{requestId="e5ad8bd3-f579-4c12-ac59-0270dd6cff93"}: thawtrace: thawed after the previous invocation event="thaw" request_id="e5ad8bd3-f579-4c12-ac59-0270dd6cff93" previous_request_id="06e965b5-9bab-4cc6-95f0-d0b7746933aa" frozen_ms=525"#;
        let line = parse_text(RawText::Plain(t)).unwrap();
        assert_eq!(line.kind, LineKind::Thaw(525));
        assert_eq!(
            line.printed_request_id,
            Some("e5ad8bd3-f579-4c12-ac59-0270dd6cff93")
        );
        let j = r#"{"timestamp":"2026-11-28T08:28:16.358911Z","level":"INFO","fields":{"message":"thawed after the previous invocation","event":"thaw","request_id":"1ea2ba07-2d2f-4d0b-8ce7-5c6cb7338d5d","previous_request_id":"ff93e30c-9f1a-406d-88a0-bada5e6a0e88","frozen_ms":450},"target":"thawtrace"}"#;
        let line = parse_json(RawText::Plain(j)).unwrap();
        assert_eq!(line.kind, LineKind::Thaw(450));
        assert_eq!(
            line.printed_request_id,
            Some("1ea2ba07-2d2f-4d0b-8ce7-5c6cb7338d5d")
        );
    }
}
