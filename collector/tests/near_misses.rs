//! Near misses against the harness's own record (issue 18): a ping in
//! flight at a freeze that survived it, found with the margin the
//! emulator's timeline and the proxy's frames give (within 5 ms), and none
//! where keepalive is off. The record is `harness_near_misses.json`
//! (tests/harness/near_misses.py), never thawtrace's rules.

mod common;

use common::*;
use serde_json::Value;

/// Trace settings whose lines cannot show a ping (grpc-js without its
/// `keepalive` tracer): nothing may be found there that did not happen,
/// and what did is not required.
const BLIND: [&str; 2] = ["transport", "none"];

#[test]
fn near_misses_match_the_harness_record_within_5_ms() {
    let checked = assert_near_misses(
        &settings_fixture(),
        "recorded-settings",
        |env| !BLIND.contains(&env["setting"].as_str().unwrap_or("")),
        |_| true,
    );
    assert!(checked >= 10, "a recording with near misses to find");
}

#[test]
fn keepalive_off_gives_no_near_miss() {
    let mut seen = 0;
    for dir in fixtures().into_iter().chain([settings_fixture()]) {
        let envs = environments(&dir);
        let found = scan_json(&[&dir.join("events.jsonl")]);
        let off = envs.iter().filter(|e| {
            e["keepalive"] == false
                || e["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("keepalive-off"))
        });
        for env in off {
            seen += 1;
            assert!(
                !found
                    .iter()
                    .any(|f| f["kind"] == "keepalive_near_miss"
                        && f["log_stream"] == env["log_stream"]),
                "{}: a near miss without keepalive",
                env["name"]
            );
        }
    }
    assert!(seen >= 3, "keepalive-off recordings to check");
}

/// The recording of connections idle for most of the NAT idle timeout
/// (tests/recorders/record_network.py --only nat-near: botocore at DEBUG,
/// a 6 s NAT standing in for 350 s).
#[test]
fn slow_connects_match_the_late_listeners_record() {
    assert_connect_slow_matches(&connect_slow_fixture(), "recorded-connect-slow");
}

fn nat_near_fixture() -> std::path::PathBuf {
    repo().join("tests/fixtures/recorded-nat-near")
}

#[test]
fn nat_idle_near_misses_match_the_proxys_flows_within_50_ms() {
    let dir = nat_near_fixture();
    let truth: Vec<Value> = truth(&dir)
        .into_iter()
        .filter(|t| t["kind"] == "nat_idle_near_miss")
        .collect();
    assert!(truth.len() >= 5, "a recording with near misses to find");
    let found: Vec<Value> = scan_json_with(&[&dir.join("events.jsonl")], &scan_args(&dir))
        .into_iter()
        .filter(|f| f["kind"] == "nat_idle_near_miss")
        .collect();
    assert_eq!(found.len(), truth.len(), "{found:?}");
    for t in &truth {
        let f = found
            .iter()
            .find(|f| {
                f["log_stream"] == t["log_stream"]
                    && f["request_id"] == t["request_id"]
                    && (f["margin_ms"].as_i64().unwrap() - t["margin_ms"].as_i64().unwrap()).abs()
                        <= 50
            })
            .unwrap_or_else(|| panic!("missed {t}"));
        assert!(f["idle_ms"].as_i64().unwrap() < 6_000, "{f}");
    }
}
