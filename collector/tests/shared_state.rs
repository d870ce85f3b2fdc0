//! Collectors sharing their cross-stream state in DynamoDB (moto in server
//! mode on loopback): the recording of neighbouring failures, each stream
//! cut into subscription batches at random, the batches dealt at random to
//! four collectors running at once, report every connect stall once and
//! every duplicate invocation with all its attempts, exactly as one whole
//! scan of the recording does; a batch delivered again afterwards reports
//! the same incidents again and changes nothing in the table.
//!
//! The batches come as a subscription delivers them, in time: every batch
//! lies within one slot of a stall window's length, the slots are
//! delivered one after the other, and within a slot the batches go to the
//! four collectors in any order, at once. So no connect timeout reaches
//! a collector more than a window after the newest event any collector
//! has seen, the lateness the shared watermark allows for before it closes
//! a window (see `thawtrace::state`). A last batch of another function,
//! two windows after the recording's end, closes every window.
//!
//! moto runs one request at a time (tests/harness/moto_atomic.py): its
//! threaded server checks a condition and writes without a lock, so two
//! collectors could both win a claim that DynamoDB gives to one.
//!
//! Needs moto: `bash tests/setup.sh`, THAWTRACE_PYTHON=tests/.deps/venv/bin/python.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use clap::Parser;
use common::moto::{dynamodb_client as client, moto_atomic};
use common::*;
use serde_json::{Value, json};
use thawtrace::export::Origin;
use thawtrace::input::Limits;
use thawtrace::lambda::Handler;
use thawtrace::lookback::{Lookback, LookbackLimits};
use thawtrace::settings::Thresholds;
use thawtrace::state::item::Item;
use thawtrace::state::table::Table;
use thawtrace::state::{SharedState, StateLimits};
use thawtrace_analyzers::parse::RawText;
use thawtrace_analyzers::{Batch, Collected, Config, FindingKind, Incident, Settlement};

const TABLE: &str = "thawtrace-state";
const COLLECTORS: usize = 4;

/// Every item of the table, in key order.
async fn table_items(db: &Client) -> Vec<Item> {
    let mut items = Vec::new();
    let mut pages = db.scan().table_name(TABLE).into_paginator().send();
    while let Some(page) = pages.next().await {
        items.extend(page.unwrap().items.unwrap_or_default());
    }
    let key = |i: &Item| format!("{:?} {:?}", i.get("pk"), i.get("sk"));
    items.sort_by_key(key);
    items
}

/// The recording of neighbouring failures and the thresholds it is
/// scanned with.
fn network() -> (Vec<Value>, Config) {
    #[derive(Parser)]
    struct Scan {
        #[command(flatten)]
        thresholds: Thresholds,
    }
    let dir = network_fixture();
    let args = std::iter::once("scan".to_owned()).chain(scan_args(&dir));
    let config = Scan::parse_from(args).thresholds.config().unwrap();
    (events(&dir), config)
}

fn cross_stream(i: &Incident) -> bool {
    matches!(
        i.kind(),
        FindingKind::ConnectStall | FindingKind::DuplicateInvocation
    )
}

/// The cross-stream incidents of one scan of all the events, in a stable
/// order.
fn whole(events: &[Value], config: &Config) -> Vec<Incident> {
    let mut batch = Batch::default();
    for e in events {
        batch.push(
            e["logGroup"].as_str().unwrap(),
            e["logStream"].as_str().unwrap(),
            e["id"].as_str().unwrap(),
            e["timestamp"].as_i64().unwrap(),
            RawText::Plain(e["message"].as_str().unwrap()),
        );
    }
    let mut found = Collected::default();
    batch.analyze(config, &mut found);
    sorted(found.incidents.into_iter().filter(cross_stream).collect())
}

fn sorted(mut incidents: Vec<Incident>) -> Vec<Incident> {
    incidents.sort_by_key(|i| (i.log_group.clone(), i.first_at_ms, i.evidence.clone()));
    incidents
}

