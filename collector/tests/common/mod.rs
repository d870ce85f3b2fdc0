//! Helpers shared by the collector's integration tests.
#![allow(dead_code)]

pub mod receiver;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::{Value, json};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn fixtures() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("truth.json").exists())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no recorded fixtures under tests/fixtures"
    );
    dirs
}

/// The findings a recording's ground truth expects (`truth.json`).
pub fn truth(dir: &Path) -> Vec<Value> {
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    truth["findings"].as_array().unwrap().clone()
}

pub fn thawtrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thawtrace"))
        .args(args)
        .output()
        .unwrap()
}

pub fn scan_json(paths: &[&Path]) -> Vec<Value> {
    let mut args = vec!["scan", "--format", "json"];
    let owned: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(owned.iter().map(String::as_str));
    let out = thawtrace(&args);
    assert!(
        out.status.success(),
        "scan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Subscription messages, as CloudWatch Logs builds them: one per stream,
/// split into batches of at most `per_batch` events.
pub fn subscription_messages(events: &[Value], per_batch: usize) -> Vec<Value> {
    let mut streams: Vec<(String, String)> = Vec::new();
    for e in events {
        let key = (
            e["logGroup"].as_str().unwrap().to_owned(),
            e["logStream"].as_str().unwrap().to_owned(),
        );
        if !streams.contains(&key) {
            streams.push(key);
        }
    }
    let mut out = Vec::new();
    for (group, stream) in streams {
        let mine: Vec<Value> = events
            .iter()
            .filter(|e| e["logGroup"] == group.as_str() && e["logStream"] == stream.as_str())
            .map(|e| json!({"id": e["id"], "timestamp": e["timestamp"], "message": e["message"]}))
            .collect();
        for chunk in mine.chunks(per_batch) {
            out.push(json!({
                "messageType": "DATA_MESSAGE",
                "owner": "123456789012",
                "logGroup": group,
                "logStream": stream,
                "subscriptionFilters": ["thawtrace"],
                "logEvents": chunk,
            }));
        }
    }
    out
}

/// The keys that identify a finding and its request IDs.
pub fn key(f: &Value) -> String {
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

pub fn keys(findings: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = findings.iter().map(key).collect();
    k.sort();
    k
}
