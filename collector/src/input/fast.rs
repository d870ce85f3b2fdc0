//! One pass over a CloudWatch Logs subscription message, as CloudWatch
//! writes it: a header of strings, then `logEvents`, an array of
//! `{"id","timestamp","message"}` objects. String ends are found with
//! `memchr2` (a quote or a backslash), messages are kept as they are in the
//! JSON (still escaped: most are never unescaped), nothing is allocated
//! but the events' vector.
//!
//! Anything else (another key, an escaped name, a fractional or string
//! timestamp, a syntax error) gives `None`, and the caller reads the text
//! the tolerant way, which names each problem. So this path accepts a
//! subset of what serde_json accepts, and reads it the same way.

/// A subscription message's header and events, borrowed from its text.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FastMessage<'a> {
    pub(crate) message_type: Option<&'a str>,
    pub(crate) log_group: Option<&'a str>,
    pub(crate) log_stream: Option<&'a str>,
    pub(crate) events: Vec<FastEvent<'a>>,
}

/// One log event: its ID, time (ms) and message (the JSON string's
/// content, escapes and all).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FastEvent<'a> {
    pub(crate) id: &'a str,
    pub(crate) timestamp: i64,
    pub(crate) message: &'a str,
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn ws(&mut self) {
        let b = self.bytes();
        while self.at < b.len() && matches!(b[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    /// Takes `c` (after whitespace).
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.bytes().get(self.at) == Some(&c)).then(|| self.at += 1)
    }

    /// After whitespace: true and past it if the next byte is `c`.
    fn peek_eat(&mut self, c: u8) -> bool {
        self.eat(c).is_some()
    }

    /// A string: its content, and whether it holds escapes.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let b = self.bytes();
        let start = self.at;
        let mut escaped = false;
        let mut from = start;
        loop {
            let i = from + memchr::memchr2(b'"', b'\\', &b[from..])?;
            if b[i] == b'"' {
                self.at = i + 1;
                // Quote positions are char boundaries of the text.
                return Some((&self.text[start..i], escaped));
            }
            escaped = true;
            // The escaped character (`\uXXXX`'s hex digits hold no quote).
            from = i + 2;
            if from > b.len() {
                return None;
            }
        }
    }

    /// A string without escapes: names and header values.
    fn plain(&mut self) -> Option<&'a str> {
        match self.string()? {
            (s, false) => Some(s),
            (_, true) => None,
        }
    }

    /// An integer that fits an i64 (no fraction, no exponent).
    fn integer(&mut self) -> Option<i64> {
        self.ws();
        let b = self.bytes();
        let start = self.at;
        let mut i = start + usize::from(b.get(start) == Some(&b'-'));
        let digits = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits || matches!(b.get(i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.at = i;
        self.text[start..i].parse().ok()
    }

    /// `[ "a", "b" ]`: strings, skipped.
    fn strings(&mut self) -> Option<()> {
        self.eat(b'[')?;
        if self.peek_eat(b']') {
            return Some(());
        }
        loop {
            self.string()?;
            if self.peek_eat(b']') {
                return Some(());
            }
            self.eat(b',')?;
        }
    }

    fn event(&mut self) -> Option<FastEvent<'a>> {
        self.eat(b'{')?;
        let (mut id, mut timestamp, mut message) = (None, None, None);
        if !self.peek_eat(b'}') {
            loop {
                let key = self.plain()?;
                self.eat(b':')?;
                let slot = match key {
                    "id" => id.replace(self.plain()?),
                    "timestamp" => timestamp.replace(self.integer()?).map(|_| ""),
                    "message" => message.replace(self.string()?.0),
                    _ => return None,
                };
                if slot.is_some() {
                    return None; // a key twice
                }
                if self.peek_eat(b'}') {
                    break;
                }
                self.eat(b',')?;
            }
        }
        Some(FastEvent {
            id: id?,
            timestamp: timestamp?,
            message: message?,
        })
    }

    fn events(&mut self, out: &mut Vec<FastEvent<'a>>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek_eat(b']') {
            return Some(());
        }
        // Events are ~300 bytes of JSON: a guess that saves the regrowth.
        out.reserve((self.text.len() - self.at) / 256);
        loop {
            out.push(self.event()?);
            if self.peek_eat(b']') {
                return Some(());
            }
            self.eat(b',')?;
        }
    }
}

