//! The instrument's cost per event: the same subscriber (`fmt` to a sink,
//! INFO per-layer filter) with and without `thawtrace_instrument::layer()`,
//! on ordinary application events and on h2's per-frame DEBUG events.
//!
//! `cargo bench -p thawtrace-instrument --bench overhead`

use tracing::Dispatch;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

fn main() {
    divan::main();
}

/// Stands in for h2's `Frame` in its `Debug` form.
#[derive(Debug)]
#[allow(dead_code)]
struct Ping {
    ack: bool,
    payload: [u8; 8],
}

fn fmt_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(LevelFilter::INFO)
}

fn without() -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(fmt_layer()))
}

fn with() -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry()
            .with(fmt_layer())
            .with(thawtrace_instrument::layer()),
    )
}

#[divan::bench(args = ["without", "with"])]
fn ordinary_event(bencher: divan::Bencher, layer: &str) {
    let dispatch = if layer == "with" { with() } else { without() };
    tracing::dispatcher::with_default(&dispatch, || {
        bencher.bench_local(|| tracing::info!(order = divan::black_box(42u64), "order accepted"));
    });
}

#[divan::bench(args = ["without", "with"])]
fn h2_ping_frame_event(bencher: divan::Bencher, layer: &str) {
    let dispatch = if layer == "with" { with() } else { without() };
    let frame = Ping {
        ack: false,
        payload: [59, 124, 219, 122, 11, 135, 22, 180],
    };
    tracing::dispatcher::with_default(&dispatch, || {
        bencher.bench_local(|| tracing::debug!(target: "h2::codec::framed_write", frame = ?divan::black_box(&frame), "send"));
    });
}

#[divan::bench(args = ["without", "with"])]
fn disabled_debug_event(bencher: divan::Bencher, layer: &str) {
    let dispatch = if layer == "with" { with() } else { without() };
    tracing::dispatcher::with_default(&dispatch, || {
        bencher.bench_local(|| {
            tracing::debug!(order = divan::black_box(42u64), "not enabled by anyone")
        });
    });
}
