//! A log stream may be named anything, and a log line may say anything: the
//! text report and the messages on stderr show what the logs hold with its
//! control characters escaped (`\x1b`, `\u{9b}`), the way ripgrep and `ls`
//! do, so a log cannot move the cursor, retitle the terminal or hide a line.
//! JSON stays JSON: serde escapes it, and a program reads the real name.

mod common;

use common::*;
use serde_json::Value;

const STREAM: &str = "2026/11/28/[$LATEST]\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{7f}\r\tend";
const GROUP: &str = "/aws/lambda/orders-node\u{1b}[8m";
const ADDRESS: &str = "127.0.0.1:45615\u{1b}[1A\u{85}";

/// Characters that reach a terminal as something other than text: every
/// control character but the report's own line ends.
fn raw_controls(s: &str) -> Vec<char> {
    s.chars().filter(|&c| c.is_control() && c != '\n').collect()
}

/// The recorded fixture with one environment's stream and function renamed,
/// its event IDs prefixed with a C1 control and its connection's address
/// followed by a cursor movement, as a hostile or careless log would have
/// them.
fn hostile_events(dir: &std::path::Path) -> std::path::PathBuf {
    let fixture = &fixtures()[0];
    let stream = truth(fixture)[0]["log_stream"].as_str().unwrap().to_owned();
    let mut out = String::new();
    for mut e in events(fixture) {
        if e["logStream"] == stream.as_str() {
            e["logStream"] = STREAM.into();
            e["logGroup"] = GROUP.into();
            e["id"] = format!("\u{9b}{}", e["id"].as_str().unwrap()).into();
            let message = e["message"]
                .as_str()
                .unwrap()
                .replace("127.0.0.1:45615 ", &format!("{ADDRESS} "));
            e["message"] = message.into();
        }
        out.push_str(&e.to_string());
        out.push('\n');
    }
    let path = dir.join("hostile.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn the_text_report_escapes_what_the_logs_hold() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_events(dir.path());
    let out = thawtrace(&["scan", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(raw_controls(&text), Vec::<char>::new(), "{text}");
    for shown in [
        // The stream, as a person reads it.
        r"2026/11/28/[$LATEST]\x1b]0;owned\x07\x1b[2J\u{9b}31m\x7f\r\tend",
        // The function (from the log group).
        r"orders-node\x1b[8m",
        // The connection.
        r"127.0.0.1:45615\x1b[1A\u{85}",
        // The evidence: event IDs.
        r"\u{9b}0000000179585",
    ] {
        assert!(text.contains(shown), "{shown} not in:\n{text}");
    }
}

#[test]
fn json_keeps_the_names_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_events(dir.path());
    let found = scan_json(&[&path]);
    let mine: Vec<&Value> = found.iter().filter(|f| f["log_stream"] == STREAM).collect();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|f| f["log_group"] == GROUP));
    assert!(
        mine.iter()
            .all(|f| f["connection"].as_str().unwrap().contains(ADDRESS))
    );
}

#[test]
fn messages_on_stderr_escape_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad\u{1b}[2J\u{9b}.json");
    std::fs::write(&bad, b"{]").unwrap();
    let out = thawtrace(&["scan", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(raw_controls(&err), Vec::<char>::new(), "{err}");
    assert!(err.contains(r"bad\x1b[2J\u{9b}.json"), "{err}");
}
