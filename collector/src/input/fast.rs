//! One pass over a CloudWatch Logs subscription message, as CloudWatch
//! writes it: a header of strings, then `logEvents`, an array of
//! `{"id","timestamp","message"}` objects. String ends are found 64
//! bytes at a time, escapes and all, without a branch per escape; events
//! in CloudWatch's own compact layout are matched in place; messages are
//! kept as they are in the JSON (still escaped: most are never
//! unescaped); nothing is allocated but the events' vector.
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

    /// [`string_end`] in the text.
    fn string_end(&self, from: usize) -> Option<(usize, bool)> {
        string_end(self.bytes(), from)
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
        let start = self.at;
        let (end, escaped) = self.string_end(start)?;
        self.at = end + 1;
        // Quote positions are char boundaries of the text.
        Some((&self.text[start..end], escaped))
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
        if i == digits
            || matches!(b.get(i), Some(b'.' | b'e' | b'E'))
            || !json_integer(&b[start..i])
        {
            return None;
        }
        self.at = i;
        self.text[start..i].parse().ok()
    }

    /// An event exactly as CloudWatch Logs writes it,
    /// `{"id":"…","timestamp":…,"message":"…"}` with no spaces, an ID
    /// without escapes and a timestamp of at most 18 digits; `None`, with
    /// the cursor where it was, for anything else (the key-by-key reading
    /// takes it). Three of an event's five strings are its key names: here
    /// they are compared in place instead of searched for.
    fn compact_event(&mut self) -> Option<FastEvent<'a>> {
        const ID: &[u8] = br#"{"id":""#;
        const TIMESTAMP: &[u8] = br#"","timestamp":"#;
        const MESSAGE: &[u8] = br#","message":""#;
        let b = self.bytes();
        let mut at = self.at;
        b.get(at..)?.starts_with(ID).then_some(())?;
        at += ID.len();
        let id_start = at;
        let (id_end, false) = self.string_end(at)? else {
            return None;
        };
        at = id_end;
        let id = &self.text[id_start..at];
        b[at..].starts_with(TIMESTAMP).then_some(())?;
        at += TIMESTAMP.len();
        let number_start = at;
        let negative = b.get(at) == Some(&b'-');
        at += usize::from(negative);
        let digits = b[at..]
            .iter()
            .take(19)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || digits > 18 || !json_integer(&b[number_start..at + digits]) {
            return None;
        }
        let magnitude = b[at..at + digits]
            .iter()
            .fold(0i64, |n, &c| n * 10 + i64::from(c - b'0'));
        let timestamp = if negative { -magnitude } else { magnitude };
        at += digits;
        b[at..].starts_with(MESSAGE).then_some(())?;
        at += MESSAGE.len();
        let (end, _) = self.string_end(at)?;
        let message = &self.text[at..end];
        (b.get(end + 1) == Some(&b'}')).then_some(())?;
        self.at = end + 2;
        Some(FastEvent {
            id,
            timestamp,
            message,
        })
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
        if let Some(e) = self.compact_event() {
            return Some(e);
        }
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

/// Whether `n` (an optional `-`, then digits) is an integer as JSON
/// writes it and serde_json reads it into an `i64`: no leading zero
/// (`01`), and not `-0`, which serde_json reads as the float -0.0.
fn json_integer(n: &[u8]) -> bool {
    let digits = n.strip_prefix(b"-").unwrap_or(n);
    match digits {
        [b'0'] => n.len() == 1,
        [b'0', ..] => false,
        _ => true,
    }
}

/// Where the JSON string whose content starts at `from` ends: the index of
/// its closing quote, and whether it holds escapes; `None` if it does not
/// end, or is not a string serde_json reads (a control character in it,
/// an escape JSON does not have).
///
/// Sixty-four bytes at a time, without a branch per escape (a JSON
/// application line has a `\"` every few words): the block's quotes and
/// backslashes become bit masks, the bytes escaped by a backslash are
/// found from the runs of backslashes with integer arithmetic (an odd run
/// escapes the byte after it; the technique of simdjson's string scanner),
/// and the closing quote is the first quote not escaped. Escapes are
/// checked where the mask of escaped bytes has a bit: an escaped byte must
/// be one of `"\/bfnrt`, or a `u` followed by four hex digits.
///
/// The masks come from AVX2's 32-byte compares where the CPU has them
/// (Lambda's x86-64 hosts do), from SSE2's 16-byte ones otherwise: the
/// same answer, half the instructions.
fn string_end(b: &[u8], from: usize) -> Option<(usize, bool)> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, as just checked.
        return unsafe { wide::string_end(b, from) };
    }
    string_end_in::<Block>(b, from)
}

