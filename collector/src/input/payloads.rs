//! Unwrapping the payloads a file carries (awslogs events, Kinesis events,
//! bare base64 subscription data) into subscription messages: one level
//! only, every payload charged to the file's [`Budget`], each payload (a
//! line, a JSON value, a Kinesis record) a unit of its own that is counted
//! and skipped when bad, never the reason to drop its neighbours.

use serde::Deserialize;

use super::{AwsLogs, Budget, DecodeStats, InputError, KinesisRecord, Lenient, is_gzip};

/// Buffers the decoding of one payload reuses from the last: a warm
/// collector, or a scan of many payloads, does not fault in fresh pages
/// for each.
#[derive(Debug, Default)]
pub struct Scratch {
    compressed: Vec<u8>,
    /// The last payload's decoded text (UTF-8 once [`decode_payload`]
    /// succeeded).
    pub text: Vec<u8>,
}

impl Scratch {
    /// The size the last payload's gzip trailer states (modulo 4 GiB), if
    /// its data was gzip: what it would expand to, were the trailer true.
    pub fn stated_size(&self) -> Option<usize> {
        let c = &self.compressed;
        if !is_gzip(c) {
            return None;
        }
        let at = c.len().checked_sub(4)?;
        Some(u32::from_le_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]]) as usize)
    }
}

/// What carried a payload's data: an awslogs event (CloudWatch Logs
/// always gzips it) or a Kinesis record (gzipped by CloudWatch Logs, plain
/// JSON when another producer wrote it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// `{"awslogs":{"data":…}}`.
    Awslogs,
    /// `{"Records":[{"kinesis":{"data":…}}]}`.
    Kinesis,
}

/// Decodes one payload's base64 data into `scratch.text`, charged to the
/// budget, and returns it as text: the one decoding the CLI, the Lambda
/// handler and the benchmarks share. The base64 may be wrapped (MIME
/// style, 76 columns, as `base64` writes it).
///
/// # Errors
///
/// Data that is not base64 (of gzip, for awslogs) of UTF-8 text, or more
/// than the budget ([`InputError::is_over_limit`]).
pub fn decode_payload<'s>(
    data: &str,
    carrier: Carrier,
    budget: &mut Budget,
    scratch: &'s mut Scratch,
) -> Result<&'s str, InputError> {
    decode_bytes(data, carrier, budget, scratch)?;
    std::str::from_utf8(&scratch.text).map_err(|_| not_utf8(carrier))
}

/// [`decode_payload`] into a text of its own (UTF-8 checked once), the
/// scratch's base64 buffer reused.
///
/// # Errors
///
/// As [`decode_payload`].
pub fn decode_text(
    data: &str,
    carrier: Carrier,
    budget: &mut Budget,
    scratch: &mut Scratch,
) -> Result<String, InputError> {
    decode_bytes(data, carrier, budget, scratch)?;
    String::from_utf8(std::mem::take(&mut scratch.text)).map_err(|_| not_utf8(carrier))
}

fn not_utf8(carrier: Carrier) -> InputError {
    InputError::new(match carrier {
        Carrier::Awslogs => "subscription data is not UTF-8 text",
        Carrier::Kinesis => "data is not UTF-8 text",
    })
}

/// Base64, then gunzip (or, for Kinesis, the bytes as they are), into
/// `scratch.text`.
fn decode_bytes(
    data: &str,
    carrier: Carrier,
    budget: &mut Budget,
    scratch: &mut Scratch,
) -> Result<(), InputError> {
    let awslogs = carrier == Carrier::Awslogs;
    scratch.compressed.clear();
    decode_base64(data, &mut scratch.compressed).map_err(|e| {
        InputError::new(if awslogs {
            format!("invalid base64 in subscription data: {e}")
        } else {
            format!("invalid base64 ({e})")
        })
    })?;
    if is_gzip(&scratch.compressed) {
        budget.gunzip(&scratch.compressed, &mut scratch.text)
    } else if awslogs {
        Err(InputError::new(
            "subscription data is not gzip (CloudWatch Logs always gzips it)",
        ))
    } else {
        budget.charge_read(scratch.compressed.len());
        std::mem::swap(&mut scratch.compressed, &mut scratch.text);
        Ok(())
    }
}

/// Decodes base64 + gzip subscription data into text, within the budget
/// ([`decode_text`] of awslogs data).
///
/// # Errors
///
/// Data that is not base64 of gzip of UTF-8 text, or more than the budget.
pub fn decode_data(data: &str, budget: &mut Budget) -> Result<String, InputError> {
    decode_text(data, Carrier::Awslogs, budget, &mut Scratch::default())
}

