//! A fresh recording of the Go function (grpc-go 1.33 from Debian's
//! package, built offline), not in the repo: each grpc-go log setting and
//! keepalive off, frozen with SIGSTOP, scored against the truth the harness
//! saw on the wire. About 30 s.
//!
//! A freeze timeout is held to precision 1.0 only: grpc-go 1.33's close at
//! a thaw does not say it was the keepalive (README, `transport_close`),
//! so one the wire shows (none in our recordings: the ack read at the thaw
//! has always won) is not visible; its recall is printed.
//!
//! Needs `bash tests/setup.sh` (golang-go, golang-google-grpc-dev).
//! `THAWTRACE_SEED` picks the scenario seed.

mod common;

use common::harness_score::{assert_exact, print, score};
use common::*;

#[test]
fn a_fresh_go_recording_scores_perfectly_under_every_setting() {
    let (seed, tmp) = fresh_recording("record_go.py", "go");
    let dir = tmp.path();
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let rows = score(dir, &found);
    let what = format!("fresh go, seed {seed}");
    print(&rows, &what);
    assert!(
        rows.iter()
            .any(|r| r.kind == "keepalive_timeout" && r.truth > 0),
        "{what}: the recording caught no keepalive timeout"
    );
    assert_exact(&rows, &what, |r| r.kind != "keepalive_freeze_timeout");
    // grpc-go prints no ping: no near miss may be reported.
    assert_near_misses(dir, &what, |_| false, |_| false);
}
