//! Helpers shared by the collector's integration tests.
#![allow(dead_code)]

pub mod harness_score;
pub mod java;
pub mod moto;
pub mod proxy;
pub mod receiver;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::{Value, json};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The keepalive recordings scored by their line truth (the neighbouring
/// failures' recording, with its own scan arguments, is
/// [`network_fixture`]; the settings matrix, scored by the harness's truth,
/// is [`settings_fixture`]; the execution-mode recordings, with their
/// `observations.json`, are [`modes_fixture`] and
/// tests/fixtures/recorded-java-snapstart).
pub fn fixtures() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.join("truth.json").exists()
                && !p.join("scan-args.json").exists()
                && !p.join("harness_truth.json").exists()
                && *p != modes_fixture()
                && !p.join("observations.json").exists()
        })
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no recorded fixtures under tests/fixtures"
    );
    dirs
}

/// The recording of Lambda's other execution modes (Managed Instances,
/// SnapStart restores) and a classic control
/// (tests/recorders/record_modes.py), scored by the harness's truth.
pub fn modes_fixture() -> PathBuf {
    repo().join("tests/fixtures/recorded-modes")
}

/// The recording of NAT idle resets, connect stalls and duplicate
/// invocations (tests/recorders/record_network.py).
pub fn network_fixture() -> PathBuf {
    repo().join("tests/fixtures/recorded-network")
}

/// The recording of every trace setting of the settings matrix
/// (`record.py --matrix`), with the truth the harness saw on the wire.
pub fn settings_fixture() -> PathBuf {
    repo().join("tests/fixtures/recorded-settings")
}

/// The network failures under the settings users choose
/// (`record_network.py --matrix`): NAT drops, idle inside an invocation,
/// botocore log levels and retry modes, TCP keepalive, connects with no
/// connect timeout.
pub fn network_settings_fixture() -> PathBuf {
    repo().join("tests/fixtures/recorded-network-settings")
}

/// The scaled thresholds a network recording is scanned with.
/// The recording of slow connects (`record_network.py --only connect-slow`).
pub fn connect_slow_fixture() -> PathBuf {
    repo().join("tests/fixtures/recorded-connect-slow")
}

/// How much shorter than the listener's SYN-SENT span a connect may read.
/// The scanner times a connect by its log events' timestamps, which the
/// emulator (like CloudWatch) sets when it reads a line: a reader that gets
/// to the connect's first line late, on two loaded cores, shortens the
/// connect by that delay (9 ms for a grpc-java connect in one CI run).
const STAMPED_ON_READ_MS: i64 = 50;

/// A connect-slow recording against the late listener's record: one
/// `connect_slow` per connect it held in SYN-SENT, in the stream and
/// invocation that made it, to its destination, taking at least the
/// SYN-SENT time the listener surely saw (less [`STAMPED_ON_READ_MS`]) and
/// at most the longest it may have seen plus 500 ms (the log's
/// `IDLE -> CONNECTING` is written before the socket connects, and Node's
/// event loop writes `Established` when it gets to it); nothing else,
/// neither for the healthy environments nor for the reused connections.
pub fn assert_connect_slow_matches(dir: &Path, what: &str) {
    let truth: Vec<Value> = truth(dir)
        .into_iter()
        .filter(|t| t["kind"] == "connect_slow")
        .collect();
    assert!(truth.len() >= 3, "{what}: a recording with slow connects");
    let found = scan_json_with(&[&dir.join("events.jsonl")], &scan_args(dir));
    assert!(
        found.iter().all(|f| f["kind"] == "connect_slow"),
        "{what}: only slow connects happened: {found:?}"
    );
    assert_eq!(found.len(), truth.len(), "{what}: {found:?}");
    for t in &truth {
        let f = found
            .iter()
            .find(|f| {
                f["log_stream"] == t["log_streams"][0] && f["request_id"] == t["request_ids"][0]
            })
            .unwrap_or_else(|| panic!("{what}: missed {t}"));
        let took = f["connect_ms"].as_i64().unwrap();
        let (lo, hi) = (
            t["syn_sent_ms"][0].as_i64().unwrap() - STAMPED_ON_READ_MS,
            t["syn_sent_ms"][1].as_i64().unwrap(),
        );
        assert!(
            (lo..=hi + 500).contains(&took),
            "{what}: {took} ms for SYN-SENT {}-{hi} ms: {f}",
            lo + STAMPED_ON_READ_MS
        );
        assert_eq!(f["destination"], t["destination"], "{what}");
        assert_eq!(f["threshold_ms"], 1000, "{what}");
        assert_eq!(
            f["evidence"].as_array().unwrap().len(),
            2,
            "{what}: the start and the connection"
        );
    }
}

