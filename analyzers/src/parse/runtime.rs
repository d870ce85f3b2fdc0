//! Lambda runtime prefixes and JSON application lines.
//!
//! | runtime | pattern | real example |
//! |---|---|---|
//! | Node.js, text | `<ISO ts>\t<requestId>\t<LEVEL>\t<message>` | `2026-11-28T08:07:13.137Z\t8a49e3f9-5c42-4f16-b87e-231ae818d4de\tERROR\tD 2026-11-28T08:07:13.137Z \| v1.14.7 2257 \| keepalive \| (2) 127.0.0.1:45905 Ping timeout passed without response` |
//! | Python, text | `[LEVEL]\t<ISO ts>\t<requestId>\t<message>` | `[ERROR]\t2026-11-28T08:08:24.725Z\tca7beaa0-275c-4536-8ec4-a14510624461\techo call 0 failed: StatusCode.UNAVAILABLE Stream removed (ping timeout)` |
//! | JSON log format, Java | `{"timestamp","message","level","AWSRequestId"}` | `{"timestamp":"2026-12-06T14:40:02.118Z","message":"echo call 0 failed: UNAVAILABLE: Keepalive failed. The connection is likely gone","level":"ERROR","AWSRequestId":"…"}` (the runtime's `JsonLogFormatter`, mimicked by the recorder) |
//! | Java through Log4j 2, text | `<yyyy-MM-dd HH:mm:ss> <AWSRequestId> <LEVEL> <logger> - <message>` (AWS's documented layout; any date-first layout) | `2026-12-07 00:17:40 ebf81a51-271b-43a6-bf70-a0614a406265 ERROR Function - echo call 0 failed: UNAVAILABLE: Keepalive failed. The connection is likely gone` (Log4j 2.19, recorded) |
//! | JSON log format, Java through Log4j 2 | `{"timestamp","level","message","logger","AWSRequestId"}` (the Lambda appender's fields) | `{"timestamp":"2026-12-07T00:17:31.408Z","level":"DEBUG","message":"[id: 0x1b73c761, L:/127.0.0.1:39554 - R:/127.0.0.1:34643] OUTBOUND PING: ack=false bytes=1111","logger":"io.grpc.netty.NettyClientHandler"}` (grpc-java's frame, read as the bare frame) |
//! | JSON log format | `{"timestamp","level","requestId","message"}` | `{"timestamp":"2026-11-28T08:07:43.150Z","level":"INFO","message":"echo call 0 ok","logger":"root","requestId":"c462afd2-…"}` |
//!
//! Node.js prints `undefined` (Node <= 22) or `-` (Node 24, outside any
//! async context of an invocation) where no request ID is known.

use super::{Line, LineKind, RawText, parse_body, platform, request_id_prefix};

fn other(printed_request_id: Option<&str>) -> Line<'_> {
    Line {
        kind: LineKind::Other,
        printed_request_id,
    }
}

/// Splits off the next field up to the separator (a tab, or `\\t` in
/// JSON-escaped text): memchr, not a searcher built per call.
fn field<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let at = super::find_short(s.as_bytes(), sep.as_bytes())?;
    Some((&s[..at], &s[at + sep.len()..]))
}

/// [`field`], checking the widths the field usually has first: a compare
/// each instead of a search, with the same answer (no separator byte
/// comes before a width it takes).
fn field_of_width<'a>(s: &'a str, sep: &str, widths: &[usize]) -> Option<(&'a str, &'a str)> {
    let (b, first) = (s.as_bytes(), sep.as_bytes()[0]);
    // A separator is a byte or two: compared in place, not by memcmp.
    let at = |w: usize| {
        b.get(w..w + sep.len())
            .is_some_and(|r| r.iter().zip(sep.as_bytes()).all(|(x, y)| x == y))
    };
    for &w in widths {
        if at(w) && !has_byte(&b[..w], first) {
            return Some((&s[..w], &s[w + sep.len()..]));
        }
    }
    field(s, sep)
}

/// Whether `b` holds `c`: for the short fields of a line's prefix, eight
/// bytes a word in line, where `memchr`'s call and set-up cost more than
/// the search.
#[inline]
fn has_byte(b: &[u8], c: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let words = b.chunks_exact(8);
    let rest = words.remainder();
    words
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
        .any(|w| {
            // The classic zero-byte test on the word XOR c: exact for "any".
            let x = w ^ (ONES * u64::from(c));
            x.wrapping_sub(ONES) & !x & HIGH != 0
        })
        || rest.contains(&c)
}

fn body<'a>(text: RawText<'a>, s: &'a str) -> RawText<'a> {
    match text {
        RawText::Plain(_) => RawText::Plain(s),
        RawText::JsonEscaped(_) => RawText::JsonEscaped(s),
    }
}

