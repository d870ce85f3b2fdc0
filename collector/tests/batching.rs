//! Findings never depend on batch boundaries: a recorded stream split into
//! subscription batches at arbitrary points, with or without a warm cache,
//! gives the findings of one whole scan (lookback served by an in-memory
//! source standing in for FilterLogEvents, which the moto test exercises).

mod common;

use std::future::Future;
use std::pin::Pin;

use common::*;
use proptest::prelude::*;
use serde_json::Value;
use thawtrace::lookback::{ContextEvent, LogSource, Lookback, LookbackLimits};
use thawtrace_analyzers::parse::RawText;
use thawtrace_analyzers::{Batch, Config, Finding, LogEvent};

struct Memory(Vec<(String, ContextEvent)>);

impl LogSource for Memory {
    fn fetch<'a>(
        &'a self,
        _group: &'a str,
        stream: &'a str,
        start_ms: i64,
        end_ms: i64,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<ContextEvent>, String>> + Send + 'a>> {
        let found = self
            .0
            .iter()
            .filter(|(s, e)| s == stream && (start_ms..end_ms).contains(&e.timestamp_ms))
            .map(|(_, e)| e.clone())
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

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

fn sorted_keys(findings: &[Finding]) -> Vec<String> {
    let mut k: Vec<String> = findings.iter().map(key).collect();
    k.sort();
    k
}

struct Stream {
    group: String,
    name: String,
    events: Vec<Value>,
}

fn streams() -> Vec<Stream> {
    let mut out: Vec<Stream> = Vec::new();
    for fixture in fixtures() {
        for e in events(&fixture) {
            let (g, s) = (
                e["logGroup"].as_str().unwrap().to_owned(),
                e["logStream"].as_str().unwrap().to_owned(),
            );
            match out.iter_mut().find(|st| st.name == s) {
                Some(st) => st.events.push(e),
                None => out.push(Stream {
                    group: g,
                    name: s,
                    events: vec![e],
                }),
            }
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

fn whole(stream: &Stream) -> Vec<String> {
    let mut batch = Batch::default();
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
    let mut findings: Vec<Finding> = Vec::new();
    batch.analyze(&Config::default(), &mut findings);
    sorted_keys(&findings)
}

fn batched(stream: &Stream, cuts: &[usize], cache: bool) -> Vec<String> {
    let source = Memory(
        stream
            .events
            .iter()
            .map(|e| {
                (
                    stream.name.clone(),
                    ContextEvent {
                        id: e["id"].as_str().unwrap().to_owned(),
                        timestamp_ms: e["timestamp"].as_i64().unwrap(),
                        message: e["message"].as_str().unwrap().to_owned(),
                        escaped: false,
                    },
                )
            })
            .collect(),
    );
    let lookback = Lookback::new(LookbackLimits::default(), cache, Some(Box::new(source)));
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % stream.events.len()).collect();
    bounds.push(0);
    bounds.push(stream.events.len());
    bounds.sort_unstable();
    bounds.dedup();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut findings: Vec<Finding> = Vec::new();
    for w in bounds.windows(2) {
        let batch: Vec<LogEvent<'_>> = stream.events[w[0]..w[1]].iter().map(log_event).collect();
        runtime
            .block_on(lookback.analyze(
                &stream.group,
                &stream.name,
                &batch,
                &Config::default(),
                &mut findings,
            ))
            .unwrap();
    }
    sorted_keys(&findings)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_batching_gives_the_findings_of_a_whole_scan(
        which in 0usize..64,
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        cache in any::<bool>(),
    ) {
        let all = streams();
        let keepalive: Vec<&Stream> = all.iter().filter(|s| !whole(s).is_empty()).collect();
        let stream = keepalive[which % keepalive.len()];
        prop_assert_eq!(batched(stream, &cuts, cache), whole(stream));
    }
}

#[test]
fn a_batch_per_event_gives_the_same_findings() {
    for stream in streams().iter().filter(|s| !whole(s).is_empty()).take(3) {
        let cuts: Vec<usize> = (0..stream.events.len()).collect();
        assert_eq!(
            batched(stream, &cuts, false),
            whole(stream),
            "{}",
            stream.name
        );
    }
}