/// Sixty-four bytes of a text as masks of one bit per byte.
trait Masks {
    /// The block at `at`; past the text's end it holds spaces, which
    /// nothing looks for.
    fn at(b: &[u8], at: usize) -> Self;
    /// The bytes equal to `c`.
    fn eq(&self, c: u8) -> u64;
    /// The control characters (below 0x20).
    fn controls(&self) -> u64;
}

/// [`string_end`] with the masks of `B`.
#[inline(always)]
fn string_end_in<B: Masks>(b: &[u8], from: usize) -> Option<(usize, bool)> {
    // Whether the byte at the next block's start is escaped (the block
    // before ended in an odd run of backslashes).
    let mut carry = 0u64;
    let mut escaped_any = false;
    let mut at = from;
    while at < b.len() {
        let block = B::at(b, at);
        let quotes = block.eq(b'"');
        let backslashes = block.eq(b'\\');
        let escaped = escaped_bits(backslashes, &mut carry);
        // Control characters are looked for in the same block: cheaper
        // than a pass over the whole text to learn that it holds none.
        let stops = (quotes & !escaped) | block.controls();
        // Bits before the first stop (all of them if none).
        let before = stops.wrapping_sub(1) & !stops;
        let escapes = escaped & before;
        if escapes != 0 {
            escaped_any = true;
            // A block holds a few escapes (a Node.js line's tabs, an
            // application line's quotes): each is looked at, which costs
            // less than six more masks of the whole block.
            let mut left = escapes;
            while left != 0 {
                let j = at + left.trailing_zeros() as usize;
                left &= left - 1;
                let simple = matches!(
                    b.get(j),
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't')
                );
                if !simple && !unicode_escape(b, j) {
                    return None;
                }
            }
        }
        if stops != 0 {
            let j = at + stops.trailing_zeros() as usize;
            return (b[j] == b'"').then_some((j, escaped_any));
        }
        at += 64;
    }
    None
}

/// A `uXXXX` escape at `j` (the byte after its backslash).
#[cold]
#[inline(never)]
fn unicode_escape(b: &[u8], j: usize) -> bool {
    b.get(j) == Some(&b'u')
        && b.get(j + 1..j + 5)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
}

/// The bits of bytes escaped by a backslash, given the block's backslashes
/// and whether its first byte is escaped (`carry`, updated for the next
/// block): a run of backslashes escapes every other byte from its first,
/// and the byte after it when the run's length is odd. Branch-free, as in
/// simdjson (`find_escaped_branchless`): adding a run's start to the run
/// carries past its end, which tells an odd run that starts on an even bit
/// from one that starts on an odd bit.
fn escaped_bits(backslashes: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslashes = backslashes & !*carry;
    let follows_escape = (backslashes << 1) | *carry;
    let odd_starts = backslashes & !EVEN & !follows_escape;
    let (even_starts, overflow) = odd_starts.overflowing_add(backslashes);
    *carry = u64::from(overflow);
    (EVEN ^ (even_starts << 1)) & follows_escape
}

/// Sixty-four bytes of a text from some offset, as masks of one bit per
/// byte. Past the text's end the block holds spaces, which nothing looks
/// for.
struct Block {
    words: [[u8; 16]; 4],
}

impl Masks for Block {
    #[inline(always)]
    fn at(b: &[u8], at: usize) -> Block {
        let mut words = [[b' '; 16]; 4];
        match b.get(at..at + 64) {
            Some(full) => {
                for (w, chunk) in words.iter_mut().zip(full.chunks_exact(16)) {
                    w.copy_from_slice(chunk);
                }
            }
            None => {
                for (k, &x) in b[at..].iter().enumerate() {
                    words[k / 16][k % 16] = x;
                }
            }
        }
        Block { words }
    }