pub fn scan_args(dir: &Path) -> Vec<String> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("scan-args.json")).unwrap()).unwrap()
}

/// The AWS environment of a child process pointed at loopback only.
pub fn aws_env(cmd: &mut Command, endpoint: &str) {
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env_remove("AWS_PROFILE")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
}

/// Runs the `thawtrace` binary as a Lambda function under the local Runtime
/// API (tests/harness/invoke.py), one invocation per event file; nothing
/// may reach past loopback, not even the SDK's credential chain.
pub fn invoke_handler(events: &[PathBuf], env: &[(&str, &str)]) -> Value {
    invoke_handler_at(events, env, None)
}

/// [`invoke_handler`] with the collector's wall clock set to `clock_ms`
/// (ms since the Unix epoch) by Debian's faketime, which intercepts the
/// process's clock calls: what the collector does must not depend on when
/// it runs. The monotonic clock (timers, deadlines) is left alone.
pub fn invoke_handler_at(events: &[PathBuf], env: &[(&str, &str)], clock_ms: Option<i64>) -> Value {
    invoke_handler_with(events, env, clock_ms, None)
}

/// [`invoke_handler`] with each invocation given `deadline_ms` from its
/// delivery (`Lambda-Runtime-Deadline-Ms`); each response holds the
/// `elapsed_ms` it took to answer.
pub fn invoke_handler_within(events: &[PathBuf], env: &[(&str, &str)], deadline_ms: u64) -> Value {
    invoke_handler_with(events, env, None, Some(deadline_ms))
}

fn invoke_handler_with(
    events: &[PathBuf],
    env: &[(&str, &str)],
    clock_ms: Option<i64>,
    deadline_ms: Option<u64>,
) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join("tests/harness/invoke.py"));
    if let Some(ms) = deadline_ms {
        cmd.arg("--deadline-ms").arg(ms.to_string());
    }
    for e in events {
        cmd.arg("--event").arg(e);
    }
    cmd.arg("--");
    if let Some(ms) = clock_ms {
        let at = thawtrace_analyzers::time::rfc3339(ms);
        let faketime = which("faketime")
            .expect("faketime is missing: run `bash tests/setup.sh` (Debian's faketime package)");
        cmd.arg(faketime)
            .arg("-f")
            .arg(format!("@{} {}", &at[..10], &at[11..19]));
        cmd.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    cmd.arg(env!("CARGO_BIN_EXE_thawtrace"));
    aws_env(&mut cmd, "http://127.0.0.1:9");
    // Lookback has its own test against moto.
    cmd.env("THAWTRACE_LOOKBACK", "off")
        .env("AWS_REGION", "eu-west-1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A fresh directory of its own under the system's temp dir, named after
/// `tag`; removed when dropped, also when the test fails.
pub fn tmp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("thawtrace-{tag}-"))
        .tempdir()
        .unwrap()
}

/// The full path of a program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The Python the recorders run with (`THAWTRACE_PYTHON`, or `python3`),
/// once it is known to have their packages, and npm's.
pub fn recorder_python() -> String {
    let python = std::env::var("THAWTRACE_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import grpc, boto3"])
        .status();
    assert!(
        ok.is_ok_and(|s| s.success())
            && repo()
                .join("tests/recorders/node/node_modules/@grpc/grpc-js")
                .exists(),
        "the recorders' dependencies are missing: run `bash tests/setup.sh` and set THAWTRACE_PYTHON=tests/.deps/venv/bin/python (or run `bash tests/run-all.sh`)"
    );
    python
}

/// A fresh recording's scenario seed: `THAWTRACE_SEED`, or from the clock.
pub fn fresh_seed() -> String {
    std::env::var("THAWTRACE_SEED").unwrap_or_else(|_| {
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 100_000)
            .to_string()
    })
}

