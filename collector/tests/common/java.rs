//! Scoring of a Java (grpc-java) recording against the harness's truth
//! (record_java.py): java_recorded.rs and fresh_java.rs.

use std::collections::BTreeSet;
use std::path::Path;

use super::scan_json;
use serde_json::Value;

const KINDS: [&str; 2] = ["keepalive_freeze_timeout", "keepalive_timeout"];

fn key(f: &Value) -> (String, String, String) {
    let s = |k: &str| f[k].as_str().unwrap_or("").to_owned();
    (
        s("log_stream"),
        s("ping_request_id"),
        s("timeout_request_id"),
    )
}

/// Per environment and kind: (setting, kind, truth, found, true positives).
pub fn score(
    dir: &Path,
    found: &[Value],
) -> Vec<(String, String, &'static str, usize, usize, usize)> {
    let truth = &super::harness_truth(dir);
    let envs = super::environments(dir);
    let mut rows = Vec::new();
    for env in &envs {
        let stream = env["log_stream"].as_str().unwrap();
        for kind in KINDS {
            let of = |fs: &[Value]| -> BTreeSet<(String, String, String)> {
                fs.iter()
                    .filter(|f| f["kind"] == kind && f["log_stream"] == stream)
                    .map(key)
                    .collect()
            };
            let (want, got) = (of(truth), of(found));
            let counted = |fs: &[Value]| {
                fs.iter()
                    .filter(|f| f["kind"] == kind && f["log_stream"] == stream)
                    .count()
            };
            assert_eq!(
                got.len(),
                counted(found),
                "{stream}: a {kind} reported twice"
            );
            rows.push((
                env["name"].as_str().unwrap().to_owned(),
                env["setting"].as_str().unwrap().to_owned(),
                kind,
                counted(truth),
                got.len(),
                want.intersection(&got).count(),
            ));
        }
    }
    rows
}

