//! The Lambda handler's path, from an event's payload to its EMF and JSON
//! lines and its OTLP spans, with the warm per-stream lookback cache and
//! the cross-stream state kept between events, as one warm collector keeps
//! them (`thawtrace::lambda::Handler`). Only the network is left out: no
//! lookback source, no exporter.
//!
//! Two shapes per mix (see `benches/common/mod.rs`): a stream's 100,000
//! events as consecutive ~1 MB subscription batches (what CloudWatch Logs
//! delivers), and as one 100,000-event payload. Events per second, per
//! core (one thread).
//!
//! `cargo bench -p thawtrace --bench handler` (add `-- 50000` for another
//! event count, `-- --profile node-app-heavy` to run one mix's batches
//! alone, for `perf record`).

use std::time::{Duration, Instant};

use thawtrace::export::Origin;
use thawtrace::input::Limits;
use thawtrace::lambda::Handler;
use thawtrace::lookback::{Lookback, LookbackLimits};
use thawtrace_analyzers::Config;

mod common;
use common::{Mix, batches, median, payload};

fn handler() -> Handler {
    Handler::new(
        Limits::default(),
        Config::default(),
        Origin {
            region: Some("eu-west-1".into()),
        },
        Lookback::new(LookbackLimits::default(), true, None),
    )
}

/// Runs the events through one fresh warm-to-be handler; returns the time
/// and a count that depends on all of it.
fn run(runtime: &tokio::runtime::Runtime, events: &[String]) -> (Duration, usize) {
    let handler = handler();
    let mut sink = std::io::sink();
    let t = Instant::now();
    let mut count = 0;
    for event in events {
        let processed = runtime
            .block_on(handler.process(std::hint::black_box(event.as_bytes()), &mut sink))
            .expect("a valid payload");
        count += handler.spans(&processed.collected).len();
    }
    (t.elapsed(), count)
}

fn main() {
    let (events, profile) = common::args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // `-- --profile MIX`: that mix's batches alone, 20 times, for `perf record`.
    if let Some(mix) = profile {
        let batched = batches(mix, events, 1 << 20);
        let n: usize = (0..20).map(|_| run(&runtime, &batched).1).sum();
        println!("{n}");
        return;
    }
    println!("{events} events per mix; medians of 7 runs, one thread");
    println!(
        "{:<20} {:>9} {:>16} {:>16}",
        "mix", "batches", "1 MB batches ev/s", "one payload ev/s"
    );
    for mix in Mix::ALL {
        let batched = batches(mix, events, 1 << 20);
        let whole = vec![payload(mix, events)];
        let (mut b_t, mut w_t) = (Vec::new(), Vec::new());
        let mut sink = 0;
        for _ in 0..7 {
            let (t, n) = run(&runtime, &batched);
            b_t.push(t);
            sink += n;
            let (t, n) = run(&runtime, &whole);
            w_t.push(t);
            sink += n;
        }
        std::hint::black_box(sink);
        let rate = |d: Duration| events as f64 / d.as_secs_f64();
        println!(
            "{:<20} {:>9} {:>16.0} {:>16.0}",
            mix.name(),
            batched.len(),
            rate(median(b_t)),
            rate(median(w_t))
        );
    }
}
