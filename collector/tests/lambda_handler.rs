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

    let tmp = tmp_dir("handler");
    let dir = tmp.path();
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
}

#[test]
fn undecodable_data_is_counted_and_named_not_retried() {
    let tmp = tmp_dir("handler-bad");
    let dir = tmp.path();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"awslogs":{"data":"bm90IGd6aXA="}}"#).unwrap();
    let control = dir.join("control.json");
    let msg = json!({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "", "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 1, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]});
    std::fs::write(
        &control,
        json!({"awslogs": {"data": b64(&gzip(msg.to_string().as_bytes()))}}).to_string(),
    )
    .unwrap();
    let neither = dir.join("neither.json");
    std::fs::write(&neither, r#"{"detail-type":"Scheduled Event"}"#).unwrap();
    let result = invoke(&[bad, control, neither], "http://127.0.0.1:9");
    let r = result["responses"].as_array().unwrap();
    // A retry cannot make it decode: answered, counted, named on stderr.
    assert_eq!(r[0]["kind"], "response", "{}", r[0]);
    assert_eq!(r[0]["body"]["rejected_records"], 1);
    assert!(r[0]["body"].get("batchItemFailures").is_none());
    let output = result["output"].to_string();
    assert!(
        output.contains("payload_rejected") && output.contains("not gzip"),
        "{output}"
    );
    // A control message is acknowledged and ignored.
    assert_eq!(r[1]["kind"], "response");
    assert_eq!(r[1]["body"]["findings"], 0);
    assert_eq!(r[1]["body"]["rejected_records"], 0);
    // An event that is neither awslogs nor Kinesis fails, with the reason,
    // named as the Lambda error's type.
    assert_eq!(r[2]["kind"], "error");
    assert_eq!(r[2]["body"]["errorType"], "InvalidPayload", "{}", r[2]);
    assert!(r[2]["body"].to_string().contains("neither"), "{}", r[2]);
}

/// A Kinesis event of the recording's messages, a poison record among
/// them: the poison is skipped and counted, every other record read.
fn kinesis_with_poison(dir: &std::path::Path) -> (std::path::PathBuf, Vec<String>) {
    let fixture = &fixtures()[0];
    let messages = subscription_messages(&events(fixture), 100_000);
    let mut records: Vec<Value> = Vec::new();
    let mut good = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let n = format!("4960{i:04}");
        records.push(json!({"kinesis": {"data": b64(&gzip(m.to_string().as_bytes())), "partitionKey": "k", "sequenceNumber": n, "approximateArrivalTimestamp": 1795853233.137}}));
        good.push(n);
        if i == 0 {
            records.push(json!({"kinesis": {"data": "%%% not base64", "partitionKey": "k", "sequenceNumber": "49609999"}}));
            records.push(json!({"kinesis": {"partitionKey": "k", "sequenceNumber": "49609998"}}));
        }
    }
    let path = dir.join("kinesis.json");
    std::fs::write(&path, json!({"Records": records}).to_string()).unwrap();
    (path, good)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_kinesis_record_is_skipped_and_counted_the_others_exported() {
    let received = Received::default();
    let addr = receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
    let tmp = tmp_dir("handler-poison");
    let (event, _) = kinesis_with_poison(tmp.path());
    let fixture = &fixtures()[0];
    let want = keys(&scan_json(&[&fixture.join("events.jsonl")]));
    let endpoint = format!("http://{addr}");
    let result = tokio::task::spawn_blocking(move || invoke(&[event], &endpoint))
        .await
        .unwrap();
    let r = &result["responses"][0];
    assert_eq!(r["kind"], "response", "{r}");
    assert_eq!(r["body"]["rejected_records"], 2);
    // Nothing to retry: the poison would fail again, the rest succeeded.
    assert_eq!(r["body"]["batchItemFailures"], json!([]));
    let output: Vec<Value> = result["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str(l.as_str()?).ok())
        .collect();
    let findings: Vec<Value> = output
        .iter()
        .filter(|v| v.get("kind").is_some())
        .cloned()
        .collect();
    assert_eq!(keys(&findings), want);
    let rejected: Vec<&Value> = output
        .iter()
        .filter(|v| v.get("RejectedRecords").is_some())
        .collect();
    assert_eq!(rejected.len(), 1, "one EMF line of the collector's counts");
    assert_eq!(rejected[0]["RejectedRecords"], 2);
    assert!(r["body"]["spans"].as_u64().unwrap() > 0);
    assert!(!received.spans().is_empty());
}

#[test]
fn records_are_not_retried_when_the_exporter_is_down_the_lost_spans_are_counted() {
    let tmp = tmp_dir("handler-retry");
    let (event, _) = kinesis_with_poison(tmp.path());
    // Nothing listens on port 9: every export attempt fails.
    let result = invoke(&[event], "http://127.0.0.1:9");
    let r = &result["responses"][0];
    assert_eq!(r["kind"], "response", "{r}");
    // A retry would print the records' metrics again: none is asked for.
    assert_eq!(r["body"]["batchItemFailures"], json!([]));
    assert!(r["body"]["spans_lost"].as_u64().unwrap() > 0, "{r}");
    let output: Vec<Value> = result["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str(l.as_str()?).ok())
        .collect();
    let collector: Vec<&Value> = output
        .iter()
        .filter(|v| v.get("ExportFailures").is_some())
        .collect();
    assert_eq!(collector.len(), 1);
    assert_eq!(collector[0]["ExportFailures"], 1);
    assert!(
        output.iter().any(
            |v| v["thawtrace"] == "export_failed" && v["spans_lost"] == r["body"]["spans_lost"]
        )
    );
}

/// The function memory the template gives the collector (`MemorySize`).
fn template_memory_mb() -> u64 {
    let template = std::fs::read_to_string(repo().join("dashboards/template.yaml")).unwrap();
    template
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("MemorySize in the template")
}

/// The largest event a Kinesis source delivers (6 MB): four records of
/// about 1 MiB each (Kinesis's limit), each a subscription message of
/// 40,000 events (~10 MB of log text), and a gzip bomb of 70 MB that the
/// event's decompression budget (64 MiB) refuses. Answered within the
/// function memory the template gives.
#[test]
fn the_largest_event_is_read_within_the_function_memory() {
    let tmp = tmp_dir("handler-large");
    let mut records = Vec::new();
    let mut compressed_total = 0;
    for r in 0..4 {
        let events: Vec<Value> = (0..40_000)
            .map(|i| {
                let rid = format!("{:08x}-c745-4468-b82a-{r:04}{i:08}", i / 20);
                let message = match i % 20 {
                    0 => format!("START RequestId: {rid} Version: $LATEST"),
                    19 => format!("END RequestId: {rid}"),
                    _ => format!(
                        "2026-11-28T08:07:10.293Z\t{rid}\tINFO\torder {i} accepted: {{\"orderId\":\"ord-{i:08}\",\"items\":[{{\"sku\":\"SKU-{:05}\",\"qty\":{}}}],\"total\":{}.{:02},\"note\":\"back door\"}}",
                        i % 99_999,
                        i % 9 + 1,
                        i % 500,
                        i % 100
                    ),
                };
                json!({"id": format!("{r}{i:055}"), "timestamp": 1_795_853_230_000i64 + i as i64, "message": message})
            })
            .collect();
        let msg = json!({"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/orders",
            "logStream": format!("2026/11/28/[$LATEST]{r:032}"), "subscriptionFilters": ["t"], "logEvents": events});
        let raw = gzip(msg.to_string().as_bytes());
        assert!(
            raw.len() <= 1 << 20,
            "a Kinesis record is at most 1 MiB: {}",
            raw.len()
        );
        let data = b64(&raw);
        compressed_total += data.len();
        records.push(json!({"kinesis": {"data": data, "partitionKey": "k", "sequenceNumber": format!("{r}"), "approximateArrivalTimestamp": 1795853233.137}}));
    }
    let bomb = b64(&gzip(&vec![b' '; 70 << 20]));
    records.push(json!({"kinesis": {"data": bomb, "partitionKey": "k", "sequenceNumber": "bomb"}}));
    let event = tmp.path().join("large.json");
    let text = json!({"Records": records}).to_string();
    assert!(
        text.len() <= 6 << 20,
        "a Kinesis event is at most 6 MB: {}",
        text.len()
    );
    std::fs::write(&event, text).unwrap();
    let result = invoke(&[event], "http://127.0.0.1:9");
    let r = &result["responses"][0];
    assert_eq!(r["kind"], "response", "{r}");
    // The four are read; the bomb is refused (past the budget), not retried.
    assert_eq!(r["body"]["messages"], 4, "{r}");
    assert_eq!(r["body"]["rejected_records"], 1, "{r}");
    assert_eq!(r["body"]["batchItemFailures"], json!([]));
    let peak_mb = result["peak_rss_kb"].as_u64().unwrap() / 1024;
    let memory = template_memory_mb();
    eprintln!(
        "largest event: {} KB of base64, peak RSS {peak_mb} MB, function memory {memory} MB",
        compressed_total / 1024
    );
    assert!(
        peak_mb < memory,
        "peak RSS {peak_mb} MB, function memory {memory} MB"
    );
}