/// Asserts precision = recall = 1.0 wherever keepalive frames are printed
/// (`fine`, `log4j2`), precision 1.0 (nothing found) where they are not
/// (`none`), for the timeouts and the near misses; returns how many near
/// misses matched the harness's record.
pub fn assert_perfect(dir: &Path, what: &str) -> usize {
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let rows = score(dir, &found);
    for (name, setting, kind, truth, got, tp) in &rows {
        eprintln!("{what}: {name:<26} {kind:<26} truth {truth} found {got} matched {tp}");
        assert_eq!(
            tp, got,
            "{what}: {name}: {kind}: a finding the harness did not see"
        );
        if shows_frames(setting) {
            assert_eq!(tp, truth, "{what}: {name}: {kind}: missed");
        }
    }
    let total = |kind: &str| -> usize {
        rows.iter()
            .filter(|r| r.2 == kind && shows_frames(&r.1))
            .map(|r| r.3)
            .sum()
    };
    assert!(
        total("keepalive_freeze_timeout") > 0,
        "{what}: no freeze timeout recorded where frames are printed: the score proves nothing"
    );
    assert!(
        total("keepalive_timeout") > 0,
        "{what}: no genuine timeout recorded where frames are printed"
    );
    // The stream whose logging hides keepalive, with its failed call, is
    // named as unjudged; no stream that prints the frames is.
    let out = super::thawtrace(&[
        "scan",
        "--format",
        "json",
        dir.join("events.jsonl").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    let envs = super::environments(dir);
    for env in &envs {
        let named = err.contains(&format!(
            "thawtrace:   {} {}",
            env["log_group"].as_str().unwrap(),
            env["log_stream"].as_str().unwrap()
        ));
        match env["setting"].as_str().unwrap() {
            // JUL's default, or Log4j 2 with io.grpc.netty at INFO: a failed
            // call and nothing about keepalive.
            "none" | "log4j2-info" => assert!(
                named,
                "{what}: the INFO stream {} is not named as unjudged: {err}",
                env["name"]
            ),
            _ => assert!(
                !named,
                "{what}: {} prints keepalive frames, yet is named: {err}",
                env["name"]
            ),
        }
    }
    for f in found
        .iter()
        .filter(|f| KINDS.contains(&f["kind"].as_str().unwrap_or("")))
    {
        assert_eq!(f["library"], "grpc-java", "{f}");
        assert_eq!(f["inferred_from"], "go_away", "{f}");
    }
    // Near misses: the frame logger shows a keepalive ping and its ack at
    // FINE; grpc-java never prints keepAliveTimeout, so no margin.
    super::assert_near_misses(
        dir,
        what,
        |env| shows_frames(env["setting"].as_str().unwrap_or("")),
        |_| false,
    )
}

/// The settings whose logs print Netty's frames: JUL at FINE for
/// io.grpc.netty, or Log4j 2 at DEBUG for it (`log4j2`, and `log4j2-json`
/// in the JSON log format).
pub fn shows_frames(setting: &str) -> bool {
    matches!(setting, "fine" | "log4j2" | "log4j2-json")
}

/// A recording of Java functions restored from a SnapStart snapshot
/// (`record_modes.py --java --only java-snapstart`) scored per environment
/// and kind against the harness's truth (`score_modes`), with a stale
/// connection to find at both JUL settings and in both log formats, and
/// negatives (re-created in `afterRestore`, lazy, unused) with none.
pub fn assert_snapstart_perfect(dir: &Path, what: &str) {
    assert_eq!(super::score_modes(dir), ["snapstart"], "{what}");
    let truth = super::truth(dir);
    let envs = super::environments(dir);
    let stale = |env: &Value| {
        truth
            .iter()
            .filter(|t| t["log_stream"] == env["log_stream"])
            .count()
    };
    for setting in ["fine", "info"] {
        for format in ["text", "json"] {
            assert!(
                envs.iter().any(|e| e["setting"] == setting
                    && e["format"] == format
                    && e["library"] == "grpc-java"
                    && stale(e) > 0),
                "{what}: a stale connection to find at {setting}, {format}"
            );
        }
    }
    let negatives: Vec<&Value> = envs
        .iter()
        .filter(|e| {
            e["recreate_on_restore"].is_string()
                || e["connect_at_init"] == false
                || e["uses_connection_after_restore"] == false
        })
        .collect();
    assert!(negatives.len() >= 3, "{what}: negatives {negatives:?}");
    for e in negatives {
        assert_eq!(stale(e), 0, "{what}: {}", e["name"]);
    }
}

/// A network recording of Java functions (`record_network.py --only
/// nat-java` or `--only stall-java`) scanned with its scan-args: per
/// environment, the findings are the truth's (the NAT proxy's resets, the
/// saturated listener's stalled connects) wherever the logs can show them;
/// in the `blind` settings (their logs print nothing that tells the failure
/// from another), nothing is reported that did not happen. Negatives
/// included: at least `min_found` truth entries in settings that show
/// them, and an environment with none.
pub fn assert_network_perfect(dir: &Path, what: &str, blind: &[&str], min_found: usize) {
    let truth = super::truth(dir);
    let found = super::scan_json_with(&[&dir.join("events.jsonl")], &super::scan_args(dir));
    let envs = super::environments(dir);
    let (mut hits, mut negatives) = (BTreeSet::new(), 0);
    for env in &envs {
        let stream = env["log_stream"].as_str().unwrap();
        let of = |all: &[Value]| {
            let on: Vec<Value> = all
                .iter()
                .filter(|f| {
                    f["log_stream"] == stream
                        || f["log_streams"]
                            .as_array()
                            .is_some_and(|s| s.iter().any(|s| s == stream))
                })
                .cloned()
                .collect();
            super::keys(&on)
        };
        let (found, truth) = (of(&found), of(&truth));
        let setting = env["setting"].as_str().unwrap_or("");
        if blind.contains(&setting) {
            assert!(
                found.iter().all(|f| truth.contains(f)),
                "{what}: {setting} (blind): {found:?} not in {truth:?}"
            );
            continue;
        }
        assert_eq!(found, truth, "{what}: {setting}");
        negatives += usize::from(truth.is_empty());
        hits.extend(truth);
    }
    assert!(
        hits.len() >= min_found,
        "{what}: failures to find where the logs show them: {hits:?}"
    );
    assert!(negatives >= 1, "{what}: a negative");
}
