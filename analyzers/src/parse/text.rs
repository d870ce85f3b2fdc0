//! A message as the parsers see it: plain text, or the still-escaped body of
//! a JSON string.
//!
//! CloudWatch Logs delivers every message inside a JSON string. Almost every
//! Lambda line holds an escape (the runtimes separate their prefix with
//! tabs), yet nearly all of them are ordinary application lines nobody needs.
//! Parsers therefore look at the raw JSON body first and unescape only the
//! few lines that matter.

use std::borrow::Cow;

/// The text of one log message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawText<'a> {
    /// Already plain text.
    Plain(&'a str),
    /// The body of a JSON string literal, escapes not yet resolved.
    JsonEscaped(&'a str),
}

impl<'a> RawText<'a> {
    /// The bytes as they are (escaped or not).
    #[inline]
    pub fn raw(&self) -> &'a str {
        match *self {
            RawText::Plain(s) | RawText::JsonEscaped(s) => s,
        }
    }

    /// The tab separator as it appears in this text.
    #[inline]
    pub(crate) fn tab(&self) -> &'static str {
        match self {
            RawText::Plain(_) => "\t",
            RawText::JsonEscaped(_) => "\\t",
        }
    }

    /// The text from byte `at` of its raw form on (a char boundary), of the
    /// same kind.
    #[inline]
    pub(crate) fn tail(&self, at: usize) -> RawText<'a> {
        match *self {
            RawText::Plain(s) => RawText::Plain(&s[at..]),
            RawText::JsonEscaped(s) => RawText::JsonEscaped(&s[at..]),
        }
    }

    /// The text with escapes resolved. Borrowed when there is nothing to resolve.
    pub fn unescape(&self) -> Cow<'a, str> {
        match *self {
            RawText::Plain(s) => Cow::Borrowed(s),
            RawText::JsonEscaped(s) => unescape_json(s),
        }
    }
}

/// Resolves JSON string escapes. Invalid escapes are kept as they are: a log
/// line is evidence, never a reason to fail.
pub fn unescape_json(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let Some(first) = memchr::memchr(b'\\', bytes) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut i = first;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            let next = memchr::memchr(b'\\', &bytes[i..]).map_or(bytes.len(), |n| i + n);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        let Some(&e) = bytes.get(i + 1) else {
            out.push('\\');
            break;
        };
        i += 2;
        match e {
            b'n' => out.push('\n'),
            b't' => out.push('\t'),
            b'r' => out.push('\r'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'u' => {
                let (c, used) = decode_u_escape(&bytes[i..]);
                match c {
                    Some(c) => out.push(c),
                    None => out.push('\u{fffd}'),
                }
                i += used;
            }
            _ => {
                out.push('\\');
                // Not an escape: re-read the byte after the backslash as text.
                i -= 1;
            }
        }
    }
    Cow::Owned(out)
}

fn hex4(b: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(b.get(..4)?).ok()?;
    u16::from_str_radix(s, 16).ok()
}

/// Decodes the part after `\u`: returns the char and how many bytes it used.
fn decode_u_escape(b: &[u8]) -> (Option<char>, usize) {
    let Some(hi) = hex4(b) else {
        return (None, 0);
    };
    if (0xD800..0xDC00).contains(&hi)
        && b.get(4) == Some(&b'\\')
        && b.get(5) == Some(&b'u')
        && let Some(lo) = hex4(&b[6..])
        && (0xDC00..0xE000).contains(&lo)
    {
        let c = 0x10000 + (((hi as u32) - 0xD800) << 10) + ((lo as u32) - 0xDC00);
        return (char::from_u32(c), 10);
    }
    (char::from_u32(hi as u32), 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_what_serde_json_does() {
        for s in [
            r#"a\tb\nc"#,
            r#"quote \" and \\ slash \/"#,
            r#"\u00e9t\u00e9 \ud83d\ude00"#,
            "plain",
        ] {
            let want: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(unescape_json(s), want);
        }
    }

    #[test]
    fn keeps_broken_escapes() {
        assert_eq!(unescape_json(r"bad \q end \"), r"bad \q end \");
        assert_eq!(unescape_json(r"\u12"), "\u{fffd}12");
    }
}
