//! Detection under the settings users choose, not the ones our recorders
//! happen to use: the same grpc-js and grpcio functions recorded under
//! each trace-flag setting (`record.py --matrix`: grpcio with and without
//! the `http` tracer and with `all`; grpc-js with its default tracers,
//! `keepalive` only, `transport,subchannel` only and none; keepalive off),
//! frozen with SIGSTOP, scored against the truth the harness saw on the
//! wire (the delaying proxy's pings, acks and closes, placed in
//! invocations by the emulator), never against our own rules.
//!
//! Every setting the logs can reveal must score precision = recall = 1.0
//! per kind; a setting whose logs print nothing about keepalive is held to
//! precision 1.0 (nothing reported that did not happen) and the scan must
//! say it could not judge it (tests/score.py holds the list).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// Scores a matrix recording with tests/score.py; returns its rows.
fn score(dir: &Path, what: &str) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(repo().join("tests/score.py"))
        .arg(dir)
        .arg(env!("CARGO_BIN_EXE_thawtrace"))
        .arg("--json")
        .output()
        .unwrap();
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for r in &rows {
        eprintln!(
            "{what}: {:<28} {:<10} {:<26} truth {} found {} precision {} recall {}",
            r["environment"].as_str().unwrap(),
            r["setting"].as_str().unwrap(),
            r["kind"].as_str().unwrap(),
            r["truth"],
            r["found"],
            r["precision"],
            r["recall"]
        );
    }
    assert!(
        out.status.success(),
        "{what}: a setting scored below 1.0: {}",
        rows.iter()
            .filter(|r| !r["missed"].as_array().unwrap().is_empty()
                || !r["spurious"].as_array().unwrap().is_empty())
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    rows
}

/// What every matrix recording must hold for its score to mean something:
/// timeouts under the setting that prints no timeout line (`kinds`: which
/// must be there), and the blind settings reported as unjudged.
fn assert_the_matrix_tests_something(dir: &Path, rows: &[Value], kinds: &[&str], what: &str) {
    let truth_in = |setting: &str, kind: &str| -> u64 {
        rows.iter()
            .filter(|r| r["setting"] == setting && r["kind"] == kind)
            .map(|r| r["truth"].as_u64().unwrap())
            .sum()
    };
    assert!(
        kinds.iter().any(|k| truth_in("no-http", k) > 0),
        "{what}: none of {kinds:?} under grpcio without the http tracer"
    );
    let out = thawtrace(&[
        "scan",
        "--format",
        "json",
        dir.join("events.jsonl").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no keepalive trace line"),
        "{what}: the blind settings were not reported: {err}"
    );
    // Each stream of a setting that prints no keepalive line, and had a
    // failed call, is named; no stream of a setting that prints them is.
    let envs = environments(dir);
    for env in &envs {
        let stream = env["log_stream"].as_str().unwrap();
        let named = err.contains(&format!(
            "thawtrace:   {} {stream}",
            env["log_group"].as_str().unwrap()
        ));
        match env["setting"].as_str().unwrap() {
            "none" => assert!(
                named,
                "{what}: the untraced stream {stream} is not named: {err}"
            ),
            "http" | "no-http" | "all" | "default" | "keepalive" if env["keepalive"] == true => {
                assert!(
                    !named,
                    "{what}: {stream} prints keepalive lines, yet is named: {err}"
                )
            }
            _ => {}
        }
    }
}

#[test]
fn the_recorded_settings_matrix_scores_perfectly_where_the_logs_can_tell() {
    let dir = settings_fixture();
    let rows = score(&dir, "recorded-settings");
    assert_the_matrix_tests_something(
        &dir,
        &rows,
        &["keepalive_freeze_timeout"],
        "recorded-settings",
    );
}

#[test]
fn a_fresh_recording_of_every_setting_scores_perfectly_where_the_logs_can_tell() {
    let (seed, out) = fresh_recording_with("record.py", "fresh-settings", &["--matrix".as_ref()]);
    let what = format!("fresh settings matrix, seed {seed}");
    let rows = score(out.path(), &what);
    // grpcio sometimes reads a late ack before its expired timer fires (a
    // real race): a fresh recording may catch no freeze timeout there, but
    // the paused server always gives a genuine one.
    assert_the_matrix_tests_something(
        out.path(),
        &rows,
        &["keepalive_freeze_timeout", "keepalive_timeout"],
        &what,
    );
}
