//! The example function (`examples/lambda_grpc.rs`), built as a real
//! lambda_runtime binary, run against a local Lambda Runtime API that prints
//! the platform lines and freezes it with SIGSTOP between invocations,
//! calling a real tonic server (`examples/echo_server.rs`) on loopback
//! through a delaying proxy. Its captured log is scanned by `thawtrace`:
//! every freeze timeout is found with the invocations that own its lines,
//! every genuine one too, with the failed call; with keepalive off, nothing.
//!
//! Needs python3 (the harness); the Rust peers are built by `cargo test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `cargo test` builds the examples next to the test binaries' `deps/`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned()
}

fn thawtrace() -> PathBuf {
    let dir = target_dir();
    let exe = dir.join("thawtrace");
    if !exe.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "thawtrace", "--bin", "thawtrace"])
            .current_dir(repo())
            .status()
            .unwrap();
        assert!(status.success());
    }
    exe
}

fn key(f: &Value) -> String {
    format!(
        "{} {} {} {} {} {}",
        f["kind"],
        f["log_stream"],
        f["ping_event_id"],
        f["timeout_event_id"],
        f["ping_request_id"],
        f["timeout_request_id"]
    )
}

#[test]
fn frozen_rust_function_findings_match_the_recorders_truth() {
    let examples = target_dir().join("examples");
    assert!(
        examples.join("lambda_grpc").exists() && examples.join("echo_server").exists(),
        "examples not built in {}: cargo build -p thawtrace-instrument --examples",
        examples.display()
    );
    let python = std::env::var("THAWTRACE_PYTHON").unwrap_or_else(|_| "python3".into());
    let seed = std::env::var("THAWTRACE_SEED").unwrap_or_else(|_| "11".into());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let status = Command::new(&python)
        .arg(repo().join("tests/recorders/record.py"))
        .args([
            "--out",
            out.to_str().unwrap(),
            "--seed",
            &seed,
            "--only",
            "rust",
            "--rust-bin",
        ])
        .arg(&examples)
        .status()
        .unwrap();
    assert!(status.success(), "recording failed");

    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("truth.json")).unwrap()).unwrap();
    let truth = truth["findings"].as_array().unwrap().clone();
    assert!(
        truth
            .iter()
            .any(|t| t["kind"] == "keepalive_freeze_timeout"),
        "no ping was caught in flight"
    );
    assert!(
        truth.iter().any(|t| t["kind"] == "keepalive_timeout"),
        "no genuine timeout was recorded"
    );

    let scan = Command::new(thawtrace())
        .args(["scan", "--format", "json"])
        .arg(out.join("events.jsonl"))
        .output()
        .unwrap();
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    // The failures; near misses (warnings) are scored against the
    // harness's record of each ping in the collector's tests.
    let found: Vec<Value> = String::from_utf8(scan.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|f| f["kind"] != "keepalive_near_miss")
        .collect();

    let mut want: Vec<String> = truth.iter().map(key).collect();
    let mut got: Vec<String> = found.iter().map(key).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    for f in &found {
        assert_eq!(f["library"], "tonic");
        let conn = f["connection"].as_str().unwrap();
        assert!(
            conn.starts_with('#') && conn.contains("127.0.0.1:"),
            "{conn}"
        );
        if f["kind"] == "keepalive_freeze_timeout" {
            assert_ne!(f["ping_request_id"], f["timeout_request_id"]);
            assert!(f["frozen_ms"].as_i64().unwrap() >= 1000, "{f}");
        } else {
            // A genuine timeout tears down the connection the call was on.
            assert_eq!(f["failed_call"]["code"], "UNAVAILABLE", "{f}");
        }
    }
    // With keepalive off the same function is frozen just as often and
    // nothing is reported.
    let envs: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("environments.json")).unwrap())
            .unwrap();
    let off = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "rust-tonic-keepalive-off")
        .expect("the keepalive-off environment was recorded");
    assert!(found.iter().all(|f| f["log_stream"] != off["log_stream"]));
}
