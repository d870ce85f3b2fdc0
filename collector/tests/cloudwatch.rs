//! CloudWatch Logs for real: moto in server mode on loopback holds a
//! recorded stream; `thawtrace scan --log-group` reads it live, and the
//! Lambda handler, given the stream in batches that separate every ping from
//! its timeout, looks the pings up with FilterLogEvents (through a proxy that
//! throttles the first calls) and finds what a whole scan finds.
//!
//! Needs moto: `bash tests/setup.sh`, THAWTRACE_PYTHON=tests/.deps/venv/bin/python.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use common::moto::*;
use common::*;
use serde_json::{Value, json};

fn fault_proxy(upstream: u16, throttle: u32, state: &std::path::Path) -> (Server, u16) {
    // Owned at once: dropping it (also on a failed start) kills the proxy.
    let server = Server(
        Command::new(python())
            .arg(repo().join("tests/harness/fault_proxy.py"))
            .args([upstream.to_string(), throttle.to_string()])
            .arg(state)
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if let Ok(s) = std::fs::read_to_string(state)
            && let Ok(v) = serde_json::from_str::<Value>(&s)
        {
            let port = v["port"].as_u64().unwrap() as u16;
            wait_for_port(port);
            return (server, port);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the fault proxy did not start");
}

fn client(port: u16) -> Client {
    moto_client!(aws_sdk_cloudwatchlogs, port, "us-east-1")
}

/// The recorded events, moved to the last hour (CloudWatch refuses old events).
fn shifted(fixture: &std::path::Path) -> Vec<Value> {
    let mut evs = events(fixture);
    let first = evs
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .min()
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let offset = now - 3_600_000 - first;
    for e in &mut evs {
        e["timestamp"] = json!(e["timestamp"].as_i64().unwrap() + offset);
    }
    evs
}

/// Puts the events into moto, one stream each, and reads them back with the
/// IDs CloudWatch gave them (subscriptions deliver those IDs).
async fn put(cw: &Client, evs: &[Value]) -> Vec<Value> {
    let keys = streams_of(evs);
    let mut back = Vec::new();
    for (group, stream) in &keys {
        let _ = cw.create_log_group().log_group_name(group).send().await;
        cw.create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
            .unwrap();
        let mine: Vec<&Value> = evs
            .iter()
            .filter(|e| e["logGroup"] == group.as_str() && e["logStream"] == stream.as_str())
            .collect();
        let input: Vec<InputLogEvent> = mine
            .iter()
            .map(|e| {
                InputLogEvent::builder()
                    .timestamp(e["timestamp"].as_i64().unwrap())
                    .message(e["message"].as_str().unwrap())
                    .build()
                    .unwrap()
            })
            .collect();
        cw.put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(input))
            .send()
            .await
            .unwrap();
        let page = cw
            .filter_log_events()
            .log_group_name(group)
            .log_stream_names(stream)
            .send()
            .await
            .unwrap();
        assert_eq!(
            page.events().len(),
            mine.len(),
            "moto returned every event of {stream}"
        );
        for e in page.events() {
            back.push(json!({
                "id": e.event_id(), "timestamp": e.timestamp(), "message": e.message(),
                "logStream": stream, "logGroup": group,
            }));
        }
    }
    back
}

fn write_jsonl(path: &std::path::Path, evs: &[Value]) {
    let text: String = evs.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_scan_finds_what_a_scan_of_the_export_finds() {
    let (_moto, port) = moto();
    let cw = client(port);
    let evs = shifted(&fixtures()[0]);
    let back = put(&cw, &evs).await;
    let dir = tmp_dir("cw-live");
    write_jsonl(&dir.path().join("export.jsonl"), &back);
    let want = scan_json(&[&dir.path().join("export.jsonl")]);
    assert!(want.iter().any(|f| f["kind"] == "keepalive_freeze_timeout"));

    let mut groups: Vec<String> = back
        .iter()
        .map(|e| e["logGroup"].as_str().unwrap().to_owned())
        .collect();
    groups.sort();
    groups.dedup();
    let mut got = Vec::new();
    for group in groups {
        let endpoint = format!("http://127.0.0.1:{port}");
        let out = tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_thawtrace"));
            cmd.args([
                "scan",
                "--format",
                "json",
                "--log-group",
                &group,
                "--since",
                "3h",
                "--endpoint-url",
                &endpoint,
            ]);
            aws_env(&mut cmd, "http://127.0.0.1:9");
            cmd.output().unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        got.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    assert_eq!(keys(&got), keys(&want));
}

/// `scan --format json --since 3h` of live groups in moto (`args` name
/// them): the process's output.
async fn live_scan_output(port: u16, args: Vec<String>) -> std::process::Output {
    let endpoint = format!("http://127.0.0.1:{port}");
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_thawtrace"));
        cmd.args([
            "scan",
            "--format",
            "json",
            "--since",
            "3h",
            "--endpoint-url",
        ])
        .arg(&endpoint)
        .args(&args);
        aws_env(&mut cmd, "http://127.0.0.1:9");
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

/// [`live_scan_output`]'s findings, sorted.
async fn live_scan(port: u16, args: Vec<String>) -> Vec<String> {
    let out = live_scan_output(port, args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_of_three_groups_by_prefix_is_the_union_of_their_scans() {
    let (_moto, port) = moto();
    let cw = client(port);
    let fixture = network_fixture();
    put(&cw, &shifted(&fixture)).await;
    let prefix = "/aws/lambda/orders-";
    let mut groups: Vec<String> = streams_of(&events(&fixture))
        .into_iter()
        .map(|(g, _)| g)
        .filter(|g| g.starts_with(prefix))
        .collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), 3, "{groups:?}");
    let args = scan_args(&fixture);
    let mut union = Vec::new();
    for g in &groups {
        let mut one = vec!["--log-group".to_owned(), g.clone()];
        one.extend(args.iter().cloned());
        union.extend(live_scan(port, one).await);
    }
    union.sort();
    assert!(!union.is_empty());
    let mut by_prefix = vec!["--log-group-prefix".to_owned(), prefix.to_owned()];
    by_prefix.extend(args.iter().cloned());
    assert_eq!(live_scan(port, by_prefix).await, union, "by prefix");
    let mut named: Vec<String> = groups
        .iter()
        .flat_map(|g| ["--log-group".to_owned(), g.clone()])
        .collect();
    named.extend(args.iter().cloned());
    assert_eq!(live_scan(port, named).await, union, "named");
}

/// A group of 251 streams is read in chunks of 100 streams, several
/// requests at once: every stream in the window is read once, an
/// async retry whose two attempts sit in streams of different chunks is
/// still one `duplicate_invocation`, and a stream whose events all
/// precede `--since` is not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_many_streams_is_read_in_chunks_at_once() {
    let (_moto, port) = moto();
    let cw = client(port);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let group = "/aws/lambda/wide";
    let rid = |n: usize| format!("5d1a0000-0000-4000-8000-{n:012}");
    let mut evs = Vec::new();
    for n in 0..251 {
        // Stream 230's invocation is stream 5's, retried; stream 250 ended
        // five hours ago.
        let (id, at) = match n {
            230 => (rid(5), now - 1_800_000 + 60_000),
            250 => (rid(250), now - 5 * 3_600_000),
            _ => (rid(n), now - 1_800_000 + n as i64),
        };
        let stream = format!("2026/12/06/[$LATEST]{n:032x}");
        for (dt, message) in [
            (0, format!("START RequestId: {id} Version: $LATEST")),
            (5, format!("END RequestId: {id}")),
        ] {
            evs.push(json!({"timestamp": at + dt, "message": message, "logStream": stream, "logGroup": group}));
        }
    }
    put(&cw, &evs).await;
    let found = live_scan(port, vec!["--log-group".to_owned(), group.to_owned()]).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let f: Value = serde_json::from_str(&found[0]).unwrap();
    assert_eq!(f["kind"], "duplicate_invocation");
    assert_eq!(
        f["log_streams"],
        json!([
            format!("2026/12/06/[$LATEST]{:032x}", 5),
            format!("2026/12/06/[$LATEST]{:032x}", 230)
        ])
    );
    // Every stream in the window, once: the summary counts them.
    let out = live_scan_output(port, vec!["--log-group".to_owned(), group.to_owned()]).await;
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("500 events in 250 log streams"),
        "{summary}"
    );
}

/// Subscription batches of one stream, cut right after every ping of a
/// freeze timeout, so no such ping shares a batch with its timeout.
fn batches_separating_pings(stream_events: &[Value], findings: &[Value]) -> Vec<Vec<Value>> {
    let cuts: BTreeSet<&str> = findings
        .iter()
        .filter_map(|f| f["ping_event_id"].as_str())
        .collect();
    let mut out = vec![Vec::new()];
    for e in stream_events {
        out.last_mut().unwrap().push(e.clone());
        if cuts.contains(e["id"].as_str().unwrap()) {
            out.push(Vec::new());
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

fn awslogs_event(batch: &[Value]) -> Value {
    let msg = subscription_messages(batch, usize::MAX).remove(0);
    json!({"awslogs": {"data": b64(&gzip(msg.to_string().as_bytes()))}})
}

fn run_handler(events: &[std::path::PathBuf], endpoint: &str) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/harness/invoke.py"));
    for e in events {
        cmd.arg("--event").arg(e);
    }
    cmd.arg("--").arg(env!("CARGO_BIN_EXE_thawtrace"));
    aws_env(&mut cmd, endpoint);
    // Throttled calls are retried with backoff (up to ~3 s for two): a
    // budget that lets them finish (tests/faults.rs holds the default's).
    cmd.env("THAWTRACE_DEPENDENCY_BUDGET", "20s");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn handler_findings(result: &Value) -> Vec<Value> {
    for r in result["responses"].as_array().unwrap() {
        assert_eq!(r["kind"], "response", "{r}");
    }
    result["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l.as_str().unwrap()).ok())
        .filter(|v| v.get("kind").is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookback_finds_pings_from_earlier_batches_despite_throttling() {
    let (_moto, port) = moto();
    let cw = client(port);
    // One Node.js stream (grpc-js, text) and one Python stream (grpcio, JSON).
    let fixture = &fixtures()[0];
    let chosen: Vec<Value> = shifted(fixture)
        .into_iter()
        .filter(|e| {
            matches!(
                e["logGroup"].as_str(),
                Some("/aws/lambda/orders-node" | "/aws/lambda/orders-python-json")
            )
        })
        .collect();
    let back = put(&cw, &chosen).await;
    let dir = tmp_dir("cw-lookback");
    write_jsonl(&dir.path().join("all.jsonl"), &back);
    let want = scan_json(&[&dir.path().join("all.jsonl")]);
    assert!(want.iter().any(|f| f["kind"] == "keepalive_freeze_timeout"));

    let mut files = Vec::new();
    let mut streams: Vec<&str> = back
        .iter()
        .map(|e| e["logStream"].as_str().unwrap())
        .collect();
    streams.dedup();
    for stream in streams {
        let mine: Vec<Value> = back
            .iter()
            .filter(|e| e["logStream"] == stream)
            .cloned()
            .collect();
        let freezes: Vec<Value> = want
            .iter()
            .filter(|f| f["log_stream"] == stream)
            .cloned()
            .collect();
        for (i, batch) in batches_separating_pings(&mine, &freezes).iter().enumerate() {
            let path = dir.path().join(format!(
                "{}-{i:03}.json",
                stream.replace(['/', '[', ']', '$'], "_")
            ));
            std::fs::write(&path, awslogs_event(batch).to_string()).unwrap();
            files.push(path);
        }
    }

    // Cold: every batch to a new collector (no cache): each timeout's ping
    // comes from FilterLogEvents, through two throttled calls first.
    let state = dir.path().join("proxy.json");
    let (_proxy, proxy_port) = fault_proxy(port, 2, &state);
    let endpoint = format!("http://127.0.0.1:{proxy_port}");
    let mut cold = Vec::new();
    for f in &files {
        let (f, e) = (f.clone(), endpoint.clone());
        let result = tokio::task::spawn_blocking(move || run_handler(&[f], &e))
            .await
            .unwrap();
        cold.extend(handler_findings(&result));
    }
    assert_eq!(keys(&cold), keys(&want), "cold collectors with lookback");
    let counts: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(counts["throttled"], 2, "{counts}");
    assert!(counts["forwarded"].as_u64().unwrap() >= 1, "{counts}");

    // Warm: one collector, the batches in order: after one look back per
    // stream on its first batch, its cache holds everything it needs.
    let before = counts["forwarded"].as_u64().unwrap();
    let all = files.clone();
    let result = tokio::task::spawn_blocking(move || run_handler(&all, &endpoint))
        .await
        .unwrap();
    assert_eq!(
        keys(&handler_findings(&result)),
        keys(&want),
        "one warm collector"
    );
    let counts: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let warm_calls = counts["forwarded"].as_u64().unwrap() - before;
    assert!(
        warm_calls <= 2,
        "{warm_calls} lookups for 2 streams: the warm cache should answer the rest"
    );
    assert!(warm_calls < files.len() as u64);
}

#[test]
fn every_line_that_matters_matches_the_lookback_filter_pattern() {
    // CloudWatch's `?term` semantics: a quoted or bare term matches when it
    // occurs in the message (case-sensitive). moto does not implement OR
    // patterns, so the pattern is checked here against recorded lines.
    let terms: Vec<String> = thawtrace::lookback::FILTER_PATTERN
        .split('?')
        .map(|t| t.trim().trim_matches('"').to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let mut checked = 0;
    for fixture in fixtures() {
        let findings = scan_json(&[&fixture.join("events.jsonl")]);
        let ids: BTreeSet<String> = findings
            .iter()
            .flat_map(|f| {
                f["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
            })
            .collect();
        for e in events(&fixture) {
            let msg = e["message"].as_str().unwrap();
            let platform = msg.starts_with("START RequestId")
                || msg.starts_with("END RequestId")
                || msg.contains("platform.start")
                || msg.contains("platform.runtimeDone");
            if platform || ids.contains(e["id"].as_str().unwrap()) {
                assert!(
                    terms.iter().any(|t| msg.contains(t.as_str())),
                    "no filter term matches: {msg}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100);
}
