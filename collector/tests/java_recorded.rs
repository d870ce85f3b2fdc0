//! A Java function (grpc-java 1.41 with Netty, Debian's packages) recorded
//! frozen with SIGSTOP under the Runtime API emulator and the delaying
//! proxy (tests/recorders/record_java.py, fixture
//! tests/fixtures/recorded-java): java.util.logging at FINE for
//! io.grpc.netty in the text and JSON log formats, JUL's default (INFO),
//! keepalive off. Scored against the harness's truth (the proxy's frames
//! and the emulator's timeline), never against our own rules: precision =
//! recall = 1.0 per kind where the logs print keepalive frames; at INFO
//! nothing about keepalive is printed, and nothing may be reported.
//!
//! And Java functions restored from a SnapStart snapshot
//! (tests/recorders/record_modes.py --java, fixture
//! tests/fixtures/recorded-java-snapstart): precision = recall = 1.0 for
//! `snapstart_stale_connection` at JUL FINE and INFO, text and JSON.
//! And Java functions behind a NAT that forgets idle connections
//! (tests/recorders/record_network.py --only nat-java, fixture
//! tests/fixtures/recorded-nat-java): `nat_idle_reset` at 1.0 where the
//! frame logger prints the reset (FINE), nothing spurious at INFO. And
//! bursts of Java functions whose connects stall (record_network.py --only
//! stall-java, fixture tests/fixtures/recorded-stall-java): `connect_stall`
//! at 1.0 with grpc-java's channel trace (io.grpc.ChannelLogger at
//! FINEST), nothing spurious at FINE or INFO. And connects that lost SYNs
//! and went through (record_network.py --only connect-slow-java, fixture
//! tests/fixtures/recorded-connect-slow-java): `connect_slow` against the
//! late listener's record.

mod common;

use common::java::assert_perfect;
use common::*;
use serde_json::json;

/// Also the keepalive pings (payload 1111) in flight at a freeze whose
/// acks were read at the thaw: each found at FINE, where the frame logger
/// prints pings and acks, and none at INFO; BDP pings (1234), which no
/// timer watches, are not near misses (h2truth.timed_pings).
#[test]
fn the_recorded_java_function_scores_perfectly_where_the_logs_can_tell() {
    let near_misses = assert_perfect(
        &repo().join("tests/fixtures/recorded-java"),
        "recorded-java",
    );
    assert!(near_misses >= 2, "a recording with near misses at FINE");
}

/// The same function logging through Log4j 2 (Debian's 2.19, the layout
/// AWS documents for Java functions; `record_java.py --only log4j2`,
/// fixture tests/fixtures/recorded-java-log4j2): Netty's frames at DEBUG
/// behind the layout's date, level and logger, and in the JSON log format
/// as the records' `message` (`log4j2-json`); with io.grpc.netty at INFO
/// (`log4j2-info`), only the function's own lines, its failed calls among
/// them, so the stream is named as unjudged (in `assert_perfect`).
#[test]
fn the_java_function_logging_through_log4j2_scores_perfectly() {
    assert_perfect(
        &repo().join("tests/fixtures/recorded-java-log4j2"),
        "recorded-java-log4j2",
    );
}

/// The function's own failed call, logged through Log4j 2 with the
/// request ID the runtime put in the ThreadContext (`<date> <request ID>
/// ERROR Function - echo call 0 failed: UNAVAILABLE: …`, or in the JSON
/// log format a record with `"AWSRequestId"` and the exception's
/// `"errorMessage":"UNAVAILABLE: …"`), is the genuine timeout's failed
/// call, in the invocation the harness saw the connection close in.
#[test]
fn a_failed_call_logged_through_log4j2_is_its_invocations() {
    let dir = repo().join("tests/fixtures/recorded-java-log4j2");
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let harness = harness_truth(&dir);
    let events = events(&dir);
    let genuine = harness.iter().filter(|t| t["kind"] == "keepalive_timeout");
    let mut checked = 0;
    for t in genuine {
        let Some(f) = found
            .iter()
            .find(|f| f["kind"] == "keepalive_timeout" && f["log_stream"] == t["log_stream"])
        else {
            continue; // the INFO stream: nothing found, named as unjudged
        };
        assert_eq!(
            f["failed_request_ids"],
            json!([t["timeout_request_id"]]),
            "{f}"
        );
        let line = events
            .iter()
            .find(|e| e["id"] == f["failed_call"]["event_id"])
            .unwrap_or_else(|| panic!("no failed call: {f}"));
        let message = line["message"].as_str().unwrap();
        let rid = t["timeout_request_id"].as_str().unwrap();
        let text = format!(" {rid} ERROR Function - echo call 0 failed: UNAVAILABLE: ");
        let json = format!(r#""AWSRequestId":"{rid}""#);
        // In the JSON setting the function logs the exception itself.
        let json_error = r#""level":"ERROR","message":"echo call 0 failed","logger":"Function","errorType":"io.grpc.StatusRuntimeException","errorMessage":"UNAVAILABLE: "#;
        assert!(
            message.contains(&text) || (message.contains(json_error) && message.contains(&json)),
            "{message}"
        );
        checked += 1;
    }
    assert_eq!(
        checked, 2,
        "a genuine timeout in each setting that prints frames"
    );
}

#[test]
fn the_fix_names_grpc_java_options() {
    let dir = repo().join("tests/fixtures/recorded-java");
    let out = thawtrace(&["scan", dir.join("events.jsonl").to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("KEEPALIVE FREEZE TIMEOUT"), "{text}");
    for option in ["keepAliveTime", "keepAliveTimeout", "keepAliveWithoutCalls"] {
        assert!(
            text.contains(option),
            "the fix does not name {option}: {text}"
        );
    }
}

#[test]
fn java_restored_from_a_snapstart_snapshot_scores_perfectly() {
    java::assert_snapstart_perfect(
        &repo().join("tests/fixtures/recorded-java-snapstart"),
        "recorded-java-snapstart",
    );
}

#[test]
fn the_snapstart_fix_names_the_java_hook() {
    let dir = repo().join("tests/fixtures/recorded-java-snapstart");
    let out = thawtrace(&["scan", dir.join("events.jsonl").to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("SNAPSTART STALE CONNECTION"), "{text}");
    for hook in [
        "ManagedChannel",
        "afterRestore",
        "Core.getGlobalContext().register",
    ] {
        assert!(text.contains(hook), "the fix does not name {hook}: {text}");
    }
}

#[test]
fn java_behind_a_nat_that_forgot_its_connection_scores_perfectly() {
    java::assert_network_perfect(
        &repo().join("tests/fixtures/recorded-nat-java"),
        "recorded-nat-java",
        &["nat-grpc-java-info"],
        3,
    );
}

/// Connects that lost their first SYNs and went through
/// (`record_network.py --only connect-slow-java`): grpc-java's channel
/// trace at FINEST prints `WaitUntilActive started` and `completed`.
#[test]
fn java_slow_connects_match_the_late_listeners_record() {
    assert_connect_slow_matches(
        &repo().join("tests/fixtures/recorded-connect-slow-java"),
        "recorded-connect-slow-java",
    );
}

#[test]
fn java_connect_stalls_are_found_where_the_channel_trace_shows_connects() {
    java::assert_network_perfect(
        &repo().join("tests/fixtures/recorded-stall-java"),
        "recorded-stall-java",
        &["stall-grpc-java-fine", "stall-grpc-java-info"],
        1,
    );
}
