//! Where the output goes can fail: a reader that went away (`| head -1`,
//! `| true`) ends the run quietly, as ripgrep does; a full disk is an
//! error, exit 2, said on stderr. Either way the problems with the inputs
//! are still reported and still make the exit code 2. Never a panic.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// Runs `thawtrace` with `args`, `stdin` fed to it, and its stdout a pipe
/// whose read end is closed before anything is fed: every write the child
/// makes meets a reader that went away.
fn with_stdout_closed(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_thawtrace"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut input = child.stdin.take().unwrap();
    // The child may already have given up on stdin; that is its business.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs `thawtrace` with `args` and its stdout on /dev/full, where every
/// write fails with ENOSPC.
fn with_stdout_full(args: &[&str]) -> Output {
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    Command::new(env!("CARGO_BIN_EXE_thawtrace"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_no_panic(out: &Output) {
    assert_ne!(out.status.code(), Some(101), "{}", stderr(out));
    assert!(!stderr(out).contains("panicked"), "{}", stderr(out));
}

/// A file of log events none of which is a finding.
fn no_findings(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("quiet.jsonl");
    std::fs::write(
        &path,
        "{\"timestamp\": 1795853579923, \"message\": \"hello\", \"logStream\": \"s\", \"logGroup\": \"/aws/lambda/f\"}\n",
    )
    .unwrap();
    path
}

#[test]
fn a_full_disk_is_an_error_in_every_format() {
    for args in [
        vec!["demo"],
        vec!["demo", "--format", "json"],
        vec!["demo", "--format", "html"],
    ] {
        let out = with_stdout_full(&args);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("thawtrace: cannot write output: ")
                && err.to_lowercase().contains("no space left"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_full_disk_with_no_findings_is_an_error_too() {
    // Only the summary line goes to stdout here.
    let dir = tempfile::tempdir().unwrap();
    let quiet = no_findings(dir.path());
    let out = with_stdout_full(&["scan", quiet.to_str().unwrap()]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write output"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_reader_that_went_away_ends_the_run_quietly() {
    let events = std::fs::read(fixtures()[0].join("events.jsonl")).unwrap();
    for format in ["text", "json", "html"] {
        let out = with_stdout_closed(&["scan", "--format", format, "-"], &events);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("cannot write output"),
            "a broken pipe is not an error: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_reader_that_went_away_before_the_summary_is_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = std::fs::read(no_findings(dir.path())).unwrap();
    let out = with_stdout_closed(&["scan", "-"], &quiet);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn inputs_that_failed_are_reported_whatever_became_of_the_output() {
    let events = std::fs::read(fixtures()[0].join("events.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let missing = missing.to_str().unwrap();

    let out = with_stdout_closed(&["scan", "-", missing], &events);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(missing), "{}", stderr(&out));

    let out = with_stdout_full(&[
        "scan",
        fixtures()[0].join("events.jsonl").to_str().unwrap(),
        missing,
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(missing), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write output"),
        "{}",
        stderr(&out)
    );
}
