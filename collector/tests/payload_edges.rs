//! The handler's per-payload reading and the one-pass reader at their
//! edges: a record the event's budget ran out for, escaped slashes in
//! base64, counts without an event time, records without a sequence
//! number, what serde_json refuses, string ends at word boundaries, the
//! event size limit.

mod common;

use common::*;
use serde_json::{Value, json};
use thawtrace::export::Origin;
use thawtrace::input::Limits;
use thawtrace::input::awslogs::parse_message;
use thawtrace::lambda::{Handler, Processed};
use thawtrace::lookback::{Lookback, LookbackLimits};
use thawtrace_analyzers::Config;

fn handler(limits: Limits) -> Handler {
    Handler::new(
        limits,
        Config::default(),
        Origin::default(),
        Lookback::new(LookbackLimits::default(), true, None),
    )
}

/// The lines the handler prints for `event`: those `process` writes, and
/// the collector's own EMF line (printed once the export is settled; no
/// exporter here).
fn process(h: &Handler, event: &Value) -> (Processed, Vec<Value>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = Vec::new();
    let p = rt
        .block_on(h.process(event.to_string().as_bytes(), &mut out))
        .unwrap();
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .chain(
            p.collector_line(0)
                .map(|l| serde_json::from_str(&l).unwrap()),
        )
        .collect();
    (p, lines)
}

/// A subscription message of `n` events on stream `stream`, about
/// `n * 200` bytes of text, hard to compress (distinct messages).
fn message(stream: &str, n: usize, t0: i64) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("{stream}{i:08}"), "timestamp": t0 + i as i64,
                   "message": format!("{:x} {}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15), "x".repeat(160))})
        })
        .collect();
    json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/lambda/f",
           "logStream": stream, "subscriptionFilters": ["t"], "logEvents": events})
}

fn record(m: &Value, seq: &str) -> Value {
    json!({"kinesis": {"data": b64(&gzip(m.to_string().as_bytes())), "partitionKey": "k",
                       "sequenceNumber": seq, "approximateArrivalTimestamp": 1795853233.137}})
}

/// One budget for the event, records decoded one at a time: a record the
/// records before it left no budget for is not undecodable. A retry from
/// it (Kinesis retries from the earliest record named) gives it a fresh
/// budget; rejecting it loses it for good.
#[test]
fn a_record_past_the_budget_its_neighbours_used_is_retried_not_rejected() {
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    // Each about 0.7 MiB of text: one fits the budget, two do not.
    let (a, b) = (message("a", 3_500, 1_000), message("b", 3_500, 2_000));
    assert!(a.to_string().len() < 1 << 20 && a.to_string().len() > 600 << 10);
    // Alone, each is read.
    for m in [&a, &b] {
        let h = handler(limits);
        let (p, _) = process(&h, &json!({"Records": [record(m, "1")]}));
        assert_eq!(p.response["rejected_records"], 0, "{}", p.response);
    }
    // A bomb (more than the whole budget, as its trailer says) after
    // them is refused, not retried: alone it would not fit either.
    let bomb =
        json!({"kinesis": {"data": b64(&gzip(&vec![b' '; 2 << 20])), "sequenceNumber": "12"}});
    let h = handler(limits);
    let (p, _) = process(
        &h,
        &json!({"Records": [record(&a, "10"), record(&b, "11"), bomb]}),
    );
    assert_eq!(p.response["messages"], 1, "{}", p.response);
    assert_eq!(
        (p.response["rejected_records"].as_u64(), p.retry.clone()),
        (Some(1), vec!["11".to_owned()]),
        "record 11 dropped as undecodable, or the bomb retried: {}",
        p.response
    );
}