/// Standard base64, whitespace anywhere in it ignored (wrapped lines).
pub(crate) fn decode_base64(data: &str, out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    let data = data.trim().as_bytes();
    if memchr::memchr3(b'\n', b'\r', b' ', data).is_none() && memchr::memchr(b'\t', data).is_none()
    {
        return super::b64::decode(data, out);
    }
    let compact: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    super::b64::decode(&compact, out)
}

/// A text that only wraps other payloads, decoded.
#[derive(Debug, Default)]
pub struct Unwrapped {
    /// The decoded subscription messages.
    pub texts: Vec<String>,
    /// Where each text came from in the input (`line 3, record 1`),
    /// beside it.
    pub places: Vec<String>,
    /// Payloads skipped as malformed, each named by its line and record.
    pub stats: DecodeStats,
    /// The decoding's buffers, reused from one payload to the next.
    scratch: Scratch,
}

#[derive(Deserialize)]
pub(super) struct Wrapper<'a> {
    #[serde(borrow, default)]
    pub(super) awslogs: Option<AwsLogs<'a>>,
    #[serde(borrow, default, rename = "Records")]
    pub(super) records: Option<Vec<Lenient<KinesisRecord<'a>>>>,
}

impl Wrapper<'_> {
    fn wraps(&self) -> bool {
        self.awslogs.is_some() || self.records.is_some()
    }
}

/// True when a text names `awslogs` or `Records` as a key somewhere: the
/// only texts worth parsing as wrappers. A subscription message holds
/// such text only escaped, inside its messages.
fn may_wrap(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memmem::find(b, b"\"awslogs\"").is_some()
        || memchr::memmem::find(b, b"\"Records\"").is_some()
}

fn is_base64_text(body: &str) -> bool {
    body.bytes().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=') || c.is_ascii_whitespace()
    })
}

