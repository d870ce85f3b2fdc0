//! Hostile and careless input (issue 14): every limit holds per file and
//! for the run, and nothing is lost silently. Each test builds its input
//! from the recorded fixture or from fixed timestamps.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Runs the binary, killed after `limit` (a loop that never ends fails
/// the test instead of hanging it); `address_space_mb` runs it under
/// `prlimit --as`, so a scan that balloons fails to allocate.
fn run(args: &[&str], limit: Duration, address_space_mb: Option<u64>) -> Output {
    let exe = env!("CARGO_BIN_EXE_thawtrace");
    let mut cmd = match address_space_mb {
        Some(mb) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--as={}", mb << 20)).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "thawtrace {args:?} still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn scan(args: &[&str]) -> Output {
    run(args, Duration::from_secs(60), None)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The summary line (stdout with `--format text`).
fn summary(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(out);
    text.lines()
        .find(|l| l.contains(" events in "))
        .unwrap_or_else(|| panic!("no summary line in {text}"))
        .to_owned()
}

fn events_in_summary(out: &Output) -> u64 {
    let line = summary(out);
    line.trim_start_matches("thawtrace: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{line}"))
}

/// A subscription message of `n` events with fixed timestamps.
fn message(stream: &str, first_id: usize, n: usize) -> Value {
    let events: Vec<Value> = (first_id..first_id + n)
        .map(|i| json!({"id": format!("{i:020}"), "timestamp": 1_795_853_230_000i64 + i as i64, "message": format!("line {i}")}))
        .collect();
    json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/lambda/f", "logStream": stream, "subscriptionFilters": ["t"], "logEvents": events})
}

fn awslogs(text: &[u8]) -> String {
    json!({"awslogs": {"data": b64(&gzip(text))}}).to_string()
}

fn fixture_lines() -> String {
    std::fs::read_to_string(fixtures()[0].join("events.jsonl")).unwrap()
}

// 1. Limits per file and per run; a payload inside a payload is not opened.

#[test]
fn nested_payloads_are_not_opened_and_memory_stays_bounded() {
    // Innermost: a subscription message padded to 20 MiB (about 20 KiB
    // gzipped); each level wraps 40 copies of the level below, so the
    // file is a few tens of KiB and would decode to about 32 GiB.
    let mut inner = message("s", 0, 1).to_string().into_bytes();
    inner.extend(std::iter::repeat_n(b' ', 20 << 20));
    let level2 = awslogs(&inner).repeat(40);
    let level1 = awslogs(level2.as_bytes()).repeat(40);
    let file = awslogs(level1.as_bytes());
    assert!(file.len() < 100 << 10, "{}", file.len());
    let dir = tmp_dir("hostile-nested");
    let path = dir.path().join("nested.json");
    std::fs::write(&path, &file).unwrap();
    let out = run(
        &["scan", path.to_str().unwrap()],
        Duration::from_secs(60),
        Some(512),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nested.json"), "{err}");
    assert!(err.contains("payload inside a payload"), "{err}");
    assert!(!err.contains("memory allocation"), "{err}");
}

#[test]
fn the_decompression_limit_holds_per_file_and_the_total_per_run() {
    // Ten payloads of 6 MiB each: each under the per-payload limit, 60 MiB
    // together.
    let dir = tmp_dir("hostile-budget");
    let mut lines = String::new();
    for i in 0..10 {
        let mut m = message(&format!("s{i}"), i * 10, 10)
            .to_string()
            .into_bytes();
        m.extend(std::iter::repeat_n(b' ', 6 << 20));
        lines.push_str(&awslogs(&m));
        lines.push('\n');
    }
    let path = dir.path().join("many-payloads.jsonl");
    std::fs::write(&path, &lines).unwrap();
    let p = path.to_str().unwrap();

    let out = scan(&["scan", "--max-decompressed-mb", "32", p]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("many-payloads.jsonl"), "{err}");
    assert!(err.contains("--max-decompressed-mb"), "{err}");

    let out = scan(&["scan", "--max-decompressed-mb", "64", p]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(events_in_summary(&out), 100);

    // Two such files: each within its own limit, over the run's total.
    let copy = dir.path().join("copy.jsonl");
    std::fs::write(&copy, &lines).unwrap();
    let out = scan(&["scan", "--max-total-mb", "100", p, copy.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("copy.jsonl"), "{err}");
    assert!(err.contains("--max-total-mb"), "{err}");
}

#[test]
fn plain_input_and_stdin_are_capped_while_read() {
    let dir = tmp_dir("hostile-plain");
    let mut big = fixture_lines();
    while big.len() < 3 << 20 {
        big.push_str(&big.clone());
    }
    let path = dir.path().join("big.jsonl");
    std::fs::write(&path, &big).unwrap();
    let out = scan(&["scan", "--max-total-mb", "2", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("big.jsonl") && err.contains("--max-total-mb"),
        "{err}"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_thawtrace"))
        .args(["scan", "--max-total-mb", "2", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The reader may stop early: a broken pipe here is the point.
        let _ = stdin.write_all(big.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("stdin") && err.contains("--max-total-mb"),
        "{err}"
    );
}

// 2. Every gzip member is read.

#[test]
fn every_gzip_member_is_read_even_when_the_first_is_as_long_as_the_last() {
    // Lines of one length, split in two halves of one size: the first
    // member's size equals the size the last member's trailer states.
    let lines: Vec<String> = (0..1000)
        .map(|i| {
            json!({"id": format!("{i:08}"), "timestamp": 1_795_853_230_000i64 + i, "message": format!("event {i:06}"), "logStream": "s", "logGroup": "/aws/lambda/f"}).to_string() + "\n"
        })
        .collect();
    assert!(lines.iter().all(|l| l.len() == lines[0].len()));
    let (a, b) = lines.split_at(500);
    let mut gz = gzip(a.concat().as_bytes());
    gz.extend(gzip(b.concat().as_bytes()));
    let dir = tmp_dir("hostile-members");
    let path = dir.path().join("two-members.jsonl.gz");
    std::fs::write(&path, &gz).unwrap();
    let out = scan(&["scan", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(events_in_summary(&out), 1000, "{}", summary(&out));
}

// 6. Symlink loops.

#[cfg(unix)]
#[test]
fn directory_symlinks_are_not_followed_unless_asked_and_loops_are_reported_once() {
    let dir = tmp_dir("hostile-links");
    std::fs::write(
        dir.path().join("a.jsonl"),
        json!({"timestamp": 1_795_853_230_000i64, "message": "hello", "logStream": "s"})
            .to_string(),
    )
    .unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("self")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("again")).unwrap();
    let d = dir.path().to_str().unwrap();

    let out = run(&["scan", d], Duration::from_secs(30), None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(events_in_summary(&out), 1, "{}", summary(&out));

    let out = run(&["scan", "--follow", d], Duration::from_secs(30), None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(events_in_summary(&out), 1, "{}", summary(&out));
    for link in ["self", "again"] {
        assert_eq!(
            err.lines()
                .filter(|l| l.contains(&format!("/{link}: ")) && l.contains("loop"))
                .count(),
            1,
            "{err}"
        );
    }
}

// 7. One bad line of a JSON-lines file of awslogs events.

#[test]
fn one_bad_line_of_awslogs_events_is_counted_and_the_rest_kept() {
    let good =
        |stream: &str, first: usize| awslogs(message(stream, first, 3).to_string().as_bytes());
    let truncated = good("t", 100);
    let truncated = &truncated[..truncated.len() / 2];
    let lines = [
        good("a", 0),
        truncated.to_owned(),
        r#"{"awslogs":{"data":"not base64!"}}"#.to_owned(),
        // Two objects on one line: a file without a final newline, catted.
        format!("{}{}", good("b", 10), good("c", 20)),
        good("d", 30),
    ];
    let dir = tmp_dir("hostile-lines");
    let path = dir.path().join("awslogs.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = scan(&["scan", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(events_in_summary(&out), 12, "{}", summary(&out));
    assert!(err.contains("2 malformed"), "{err}");
    assert!(err.contains("awslogs.jsonl: line 2:"), "{err}");
    assert!(
        err.contains("awslogs.jsonl: line 3:") && err.contains("base64"),
        "{err}"
    );
}

// 8. Pipes.

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success());
}

#[cfg(unix)]
#[test]
fn a_pipe_named_on_the_command_line_is_read_and_one_inside_a_directory_is_reported() {
    let dir = tmp_dir("hostile-fifo");
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    let text = fixture_lines();
    let n = text.lines().count() as u64;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (fifo, done) = (fifo.clone(), done.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let _ = f.write_all(text.as_bytes());
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let out = scan(&["scan", fifo.to_str().unwrap()]);
    if !done.load(std::sync::atomic::Ordering::SeqCst) {
        // The scan did not open the pipe: open it here so the writer ends.
        let _ = std::io::copy(
            &mut std::fs::File::open(&fifo).unwrap(),
            &mut std::io::sink(),
        );
    }
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(events_in_summary(&out), n);

    std::fs::copy(
        fixtures()[0].join("events.jsonl"),
        dir.path().join("events.jsonl"),
    )
    .unwrap();
    let out = scan(&["scan", dir.path().to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(events_in_summary(&out), n);
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("pipe") && l.contains("skipped"))
            .count(),
        1,
        "{err}"
    );
}

// 10. Duplicates.

#[test]
fn duplicate_events_are_counted_once_and_reported() {
    let fixture = fixtures()[0].join("events.jsonl");
    let once = scan(&["scan", fixture.to_str().unwrap()]);
    let n = events_in_summary(&once);
    let f = fixture.to_str().unwrap();
    let twice = scan(&["scan", f, f]);
    let err = stderr(&twice);
    assert_eq!(twice.status.code(), Some(0), "{err}");
    let line = summary(&twice);
    assert_eq!(events_in_summary(&twice), n, "{line}");
    assert!(line.contains(&format!("{n} duplicate")), "{line}");
    assert!(!line.contains("whose ping is not in the input"), "{line}");
    let once = String::from_utf8_lossy(&once.stdout).replace(&summary(&once), "");
    let twice = String::from_utf8_lossy(&twice.stdout).replace(&line, "");
    assert_eq!(once, twice);
}

// 11. The bounds of the cross-stream analysis.

#[test]
fn signals_past_the_tracking_limits_are_counted_in_the_summary() {
    // One request ID started 70 times over two environments (a retry loop
    // gone wild): 64 attempts are kept, enough for any real retry count;
    // the 6 starts past them are said, not lost silently.
    let dir = tempfile::tempdir().unwrap();
    let request_id = "5d1a0000-0000-4000-8000-000000000001";
    let lines: String = (0..70i64)
        .map(|i| {
            let e = json!({"id": format!("{i:020}"), "timestamp": 1_795_853_230_000 + i * 1_000, "logGroup": "/aws/lambda/f", "logStream": format!("s{}", i % 2), "message": format!("START RequestId: {request_id} Version: $LATEST")});
            format!("{e}\n")
        })
        .collect();
    let input = dir.path().join("retries.jsonl");
    std::fs::write(&input, lines).unwrap();
    let input = input.to_str().unwrap();
    let said = "6 invocation starts, connect timeouts or idempotency keys past the tracking limits ignored";

    let json = scan(&["scan", "--format", "json", input]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let line = summary(&json);
    assert!(line.contains(said), "{line}");
    let incidents: Vec<Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["kind"], "duplicate_invocation");
    assert_eq!(incidents[0]["attempts"], 64);

    let text = scan(&["scan", input]);
    assert!(summary(&text).contains(said), "{}", summary(&text));
    let html = scan(&["scan", "--format", "html", input]);
    let page = String::from_utf8_lossy(&html.stdout);
    assert!(
        page.contains(r#""dropped_signals":6"#),
        "the page's summary"
    );

    // Without the retry loop, nothing is said.
    let quiet = scan(&["scan", fixtures()[0].join("events.jsonl").to_str().unwrap()]);
    assert!(!summary(&quiet).contains("tracking limits"));
}

// 12. Smaller ones.

#[test]
fn timestamps_in_seconds_micro_or_nanoseconds_are_read_as_such() {
    let dir = tmp_dir("hostile-units");
    let fixture = fixtures()[0].join("events.jsonl");
    let want = keys(&scan_json(&[&fixture]));
    assert!(!want.is_empty());
    for (unit, scale) in [("us", 1_000i64), ("ns", 1_000_000)] {
        let text: String = fixture_lines()
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v["timestamp"] = json!(v["timestamp"].as_i64().unwrap() * scale);
                v.to_string() + "\n"
            })
            .collect();
        let path = dir.path().join(format!("{unit}.jsonl"));
        std::fs::write(&path, text).unwrap();
        assert_eq!(keys(&scan_json(&[&path])), want, "{unit}");
    }
    // Seconds lose the milliseconds, so findings may move; the times read
    // must still be the recording's, in 2026, not in January 1970.
    let text: String = fixture_lines()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["timestamp"] = json!(v["timestamp"].as_i64().unwrap() as f64 / 1000.0);
            v.to_string() + "\n"
        })
        .collect();
    let path = dir.path().join("s.jsonl");
    std::fs::write(&path, text).unwrap();
    let found = scan_json(&[&path]);
    assert!(!found.is_empty());
    for f in &found {
        let at = f["timeout_at"]
            .as_str()
            .or(f["at"].as_str())
            .unwrap_or("2026");
        assert!(at.starts_with("2026"), "{f}");
    }
}

#[test]
fn limits_out_of_range_are_refused_by_the_option_parser() {
    let fixture = fixtures()[0].join("events.jsonl");
    for (flag, value) in [
        ("--max-decompressed-mb", "17592186044416"),
        ("--max-decompressed-mb", "0"),
        ("--max-event-kb", "18446744073709551615"),
        ("--max-total-mb", "17592186044416"),
    ] {
        let out = scan(&["scan", flag, value, fixture.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn base64_wrapped_at_76_columns_is_accepted() {
    let data = b64(&gzip(message("s", 0, 5).to_string().as_bytes()));
    let wrapped: String = data
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned() + "\n")
        .collect();
    let dir = tmp_dir("hostile-mime");
    let bare = dir.path().join("bare.b64");
    std::fs::write(&bare, &wrapped).unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, json!({"awslogs": {"data": wrapped}}).to_string()).unwrap();
    for path in [bare, event] {
        let out = scan(&["scan", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{path:?}: {}", stderr(&out));
        assert_eq!(events_in_summary(&out), 5);
    }
}

#[test]
fn a_file_of_nul_bytes_is_refused_from_its_start() {
    // 4 GiB of NUL bytes, sparse: reading it whole would need 4 GiB.
    let dir = tmp_dir("hostile-nul");
    let path = dir.path().join("zeros.bin");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let out = run(
        &["scan", path.to_str().unwrap()],
        Duration::from_secs(60),
        Some(512),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("zeros.bin") && err.contains("binary"), "{err}");
}

#[test]
fn problems_name_their_line_and_record() {
    // Two pretty-printed subscription messages, each with a bad event 1,
    // and a Kinesis event with two undecodable records.
    let dir = tmp_dir("hostile-where");
    let ok = |id: &str| json!({"id": id, "timestamp": 1_795_853_230_000i64, "message": "hello"});
    let msg = |s: &str| {
        serde_json::to_string_pretty(&json!({"messageType": "DATA_MESSAGE", "logGroup": "/aws/lambda/f", "logStream": s, "logEvents": [ok("1"), {"id": "2"}, ok("3")]})).unwrap()
    };
    let path = dir.path().join("pretty.json");
    std::fs::write(&path, format!("{}\n{}\n", msg("a"), msg("b"))).unwrap();
    let out = scan(&["scan", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("no usable timestamp"))
        .collect();
    assert_eq!(problems.len(), 2, "{err}");
    assert_ne!(problems[0], problems[1], "each names its message: {err}");
    assert!(problems.iter().all(|p| p.contains("line ")), "{err}");
}