/// A JSON encoder may write base64's `/` as `\/`.
#[test]
fn escaped_slashes_in_the_data_are_read() {
    let m = message("s", 50, 1_000);
    // Find a payload whose base64 holds a '/'.
    let data = b64(&gzip(m.to_string().as_bytes()));
    assert!(data.contains('/'));
    let escaped = data.replace('/', "\\/");
    for event in [
        format!(r#"{{"awslogs":{{"data":"{escaped}"}}}}"#),
        format!(r#"{{"Records":[{{"kinesis":{{"data":"{escaped}","sequenceNumber":"1"}}}}]}}"#),
    ] {
        let h = handler(Limits::default());
        let (p, _) = process(&h, &serde_json::from_str(&event).unwrap());
        assert_eq!(p.response["messages"], 1, "{}", p.response);
        assert_eq!(p.response["events"], 50, "{}", p.response);
    }
}

/// A Kinesis record without a sequence number, whose spans the endpoint
/// does not take: a partial batch response cannot name it, and failing
/// the invocation would print the batch's metrics again on the retry. The
/// invocation succeeds; the spans are counted as lost (no dead-letter
/// queue here) and named on stderr, never answered as if exported.
#[test]
fn unexported_spans_of_a_record_without_sequence_number_are_counted_as_lost() {
    let fixture = &fixtures()[0];
    let messages = subscription_messages(&events(fixture), 100_000);
    let records: Vec<Value> = messages
        .iter()
        .map(|m| json!({"kinesis": {"data": b64(&gzip(m.to_string().as_bytes())), "partitionKey": "k"}}))
        .collect();
    let tmp = tmp_dir("review-noseq");
    let path = tmp.path().join("kinesis.json");
    std::fs::write(&path, json!({"Records": records}).to_string()).unwrap();
    let result = invoke_handler(
        &[path],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
    );
    let r = &result["responses"][0];
    assert_eq!(r["kind"], "response", "{r}");
    assert_eq!(r["body"]["spans"], 0, "{r}");
    let lost = r["body"]["spans_lost"].as_u64().unwrap();
    assert!(lost > 0, "{r}");
    let lines: Vec<Value> = result["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l.as_str()?).ok())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["thawtrace"] == "export_failed" && l["spans_lost"] == lost),
        "{}",
        result["output"]
    );
    assert_eq!(
        lines
            .iter()
            .filter_map(|l| l.get("ExportFailures"))
            .collect::<Vec<_>>(),
        [&json!(1)]
    );
}

/// A record named for a retry says why on stderr, as a rejected one does:
/// the response alone does not say which lookback, or which budget, it
/// was.
#[test]
fn a_record_named_for_a_retry_is_named_on_stderr_with_the_reason() {
    let (a, b) = (message("a", 3_500, 1_000), message("b", 3_500, 2_000));
    let tmp = tmp_dir("review-retried");
    let path = tmp.path().join("kinesis.json");
    std::fs::write(
        &path,
        json!({"Records": [record(&a, "10"), record(&b, "11")]}).to_string(),
    )
    .unwrap();
    let result = invoke_handler(&[path], &[("THAWTRACE_MAX_DECOMPRESSED_MB", "1")]);
    let r = &result["responses"][0];
    assert_eq!(r["kind"], "response", "{r}");
    assert_eq!(
        r["body"]["batchItemFailures"],
        json!([{"itemIdentifier": "11"}])
    );
    let retried: Vec<Value> = result["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l.as_str()?).ok())
        .filter(|l| l["thawtrace"] == "payload_retried")
        .collect();
    assert_eq!(retried.len(), 1, "{}", result["output"]);
    assert!(
        retried[0]["place"].as_str().unwrap().contains("11")
            && retried[0]["error"].as_str().unwrap().contains("limit"),
        "{}",
        retried[0]
    );
}

/// RejectedRecords is documented as the EMF count of the payloads
/// skipped. A subscription event carries no time of its own: the count of
/// one whose data cannot be read is in no EMF line at all, neither now
/// nor with the next event that has an event time.
#[test]
fn a_rejected_awslogs_payload_is_counted_in_an_emf_line() {
    let h = handler(Limits::default());
    let (p, lines) = process(&h, &json!({"awslogs": {"data": "bm90IGd6aXA="}}));
    assert_eq!(p.response["rejected_records"], 1);
    let mut emf: Vec<Value> = lines
        .into_iter()
        .filter(|l| l.get("RejectedRecords").is_some())
        .collect();
    let good = json!({"awslogs": {"data": b64(&gzip(message("s", 3, 1_795_853_230_000).to_string().as_bytes()))}});
    let (_, lines) = process(&h, &good);
    emf.extend(
        lines
            .into_iter()
            .filter(|l| l.get("RejectedRecords").is_some()),
    );
    let total: u64 = emf
        .iter()
        .map(|l| l["RejectedRecords"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1, "RejectedRecords lines: {emf:?}");
    for l in &emf {
        assert_eq!(
            l["_aws"]["Timestamp"], 1_795_853_230_002i64,
            "an event time"
        );
    }
}

/// What the fast reader accepts, serde_json reads the same way; what
/// serde_json refuses, the tolerant path names. Each text here is one
/// serde_json refuses: parse_message must refuse it too.
#[test]
fn the_fast_reader_refuses_what_serde_json_refuses() {
    let head = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["t"],"logEvents":["#;
    let cases = [
        // Leading zeros: serde_json refuses `01`.
        (
            r#"{"id":"1","timestamp":01,"message":"x"}"#,
            "leading zero, compact",
        ),
        (
            r#"{"id":"1","timestamp":-01,"message":"x"}"#,
            "negative leading zero, compact",
        ),
        (r#"{"id":"1","timestamp":00,"message":"x"}"#, "00, compact"),
        (
            r#"{"timestamp":01,"id":"1","message":"x"}"#,
            "leading zero, key by key",
        ),
        (
            r#"{"id":"1", "timestamp":0123,"message":"x"}"#,
            "leading zero, key by key (space)",
        ),
        // A raw control character in a string.
        (
            "{\"id\":\"1\",\"timestamp\":1,\"message\":\"a\tb\"}",
            "raw tab in the message",
        ),
        (
            "{\"id\":\"1\",\"timestamp\":1,\"message\":\"0123456789abcdef\n\"}",
            "raw newline at byte 16",
        ),
        (
            "{\"id\":\"1\u{1}\",\"timestamp\":1,\"message\":\"x\"}",
            "raw control in the id",
        ),
        // Escapes JSON does not have.
        (r#"{"id":"1","timestamp":1,"message":"a\x"}"#, "\\x"),
        (r#"{"id":"1","timestamp":1,"message":"a\u12"}"#, "short \\u"),
        (
            r#"{"id":"1","timestamp":1,"message":"a\u00G0"}"#,
            "\\u not hex",
        ),
        (
            r#"{"id":"1","timestamp":1,"message":"0123456789abcde\q"}"#,
            "\\q across 16 bytes",
        ),
    ];
    let limits = Limits::default();
    let mut wrong = Vec::new();
    for (event, what) in cases {
        let text = format!("{head}{event}]}}");
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "{what}: serde_json reads it"
        );
        if let Ok(m) = parse_message(&text, &limits) {
            wrong.push(format!(
                "{what}: read as {:?}",
                m.map(|m| m.events.iter().map(|e| e.timestamp_ms).collect::<Vec<_>>())
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Timestamps at the compact path's edges: 18 digits (read in place), 19
/// (left to the key-by-key reading), i64's bounds, `-0`.
#[test]
fn compact_timestamps_at_the_edges_read_as_serde_json_reads_them() {
    let head = r#"{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":["#;
    for ts in [
        "0",
        "999999999999999999",
        "-999999999999999999",
        "1000000000000000000",
        "9223372036854775807",
        "-9223372036854775808",
    ] {
        let text = format!(r#"{head}{{"id":"1","timestamp":{ts},"message":"x"}}]}}"#);
        let want: i64 = serde_json::from_str::<Value>(&text).unwrap()["logEvents"][0]["timestamp"]
            .as_i64()
            .unwrap_or_else(|| panic!("{ts}"));
        let m = parse_message(&text, &Limits::default()).unwrap().unwrap();
        assert_eq!(m.events[0].timestamp_ms, want, "{ts}");
    }
    // `-0` is a float to serde_json (-0.0), not an i64: refused.
    for ts in [
        "9223372036854775808",
        "-9223372036854775809",
        "1.0",
        "1e3",
        "-",
        "-0",
        "01",
        "-01",
    ] {
        let text = format!(r#"{head}{{"id":"1","timestamp":{ts},"message":"x"}}]}}"#);
        assert!(parse_message(&text, &Limits::default()).is_err(), "{ts}");
    }
}

/// Messages whose closing quote or escapes fall at the 8- and 16-byte
/// steps of the string scan, backslash runs across them: read as
/// serde_json reads them.
#[test]
fn string_ends_at_word_boundaries_read_as_serde_json_reads_them() {
    let limits = Limits::default();
    let alphabet = ["a", "\\\\", "\\\"", "é", "\\u00e9", "\\n"];
    let mut checked = 0;
    for pad in 0..20 {
        for len in 0..6 {
            let mut idx = vec![0usize; len];
            loop {
                let body: String =
                    "p".repeat(pad) + &idx.iter().map(|&i| alphabet[i]).collect::<String>();
                for id in ["1", "12345678"] {
                    let text = format!(
                        r#"{{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[{{"id":"{id}","timestamp":7,"message":"{body}"}},{{"id":"2","timestamp":8,"message":"{body}"}}]}}"#
                    );
                    let v: Value = serde_json::from_str(&text).unwrap();
                    let m = parse_message(&text, &limits).unwrap().unwrap();
                    assert_eq!(m.events.len(), 2, "{text}");
                    for e in &m.events {
                        let unescaped = e.text.unescape();
                        assert_eq!(
                            unescaped,
                            v["logEvents"][0]["message"].as_str().unwrap(),
                            "{text}"
                        );
                    }
                    checked += 1;
                }
                // next index
                let mut k = 0;
                while k < len {
                    idx[k] += 1;
                    if idx[k] < alphabet.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == len {
                    break;
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

/// A Kinesis record's metadata of another type than Lambda gives it (a
/// numeric sequence number, an arrival time as text) is not a reason to
/// refuse the event, nor, for `scan`, the file: the CLI never reads them,
/// and read such files before the handler's fields were added.
#[test]
fn kinesis_metadata_of_another_type_does_not_refuse_the_event() {
    let m = message("s", 3, 1_795_853_230_000);
    let good = b64(&gzip(m.to_string().as_bytes()));
    for other in [
        json!({"kinesis": {"data": good, "sequenceNumber": 2}}),
        json!({"kinesis": {"data": good, "sequenceNumber": "2", "approximateArrivalTimestamp": "2026-11-28T08:07:13Z"}}),
    ] {
        let event = json!({"Records": [record(&m, "1"), other]});
        let h = handler(Limits::default());
        let (p, _) = process(&h, &event);
        assert_eq!(p.response["messages"], 2, "{}", p.response);
        let tmp = tmp_dir("review-metadata");
        let path = tmp.path().join("kinesis.json");
        std::fs::write(&path, event.to_string()).unwrap();
        let out = thawtrace(&["scan", "--format", "json", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Not fixed here: a redelivered event (a Kinesis retry after the
/// exporter was down, or an awslogs event delivered again after the
/// invocation failed) gives the per-stream findings again, and so their
/// spans, but not the cross-stream incidents it completed the first time:
/// `Neighbours` marked them reported then. Their spans, lost with the
/// failed export, are never exported. Run with `--ignored`.
#[test]

fn a_redelivered_event_gives_its_cross_stream_incidents_again() {
    let rid = "aaaaaaaa-0000-4000-8000-000000000001";
    let start = |stream: &str, t: i64| {
        json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/lambda/f", "logStream": stream,
               "subscriptionFilters": ["t"], "logEvents": [
                   {"id": format!("{stream}1"), "timestamp": t, "message": format!("START RequestId: {rid} Version: $LATEST")},
                   {"id": format!("{stream}2"), "timestamp": t + 5, "message": format!("END RequestId: {rid}")}]})
    };
    let event = json!({"Records": [
        record(&start("s1", 1_795_853_230_000), "1"),
        record(&start("s2", 1_795_853_290_000), "2"),
    ]});
    let h = handler(Limits::default());
    let (first, _) = process(&h, &event);
    assert_eq!(first.collected.incidents.len(), 1, "{}", first.response);
    // The exporter was down: Kinesis delivers the records again.
    let (again, _) = process(&h, &event);
    assert_eq!(
        again.collected.incidents.len(),
        1,
        "the duplicate invocation's span is never exported: {}",
        again.response
    );
}

/// One rule for an event's size, in the scan and the handler, whatever
/// the message's layout: its message as the JSON holds it, quotes
/// included. Events at the limit are read; one byte over, refused (the
/// scan names it).
#[test]
fn the_scan_and_the_handler_refuse_the_same_events_at_the_size_limit() {
    let limits = Limits {
        max_event_bytes: 1 << 10,
        ..Limits::default()
    };
    // Escaped content of 1022, 1023 and 1024 bytes: `\"` counts as two.
    let event = |id: &str, len: usize| {
        let text = format!("\"{}", "a".repeat(len - 2));
        json!({"id": id, "timestamp": 1_000, "message": text})
    };
    let events = [event("fits", 1022), event("over", 1023), event("far", 1024)];
    let compact = json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/lambda/f",
                         "logStream": "s", "subscriptionFilters": ["t"], "logEvents": events});
    // The same message pretty-printed: the tolerant readers take it.
    for text in [
        compact.to_string(),
        serde_json::to_string_pretty(&compact).unwrap(),
    ] {
        let handled = parse_message(&text, &limits).unwrap().unwrap();
        let read: Vec<&str> = handled.events.iter().map(|e| &*e.id).collect();
        assert_eq!((read, handled.refused), (vec!["fits"], 2));

        let mut batch = thawtrace_analyzers::Batch::default();
        let stats = thawtrace::input::read_text("m.json", &text, &limits, &mut batch).unwrap();
        assert_eq!(
            (stats.events, stats.malformed),
            (1, 2),
            "{:?}",
            stats.problems
        );
        assert!(
            stats.problems[0].contains("over the 1 KiB event limit"),
            "{:?}",
            stats.problems
        );
    }
}