    #[inline(always)]
    fn eq(&self, c: u8) -> u64 {
        self.mask(|w| sixteen::eq(w, c))
    }

    #[inline(always)]
    fn controls(&self) -> u64 {
        self.mask(sixteen::controls)
    }
}

impl Block {
    #[inline(always)]
    fn mask(&self, of: impl Fn(&[u8; 16]) -> u16) -> u64 {
        self.words
            .iter()
            .enumerate()
            .fold(0, |m, (k, w)| m | (u64::from(of(w)) << (16 * k)))
    }
}

/// The masks of 64 bytes from two AVX2 registers, for CPUs that have them.
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8, _mm256_movemask_epi8,
        _mm256_set1_epi8,
    };

    /// Made only inside [`string_end`], which runs only where the CPU has
    /// AVX2: every intrinsic below relies on that.
    pub(super) struct Wide([__m256i; 2]);

    /// [`super::string_end`] with AVX2's masks.
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn string_end(b: &[u8], from: usize) -> Option<(usize, bool)> {
        super::string_end_in::<Wide>(b, from)
    }

    /// Two halves' 32-bit masks as one.
    #[inline(always)]
    fn join(lo: i32, hi: i32) -> u64 {
        u64::from(lo as u32) | (u64::from(hi as u32) << 32)
    }

    impl super::Masks for Wide {
        #[inline(always)]
        fn at(b: &[u8], at: usize) -> Wide {
            let mut spaces = [b' '; 64];
            let block: &[u8] = match b.get(at..at + 64) {
                Some(full) => full,
                None => {
                    let rest = &b[at..];
                    spaces[..rest.len()].copy_from_slice(rest);
                    &spaces
                }
            };
            // SAFETY: `block` holds 64 bytes, read as two unaligned 32-byte
            // loads; AVX2 as `Wide` promises.
            unsafe {
                Wide([
                    _mm256_loadu_si256(block.as_ptr().cast()),
                    _mm256_loadu_si256(block[32..].as_ptr().cast()),
                ])
            }
        }

        #[inline(always)]
        fn eq(&self, c: u8) -> u64 {
            // SAFETY: AVX2, as `Wide` promises; no memory is touched.
            unsafe {
                let c = _mm256_set1_epi8(c as i8);
                join(
                    _mm256_movemask_epi8(_mm256_cmpeq_epi8(self.0[0], c)),
                    _mm256_movemask_epi8(_mm256_cmpeq_epi8(self.0[1], c)),
                )
            }
        }

        #[inline(always)]
        fn controls(&self) -> u64 {
            // SAFETY: as in `eq`. x < 0x20 exactly when min(x, 0x1f) == x.
            unsafe {
                let top = _mm256_set1_epi8(0x1f);
                let below = |v| _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(v, top), v));
                join(below(self.0[0]), below(self.0[1]))
            }
        }
    }
}

