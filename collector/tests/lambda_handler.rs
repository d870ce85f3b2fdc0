//! The collector as a Lambda function: the `thawtrace` binary started the
//! way the Lambda runtime starts it, against a local Runtime API, receiving
//! real awslogs and Kinesis events built from a recording; EMF and finding
//! lines on stdout, spans at a real OTLP receiver, the same IDs when a
//! batch is delivered twice.

mod common;

use common::receiver::{self, Received, hex};
use common::*;
use serde_json::{Value, json};

fn invoke(events: &[std::path::PathBuf], otlp: &str) -> Value {
    invoke_handler(
        events,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_and_kinesis_events_become_emf_lines_findings_and_spans() {
    let received = Received::default();
    let addr = receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
    let fixture = &fixtures()[0];
    let events = events(fixture);
    let want = keys(&scan_json(&[&fixture.join("events.jsonl")]));
    let messages = subscription_messages(&events, 100_000);

    let dir = std::env::temp_dir().join(format!("thawtrace-handler-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let data = b64(&gzip(m.to_string().as_bytes()));
        let (name, event) = if i % 2 == 0 {
            ("awslogs", json!({"awslogs": {"data": data}}))
        } else {
            (
                "kinesis",
                json!({"Records": [{"kinesis": {"data": data, "partitionKey": "k", "sequenceNumber": "1"}}]}),
            )
        };
        let path = dir.join(format!("{i:03}-{name}.json"));
        std::fs::write(&path, event.to_string()).unwrap();
        files.push(path);
    }
    let endpoint = format!("http://{addr}");
    let result = tokio::task::spawn_blocking({
        let (f, e) = (files.clone(), endpoint.clone());
        move || invoke(&f, &e)
    })
    .await
    .unwrap();

    let responses = result["responses"].as_array().unwrap();
    assert_eq!(responses.len(), files.len());
    assert!(
        responses.iter().all(|r| r["kind"] == "response"),
        "{responses:?}"
    );
    let output: Vec<&str> = result["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();

    // One JSON line per finding: the `scan --format json` object.
    let findings: Vec<Value> = output
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("kind").is_some())
        .collect();
    assert_eq!(keys(&findings), want);

    // EMF: namespace Thawtrace, one metric per kind, dimension FunctionName.
    let emf: Vec<Value> = output
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert!(!emf.is_empty());
    let freeze_total: u64 = emf
        .iter()
        .map(|v| v["KeepaliveFreezeTimeouts"].as_u64().unwrap())
        .sum();
    assert_eq!(
        freeze_total as usize,
        findings
            .iter()
            .filter(|f| f["kind"] == "keepalive_freeze_timeout")
            .count()
    );
    for v in &emf {
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "Thawtrace");
        assert_eq!(m["Dimensions"], json!([["FunctionName"]]));
        assert!(v["FunctionName"].as_str().unwrap().starts_with("orders-"));
    }

    // Spans flushed before each invocation returned.
    let spans = received.spans();
    let freeze = spans
        .iter()
        .filter(|s| s.name == "thawtrace.keepalive_freeze_timeout")
        .count();
    assert_eq!(
        freeze,
        findings
            .iter()
            .filter(|f| f["kind"] == "keepalive_freeze_timeout")
            .count()
    );
    assert!(
        spans
            .iter()
            .any(|s| receiver::attr(s, "cloud.region").as_deref() == Some("eu-west-1"))
    );

    // Lambda delivers a batch again (a retry): the same span IDs.
    let first: std::collections::BTreeSet<String> = spans
        .iter()
        .map(|s| format!("{}/{}", hex(&s.trace_id), hex(&s.span_id)))
        .collect();
    let again = Received::default();
    let addr2 = receiver::start("127.0.0.1:0".parse().unwrap(), again.clone()).await;
    tokio::task::spawn_blocking(move || invoke(&files, &format!("http://{addr2}")))
        .await
        .unwrap();
    let second: std::collections::BTreeSet<String> = again
        .spans()
        .iter()
        .map(|s| format!("{}/{}", hex(&s.trace_id), hex(&s.span_id)))
        .collect();
    assert_eq!(first, second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_payload_fails_the_invocation_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("thawtrace-handler-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"awslogs":{"data":"bm90IGd6aXA="}}"#).unwrap();
    let control = dir.join("control.json");
    let msg = json!({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "", "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 1, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]});
    std::fs::write(
        &control,
        json!({"awslogs": {"data": b64(&gzip(msg.to_string().as_bytes()))}}).to_string(),
    )
    .unwrap();
    let result = invoke(&[bad, control], "http://127.0.0.1:9");
    let r = result["responses"].as_array().unwrap();
    assert_eq!(r[0]["kind"], "error");
    assert!(r[0]["body"].to_string().contains("not gzip"), "{}", r[0]);
    // A control message is acknowledged and ignored.
    assert_eq!(r[1]["kind"], "response");
    assert_eq!(r[1]["body"]["findings"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}
