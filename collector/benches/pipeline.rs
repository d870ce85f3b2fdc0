//! awslogs subscription event -> findings (base64, gunzip, JSON, parse,
//! correlate), on a realistic mix built from recorded lines: 80 % ordinary
//! application lines, 15 % grpc-js traces, 5 % platform lines, ~300 bytes
//! per event, ~3.4 k events per batch.
//!
//! `cargo bench -p thawtrace --bench pipeline`

use divan::counter::ItemsCount;
use thawtrace::input::Limits;
use thawtrace::input::awslogs::{Scratch, analyze_payload};
use thawtrace_analyzers::{Config, Finding};

mod common;

fn main() {
    divan::main();
}

const EVENTS: usize = 3400;

/// One ~1 MB batch of the application-heavy Node.js mix.
fn payload() -> Vec<u8> {
    common::awslogs_event(common::events(common::Mix::NodeApps, 0, EVENTS)).into_bytes()
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
    use thawtrace::export::{Origin, emf, spans};
    use thawtrace_analyzers::Collected;
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
