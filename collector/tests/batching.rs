//! Findings and incidents never depend on batch boundaries: a recorded
//! stream split into subscription batches at arbitrary points, with or
//! without a warm cache, gives the findings and the neighbouring failures
//! of one whole scan (lookback served by an in-memory source standing in
//! for FilterLogEvents, which the moto test exercises); so does the
//! recording of neighbouring failures, every stream of it batched, its
//! signals joined across streams as the Lambda collector joins them.

mod common;

use std::path::Path;

use clap::Parser;
use common::*;
use proptest::prelude::*;
use serde_json::Value;
use thawtrace::lookback::{ContextEvent, Lookback, LookbackLimits};
use thawtrace::settings::Thresholds;
use thawtrace_analyzers::Collected;
use thawtrace_analyzers::parse::RawText;
use thawtrace_analyzers::{Batch, Config, Finding, Incident, LogEvent, Neighbours};

fn key(f: &Finding) -> String {
    format!(
        "{:?} {} {} {} {:?} {:?}",
        f.kind,
        f.log_stream,
        f.ping_event_id,
        f.timeout_event_id,
        f.ping_request_id,
        f.timeout_request_id
    )
}

/// What a scan found: its findings (as keys) and its incidents, each
/// incident's evidence as a set (events of one millisecond may be joined
/// in either order), each list sorted.
#[derive(Debug, PartialEq)]
struct Found {
    findings: Vec<String>,
    incidents: Vec<Incident>,
}

impl Found {
    fn of(findings: &[Finding], incidents: &[Incident]) -> Found {
        let mut f: Vec<String> = findings.iter().map(key).collect();
        f.sort();
        let mut i: Vec<Incident> = incidents.to_vec();
        for incident in &mut i {
            incident.evidence.sort();
        }
        i.sort_by_key(|i| (i.log_group.clone(), i.first_at_ms, i.evidence.clone()));
        Found {
            findings: f,
            incidents: i,
        }
    }
}

struct Stream {
    group: String,
    name: String,
    events: Vec<Value>,
}

/// The streams of the keepalive recordings.
fn streams() -> Vec<Stream> {
    let mut out: Vec<Stream> = Vec::new();
    for fixture in fixtures() {
        out.extend(streams_of_fixture(&fixture));
    }
    out
}

/// A recording's events by stream, in the order of the file.
fn streams_of_fixture(fixture: &Path) -> Vec<Stream> {
    let mut out: Vec<Stream> = Vec::new();
    for e in events(fixture) {
        let (g, s) = (
            e["logGroup"].as_str().unwrap().to_owned(),
            e["logStream"].as_str().unwrap().to_owned(),
        );
        match out.iter_mut().find(|st| st.group == g && st.name == s) {
            Some(st) => st.events.push(e),
            None => out.push(Stream {
                group: g,
                name: s,
                events: vec![e],
            }),
        }
    }
    out
}

fn log_event(e: &Value) -> LogEvent<'_> {
    LogEvent {
        id: e["id"].as_str().unwrap().into(),
        timestamp_ms: e["timestamp"].as_i64().unwrap(),
        text: RawText::Plain(e["message"].as_str().unwrap()),
    }
}

/// One scan of all of `streams` together.
fn whole(streams: &[&Stream], config: &Config) -> Found {
    let mut batch = Batch::default();
    for stream in streams {
        for e in &stream.events {
            let ev = log_event(e);
            batch.push(
                stream.group.as_str(),
                stream.name.as_str(),
                ev.id,
                ev.timestamp_ms,
                ev.text,
            );
        }
    }
    let mut found = thawtrace_analyzers::Collected::default();
    batch.analyze(config, &mut found);
    Found::of(&found.findings, &found.incidents)
}

