//! Real captures in, the recorder's ground truth out: every freeze timeout
//! found with the invocations that own its lines, and no genuine timeout
//! called a freeze one.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn every_recorded_timeout_is_found_with_the_right_invocations() {
    for dir in fixtures() {
        let truth = truth(&dir);
        assert!(
            truth
                .iter()
                .any(|t| t["kind"] == "keepalive_freeze_timeout"),
            "{}: a recording without a freeze timeout proves nothing",
            dir.display()
        );
        let found = scan_json(&[&dir.join("events.jsonl")]);
        assert_eq!(keys(&found), keys(&truth), "{}", dir.display());
    }
}

#[test]
fn a_freeze_timeout_names_two_invocations_even_when_both_lines_print_one() {
    let dir = &fixtures()[0];
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let freezes: Vec<&Value> = found
        .iter()
        .filter(|f| f["kind"] == "keepalive_freeze_timeout")
        .collect();
    assert!(!freezes.is_empty());
    for f in &freezes {
        assert_ne!(f["ping_request_id"], f["timeout_request_id"], "{f}");
        assert!(f["frozen_ms"].as_i64().unwrap() > 0, "{f}");
        assert!(f["timeout_at"].as_str().unwrap().ends_with('Z'));
        assert!(f["evidence"].as_array().unwrap().len() >= 2);
    }
    // grpc-js under Node <= 22 prints the pinging invocation's ID on the
    // timeout line: the printed ID lies, the finding does not.
    assert!(
        freezes
            .iter()
            .any(|f| f["library"] == "grpc-js"
                && f["timeout_line_request_id"] == f["ping_request_id"]),
        "expected a timeout line that prints the previous invocation's request ID"
    );
    for f in found.iter().filter(|f| f["kind"] == "keepalive_timeout") {
        assert_eq!(f["ping_request_id"], f["timeout_request_id"], "{f}");
    }
}

#[test]
fn demo_shows_a_freeze_timeout_across_two_request_ids() {
    let out = thawtrace(&["demo", "--format", "json"]);
    assert!(out.status.success());
    let found: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(found.iter().any(|f| f["kind"] == "keepalive_freeze_timeout"
        && f["ping_request_id"] != f["timeout_request_id"]));
    let text = thawtrace(&["demo"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("KEEPALIVE FREEZE TIMEOUT"), "{text}");
    assert!(
        text.contains("grpc.keepalive_timeout_ms"),
        "the fix names the grpc-js option"
    );
}

#[test]
fn streams_without_platform_lines_are_flagged() {
    // A subscription filter that drops START/END leaves only printed request
    // IDs to find invocations by: thawtrace says so rather than stay silent.
    let dir = without_platform_lines(&fixtures()[0]);
    let dir = dir.path();
    let out = thawtrace(&[
        "scan",
        "--format",
        "json",
        dir.join("events.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("have no platform records"));
    let with = thawtrace(&[
        "scan",
        "--format",
        "json",
        fixtures()[0].join("events.jsonl").to_str().unwrap(),
    ]);
    assert!(!String::from_utf8_lossy(&with.stderr).contains("have no platform records"));
}

/// Scans `fixture` without its platform records and requires the findings
/// of `library`'s streams to be the recorder's.
fn same_without_platform_lines(fixture: &std::path::Path, library: &str) {
    let dir = without_platform_lines(fixture);
    let dir = dir.path();
    let envs = environments(fixture);
    let mine: Vec<&str> = envs
        .iter()
        .filter(|e| e["library"] == library)
        .map(|e| e["log_stream"].as_str().unwrap())
        .collect();
    let want: Vec<Value> = truth(fixture)
        .iter()
        .filter(|t| mine.contains(&t["log_stream"].as_str().unwrap()))
        .cloned()
        .collect();
    assert!(want.iter().any(|t| t["kind"] == "keepalive_freeze_timeout"));
    let found: Vec<Value> = scan_json(&[&dir.join("events.jsonl")])
        .into_iter()
        .filter(|f| mine.contains(&f["log_stream"].as_str().unwrap()))
        .collect();
    assert_eq!(keys(&found), keys(&want), "{library}");
}

#[test]
fn grpc_js_streams_without_platform_lines_still_name_the_right_invocations() {
    // grpc-js prints its keepalive interval and ack timeout: a timer line
    // that fired late fired at a thaw, which places it without START/END.
    same_without_platform_lines(&fixtures()[0], "grpc-js");
}

#[test]
fn tonic_streams_without_platform_lines_use_the_instruments_thaw_event() {
    // tonic prints no timers; thawtrace-instrument logs how long each
    // invocation was frozen, which places the lines written at the thaw.
    let rust = fixtures()
        .into_iter()
        .find(|d| d.ends_with("recorded-rust"))
        .unwrap();
    same_without_platform_lines(&rust, "tonic");
}

/// A copy of a recording without its platform records (what a subscription
/// filter that drops START/END leaves), in a temporary directory.
fn without_platform_lines(fixture: &std::path::Path) -> tempfile::TempDir {
    let dir = tmp_dir("noplatform");
    let text = std::fs::read_to_string(fixture.join("events.jsonl")).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let m = v["message"].as_str().unwrap();
            let platform = ["START RequestId", "END RequestId", "REPORT RequestId"]
                .iter()
                .any(|p| m.starts_with(p));
            !(platform || m.contains("\"platform."))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("events.jsonl"), kept).unwrap();
    dir
}
