//! Properties of each input layer (payload shapes, gzip members, JSON
//! lines, base64): no panic on any input, no well-formed record lost next
//! to a bad one, the limits hold.

mod common;

use common::{b64, gzip};
use proptest::prelude::*;
use serde_json::json;
use thawtrace::input::{Budget, Limits, decode_data, read_text, unwrap_payloads};
use thawtrace_analyzers::Batch;

/// A subscription message of `n` events, with fixed timestamps.
fn message(stream: usize, n: usize) -> String {
    let events: Vec<_> = (0..n)
        .map(|i| json!({"id": format!("{stream:04}{i:016}"), "timestamp": 1_795_853_230_000i64 + i as i64, "message": format!("line {i}")}))
        .collect();
    json!({"messageType": "DATA_MESSAGE", "logGroup": "/aws/lambda/f", "logStream": format!("s{stream}"), "logEvents": events}).to_string()
}

/// A unit of a file of payloads: good ones say how many events they hold.
#[derive(Clone, Debug)]
enum Unit {
    Awslogs(usize),
    Kinesis(Vec<Option<usize>>),
    Truncated,
    BadBase64,
    NotGzip,
    Prose,
}

fn unit() -> impl Strategy<Value = Unit> {
    prop_oneof![
        3 => (1usize..5).prop_map(Unit::Awslogs),
        2 => proptest::collection::vec(proptest::option::weighted(0.7, 1usize..4), 1..4).prop_map(Unit::Kinesis),
        1 => Just(Unit::Truncated),
        1 => Just(Unit::BadBase64),
        1 => Just(Unit::NotGzip),
        1 => Just(Unit::Prose),
    ]
}

impl Unit {
    /// The line, and the events a well-formed reader keeps from it.
    fn render(&self, k: usize) -> (String, usize) {
        let awslogs =
            |n| json!({"awslogs": {"data": b64(&gzip(message(k, n).as_bytes()))}}).to_string();
        match self {
            Unit::Awslogs(n) => (awslogs(*n), *n),
            Unit::Kinesis(records) => {
                let mut kept = 0;
                let records: Vec<_> = records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match r {
                        Some(n) => {
                            kept += n;
                            json!({"kinesis": {"data": b64(&gzip(message(k * 100 + i, *n).as_bytes()))}})
                        }
                        None => json!({"kinesis": {"data": "%%%"}}),
                    })
                    .collect();
                (json!({"Records": records}).to_string(), kept)
            }
            Unit::Truncated => {
                let line = awslogs(2);
                (line[..line.len() / 2].to_owned(), 0)
            }
            Unit::BadBase64 => (r#"{"awslogs":{"data":"not*base64"}}"#.to_owned(), 0),
            Unit::NotGzip => (json!({"awslogs": {"data": b64(b"plain")}}).to_string(), 0),
            Unit::Prose => ("this line is no JSON".to_owned(), 0),
        }
    }
}

fn read_all(texts: &[String]) -> u64 {
    let mut batch = Batch::default();
    texts
        .iter()
        .map(|t| {
            read_text("prop", t, &Limits::default(), &mut batch)
                .map(|s| s.events)
                .unwrap_or(0)
        })
        .sum()
}

