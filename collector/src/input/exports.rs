//! CloudWatch Logs export objects (`create-export-task` to S3), as `aws s3
//! sync` leaves them on disk.
//!
//! AWS documents the layout as `<prefix>/<task id>/<log stream>/000000.gz`:
//! one folder per stream under the task's folder, each object a gzip of
//! lines `<RFC 3339 timestamp> <message>`, and says that chunks of log data
//! inside an exported file are not sorted by time. The export keeps neither
//! the event IDs nor the log group (only the prefix the user chose), and
//! keeps the time to the millisecond.
//!
//! So the stream comes from the folders between the task ID and the object
//! (a stream name's `/` are folders too), the group from the folders above
//! the task ID (the prefix) unless `--export-group` names it, and each
//! event gets an ID derived from its time and its place in the stream
//! (object number, line): the same export gives the same IDs, evidence and
//! span IDs on every run. The batch sorts each stream by time, restoring
//! the order the chunks lost.
//!
//! moto's `create_export_task` writes a simplified export, read the same
//! way: a task-ID-like folder per stream, `/` in stream names replaced by
//! `-`, times to the second (`.000Z`).

use std::borrow::Cow;
use std::path::{Component, Path};

use thawtrace_analyzers::parse::RawText;
use thawtrace_analyzers::time::parse_rfc3339;
use thawtrace_analyzers::{Batch, LogEvent};

use super::{DecodeStats, Limits, UNKNOWN_GROUP};

/// The object CloudWatch Logs writes into the bucket to check it may write
/// there (`Permission Check Successful`): not log data.
pub const PERMISSION_CHECK: &str = "aws-logs-write-test";

/// Where an export object sits in the export's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPlace {
    /// The log group, when the layout says it (the prefix above the task).
    pub group: Option<String>,
    /// The log stream: the folders between the task ID and the object.
    pub stream: String,
    /// The object's number in its stream (`000001.gz` is 1).
    pub chunk: u64,
}

impl ExportPlace {
    /// Where an object at `path` sits, `path` having been found under
    /// `root` (the path named on the command line). The task's folder is
    /// the innermost one named like a task ID (a UUID); without one, the
    /// object's own folder names the stream.
    ///
    /// ```
    /// use std::path::Path;
    /// use thawtrace::input::ExportPlace;
    /// let p = ExportPlace::of(
    ///     Path::new("sync/orders/0f6c2a5e-1b2c-4d3e-8f90-a1b2c3d4e5f6/2026/11/28/[$LATEST]ab12/000001.gz"),
    ///     Path::new("sync"),
    /// );
    /// assert_eq!(p.group.as_deref(), Some("orders"));
    /// assert_eq!(p.stream, "2026/11/28/[$LATEST]ab12");
    /// assert_eq!(p.chunk, 1);
    /// ```
    pub fn of(path: &Path, root: &Path) -> ExportPlace {
        let names: Vec<String> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let file = names.last().cloned().unwrap_or_default();
        let chunk = file
            .split('.')
            .next()
            .and_then(|stem| stem.parse().ok())
            .unwrap_or(0);
        let folders = &names[..names.len().saturating_sub(1)];
        let below_root = root
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count();
        match folders.iter().rposition(|n| is_task_id(n)) {
            Some(task) => {
                let stream = folders[task + 1..].join("/");
                let group = (below_root < task).then(|| folders[below_root..task].join("/"));
                ExportPlace {
                    group,
                    stream: if stream.is_empty() { file } else { stream },
                    chunk,
                }
            }
            None => ExportPlace {
                group: None,
                stream: folders.last().cloned().unwrap_or(file),
                chunk,
            },
        }
    }
}

