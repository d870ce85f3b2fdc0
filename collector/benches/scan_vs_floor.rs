//! The CLI's scan, as `thawtrace scan FILE` runs it (unwrap the awslogs
//! event, read its events, correlate, findings), against a bare floor on
//! the same payload in the same run. The ratio scan/floor is the figure to
//! watch: absolute rates move with the machine, the ratio much less.
//!
//! - **floor** (DESIGN.md's): what a straightforward decoder does, buffers
//!   reused between payloads: base64, `flate2` (zlib-rs) inflate,
//!   `serde_json` with borrowed messages (unescaped where they hold
//!   escapes), and two memmem scans of every message;
//! - **tight floor**: the same with libdeflate's whole-buffer inflate and
//!   messages left as raw, still-escaped JSON (`&RawValue`): the least any
//!   reader of the payload can do, which the scan cannot beat on one core.
//!
//! `cargo bench -p thawtrace --bench scan_vs_floor` (add `-- 100000` for
//! the event count; default 100,000 per payload; `-- --profile
//! node-app-heavy` runs the scan alone, for `perf record`; `-- --write
//! DIR` writes each mix's payload there, to measure the binary).
//!
//! Payloads look like production (see `benches/common/mod.rs`): one
//! stream of invocations in four mixes, Node.js and Python, application-,
//! trace- and error-heavy.

use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use thawtrace::input::{Budget, Limits, read_text, unwrap_payloads};
use thawtrace_analyzers::{Batch, Config, Finding};

mod common;
use common::{Mix, median, payload};

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
    message: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(rename = "logEvents", borrow)]
    log_events: Vec<RawEvent<'a>>,
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    message: &'a RawValue,
}

/// Buffers the floors reuse between payloads, as a warm collector would.
#[derive(Default)]
struct Floor {
    compressed: Vec<u8>,
    inflated: Vec<u8>,
}

impl Floor {
    fn base64(&mut self, text: &str) {
        let wrapper: Wrapper<'_> = serde_json::from_str(text).unwrap();
        self.compressed.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(wrapper.awslogs.data, &mut self.compressed)
            .unwrap();
    }

    /// DESIGN.md's floor: decodes the payload with flate2 and serde_json
    /// and scans every message twice; returns a count that depends on all
    /// of it.
    fn run(&mut self, text: &str, needles: &[memchr::memmem::Finder<'static>; 2]) -> usize {
        use std::io::Read;
        self.base64(text);
        self.inflated.clear();
        flate2::read::MultiGzDecoder::new(&self.compressed[..])
            .read_to_end(&mut self.inflated)
            .unwrap();
        let message: Message<'_> = serde_json::from_slice(&self.inflated).unwrap();
        message
            .log_events
            .iter()
            .map(|e| {
                let m = e.message.as_bytes();
                usize::from(needles[0].find(m).is_some())
                    + usize::from(needles[1].find(m).is_some())
            })
            .sum()
    }

    /// The tight floor: libdeflate, raw messages.
    fn run_tight(&mut self, text: &str, needles: &[memchr::memmem::Finder<'static>; 2]) -> usize {
        self.base64(text);
        let c = &self.compressed;
        let size = u32::from_le_bytes(c[c.len() - 4..].try_into().unwrap()) as usize;
        self.inflated.resize(size, 0);
        let n = libdeflater::Decompressor::new()
            .gzip_decompress(c, &mut self.inflated)
            .unwrap();
        let message: RawMessage<'_> = serde_json::from_slice(&self.inflated[..n]).unwrap();
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

fn main() {
    let (events, profile) = common::args();
    let limits = Limits::default();
    let config = Config::default();
    // `-- --write DIR`: each mix's payload to DIR/<mix>.json, for measuring
    // the binary itself (`/usr/bin/time -v thawtrace scan …`).
    if let Some(dir) = std::env::args().skip_while(|a| a != "--write").nth(1) {
        for mix in Mix::ALL {
            let path = std::path::Path::new(&dir).join(format!("{}.json", mix.name()));
            std::fs::write(&path, payload(mix, events)).unwrap();
            println!("{}", path.display());
        }
        return;
    }
    // `-- --profile MIX`: the scan alone, 30 times, for `perf record`.
    if let Some(mix) = profile {
        let text = payload(mix, events);
        let found: usize = (0..30).map(|_| scan(&text, &limits, &config)).sum();
        println!("{found}");
        return;
    }
    let needles = [
        memchr::memmem::Finder::new(b" | keepalive | ").into_owned(),
        memchr::memmem::Finder::new(b"RequestId: ").into_owned(),
    ];
    println!("{events} events per payload; medians of 11 runs, floors and scan interleaved");
    println!(
        "{:<20} {:>12} {:>12} {:>12} {:>7} {:>7}",
        "mix", "floor ev/s", "tight ev/s", "scan ev/s", "/floor", "/tight"
    );
    for mix in Mix::ALL {
        let text = payload(mix, events);
        let mut floor = Floor::default();
        let (mut floor_t, mut tight_t, mut scan_t) = (Vec::new(), Vec::new(), Vec::new());
        let mut sink = 0;
        for _ in 0..11 {
            let t = Instant::now();
            sink += floor.run(std::hint::black_box(&text), &needles);
            floor_t.push(t.elapsed());
            let t = Instant::now();
            sink += floor.run_tight(std::hint::black_box(&text), &needles);
            tight_t.push(t.elapsed());
            let t = Instant::now();
            sink += scan(std::hint::black_box(&text), &limits, &config);
            scan_t.push(t.elapsed());
        }
        std::hint::black_box(sink);
        let rate = |d: Duration| events as f64 / d.as_secs_f64();
        let (f, t, s) = (
            rate(median(floor_t)),
            rate(median(tight_t)),
            rate(median(scan_t)),
        );
        println!(
            "{:<20} {:>12.0} {:>12.0} {:>12.0} {:>6.2}x {:>6.2}x",
            mix.name(),
            f,
            t,
            s,
            s / f,
            s / t
        );
    }
}