/// Line numbers of byte offsets met in increasing order, counted once.
struct Lines<'t> {
    text: &'t [u8],
    at: usize,
    line: usize,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        Lines {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line of the first non-blank byte at or after `offset`.
    fn of(&mut self, offset: usize) -> usize {
        let start = self.text[offset.min(self.text.len())..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(self.text.len(), |p| offset + p);
        if start >= self.at {
            self.line += memchr::memchr_iter(b'\n', &self.text[self.at..start]).count();
            self.at = start;
        }
        self.line
    }
}

/// Decodes a text that wraps subscription payloads: `Some` with the
/// decoded messages, `None` when the text holds log events itself (read it
/// with [`super::read_text`]). Cheap for ordinary files: only a text naming
/// `awslogs` or `Records`, or made of base64 alone, is parsed here.
///
/// The payloads' own texts are never unwrapped again: a payload whose data
/// is itself a wrapper is counted and skipped, so a small file of payloads
/// inside payloads cannot multiply. Each JSON value (or, when the text is
/// not one stream of JSON values, each line) is a unit: one that does not
/// parse or decode is counted and skipped with its line, the rest read.
///
/// # Errors
///
/// Bare base64 data that does not decode, or a payload that goes past the
/// budget (the file's decompression limit or the run's total).
pub fn unwrap_payloads(text: &str, budget: &mut Budget) -> Result<Option<Unwrapped>, InputError> {
    let text = text.trim_start_matches('\u{feff}');
    let body = text.trim();
    if body.is_empty() {
        return Ok(None);
    }
    if !body.starts_with(['{', '[']) {
        return unwrap_base64(body, budget);
    }
    if !may_wrap(body) {
        return Ok(None);
    }
    match wrapper_values(text) {
        Some(values) => unwrap_values(values, budget),
        None => unwrap_lines(text, budget),
    }
}

/// Bare base64 subscription data: one payload, at line 1. `None` when the
/// text is not base64.
fn unwrap_base64(body: &str, budget: &mut Budget) -> Result<Option<Unwrapped>, InputError> {
    if !is_base64_text(body) {
        return Ok(None);
    }
    let mut out = Unwrapped::default();
    let decoded = decode_data(body, budget)?;
    out.add(1, None, decoded);
    Ok(Some(out))
}

/// The values of a text that is one stream of JSON values (pretty-printed
/// or not), each with the line it starts on; `None` when it is not.
fn wrapper_values(text: &str) -> Option<Vec<(usize, Wrapper<'_>)>> {
    let mut values = Vec::new();
    let mut lines = Lines::new(text);
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Wrapper<'_>>();
    loop {
        let offset = stream.byte_offset();
        match stream.next() {
            None => return Some(values),
            Some(Ok(w)) => values.push((lines.of(offset), w)),
            Some(Err(_)) => return None,
        }
    }
}

/// One stream of JSON values, each value a unit: a file of wrappers when
/// its first value is one (`None` when not).
fn unwrap_values(
    values: Vec<(usize, Wrapper<'_>)>,
    budget: &mut Budget,
) -> Result<Option<Unwrapped>, InputError> {
    if !values.first().is_some_and(|(_, w)| w.wraps()) {
        return Ok(None);
    }
    let mut out = Unwrapped::default();
    for (line, w) in values {
        out.unwrap(line, w, budget)?;
    }
    Ok(Some(out))
}

/// Not one stream of values: JSON lines, each line a unit (a line may
/// hold several values: files without a final newline, concatenated). A
/// file of wrappers when its first value is one (`None` when not).
fn unwrap_lines(text: &str, budget: &mut Budget) -> Result<Option<Unwrapped>, InputError> {
    let mut out = Unwrapped::default();
    let mut wrapper_file = false;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut stream = serde_json::Deserializer::from_str(line).into_iter::<Wrapper<'_>>();
        loop {
            match stream.next() {
                None => break,
                Some(Ok(w)) if !wrapper_file && !w.wraps() => return Ok(None),
                Some(Ok(w)) => {
                    wrapper_file = true;
                    out.unwrap(line_no, w, budget)?;
                }
                Some(Err(e)) => {
                    out.stats.skip(
                        format_args!("line {line_no}"),
                        format_args!("not JSON ({e})"),
                    );
                    break;
                }
            }
        }
    }
    if !wrapper_file {
        return Ok(None);
    }
    Ok(Some(out))
}

impl Unwrapped {
    /// Decodes the payloads of one value at `line`. Only the budget
    /// running out is an error: the limits hold for the whole input.
    fn unwrap(
        &mut self,
        line: usize,
        w: Wrapper<'_>,
        budget: &mut Budget,
    ) -> Result<(), InputError> {
        if let Some(awslogs) = w.awslogs {
            match self.decode(&awslogs.data, Carrier::Awslogs, budget) {
                Ok(text) => self.add(line, None, text),
                Err(e) if e.is_over_limit() => return Err(e),
                Err(e) => self.stats.skip(
                    format_args!("line {line}"),
                    format_args!("awslogs event: {e}"),
                ),
            }
        } else if let Some(records) = w.records {
            for (i, r) in records.into_iter().enumerate() {
                let decoded = match r.ok().and_then(|r| r.kinesis).and_then(|k| k.data) {
                    Some(data) => self.decode(&data, Carrier::Kinesis, budget),
                    None => Err(InputError::new("no kinesis.data")),
                };
                match decoded {
                    Ok(text) => self.add(line, Some(i), text),
                    Err(e) if e.is_over_limit() => return Err(e),
                    Err(e) => self.stats.skip(format_args!("line {line}, record {i}"), e),
                }
            }
        } else {
            self.stats.skip(
                format_args!("line {line}"),
                "not an awslogs or Kinesis event, in a file of them",
            );
        }
        Ok(())
    }

    /// [`decode_text`], the base64 buffer reused from the payload before.
    fn decode(
        &mut self,
        data: &str,
        carrier: Carrier,
        budget: &mut Budget,
    ) -> Result<String, InputError> {
        decode_text(data, carrier, budget, &mut self.scratch)
    }

    /// Keeps a decoded payload, unless it is a wrapper itself.
    fn add(&mut self, line: usize, record: Option<usize>, text: String) {
        // A subscription message names `logEvents` near its start; only
        // the text before it need be searched for a wrapper's keys.
        let head = memchr::memmem::find(text.as_bytes(), b"\"logEvents\"")
            .map_or(&text[..], |at| &text[..at]);
        let inner = may_wrap(head)
            && serde_json::Deserializer::from_str(&text)
                .into_iter::<Wrapper<'_>>()
                .next()
                .is_some_and(|w| w.is_ok_and(|w| w.wraps()));
        let place = match record {
            Some(i) => format!("line {line}, record {i}"),
            None => format!("line {line}"),
        };
        if inner {
            self.stats.skip(
                place,
                "its data is an awslogs or Kinesis event again; a payload inside a payload is not opened",
            );
            return;
        }
        self.texts.push(text);
        self.places.push(place);
    }
}
