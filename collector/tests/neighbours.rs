//! The neighbouring failures, from real clients: NAT idle resets (grpc-js
//! and botocore behind an idle-dropping proxy), connect stalls (bursts of
//! environments against a listener that drops SYNs, in a private network
//! namespace) and duplicate invocations (async retries, SQS and EventBridge
//! redeliveries). The recording's ground truth comes from the proxy's and
//! the emulator's own logs (tests/recorders/record_network.py).

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

fn scan(dir: &std::path::Path, extra: &[String]) -> Vec<Value> {
    scan_json_with(&[&dir.join("events.jsonl")], extra)
}

fn kinds(findings: &[Value]) -> BTreeSet<String> {
    findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// The recording's truth holds every neighbouring kind.
fn assert_every_kind_in_truth(dir: &std::path::Path, what: &str) -> Vec<Value> {
    let truth = truth(dir);
    let want: BTreeSet<String> = ["nat_idle_reset", "connect_stall", "duplicate_invocation"]
        .map(String::from)
        .into();
    assert_eq!(
        kinds(&truth),
        want,
        "{what}: every kind must be in the truth"
    );
    truth
}

fn assert_matches_truth(dir: &std::path::Path, what: &str) {
    let truth = assert_every_kind_in_truth(dir, what);
    let found = scan(dir, &scan_args(dir));
    assert_eq!(keys(&found), keys(&truth), "{what}");
}

#[test]
fn every_recorded_neighbouring_failure_is_found() {
    assert_matches_truth(&network_fixture(), "recorded-network");
}

#[test]
fn incidents_carry_their_facts_and_advice() {
    let dir = network_fixture();
    let found = scan(&dir, &scan_args(&dir));
    for f in &found {
        for field in [
            "kind",
            "log_group",
            "log_stream",
            "log_streams",
            "request_ids",
            "evidence",
            "first_at",
            "advice",
        ] {
            assert!(!f[field].is_null(), "{field} missing in {f}");
        }
        match f["kind"].as_str().unwrap() {
            "nat_idle_reset" => {
                assert!(f["idle_ms"].as_i64().unwrap() >= 6000, "{f}");
                assert!(
                    ["reset", "read_timeout", "function_timeout"]
                        .contains(&f["cause"].as_str().unwrap())
                );
            }
            "connect_stall" => {
                assert!(f["environments"].as_u64().unwrap() >= 3, "{f}");
                assert!(!f["destinations"].as_array().unwrap().is_empty(), "{f}");
                assert!(
                    f["advice"]
                        .as_str()
                        .unwrap()
                        .contains("ErrorPortAllocation")
                );
            }
            "duplicate_invocation" => {
                assert!(f["attempts"].as_u64().unwrap() >= 2, "{f}");
            }
            other => panic!("unexpected kind {other}: {f}"),
        }
    }
    // An async invocation retried twice: three STARTs of one request ID,
    // in two environments.
    assert!(found.iter().any(|f| f["reason"] == "retried"
        && f["attempts"] == 3
        && f["log_streams"].as_array().unwrap().len() == 2));
    // The key names what was delivered twice.
    assert!(found.iter().any(|f| f["reason"] == "same_key"
        && f["key"].as_str().unwrap().starts_with("detail.orderId=o-")));
}

#[test]
fn aws_defaults_do_not_call_a_seconds_long_idle_a_nat_reset() {
    // At 350 s (the default) the recording's 6-9 s idles are nothing; the
    // stalls of 5, 3 and 3 environments stay; without the custom key the
    // EventBridge redelivery is not seen.
    let found = scan(&network_fixture(), &[]);
    let count = |k: &str| found.iter().filter(|f| f["kind"] == k).count();
    assert_eq!(count("nat_idle_reset"), 0);
    assert_eq!(count("connect_stall"), 3);
    assert!(!found.iter().any(|f| f["reason"] == "same_key"
        && f["key"].as_str().is_some_and(|k| k.starts_with("detail."))));
    // A higher bar for a stall: 4 environments leave only the 5-environment one.
    let found = scan(
        &network_fixture(),
        &["--connect-stall-min-envs".into(), "4".into()],
    );
    let stalls: Vec<&Value> = found
        .iter()
        .filter(|f| f["kind"] == "connect_stall")
        .collect();
    assert_eq!(stalls.len(), 1);
    assert_eq!(stalls[0]["environments"], 5);
}

#[test]
fn bad_thresholds_are_refused_with_the_option_named() {
    for (args, needle) in [
        (vec!["--nat-idle-timeout", "soon"], "--nat-idle-timeout"),
        (
            vec!["--connect-stall-min-envs", "0"],
            "--connect-stall-min-envs",
        ),
        (vec!["--idempotency-key", "detail..id"], "idempotency key"),
    ] {
        let mut all = vec!["scan", "--format", "json"];
        all.extend(&args);
        let events = network_fixture().join("events.jsonl");
        let path = events.display().to_string();
        all.push(&path);
        let out = thawtrace(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn the_lambda_collector_reports_them_batch_by_batch_with_emf_metrics() {
    // One subscription message per stream, as CloudWatch Logs delivers
    // them; the cross-stream kinds come from the warm process's memory.
    let dir = network_fixture();
    let messages = subscription_messages(&events(&dir), 100_000);
    assert_collector_reports_the_truth(&dir, &messages, None, "one batch per stream");
}

#[test]
fn a_backlog_replayed_hours_late_in_many_batches_is_joined_as_a_live_feed() {
    // After an outage, a Kinesis backlog arrives seven hours late, longer
    // than the duplicate window, in small batches whose streams interleave
    // in time order. Event time decides what is joined and forgotten, not
    // the collector's clock.
    let dir = network_fixture();
    let evs = events(&dir);
    let mut messages = subscription_messages(&evs, 8);
    messages.sort_by_key(|m| m["logEvents"][0]["timestamp"].as_i64().unwrap());
    assert!(messages.len() > 60, "{} batches", messages.len());
    let newest = evs
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .max()
        .unwrap();
    let seven_hours = 7 * 3_600_000;
    assert_collector_reports_the_truth(
        &dir,
        &messages,
        Some(newest + seven_hours),
        "a backlog 7 h late",
    );
}

#[test]
fn the_collector_gives_the_same_answer_with_its_clock_ten_years_ahead() {
    let dir = network_fixture();
    let messages = subscription_messages(&events(&dir), 100_000);
    let ten_years = 10 * 365 * 86_400_000;
    let first = events(&dir)[0]["timestamp"].as_i64().unwrap();
    assert_collector_reports_the_truth(&dir, &messages, Some(first + ten_years), "clock +10 years");
}

/// Delivers `messages` (subscription messages) to the Lambda collector, one
/// invocation each, with its clock at `clock_ms` if given, and checks what
/// it printed against the recording's truth: a stall is reported when
/// enough environments are in (an early alarm, with those seen so far), a
/// duplicate each time it gains an attempt; each is a part of a truth
/// entry, and every truth entry is reported whole in the end. The EMF
/// lines count every truth entry, at the time it happened.
fn assert_collector_reports_the_truth(
    dir: &std::path::Path,
    messages: &[Value],
    clock_ms: Option<i64>,
    what: &str,
) {
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let path = tmp.path().join(format!("{i:03}.json"));
            let data = b64(&gzip(m.to_string().as_bytes()));
            std::fs::write(&path, json!({"awslogs": {"data": data}}).to_string()).unwrap();
            path
        })
        .collect();
    let result = invoke_handler_at(
        &files,
        &[
            ("THAWTRACE_NAT_IDLE_TIMEOUT", "6s"),
            ("THAWTRACE_CONNECT_STALL_WINDOW", "10s"),
            ("THAWTRACE_CONNECT_STALL_MIN_ENVS", "3"),
            ("THAWTRACE_IDEMPOTENCY_KEYS", "messageId, detail.orderId"),
        ],
        clock_ms,
    );
    let responses = result["responses"].as_array().unwrap();
    assert!(
        responses.iter().all(|r| r["kind"] == "response"),
        "{what}: {responses:?}"
    );
    let lines: Vec<Value> = result["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str(l.as_str()?).ok())
        .collect();
    let incidents: Vec<Value> = lines
        .iter()
        .filter(|l| l["request_ids"].is_array())
        .cloned()
        .collect();
    let truth = truth(dir);
    let set = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    for i in &incidents {
        assert!(
            truth.iter().any(|t| t["kind"] == i["kind"]
                && t["log_group"] == i["log_group"]
                && set(&i["log_streams"]).is_subset(&set(&t["log_streams"]))
                && set(&i["request_ids"]).is_subset(&set(&t["request_ids"]))),
            "{what}: not in the truth: {i}"
        );
    }
    for t in &truth {
        let mine: Vec<&Value> = incidents
            .iter()
            .filter(|i| i["kind"] == t["kind"] && i["log_group"] == t["log_group"])
            .collect();
        let reported = match t["kind"].as_str().unwrap() {
            // Once enough environments are in.
            "connect_stall" => mine.iter().any(|i| set(&i["log_streams"]).len() >= 3),
            // Whole: one stream's story, or all the request IDs by the last attempt.
            _ => mine
                .iter()
                .any(|i| set(&i["request_ids"]) == set(&t["request_ids"])),
        };
        assert!(reported, "{what}: missed: {t}");
    }
    let emf: Vec<&Value> = lines.iter().filter(|l| l["_aws"].is_object()).collect();
    let metric = |name: &str| -> u64 { emf.iter().filter_map(|l| l[name].as_u64()).sum() };
    let count = |k: &str| truth.iter().filter(|t| t["kind"] == k).count() as u64;
    assert_eq!(metric("NatIdleResets"), count("nat_idle_reset"), "{what}");
    assert_eq!(metric("ConnectStalls"), count("connect_stall"), "{what}");
    assert!(
        metric("DuplicateInvocations") >= count("duplicate_invocation"),
        "{what}"
    );
    // Metrics are stamped when the failures happened, whatever the clock.
    let (first, last) = span_of(&events(dir));
    for l in &emf {
        let at = l["_aws"]["Timestamp"].as_i64().unwrap();
        assert!(
            (first..=last).contains(&at),
            "{what}: EMF at {at}, events {first}..{last}"
        );
    }
    // What leaves the account holds no raw log message.
    for i in &incidents {
        assert!(!i.to_string().contains("Traceback"), "{i}");
    }
}

/// The first and last timestamps of `events`.
fn span_of(events: &[Value]) -> (i64, i64) {
    let times = events.iter().map(|e| e["timestamp"].as_i64().unwrap());
    (times.clone().min().unwrap(), times.max().unwrap())
}

/// Scores a network recording per setting with
/// tests/recorders/network_report.py: no miss where the logs can tell, no
/// spurious finding anywhere.
fn assert_every_setting_scores(dir: &std::path::Path, what: &str) {
    let out = Command::new("python3")
        .arg(repo().join("tests/recorders/network_report.py"))
        .arg(dir)
        .arg(env!("CARGO_BIN_EXE_thawtrace"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{what}:\n{table}");
    assert!(
        out.status.success(),
        "{what}: a setting missed a failure its logs show, or reported one that did not happen:\n{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_recorded_network_settings_are_found_where_the_logs_can_tell() {
    assert_every_setting_scores(&network_settings_fixture(), "recorded-network-settings");
}

#[test]
fn a_fresh_connect_slow_recording_matches_the_late_listener() {
    let (seed, tmp) = fresh_recording_with(
        "record_network.py",
        "connect-slow",
        &["--only".as_ref(), "connect-slow".as_ref()],
    );
    assert_connect_slow_matches(tmp.path(), &format!("fresh recording, seed {seed}"));
}

#[test]
fn a_fresh_network_recording_is_scored_perfectly() {
    let (seed, tmp) = fresh_recording_with("record_network.py", "net", &["--matrix".as_ref()]);
    let out = tmp.path();
    let what = format!("fresh recording, seed {seed}");
    assert_every_kind_in_truth(out, &what);
    assert_every_setting_scores(out, &what);
}

#[test]
fn a_fresh_go_nat_recording_matches_the_proxy() {
    let (seed, tmp) = fresh_recording_with(
        "record_network.py",
        "nat-go",
        &["--only".as_ref(), "nat-go".as_ref()],
    );
    let dir = tmp.path();
    let what = format!("fresh nat-go recording, seed {seed}");
    let truth = truth(dir);
    assert!(
        truth.iter().any(|t| t["kind"] == "nat_idle_reset"),
        "{what}: no NAT idle reset recorded"
    );
    assert_every_setting_scores(dir, &what);
}

#[test]
fn a_fresh_go_stall_recording_matches_the_listener() {
    let (seed, tmp) = fresh_recording_with(
        "record_network.py",
        "stall-go",
        &["--only".as_ref(), "stall-go".as_ref()],
    );
    let dir = tmp.path();
    let what = format!("fresh stall-go recording, seed {seed}");
    assert!(
        truth(dir).iter().any(|t| t["kind"] == "connect_stall"),
        "{what}: no connect stall recorded"
    );
    assert_every_setting_scores(dir, &what);
}