fn budget(limit: usize) -> Budget {
    Budget::for_input(
        &Limits {
            max_decompressed_bytes: limit,
            ..Limits::default()
        },
        0,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Payload shapes: every well-formed payload of a file of payloads is
    /// read, whatever bad ones lie beside it.
    #[test]
    fn payloads_beside_bad_ones_are_kept(units in proptest::collection::vec(unit(), 1..8), final_newline in any::<bool>()) {
        prop_assume!(units.iter().any(|u| matches!(u, Unit::Awslogs(_) | Unit::Kinesis(_))));
        let rendered: Vec<(String, usize)> = units.iter().enumerate().map(|(k, u)| u.render(k)).collect();
        let mut text = rendered.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join("\n");
        if final_newline {
            text.push('\n');
        }
        let want: usize = rendered.iter().map(|(_, n)| n).sum();
        let mut budget = budget(64 << 20);
        let Some(unwrapped) = unwrap_payloads(&text, &mut budget).unwrap() else {
            // A file whose first line is prose is not a file of payloads.
            prop_assert!(matches!(units[0], Unit::Prose));
            return Ok(());
        };
        prop_assert_eq!(read_all(&unwrapped.texts), want as u64);
        prop_assert_eq!(unwrapped.texts.len(), unwrapped.places.len());
    }

    /// The decompression limit holds for the file, every payload together.
    #[test]
    fn the_limit_holds_for_all_payloads_together(sizes in proptest::collection::vec(1usize..40, 1..10), limit_kib in 1usize..200) {
        let text: String = sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                let mut m = message(k, 1).into_bytes();
                m.extend(std::iter::repeat_n(b' ', n << 10));
                json!({"awslogs": {"data": b64(&gzip(&m))}}).to_string() + "\n"
            })
            .collect();
        let limit = limit_kib << 10;
        let mut budget = budget(limit);
        match unwrap_payloads(&text, &mut budget) {
            Ok(Some(u)) => prop_assert!(u.texts.iter().map(String::len).sum::<usize>() <= limit),
            Ok(None) => prop_assert!(false, "a file of payloads"),
            Err(e) => prop_assert!(e.is_over_limit(), "{}", e),
        }
    }

    /// Gzip members: a text split into any members, each gzipped and
    /// concatenated, reads back whole (the fast path or the streaming one).
    #[test]
    fn every_gzip_member_is_read(lines in proptest::collection::vec(0usize..1000, 1..60), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5), twice in any::<bool>()) {
        let text: String = lines.iter().map(|i| format!("{{\"timestamp\":1795853230000,\"message\":\"m{i}\"}}\n")).collect();
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(text.len() + 1)).collect();
        at.push(0);
        at.push(text.len());
        at.sort_unstable();
        let mut gz: Vec<u8> = at.windows(2).flat_map(|w| gzip(&text.as_bytes()[w[0]..w[1]])).collect();
        let mut want = text.clone();
        if twice {
            gz.extend_from_slice(&gz.clone());
            want.push_str(&text);
        }
        let mut out = Vec::new();
        budget(64 << 20).gunzip(&gz, &mut out).unwrap();
        prop_assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    /// Gzip under a limit: never more than the limit, never a panic on a
    /// cut or corrupted stream.
    #[test]
    fn gunzip_holds_its_limit(len in 0usize..100_000, limit in 0usize..120_000, cut in any::<prop::sample::Index>(), flip in proptest::option::of((any::<prop::sample::Index>(), 1u8..255))) {
        let data = vec![b'x'; len];
        let mut gz = gzip(&data);
        let end = if flip.is_none() { gz.len() } else { cut.index(gz.len() + 1) };
        gz.truncate(end.max(gz.len().min(2)));
        if let Some((i, x)) = flip {
            let n = gz.len();
            if n > 0 { gz[i.index(n)] ^= x; }
        }
        let mut out = Vec::new();
        let limits = Limits { max_decompressed_bytes: limit, ..Limits::default() };
        let mut b = Budget::for_input(&limits, 0);
        match b.gunzip(&gz, &mut out) {
            Ok(()) => prop_assert!(out.len() <= limit),
            Err(e) => prop_assert!(!e.is_over_limit() || len > limit || flip.is_some(), "{}", e),
        }
    }

    /// JSON lines: each line its own unit; the good ones all read.
    #[test]
    fn json_lines_keep_every_good_line(lines in proptest::collection::vec(prop_oneof![
        4 => (0u32..1000).prop_map(|i| (format!("{{\"timestamp\":{},\"message\":\"m{i}\",\"logStream\":\"s\"}}", 1_795_853_230_000u64 + u64::from(i)), true)),
        1 => "[^\n]{0,40}".prop_map(|s| (format!("{{{s}"), false)),
        1 => Just(("{\"timestamp\":\"never\",\"message\":\"x\"}".to_owned(), false)),
        1 => Just(("{\"timestamp\":1,\"message\":\"x\"}{\"timestamp\":2".to_owned(), false)),
    ], 1..40)) {
        prop_assume!(lines.iter().filter(|(_, good)| *good).count() > 1);
        let text: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
        let mut batch = Batch::default();
        let stats = read_text("prop", &text, &Limits::default(), &mut batch).unwrap();
        let good = lines.iter().filter(|(_, g)| *g).count() as u64;
        prop_assert_eq!(stats.events, good);
        prop_assert_eq!(stats.malformed, lines.len() as u64 - good);
    }

    /// Base64: wrapped at any width with any line ends, it decodes the same.
    #[test]
    fn wrapped_base64_decodes(n in 1usize..30, width in 1usize..120, crlf in any::<bool>()) {
        let m = message(0, n);
        let data = b64(&gzip(m.as_bytes()));
        let end = if crlf { "\r\n" } else { "\n" };
        let wrapped: String = data.as_bytes().chunks(width).map(|c| String::from_utf8_lossy(c).into_owned() + end).collect();
        prop_assert_eq!(decode_data(&wrapped, &mut budget(64 << 20)).unwrap(), m);
    }

    /// Base64: anything at all is decoded or refused, never a panic.
    #[test]
    fn any_base64_is_decoded_or_refused(s in "[A-Za-z0-9+/= \n\r\t%]{0,200}") {
        let _ = decode_data(&s, &mut budget(1 << 20));
        let _ = unwrap_payloads(&s, &mut budget(1 << 20));
    }
}