/// A task ID as CloudWatch Logs (and moto) make them: a UUID,
/// `8-4-4-4-12` hexadecimal digits.
fn is_task_id(name: &str) -> bool {
    let groups: Vec<&str> = name.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The time a line of an export starts with, and where its message starts:
/// an RFC 3339 timestamp (`2026-11-28T11:57:47.621Z`), then one space.
fn line_time(line: &str) -> Option<(i64, usize)> {
    let space = line.find(' ')?;
    let stamp = &line[..space];
    // Cheap guard before the parser: `YYYY-MM-DDT…`.
    let b = stamp.as_bytes();
    if b.len() < 20 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    Some((parse_rfc3339(stamp)?, space + 1))
}

/// True when a text reads as an export object: its first line starts with
/// a timestamp and a space.
pub fn looks_like_export(text: &str) -> bool {
    let body = text.trim_start_matches('\u{feff}').trim_start();
    body.lines().next().is_some_and(|l| line_time(l).is_some())
}

/// Reads an export object's events into the batch, in the group and stream
/// its place names. A line that does not start with a timestamp continues
/// the message before it (the export writes a multi-line message as it
/// is); such a line before any timestamp, or a message over the event
/// limit, is counted and skipped with its line number.
///
/// ```
/// use std::path::Path;
/// use thawtrace::input::{ExportPlace, Limits, looks_like_export, read_export};
/// use thawtrace_analyzers::Batch;
/// let text = "2026-11-28T11:57:47.621Z START RequestId: 1 Version: $LATEST\n\
///             2026-11-28T11:57:47.600Z Error: boom\n    at handler (index.js:3)\n";
/// assert!(looks_like_export(text));
/// let place = ExportPlace::of(Path::new("orders/stream-a/000000.gz"), Path::new("orders"));
/// let mut batch = Batch::default();
/// let stats = read_export(&place, Some("/aws/lambda/orders"), text, &Limits::default(), &mut batch);
/// assert_eq!((stats.events, stats.malformed), (2, 0));
/// ```
pub fn read_export<'a>(
    place: &ExportPlace,
    group: Option<&str>,
    text: &'a str,
    limits: &Limits,
    batch: &mut Batch<'a>,
) -> DecodeStats {
    let mut stats = DecodeStats::default();
    let mut events = Vec::new();
    // The event being read: its line, time and where its message starts
    // and (so far) ends in the text.
    let mut open: Option<(usize, i64, usize, usize)> = None;
    let mut finish = |open: Option<(usize, i64, usize, usize)>, stats: &mut DecodeStats| {
        let Some((line, ts, start, end)) = open else {
            return;
        };
        let message = text[start..end].trim_end_matches('\n');
        if message.len() > limits.max_event_bytes {
            stats.skip(
                format_args!("line {line}"),
                format_args!(
                    "a message of {} bytes, over the {} KiB event limit",
                    message.len(),
                    limits.max_event_bytes >> 10
                ),
            );
            return;
        }
        events.push(LogEvent {
            id: Cow::Owned(event_id(ts, place.chunk, line)),
            timestamp_ms: ts,
            text: RawText::Plain(message),
        });
    };
    let mut at = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let line_no = n + 1;
        let start = at;
        at += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        if let Some((ts, msg)) = line_time(content) {
            finish(open.take(), &mut stats);
            open = Some((line_no, ts, start + msg, at));
        } else if let Some(o) = open.as_mut() {
            o.3 = at;
        } else if !content.trim().is_empty() {
            stats.skip(
                format_args!("line {line_no}"),
                "no timestamp (an export's line starts with an RFC 3339 time and a space)",
            );
        }
    }
    finish(open.take(), &mut stats);
    stats.events += events.len() as u64;
    let group = group
        .or(place.group.as_deref())
        .unwrap_or(UNKNOWN_GROUP)
        .to_owned();
    batch.extend(group, place.stream.clone(), events);
    stats
}

/// An export event's ID: its time, its object's number in the stream and
/// its line, each zero-padded so that the IDs of one millisecond sort in
/// the order the export wrote them (the batch orders a stream's events by
/// time, then ID).
fn event_id(ts: i64, chunk: u64, line: usize) -> String {
    format!("{:015}{:06}{:010}", ts.max(0), chunk, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_layout_names_the_stream_by_its_folder() {
        let p = ExportPlace::of(
            Path::new(
                "/tmp/x/exports/5b0f4f57-2d39-4b1a-9d0f-4c8f3a1e2b3c/2026-11-28-[$LATEST]ab/000000.gz",
            ),
            Path::new("/tmp/x"),
        );
        assert_eq!(p.group.as_deref(), Some("exports"));
        assert_eq!(p.stream, "2026-11-28-[$LATEST]ab");
    }

    #[test]
    fn without_a_task_folder_the_object_folder_is_the_stream() {
        let p = ExportPlace::of(Path::new("logs/stream-a/000003.gz"), Path::new("logs"));
        assert_eq!((p.group, p.stream.as_str(), p.chunk), (None, "stream-a", 3));
    }

    #[test]
    fn multi_line_messages_continue_until_the_next_timestamp() {
        let text = "2026-11-28T11:57:47.621Z first\n  at frame 1\n  at frame 2\n2026-11-28T11:57:47.000Z second\n";
        let place = ExportPlace {
            group: None,
            stream: "s".into(),
            chunk: 0,
        };
        let mut batch = Batch::default();
        let stats = read_export(&place, Some("g"), text, &Limits::default(), &mut batch);
        assert_eq!((stats.events, stats.malformed), (2, 0));
        assert!(looks_like_export(text));
        assert!(!looks_like_export("{\"message\":1}"));
        assert_eq!(
            line_time("2026-11-28T11:57:47.000Z x"),
            Some((1_795_867_067_000, 25))
        );
        assert_eq!(
            event_id(1_795_867_067_621, 0, 1),
            "0017958670676210000000000000001"
        );
    }

    #[test]
    fn a_line_before_any_timestamp_is_counted_and_named() {
        let place = ExportPlace {
            group: None,
            stream: "s".into(),
            chunk: 0,
        };
        let mut batch = Batch::default();
        let stats = read_export(
            &place,
            None,
            "orphan\n2026-11-28T11:57:47.621Z ok\n",
            &Limits::default(),
            &mut batch,
        );
        assert_eq!((stats.events, stats.malformed), (1, 1));
        assert!(stats.problems[0].starts_with("line 1: no timestamp"));
    }
}
