//! The example function (`examples/lambda_grpc.rs`) under Lambda's other
//! execution modes, run as a process against a Runtime API on loopback and
//! the echo server: SnapStart (a connection opened during init, the
//! `restore` event naming it, the after-restore hook re-creating the
//! channel or keeping the stale one) and Lambda Managed Instances
//! (`AWS_LAMBDA_MAX_CONCURRENCY=2`).

mod common;

use std::time::Duration;

use common::runtime_api::RuntimeApi;
use common::{EchoServer, Function};
use serde_json::Value;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A bound on waiting for the function: a hung test fails instead of
/// hanging; nothing is measured with it.
const PATIENCE: Duration = Duration::from_secs(60);

/// The value of `key=` in a text line (quotes removed).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split(' ').next()?,
    })
}

fn event<'a>(lines: &'a [String], name: &str) -> Vec<&'a String> {
    let needle = format!("event=\"{name}\"");
    lines.iter().filter(|l| l.contains(&needle)).collect()
}

/// Runs the example under SnapStart: init (one call, so one connection),
/// the snapshot, the restore, then one invocation of two calls.
fn snapstart(recreate: bool, json: bool) -> Vec<String> {
    let server = EchoServer::start();
    let runtime = runtime();
    let api = RuntimeApi::bind();
    runtime.block_on(async { api.serve() });
    let mut env = api.env();
    env.push(("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start".into()));
    env.push(("GRPC_CONNECT_AT_INIT", "1".into()));
    env.push(("GRPC_TARGET", server.uri()));
    if recreate {
        env.push(("THAWTRACE_RECREATE_ON_RESTORE", "1".into()));
    }
    if json {
        env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
    }
    let function = Function::start(&env);
    runtime
        .block_on(async { tokio::time::timeout(PATIENCE, api.restore_polled()).await })
        .expect("the function finished its init and waits for the restore");
    api.restore();
    api.invoke("5f1c3a2e-0001", r#"{"calls": 2}"#);
    let response = runtime
        .block_on(async { tokio::time::timeout(PATIENCE, api.response("5f1c3a2e-0001")).await })
        .expect("the restored function answered");
    assert_eq!(response, r#"{"ok":2}"#, "{:#?}", function.lines());
    assert!(api.errors().is_empty(), "{:?}", api.errors());
    function.wait_for(|l| {
        l.contains("echo call ok") && (l.contains("call=1") || l.contains(r#""call":1"#))
    })
}

#[test]
fn snapstart_restore_names_the_connection_from_init_and_the_hook_recreates_the_channel() {
    let lines = snapstart(true, false);
    let text = lines.join("\n");
    let connects = event(&lines, "connect_done");
    let restore = event(&lines, "restore");
    assert_eq!(restore.len(), 1, "{text}");
    assert_eq!(
        connects.len(),
        2,
        "one at init, one after the restore: {text}"
    );
    // The connection made during init has no invocation, and is alive at
    // the restore: the restore names it.
    let before = connects[0];
    assert_eq!(field(before, "request_id"), Some("-"), "{text}");
    let init_conn = field(before, "conn").unwrap();
    assert_eq!(field(restore[0], "conns"), Some(init_conn), "{text}");
    assert_eq!(field(restore[0], "peers"), field(before, "peer"), "{text}");
    assert_eq!(field(restore[0], "request_id"), Some("-"), "{text}");
    let position = |l: &String| lines.iter().position(|x| std::ptr::eq(x, l)).unwrap();
    assert!(position(before) < position(restore[0]), "{text}");
    // The hook ran after the restore line, and the invocation's calls went
    // out on a new connection.
    let recreated = lines
        .iter()
        .position(|l| l.contains("channel re-created after the restore"))
        .expect("the hook ran");
    assert!(position(restore[0]) < recreated, "{text}");
    let after = connects[1];
    assert!(position(after) > recreated, "{text}");
    assert_ne!(field(after, "conn"), Some(init_conn), "{text}");
    assert_eq!(field(after, "request_id"), Some("5f1c3a2e-0001"), "{text}");
}

#[test]
fn snapstart_without_the_hook_keeps_the_stale_channel() {
    let lines = snapstart(false, true);
    let events: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "thawtrace")
        .map(|mut v| v["fields"].take())
        .collect();
    let named =
        |name: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == name).collect() };
    let connects = named("connect_done");
    let restore = named("restore");
    assert_eq!(
        connects.len(),
        1,
        "only the connection made at init: {lines:#?}"
    );
    assert_eq!(restore.len(), 1, "{lines:#?}");
    assert_eq!(
        restore[0]["conns"].as_str(),
        Some(connects[0]["conn"].to_string().as_str()),
        "{lines:#?}"
    );
    assert_eq!(restore[0]["request_id"], "-");
    assert_eq!(restore[0]["peers"], connects[0]["peer"], "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("re-created")));
}

#[test]
fn managed_instances_stamp_events_with_in_flight_and_no_thaw() {
    let server = EchoServer::start();
    let runtime = runtime();
    let api = RuntimeApi::bind();
    runtime.block_on(async { api.serve() });
    let mut env = api.env();
    env.push(("AWS_LAMBDA_MAX_CONCURRENCY", "2".into()));
    env.push(("GRPC_TARGET", server.uri()));
    let function = Function::start(&env);
    let ids = ["7a0e9c41-0001", "7a0e9c41-0002", "7a0e9c41-0003"];
    api.invoke(ids[0], r#"{"calls": 2, "spin_ms": 5}"#);
    api.invoke(ids[1], r#"{"calls": 2}"#);
    api.invoke(ids[2], r#"{"calls": 1}"#);
    for id in ids {
        let response = runtime
            .block_on(async { tokio::time::timeout(PATIENCE, api.response(id)).await })
            .expect("every invocation answered");
        assert!(response.starts_with(r#"{"ok":"#), "{response}");
    }
    let lines = function.wait_for(|l| l.contains(r#"event="connect_done""#));
    let text = lines.join("\n");
    let connects = event(&lines, "connect_done");
    // The shared channel's connection is stamped with the invocation whose
    // call opened it, never a made-up one, and says how many were in flight.
    for c in &connects {
        assert!(ids.contains(&field(c, "request_id").unwrap()), "{text}");
        let in_flight: u64 = field(c, "in_flight").unwrap().parse().unwrap();
        assert!((1..=2).contains(&in_flight), "{text}");
        assert_eq!(field(c, "between_invocations"), Some("false"), "{text}");
    }
    assert!(event(&lines, "thaw").is_empty(), "never frozen: {text}");
    assert!(text.contains("spin_ms=5"), "{text}");
}