/// Each of `streams` in subscription batches cut at `cuts` (modulo its
/// length), through one lookback; the signals of all batches joined at the
/// end.
fn batched(streams: &[&Stream], cuts: &[usize], cache: bool, config: &Config) -> Found {
    let source = Memory::of(
        streams
            .iter()
            .flat_map(|stream| stream.events.iter().map(|e| (stream.name.clone(), e))),
    );
    let lookback = Lookback::new(LookbackLimits::default(), cache, Some(Box::new(source)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut collected = Collected::default();
    for stream in streams {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % stream.events.len()).collect();
        bounds.push(0);
        bounds.push(stream.events.len());
        bounds.sort_unstable();
        bounds.dedup();
        for w in bounds.windows(2) {
            let batch: Vec<LogEvent<'_>> =
                stream.events[w[0]..w[1]].iter().map(log_event).collect();
            runtime
                .block_on(lookback.analyze(
                    &stream.group,
                    &stream.name,
                    &batch,
                    config,
                    &mut collected,
                ))
                .unwrap();
        }
    }
    let mut neighbours = Neighbours::new(config);
    for signal in collected.signals.drain(..) {
        neighbours.push(signal);
    }
    neighbours.flush(&mut collected);
    Found::of(&collected.findings, &collected.incidents)
}

/// The recording of neighbouring failures, by stream, and the thresholds
/// it is scanned with.
fn network() -> (Vec<Stream>, Config) {
    #[derive(Parser)]
    struct Scan {
        #[command(flatten)]
        thresholds: Thresholds,
    }
    let dir: &Path = &network_fixture();
    let args = std::iter::once("scan".to_owned()).chain(scan_args(dir));
    let config = Scan::parse_from(args).thresholds.config().unwrap();
    (streams_of_fixture(dir), config)
}

/// The keepalive recordings' streams with findings.
fn keepalive_streams() -> Vec<Stream> {
    let config = Config::default();
    streams()
        .into_iter()
        .filter(|s| !whole(&[s], &config).findings.is_empty())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_batching_gives_the_findings_of_a_whole_scan(
        which in 0usize..64,
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        cache in any::<bool>(),
    ) {
        let keepalive = keepalive_streams();
        let stream = &keepalive[which % keepalive.len()];
        let config = Config::default();
        prop_assert_eq!(batched(&[stream], &cuts, cache, &config), whole(&[stream], &config));
    }

    #[test]
    fn any_batching_gives_the_incidents_of_a_whole_scan(
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        cache in any::<bool>(),
    ) {
        let (streams, config) = network();
        let streams: Vec<&Stream> = streams.iter().collect();
        prop_assert_eq!(batched(&streams, &cuts, cache, &config), whole(&streams, &config));
    }
}

#[test]
fn a_batch_per_event_gives_the_same_findings() {
    let config = Config::default();
    for stream in keepalive_streams().iter().take(3) {
        let cuts: Vec<usize> = (0..stream.events.len()).collect();
        assert_eq!(
            batched(&[stream], &cuts, false, &config),
            whole(&[stream], &config),
            "{}",
            stream.name
        );
    }
}

#[test]
fn a_batch_per_event_gives_the_same_incidents() {
    let (streams, config) = network();
    let streams: Vec<&Stream> = streams.iter().collect();
    let found = whole(&streams, &config);
    // The recording holds every neighbouring kind (its truth has 14).
    assert!(found.incidents.len() >= 14, "{found:#?}");
    let longest = streams.iter().map(|s| s.events.len()).max().unwrap();
    let cuts: Vec<usize> = (0..longest).collect();
    assert_eq!(batched(&streams, &cuts, false, &config), found);
}

/// Collectors that share a stream's batches: this one got the first and
/// the third, another the second, which held an invocation's START. The
/// third holds that invocation's END, which no START in this collector's
/// warm cache announces: it looks back, as a collector new to the stream
/// does, and the idempotency key of the third batch is the invocation's
/// (without the START, no invocation owned it and the key was lost).
#[test]
fn a_batch_naming_an_invocation_the_cache_never_started_looks_back() {
    let (a, b) = (
        "0a000000-0000-4000-8000-00000000000a",
        "0b000000-0000-4000-8000-00000000000b",
    );
    let line = |ms: i64, text: String| (ms, text);
    let node = |ms: i64, rid: &str, msg: &str| {
        format!(
            "2026-11-28T11:57:4{}.{:03}Z\t{rid}\tINFO\t{msg}",
            ms / 1000,
            ms % 1000
        )
    };
    let events = [
        line(1_000, format!("START RequestId: {a} Version: $LATEST")),
        line(1_001, node(1_001, a, "working")),
        line(1_002, format!("END RequestId: {a}")),
        line(2_000, format!("START RequestId: {b} Version: $LATEST")),
        line(
            2_001,
            node(2_001, b, r#"event {"Records": [{"messageId": "m-1"}]}"#),
        ),
        line(2_002, format!("END RequestId: {b}")),
    ];
    let t0 = 1_795_867_067_000;
    let context: Vec<(String, ContextEvent)> = events
        .iter()
        .enumerate()
        .map(|(i, (ms, text))| {
            let e = ContextEvent::new(&format!("{i:056}"), t0 + ms, text, false);
            ("s".to_owned(), e)
        })
        .collect();
    let batch = |range: std::ops::Range<usize>| -> Vec<LogEvent<'_>> {
        context[range]
            .iter()
            .map(|(_, e)| LogEvent {
                id: e.id().into(),
                timestamp_ms: e.timestamp_ms,
                text: RawText::Plain(e.message()),
            })
            .collect()
    };
    let lookback = Lookback::new(
        LookbackLimits::default(),
        true,
        Some(Box::new(Memory(context.clone()))),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = Config::default();
    let mut collected = Collected::default();
    for range in [0..3, 4..6] {
        runtime
            .block_on(lookback.analyze("g", "s", &batch(range), &config, &mut collected))
            .unwrap();
    }
    let keys: Vec<_> = collected
        .signals
        .iter()
        .filter(|s| matches!(s.what, thawtrace_analyzers::SignalKind::Key { .. }))
        .map(|s| s.request_id.as_deref())
        .collect();
    assert_eq!(keys, [Some(b)]);
}

/// A source that is down: every look back fails.
struct Down;

impl thawtrace::lookback::LogSource for Down {
    fn fetch<'a>(
        &'a self,
        _group: &'a str,
        _stream: &'a str,
        _start_ms: i64,
        _end_ms: i64,
    ) -> thawtrace::lookback::Fetching<'a> {
        Box::pin(async { Err("connection refused".to_owned()) })
    }
}

