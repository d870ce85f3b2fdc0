//! Scoring a recording against the harness's own truth
//! (`harness_truth.json`: the delaying proxy's pings, acks and closes,
//! placed in invocations by the emulator), per environment (a library under
//! one setting) and kind, in Rust: tests/score.py's rule, for the tests of
//! the `unit` group, which run no Python.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// The kinds scored: a finding matches a truth entry when kind, stream and
/// both request IDs agree (the wire knows no log event IDs).
pub const KINDS: [&str; 2] = ["keepalive_freeze_timeout", "keepalive_timeout"];

/// One environment's score for one kind.
#[derive(Debug)]
pub struct Row {
    pub environment: String,
    pub setting: String,
    pub kind: &'static str,
    pub truth: usize,
    pub found: usize,
    pub missed: Vec<String>,
    pub spurious: Vec<String>,
}

impl Row {
    pub fn precision(&self) -> f64 {
        if self.found == 0 {
            1.0
        } else {
            (self.found - self.spurious.len()) as f64 / self.found as f64
        }
    }

    pub fn recall(&self) -> f64 {
        if self.truth == 0 {
            1.0
        } else {
            (self.truth - self.missed.len()) as f64 / self.truth as f64
        }
    }
}

fn key(f: &Value) -> String {
    format!(
        "{} {} {}",
        f["log_stream"], f["ping_request_id"], f["timeout_request_id"]
    )
}

/// Scores `found` (thawtrace's JSON findings) against the recording's
/// `harness_truth.json`, per environment of its `environments.json`.
pub fn score(dir: &Path, found: &[Value]) -> Vec<Row> {
    let truth = super::harness_truth(dir);
    let mut rows = Vec::new();
    for env in &super::environments(dir) {
        let stream = &env["log_stream"];
        for kind in KINDS {
            let mut want: BTreeMap<String, usize> = BTreeMap::new();
            let mut got: BTreeMap<String, usize> = BTreeMap::new();
            for t in truth
                .iter()
                .filter(|t| t["kind"] == kind && t["log_stream"] == *stream)
            {
                *want.entry(key(t)).or_default() += 1;
            }
            for f in found
                .iter()
                .filter(|f| f["kind"] == kind && f["log_stream"] == *stream)
            {
                *got.entry(key(f)).or_default() += 1;
            }
            let excess = |a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>| {
                a.iter()
                    .flat_map(|(k, &n)| {
                        std::iter::repeat_n(k.clone(), n.saturating_sub(*b.get(k).unwrap_or(&0)))
                    })
                    .collect::<Vec<_>>()
            };
            rows.push(Row {
                environment: env["name"].as_str().unwrap().to_owned(),
                setting: env["setting"].as_str().unwrap_or("default").to_owned(),
                kind,
                truth: want.values().sum(),
                found: got.values().sum(),
                missed: excess(&want, &got),
                spurious: excess(&got, &want),
            });
        }
    }
    rows
}

/// Prints the rows (the README's precision/recall table, by setting).
pub fn print(rows: &[Row], what: &str) {
    for r in rows {
        eprintln!(
            "{what}: {:<28} {:<10} {:<26} truth {} found {} precision {} recall {}",
            r.environment,
            r.setting,
            r.kind,
            r.truth,
            r.found,
            r.precision(),
            r.recall()
        );
    }
}

/// Asserts precision 1.0 on every row, and recall 1.0 on every row whose
/// kind `visible` says the setting's logs can show.
pub fn assert_exact(rows: &[Row], what: &str, visible: impl Fn(&Row) -> bool) {
    for r in rows {
        assert!(
            r.precision() == 1.0 && (r.recall() == 1.0 || !visible(r)),
            "{what}: {} ({}) {}: missed {:?}, spurious {:?}",
            r.environment,
            r.setting,
            r.kind,
            r.missed,
            r.spurious
        );
    }
}
