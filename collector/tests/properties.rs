//! No panic on any input; findings and the neighbouring failures
//! (incidents) rest on events of the input and do not depend on the order
//! the events arrive in.

use std::collections::HashSet;

use proptest::prelude::*;
use thawtrace::input::{Limits, read_text};
use thawtrace_analyzers::parse::{RawText, parse_line};
use thawtrace_analyzers::{Batch, Collected, Config, Finding, FindingKind, Incident};

const LINES: &[&str] = &[
    "2026-12-07 00:17:31  DEBUG NettyClientHandler - [id: 0x19905019, L:/127.0.0.1:39358 - R:/127.0.0.1:40887] OUTBOUND PING: ack=false bytes=1111",
    "2026-12-07 00:17:40 ebf81a51-271b-43a6-bf70-a0614a406265 ERROR Function - echo call 0 failed: UNAVAILABLE: Keepalive failed. The connection is likely gone",
    r#"{"timestamp":"2026-12-07T00:17:31.408Z","level":"DEBUG","message":"[id: 0x1b73c761, L:/127.0.0.1:39554 - R:/127.0.0.1:34643] OUTBOUND PING: ack=false bytes=1111","logger":"io.grpc.netty.NettyClientHandler"}"#,
    r#"{"timestamp":"2026-12-07T00:17:32.414Z","level":"ERROR","message":"echo call 0 failed","logger":"Function","errorType":"io.grpc.StatusRuntimeException","errorMessage":"UNAVAILABLE: Keepalive failed. The connection is likely gone","AWSRequestId":"19f9bb4d-6e3d-49f0-b470-c0b71d6472c4"}"#,
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

/// The streams the generated events are spread over (one function).
const STREAMS: [&str; 3] = ["s0", "s1", "s2"];

/// Thresholds the generated sequences (seconds apart, at most a few
/// minutes long) can reach: a NAT idle timeout of 5 s, a connect stall of
/// two environments.
fn config() -> Config {
    Config {
        nat_idle_timeout_ms: 5_000,
        connect_stall_min_envs: 2,
        ..Config::default()
    }
}

/// `events` (stream, line of [`LINES`], time) with IDs by position,
/// pushed in `order` and analysed as one batch.
fn analyze(events: &[(usize, usize, i64)], order: &[usize]) -> (Vec<Finding>, Vec<Incident>) {
    let ids: Vec<String> = (0..events.len()).map(|n| format!("{n:06}")).collect();
    let mut batch = Batch::default();
    for &n in order {
        let (stream, line, ts) = events[n];
        batch.push(
            "g",
            STREAMS[stream],
            ids[n].as_str(),
            ts,
            RawText::Plain(LINES[line]),
        );
    }
    let mut out = Collected::default();
    batch.analyze(&config(), &mut out);
    (out.findings, out.incidents)
}

/// Generated events: stream, line, and time (each a gap after the last).
fn sequence(max: usize) -> impl Strategy<Value = Vec<(usize, usize, i64)>> {
    proptest::collection::vec((0..STREAMS.len(), 0..LINES.len(), 0i64..10_000), 0..max).prop_map(
        |seq| {
            let mut ts = 0;
            seq.into_iter()
                .map(|(stream, line, dt)| {
                    ts += dt;
                    (stream, line, ts)
                })
                .collect()
        },
    )
}

/// What every finding and incident must hold: evidence that is events of
/// the input, of the streams it names, and a time span in order.
fn assert_rests_on_input(
    events: &[(usize, usize, i64)],
    findings: &[Finding],
    incidents: &[Incident],
) -> Result<(), TestCaseError> {
    let stream_of = |id: &str| {
        id.parse::<usize>()
            .ok()
            .and_then(|n| events.get(n))
            .map(|e| STREAMS[e.0])
    };
    for f in findings {
        for id in &f.evidence {
            prop_assert_eq!(
                stream_of(id),
                Some(f.log_stream.as_str()),
                "finding evidence {} of {:?}",
                id,
                f
            );
        }
        prop_assert!(f.ping_at_ms <= f.timeout_at_ms, "{:?}", f);
    }
    for i in incidents {
        prop_assert!(!i.evidence.is_empty(), "{:?}", i);
        let streams: HashSet<&str> = i.log_streams.iter().map(String::as_str).collect();
        prop_assert!(streams.contains(i.log_stream.as_str()), "{:?}", i);
        for id in &i.evidence {
            let stream = stream_of(id);
            prop_assert!(
                stream.is_some_and(|s| streams.contains(s)),
                "incident evidence {} of {:?}",
                id,
                i
            );
        }
        prop_assert!(i.first_at_ms <= i.last_at_ms, "{:?}", i);
        prop_assert_eq!(&i.log_group, "g");
    }
    Ok(())
}

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

    /// A grpc-java record behind any date-first layout prefix reads as the
    /// bare record does.
    #[test]
    fn a_java_record_reads_the_same_behind_a_layout(
        prefix in "[A-Za-z0-9 .:,\\[\\]{}-]{0,40}",
        i in 0..4usize,
    ) {
        let record = [
            "[id: 0x19905019, L:/127.0.0.1:39358 - R:/127.0.0.1:40887] OUTBOUND PING: ack=false bytes=1111",
            "[id: 0x19905019, L:/127.0.0.1:39358 - R:/127.0.0.1:40887] INBOUND PING: ack=true bytes=1111",
            "[id: 0x19905019, L:/127.0.0.1:39358 - R:/127.0.0.1:40887] OUTBOUND GO_AWAY: lastStreamId=0 errorCode=0 length=0 bytes=",
            "[NettyClientTransport<4>: (localhost/127.0.0.1:44505)] WaitUntilActive started",
        ][i];
        let line = format!("2026-12-07 00:17:31 {prefix} {record}");
        prop_assert_eq!(
            parse_line(RawText::Plain(&line), true).kind,
            parse_line(RawText::Plain(record), true).kind
        );
    }

    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let mut batch = Batch::default();
        let _ = thawtrace::input::unwrap_payloads(&text, &mut thawtrace::input::Budget::for_input(&Limits::default(), 0));
        let _ = read_text("fuzz", &text, &Limits::default(), &mut batch);
        let mut out = Collected::default();
        batch.analyze(&config(), &mut out);
    }

    #[test]
    fn findings_and_incidents_rest_on_events_of_the_input(events in sequence(60)) {
        let order: Vec<usize> = (0..events.len()).collect();
        let (findings, incidents) = analyze(&events, &order);
        assert_rests_on_input(&events, &findings, &incidents)?;
    }

    #[test]
    fn arrival_order_does_not_change_findings_or_incidents(events in sequence(40), seed in any::<u64>()) {
        let forward: Vec<usize> = (0..events.len()).collect();
        let mut shuffled = forward.clone();
        let mut x = seed | 1;
        for k in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(k, (x % (k as u64 + 1)) as usize);
        }
        prop_assert_eq!(analyze(&events, &forward), analyze(&events, &shuffled));
    }
}

/// The properties above are about something: the lines and thresholds
/// they draw from make each neighbouring kind.
#[test]
fn the_generated_lines_can_make_every_neighbouring_kind() {
    let line = |text: &str| LINES.iter().position(|l| l.contains(text)).unwrap();
    let start = line("START RequestId: aaaaaaaa");
    let dropped = line("Connection dropped");
    let etimedout = line("connect ETIMEDOUT");
    let events = [
        // s0: an invocation silent for 10 s, then a reset: NAT idle.
        (0, start, 0),
        (0, dropped, 10_000),
        // Connect timeouts in s0 and s1 a second apart: a stall.
        (0, etimedout, 20_000),
        // s1: the same request ID started again: a retry.
        (1, start, 20_500),
        (1, etimedout, 21_000),
    ];
    let order: Vec<usize> = (0..events.len()).collect();
    let (findings, incidents) = analyze(&events, &order);
    let kinds: HashSet<FindingKind> = incidents.iter().map(|i| i.kind()).collect();
    for kind in [
        FindingKind::NatIdleReset,
        FindingKind::ConnectStall,
        FindingKind::DuplicateInvocation,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} in {incidents:#?}");
    }
    assert_rests_on_input(&events, &findings, &incidents).unwrap();
}