/// A recording's environments (`environments.json`): each one's log
/// stream, function, runtime, setting and library, as the recorder ran it.
pub fn environments(dir: &Path) -> Vec<Value> {
    let path = dir.join("environments.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The findings a recording's ground truth expects (`truth.json`).
pub fn truth(dir: &Path) -> Vec<Value> {
    findings_in(&dir.join("truth.json"))
}

/// The findings the harness itself saw (`harness_truth.json`: the proxy's
/// frames and the emulator's timeline, never our rules).
pub fn harness_truth(dir: &Path) -> Vec<Value> {
    findings_in(&dir.join("harness_truth.json"))
}

fn findings_in(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let truth: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    truth["findings"].as_array().unwrap().clone()
}

pub fn thawtrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thawtrace"))
        .args(args)
        .output()
        .unwrap()
}

pub fn scan_json(paths: &[&Path]) -> Vec<Value> {
    scan_json_with(paths, &[])
}

/// `scan --format json` of `paths` with more options (`extra`).
pub fn scan_json_with(paths: &[&Path], extra: &[String]) -> Vec<Value> {
    let mut args = vec!["scan", "--format", "json"];
    let owned: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(owned.iter().map(String::as_str));
    args.extend(extra.iter().map(String::as_str));
    let out = thawtrace(&args);
    assert!(
        out.status.success(),
        "scan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The `(logGroup, logStream)` pairs of `events`, in order of first appearance.
pub fn streams_of(events: &[Value]) -> Vec<(String, String)> {
    let mut streams: Vec<(String, String)> = Vec::new();
    for e in events {
        let key = (
            e["logGroup"].as_str().unwrap().to_owned(),
            e["logStream"].as_str().unwrap().to_owned(),
        );
        if !streams.contains(&key) {
            streams.push(key);
        }
    }
    streams
}

/// Subscription messages, as CloudWatch Logs builds them: one per stream,
/// split into batches of at most `per_batch` events.
pub fn subscription_messages(events: &[Value], per_batch: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for (group, stream) in streams_of(events) {
        let mine: Vec<Value> = events
            .iter()
            .filter(|e| e["logGroup"] == group.as_str() && e["logStream"] == stream.as_str())
            .map(|e| json!({"id": e["id"], "timestamp": e["timestamp"], "message": e["message"]}))
            .collect();
        for chunk in mine.chunks(per_batch) {
            out.push(json!({
                "messageType": "DATA_MESSAGE",
                "owner": "123456789012",
                "logGroup": group,
                "logStream": stream,
                "subscriptionFilters": ["thawtrace"],
                "logEvents": chunk,
            }));
        }
    }
    out
}

/// The keys that identify a finding and its request IDs; for the
/// neighbouring kinds, the group, streams and request IDs it is about.
pub fn key(f: &Value) -> String {
    if let Some(ids) = f["request_ids"].as_array() {
        let sorted = |v: &Value| {
            let mut v: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v.join(",")
        };
        return format!(
            "{} {} [{}] [{}]",
            f["kind"],
            f["log_group"],
            sorted(&f["log_streams"]),
            sorted(&Value::Array(ids.clone()))
        );
    }
    format!(
        "{} {} {} {} {} {}",
        f["kind"],
        f["log_stream"],
        f["ping_event_id"],
        f["timeout_event_id"],
        f["ping_request_id"],
        f["timeout_request_id"]
    )
}

/// The keys of the failures found (near misses, warnings scored against
/// the harness's own record of each ping, are left out).
pub fn keys(findings: &[Value]) -> Vec<String> {
    // Warnings their recordings do not model: their own tests check them
    // (near_misses.rs), and a loaded machine can make a healthy connect
    // take a second.
    let mut k: Vec<String> = findings
        .iter()
        .filter(|f| f["kind"] != "keepalive_near_miss" && f["kind"] != "connect_slow")
        .map(key)
        .collect();
    k.sort();
    k
}

/// Earlier events of streams, served as FilterLogEvents would serve them
/// (by stream and time): a lookback source that needs no emulator.
pub struct Memory(pub Vec<(String, thawtrace::lookback::ContextEvent)>);

impl Memory {
    /// Recorded events (`id`, `timestamp`, `message`, as the fixtures write
    /// them), each with its stream.
    pub fn of<'a>(events: impl IntoIterator<Item = (String, &'a serde_json::Value)>) -> Memory {
        Memory(
            events
                .into_iter()
                .map(|(stream, e)| {
                    let e = thawtrace::lookback::ContextEvent::new(
                        e["id"].as_str().unwrap(),
                        e["timestamp"].as_i64().unwrap(),
                        e["message"].as_str().unwrap(),
                        false,
                    );
                    (stream, e)
                })
                .collect(),
        )
    }
}

impl thawtrace::lookback::LogSource for Memory {
    fn fetch<'a>(
        &'a self,
        _group: &'a str,
        stream: &'a str,
        start_ms: i64,
        end_ms: i64,
    ) -> thawtrace::lookback::Fetching<'a> {
        let found = self
            .0
            .iter()
            .filter(|(s, e)| s == stream && (start_ms..end_ms).contains(&e.timestamp_ms))
            .map(|(_, e)| e.clone())
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

/// How an execution-mode recording's finding is matched to the harness's
/// truth, by the mode of its stream: the invocations it names (the wire
/// knows no log event IDs).
fn modes_key(f: &Value, mode: &str) -> String {
    let ids = |v: &Value| {
        let mut ids: Vec<&str> = v
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids.join(",")
    };
    match (f["kind"].as_str().unwrap_or(""), mode) {
        ("snapstart_stale_connection", _) => format!("{} {}", f["kind"], f["request_id"]),
        ("keepalive_timeout", "managed-instances") => {
            format!("{} [{}]", f["kind"], ids(&f["failed_request_ids"]))
        }
        _ => format!(
            "{} {} {}",
            f["kind"], f["ping_request_id"], f["timeout_request_id"]
        ),
    }
}

/// Scores an execution-mode recording (tests/recorders/record_modes.py)
/// against its truth: every kind of every environment found exactly, the
/// stream's mode on its findings, no freeze timeout on a Managed Instances
/// stream. Returns the modes recorded, sorted.
pub fn score_modes(dir: &Path) -> Vec<String> {
    const KINDS: [&str; 3] = [
        "keepalive_freeze_timeout",
        "keepalive_timeout",
        "snapstart_stale_connection",
    ];
    let envs = environments(dir);
    let truth = truth(dir);
    let found = scan_json(&[&dir.join("events.jsonl")]);
    let mut modes = std::collections::BTreeSet::new();
    for env in &envs {
        let stream = env["log_stream"].as_str().unwrap();
        let mode = env["mode"].as_str().unwrap();
        modes.insert(mode.to_owned());
        let of = |all: &[Value], kind: &str| {
            let mut k: Vec<String> = all
                .iter()
                .filter(|f| f["log_stream"] == stream && f["kind"] == kind)
                .map(|f| modes_key(f, mode))
                .collect();
            k.sort();
            k
        };
        // Settings whose lines cannot show a ping (grpc-js without its
        // `keepalive` tracer): nothing found that did not happen, and what
        // did is not required.
        let blind = ["transport", "none"].contains(&env["setting"].as_str().unwrap_or(""));
        for kind in KINDS {
            let (found, truth) = (of(&found, kind), of(&truth, kind));
            if blind {
                assert!(
                    found.iter().all(|f| truth.contains(f)),
                    "{} ({mode}, blind): {kind}: {found:?} not in {truth:?}",
                    env["name"]
                );
                continue;
            }
            assert_eq!(
                found, truth,
                "{} ({mode}, {}): {kind}",
                env["name"], env["setting"]
            );
        }
        for f in found.iter().filter(|f| f["log_stream"] == stream) {
            if f["execution_mode"].is_string() {
                assert_eq!(f["execution_mode"], mode, "{f}");
            }
            if mode == "managed-instances" {
                assert_ne!(f["kind"], "keepalive_freeze_timeout", "{f}");
            }
        }
    }
    modes.into_iter().collect()
}

/// Where `cargo test` built the instrument's examples (the Rust function
/// and its tonic server the recorders run): next to the test's `deps/`.
pub fn examples_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
}

