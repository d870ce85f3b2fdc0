//! Lambda platform records.
//!
//! | pattern | real example |
//! |---|---|
//! | `START RequestId: <id> Version: <v>` | `START RequestId: 6428b781-c80d-44e1-b961-5794a2f9cdad Version: $LATEST` |
//! | `END RequestId: <id>` | `END RequestId: 6428b781-c80d-44e1-b961-5794a2f9cdad` |
//! | `REPORT RequestId: <id>\tDuration: …` | `REPORT RequestId: 6428b781-…\tDuration: 5059.37 ms\tBilled Duration: 5060 ms\tMemory Size: 128 MB\tMax Memory Used: 71 MB\t` |
//! | JSON `platform.start` | `{"time":"2026-11-28T08:08:23.242Z","type":"platform.start","record":{"requestId":"9bf4219f-…","version":"$LATEST"}}` |
//! | JSON `platform.runtimeDone` | `{"time":"…","type":"platform.runtimeDone","record":{"requestId":"…","status":"success","metrics":{…}}}` |
//! | JSON `platform.report` | `{"time":"…","type":"platform.report","record":{"requestId":"…","metrics":{"durationMs":…},"status":"success"}}` |
//! | `INIT_START Runtime Version: <v> …` | `INIT_START Runtime Version: python:3.12.v16\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:…` |
//! | `RESTORE_START Runtime Version: <v> …` (SnapStart) | `RESTORE_START Runtime Version: java:11.v21 Runtime Version ARN: arn:aws:lambda:…` |
//! | `RESTORE_REPORT Restore Duration: <ms> ms` (SnapStart) | `RESTORE_REPORT Restore Duration: 265.21 ms` |
//! | JSON `platform.initStart` | `{"time":"…","type":"platform.initStart","record":{"initializationType":"lambda-managed-instances","phase":"init",…,"instanceId":"…"}}` |
//! | JSON `platform.restoreStart`, `platform.restoreReport` | `{"time":"…","type":"platform.restoreStart","record":{"runtimeVersion":"python:3.12.v16",…}}` |
//!
//! Lambda Managed Instances write no `platform.runtimeDone`: an invocation
//! there runs from its `platform.start` to its `platform.report`, and
//! several run at once.
//!
//! JSON records are recognised without unescaping: a JSON log format
//! message arrives as an escaped JSON string inside the subscription payload.

use memchr::memmem;

use super::{InitType, Lifecycle, Line, LineKind, PlatformPhase, request_id_prefix};

const TEXT: &[(&str, PlatformPhase)] = &[
    ("START RequestId: ", PlatformPhase::Start),
    ("END RequestId: ", PlatformPhase::End),
    ("REPORT RequestId: ", PlatformPhase::Report),
];

const JSON: &[(&str, PlatformPhase)] = &[
    ("platform.start", PlatformPhase::Start),
    ("platform.runtimeDone", PlatformPhase::End),
    ("platform.report", PlatformPhase::Report),
];

const TEXT_LIFECYCLE: &[(&str, Lifecycle)] = &[
    ("INIT_START ", Lifecycle::InitStart(InitType::OnDemand)),
    ("RESTORE_START ", Lifecycle::Restore),
    ("RESTORE_REPORT ", Lifecycle::RestoreReport),
];

const JSON_LIFECYCLE: &[(&str, Lifecycle)] = &[
    (
        "platform.initStart",
        Lifecycle::InitStart(InitType::OnDemand),
    ),
    ("platform.restoreStart", Lifecycle::Restore),
    ("platform.restoreReport", Lifecycle::RestoreReport),
];

/// Parses a text platform line (`START`, `END`, `REPORT`, `INIT_START`,
/// `RESTORE_START`, `RESTORE_REPORT`).
pub fn parse_text(raw: &str) -> Option<Line<'_>> {
    let first = *raw.as_bytes().first()?;
    if !matches!(first, b'S' | b'E' | b'R' | b'I') {
        return None;
    }
    if matches!(first, b'I' | b'R')
        && let Some(&(_, life)) = TEXT_LIFECYCLE.iter().find(|(p, _)| raw.starts_with(p))
    {
        return Some(Line {
            kind: LineKind::Lifecycle(life),
            printed_request_id: None,
        });
    }
    TEXT.iter().find_map(|&(prefix, phase)| {
        let rest = raw.strip_prefix(prefix)?;
        let id = request_id_prefix(rest)?;
        Some(Line {
            kind: LineKind::Platform(phase, id),
            printed_request_id: Some(id),
        })
    })
}