/// Each freeze timeout's batch given alone to a cold collector whose
/// CloudWatch Logs is down: the batch goes on (no error, so it is not
/// delivered again), and its timeout is named as not looked up, with why.
#[test]
fn a_timeout_whose_ping_cannot_be_looked_up_is_named_not_lost() {
    let config = Config::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut named = 0;
    for fixture in fixtures() {
        for stream in streams_of_fixture(&fixture) {
            let mut found = Collected::default();
            let all: Vec<LogEvent<'_>> = stream.events.iter().map(log_event).collect();
            let mut batch = Batch::default();
            for e in &all {
                batch.push(
                    &stream.group,
                    &stream.name,
                    e.id.clone(),
                    e.timestamp_ms,
                    e.text,
                );
            }
            batch.analyze(&config, &mut found);
            for f in found
                .findings
                .iter()
                .filter(|f| f.kind == thawtrace_analyzers::KeepaliveKind::FreezeTimeout)
            {
                // The timeout line alone in its batch: its ping is earlier.
                let Some(at) = all.iter().position(|e| e.id == f.timeout_event_id.as_str()) else {
                    continue;
                };
                let lookback =
                    Lookback::new(LookbackLimits::default(), false, Some(Box::new(Down)));
                let mut out = Collected::default();
                let outcome = runtime
                    .block_on(lookback.analyze(
                        &stream.group,
                        &stream.name,
                        &all[at..=at],
                        &config,
                        &mut out,
                    ))
                    .expect("a source that is down does not fail the batch");
                assert!(outcome.lookup_failed);
                assert_eq!(outcome.lookup_error.as_deref(), Some("connection refused"));
                assert_eq!(
                    outcome.unlooked,
                    [(f.timeout_event_id.clone(), f.timeout_at_ms)],
                    "{}",
                    f.timeout_event_id
                );
                assert!(out.findings.is_empty(), "no ping, no finding");
                named += 1;
            }
        }
    }
    assert!(named > 3, "{named} freeze timeouts checked");
}