/// Whether every byte is an ASCII letter, digit or `-` (a request ID's),
/// eight bytes a word: range tests on the word with its high bits set,
/// where no byte borrows from the next.
#[inline]
fn id_bytes(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    fn word_ok(w: u64) -> bool {
        // Bytes at least `c` (all bytes below 0x80): their high bit stays.
        let at_least = |w: u64, c: u8| ((w | HIGH) - ONES * u64::from(c)) & HIGH;
        let digit = at_least(w, b'0') & !at_least(w, b'9' + 1);
        // Upper case folded onto lower case: `A`–`Z` and `a`–`z` alone
        // land in `a`–`z`.
        let folded = w | (ONES * 0x20);
        let letter = at_least(folded, b'a') & !at_least(folded, b'z' + 1);
        // The exact zero-byte test on the word XOR `-`.
        let x = w ^ (ONES * u64::from(b'-'));
        let dash = !(((x & !HIGH) + !HIGH) | x) & HIGH;
        w & HIGH == 0 && (digit | letter | dash) == HIGH
    }
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0x80; 8]));
    if b.len() < 8 {
        return b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-');
    }
    // Whole words, and the last eight bytes (overlapping) for the rest.
    b.chunks_exact(8).all(|c| word_ok(word(c))) && word_ok(word(&b[b.len() - 8..]))
}

/// A millisecond timestamp and a UUID request ID at the start of `s`,
/// each followed by the separator `tab`, compared in place: the request ID
/// and what follows it; `None` for anything else, which the field-by-field
/// reading takes, with the same answer where both read a line (no
/// separator byte in the timestamp, none possible in the ID).
#[inline(always)]
fn stamp_at_widths<'a>(s: &'a str, tab: &str) -> Option<(Option<&'a str>, &'a str)> {
    let (b, t) = (s.as_bytes(), tab.as_bytes());
    let sep_at = |i: usize| {
        b.get(i..i + t.len())
            .is_some_and(|r| r.iter().zip(t).all(|(x, y)| x == y))
    };
    let rid_at = 24 + t.len();
    if !sep_at(24) || !sep_at(rid_at + 36) || has_byte(&b[..24], t[0]) {
        return None;
    }
    // Its bytes hold no separator: the separators around it are ASCII,
    // so these are character boundaries.
    let rid = s.get(rid_at..rid_at + 36)?;
    if !id_bytes(rid.as_bytes()) {
        return None;
    }
    Some((Some(rid), &s[rid_at + 36 + t.len()..]))
}

