//! Lambda's other execution modes, recorded (tests/recorders/record_modes.py:
//! grpc-js and grpcio under Lambda Managed Instances, grpcio restored from
//! a SnapStart snapshot, a classic control) and scored against what the
//! harness saw: its proxy's frames, its emulator's timeline and the
//! functions' own responses, never thawtrace's rules. Precision and recall
//! are 1.0 for every kind of every environment, and no Managed Instances
//! stream yields a freeze timeout.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// How a finding is matched to the truth, by the mode of its stream:
/// the invocations it names (the wire knows no log event IDs).
fn score_key(f: &Value, mode: &str) -> String {
    let ids = |v: &Value| {
        let mut ids: Vec<&str> = v
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids.join(",")
    };
    match (f["kind"].as_str().unwrap(), mode) {
        ("snapstart_stale_connection", _) => format!("{} {}", f["kind"], f["request_id"]),
        ("keepalive_timeout", "managed-instances") => {
            format!("{} [{}]", f["kind"], ids(&f["failed_request_ids"]))
        }
        _ => format!(
            "{} {} {}",
            f["kind"], f["ping_request_id"], f["timeout_request_id"]
        ),
    }
}

const KINDS: [&str; 3] = [
    "keepalive_freeze_timeout",
    "keepalive_timeout",
    "snapstart_stale_connection",
];

#[test]
fn every_mode_is_scored_perfectly_per_environment_and_kind() {
    let dir = modes_fixture();
    let envs: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("environments.json")).unwrap())
            .unwrap();
    let truth = truth(&dir);
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let mut modes = BTreeMap::new();
    for env in &envs {
        let stream = env["log_stream"].as_str().unwrap();
        let mode = env["mode"].as_str().unwrap();
        modes.insert(mode.to_owned(), ());
        let of = |all: &[Value], kind: &str| {
            let mut k: Vec<String> = all
                .iter()
                .filter(|f| f["log_stream"] == stream && f["kind"] == kind)
                .map(|f| score_key(f, mode))
                .collect();
            k.sort();
            k
        };
        for kind in KINDS {
            assert_eq!(
                of(&found, kind),
                of(&truth, kind),
                "{} ({mode}, {}): {kind}",
                env["name"],
                env["setting"]
            );
        }
        for f in found.iter().filter(|f| f["log_stream"] == stream) {
            if f["execution_mode"].is_string() {
                assert_eq!(f["execution_mode"], mode, "{f}");
            }
            if mode == "managed-instances" {
                assert_ne!(f["kind"], "keepalive_freeze_timeout", "{f}");
            }
        }
    }
    assert_eq!(
        modes.keys().map(String::as_str).collect::<Vec<_>>(),
        ["classic", "managed-instances", "snapstart"],
        "a recording of every mode"
    );
    assert!(
        truth
            .iter()
            .any(|t| t["kind"] == "snapstart_stale_connection"),
        "a stale connection to find"
    );
    assert!(
        envs.iter().any(|e| e["mode"] == "managed-instances")
            && truth.iter().any(|t| t["kind"] == "keepalive_timeout"
                && t["failed_request_ids"]
                    .as_array()
                    .is_some_and(|a| a.len() > 1)),
        "a Managed Instances teardown that failed several invocations"
    );
}

#[test]
fn the_summary_names_the_modes_and_the_report_the_restore() {
    let dir = modes_fixture();
    let out = thawtrace(&["scan", dir.join("events.jsonl").to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    let summary = text.lines().last().unwrap();
    assert!(summary.contains("managed-instances"), "{summary}");
    assert!(summary.contains("snapstart_stale_connection"), "{summary}");
    assert!(
        !err.contains("no platform records"),
        "a SnapStart init's own stream has no invocation to guess: {err}"
    );
    assert!(text.contains("SNAPSTART STALE CONNECTION"), "{text}");
    assert!(
        text.contains("register_after_restore"),
        "the fix names Python's hook"
    );
    assert!(
        text.contains("keepalive timeout (Managed Instances: never frozen)"),
        "{text}"
    );
}
