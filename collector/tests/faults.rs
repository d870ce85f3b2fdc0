//! The Lambda collector when what it calls is unwell: CloudWatch Logs (moto)
//! and the OTLP endpoint (a real OTLP/gRPC receiver) behind the TCP fault
//! proxy (tests/harness/fault_proxy.py --tcp), refusing, stalling,
//! resetting or delaying every connection, the binary driven by the
//! Runtime API emulator with a deadline per invocation.
//!
//! Every invocation answers before its deadline; the EMF counts and the
//! finding lines are those of a healthy run of the same events, printed
//! once (no invocation fails, so Lambda retries none); every span the
//! endpoint did not take is in the dead-letter queue (SQS in moto), and
//! `thawtrace replay-spans` delivers it.
//!
//! Needs moto: `bash tests/setup.sh`, THAWTRACE_PYTHON=tests/.deps/venv/bin/python.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::moto::{moto, moto_client};
use common::proxy::FaultProxy;
use common::receiver::{self, Received, hex};
use common::*;
use serde_json::{Value, json};

/// The deadline each invocation is given (`Lambda-Runtime-Deadline-Ms`),
/// under the default budget (5 s): the budget is this less the margin.
const DEADLINE_MS: u64 = 3_000;

/// The faults of each dependency; `delay` stays inside the budget.
const FAULTS: [&str; 4] = ["refuse", "stall", "reset", "delay 300"];

/// The collector's region under the Runtime API emulator (moto keeps each
/// region's resources apart).
const REGION: &str = "eu-west-1";

fn cw_client(port: u16) -> aws_sdk_cloudwatchlogs::Client {
    moto_client!(aws_sdk_cloudwatchlogs, port, REGION)
}

fn sqs_client(port: u16) -> aws_sdk_sqs::Client {
    moto_client!(aws_sdk_sqs, port, REGION)
}

/// The recording as awslogs events, `per_batch` log events each.
fn event_files(dir: &Path, events: &[Value], per_batch: usize) -> Vec<PathBuf> {
    subscription_messages(events, per_batch)
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let path = dir.join(format!("{i:03}-awslogs.json"));
            let data = b64(&gzip(m.to_string().as_bytes()));
            std::fs::write(&path, json!({"awslogs": {"data": data}}).to_string()).unwrap();
            path
        })
        .collect()
}

fn output(result: &Value) -> Vec<Value> {
    result["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str(l.as_str()?).ok())
        .collect()
}

/// Each finding-kind metric of the EMF lines, summed per function.
fn emf_counts(result: &Value) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in output(result) {
        let Some(function) = line.get("FunctionName").and_then(Value::as_str) else {
            continue;
        };
        for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            let name = m["Name"].as_str().unwrap();
            if let Some(n) = line[name].as_u64() {
                *counts.entry(format!("{function} {name}")).or_default() += n;
            }
        }
    }
    counts
}

/// A metric of the collector's own line, summed over the run.
fn collector_count(result: &Value, metric: &str) -> u64 {
    output(result)
        .iter()
        .filter(|l| l.get("FunctionName").is_none())
        .filter_map(|l| l.get(metric)?.as_u64())
        .sum()
}

