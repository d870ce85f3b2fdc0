//! Payloads that look like production, for the benchmarks: one stream of
//! invocations, each a START, its lines and an END, as CloudWatch Logs
//! subscription events (`{"awslogs":{"data":…}}`).
//!
//! Mixes (out of 20 lines of an invocation; the rest application INFO
//! lines of ~250 bytes):
//! - `node-app-heavy`: 3 grpc-js traces (Node's runtime labels them ERROR);
//! - `node-trace-heavy`: 11 traces;
//! - `python-app-heavy`: Python runtime lines, 3 warnings and errors;
//! - `python-error-heavy`: 7 warnings and errors (failed calls among them).
#![allow(dead_code)] // each bench uses part of it

use std::io::Write;

use base64::Engine;

/// A mix of lines.
#[derive(Clone, Copy, Debug)]
pub enum Mix {
    NodeApps,
    NodeTraces,
    PythonApps,
    PythonErrors,
}

impl Mix {
    pub const ALL: [Mix; 4] = [
        Mix::NodeApps,
        Mix::NodeTraces,
        Mix::PythonApps,
        Mix::PythonErrors,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mix::NodeApps => "node-app-heavy",
            Mix::NodeTraces => "node-trace-heavy",
            Mix::PythonApps => "python-app-heavy",
            Mix::PythonErrors => "python-error-heavy",
        }
    }

    /// Out of 20 lines of an invocation: how many are traces (or, for
    /// Python, warnings and errors); one is START and one END.
    fn special_per_20(self) -> usize {
        match self {
            Mix::NodeApps | Mix::PythonApps => 3,
            Mix::NodeTraces => 11,
            Mix::PythonErrors => 7,
        }
    }

    fn python(self) -> bool {
        matches!(self, Mix::PythonApps | Mix::PythonErrors)
    }
}

const TRACES: [&str; 6] = [
    "D 2026-11-28T08:07:10.293Z | v1.14.7 2257 | keepalive | (2) 10.0.12.7:443 Sending ping with timeout 1000ms",
    "D 2026-11-28T08:07:10.371Z | v1.14.7 2257 | keepalive | (2) 10.0.12.7:443 Received ping response",
    "D 2026-11-28T08:07:10.371Z | v1.14.7 2257 | keepalive | (2) 10.0.12.7:443 Starting keepalive timer for 5000ms",
    "D 2026-11-28T08:07:05.247Z | v1.14.7 2257 | resolving_load_balancer | dns:orders.internal:443 IDLE -> CONNECTING",
    "D 2026-11-28T08:07:05.250Z | v1.14.7 2257 | transport | dns:orders.internal:443 10.0.12.7:443 Established TCP connection",
    "D 2026-11-28T08:07:05.260Z | v1.14.7 2257 | subchannel | (1) 10.0.12.7:443 CONNECTING -> READY",
];

const PY_TROUBLE: [&str; 4] = [
    "[WARNING]\t2026-11-28T08:07:10.293Z\t{rid}\tinventory lookup slow: 812 ms for sku SKU-00042 (budget 500 ms)",
    "[ERROR]\t2026-11-28T08:07:10.293Z\t{rid}\tpayment call failed: StatusCode.UNAVAILABLE failed to connect to all addresses; retrying",
    "[WARNING]\t2026-11-28T08:07:10.293Z\t{rid}\tcache miss for customer c-001234, loading from \"orders\" table",
    "[ERROR]\t2026-11-28T08:07:10.293Z\t{rid}\tvalidation failed for order ord-00001234: \"total\" must be positive",
];

