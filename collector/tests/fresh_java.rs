//! A fresh recording of the Java function (grpc-java with Netty, Debian's
//! packages; tests/recorders/record_java.py), scored as the committed one
//! is (java_recorded.rs): precision = recall = 1.0 per kind wherever
//! keepalive frames are printed, nothing reported where they are not.
//!
//! Needs javac, java and `bash tests/setup.sh` (Debian's libgrpc-java,
//! libnetty-java, libperfmark-java; the Python venv). `THAWTRACE_SEED`
//! picks the scenario seed. The second test records Java functions
//! restored from a SnapStart snapshot (record_modes.py --java), about 20 s;
//! the third, Java functions behind a NAT that forgets idle connections
//! (record_network.py --only nat-java, in a network namespace), about 20 s;
//! the fourth, bursts of Java functions whose connects stall
//! (record_network.py --only stall-java), about 50 s; the fifth, Java
//! connects that lose SYNs and go through (record_network.py --only
//! connect-slow-java), about 10 s. They run one at a time. A failed test
//! keeps its recording and prints where.

mod common;

use std::sync::{Mutex, MutexGuard};

use common::*;

/// The recordings run one at a time: each starts several JVMs on a machine
/// that may have two cores, and timing is what they record.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn a_fresh_java_recording_is_scored_perfectly() {
    let _one = one_at_a_time();
    let (seed, tmp) = fresh_recording("record_java.py", "fresh-java");
    java::assert_perfect(tmp.path(), &format!("fresh java recording, seed {seed}"));
}

#[test]
fn a_fresh_java_snapstart_recording_is_scored_perfectly() {
    let _one = one_at_a_time();
    let (seed, tmp) = fresh_recording_with(
        "record_modes.py",
        "fresh-java-snapstart",
        &[
            "--java".as_ref(),
            "--only".as_ref(),
            "java-snapstart".as_ref(),
        ],
    );
    java::assert_snapstart_perfect(
        tmp.path(),
        &format!("fresh java snapstart recording, seed {seed}"),
    );
}

#[test]
fn a_fresh_java_nat_recording_is_scored_perfectly() {
    let _one = one_at_a_time();
    let (seed, tmp) = fresh_recording_with(
        "record_network.py",
        "fresh-nat-java",
        &["--only".as_ref(), "nat-java".as_ref()],
    );
    java::assert_network_perfect(
        tmp.path(),
        &format!("fresh java NAT recording, seed {seed}"),
        &["nat-grpc-java-info"],
        3,
    );
}

#[test]
fn a_fresh_java_stall_recording_is_scored_perfectly() {
    let _one = one_at_a_time();
    let (seed, tmp) = fresh_recording_with(
        "record_network.py",
        "fresh-stall-java",
        &["--only".as_ref(), "stall-java".as_ref()],
    );
    java::assert_network_perfect(
        tmp.path(),
        &format!("fresh java connect-stall recording, seed {seed}"),
        &["stall-grpc-java-fine", "stall-grpc-java-info"],
        1,
    );
}

#[test]
fn a_fresh_java_connect_slow_recording_matches_the_late_listener() {
    let _one = one_at_a_time();
    let (seed, tmp) = fresh_recording_with(
        "record_network.py",
        "fresh-connect-slow-java",
        &["--only".as_ref(), "connect-slow-java".as_ref()],
    );
    assert_connect_slow_matches(
        tmp.path(),
        &format!("fresh java connect-slow recording, seed {seed}"),
    );
}
