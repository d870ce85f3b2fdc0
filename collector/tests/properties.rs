//! No panic on any input; findings do not depend on batching or order.

use proptest::prelude::*;
use thawtrace::input::{Limits, read_text};
use thawtrace_analyzers::parse::{RawText, parse_line};
use thawtrace_analyzers::{Batch, Config, Finding};

const LINES: &[&str] = &[
    "START RequestId: aaaaaaaa-0000-4000-8000-000000000001 Version: $LATEST",
    "END RequestId: aaaaaaaa-0000-4000-8000-000000000001",
    "REPORT RequestId: aaaaaaaa-0000-4000-8000-000000000001\tDuration: 1.00 ms",
    "START RequestId: bbbbbbbb-0000-4000-8000-000000000002 Version: $LATEST",
    "END RequestId: bbbbbbbb-0000-4000-8000-000000000002",
    "2026-11-28T08:00:04.000Z\taaaaaaaa-0000-4000-8000-000000000001\tERROR\tD 2026-11-28T08:00:04.000Z | v1.14.7 8 | keepalive | (1) 10.0.0.1:443 Sending ping with timeout 1000ms",
    "2026-11-28T08:00:04.000Z\taaaaaaaa-0000-4000-8000-000000000001\tERROR\tD 2026-11-28T08:00:04.000Z | v1.14.7 8 | keepalive | (1) 10.0.0.1:443 Ping timeout passed without response",
    "2026-11-28T08:00:04.000Z\tbbbbbbbb-0000-4000-8000-000000000002\tERROR\tD 2026-11-28T08:00:04.000Z | v1.14.7 8 | keepalive | (1) 10.0.0.1:443 Received ping response",
    "2026-11-28T08:00:04.000Z\tbbbbbbbb-0000-4000-8000-000000000002\tERROR\techo failed: 14 UNAVAILABLE: Connection dropped",
    "I1128 08:07:43.150213    2483 writing.cc:144] CLIENT[0x7f]: Ping 7 sent [ipv4:10.0.0.1:443]: x",
    "I1128 08:07:43.272972    2483 frame_ping.cc:96] CLIENT[0x7f]: received ping ack 7",
    "I1128 08:08:24.724498    2751 chttp2_transport.cc:2072] ipv4:10.0.0.1:443: Ping timeout. Closing transport.",
    "I1206 00:34:32.753136   30804 writing.cc:792] CLIENT[0x7f]: Set ping timeout timer of 1000ms for ping id 7",
    "I1206 00:34:32.629762   30801 connectivity_state.cc:150] ConnectivityStateTracker client_transport[0x80]: READY -> SHUTDOWN (close_transport, OK)",
    "{\"time\":\"x\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"cccccccc-0000-4000-8000-000000000003\"}}",
    "hello world",
    "2026-11-28T10:24:16.896Z\taaaaaaaa-0000-4000-8000-000000000001\tERROR\techo call 0 failed: 14 14 UNAVAILABLE: No connection established. Last error: Error: connect ETIMEDOUT 127.0.0.1:37299. Resolution note: ",
    "[ERROR] ReadTimeoutError: Read timeout on endpoint URL: \"http://127.0.0.1:39339/slow-8000?list-type=2\"\rTraceback (most recent call last):",
    "{\"timestamp\": \"2026-11-28T10:25:16.318Z\", \"level\": \"ERROR\", \"errorMessage\": \"Connect timeout on endpoint URL: \\\"http://localhost:37299/x\\\"\"}",
    "[INFO]\t2026-11-28T10:25:04.517Z\tbbbbbbbb-0000-4000-8000-000000000002\tevent {\"Records\": [{\"messageId\": \"ff04f3f5-6ed3\"}]}",
];

proptest! {
    #[test]
    fn parsers_never_panic(s in any::<String>(), want in any::<bool>()) {
        let _ = parse_line(RawText::Plain(&s), want);
        let _ = parse_line(RawText::JsonEscaped(&s), want);
    }

    #[test]
    fn parsers_never_panic_near_real_lines(i in 0..LINES.len(), cut in 0usize..200, junk in "[\\PC\\\\\t]{0,12}") {
        let line = LINES[i];
        let mut at = cut.min(line.len());
        while !line.is_char_boundary(at) { at -= 1; }
        let s = format!("{}{}", &line[..at], junk);
        let _ = parse_line(RawText::Plain(&s), true);
        let _ = parse_line(RawText::JsonEscaped(&s), true);
    }

    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let mut batch = Batch::default();
        let _ = thawtrace::input::unwrap_payloads(&text, &mut thawtrace::input::Budget::for_input(&Limits::default(), 0));
        let _ = read_text("fuzz", &text, &Limits::default(), &mut batch);
        let mut out: Vec<Finding> = Vec::new();
        batch.analyze(&Config::default(), &mut out);
    }

    #[test]
    fn correlating_any_line_sequence_never_panics(seq in proptest::collection::vec((0..LINES.len(), 0i64..10_000), 0..60)) {
        let ids: Vec<String> = (0..seq.len()).map(|i| i.to_string()).collect();
        let mut batch = Batch::default();
        let mut ts = 0;
        for (n, &(i, dt)) in seq.iter().enumerate() {
            ts += dt;
            batch.push("g", "s", ids[n].as_str(), ts, RawText::Plain(LINES[i]));
        }
        let mut out: Vec<Finding> = Vec::new();
        batch.analyze(&Config::default(), &mut out);
    }

    #[test]
    fn arrival_order_does_not_change_findings(seq in proptest::collection::vec((0..LINES.len(), 0i64..3_000), 0..40), seed in any::<u64>()) {
        let ids: Vec<String> = (0..seq.len()).map(|i| format!("{i:06}")).collect();
        let mut ts = 0;
        let events: Vec<(usize, i64)> = seq.iter().map(|&(i, dt)| { ts += dt; (i, ts) }).collect();
        let run = |order: &[usize]| {
            let mut batch = Batch::default();
            for &n in order {
                let (i, ts) = events[n];
                batch.push("g", "s", ids[n].as_str(), ts, RawText::Plain(LINES[i]));
            }
            let mut out: Vec<Finding> = Vec::new();
            batch.analyze(&Config::default(), &mut out);
            out
        };
        let forward: Vec<usize> = (0..events.len()).collect();
        let mut shuffled = forward.clone();
        let mut x = seed | 1;
        for k in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(k, (x % (k as u64 + 1)) as usize);
        }
        prop_assert_eq!(run(&forward), run(&shuffled));
    }
}