fn app_line(mix: Mix, i: usize, rid: &str) -> String {
    let body = format!(
        "order {i} accepted: {{\"orderId\":\"ord-{i:08}\",\"customer\":\"c-{:06}\",\"items\":[{{\"sku\":\"SKU-{:05}\",\"qty\":{}}}],\"total\":{}.{:02},\"currency\":\"EUR\",\"note\":\"back door\"}}",
        i * 7 % 999_999,
        i % 99_999,
        i % 9 + 1,
        i % 500,
        i % 100
    );
    if mix.python() {
        format!("[INFO]\t2026-11-28T08:07:10.293Z\t{rid}\t{body}")
    } else {
        format!("2026-11-28T08:07:10.293Z\t{rid}\tINFO\t{body}")
    }
}

/// A log event, its fields in the order CloudWatch Logs writes them.
#[derive(serde::Serialize)]
pub struct Event {
    id: String,
    timestamp: i64,
    message: String,
}

/// The log events `from..to` of the stream (event `i` at a fixed time plus
/// `i` ms: no clock is read).
pub fn events(mix: Mix, from: usize, to: usize) -> Vec<Event> {
    let rid = |i: usize| format!("{:08x}-c745-4468-b82a-0c884500fb30", i / 20);
    (from..to)
        .map(|i| {
            let rid = rid(i);
            let at = i % 20;
            let message = if at == 0 {
                format!("START RequestId: {rid} Version: $LATEST")
            } else if at == 19 {
                format!("END RequestId: {rid}")
            } else if at <= mix.special_per_20() {
                if mix.python() {
                    PY_TROUBLE[i % PY_TROUBLE.len()].replace("{rid}", &rid)
                } else {
                    format!(
                        "2026-11-28T08:07:10.293Z\t{rid}\tERROR\t{}",
                        TRACES[i % TRACES.len()]
                    )
                }
            } else {
                app_line(mix, i, &rid)
            };
            Event {
                id: format!("{i:056}"),
                timestamp: 1_795_853_230_000 + i as i64,
                message,
            }
        })
        .collect()
}

/// An awslogs event holding these log events of the stream.
pub fn awslogs_event(events: Vec<Event>) -> String {
    // The header in CloudWatch's order too (a struct keeps it; a JSON map
    // would sort it).
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Message {
        message_type: &'static str,
        owner: &'static str,
        log_group: &'static str,
        log_stream: &'static str,
        subscription_filters: [&'static str; 1],
        log_events: Vec<Event>,
    }
    let msg = Message {
        message_type: "DATA_MESSAGE",
        owner: "123456789012",
        log_group: "/aws/lambda/orders",
        log_stream: "2026/11/28/[$LATEST]b8b6d8fe442e3d437204e52db2221a58",
        subscription_filters: ["thawtrace"],
        log_events: events,
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(serde_json::to_string(&msg).unwrap().as_bytes())
        .unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    serde_json::json!({"awslogs": {"data": data}}).to_string()
}

/// One awslogs event of `n` log events.
pub fn payload(mix: Mix, n: usize) -> String {
    awslogs_event(events(mix, 0, n))
}

/// `n` log events of the stream as consecutive subscription batches of
/// about `batch_bytes` of JSON each (CloudWatch delivers up to 1 MB).
pub fn batches(mix: Mix, n: usize, batch_bytes: usize) -> Vec<String> {
    let all = events(mix, 0, n);
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for e in all {
        size += serde_json::to_string(&e).unwrap().len() + 1;
        current.push(e);
        if size >= batch_bytes {
            out.push(awslogs_event(std::mem::take(&mut current)));
            size = 0;
        }
    }
    if !current.is_empty() {
        out.push(awslogs_event(current));
    }
    out
}

/// The median of some timings.
pub fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
    v.sort();
    v[v.len() / 2]
}

/// The command line: the event count (default 100,000), and the mix named
/// after `--profile`, if any (that mix alone, for `perf record`).
pub fn args() -> (usize, Option<Mix>) {
    let events = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let profile = std::env::args()
        .skip_while(|a| a != "--profile")
        .nth(1)
        .map(|name| {
            Mix::ALL
                .into_iter()
                .find(|m| m.name() == name)
                .expect("a mix name")
        });
    (events, profile)
}
