//! OTLP export against a real receiver: span names, attributes, links,
//! status; identical IDs for a second delivery; a receiver that is down and
//! then up still gets every span.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::receiver::{self, Received, attr, hex};
use common::*;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

fn scan_to(endpoint: &str, input: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thawtrace"))
        .args(["scan", "--format", "json", "--otlp-endpoint", endpoint])
        .arg(input)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_arrive_as_linked_spans_with_stable_ids() {
    let received = Received::default();
    let addr = receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
    let fixture = fixtures()[0].join("events.jsonl");
    let endpoint = format!("http://{addr}");

    let out = tokio::task::spawn_blocking({
        let (e, f) = (endpoint.clone(), fixture.clone());
        move || scan_to(&e, &f)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let spans = received.spans();
    let freeze: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "thawtrace.keepalive_freeze_timeout")
        .collect();
    let n_freeze = findings
        .iter()
        .filter(|f| f["kind"] == "keepalive_freeze_timeout")
        .count();
    assert_eq!(freeze.len(), n_freeze);
    assert!(n_freeze > 0);

    let invocation = |trace: &[u8], span: &[u8]| {
        spans
            .iter()
            .find(|s| s.name == "lambda invocation" && s.trace_id == trace && s.span_id == span)
            .cloned()
    };
    for s in &freeze {
        assert_eq!(s.status.as_ref().unwrap().code, StatusCode::Error as i32);
        let ping_rid = attr(s, "thawtrace.ping_request_id").unwrap();
        let timeout_rid = attr(s, "thawtrace.timeout_request_id").unwrap();
        assert_ne!(ping_rid, timeout_rid);
        assert!(
            attr(s, "thawtrace.frozen_ms")
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 0
        );
        assert!(attr(s, "thawtrace.evidence").is_some());
        assert_eq!(attr(s, "cloud.provider").as_deref(), Some("aws"));
        // Parent: the invocation in which the ping timed out.
        let parent = invocation(&s.trace_id, &s.parent_span_id)
            .expect("the timeout invocation's span was exported");
        assert_eq!(attr(&parent, "faas.invocation_id"), Some(timeout_rid));
        // Link: the invocation that sent the ping.
        assert_eq!(s.links.len(), 1);
        let linked = invocation(&s.links[0].trace_id, &s.links[0].span_id)
            .expect("the ping invocation's span was exported");
        assert_eq!(attr(&linked, "faas.invocation_id"), Some(ping_rid));
    }
    // Nothing of a raw log line leaves: only parsed fields.
    let dump = format!("{spans:?}");
    for raw in [
        "Sending ping",
        "Ping timeout passed",
        "handling order batch",
        "echo call",
    ] {
        assert!(!dump.contains(raw), "a span carries raw log text: {raw}");
    }

    // A second delivery of the same input: the same span IDs, nothing new.
    let ids = |spans: &[opentelemetry_proto::tonic::trace::v1::Span]| -> BTreeSet<String> {
        spans
            .iter()
            .map(|s| format!("{}/{}", hex(&s.trace_id), hex(&s.span_id)))
            .collect()
    };
    let first = ids(&spans);
    let again = Received::default();
    let addr2 = receiver::start("127.0.0.1:0".parse().unwrap(), again.clone()).await;
    let out = tokio::task::spawn_blocking(move || scan_to(&format!("http://{addr2}"), &fixture))
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(ids(&again.spans()), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_then_up_gets_every_span() {
    // Reserve a port, free it, export to it while nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let fixture = fixtures()[0].join("events.jsonl");
    let scan = tokio::task::spawn_blocking(move || scan_to(&format!("http://{addr}"), &fixture));
    tokio::time::sleep(Duration::from_millis(900)).await;
    let received = Received::default();
    receiver::start(addr, received.clone()).await;
    let out = scan.await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("(1 attempt(s))"),
        "the first attempt should have failed: {stderr}"
    );
    let spans = received.spans();
    let freeze = spans
        .iter()
        .filter(|s| s.name == "thawtrace.keepalive_freeze_timeout")
        .count();
    assert!(freeze > 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_reaches_a_real_receiver() {
    let received = Received::default();
    let addr = receiver::start_http(received.clone()).await;
    let fixture = fixtures()[0].join("events.jsonl");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_thawtrace"))
            .args([
                "scan",
                "--format",
                "json",
                "--otlp-protocol",
                "http/protobuf",
                "--otlp-endpoint",
            ])
            .arg(format!("http://{addr}"))
            .arg(&fixture)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = received.spans();
    assert!(
        spans
            .iter()
            .any(|s| s.name == "thawtrace.keepalive_freeze_timeout")
    );
    assert!(spans.iter().any(|s| s.name == "lambda invocation"));
}

#[test]
fn an_endpoint_that_stays_down_fails_the_export() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = scan_to(
        &format!("http://127.0.0.1:{port}"),
        &fixtures()[0].join("events.jsonl"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OTLP export failed after 6 attempts"));
}
