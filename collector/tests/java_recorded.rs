//! A Java function (grpc-java 1.41 with Netty, Debian's packages) recorded
//! frozen with SIGSTOP under the Runtime API emulator and the delaying
//! proxy (tests/recorders/record_java.py, fixture
//! tests/fixtures/recorded-java): java.util.logging at FINE for
//! io.grpc.netty in the text and JSON log formats, JUL's default (INFO),
//! keepalive off. Scored against the harness's truth (the proxy's frames
//! and the emulator's timeline), never against our own rules: precision =
//! recall = 1.0 per kind where the logs print keepalive frames; at INFO
//! nothing about keepalive is printed, and nothing may be reported.

mod common;

use common::java::assert_perfect;
use common::*;

#[test]
fn the_recorded_java_function_scores_perfectly_where_the_logs_can_tell() {
    assert_perfect(
        &repo().join("tests/fixtures/recorded-java"),
        "recorded-java",
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