/// Reads a subscription message in one pass, or `None` when the text needs
/// the tolerant path.
pub(crate) fn scan_message(text: &str) -> Option<FastMessage<'_>> {
    let mut c = Cursor { text, at: 0 };
    let mut m = FastMessage::default();
    let mut seen_events = false;
    c.eat(b'{')?;
    if !c.peek_eat(b'}') {
        loop {
            let key = c.plain()?;
            c.eat(b':')?;
            let twice = match key {
                "messageType" => m.message_type.replace(c.plain()?).is_some(),
                "logGroup" => m.log_group.replace(c.plain()?).is_some(),
                "logStream" => m.log_stream.replace(c.plain()?).is_some(),
                "owner" => c.plain().map(|_| false)?,
                "subscriptionFilters" => c.strings().map(|_| false)?,
                "logEvents" => {
                    c.events(&mut m.events)?;
                    std::mem::replace(&mut seen_events, true)
                }
                _ => return None,
            };
            if twice {
                return None;
            }
            if c.peek_eat(b'}') {
                break;
            }
            c.eat(b',')?;
        }
    }
    c.ws();
    (c.at == text.len() && seen_events).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MESSAGE: &str = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/orders","logStream":"2026/11/28/[$LATEST]b8b6","subscriptionFilters":["thawtrace"],"logEvents":[{"id":"3801","timestamp":1795853230000,"message":"START RequestId: a Version: $LATEST\n"},{"id":"3802","timestamp":1795853230001,"message":"tab\there \"quoted\" \\ \u00e9 é"}]}"#;

    #[test]
    fn a_message_as_cloudwatch_writes_it() {
        let m = scan_message(MESSAGE).unwrap();
        assert_eq!(m.message_type, Some("DATA_MESSAGE"));
        assert_eq!(m.log_group, Some("/aws/lambda/orders"));
        assert_eq!(m.log_stream, Some("2026/11/28/[$LATEST]b8b6"));
        assert_eq!(m.events.len(), 2);
        assert_eq!(m.events[0].id, "3801");
        assert_eq!(m.events[0].timestamp, 1_795_853_230_000);
        assert_eq!(
            m.events[0].message,
            r#"START RequestId: a Version: $LATEST\n"#
        );
        assert_eq!(m.events[1].message, r#"tab\there \"quoted\" \\ \u00e9 é"#);
    }

    #[test]
    fn whitespace_and_key_order_do_not_matter() {
        let pretty = r#" {
          "logEvents" : [ { "message" : "x" , "timestamp" : -5 , "id" : "e" } ] ,
          "logStream" : "s" , "logGroup" : "g" , "subscriptionFilters" : [ ] , "messageType" : "DATA_MESSAGE"
        } "#;
        let m = scan_message(pretty).unwrap();
        assert_eq!(m.log_group, Some("g"));
        assert_eq!(
            m.events,
            [FastEvent {
                id: "e",
                timestamp: -5,
                message: "x"
            }]
        );
    }

    #[test]
    fn what_it_leaves_to_the_tolerant_path() {
        for text in [
            r#"{"logEvents":[{"id":"e","timestamp":1.5,"message":"x"}]}"#,
            r#"{"logEvents":[{"id":"e","timestamp":"1","message":"x"}]}"#,
            r#"{"logEvents":[{"id":"e","timestamp":1,"message":"x","extractedFields":{}}]}"#,
            r#"{"logEvents":[{"id":"e","timestamp":1}]}"#,
            r#"{"logEvents":[{"id":"e","id":"f","timestamp":1,"message":"x"}]}"#,
            r#"{"logGroup":"a\/b","logEvents":[]}"#,
            r#"{"awslogs":{"data":"H4sI"}}"#,
            r#"{"logEvents":[{"id":"e","timestamp":1,"message":"x"}]} {}"#,
            r#"{"logEvents":[{"id":"e","timestamp":1,"message":"x\"}]}"#,
            r#"{"logEvents":[{"id":"e","timestamp":99999999999999999999,"message":"x"}]}"#,
            r#"{"logGroup":"g"}"#,
            r#"{"logEvents":[],"logEvents":[]}"#,
            "",
            "{",
        ] {
            assert_eq!(scan_message(text), None, "{text}");
        }
    }

    #[derive(serde::Deserialize)]
    struct Serde<'a> {
        #[serde(rename = "messageType", borrow, default)]
        message_type: Option<&'a str>,
        #[serde(rename = "logGroup", borrow, default)]
        log_group: Option<&'a str>,
        #[serde(rename = "logStream", borrow, default)]
        log_stream: Option<&'a str>,
        #[serde(rename = "logEvents", borrow)]
        log_events: Vec<SerdeEvent<'a>>,
    }

    #[derive(serde::Deserialize)]
    struct SerdeEvent<'a> {
        id: &'a str,
        timestamp: i64,
        #[serde(borrow)]
        message: &'a serde_json::value::RawValue,
    }

    proptest! {
        /// Whatever it accepts, serde_json reads the same way; and any
        /// message serde_json writes from such events, it accepts.
        #[test]
        fn it_agrees_with_serde_json(
            events in proptest::collection::vec(("[a-z0-9]{1,8}", any::<i64>(), any::<String>()), 0..6),
            group in "[/a-z0-9$\\[\\]]{0,12}",
            cut in any::<prop::sample::Index>(),
        ) {
            let events: Vec<serde_json::Value> = events
                .iter()
                .map(|(id, ts, m)| serde_json::json!({"id": id, "timestamp": ts, "message": m}))
                .collect();
            let text = serde_json::json!({"messageType": "DATA_MESSAGE", "logGroup": group, "logStream": "s", "logEvents": events}).to_string();
            let m = scan_message(&text).expect("a message as serde_json writes it");
            let s: Serde<'_> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(m.message_type, s.message_type);
            prop_assert_eq!(m.log_group, s.log_group);
            prop_assert_eq!(m.log_stream, s.log_stream);
            prop_assert_eq!(m.events.len(), s.log_events.len());
            for (a, b) in m.events.iter().zip(&s.log_events) {
                prop_assert_eq!(a.id, b.id);
                prop_assert_eq!(a.timestamp, b.timestamp);
                prop_assert_eq!(format!("\"{}\"", a.message), b.message.get());
            }
            // Cut short anywhere (at a char boundary): refused, or read as
            // serde_json reads it.
            let mut at = cut.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let short = &text[..at];
            if let Some(m) = scan_message(short) {
                let s: Serde<'_> = serde_json::from_str(short).expect("serde_json reads what the scan read");
                prop_assert_eq!(m.events.len(), s.log_events.len());
            }
        }

        /// Any text: no panic.
        #[test]
        fn no_panic_on_any_text(text in any::<String>()) {
            let _ = scan_message(&text);
        }
    }
}
