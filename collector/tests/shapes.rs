//! The same events in every shape AWS or the CLI hands them over give the
//! same findings.

mod common;

use common::*;
use serde_json::{Value, json};

fn write(dir: &std::path::Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn payloads_and_json_lines_give_identical_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    for dir in fixtures() {
        let events = events(&dir);
        let want = keys(&scan_json(&[&dir.join("events.jsonl")]));
        let messages = subscription_messages(&events, 37);

        // Lambda subscription events, one file each, in a directory.
        let lambda_dir = tmp.join(format!(
            "{}-awslogs",
            dir.file_name().unwrap().to_string_lossy()
        ));
        std::fs::create_dir_all(&lambda_dir).unwrap();
        for (i, m) in messages.iter().enumerate() {
            let data = b64(&gzip(m.to_string().as_bytes()));
            write(
                &lambda_dir,
                &format!("{i:04}.json"),
                json!({"awslogs": {"data": data}}).to_string().as_bytes(),
            );
        }
        assert_eq!(
            keys(&scan_json(&[&lambda_dir])),
            want,
            "awslogs events of {}",
            dir.display()
        );

        // Decoded subscription messages, concatenated, gzipped as a file.
        let concatenated: String = messages.iter().map(Value::to_string).collect();
        let gz = write(tmp, "concatenated.json.gz", &gzip(concatenated.as_bytes()));
        assert_eq!(
            keys(&scan_json(&[&gz])),
            want,
            "concatenated messages of {}",
            dir.display()
        );

        // A Kinesis event of subscription records.
        let records: Vec<Value> = messages
            .iter()
            .map(|m| json!({"kinesis": {"data": b64(&gzip(m.to_string().as_bytes()))}}))
            .collect();
        let kinesis = write(
            tmp,
            "kinesis.json",
            json!({"Records": records}).to_string().as_bytes(),
        );
        assert_eq!(
            keys(&scan_json(&[&kinesis])),
            want,
            "kinesis event of {}",
            dir.display()
        );

        // `aws logs filter-log-events` output, pretty-printed, one file per group.
        let mut groups: Vec<&str> = events
            .iter()
            .map(|e| e["logGroup"].as_str().unwrap())
            .collect();
        groups.sort();
        groups.dedup();
        let mut files = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let evs: Vec<Value> = events
                .iter()
                .filter(|e| e["logGroup"] == *g)
                .map(|e| json!({"logStreamName": e["logStream"], "timestamp": e["timestamp"], "message": e["message"], "ingestionTime": e["timestamp"], "eventId": e["id"]}))
                .collect();
            let out = json!({"events": evs, "searchedLogStreams": []});
            files.push(write(
                tmp,
                &format!("filter-{i}.json"),
                serde_json::to_string_pretty(&out).unwrap().as_bytes(),
            ));
        }
        let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
        let got = scan_json(&refs);
        assert_eq!(
            keys(&got),
            want,
            "filter-log-events output of {}",
            dir.display()
        );
    }
}

#[test]
fn events_in_any_order_give_the_same_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let dir = &fixtures()[0];
    let mut events = events(dir);
    let want = keys(&scan_json(&[&dir.join("events.jsonl")]));
    events.reverse();
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    let p = write(tmp, "reversed.jsonl", lines.as_bytes());
    assert_eq!(keys(&scan_json(&[&p])), want);
}