/// Parses a JSON platform record (`platform.start`, `platform.runtimeDone`,
/// `platform.report`), escaped or not. `None` when the object is not one.
pub fn parse_json(raw: &str) -> Option<Line<'_>> {
    let b = raw.as_bytes();
    // Asked of every JSON line: the searcher is built once.
    static PLATFORM: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(b"\"platform."));
    let at = PLATFORM.find(b)?;
    // The match must be the value of the top-level "type" key.
    let before = raw[..at].trim_end_matches([' ', ':', '"', '\\']);
    if !before.ends_with("type") {
        return None;
    }
    let rest = &raw[at + 1..];
    let named = |name: &str| {
        rest.starts_with(name) && matches!(rest.as_bytes().get(name.len()), Some(b'"' | b'\\'))
    };
    let Some(&(_, phase)) = JSON.iter().find(|(name, _)| named(name)) else {
        let &(_, life) = JSON_LIFECYCLE.iter().find(|(name, _)| named(name))?;
        let life = match life {
            Lifecycle::InitStart(_) => Lifecycle::InitStart(init_type(raw)),
            other => other,
        };
        return Some(Line {
            kind: LineKind::Lifecycle(life),
            printed_request_id: None,
        });
    };
    let id = json_string_field(raw, "requestId")?;
    Some(Line {
        kind: LineKind::Platform(phase, id),
        printed_request_id: Some(id),
    })
}

/// What a `platform.initStart`'s `initializationType` says.
fn init_type(raw: &str) -> InitType {
    match string_value(raw, "initializationType") {
        Some(v) if v.starts_with("lambda-managed-instances") => InitType::ManagedInstances,
        Some(v) if v.starts_with("snap-start") => InitType::SnapStart,
        _ => InitType::OnDemand,
    }
}

/// The text after `"key":"` in raw (possibly escaped) JSON, up to the end
/// of the line.
fn string_value<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
    let at = memmem::find(raw.as_bytes(), key.as_bytes())?;
    let rest = raw[at + key.len()..].trim_start_matches(['\\', '"']);
    Some(rest.strip_prefix(':')?.trim_start_matches([' ', '\\', '"']))
}

/// The tenant a JSON `platform.start` (or application line) names, for
/// functions with tenant isolation: `"tenantId":"<id>"`.
pub fn tenant_id(raw: &str) -> Option<&str> {
    let v = string_value(raw, "tenantId")?;
    let end = v
        .bytes()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':' | b'@')))
        .unwrap_or(v.len());
    (end > 0 && end <= 256).then(|| &v[..end])
}

/// A JSON `platform.runtimeDone` (or `platform.report`) whose status is
/// `timeout`: Lambda ended the invocation at the function's timeout.
pub(crate) fn timed_out(raw: &str) -> bool {
    raw.starts_with('{') && super::json_value_after_key(raw.as_bytes(), b"status", b"timeout")
}

/// The value of a `"key": "<token>"` field in raw (possibly escaped) JSON,
/// when it is a request-ID-like token.
pub(crate) fn json_string_field<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = memmem::find(&raw.as_bytes()[from..], key.as_bytes()) {
        let after = from + at + key.len();
        let rest = &raw[after..];
        let value = rest.trim_start_matches(['\\', '"']);
        if let Some(v) = value.strip_prefix(':') {
            let v = v.trim_start_matches([' ', '\\', '"']);
            return request_id_prefix(v);
        }
        from = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_records() {
        let l = parse_text(
            "REPORT RequestId: 6428b781-c80d-44e1-b961-5794a2f9cdad\\tDuration: 5059.37 ms",
        )
        .unwrap();
        assert_eq!(
            l.kind,
            LineKind::Platform(
                PlatformPhase::Report,
                "6428b781-c80d-44e1-b961-5794a2f9cdad"
            )
        );
        assert!(parse_text("STARTING the server").is_none());
        assert!(parse_text("END RequestId: ").is_none());
    }

    #[test]
    fn json_records_plain_and_escaped() {
        let plain = r#"{"time": "2026-11-28T08:08:23.242Z", "type": "platform.start", "record": {"requestId": "9bf4219f-e18d-4597-8c1b-0a9d768ef981", "version": "$LATEST"}}"#;
        let l = parse_json(plain).unwrap();
        assert_eq!(
            l.kind,
            LineKind::Platform(PlatformPhase::Start, "9bf4219f-e18d-4597-8c1b-0a9d768ef981")
        );
        let escaped = r#"{\"time\":\"2026-11-28T08:08:23.242Z\",\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"9bf4219f-e18d-4597-8c1b-0a9d768ef981\",\"status\":\"success\"}}"#;
        let l = parse_json(escaped).unwrap();
        assert_eq!(
            l.kind,
            LineKind::Platform(PlatformPhase::End, "9bf4219f-e18d-4597-8c1b-0a9d768ef981")
        );
        // An application line that merely mentions a platform record is not one.
        assert!(
            parse_json(r#"{"message":"saw platform.start","requestId":"9bf4219f-e18d"}"#).is_none()
        );
    }
}
