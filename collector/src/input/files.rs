//! The inputs a scan names, found and read the way ripgrep treats its
//! own: a path named on the command line is read whatever it is (a file,
//! a pipe such as `<(zcat f)`, a device); a directory is walked in name
//! order, its regular files read, anything else in it reported as skipped;
//! symlinks to directories are followed only when asked, and then a loop
//! is found by (device, inode) and reported once.
//!
//! Each input is read one at a time, within the limits: what it may yield
//! is charged to its [`Budget`] as it is read, and its first bytes are
//! sniffed so a file that cannot be log text is refused before the rest is
//! read.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::exports::PERMISSION_CHECK;
use super::{Budget, DecodeStats, InputError, is_gzip, unwrap_payloads};

/// What a walk found: inputs to read, and paths it did not read.
#[derive(Debug, Default)]
pub struct Found {
    /// Paths to read, in order; `-` is stdin.
    pub inputs: Vec<PathBuf>,
    /// Paths passed over, each with why (not regular files, directory
    /// symlinks not followed, loops): reported, not fatal.
    pub skipped: Vec<(String, String)>,
    /// Paths that could not be read at all.
    pub failures: Vec<(String, InputError)>,
}

/// Finds the inputs `paths` name: directories walked, `-` kept for stdin.
/// With `follow`, symlinks to directories met in a walk are followed.
pub fn find_inputs(paths: &[PathBuf], follow: bool) -> Found {
    let mut found = Found::default();
    for p in paths {
        if p == Path::new("-") {
            found.inputs.push(p.clone());
            continue;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let mut ancestors = vec![(dir_id(&m), p.clone())];
                walk(p, follow, &mut ancestors, &mut found);
            }
            // Files, pipes, devices: named, so read as a stream.
            Ok(_) => found.inputs.push(p.clone()),
            Err(e) => found.failures.push((
                p.display().to_string(),
                InputError::new(format!("cannot read: {e}")),
            )),
        }
    }
    found
}

#[cfg(unix)]
fn dir_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn dir_id(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    let _ = t;
    "not a regular file"
}

/// Walks `dir`, whose own identity and those of the directories above it
/// are `ancestors`.
fn walk(dir: &Path, follow: bool, ancestors: &mut Vec<((u64, u64), PathBuf)>, found: &mut Found) {
    let Some(entries) = sorted_entries(dir, found) else {
        return;
    };
    for path in entries {
        let Some((meta, link)) = entry_metadata(&path, found) else {
            continue;
        };
        if meta.is_file() && path.file_name() == Some(PERMISSION_CHECK.as_ref()) {
            found.skipped.push((
                path.display().to_string(),
                "CloudWatch Logs' permission check object of an S3 export, not log data".into(),
            ));
        } else if meta.is_file() {
            found.inputs.push(path);
        } else if meta.is_dir() {
            walk_subdir(path, &meta, link, follow, ancestors, found);
        } else {
            found.skipped.push((
                path.display().to_string(),
                format!(
                    "{}, not read in a directory (name it to read it)",
                    kind_of(meta.file_type())
                ),
            ));
        }
    }
}

/// The paths in `dir`, in name order; `None` (a failure recorded) when it
/// cannot be listed.
fn sorted_entries(dir: &Path, found: &mut Found) -> Option<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) => {
            found.failures.push((
                dir.display().to_string(),
                InputError::new(format!("cannot read: {e}")),
            ));
            return None;
        }
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    Some(entries)
}

/// What an entry is, through a symlink, and whether it is one; `None`
/// when it is gone since the listing or is a symlink that cannot be
/// followed (recorded as skipped).
fn entry_metadata(path: &Path, found: &mut Found) -> Option<(std::fs::Metadata, bool)> {
    let lstat = std::fs::symlink_metadata(path).ok()?;
    let link = lstat.file_type().is_symlink();
    if !link {
        return Some((lstat, false));
    }
    match std::fs::metadata(path) {
        Ok(m) => Some((m, true)),
        Err(e) => {
            found.skipped.push((
                path.display().to_string(),
                format!("a symlink that cannot be followed ({e})"),
            ));
            None
        }
    }
}

/// Walks a directory met in a walk, unless it is a symlink not to be
/// followed or a loop back to a directory above it.
fn walk_subdir(
    path: PathBuf,
    meta: &std::fs::Metadata,
    link: bool,
    follow: bool,
    ancestors: &mut Vec<((u64, u64), PathBuf)>,
    found: &mut Found,
) {
    if link && !follow {
        found.skipped.push((
            path.display().to_string(),
            "a symlink to a directory, not followed (--follow follows them)".into(),
        ));
        return;
    }
    let id = dir_id(meta);
    if let Some((_, above)) = ancestors.iter().find(|(a, _)| *a == id) {
        found.skipped.push((
            path.display().to_string(),
            format!(
                "a symlink loop back to {}, not followed again",
                above.display()
            ),
        ));
        return;
    }
    ancestors.push((id, path.clone()));
    walk(&path, follow, ancestors, found);
    ancestors.pop();
}

