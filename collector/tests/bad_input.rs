//! Bad input: a clear error naming the file and the reason, exit 2, and
//! nothing already parsed lost.

mod common;

use common::*;
use serde_json::json;

fn expect_unusable(name: &str, data: &[u8], reason: &str) {
    let dir = tmp_dir("bad");
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    let out = thawtrace(&["scan", "--format", "json", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert!(
        stderr.contains(name),
        "{name}: the message names the file: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains(reason),
        "{name}: expected reason {reason:?} in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unusable_files_exit_2_naming_file_and_reason() {
    let message = json!({"messageType": "DATA_MESSAGE", "logGroup": "/aws/lambda/f", "logStream": "s", "logEvents": [{"id": "1", "timestamp": 1, "message": "hello"}]}).to_string();
    let gz = gzip(message.as_bytes());
    let truncated = &gz[..gz.len() / 2];
    expect_unusable(
        "truncated.json",
        json!({"awslogs": {"data": b64(truncated)}})
            .to_string()
            .as_bytes(),
        "gzip",
    );
    expect_unusable("truncated.gz", truncated, "gzip");
    expect_unusable(
        "badbase64.json",
        br#"{"awslogs":{"data":"not base64 at all!!"}}"#,
        "base64",
    );
    expect_unusable(
        "notjson.txt",
        b"this is not json, it is prose.\n",
        "not json",
    );
    expect_unusable(
        "wrongshape.json",
        br#"{"hello": "world", "count": 3}"#,
        "wrong shape",
    );
    expect_unusable(
        "junk.bin",
        &(0..4096u32)
            .map(|i| (i * 7919 % 256) as u8)
            .collect::<Vec<u8>>(),
        "binary",
    );
    expect_unusable("empty.json", b"", "empty");
    let mut huge = b"{\"timestamp\":1,\"message\":\"".to_vec();
    huge.resize(50 << 20, b'a');
    huge.extend_from_slice(b"\"}\n");
    expect_unusable("hugeline.jsonl", &huge, "limit");
}

#[test]
fn gzip_bombs_are_refused() {
    let bomb = gzip(&vec![b' '; 80 << 20]);
    expect_unusable("bomb.json.gz", &bomb, "gzip bomb");
}

#[test]
fn malformed_lines_are_counted_and_skipped_and_findings_kept() {
    let fixture = &fixtures()[0];
    let want = keys(&scan_json(&[&fixture.join("events.jsonl")]));
    let text = std::fs::read_to_string(fixture.join("events.jsonl")).unwrap();
    let mut mixed = String::new();
    for (i, line) in text.lines().enumerate() {
        mixed.push_str(line);
        mixed.push('\n');
        if i % 100 == 0 {
            mixed.push_str("{this is not json\n");
            mixed.push_str("{\"timestamp\": \"never\", \"message\": \"x\"}\n");
        }
    }
    let n_bad = 2 * text.lines().count().div_ceil(100);
    let dir = tmp_dir("bad");
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(&path, mixed).unwrap();
    let out = thawtrace(&["scan", "--format", "json", path.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{n_bad} malformed")), "{stderr}");
    assert!(stderr.contains("line 2: not JSON"), "{stderr}");
    let found: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(keys(&found), want);
}

#[test]
fn a_bad_file_does_not_hide_the_findings_of_good_ones() {
    let fixture = &fixtures()[0];
    let dir = tmp_dir("bad");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"{]").unwrap();
    let good = fixture.join("events.jsonl");
    let out = thawtrace(&[
        "scan",
        "--format",
        "json",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !out.stdout.is_empty(),
        "findings of the good file are still printed"
    );
}

#[test]
fn a_bad_event_in_a_subscription_message_is_counted_and_the_rest_read() {
    // Read in one pass when well formed; one event that does not parse
    // sends the message to the tolerant path, which names it.
    let dir = tmp_dir("bad");
    let ok = |id: &str| json!({"id": id, "timestamp": 1_795_853_230_000i64, "message": "hello"});
    for (name, bad, reason) in [
        (
            "no-timestamp.json",
            json!({"id": "2", "message": "x"}),
            "event 1: no usable timestamp",
        ),
        ("not-an-object.json", json!(42), "event 1: not a log event"),
    ] {
        let message = json!({"messageType": "DATA_MESSAGE", "logGroup": "/aws/lambda/f", "logStream": "s", "logEvents": [ok("1"), bad, ok("3")]});
        let path = dir.path().join(name);
        std::fs::write(&path, message.to_string()).unwrap();
        let out = thawtrace(&["scan", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        assert!(stderr.contains(reason), "{name}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("2 events in 1 log streams"),
            "{name}: {stdout}"
        );
    }
}
