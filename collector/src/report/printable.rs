//! What the logs hold, made safe to show on a terminal.
//!
//! A log stream may be named anything CloudWatch accepts, and event IDs,
//! connections and file names come from whoever wrote the input. Printed
//! raw, an ESC or a C1 CSI in them is a terminal command: it can retitle the
//! window, clear the screen, move the cursor over an earlier line or hide
//! text. So every field shown to a person goes through [`printable`], which
//! escapes control characters the way ripgrep and `ls` show them: `\t`,
//! `\n` and `\r` by name, the rest of C0 and DEL as `\x1b`, C1 as `\u{9b}`.
//! Everything else, backslashes included, is shown as it is: the escapes
//! are for reading, not for parsing back (JSON output is for programs).

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with its control characters (C0, DEL, C1) escaped; borrowed when
/// there is none, which is nearly always.
///
/// ```
/// use thawtrace::report::printable::printable;
/// assert_eq!(printable("2026/11/28/[$LATEST]ab12"), "2026/11/28/[$LATEST]ab12");
/// assert_eq!(printable("a\u{1b}[2Jb\u{9b}31m\tc"), r"a\x1b[2Jb\u{9b}31m\tc");
/// ```
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{80}'..='\u{9f}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The fields, each [`printable`], joined by a space.
pub fn joined(fields: &[String]) -> String {
    let mut out = String::new();
    for (n, f) in fields.iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(&printable(f));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_character_is_escaped_and_nothing_else() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let s = c.to_string();
            let shown = printable(&s);
            if c.is_control() {
                assert!(shown.starts_with('\\'), "{c:?} shown as {shown:?}");
                assert!(
                    shown.chars().all(|c| c.is_ascii_graphic()),
                    "{c:?} shown as {shown:?}"
                );
            } else {
                assert_eq!(shown, s, "{c:?}");
            }
        }
    }

    #[test]
    fn escape_sequences_are_shown_as_text() {
        assert_eq!(
            printable("\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{7f}\r\n\0"),
            r"\x1b]0;owned\x07\x1b[2J\u{9b}31m\x7f\r\n\x00"
        );
        assert_eq!(
            joined(&["a\u{1b}".into(), "b\u{85}".into()]),
            r"a\x1b b\u{85}"
        );
    }
}