/// The Node.js prefix at its usual widths (a millisecond timestamp, a
/// UUID, a level of four or five letters), compared in place; `None` for
/// anything else, which [`parse_node`]'s field-by-field reading takes,
/// with the same answer where both read a line.
#[inline(always)]
fn node_at_widths(text: RawText<'_>, want_failures: bool) -> Option<Line<'_>> {
    let t = text.tab().as_bytes();
    let (rid, rest) = stamp_at_widths(text.raw(), text.tab())?;
    let r = rest.as_bytes();
    let w = [4, 5]
        .into_iter()
        .find(|&w| r.get(w..w + t.len()).is_some_and(|s| s == t) && !has_byte(&r[..w], t[0]))?;
    let (level, msg) = (&rest[..w], &rest[w + t.len()..]);
    Some(parse_body(
        body(text, msg),
        rid,
        want_failures || level == "ERROR",
    ))
}

/// Node.js runtime text lines.
pub fn parse_node(text: RawText<'_>, want_failures: bool) -> Line<'_> {
    let raw = text.raw();
    let b = raw.as_bytes();
    if b.len() < 24 || b[4] != b'-' {
        return other(None);
    }
    if b[10] != b'T' {
        return if b[10] == b' ' {
            layout_line(text, want_failures)
        } else {
            other(None)
        };
    }
    if let Some(line) = node_at_widths(text, want_failures) {
        return line;
    }
    let tab = text.tab();
    // A millisecond timestamp, a UUID, a level of four or five letters.
    let Some((_ts, rest)) = field_of_width(raw, tab, &[24]) else {
        return rust_fmt_line(text, want_failures);
    };
    let Some((rid, rest)) = field_of_width(rest, tab, &[36]) else {
        return other(None);
    };
    let printed = request_id_prefix(rid).filter(|id| id.len() == rid.len());
    let Some((level, msg)) = field_of_width(rest, tab, &[4, 5]) else {
        return other(printed);
    };
    parse_body(body(text, msg), printed, want_failures || level == "ERROR")
}

/// Logging frameworks' levels as their layouts print them (Log4j's and
/// Logback's `%p`, Python logging's `%(levelname)s`), bracketed or not:
/// how much each says about a failed call on its line.
const LEVELS: [(&str, Severity); 9] = [
    ("TRACE", Severity::Other),
    ("DEBUG", Severity::Other),
    ("INFO", Severity::Other),
    ("WARN", Severity::Warning),
    ("WARNING", Severity::Warning),
    ("ERROR", Severity::Error),
    ("SEVERE", Severity::Error),
    ("FATAL", Severity::Error),
    ("CRITICAL", Severity::Error),
];

#[derive(Clone, Copy, PartialEq)]
enum Severity {
    /// A failure is looked for only when asked.
    Other,
    /// A failure when the line prints a grpc-java status.
    Warning,
    /// A failure is looked for.
    Error,
}

/// A line a logging framework's layout begins with a `yyyy-MM-dd HH:mm:ss`
/// date (`,SSS` or `.SSS` may follow): Log4j 2 with the layout AWS
/// documents for Java functions, `%d{yyyy-MM-dd HH:mm:ss} %X{AWSRequestId}
/// %-5p %c{1} - %m%n`, where the runtime has put the invocation's request
/// ID in Log4j's ThreadContext (empty on other threads). Recorded with
/// Log4j 2.19:
///
/// ```text
/// 2026-12-07 00:17:40 ebf81a51-271b-43a6-bf70-a0614a406265 ERROR Function - echo call 0 failed: UNAVAILABLE: Keepalive failed. The connection is likely gone
/// ```
///
/// The request ID is a token between the date and the level, the level
/// the first of [`LEVELS`] among the next four tokens, the message what
/// follows the logger and its ` - ` (or else the level), looked at for a
/// failure at ERROR and above, or at WARN when it prints a grpc-java
/// status (`UNAVAILABLE: `); with no level, the whole line when it prints
/// one. grpc-java's own records behind such a layout are read before this
/// (`grpc_java::after_layout`). Kept out of line: the Node.js path is hot.
#[cold]
#[inline(never)]
fn layout_line(text: RawText<'_>, want_failures: bool) -> Line<'_> {
    let raw = text.raw();
    let b = raw.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    if b.len() < 21
        || !digits.iter().all(|&i| b[i].is_ascii_digit())
        || b[7] != b'-'
        || b[13] != b':'
        || b[16] != b':'
    {
        return other(None);
    }
    let mut at = 19;
    if b.len() > 23 && matches!(b[19], b',' | b'.') && b[20..23].iter().all(u8::is_ascii_digit) {
        at = 23;
    }
    let (mut printed, mut level) = (None, None);
    for _ in 0..4 {
        while b.get(at) == Some(&b' ') {
            at += 1;
        }
        let end = b[at..]
            .iter()
            .position(|&c| c == b' ')
            .map_or(b.len(), |n| at + n);
        if end == at {
            break;
        }
        // Bounded by spaces (ASCII) or the line's ends: character boundaries.
        let token = &raw[at..end];
        at = end;
        let bare = token.trim_start_matches('[').trim_end_matches(']');
        if let Some((_, severity)) = LEVELS.iter().find(|(l, _)| *l == bare) {
            level = Some(*severity);
            break;
        }
        if token.len() == 36 && id_bytes(token.as_bytes()) {
            printed = request_id_prefix(token);
        }
    }
    let Some(severity) = level else {
        // No level where one was looked for: the line as a whole.
        let rest = &raw[19..];
        let want = want_failures || super::grpc_java::names_status(rest);
        return parse_body(body(text, rest), printed, want);
    };
    // `%c{1} - %m`: the logger, then the message; without them, the rest.
    let tail = raw[at..].trim_start_matches(' ');
    let msg = match tail.split_once(' ') {
        Some((_logger, m)) if m.starts_with("- ") => &m[2..],
        _ => tail,
    };
    // As on the Java runtime's unprefixed lines, a grpc-java status is a
    // failed call, at WARN and above (a WARN `… failed: UNAVAILABLE: …`);
    // an INFO line that mentions one (`retried after UNAVAILABLE: …, ok`)
    // is not.
    let want = want_failures
        || match severity {
            Severity::Error => true,
            Severity::Warning => super::grpc_java::names_status(msg),
            Severity::Other => false,
        };
    parse_body(body(text, msg), printed, want)
}

/// A timestamped line without the Node.js prefix's tabs: a Rust function's
/// `tracing-subscriber` `fmt` line. Kept out of line: the Node.js path is hot.
#[cold]
#[inline(never)]
fn rust_fmt_line(text: RawText<'_>, want_failures: bool) -> Line<'_> {
    if let Some(line) = super::instrument::parse_text(text) {
        return line;
    }
    let raw = text.raw();
    // Lambda's own `<ts> <requestId> Task timed out after 9.00 seconds`.
    if let Some((rid, rest)) = raw
        .split_once(' ')
        .map(|(_, r)| r.split_once(' ').unwrap_or((r, "")))
        && rest.starts_with("Task timed out after ")
    {
        return Line {
            kind: LineKind::CallFailed(super::Failure {
                code: None,
                net: Some(super::NetFailure {
                    cause: super::NetCause::FunctionTimeout,
                    destination: None,
                }),
            }),
            printed_request_id: request_id_prefix(rid),
        };
    }
    let level = raw
        .split_once(' ')
        .map_or("", |(_, rest)| rest.trim_start());
    if want_failures || level.starts_with("ERROR") {
        return Line {
            kind: super::call_failure(&text.unescape())
                .map_or(LineKind::Other, LineKind::CallFailed),
            printed_request_id: None,
        };
    }
    other(None)
}

/// Python runtime text lines.
pub fn parse_python(text: RawText<'_>, want_failures: bool) -> Line<'_> {
    let raw = text.raw();
    let tab = text.tab();
    let Some(rest) = raw.strip_prefix('[') else {
        return other(None);
    };
    let Some((level, rest)) = field(rest, "]") else {
        return other(None);
    };
    if level.len() > 8 || !level.bytes().all(|c| c.is_ascii_uppercase()) {
        return other(None);
    }
    let Some(rest) = rest.strip_prefix(tab) else {
        // The runtime's own error line: `[ERROR] ReadTimeoutError: Read
        // timeout on endpoint URL: "…"` then the traceback.
        if level == "ERROR" && rest.starts_with(' ') {
            return Line {
                kind: super::call_failure(&text.unescape())
                    .map_or(LineKind::Other, LineKind::CallFailed),
                printed_request_id: None,
            };
        }
        return other(None);
    };
    let (printed, msg) = match stamp_at_widths(rest, tab) {
        Some(read) => read,
        None => {
            let Some((_ts, rest)) = field(rest, tab) else {
                return other(None);
            };
            let Some((rid, msg)) = field(rest, tab) else {
                return other(None);
            };
            (
                request_id_prefix(rid).filter(|id| id.len() == rid.len()),
                msg,
            )
        }
    };
    // Only DEBUG lines that open like an HTTP client's are unescaped.
    if level == "DEBUG"
        && (msg.starts_with("Starting new HTTP")
            || msg.starts_with("retry needed")
            || msg.starts_with("Retry needed")
            || msg.starts_with("http"))
        && let Some(kind) = super::http_client_debug(&body(text, msg).unescape())
    {
        return Line {
            kind,
            printed_request_id: printed,
        };
    }
    parse_body(body(text, msg), printed, want_failures || level == "ERROR")
}

/// JSON lines: platform records, or JSON-format application lines.
pub fn parse_json(text: RawText<'_>, want_failures: bool) -> Line<'_> {
    let raw = text.raw();
    if let Some(line) = platform::parse_json(raw) {
        return line;
    }
    if let Some(line) = super::instrument::parse_json(text) {
        return line;
    }
    // The Java runtime's records name it `AWSRequestId`.
    let printed = platform::json_string_field(raw, "requestId")
        .or_else(|| platform::json_string_field(raw, "AWSRequestId"));
    // Only a line that may hold a grpc-js trace (` | ` separators) or a
    // failure we are looking for is worth decoding.
    let b = raw.as_bytes();
    let maybe_trace = super::find_short(b, b" | ").is_some();
    let error = super::json_value_after_key(b, b"level", b"ERROR");
    let want_failures = want_failures || error;
    // botocore and urllib3 at DEBUG: the HTTP client's connection ledger.
    let debug = !error && super::json_value_after_key(b, b"level", b"DEBUG");
    if !maybe_trace && !want_failures && !debug {
        return other(printed);
    }
    #[derive(serde::Deserialize)]
    struct AppLine {
        message: Option<serde_json::Value>,
    }
    let decoded = text.unescape();
    let message = match serde_json::from_str::<AppLine>(&decoded) {
        Ok(AppLine {
            message: Some(serde_json::Value::String(s)),
        }) if debug => {
            // urllib3's connection ledger, or grpc-java's frames through
            // Log4j 2 in the JSON log format (the Lambda appender's
            // records: `"level":"DEBUG","message":"[id: 0x…] OUTBOUND PING:
            // …","logger":"io.grpc.netty.NettyClientHandler"`).
            match super::http_client_debug(&s)
                .or_else(|| super::grpc_java_record(RawText::Plain(&s)))
            {
                Some(kind) => {
                    return Line {
                        kind,
                        printed_request_id: printed,
                    };
                }
                None => s,
            }
        }
        Ok(AppLine {
            message: Some(serde_json::Value::String(s)),
        }) => s,
        // No top-level message (tracing's JSON nests it in `fields`): the
        // whole record is the text a failure is looked for in.
        _ if want_failures => {
            return Line {
                kind: super::call_failure(&decoded).map_or(LineKind::Other, LineKind::CallFailed),
                printed_request_id: printed,
            };
        }
        _ => return other(printed),
    };
    let line = parse_body(RawText::Plain(&message), printed, want_failures);
    // Log4j 2's records in the JSON log format carry a logged exception
    // in `errorType` and `errorMessage` (`logger.error("echo call 0
    // failed", e)`: the status only there): looked at when the message
    // says nothing.
    if want_failures
        && line.kind == LineKind::Other
        && super::find_short(decoded.as_bytes(), b"\"errorMessage\":").is_some()
        && let Some(failure) = super::call_failure(&decoded)
    {
        return Line {
            kind: LineKind::CallFailed(failure),
            printed_request_id: printed,
        };
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{KeepaliveEvent, LineKind};

    #[test]
    fn has_byte_is_contains() {
        // Every length up to five words, the byte at every place or none,
        // and neighbours that differ from it by one bit or by a borrow.
        for len in 0..41 {
            for c in [0u8, 1, b'\t', b'\\', 0x7f, 0x80, 0xff] {
                for at in 0..=len {
                    for fill in [c ^ 1, c.wrapping_add(1), c.wrapping_sub(1), 0, 0xff] {
                        let mut b = vec![fill; len];
                        if at < len {
                            b[at] = c;
                        }
                        assert_eq!(has_byte(&b, c), b.contains(&c), "{b:?} {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn id_bytes_is_the_byte_test() {
        let id = |b: &[u8]| b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-');
        for len in 0..41 {
            for at in 0..len {
                for c in 0..=255u8 {
                    let mut b = b"8a49e3f9-5c42-4f16-b87e-231ae818d4de-XYZ".to_vec();
                    b.truncate(len);
                    b[at] = c;
                    assert_eq!(id_bytes(&b), id(&b), "{b:?}");
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// The in-place reading of the usual widths gives what the
        /// field-by-field reading gives, on lines near the usual shape.
        #[test]
        fn node_at_widths_agrees_with_the_fields(
            ts in proptest::prop_oneof![
                3 => proptest::strategy::Just("2026-11-28T08:07:13.137Z".to_owned()),
                1 => "2026-11-28T08:07[:\t]13\\.13[0-9\t]Z\t?",
            ],
            rid in proptest::prop_oneof![
                3 => proptest::strategy::Just("8a49e3f9-5c42-4f16-b87e-231ae818d4de".to_owned()),
                1 => "[0-9a-fA-F\\-\t\\\\ ]{34,38}|undefined|-",
            ],
            level in "INFO|ERROR|WARN|DEBUG|[A-Z\t]{3,6}",
            msg in "D 2026-11-28T08:07:13.137Z \\| keepalive \\| \\(2\\) 127.0.0.1:1 Ping timeout passed without response|echo call 0 failed: 14 UNAVAILABLE: read ECONNRESET|[ -~\t]{0,40}",
            escaped in proptest::bool::ANY,
            want in proptest::bool::ANY,
        ) {
            let plain = format!("{ts}\t{rid}\t{level}\t{msg}");
            let esc = plain.replace('\\', "\\\\").replace('\t', "\\t");
            let text = if escaped { RawText::JsonEscaped(&esc) } else { RawText::Plain(&plain) };
            if let Some(fast) = node_at_widths(text, want) {
                proptest::prop_assert_eq!(fast, fields_only(text, want));
            }
            // The Python runtime's prefix from the same parts.
            let plain = format!("[{level}]\t{ts}\t{rid}\t{msg}");
            let esc = plain.replace('\\', "\\\\").replace('\t', "\\t");
            let text = if escaped { RawText::JsonEscaped(&esc) } else { RawText::Plain(&plain) };
            proptest::prop_assert_eq!(parse_python(text, want), python_fields_only(text, want));
        }
    }

    /// `parse_python`'s prefix read field by field, as before the in-place
    /// reading.
    fn python_fields_only(text: RawText<'_>, want_failures: bool) -> Line<'_> {
        let (raw, tab) = (text.raw(), text.tab());
        let Some((level, rest)) = raw.strip_prefix('[').and_then(|r| field(r, "]")) else {
            return other(None);
        };
        if level.len() > 8 || !level.bytes().all(|c| c.is_ascii_uppercase()) {
            return other(None);
        }
        let Some(rest) = rest.strip_prefix(tab) else {
            return parse_python(text, want_failures);
        };
        let Some((_ts, rest)) = field(rest, tab) else {
            return other(None);
        };
        let Some((rid, msg)) = field(rest, tab) else {
            return other(None);
        };
        let printed = request_id_prefix(rid).filter(|id| id.len() == rid.len());
        if level == "DEBUG" {
            return parse_python(text, want_failures);
        }
        parse_body(body(text, msg), printed, want_failures || level == "ERROR")
    }

    /// `parse_node` without the in-place reading.
    fn fields_only(text: RawText<'_>, want_failures: bool) -> Line<'_> {
        let raw = text.raw();
        let tab = text.tab();
        let (_ts, rest) = field_of_width(raw, tab, &[24]).unwrap();
        let Some((rid, rest)) = field_of_width(rest, tab, &[36]) else {
            return other(None);
        };
        let printed = request_id_prefix(rid).filter(|id| id.len() == rid.len());
        let Some((level, msg)) = field_of_width(rest, tab, &[4, 5]) else {
            return other(printed);
        };
        parse_body(body(text, msg), printed, want_failures || level == "ERROR")
    }

    #[test]
    fn node_prefix_escaped_and_plain() {
        let plain = "2026-11-28T08:07:13.137Z\t8a49e3f9-5c42-4f16-b87e-231ae818d4de\tERROR\tD 2026-11-28T08:07:13.137Z | v1.14.7 2257 | keepalive | (2) 127.0.0.1:45905 Ping timeout passed without response";
        let escaped = plain.replace('\t', "\\t");
        // Both are read in place.
        assert!(node_at_widths(RawText::Plain(plain), false).is_some());
        assert!(node_at_widths(RawText::JsonEscaped(&escaped), false).is_some());
        for line in [
            parse_node(RawText::Plain(plain), false),
            parse_node(RawText::JsonEscaped(&escaped), false),
        ] {
            assert_eq!(
                line.printed_request_id,
                Some("8a49e3f9-5c42-4f16-b87e-231ae818d4de")
            );
            let LineKind::Keepalive(k) = line.kind else {
                panic!("{line:?}")
            };
            assert_eq!(k.connection, "(2) 127.0.0.1:45905");
            assert_eq!(k.event, KeepaliveEvent::PingTimeout);
        }
    }

    #[test]
    fn botocore_and_urllib3_at_debug_in_the_json_log_format() {
        // The Python runtime's JSON format (AWS_LAMBDA_LOG_FORMAT=JSON), as
        // the recorder's runtime writes it, plain and inside a subscription
        // message.
        let rid = "c7038069-84c8-4999-a116-7d8fcf23cae8";
        let line = |msg: &str, logger: &str| {
            format!(
                r#"{{"timestamp": "2026-12-06T01:21:20.119Z", "level": "DEBUG", "message": "{msg}", "logger": "{logger}", "requestId": "{rid}"}}"#
            )
        };
        fn kind(l: &str) -> LineKind<'static> {
            let rid = "c7038069-84c8-4999-a116-7d8fcf23cae8";
            let plain = parse_json(RawText::Plain(l), false);
            let escaped = serde_json::to_string(l).unwrap();
            let escaped = parse_json(RawText::JsonEscaped(&escaped[1..escaped.len() - 1]), false);
            assert_eq!(plain, escaped);
            assert_eq!(plain.printed_request_id, Some(rid));
            match plain.kind {
                LineKind::Traffic(d) => LineKind::Traffic(d),
                LineKind::Opened(d) => LineKind::Opened(d),
                LineKind::Retrying => LineKind::Retrying,
                LineKind::CallFailed(f) => LineKind::CallFailed(f),
                LineKind::Other => LineKind::Other,
                k => panic!("{k:?}"),
            }
        }
        assert_eq!(
            kind(&line(
                "Starting new HTTP connection (1): 127.0.0.1:39933",
                "urllib3.connectionpool"
            )),
            LineKind::Opened("127.0.0.1:39933".into())
        );
        assert_eq!(
            kind(&line(
                r#"http://127.0.0.1:39933 \"GET /reports?list-type=2 HTTP/1.1\" 200 238"#,
                "urllib3.connectionpool"
            )),
            LineKind::Traffic("127.0.0.1:39933".into())
        );
        assert_eq!(
            kind(&line(
                "Retry needed, retrying request after delay of: 0.028",
                "botocore.retries.standard"
            )),
            LineKind::Retrying
        );
        let LineKind::CallFailed(f) = kind(&line(
            "Starting new HTTP connection (2): 127.0.0.1:39933",
            "urllib3.connectionpool",
        )) else {
            panic!()
        };
        assert_eq!(f.net.unwrap().cause, crate::parse::NetCause::Retried);
        // Other DEBUG lines stay what they were.
        assert_eq!(
            kind(&line("Event needs-retry.s3.ListObjects", "botocore.hooks")),
            LineKind::Other
        );
    }

    #[test]
    fn botocore_and_urllib3_at_debug_are_the_http_connection_ledger() {
        // Recorded from botocore 1.44 / urllib3 under the Python runtime.
        let rid = "c7038069-84c8-4999-a116-7d8fcf23cae8";
        let line = |msg: &str| format!("[DEBUG]\t2026-12-06T01:21:20.119Z\t{rid}\t{msg}");
        let kind = |msg: &str| {
            // Leaked: the parsed kind borrows the line, and this is a test.
            let raw: &'static str = Box::leak(line(msg).into_boxed_str());
            let escaped = raw.replace('\t', "\\t").replace('"', "\\\"");
            let plain = parse_python(RawText::Plain(raw), false).kind;
            assert_eq!(
                plain,
                parse_python(RawText::JsonEscaped(&escaped), false).kind,
                "{msg}"
            );
            plain
        };
        assert_eq!(
            kind("Starting new HTTP connection (1): 127.0.0.1:39933"),
            LineKind::Opened("127.0.0.1:39933".into())
        );
        assert_eq!(
            kind(
                r#"http://127.0.0.1:39933 "GET /reports?list-type=2&encoding-type=url HTTP/1.1" 200 238"#
            ),
            LineKind::Traffic("127.0.0.1:39933".into())
        );
        let LineKind::CallFailed(f) = kind("Starting new HTTP connection (2): 127.0.0.1:39933")
        else {
            panic!()
        };
        assert_eq!(f.net.unwrap().cause, crate::parse::NetCause::Retried);
        assert_eq!(
            kind("Retry needed, retrying request after delay of: 0.028323931710490153"),
            LineKind::Retrying
        );
        let LineKind::CallFailed(f) = kind(
            r#"retry needed, retryable exception caught: Connection was closed before we received a valid response from endpoint URL: "http://127.0.0.1:39933/reports?list-type=2&encoding-type=url"."#,
        ) else {
            panic!()
        };
        let net = f.net.unwrap();
        assert_eq!(net.cause, crate::parse::NetCause::Reset);
        assert_eq!(net.destination.as_deref(), Some("127.0.0.1:39933"));
        // Other DEBUG lines, and the same text at INFO, are nothing.
        assert_eq!(
            kind("Calculating signature using v4 auth."),
            LineKind::Other
        );
        let info = format!(
            "[INFO]\t2026-12-06T01:21:20.119Z\t{rid}\tStarting new HTTP connection (2): h:1"
        );
        assert_eq!(
            parse_python(RawText::Plain(&info), false).kind,
            LineKind::Other
        );
    }

    #[test]
    fn a_grpc_js_deadline_names_its_remote_address() {
        let raw = "2026-12-06T01:21:16.748Z\tbe6521cc-3e24-44e3-baf0-27bc08d6af57\tERROR\techo call 1 failed: 4 4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s,name resolution: 0.001s,remote_addr=127.0.0.1:42365";
        let LineKind::CallFailed(f) = parse_node(RawText::Plain(raw), false).kind else {
            panic!()
        };
        assert_eq!(f.code, Some("DEADLINE_EXCEEDED"));
        let net = f.net.unwrap();
        assert_eq!(net.cause, crate::parse::NetCause::DeadlineExceeded);
        assert_eq!(net.destination.as_deref(), Some("127.0.0.1:42365"));
    }

    #[test]
    fn node_without_request_id() {
        let l = parse_node(
            RawText::Plain("2026-11-28T08:06:53.077Z\tundefined\tINFO\thello"),
            false,
        );
        assert_eq!(l.printed_request_id, None);
        let l = parse_node(
            RawText::Plain("2026-11-28T08:06:53.077Z\t-\tINFO\thello"),
            false,
        );
        assert_eq!(l.printed_request_id, None);
    }

    #[test]
    fn failures_on_error_lines_or_when_asked() {
        let error = "[ERROR]\t2026-11-28T08:08:24.725Z\tca7beaa0-275c-4536-8ec4-a14510624461\techo call 0 failed: StatusCode.UNAVAILABLE Stream removed (ping timeout)";
        assert_eq!(
            parse_python(RawText::Plain(error), false).kind,
            LineKind::CallFailed(crate::parse::Failure::code("UNAVAILABLE"))
        );
        let info = error.replace("[ERROR]", "[INFO]");
        assert_eq!(
            parse_python(RawText::Plain(&info), false).kind,
            LineKind::Other
        );
        assert_eq!(
            parse_python(RawText::Plain(&info), true).kind,
            LineKind::CallFailed(crate::parse::Failure::code("UNAVAILABLE"))
        );
        let rust = r#"2026-11-28T08:30:17.035550Z ERROR Lambda runtime invoke{requestId="e3e297e5"}: lambda_grpc: echo call failed call=0 code=Unavailable http2 error"#;
        assert_eq!(
            parse_node(RawText::Plain(rust), false).kind,
            LineKind::CallFailed(crate::parse::Failure::code("UNAVAILABLE"))
        );
    }

    #[test]
    fn json_app_line_with_trace() {
        let s = r#"{"timestamp":"2026-11-28T08:07:13.137Z","level":"ERROR","message":"D 2026-11-28T08:07:13.137Z | v1.14.7 2257 | keepalive | (2) 127.0.0.1:45905 Sending ping with timeout 1000ms","requestId":"8a49e3f9-5c42-4f16-b87e-231ae818d4de"}"#;
        let escaped = serde_json::to_string(s).unwrap();
        let escaped = &escaped[1..escaped.len() - 1];
        for line in [
            parse_json(RawText::Plain(s), false),
            parse_json(RawText::JsonEscaped(escaped), false),
        ] {
            assert_eq!(
                line.printed_request_id,
                Some("8a49e3f9-5c42-4f16-b87e-231ae818d4de")
            );
            assert!(matches!(line.kind, LineKind::Keepalive(_)), "{line:?}");
        }
    }

    /// Lines a Log4j 2 layout begins with a date (recorded:
    /// tests/fixtures/recorded-java-log4j2, Log4j 2.19, the layout AWS
    /// documents): the function's own records read as the bare record
    /// would be, with the request ID the runtime put in the ThreadContext.
    #[test]
    fn log4j2_layout_lines_read_as_their_records() {
        use crate::parse::parse_line;
        let bare =
            "echo call 0 failed: UNAVAILABLE: Keepalive failed. The connection is likely gone";
        let error = format!(
            "2026-12-07 00:17:40 ebf81a51-271b-43a6-bf70-a0614a406265 ERROR Function - {bare}"
        );
        let line = parse_line(RawText::Plain(&error), false);
        assert_eq!(
            line.printed_request_id,
            Some("ebf81a51-271b-43a6-bf70-a0614a406265")
        );
        assert!(matches!(line.kind, LineKind::CallFailed(_)), "{line:?}");
        assert_eq!(line.kind, parse_line(RawText::Plain(bare), true).kind);
        // As a subscription's payload carries it, JSON-escaped.
        let escaped = parse_line(RawText::JsonEscaped(&error), false);
        assert_eq!(escaped, line);
        // A grpc-java status at WARN is a failed call too.
        let warn = error.replace(" ERROR ", " WARN  ");
        assert_eq!(parse_line(RawText::Plain(&warn), false).kind, line.kind);
        // At INFO: its request ID, and a failure only when looked for.
        let info = "2026-12-07 00:17:25 d29aabc9-7af6-44e1-aa16-a1c6d5cd0291 INFO  Function - echo call 1 ok";
        let line = parse_line(RawText::Plain(info), false);
        assert_eq!(line.kind, LineKind::Other);
        assert_eq!(
            line.printed_request_id,
            Some("d29aabc9-7af6-44e1-aa16-a1c6d5cd0291")
        );
        // Netty's threads: an empty ThreadContext, two spaces.
        let debug = "2026-12-07 00:17:24  DEBUG Utils - Epoll is not available, using Nio.";
        let line = parse_line(RawText::Plain(debug), true);
        assert_eq!(
            (line.kind, line.printed_request_id),
            (LineKind::Other, None)
        );
        // Other date-first layouts: milliseconds, no request ID, no logger.
        for other in [
            format!("2026-12-06 23:52:59,123 ERROR {bare}"),
            format!("2026-12-06 23:52:59.123 [main] FATAL c.e.Handler - {bare}"),
        ] {
            let line = parse_line(RawText::Plain(&other), false);
            assert_eq!(
                line.kind,
                parse_line(RawText::Plain(bare), true).kind,
                "{other}"
            );
        }
        // Python logging's level names, bracketed levels.
        for other in [
            format!("2026-12-07 00:17:40,123 - orders - CRITICAL - {bare}"),
            format!("2026-12-07 00:17:40 [ERROR] {bare}"),
            format!("2026-12-07 00:17:40,123 - orders - WARNING - {bare}"),
        ] {
            let line = parse_line(RawText::Plain(&other), false);
            assert!(matches!(line.kind, LineKind::CallFailed(_)), "{other}");
        }
        // At INFO, a line that mentions a status is not a failed call.
        let mentions = "2026-12-07 00:17:40 d29aabc9-7af6-44e1-aa16-a1c6d5cd0291 INFO  Function - retried after UNAVAILABLE: io exception, ok";
        assert_eq!(
            parse_line(RawText::Plain(mentions), false).kind,
            LineKind::Other
        );
        // No level among the first tokens: the whole line, a failure when
        // looked for or when it prints a grpc-java status.
        let no_level = format!("2026-12-07 00:17:40 - - - - {bare}");
        assert_eq!(
            parse_line(RawText::Plain(&no_level), false).kind,
            parse_line(RawText::Plain(bare), true).kind
        );
        let line = parse_line(RawText::Plain("2026-12-06 23:52:59 - - - - ERROR x"), false);
        assert_eq!(line.kind, LineKind::Other);
    }

    /// A failed call logged with its exception through Log4j 2 in the JSON
    /// log format (recorded: tests/fixtures/recorded-java-log4j2,
    /// `log4j2-json`): the status only in `errorMessage`.
    #[test]
    fn log4j2_json_records_name_a_logged_exceptions_status() {
        let record = r#"{"timestamp":"2026-12-07T00:17:32.414Z","level":"ERROR","message":"echo call 0 failed","logger":"Function","errorType":"io.grpc.StatusRuntimeException","errorMessage":"UNAVAILABLE: Keepalive failed. The connection is likely gone","AWSRequestId":"19f9bb4d-6e3d-49f0-b470-c0b71d6472c4"}"#;
        let line = crate::parse::parse_line(RawText::Plain(record), false);
        assert_eq!(
            line.printed_request_id,
            Some("19f9bb4d-6e3d-49f0-b470-c0b71d6472c4")
        );
        let LineKind::CallFailed(f) = line.kind else {
            panic!("{line:?}")
        };
        assert_eq!(f.code, Some("UNAVAILABLE"));
        // At INFO the exception is not looked at.
        let info = record.replace(r#""level":"ERROR""#, r#""level":"INFO""#);
        assert_eq!(
            crate::parse::parse_line(RawText::Plain(&info), false).kind,
            LineKind::Other
        );
    }

    /// grpc-java's frames through Log4j 2 in the JSON log format (recorded:
    /// tests/fixtures/recorded-java-log4j2, `log4j2-json`) read as the bare
    /// frame lines, escaped or not.
    #[test]
    fn log4j2_json_records_of_grpc_java_frames_read_as_the_frames() {
        use crate::parse::parse_line;
        for frame in [
            "[id: 0x1b73c761, L:/127.0.0.1:39554 - R:/127.0.0.1:34643] OUTBOUND PING: ack=false bytes=1111",
            "[id: 0x1b73c761, L:/127.0.0.1:39554 - R:/127.0.0.1:34643] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=0 length=0 bytes=",
        ] {
            let record = format!(
                r#"{{"timestamp":"2026-12-07T00:17:31.408Z","level":"DEBUG","message":"{frame}","logger":"io.grpc.netty.NettyClientHandler"}}"#
            );
            let bare = parse_line(RawText::Plain(frame), false);
            assert!(matches!(bare.kind, LineKind::Keepalive(_)), "{bare:?}");
            assert_eq!(parse_line(RawText::Plain(&record), false), bare);
            let escaped = record.replace('"', "\\\"");
            assert_eq!(parse_line(RawText::JsonEscaped(&escaped), false), bare);
        }
    }

    proptest::proptest! {
        /// Behind any date-first prefix, well formed or not, reading never
        /// panics; behind a well-formed one, an ERROR record reads as the
        /// bare record looked at for failures.
        #[test]
        fn log4j2_layout_lines_never_panic(
            date in proptest::prop_oneof![
                3 => r"2026-12-06 23:52:59([,.][0-9]{3})?",
                1 => r"[0-9]{4}-[0-9é ]{2}-[0-9:]{2} [0-9é]{2}:[0-9]{2}:[0-9 ]{2}[,.é]?[0-9]{0,3}",
            ],
            rid in r"(ebf81a51-271b-43a6-bf70-a0614a406265)?|[0-9a-fé\-]{30,40}",
            level in r"ERROR|FATAL|INFO|[A-Zé]{0,6}",
            logger in r"(Function - )?|[ -~é]{0,12}",
            msg in proptest::prop_oneof![
                proptest::strategy::Just(
                    "echo call 0 failed: UNAVAILABLE: Keepalive failed. The connection is likely gone".to_owned()
                ),
                proptest::strategy::Just(
                    "echo call 0 failed: DEADLINE_EXCEEDED: deadline exceeded after 1.999552113s. [closed=[], open=[[remote_addr=/127.0.0.1:44707]]]".to_owned()
                ),
                r"[ -~\t\\é]{0,40}",
            ],
            want in proptest::bool::ANY,
        ) {
            let raw = format!("{date} {rid} {level} {logger}{msg}");
            let line = crate::parse::parse_line(RawText::Plain(&raw), want);
            let _ = crate::parse::parse_line(RawText::JsonEscaped(&raw), want);
            if date.starts_with("2026-12-06 23:52:59")
                && matches!(level.as_str(), "ERROR" | "FATAL")
                && logger == "Function - "
                && (rid.is_empty() || rid.len() == 36)
                && !msg.contains("[id: 0x")
            {
                proptest::prop_assert_eq!(
                    line.kind,
                    crate::parse::parse_line(RawText::Plain(&msg), true).kind
                );
            }
        }
    }
}
