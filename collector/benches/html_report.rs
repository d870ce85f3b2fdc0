//! `scan --format html` on a large log group: the page for 10,000 and for
//! 100,000 execution environments, and the ratio of the two times. Ten
//! times the environments should cost about ten times the time; the
//! report once filtered every invocation and finding for every stream, and
//! 100,000 streams took minutes.
//!
//! `cargo bench -p thawtrace --bench html_report` (add two stream counts,
//! `-- 10000 100000`, to choose them).
//!
//! Each environment holds 8 invocations of 200 ms, frozen 2 s apart; one in
//! ten has a freeze timeout with a failed call, as a busy function whose
//! client sends keepalive pings would show. Times are the median of 5
//! renders; the page's own script is not run (the Chromium tests do that).

use std::time::{Duration, Instant};

use thawtrace::report::html;
use thawtrace_analyzers::Collected;
use thawtrace_analyzers::parse::Library;
use thawtrace_analyzers::{
    ExecutionMode, FailedCall, Finding, InvocationWindow, KeepaliveKind, StreamStats, Summary,
};

const INVOCATIONS: i64 = 8;

fn log_group(streams: usize) -> (Collected, Summary) {
    let mut collected = Collected::default();
    let group = "/aws/lambda/orders-node".to_owned();
    let t0 = 1_795_853_579_923;
    for s in 0..streams {
        let stream = format!("2026/11/28/[$LATEST]{s:032x}");
        let rid = |n: i64| format!("{s:08x}-0000-4000-8000-{n:012x}");
        for n in 0..INVOCATIONS {
            let start = t0 + n * 2_200;
            collected.invocations.push(InvocationWindow {
                log_group: group.clone(),
                log_stream: stream.clone(),
                request_id: rid(n),
                start_ms: Some(start),
                end_ms: Some(start + 200),
                execution_mode: ExecutionMode::Classic,
                tenant_id: None,
            });
        }
        if s % 10 == 0 {
            let (ping, timeout) = (t0 + 150, t0 + 2_210);
            let id = |at: i64, n: u32| format!("{at:019}{s:020}{n:08}");
            collected.findings.push(Finding {
                kind: KeepaliveKind::FreezeTimeout,
                log_group: group.clone(),
                log_stream: stream.clone(),
                library: Library::GrpcJs,
                ping_request_id: Some(rid(0)),
                timeout_request_id: Some(rid(1)),
                ping_line_request_id: Some(rid(0)),
                timeout_line_request_id: Some(rid(0)),
                connection: "(1) 10.0.12.7:443".into(),
                ping_at_ms: ping,
                timeout_at_ms: timeout,
                ping_timeout_ms: Some(1_000),
                frozen_ms: Some(2_000),
                ping_event_id: id(ping, 1),
                timeout_event_id: id(timeout, 2),
                ack_event_id: Some(id(timeout + 1, 3)),
                failed_call: Some(FailedCall {
                    event_id: id(timeout + 5, 4),
                    at_ms: timeout + 5,
                    code: "UNAVAILABLE",
                    line: 4,
                }),
                failed_request_ids: vec![rid(1)],
                execution_mode: ExecutionMode::Classic,
                tenant_id: None,
                evidence: vec![id(ping, 1), id(timeout, 2), id(timeout + 1, 3)],
                inferred_from: None,
                ping_line: 1,
                timeout_line: 2,
                settled_by: None,
            });
        }
    }
    let summary = Summary {
        streams: streams as u64,
        totals: StreamStats {
            invocations: collected.invocations.len() as u64,
            ..StreamStats::default()
        },
        ..Summary::default()
    };
    (collected, summary)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut counts = std::env::args().skip(1).filter_map(|a| a.parse().ok());
    let small: usize = counts.next().unwrap_or(10_000);
    let large: usize = counts.next().unwrap_or(100_000);
    println!("HTML report, median of 5 renders");
    println!(
        "{:>9} {:>12} {:>10} {:>10} {:>12}",
        "streams", "invocations", "findings", "page MB", "render"
    );
    let mut times = Vec::new();
    for streams in [small, large] {
        let (collected, summary) = log_group(streams);
        let mut runs = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let t = Instant::now();
            bytes = std::hint::black_box(html::render(&collected, &summary)).len();
            runs.push(t.elapsed());
        }
        let t = median(runs);
        println!(
            "{:>9} {:>12} {:>10} {:>10.1} {:>10.0} ms",
            streams,
            collected.invocations.len(),
            collected.findings.len(),
            bytes as f64 / 1e6,
            t.as_secs_f64() * 1e3
        );
        times.push(t);
    }
    println!(
        "{large} / {small} streams: {:.1}x the time for {:.1}x the environments",
        times[1].as_secs_f64() / times[0].as_secs_f64(),
        large as f64 / small as f64
    );
}
