//! A fresh recording of the Go function with grpc-go 1.64 and Go 1.24
//! (Debian trixie's packages, unpacked by tests/setup.sh into
//! tests/.deps/go-trixie; `record_go.py --grpc 1.64`), not in the repo:
//! each grpc-go log setting and keepalive off, frozen with SIGSTOP and its
//! network with it, scored against the truth the harness saw on the wire.
//! About 30 s (a minute more the first time, Go building grpc-go).
//!
//! A freeze timeout is held to recall 1.0 only where grpc-go names the
//! keepalive on a line (verbosity 2 or more: the transport's `Closing:`);
//! elsewhere to precision 1.0 (README, grpc-go).
//!
//! Needs `bash tests/setup.sh`. `THAWTRACE_SEED` picks the scenario seed.

mod common;

use common::harness_score::{assert_exact, print, score};
use common::*;

#[test]
fn a_fresh_go_164_recording_scores_perfectly_where_the_log_can_tell() {
    let (seed, tmp) = fresh_recording_with(
        "record_go.py",
        "go164",
        &["--grpc".as_ref(), "1.64".as_ref()],
    );
    let dir = tmp.path();
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let rows = score(dir, &found);
    let what = format!("fresh go 1.64, seed {seed}");
    print(&rows, &what);
    for kind in ["keepalive_timeout", "keepalive_freeze_timeout"] {
        assert!(
            rows.iter()
                .any(|r| r.kind == kind && r.truth > 0 && r.setting.starts_with("info-v")),
            "{what}: the recording caught no {kind} where it is visible"
        );
    }
    assert_exact(&rows, &what, |r| {
        r.kind != "keepalive_freeze_timeout" || r.setting.starts_with("info-v")
    });
    // grpc-go prints no ping: no near miss may be reported.
    assert_near_misses(dir, &what, |_| false, |_| false);
}
