//! Lambda's other execution modes, recorded (tests/recorders/record_modes.py:
//! grpc-js and grpcio under Lambda Managed Instances, grpcio restored from
//! a SnapStart snapshot, a classic control) and scored against what the
//! harness saw: its proxy's frames, its emulator's timeline and the
//! functions' own responses, never thawtrace's rules. Precision and recall
//! are 1.0 for every kind of every environment, and no Managed Instances
//! stream yields a freeze timeout.

mod common;

use common::*;

#[test]
fn every_mode_is_scored_perfectly_per_environment_and_kind() {
    let dir = modes_fixture();
    let modes = score_modes(&dir);
    assert_eq!(
        modes,
        ["classic", "managed-instances", "snapstart"],
        "a recording of every mode"
    );
    let truth = truth(&dir);
    assert!(
        truth
            .iter()
            .any(|t| t["kind"] == "snapstart_stale_connection"),
        "a stale connection to find"
    );
    assert!(
        truth.iter().any(|t| t["kind"] == "keepalive_timeout"
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