/// splitmix64: the same batches for a seed on every run and platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Each stream cut at random points and at every slot boundary; the
/// batches by slot, each slot's in a random order.
fn slots(events: &[Value], slot_ms: i64, rng: &mut Rng) -> Vec<Vec<Vec<Value>>> {
    let t0 = events
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .min()
        .unwrap();
    let slot = |e: &Value| ((e["timestamp"].as_i64().unwrap() - t0) / slot_ms) as usize;
    let mut by_slot: BTreeMap<usize, Vec<Vec<Value>>> = BTreeMap::new();
    for (group, stream) in streams_of(events) {
        let mut mine: Vec<&Value> = events
            .iter()
            .filter(|e| e["logGroup"] == group.as_str() && e["logStream"] == stream.as_str())
            .collect();
        mine.sort_by_key(|e| e["timestamp"].as_i64().unwrap());
        let mut batch: Vec<Value> = Vec::new();
        for e in mine {
            let cut = rng.below(4) == 0 || batch.last().is_some_and(|b| slot(b) != slot(e));
            if cut && !batch.is_empty() {
                by_slot
                    .entry(slot(&batch[0]))
                    .or_default()
                    .push(std::mem::take(&mut batch));
            }
            batch.push(e.clone());
        }
        by_slot.entry(slot(&batch[0])).or_default().push(batch);
    }
    let mut out: Vec<Vec<Vec<Value>>> = by_slot.into_values().collect();
    for slot in &mut out {
        rng.shuffle(slot);
    }
    out
}

/// The awslogs event of one stream's batch.
fn awslogs_event(batch: &[Value]) -> Vec<u8> {
    let msg = subscription_messages(batch, usize::MAX).remove(0);
    json!({"awslogs": {"data": b64(&gzip(msg.to_string().as_bytes()))}})
        .to_string()
        .into_bytes()
}

/// A collector on its own, as deployed: a warm cache of the streams'
/// lines it saw, and a lookback that reads a stream's earlier events where
/// the cache cannot say (a stream new to it, or a batch ending an
/// invocation whose start another collector got); its cross-stream state
/// is the table.
fn collector(events: &[Value], config: &Config, db: &Client) -> Handler {
    let source = Memory::of(
        events
            .iter()
            .map(|e| (e["logStream"].as_str().unwrap().to_owned(), e)),
    );
    let lookback = Lookback::new(LookbackLimits::default(), true, Some(Box::new(source)));
    let state = SharedState::new(
        Table::with_client(db.clone(), TABLE),
        config.clone(),
        StateLimits::default(),
    );
    Handler::new(
        Limits::default(),
        config.clone(),
        Origin::default(),
        lookback,
    )
    .with_shared_state(state)
}

/// The cross-stream incidents a collector reports for one batch.
async fn deliver(handler: &Handler, batch: &[Value]) -> Vec<Incident> {
    let processed = handler
        .process(&awslogs_event(batch), &mut std::io::sink())
        .await
        .unwrap();
    processed
        .collected
        .incidents
        .into_iter()
        .filter(cross_stream)
        .collect()
}

/// Each collector takes its share of the batches, in order, all four at
/// once; every incident they report.
async fn deliver_at_once(
    collectors: &[Arc<Handler>],
    shares: Vec<Vec<Vec<Value>>>,
) -> Vec<Incident> {
    let mut running = tokio::task::JoinSet::new();
    for (handler, share) in collectors.iter().zip(shares) {
        let handler = Arc::clone(handler);
        running.spawn(async move {
            let mut found = Vec::new();
            for batch in share {
                found.extend(deliver(&handler, &batch).await);
            }
            found
        });
    }
    let mut found = Vec::new();
    while let Some(done) = running.join_next().await {
        found.extend(done.unwrap());
    }
    found
}

/// The union of what was reported: per incident, its largest report (a
/// duplicate is reported again with each attempt).
fn union(reported: &[Incident]) -> Vec<Incident> {
    let mut by_identity: BTreeMap<String, &Incident> = BTreeMap::new();
    for i in reported {
        let s = Settlement::of(i).unwrap();
        let held = by_identity.entry(s.identity).or_insert(i);
        if Settlement::of(held).unwrap().size < s.size {
            *held = i;
        }
    }
    sorted(by_identity.into_values().cloned().collect())
}

