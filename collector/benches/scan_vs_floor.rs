//! The CLI's scan, as `thawtrace scan FILE` runs it (unwrap the awslogs
//! event, read its events, correlate, findings), against a bare floor on
//! the same payload in the same run: base64, inflate (libdeflate, buffers
//! reused), serde_json with borrowed, still-escaped messages, and two
//! memmem scans of every message. The ratio scan/floor is the figure to
//! watch: absolute rates move with the machine, the ratio much less.
//!
//! `cargo bench -p thawtrace --bench scan_vs_floor` (add `-- 100000` for
//! the event count; default 100,000 per payload).
//!
//! Payloads look like production: one stream of invocations, each a START,
//! its lines and an END/REPORT, in these mixes:
//! - `node-app-heavy`: 80 % application INFO lines of ~250 bytes, 15 %
//!   grpc-js traces (Node's runtime labels them ERROR), 5 % platform lines;
//! - `node-trace-heavy`: 40 % application, 55 % traces, 5 % platform;
//! - `python-error-heavy`: Python runtime lines, 60 % INFO, 35 % WARN/ERROR
//!   application lines (failed calls among them), 5 % platform.

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use thawtrace::input::{Budget, Limits, read_text, unwrap_payloads};
use thawtrace_analyzers::{Batch, Config, Finding};

#[derive(Clone, Copy)]
enum Mix {
    NodeApps,
    NodeTraces,
    PythonErrors,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::NodeApps => "node-app-heavy",
            Mix::NodeTraces => "node-trace-heavy",
            Mix::PythonErrors => "python-error-heavy",
        }
    }

    /// Out of 20 lines of an invocation: how many are traces (or, for
    /// Python, warnings and errors); one is START and one END.
    fn special_per_20(self) -> usize {
        match self {
            Mix::NodeApps => 3,
            Mix::NodeTraces => 11,
            Mix::PythonErrors => 7,
        }
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
    match mix {
        Mix::PythonErrors => format!("[INFO]\t2026-11-28T08:07:10.293Z\t{rid}\t{body}"),
        _ => format!("2026-11-28T08:07:10.293Z\t{rid}\tINFO\t{body}"),
    }
}

/// An awslogs event (`{"awslogs":{"data":…}}`) of `events` log events.
fn payload(mix: Mix, events: usize) -> String {
    let mut out = Vec::with_capacity(events);
    let mut rid = String::new();
    for i in 0..events {
        let at = i % 20;
        let message = if at == 0 {
            rid = format!("{:08x}-c745-4468-b82a-0c884500fb30", i / 20);
            format!("START RequestId: {rid} Version: $LATEST")
        } else if at == 19 {
            format!("END RequestId: {rid}")
        } else if at <= mix.special_per_20() {
            match mix {
                Mix::PythonErrors => PY_TROUBLE[i % PY_TROUBLE.len()].replace("{rid}", &rid),
                _ => format!(
                    "2026-11-28T08:07:10.293Z\t{rid}\tERROR\t{}",
                    TRACES[i % TRACES.len()]
                ),
            }
        } else {
            app_line(mix, i, &rid)
        };
        out.push(serde_json::json!({"id": format!("{:056}", i), "timestamp": 1_795_853_230_000i64 + i as i64, "message": message}));
    }
    let msg = serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/orders",
        "logStream": "2026/11/28/[$LATEST]b8b6d8fe442e3d437204e52db2221a58", "subscriptionFilters": ["thawtrace"],
        "logEvents": out,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(msg.to_string().as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    serde_json::json!({"awslogs": {"data": data}}).to_string()
}

#[derive(Deserialize)]
struct Wrapper<'a> {
    #[serde(borrow)]
    awslogs: AwsLogs<'a>,
}

#[derive(Deserialize)]
struct AwsLogs<'a> {
    data: &'a str,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "logEvents", borrow)]
    log_events: Vec<Event<'a>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    message: &'a RawValue,
}

/// Buffers the floor reuses between payloads, as a warm collector would.
#[derive(Default)]
struct Floor {
    compressed: Vec<u8>,
    inflated: Vec<u8>,
}

impl Floor {
    /// Decodes the payload and scans every message twice; returns a count
    /// that depends on all of it.
    fn run(&mut self, text: &str, needles: &[memchr::memmem::Finder<'static>; 2]) -> usize {
        let wrapper: Wrapper<'_> = serde_json::from_str(text).unwrap();
        self.compressed.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(wrapper.awslogs.data, &mut self.compressed)
            .unwrap();
        let c = &self.compressed;
        let size = u32::from_le_bytes(c[c.len() - 4..].try_into().unwrap()) as usize;
        self.inflated.resize(size, 0);
        let n = libdeflater::Decompressor::new()
            .gzip_decompress(c, &mut self.inflated)
            .unwrap();
        let message: Message<'_> = serde_json::from_slice(&self.inflated[..n]).unwrap();
        message
            .log_events
            .iter()
            .map(|e| {
                let m = e.message.get().as_bytes();
                usize::from(needles[0].find(m).is_some())
                    + usize::from(needles[1].find(m).is_some())
            })
            .sum()
    }
}

/// The CLI's path for one file's text; returns the number of findings.
fn scan(text: &str, limits: &Limits, config: &Config) -> usize {
    let mut budget = Budget::for_input(limits, 0);
    let texts = unwrap_payloads(text, &mut budget).unwrap().unwrap().texts;
    let mut batch = Batch::default();
    for t in &texts {
        read_text("bench.json", t, limits, &mut batch).unwrap();
    }
    let mut findings: Vec<Finding> = Vec::new();
    batch.analyze(config, &mut findings);
    findings.len()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let limits = Limits::default();
    let config = Config::default();
    let needles = [
        memchr::memmem::Finder::new(b" | keepalive | ").into_owned(),
        memchr::memmem::Finder::new(b"RequestId: ").into_owned(),
    ];
    println!("{events} events per payload; medians of 11 runs, floor and scan interleaved");
    println!(
        "{:<20} {:>14} {:>14} {:>8}",
        "mix", "floor ev/s", "scan ev/s", "ratio"
    );
    for mix in [Mix::NodeApps, Mix::NodeTraces, Mix::PythonErrors] {
        let text = payload(mix, events);
        let mut floor = Floor::default();
        let (mut floor_t, mut scan_t) = (Vec::new(), Vec::new());
        let mut sink = 0;
        for _ in 0..11 {
            let t = Instant::now();
            sink += floor.run(std::hint::black_box(&text), &needles);
            floor_t.push(t.elapsed());
            let t = Instant::now();
            sink += scan(std::hint::black_box(&text), &limits, &config);
            scan_t.push(t.elapsed());
        }
        std::hint::black_box(sink);
        let rate = |d: Duration| events as f64 / d.as_secs_f64();
        let (f, s) = (rate(median(floor_t)), rate(median(scan_t)));
        println!("{:<20} {:>14.0} {:>14.0} {:>7.2}x", mix.name(), f, s, s / f);
    }
}
