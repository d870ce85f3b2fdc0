//! A Go function with grpc-go 1.33 (Debian's package), recorded frozen with
//! SIGSTOP under each log setting users choose (tests/recorders/record_go.py:
//! `GRPC_GO_LOG_SEVERITY_LEVEL=info` with verbosity 99, 2 and unset, and
//! grpc-go's default, errors only; keepalive off), scored against the truth
//! the harness saw on the wire (the delaying proxy's pings, acks and
//! closes), never against our own rules: precision = recall = 1.0 per kind
//! and setting.
//!
//! grpc-go prints no keepalive ping, ack or (before 1.38) timeout, so every
//! finding rests on the transport's close (`inferred_from:
//! transport_close`).

mod common;

use std::path::PathBuf;

use common::harness_score::{assert_exact, print, score};
use common::*;
use serde_json::Value;

fn go_fixture() -> PathBuf {
    repo().join("tests/fixtures/recorded-go")
}

#[test]
fn the_recorded_go_function_scores_perfectly_under_every_setting() {
    let dir = go_fixture();
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let rows = score(&dir, &found);
    print(&rows, "recorded-go");
    assert_exact(&rows, "recorded-go", |_| true);
    // grpc-go prints no ping at any verbosity: no near miss is visible, and
    // none may be reported.
    assert_near_misses(&dir, "recorded-go", |_| false, |_| false);
    // The recording must hold what it claims to test: a genuine keepalive
    // timeout under every setting with keepalive on.
    let envs = environments(&dir);
    for env in &envs {
        let truth: usize = rows
            .iter()
            .filter(|r| r.environment == env["name"].as_str().unwrap())
            .map(|r| r.truth)
            .sum();
        if env["keepalive"] == true {
            assert!(truth > 0, "{}: no keepalive timeout recorded", env["name"]);
        } else {
            assert_eq!(truth, 0, "{}: keepalive off, yet a timeout", env["name"]);
        }
    }
}