/// Records with `tests/recorders/<script>` (the real libraries, frozen
/// with SIGSTOP, the instrument's examples as the Rust function) under a
/// fresh seed into a temporary directory, which it returns with the seed.
/// Panics, naming the seed, when the recorder fails.
pub fn fresh_recording(script: &str, tag: &str) -> (String, Recording) {
    let examples = examples_dir();
    fresh_recording_with(script, tag, &["--rust-bin".as_ref(), examples.as_os_str()])
}

/// Recorders that run our own code (the instrument's example functions,
/// `--rust-bin`): a failure of theirs may be ours, never retried.
const RUNS_OUR_CODE: [&str; 2] = ["record.py", "record_modes.py"];

/// [`fresh_recording`] with the recorder's own arguments after `--out` and
/// `--seed` (`record_network.py` takes no `--rust-bin`).
///
/// A recorder of third-party libraries only (not [`RUNS_OUR_CODE`]) that
/// fails has not set up what it meant to (a connect that did not stall, a
/// server that did not answer in time on loaded cores): the harness's
/// miss, not a finding's, so unless the seed was pinned (`THAWTRACE_SEED`)
/// it is run once more with the next seed, both seeds printed and the
/// failed one's directory kept. What a recording shows is scored as ever,
/// never retried.
pub fn fresh_recording_with(
    script: &str,
    tag: &str,
    args: &[&std::ffi::OsStr],
) -> (String, Recording) {
    let python = recorder_python();
    let first = fresh_seed();
    let attempts =
        if RUNS_OUR_CODE.contains(&script) || std::env::var_os("THAWTRACE_SEED").is_some() {
            1
        } else {
            2
        };
    let mut seed = first.clone();
    for attempt in 1..=attempts {
        let tmp = Recording::new(&format!("{tag}-{seed}"), &seed);
        eprintln!("recording with seed {seed} into {}", tmp.path().display());
        let status = Command::new(&python)
            .arg(repo().join("tests/recorders").join(script))
            .arg("--out")
            .arg(tmp.path())
            .args(["--seed", &seed])
            .args(args)
            .status()
            .unwrap();
        if status.success() {
            return (seed, tmp);
        }
        let kept = tmp.keep();
        eprintln!(
            "the recorder failed ({status}) with seed {seed}, kept in {}",
            kept.display()
        );
        if attempt < attempts {
            seed = seed.parse::<u64>().map_or(1, |s| s + 1).to_string();
            eprintln!("once more with seed {seed}");
        }
    }
    panic!("the recorder failed (seeds {first} to {seed}; see above)");
}

