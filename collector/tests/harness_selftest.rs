//! The harness's own checks: the rules that turn what its proxy and
//! emulator saw into ground truth (keepalive timeouts, near misses, NAT
//! idle near misses, Managed Instances teardowns, SnapStart stale
//! connections) on synthetic observations and loopback sockets, the
//! restore proxy, and the scorers' keys (tests/harness/test_*.py).
//! Ground truth is only as good as they are.

mod common;

use std::process::Command;

use common::*;

#[test]
fn the_harness_truth_rules_pass_their_own_tests() {
    let python = recorder_python();
    for script in [
        "test_h2_truth.py",
        "test_modes_truth.py",
        "test_nat_near_truth.py",
    ] {
        let out = Command::new(&python)
            .arg(repo().join("tests/harness").join(script))
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