/// The output lines holding `what`, for a failure's message.
fn result_lines(result: &Value, what: &str) -> String {
    result["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|l| l.contains(what))
        .take(5)
        .collect::<Vec<_>>()
        .join("\n")
}

fn findings(result: &Value) -> Vec<Value> {
    output(result)
        .into_iter()
        .filter(|v| v.get("kind").is_some())
        .collect()
}

/// Every invocation answered (none failed: Lambda retries none), before
/// the deadline it was given.
fn assert_answered_within_the_deadline(result: &Value, what: &str) {
    assert_answered_within(result, what, DEADLINE_MS);
}

fn assert_answered_within(result: &Value, what: &str, deadline_ms: u64) {
    let responses = result["responses"].as_array().unwrap();
    assert!(!responses.is_empty());
    for r in responses {
        assert_eq!(r["kind"], "response", "{what}: {r}");
        let elapsed = r["elapsed_ms"].as_f64().unwrap();
        assert!(
            elapsed < deadline_ms as f64,
            "{what}: answered after {elapsed:.0} ms, deadline {deadline_ms} ms: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_logs_unwell_costs_no_time_past_the_budget_and_no_finding() {
    let (_moto, port) = moto();
    let cw = cw_client(port);
    let fixture = &fixtures()[0];
    let evs = events(fixture);
    for (group, stream) in streams_of(&evs) {
        let _ = cw.create_log_group().log_group_name(&group).send().await;
        cw.create_log_stream()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .send()
            .await
            .unwrap();
    }
    let tmp = tmp_dir("faults-lookback");
    let files = event_files(tmp.path(), &evs, 200);
    let run = |endpoint: String| {
        let files = files.clone();
        tokio::task::spawn_blocking(move || {
            invoke_handler_within(
                &files,
                &[
                    ("THAWTRACE_LOOKBACK", "on"),
                    ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", endpoint.as_str()),
                ],
                DEADLINE_MS,
            )
        })
    };

    let healthy = run(format!("http://127.0.0.1:{port}")).await.unwrap();
    assert_answered_within_the_deadline(&healthy, "healthy");
    assert_eq!(
        collector_count(&healthy, "LookbackFailures"),
        0,
        "{}",
        result_lines(&healthy, "lookback_failed")
    );
    let want = keys(&scan_json(&[&fixture.join("events.jsonl")]));
    assert_eq!(keys(&findings(&healthy)), want);
    assert!(emf_counts(&healthy).values().sum::<u64>() > 0);

    for fault in FAULTS {
        let proxy = FaultProxy::start(port, fault, tmp.path());
        let result = run(proxy.url()).await.unwrap();
        assert_answered_within_the_deadline(&result, fault);
        assert_eq!(emf_counts(&result), emf_counts(&healthy), "{fault}");
        assert_eq!(keys(&findings(&result)), want, "{fault}");
        let failures = collector_count(&result, "LookbackFailures");
        if fault.starts_with("delay") {
            assert_eq!(failures, 0, "{fault}: slow, not down");
            assert!(proxy.connections()["delay"].as_u64().unwrap() > 0);
        } else {
            assert!(failures > 0, "{fault}: {}", result["output"]);
            // Named on stderr with what failed.
            let text = result["output"].to_string();
            assert!(
                text.contains("lookback_failed") && text.contains("LookbackUnavailable"),
                "{fault}"
            );
            // After the first failure the breaker skips CloudWatch Logs:
            // the attempts of one call (the SDK's 8 at most), not one per
            // invocation (refused connections are never accepted).
            if fault != "refuse" {
                let n = proxy.connections()[fault].as_u64().unwrap();
                assert!(n <= 8 && n < files.len() as u64, "{fault}: {n} connections");
            }
        }
    }
}

/// Reads every message of the queue (deleting it) and returns the IDs of
/// the spans they hold.
async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..1_000 {
        let page = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if page.messages().is_empty() {
            break;
        }
        for m in page.messages() {
            let spans = thawtrace::export::dead_letter::decode(m.body().unwrap()).unwrap();
            ids.extend(
                spans
                    .iter()
                    .map(|s| format!("{}/{}", s.span_context.trace_id(), s.span_context.span_id())),
            );
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    ids
}

fn span_ids(received: &Received) -> Vec<String> {
    received
        .spans()
        .iter()
        .map(|s| format!("{}/{}", hex(&s.trace_id), hex(&s.span_id)))
        .collect()
}

fn set(ids: &[String]) -> BTreeSet<String> {
    ids.iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_the_endpoint_does_not_take_reach_the_dead_letter_queue_and_replay() {
    let (_moto, port) = moto();
    let sqs = sqs_client(port);
    let fixture = &fixtures()[0];
    let evs = events(fixture);
    let tmp = tmp_dir("faults-otlp");
    let files = event_files(tmp.path(), &evs, 200);
    let moto_url = format!("http://127.0.0.1:{port}");
    let run = |otlp: String, queue: Option<String>| {
        let files = files.clone();
        let moto_url = moto_url.clone();
        tokio::task::spawn_blocking(move || {
            let mut env = vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("AWS_ENDPOINT_URL_SQS", moto_url.as_str()),
            ];
            if let Some(q) = &queue {
                env.push(("THAWTRACE_DEAD_LETTER_QUEUE_URL", q.as_str()));
            }
            invoke_handler_within(&files, &env, DEADLINE_MS)
        })
    };

    let received = Received::default();
    let addr = receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
    let healthy = run(format!("http://{addr}"), None).await.unwrap();
    assert_answered_within_the_deadline(&healthy, "healthy");
    let all = set(&span_ids(&received));
    assert!(!all.is_empty());
    assert_eq!(collector_count(&healthy, "ExportFailures"), 0);

    for fault in FAULTS {
        let name = format!("thawtrace-dlq-{}", fault.replace(' ', "-"));
        let queue_url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let received = Received::default();
        let addr = receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
        let proxy = FaultProxy::start(addr.port(), fault, tmp.path());
        let result = run(proxy.url(), Some(queue_url.clone())).await.unwrap();
        assert_answered_within_the_deadline(&result, fault);
        // Metrics and findings once, as in the healthy run.
        assert_eq!(emf_counts(&result), emf_counts(&healthy), "{fault}");
        assert_eq!(
            keys(&findings(&result)),
            keys(&findings(&healthy)),
            "{fault}"
        );
        let delivered = set(&span_ids(&received));
        let failures = collector_count(&result, "ExportFailures");
        if fault.starts_with("delay") {
            assert_eq!(failures, 0, "{fault}: slow, not down");
            assert_eq!(delivered, all, "{fault}");
            assert!(drain(&sqs, &queue_url).await.is_empty());
            continue;
        }
        assert!(failures > 0, "{fault}");
        let text = result["output"].to_string();
        assert!(
            text.contains("export_failed") && text.contains("ExportFailed"),
            "{fault}"
        );
        let dead_lettered: u64 = result["responses"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["body"]["dead_lettered_spans"].as_u64())
            .sum();
        assert!(
            dead_lettered > 0,
            "{fault}: {}",
            result_lines(&result, "export_failed")
        );
        let lost: u64 = result["responses"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["body"]["spans_lost"].as_u64())
            .sum();
        assert_eq!(lost, 0, "{fault}");
        if fault == "stall" {
            // Replayed by the CLI to a healthy endpoint: every span, and
            // again (nothing left) after.
            let replayed = Received::default();
            let at = receiver::start("127.0.0.1:0".parse().unwrap(), replayed.clone()).await;
            let replay = |endpoint: String| {
                let (q, m) = (queue_url.clone(), moto_url.clone());
                tokio::task::spawn_blocking(move || {
                    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thawtrace"));
                    aws_env(&mut cmd, &m);
                    cmd.env("AWS_REGION", REGION);
                    cmd.args([
                        "replay-spans",
                        "--queue-url",
                        &q,
                        "--otlp-endpoint",
                        &endpoint,
                    ])
                    .output()
                    .unwrap()
                })
            };
            let out = replay(format!("http://{at}")).await.unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let back = span_ids(&replayed);
            assert_eq!(back.len(), set(&back).len(), "each span once in the queue");
            let mut union = delivered.clone();
            union.extend(back.iter().cloned());
            assert_eq!(union, all, "{fault}: delivered and dead-lettered");
            assert!(set(&back).is_disjoint(&delivered) || delivered.is_empty());
            let again = replay(format!("http://{at}")).await.unwrap();
            assert!(again.status.success());
            assert_eq!(span_ids(&replayed).len(), back.len(), "the queue is empty");
        } else {
            let dead = drain(&sqs, &queue_url).await;
            assert_eq!(dead.len() as u64, dead_lettered, "{fault}");
            let mut union = delivered.clone();
            union.extend(dead.iter().cloned());
            assert_eq!(union, all, "{fault}: delivered and dead-lettered");
        }
    }
}

#[test]
fn without_a_dead_letter_queue_the_lost_spans_are_counted_and_the_invocation_succeeds() {
    let tmp = tmp_dir("faults-no-dlq");
    let fixture = &fixtures()[0];
    let files = event_files(tmp.path(), &events(fixture), 400);
    // Nothing listens on port 9.
    let result = invoke_handler_within(
        &files,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
        DEADLINE_MS,
    );
    assert_answered_within_the_deadline(&result, "no queue");
    let lost: u64 = result["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["body"]["spans_lost"].as_u64())
        .sum();
    assert!(lost > 0);
    let failed: Vec<Value> = output(&result)
        .into_iter()
        .filter(|l| l["thawtrace"] == "export_failed")
        .collect();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|l| {
        l["error_type"] == "ExportFailed"
            && l["hint"]
                .as_str()
                .unwrap()
                .contains("THAWTRACE_DEAD_LETTER_QUEUE_URL")
    }));
    assert_eq!(
        failed
            .iter()
            .map(|l| l["spans_lost"].as_u64().unwrap())
            .sum::<u64>(),
        lost
    );
    assert_eq!(
        collector_count(&result, "ExportFailures"),
        failed.len() as u64
    );
}

/// The deadline of the state table's invocations: moto answers one
/// request at a time there, and a batch makes tens of calls.
const STATE_DEADLINE_MS: u64 = 6_000;

/// The state table behind a proxy that stalls: an awslogs event fails
/// with `StateUnavailable` before any line is printed, within its
/// deadline, and the next one is skipped by the breaker at once; Lambda's
/// retry of both, once the table answers, counts their findings once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_table_down_fails_the_event_before_any_line_and_its_retry_counts_once() {
    let (_moto, port) = common::moto::moto_atomic();
    let db = common::moto::dynamodb_client(port);
    for table in ["thawtrace-healthy", "thawtrace-faulty"] {
        common::moto::create_state_table(&db, table).await;
    }
    let tmp = tmp_dir("faults-state");
    let fixture = &fixtures()[0];
    // One event per stream.
    let files = event_files(tmp.path(), &events(fixture), 100_000);
    assert!(files.len() >= 2);
    let run = |files: Vec<PathBuf>, table: &'static str, endpoint: String| {
        tokio::task::spawn_blocking(move || {
            invoke_handler_within(
                &files,
                &[
                    ("THAWTRACE_STATE_TABLE", table),
                    ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
                    // The region the table was made in.
                    ("AWS_REGION", "us-east-1"),
                ],
                STATE_DEADLINE_MS,
            )
        })
    };
    let moto_url = format!("http://127.0.0.1:{port}");
    let healthy = run(files.clone(), "thawtrace-healthy", moto_url)
        .await
        .unwrap();
    assert_answered_within(&healthy, "healthy", STATE_DEADLINE_MS);
    assert!(emf_counts(&healthy).values().sum::<u64>() > 0);

    let proxy = FaultProxy::start(port, "stall", tmp.path());
    let failed = run(files[..2].to_vec(), "thawtrace-faulty", proxy.url())
        .await
        .unwrap();
    for (i, r) in failed["responses"].as_array().unwrap().iter().enumerate() {
        assert_eq!(r["kind"], "error", "{r}");
        assert_eq!(r["body"]["errorType"], "StateUnavailable", "{r}");
        let message = r["body"]["errorMessage"].as_str().unwrap();
        assert!(message.contains("THAWTRACE_STATE_TABLE"), "{message}");
        if i == 1 {
            assert!(message.contains("skipped"), "the breaker: {message}");
        }
        assert!(
            r["elapsed_ms"].as_f64().unwrap() < STATE_DEADLINE_MS as f64,
            "{r}"
        );
    }
    assert!(
        output(&failed).is_empty(),
        "nothing printed for a failed event: {}",
        failed["output"]
    );

    // The table answers again; Lambda delivers the two events again, and
    // the others.
    proxy.set_mode("pass");
    let retried = run(files.clone(), "thawtrace-faulty", proxy.url())
        .await
        .unwrap();
    assert_answered_within(&retried, "retried", STATE_DEADLINE_MS);
    assert_eq!(emf_counts(&retried), emf_counts(&healthy));
    assert_eq!(keys(&findings(&retried)), keys(&findings(&healthy)));
}