/// Sixteen bytes to a mask of one bit per byte: SSE2 on x86-64 (part of
/// its baseline), a plain loop elsewhere.
mod sixteen {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8,
    };

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn load(w: &[u8; 16]) -> __m128i {
        let (lo, hi) = w.split_at(8);
        let word = |h: &[u8]| i64::from_le_bytes(h.try_into().expect("eight bytes"));
        // SAFETY: SSE2 is part of x86-64's baseline: every x86-64 CPU has
        // it, and the intrinsics touch no memory (the bytes come in as
        // two integers).
        unsafe { _mm_set_epi64x(word(hi), word(lo)) }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(super) fn eq(w: &[u8; 16], c: u8) -> u16 {
        let v = load(w);
        // SAFETY: as in `load`.
        unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8))) as u16 }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(super) fn controls(w: &[u8; 16]) -> u16 {
        // x < 0x20 exactly when min(x, 0x1f) == x (unsigned).
        let v = load(w);
        // SAFETY: as in `load`.
        unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v)) as u16 }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub(super) fn eq(w: &[u8; 16], c: u8) -> u16 {
        w.iter()
            .enumerate()
            .fold(0, |m, (k, &x)| m | (u16::from(x == c) << k))
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub(super) fn controls(w: &[u8; 16]) -> u16 {
        w.iter()
            .enumerate()
            .fold(0, |m, (k, &x)| m | (u16::from(x < 0x20) << k))
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

    /// Where a string ends, read a byte at a time (see `string_end`).
    fn by_bytes(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
        let (mut i, mut escaped) = (from, false);
        while i < bytes.len() {
            match bytes[i] {
                b'"' => return Some((i, escaped)),
                0..0x20 => return None,
                b'\\' => {
                    escaped = true;
                    let valid = match bytes.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
                        Some(b'u') => bytes
                            .get(i + 2..i + 6)
                            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
                        _ => false,
                    };
                    if !valid {
                        return None;
                    }
                    i += 2;
                }
                _ => i += 1,
            }
        }
        None
    }

    /// Runs of backslashes of every length up to two blocks, ending at
    /// every offset around a block's end, then a quote: escaped when the
    /// run is odd, the end when it is even.
    #[test]
    fn backslash_runs_across_blocks() {
        for run in 0..130 {
            for lead in 0..70 {
                let mut bytes = vec![b'a'; lead];
                bytes.extend(std::iter::repeat_n(b'\\', run));
                bytes.extend_from_slice(b"\"x\"");
                let expected = by_bytes(&bytes, 0);
                assert_eq!(string_end(&bytes, 0), expected, "run {run}, lead {lead}");
                assert_eq!(
                    string_end_in::<Block>(&bytes, 0),
                    expected,
                    "SSE2: run {run}, lead {lead}"
                );
                assert_eq!(
                    expected.map(|(e, _)| e),
                    Some(lead + run + usize::from(run % 2 == 1) * 2),
                );
            }
        }
    }

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
            // What serde_json refuses: leading zeros, `-0` (a float to it),
            // control characters in strings, escapes JSON does not have.
            r#"{"logEvents":[{"id":"e","timestamp":01,"message":"x"}]}"#,
            r#"{"logEvents":[{"id":"e","timestamp":-0,"message":"x"}]}"#,
            r#"{"logEvents":[{"timestamp":007,"id":"e","message":"x"}]}"#,
            r#"{"logEvents":[{"timestamp":-0,"id":"e","message":"x"}]}"#,
            "{\"logEvents\":[{\"id\":\"e\",\"timestamp\":1,\"message\":\"a\tb\"}]}",
            "{\"logEvents\":[{\"id\":\"e\n\",\"timestamp\":1,\"message\":\"x\"}]}",
            "{\"logGroup\":\"g\u{1f}\",\"logEvents\":[]}",
            r#"{"logEvents":[{"id":"e","timestamp":1,"message":"a\x"}]}"#,
            r#"{"logEvents":[{"id":"e","timestamp":1,"message":"0123456789abcde\q"}]}"#,
            r#"{"logEvents":[{"id":"e","timestamp":1,"message":"\u12"}]}"#,
            r#"{"logEvents":[{"id":"e","timestamp":1,"message":"\u00g0"}]}"#,
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

    /// A subscription message of these `(id, time, message)` events as
    /// CloudWatch Logs writes it (compact, its own field order), `header`
    /// (`"key":value,` pairs) after its `messageType`.
    fn in_cloudwatch_layout(events: &[(String, i64, String)], header: &str) -> String {
        let events: Vec<String> = events
            .iter()
            .map(|(id, ts, m)| {
                format!(
                    r#"{{"id":"{id}","timestamp":{ts},"message":{}}}"#,
                    serde_json::to_string(m).unwrap()
                )
            })
            .collect();
        format!(
            r#"{{"messageType":"DATA_MESSAGE",{header}"logEvents":[{}]}}"#,
            events.join(",")
        )
    }

    /// What the scan read is what serde_json reads: the header, and each
    /// event's ID, time and message (still escaped, as the JSON has it).
    fn same_as_serde(m: &FastMessage<'_>, s: &Serde<'_>) -> Result<(), TestCaseError> {
        prop_assert_eq!(m.message_type, s.message_type);
        prop_assert_eq!(m.log_group, s.log_group);
        prop_assert_eq!(m.log_stream, s.log_stream);
        prop_assert_eq!(m.events.len(), s.log_events.len());
        for (a, b) in m.events.iter().zip(&s.log_events) {
            prop_assert_eq!(a.id, b.id);
            prop_assert_eq!(a.timestamp, b.timestamp);
            prop_assert_eq!(format!("\"{}\"", a.message), b.message.get());
        }
        Ok(())
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
            same_as_serde(&m, &s)?;
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

        /// Events in CloudWatch's own layout (the compact path) are read
        /// as serde_json reads them, whatever their messages hold.
        #[test]
        fn cloudwatch_layout_agrees_with_serde_json(
            events in proptest::collection::vec(("[0-9]{1,56}", any::<i64>(), any::<String>()), 1..6),
        ) {
            let text = in_cloudwatch_layout(&events, "");
            let m = scan_message(&text).expect("a message in CloudWatch's layout");
            let s: Serde<'_> = serde_json::from_str(&text).unwrap();
            same_as_serde(&m, &s)?;
        }

        /// A string's end, found a block at a time, is where a byte-by-byte
        /// reading finds it, for any bytes (quotes, backslashes, escape
        /// letters and control characters dense); `None` where serde_json
        /// refuses the string.
        #[test]
        fn string_end_agrees_with_a_byte_reading(
            bytes in proptest::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), Just(b'\\'), Just(b'a'), Just(b'u'), Just(b'n'), Just(b'\t'), any::<u8>()], 0..200),
            from in 0usize..4,
        ) {
            let expected = by_bytes(&bytes, from);
            prop_assert_eq!(string_end(&bytes, from), expected);
            // Both kinds of masks, whichever this CPU picks.
            prop_assert_eq!(string_end_in::<Block>(&bytes, from), expected);
            // serde_json agrees on valid UTF-8: a string it reads ends where
            // this one does.
            if let Some(Ok(text)) = bytes.get(from..).map(std::str::from_utf8) {
                let quoted = format!("\"{text}");
                let mut de = serde_json::Deserializer::from_str(&quoted);
                let serde_end = <&serde_json::value::RawValue as serde::Deserialize>::deserialize(&mut de)
                    .ok()
                    .map(|v| from + v.get().len() - 2);
                prop_assert_eq!(string_end(&bytes, from).map(|(e, _)| e), serde_end);
            }
        }

        /// A message as serde_json writes it, one byte or two changed
        /// (to what matters to JSON: digits, signs, quotes, backslashes,
        /// escape letters, control characters, structure): whatever the
        /// scan still accepts, serde_json reads the same way.
        #[test]
        fn what_it_accepts_serde_json_reads_the_same_way(
            events in proptest::collection::vec(("[0-9]{1,20}", any::<i64>(), "[a-z\"\\\\\t]{0,20}"), 1..4),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![
                Just("0"), Just("1"), Just("-"), Just("\""), Just("\\"), Just("u"), Just("n"), Just("x"),
                Just("\t"), Just("\n"), Just("\u{1}"), Just(" "), Just(","), Just(":"), Just("{"), Just("}"),
                Just("["), Just("]"), Just(""), Just("."), Just("e"), Just("00"), Just("\\u00e9"),
            ], any::<bool>()), 1..3),
        ) {
            let mut text = in_cloudwatch_layout(&events, r#""logGroup":"g","logStream":"s","#);
            for (at, with, replace) in &edits {
                let at = at.index(text.len());
                let end = if *replace { at + 1 } else { at };
                text.replace_range(at..end, with);
            }
            if let Some(m) = scan_message(&text) {
                let s: Serde<'_> = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                same_as_serde(&m, &s)?;
            }
        }

        /// Any text: no panic.
        #[test]
        fn no_panic_on_any_text(text in any::<String>()) {
            let _ = scan_message(&text);
        }
    }
}