/// A START of another function two stall windows after the recording's
/// end: the newest event, which closes every window.
fn closing_batch(events: &[Value], config: &Config) -> Vec<Value> {
    let end = events
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .max()
        .unwrap();
    let at = end + 2 * config.connect_stall_window_ms + 1;
    vec![json!({
        "id": format!("{at:020}0000000000000000000000000000000000000"),
        "timestamp": at,
        "message": "START RequestId: 00000000-0000-4000-8000-00000000c10c Version: $LATEST",
        "logGroup": "/aws/lambda/thawtrace-clock",
        "logStream": "2026/11/28/[$LATEST]00000000000000000000000000000c10",
    })]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_collectors_in_any_split_report_what_one_scan_finds() {
    let (events, config) = network();
    let want = whole(&events, &config);
    let kinds: BTreeSet<FindingKind> = want.iter().map(Incident::kind).collect();
    assert_eq!(
        kinds,
        [FindingKind::ConnectStall, FindingKind::DuplicateInvocation].into(),
        "the recording holds both cross-stream kinds: {want:#?}"
    );
    for seed in [1, 2, 3, 5, 8] {
        let (_moto, port) = moto_atomic();
        let db = client(port);
        common::moto::create_state_table(&db, TABLE).await;
        let collectors: Vec<Arc<Handler>> = (0..COLLECTORS)
            .map(|_| Arc::new(collector(&events, &config, &db)))
            .collect();
        let mut rng = Rng(seed);
        let mut reported = Vec::new();
        let mut delivered = Vec::new();
        for slot in slots(&events, config.connect_stall_window_ms, &mut rng) {
            let mut shares = vec![Vec::new(); COLLECTORS];
            for batch in slot {
                delivered.push(batch.clone());
                shares[rng.below(COLLECTORS)].push(batch);
            }
            reported.extend(deliver_at_once(&collectors, shares).await);
        }
        let last = &collectors[rng.below(COLLECTORS)];
        reported.extend(deliver(last, &closing_batch(&events, &config)).await);

        assert_eq!(union(&reported), want, "seed {seed}");
        // Once each: a stall once, a duplicate once per attempt count.
        let mut seen = HashSet::new();
        for i in &reported {
            let s = Settlement::of(i).unwrap();
            assert!(
                seen.insert((s.identity.clone(), s.size)),
                "seed {seed}: {} reported twice with {}",
                s.identity,
                s.size
            );
        }

        // A batch holding an incident's event, delivered again to any
        // collector: that incident again, the same one, and nothing else;
        // the table unchanged.
        let before = table_items(&db).await;
        let again: Vec<&Vec<Value>> = delivered
            .iter()
            .filter(|b| {
                b.iter().any(|e| {
                    want.iter()
                        .any(|i| i.evidence.iter().any(|id| e["id"] == **id))
                })
            })
            .collect();
        let batch = again[rng.below(again.len())];
        let holding: Vec<Incident> = want
            .iter()
            .filter(|i| {
                batch
                    .iter()
                    .any(|e| i.evidence.iter().any(|id| e["id"] == **id))
            })
            .cloned()
            .collect();
        let redelivered = deliver(&collectors[rng.below(COLLECTORS)], batch).await;
        assert_eq!(sorted(redelivered), holding, "seed {seed}");
        assert_eq!(table_items(&db).await, before, "seed {seed}");
    }
}

/// DynamoDB out of reach (nothing listens on its port): the batch is not
/// settled, so it is delivered again: an awslogs event fails the
/// invocation; a Kinesis event names every record it read in its partial
/// batch response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_state_cannot_take_is_delivered_again() {
    let (events, config) = network();
    let port = common::moto::free_port();
    let db = client(port);
    let handler = collector(&events, &config, &db);
    let stream: Vec<Value> = {
        let (group, name) = &streams_of(&events)[0];
        events
            .iter()
            .filter(|e| e["logGroup"] == group.as_str() && e["logStream"] == name.as_str())
            .cloned()
            .collect()
    };
    let failed = handler
        .process(&awslogs_event(&stream), &mut std::io::sink())
        .await
        .err()
        .expect("an awslogs event fails");
    assert!(failed.to_string().contains("DynamoDB PutItem"), "{failed}");

    let records: Vec<Value> = subscription_messages(&stream, 5)
        .iter()
        .enumerate()
        .map(|(n, m)| {
            json!({"kinesis": {"data": b64(&gzip(m.to_string().as_bytes())), "partitionKey": "k", "sequenceNumber": format!("4960{n}"), "approximateArrivalTimestamp": 1795853233.137}})
        })
        .collect();
    let event = json!({"Records": records}).to_string();
    let processed = handler
        .process(event.as_bytes(), &mut std::io::sink())
        .await
        .unwrap();
    let (mut retry, mut read) = (processed.retry.clone(), processed.read.clone());
    retry.sort();
    read.sort();
    assert_eq!(retry, read, "every record read is retried");
    assert_eq!(retry.len(), records.len());
}