/// How many leading bytes are sniffed before the rest is read.
const SNIFF: usize = 8 << 10;

/// Reads one input (a file, a pipe, stdin) within the budget: gzip is
/// kept as it is for [`decode_input`]; anything else must start like log
/// text (JSON, or base64 subscription data), else it is refused after its
/// first bytes.
///
/// # Errors
///
/// A read error, a start that is not log text, or more than the run's
/// total.
pub fn read_input(mut reader: impl Read, budget: &mut Budget) -> Result<Vec<u8>, InputError> {
    let cannot = |e: std::io::Error| InputError::new(format!("cannot read: {e}"));
    let mut bytes = Vec::new();
    (&mut reader)
        .take(SNIFF as u64)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if !is_gzip(&bytes) {
        sniff(&bytes)?;
    }
    let cap = budget.total_left();
    reader
        .take((cap.saturating_sub(bytes.len()) as u64).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > cap {
        return Err(budget.over_total());
    }
    if !is_gzip(&bytes) {
        budget.charge_read(bytes.len());
    }
    Ok(bytes)
}

/// Refuses a start that no accepted input has: binary data, or text that
/// is neither JSON nor base64.
fn sniff(start: &[u8]) -> Result<(), InputError> {
    let controls = start
        .iter()
        .filter(|&&b| b < 0x09 || (0x0e..0x20).contains(&b))
        .count();
    if controls * 10 > start.len() {
        return Err(InputError::new("binary data, not log text"));
    }
    let body = start.strip_prefix(b"\xef\xbb\xbf").unwrap_or(start);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') | None => Ok(()),
        Some(&b) if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/') => Ok(()),
        Some(_) => Err(InputError::new(
            "not JSON: expected a subscription payload, filter-log-events output or JSON lines",
        )),
    }
}

/// Gunzips `data` within the budget. Firehose's `AppendDelimiterToRecord`
/// puts a newline after each record, also after records CloudWatch Logs
/// gzipped, which no gzip reader skips: when the whole fails, the parts
/// between a newline and the next gzip header (the last one without its
/// newline) are opened one by one and joined by newlines (only on that failure, so the common input pays
/// nothing). A part that still fails gives the whole's error.
fn gunzip_members(data: &[u8], budget: &mut Budget, out: &mut Vec<u8>) -> Result<(), InputError> {
    let whole = match budget.gunzip(data, out) {
        Ok(()) => return Ok(()),
        Err(e) if e.is_over_limit() => return Err(e),
        Err(e) => e,
    };
    const NEXT: &[u8] = b"\n\x1f\x8b\x08";
    let mut starts = vec![0];
    starts.extend(memchr::memmem::find_iter(data, NEXT).map(|at| at + 1));
    out.clear();
    let mut part = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(data.len(), |&next| next - 1);
        let member = data[start..end]
            .strip_suffix(b"\n")
            .unwrap_or(&data[start..end]);
        match budget.gunzip(member, &mut part) {
            Ok(()) => {}
            Err(e) if e.is_over_limit() => return Err(e),
            Err(_) => return Err(whole),
        }
        out.extend_from_slice(&part);
        out.push(b'\n');
    }
    Ok(())
}

/// One input decoded: the texts whose log events a batch will borrow.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Its log text, or the subscription messages its payloads held.
    pub texts: Vec<String>,
    /// Where each text came from in the input (empty for its own text).
    pub places: Vec<String>,
    /// Payloads skipped as malformed.
    pub stats: DecodeStats,
}

/// Decodes one input's bytes within its budget: gunzipped when gzip,
/// its payloads (awslogs, Kinesis, base64 subscription data) unwrapped one
/// level; the wrapping text is dropped once unwrapped.
///
/// # Errors
///
/// Data that is not log text, or more than the budget.
pub fn decode_input(bytes: Vec<u8>, budget: &mut Budget) -> Result<Decoded, InputError> {
    let bytes = if is_gzip(&bytes) {
        let mut out = Vec::new();
        gunzip_members(&bytes, budget, &mut out)?;
        drop(bytes);
        // A Firehose object compressed by the delivery stream holds the
        // records CloudWatch Logs had already gzipped: opened once more,
        // under the same budget.
        if is_gzip(&out) {
            let inner = std::mem::take(&mut out);
            gunzip_members(&inner, budget, &mut out)?;
        }
        sniff(&out[..out.len().min(SNIFF)])?;
        out
    } else {
        bytes
    };
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let bytes = e.into_bytes();
            // Binary junk is unusable; stray invalid bytes in a text file are
            // left to the line reader, which counts and skips their lines.
            sniff(&bytes[..bytes.len().min(4096)])?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    match unwrap_payloads(&text, budget)? {
        Some(unwrapped) => Ok(Decoded {
            texts: unwrapped.texts,
            places: unwrapped.places,
            stats: unwrapped.stats,
        }),
        None => Ok(Decoded {
            texts: vec![text],
            places: vec![String::new()],
            stats: DecodeStats::default(),
        }),
    }
}
