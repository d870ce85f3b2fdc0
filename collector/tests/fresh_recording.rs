//! A fresh recording, not in the repo: real grpc-js (1.14 and 1.8), grpcio
//! and tonic (with thawtrace-instrument) functions, text and JSON log
//! formats, both START orderings, Node 24 request IDs, ten execution
//! environments interleaved, each frozen with SIGSTOP between invocations. thawtrace must find exactly what the
//! recorder knows happened (precision = recall = 1.0).
//!
//! Needs the recorders' dependencies: `bash tests/setup.sh` (the README's
//! test command runs it). `THAWTRACE_SEED` picks the scenario seed.

mod common;

use common::*;

#[test]
fn a_fresh_recording_is_scored_perfectly() {
    let (seed, tmp) = fresh_recording("record.py", "fresh");
    let out_dir = tmp.path();
    let truth = truth(out_dir);
    assert!(
        truth
            .iter()
            .any(|t| t["kind"] == "keepalive_freeze_timeout"),
        "seed {seed}: the recording caught no ping in flight at a freeze"
    );
    let found = scan_json(&[&out_dir.join("events.jsonl")]);
    assert_eq!(
        keys(&found),
        keys(&truth),
        "seed {seed}: findings differ from the recorder's ground truth"
    );
    assert!(environments(out_dir).len() >= 10);
}
