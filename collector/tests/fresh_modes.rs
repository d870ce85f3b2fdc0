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

use std::process::Command;

use common::*;

#[test]
fn a_fresh_recording_of_every_mode_is_scored_perfectly() {
    let python = recorder_python();
    let seed = fresh_seed();
    let tmp = tmp_dir(&format!("fresh-modes-{seed}"));
    let out_dir = tmp.path();
    eprintln!("recording with seed {seed} into {}", out_dir.display());
    let examples = examples_dir();
    let status = Command::new(&python)
        .arg(repo().join("tests/recorders/record_modes.py"))
        .args([
            "--out",
            out_dir.to_str().unwrap(),
            "--seed",
            &seed,
            "--rust-bin",
        ])
        .arg(&examples)
        .status()
        .unwrap();
    assert!(status.success(), "the recorder failed (seed {seed})");
    let modes = score_modes(out_dir);
    assert_eq!(
        modes,
        ["classic", "managed-instances", "snapstart"],
        "seed {seed}"
    );
}