#[test]
fn go_findings_say_what_stood_in_for_the_lines_grpc_go_does_not_print() {
    let dir = go_fixture();
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let go: Vec<&Value> = found
        .iter()
        .filter(|f| f["kind"] == "keepalive_timeout")
        .collect();
    assert!(!go.is_empty());
    for f in &go {
        assert_eq!(f["library"], "grpc-go", "{f}");
        assert_eq!(f["inferred_from"], "transport_close", "{f}");
        assert_eq!(f["ping_request_id"], f["timeout_request_id"], "{f}");
    }
    let text = thawtrace(&["scan", dir.join("events.jsonl").to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("keepalive.ClientParameters{Time, Timeout}"),
        "the advice names grpc-go's options: {text}"
    );
    // No ping line: the report says when the connection went quiet instead.
    assert!(
        text.contains("quiet since") && !text.contains("ping sent"),
        "{text}"
    );
}

/// grpc-go 1.64 (Debian trixie's package, `record_go.py --grpc 1.64`), its
/// function's network frozen with it (the ack of a ping in flight reaches
/// it after the thaw): genuine timeouts under every setting, freeze
/// timeouts where grpc-go names the keepalive on a line at the thaw (the
/// transport's `Closing: … keepalive ping failed …`, verbosity 2 or more).
/// At `info` without verbosity and at the default, the close at a thaw
/// prints only the subchannel's `IDLE` (or nothing), no call fails with
/// it, so that freeze timeout is not visible: precision 1.0 there, and its
/// recall is not held.
#[test]
fn the_recorded_go_164_function_scores_perfectly_where_the_log_can_tell() {
    let dir = repo().join("tests/fixtures/recorded-go-1.64");
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let rows = score(&dir, &found);
    print(&rows, "recorded-go-1.64");
    assert_exact(&rows, "recorded-go-1.64", |r| {
        r.kind != "keepalive_freeze_timeout" || r.setting.starts_with("info-v")
    });
    assert_near_misses(&dir, "recorded-go-1.64", |_| false, |_| false);
    // What the recording claims to test: under every setting with
    // keepalive on, a genuine timeout and a freeze timeout on the wire;
    // with verbosity, the freeze timeout found.
    let envs = environments(&dir);
    for env in &envs {
        let name = env["name"].as_str().unwrap();
        assert_eq!(env["library_version"], "1.64.0", "{name}");
        let of = |kind: &str| {
            rows.iter()
                .find(|r| r.environment == name && r.kind == kind)
        };
        let (genuine, freeze) = (
            of("keepalive_timeout").unwrap(),
            of("keepalive_freeze_timeout").unwrap(),
        );
        if env["keepalive"] == true {
            assert!(
                genuine.truth > 0 && freeze.truth > 0,
                "{name}: no timeout of each kind recorded"
            );
            if freeze.setting.starts_with("info-v") {
                assert!(freeze.found > 0, "{name}: the freeze timeout is not found");
            }
        } else {
            assert_eq!(
                genuine.truth + freeze.truth,
                0,
                "{name}: keepalive off, yet a timeout"
            );
        }
    }
    // The freeze timeouts rest on grpc-go's own reason at the thaw.
    for f in found
        .iter()
        .filter(|f| f["kind"] == "keepalive_freeze_timeout")
    {
        assert_eq!(f["library"], "grpc-go", "{f}");
        assert_eq!(f["inferred_from"], "transport_close", "{f}");
        assert_ne!(f["ping_request_id"], f["timeout_request_id"], "{f}");
    }
}

/// NAT idle resets of a Go function (grpc-go 1.64; record_network.py
/// `--only nat-go`, the fixture tests/fixtures/recorded-nat-go): with
/// keepalive off, the call after a freeze past the NAT's idle timeout meets
/// its RST and fails with `desc = error reading from server: … connection
/// reset by peer`, at the default logging as with the transport's lines;
/// with keepalive on, grpc-go's ping at the thaw meets the RST instead and
/// the call goes out on a new connection (no failure, nothing to report);
/// freezes shorter than the timeout are the negative. Found exactly as the
/// proxy's log says, every environment.
#[test]
fn the_recorded_go_nat_idle_resets_are_found_exactly() {
    let dir = repo().join("tests/fixtures/recorded-nat-go");
    let found = scan_json_with(&[&dir.join("events.jsonl")], &scan_args(&dir));
    let truth = truth(&dir);
    assert_eq!(keys(&found), keys(&truth), "recorded-nat-go");
    let envs = environments(&dir);
    for env in &envs {
        let stream = &env["log_stream"];
        let setting = env["setting"].as_str().unwrap();
        let resets = truth
            .iter()
            .filter(|t| t["kind"] == "nat_idle_reset" && t["log_streams"][0] == *stream)
            .count();
        // What the recording claims to test: resets where keepalive is off
        // and the freezes outlast the NAT, none elsewhere.
        assert_eq!(
            resets > 0,
            setting.starts_with("nat-grpc-go-keepalive-off"),
            "{setting}: {resets} resets in the truth"
        );
    }
    for f in &found {
        assert_eq!(f["kind"], "nat_idle_reset", "{f}");
        assert_eq!(f["cause"], "reset", "{f}");
        assert!(f["idle_ms"].as_i64().unwrap() >= 6000, "{f}");
    }
}

/// A recording of the same (seed 207, tests/fixtures/recorded-nat-go-eof)
/// where, with keepalive on, the call lost the race to the ping at the
/// thaw and failed with `error reading from server: EOF`: grpc-go's reader
/// then read end of file (the ping's write took the reset's error). Found, as the proxy's reset, in
/// that environment too.
#[test]
fn a_go_nat_reset_read_as_eof_is_found() {
    let dir = repo().join("tests/fixtures/recorded-nat-go-eof");
    let found = scan_json_with(&[&dir.join("events.jsonl")], &scan_args(&dir));
    let truth = truth(&dir);
    assert_eq!(keys(&found), keys(&truth), "recorded-nat-go-eof");
    let envs = environments(&dir);
    let keepalive = envs
        .iter()
        .find(|e| e["setting"] == "nat-grpc-go-keepalive@info-v2")
        .unwrap();
    let on: Vec<&Value> = found
        .iter()
        .filter(|f| f["log_streams"][0] == keepalive["log_stream"])
        .collect();
    assert_eq!(on.len(), 1, "{found:?}");
    assert_eq!(on[0]["cause"], "reset", "{}", on[0]);
    // Its evidence is the call that failed with EOF.
    let lines: Vec<String> = events(&dir)
        .iter()
        .filter(|e| on[0]["evidence"].as_array().unwrap().contains(&e["id"]))
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("error reading from server: EOF")),
        "{lines:?}"
    );
}

/// Connect stalls of Go functions (grpc-go 1.64; record_network.py `--only
/// stall-go`, the fixture tests/fixtures/recorded-stall-go): two functions'
/// bursts of three environments whose SYNs a full accept queue drops (the
/// call fails with the dial's `connect: connection timed out`, at the
/// default logging and at verbosity 2); controls: a refused burst, one lone
/// stalled environment, a healthy burst. Found exactly as the harness saw.
#[test]
fn the_recorded_go_connect_stalls_are_found_exactly() {
    let dir = repo().join("tests/fixtures/recorded-stall-go");
    let found = scan_json_with(&[&dir.join("events.jsonl")], &scan_args(&dir));
    let truth = truth(&dir);
    assert_eq!(keys(&found), keys(&truth), "recorded-stall-go");
    let stalls: Vec<&Value> = truth
        .iter()
        .filter(|t| t["kind"] == "connect_stall")
        .collect();
    assert_eq!(stalls.len(), 2, "a stalled burst per function: {stalls:?}");
    for f in &found {
        assert_eq!(f["kind"], "connect_stall", "{f}");
        assert!(f["environments"].as_u64().unwrap() >= 3, "{f}");
    }
}
