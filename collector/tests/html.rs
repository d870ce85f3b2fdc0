//! The HTML report in headless Chromium: the page draws its timelines with
//! its own script, and every recorded freeze timeout must be on the page
//! after that script ran, as an arrow from its ping to its timeout.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!("Chromium is needed for this test: bash tests/setup.sh installs Debian's chromium");
}

fn headless(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_recorded_freeze_timeout_is_drawn() {
    let dir = std::env::temp_dir().join(format!("thawtrace-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = &fixtures()[0];
    let out = thawtrace(&[
        "scan",
        "--format",
        "html",
        fixture.join("events.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let page = dir.join("report.html");
    std::fs::write(&page, &out.stdout).unwrap();
    let html = String::from_utf8(out.stdout).unwrap();
    for loads in ["src=", "href=", "<link", "@import", "url(http", "fetch("] {
        assert!(
            !html.contains(loads),
            "the page loads nothing from the network ({loads})"
        );
    }

    let url = format!("file://{}", page.display());
    let dom = headless(&["--dump-dom", &url], &dir.join("profile"));
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(
        dom.contains("<svg"),
        "the script drew nothing:\n{}",
        &dom[..dom.len().min(2000)]
    );

    let truth = truth(fixture);
    let mut drawn = 0;
    for t in &truth {
        let class = if t["kind"] == "keepalive_freeze_timeout" {
            "finding freeze"
        } else {
            "finding genuine"
        };
        let needle = format!(
            r#"class="{class}" data-ping-event="{}" data-timeout-event="{}""#,
            t["ping_event_id"].as_str().unwrap(),
            t["timeout_event_id"].as_str().unwrap()
        );
        assert!(dom.contains(&needle), "not drawn: {needle}");
        drawn += 1;
    }
    assert!(drawn > 0);
    // Streams without findings stay closed and undrawn until opened.
    let with_findings: Vec<&str> = truth
        .iter()
        .map(|t| t["log_stream"].as_str().unwrap())
        .collect();
    let envs: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("environments.json")).unwrap())
            .unwrap();
    for env in envs.as_array().unwrap() {
        let stream = env["log_stream"].as_str().unwrap();
        let open = dom.contains(&format!(r#"<details data-stream="{stream}" open="">"#));
        assert_eq!(open, with_findings.contains(&stream), "{stream}");
    }

    let shot = dir.join("report.png");
    let _ = headless(
        &[
            "--window-size=1400,1000",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
        &dir.join("profile2"),
    );
    assert!(
        std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) > 20_000,
        "no screenshot"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_recorded_neighbouring_failure_is_listed() {
    let dir = std::env::temp_dir().join(format!("thawtrace-html-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = network_fixture();
    let mut args = vec![
        "scan".to_owned(),
        "--format".into(),
        "html".into(),
        fixture.join("events.jsonl").display().to_string(),
    ];
    args.extend(scan_args(&fixture));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = thawtrace(&args);
    assert!(out.status.success());
    let page = dir.join("report.html");
    std::fs::write(&page, &out.stdout).unwrap();
    let dom = headless(
        &["--dump-dom", &format!("file://{}", page.display())],
        &dir.join("profile"),
    );
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let truth = truth(&fixture);
    let rows = dom.matches(r#"<tr class="incident""#).count();
    assert_eq!(rows, truth.len(), "one row per incident");
    for kind in ["nat_idle_reset", "connect_stall", "duplicate_invocation"] {
        let want = truth.iter().filter(|t| t["kind"] == kind).count();
        assert_eq!(
            dom.matches(&format!(r#"data-kind="{kind}""#)).count(),
            want,
            "{kind}"
        );
    }
    assert!(
        dom.contains("ErrorPortAllocation"),
        "the stall's advice is shown"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