/// A fresh recording's directory: removed when the test passes, kept when
/// it fails (the recorder's or the score's panic), its path printed, so
/// that a miss on a random seed can be read afterwards, not only rerun.
pub struct Recording {
    dir: Option<tempfile::TempDir>,
    seed: String,
}

impl Recording {
    pub fn new(tag: &str, seed: &str) -> Recording {
        Recording {
            dir: Some(tmp_dir(tag)),
            seed: seed.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("not yet dropped").path()
    }

    /// Keeps the directory whatever happens next; returns its path.
    pub fn keep(mut self) -> PathBuf {
        self.dir.take().expect("not yet dropped").keep()
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "the failed recording (seed {}) is kept: {}",
                self.seed,
                dir.keep().display()
            );
        }
    }
}

/// Scores a recording's `keepalive_near_miss` lines against the harness's
/// own record (`harness_near_misses.json`, tests/harness/near_misses.py:
/// the proxy's frames and the emulator's freezes, never our rules).
///
/// Per environment: where `visible(env)` holds, every recorded near miss is
/// found and nothing else; elsewhere (the logs cannot show a ping) nothing
/// is found. A found near miss matches the record of its stream and ping
/// request ID whose ping time is nearest (within 250 ms), and its margin is
/// within 5 ms of the record's where the library prints its ack timeout
/// (`margins(env)`); where it does not, it has no margin. Returns how many
/// near misses were matched.
pub fn assert_near_misses(
    dir: &Path,
    what: &str,
    visible: impl Fn(&Value) -> bool,
    margins: impl Fn(&Value) -> bool,
) -> usize {
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("harness_near_misses.json")).unwrap(),
    )
    .unwrap();
    let truth = record["near_misses"].as_array().unwrap();
    let found: Vec<Value> = scan_json(&[&dir.join("events.jsonl")])
        .into_iter()
        .filter(|f| f["kind"] == "keepalive_near_miss")
        .collect();
    let envs = environments(dir);
    let mut matched = 0;
    for env in &envs {
        let name = &env["name"];
        let stream = &env["log_stream"];
        let want: Vec<&Value> = truth
            .iter()
            .filter(|t| t["log_stream"] == *stream)
            .collect();
        let got: Vec<&Value> = found
            .iter()
            .filter(|f| f["log_stream"] == *stream)
            .collect();
        eprintln!(
            "{what}: {name}: near misses recorded {}, found {}",
            want.len(),
            got.len()
        );
        if !visible(env) {
            assert!(got.is_empty(), "{what}: {name}: {got:?}");
            continue;
        }
        assert_eq!(got.len(), want.len(), "{what}: {name}: {got:?} vs {want:?}");
        for t in want {
            let sent = t["ping_sent_at_ms"].as_i64().unwrap();
            let f = got
                .iter()
                .filter(|f| f["ping_request_id"] == t["ping_request_id"])
                .min_by_key(|f| (f["ping_at_ms"].as_i64().unwrap() - sent).abs())
                .unwrap_or_else(|| panic!("{what}: {name}: missed {t}"));
            assert!(
                (f["ping_at_ms"].as_i64().unwrap() - sent).abs() < 250,
                "{what}: {f} {t}"
            );
            if margins(env) {
                let diff =
                    (f["margin_ms"].as_i64().unwrap() - t["margin_ms"].as_i64().unwrap()).abs();
                assert!(
                    diff <= 5,
                    "{what}: {name}: margin off by {diff} ms: {f} vs {t}"
                );
            } else {
                assert!(f["margin_ms"].is_null(), "{what}: {name}: {f}");
            }
            matched += 1;
        }
    }
    matched
}
