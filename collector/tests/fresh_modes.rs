//! A fresh recording of Lambda's other execution modes, not in the repo:
//! grpc-js and grpcio (and tonic with thawtrace-instrument) under Lambda
//! Managed Instances, grpcio (and tonic) restored from a SnapStart
//! snapshot with its flows dropped, and a classic control
//! (tests/recorders/record_modes.py). thawtrace must find exactly what
//! the harness saw, per environment and kind.
//!
//! Needs the recorders' dependencies: `bash tests/setup.sh`.
//! `THAWTRACE_SEED` picks the scenario seed.

mod common;

use common::*;

#[test]
fn a_fresh_recording_of_every_mode_is_scored_perfectly() {
    let (seed, tmp) = fresh_recording("record_modes.py", "fresh-modes");
    let out_dir = tmp.path();
    let modes = score_modes(out_dir);
    assert_eq!(
        modes,
        ["classic", "managed-instances", "snapstart"],
        "seed {seed}"
    );
}
