//! awslogs subscription event -> findings (base64, gunzip, JSON, parse,
//! correlate), on a realistic mix built from recorded lines: 80 % ordinary
//! application lines, 15 % grpc-js traces, 5 % platform lines, ~300 bytes
//! per event, ~3.4 k events per batch.
//!
//! `cargo bench -p thawtrace --bench pipeline`

use std::io::Write;

use base64::Engine;
use divan::counter::ItemsCount;
use thawtrace::input::Limits;
use thawtrace::input::awslogs::{Scratch, analyze_payload};
use thawtrace_analyzers::{Config, Finding};

fn main() {
    divan::main();
}

const EVENTS: usize = 3400;

fn payload() -> Vec<u8> {
    let app = |i: usize, rid: &str| {
        format!(
            "2026-11-28T08:07:{:02}.{:03}Z\t{rid}\tINFO\torder {i} accepted: {{\"orderId\":\"ord-{i:08}\",\"customer\":\"c-{:06}\",\"items\":[{{\"sku\":\"SKU-{:05}\",\"qty\":{}}}],\"total\":{}.{:02},\"currency\":\"EUR\",\"channel\":\"web\",\"note\":\"deliver to the back door\"}}",
            i % 60,
            i % 1000,
            i * 7 % 999_999,
            i % 99_999,
            i % 9 + 1,
            i % 500,
            i % 100
        )
    };
    let traces = [
        "D 2026-11-28T08:07:10.293Z | v1.14.7 2257 | keepalive | (2) 10.0.12.7:443 Sending ping with timeout 1000ms",
        "D 2026-11-28T08:07:10.371Z | v1.14.7 2257 | keepalive | (2) 10.0.12.7:443 Received ping response",
        "D 2026-11-28T08:07:10.371Z | v1.14.7 2257 | keepalive | (2) 10.0.12.7:443 Starting keepalive timer for 5000ms",
        "D 2026-11-28T08:07:05.247Z | v1.14.7 2257 | resolving_load_balancer | dns:orders.internal:443 IDLE -> CONNECTING",
        "D 2026-11-28T08:07:05.247Z | v1.14.7 2257 | subchannel | (1) 10.0.12.7:443 IDLE -> CONNECTING",
        "D 2026-11-28T08:07:05.250Z | v1.14.7 2257 | transport | dns:orders.internal:443 10.0.12.7:443 Established TCP connection",
    ];
    let mut events = Vec::with_capacity(EVENTS);
    let mut inv = 0;
    let mut rid = format!("{:08x}-c745-4468-b82a-0c884500fb30", inv);
    let mut i = 0;
    while events.len() < EVENTS {
        let message = match i % 20 {
            0 => {
                inv += 1;
                rid = format!("{:08x}-c745-4468-b82a-0c884500fb30", inv);
                format!("START RequestId: {rid} Version: $LATEST")
            }
            1..=3 => format!(
                "2026-11-28T08:07:10.293Z\t{rid}\tERROR\t{}",
                traces[i % traces.len()]
            ),
            19 => format!("END RequestId: {rid}"),
            _ => app(i, &rid),
        };
        events.push(serde_json::json!({"id": format!("{:056}", i), "timestamp": 1_795_853_230_000i64 + i as i64, "message": message}));
        i += 1;
    }
    let msg = serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/orders",
        "logStream": "2026/11/28/[$LATEST]b8b6d8fe442e3d437204e52db2221a58", "subscriptionFilters": ["thawtrace"],
        "logEvents": events,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(msg.to_string().as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    serde_json::json!({"awslogs": {"data": data}})
        .to_string()
        .into_bytes()
}

#[divan::bench]
fn awslogs_event_to_findings(bencher: divan::Bencher) {
    let payload = payload();
    let mut scratch = Scratch::default();
    let limits = Limits::default();
    let config = Config::default();
    bencher.counter(ItemsCount::new(EVENTS)).bench_local(|| {
        let mut findings: Vec<Finding> = Vec::new();
        analyze_payload(
            divan::black_box(&payload),
            &mut scratch,
            &limits,
            &config,
            &mut findings,
        )
        .unwrap()
    });
}

/// The Lambda handler's path up to the network: findings and invocation
/// windows, their OTLP spans and the EMF lines (the exporter itself is the
/// only part left out).
#[divan::bench]
fn awslogs_event_to_spans_and_emf(bencher: divan::Bencher) {
    use thawtrace::export::{Collected, Origin, emf, spans};
    let payload = payload();
    let mut scratch = Scratch::default();
    let limits = Limits::default();
    let config = Config::default();
    let origin = Origin {
        region: Some("eu-west-1".into()),
    };
    bencher.counter(ItemsCount::new(EVENTS)).bench_local(|| {
        let mut collected = Collected::default();
        analyze_payload(
            divan::black_box(&payload),
            &mut scratch,
            &limits,
            &config,
            &mut collected,
        )
        .unwrap();
        let spans = spans::spans(&collected, &origin);
        let lines = emf::lines(&collected.findings, &collected.incidents);
        (spans.len(), lines.len())
    });
}
