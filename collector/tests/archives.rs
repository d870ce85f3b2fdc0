//! Log archives as S3 holds them: a recording written in CloudWatch Logs'
//! export layout and as Firehose objects (tests/harness/s3_layouts.py)
//! gives the findings a scan of its JSON lines gives; moto's own
//! `create_export_task` output is read without error.
//!
//! An export keeps no event IDs and no log group (only its prefix), so an
//! export's findings are compared without them: kind, streams, times,
//! request IDs, connection and every other fact. Firehose objects hold the
//! subscription messages themselves: their findings are compared whole.
//!
//! The writer needs python3; the moto test needs moto (`bash
//! tests/setup.sh`, THAWTRACE_PYTHON=tests/.deps/venv/bin/python).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn python() -> String {
    std::env::var("THAWTRACE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The fixture's recording written in every S3 layout, under a temporary
/// folder: `export/`, `firehose-<style>/`.
fn layouts(fixture: &Path) -> tempfile::TempDir {
    let dir = tmp_dir("s3-layouts");
    let status = Command::new(python())
        .arg(repo().join("tests/harness/s3_layouts.py"))
        .arg(fixture.join("events.jsonl"))
        .arg(dir.path())
        .status()
        .expect("python3 runs");
    assert!(status.success(), "s3_layouts.py wrote the layouts");
    dir
}

/// The scan options a fixture was recorded with (its `scan-args.json`).
fn args_of(fixture: &Path) -> Vec<String> {
    if fixture.join("scan-args.json").exists() {
        scan_args(fixture)
    } else {
        Vec::new()
    }
}

/// A finding as an export can give it back: without its event IDs (the
/// export's are derived from time and place; also those of a failed call)
/// and its log group (the export's prefix names it); lists sorted.
fn without_ids(f: &Value) -> String {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.retain(|k, _| k != "evidence" && k != "log_group" && !k.ends_with("event_id"));
                o.values_mut().for_each(strip);
            }
            Value::Array(items) => {
                items.iter_mut().for_each(strip);
                items.sort_by_key(Value::to_string);
            }
            _ => {}
        }
    }
    let mut f = f.clone();
    strip(&mut f);
    f.to_string()
}

fn sorted(findings: &[Value], key: impl Fn(&Value) -> String) -> Vec<String> {
    let mut k: Vec<String> = findings.iter().map(key).collect();
    k.sort();
    k
}

/// The keepalive recording and the network recording.
fn recordings() -> Vec<PathBuf> {
    vec![fixtures()[0].clone(), network_fixture()]
}

#[test]
fn an_export_gives_the_findings_of_its_json_lines() {
    for fixture in recordings() {
        let args = args_of(&fixture);
        let want = scan_json_with(&[&fixture.join("events.jsonl")], &args);
        assert!(!want.is_empty(), "{} has findings", fixture.display());
        let dir = layouts(&fixture);
        let export = dir.path().join("export");
        let got = scan_json_with(&[&export], &args);
        assert_eq!(
            sorted(&got, without_ids),
            sorted(&want, without_ids),
            "{}: the export's findings",
            fixture.display()
        );
        // The prefix names the group; the IDs are the same on every run.
        assert!(
            got.iter()
                .all(|f| f["log_group"].as_str().unwrap().starts_with("aws/lambda/"))
        );
        assert_eq!(got, scan_json_with(&[&export], &args), "stable event IDs");
    }
}

#[test]
fn export_group_names_the_group_of_an_export() {
    let fixture = &fixtures()[0];
    let dir = layouts(fixture);
    let got = scan_json_with(
        &[&dir.path().join("export")],
        &["--export-group".into(), "/aws/lambda/orders".into()],
    );
    assert!(!got.is_empty());
    assert!(got.iter().all(|f| f["log_group"] == "/aws/lambda/orders"));
}

#[test]
fn firehose_objects_give_the_findings_of_their_json_lines() {
    for fixture in recordings() {
        let args = args_of(&fixture);
        let want = scan_json_with(&[&fixture.join("events.jsonl")], &args);
        let dir = layouts(&fixture);
        for style in [
            "records-gzip",
            "records-gzip-newline",
            "plain-newline",
            "plain-concat",
            "gzip-newline",
            "gzip-records-gzip",
        ] {
            let got = scan_json_with(&[&dir.path().join(format!("firehose-{style}"))], &args);
            assert_eq!(
                sorted(&got, Value::to_string),
                sorted(&want, Value::to_string),
                "{}: Firehose objects, {style}",
                fixture.display()
            );
        }
    }
}

#[test]
fn a_corrupt_object_in_an_export_is_named_and_the_rest_scanned() {
    let fixture = &fixtures()[0];
    let dir = layouts(fixture);
    let export = dir.path().join("export");
    let mut objects = Vec::new();
    let mut stack = vec![export.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "gz") {
                objects.push(p);
            }
        }
    }
    objects.sort();
    let bad = &objects[0];
    let bytes = std::fs::read(bad).unwrap();
    std::fs::write(bad, &bytes[..bytes.len() / 2]).unwrap();
    let out = thawtrace(&["scan", "--format", "json", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: invalid gzip data", bad.display())),
        "{stderr}"
    );
    assert!(stderr.contains("aws-logs-write-test: skipped"), "{stderr}");
    let findings = String::from_utf8_lossy(&out.stdout);
    assert!(findings.contains("keepalive_freeze_timeout"), "{findings}");
}

#[test]
fn a_moto_export_is_read_without_error() {
    let have_moto = Command::new(python())
        .args(["-c", "import moto.server, boto3"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have_moto,
        "moto is not installed: bash tests/setup.sh, THAWTRACE_PYTHON=tests/.deps/venv/bin/python"
    );
    let dir = tmp_dir("moto-export");
    let out = Command::new(python())
        .arg(repo().join("tests/harness/moto_export.py"))
        .arg(fixtures()[0].join("events.jsonl"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "moto_export.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let put: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let scan = thawtrace(&["scan", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&scan.stderr);
    assert!(scan.status.success(), "{stderr}");
    assert!(!stderr.contains("malformed"), "{stderr}");
    let report = format!("{}{stderr}", String::from_utf8_lossy(&scan.stdout));
    assert!(
        report.contains(&format!("thawtrace: {put} events")),
        "every event moto exported was read: {report}"
    );
}
