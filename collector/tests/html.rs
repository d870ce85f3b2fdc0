//! The HTML report in headless Chromium: the page draws its timelines with
//! its own script, and every finding of every kind that `scan --format
//! json` reports for the recorded fixtures must be on the page after that
//! script ran, as a mark at its time on its function's time axis in each
//! environment it is about; and painted: the screenshot shows the marks in
//! their colours over the invocation bars. With `THAWTRACE_SCREENSHOTS=dir`
//! the screenshots are written there (the README's are `docs/`).

mod common;

use std::io::Read;
use std::process::Command;

use common::*;
use serde_json::Value;
use thawtrace_analyzers::time::parse_rfc3339;

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
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
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
            "mark freeze finding"
        } else {
            "mark genuine finding"
        };
        let needle = format!(
            r#"data-ping-event="{}" data-timeout-event="{}""#,
            t["ping_event_id"].as_str().unwrap(),
            t["timeout_event_id"].as_str().unwrap()
        );
        let at = dom
            .find(&needle)
            .unwrap_or_else(|| panic!("not drawn: {needle}"));
        let tag = &dom[dom[..at].rfind("<g ").unwrap()..at];
        assert!(tag.contains(&format!(r#"class="{class}""#)), "{tag}");
        drawn += 1;
    }
    assert!(drawn > 0);
    // Streams without findings stay closed and undrawn until opened.
    let with_findings: Vec<&str> = truth
        .iter()
        .map(|t| t["log_stream"].as_str().unwrap())
        .collect();
    for env in &environments(fixture) {
        let stream = env["log_stream"].as_str().unwrap();
        let open = dom.contains(&format!(r#"<details data-stream="{stream}" open="">"#));
        assert_eq!(open, with_findings.contains(&stream), "{stream}");
    }

    let png = screenshot(&url, dir, "report.png");
    let (width, height, pixels) = decode_png(&png);
    assert_eq!((width, height), (1400, 1000), "the window asked for");
    // The first three environments fill the window, open, each with
    // freeze and genuine timeouts: bars for the invocations, arrows and
    // dots in the colour of their kind (about 79,000, 2,300 and 570
    // pixels). A page whose script or style failed paints none of them.
    let near = |want: [u8; 3]| {
        pixels
            .iter()
            .filter(|p| p.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= 8))
            .count()
    };
    for (what, colour, at_least) in [
        ("invocations", INVOCATION_ON_WHITE, 20_000),
        ("freeze timeouts", FREEZE, 1_000),
        ("genuine timeouts", GENUINE, 200),
    ] {
        let painted = near(colour);
        assert!(
            painted >= at_least,
            "{what}: {painted} pixels of their colour, {at_least} expected"
        );
    }
}

/// A screenshot of the page at `url` as a 1400×1000 window shows it,
/// scrolled to its functions: written to `$THAWTRACE_SCREENSHOTS/name`
/// when that is set (the README's, `docs/`), else under `dir`.
fn screenshot(url: &str, dir: &std::path::Path, name: &str) -> Vec<u8> {
    let shot = match std::env::var_os("THAWTRACE_SCREENSHOTS") {
        Some(to) => {
            std::fs::create_dir_all(&to).unwrap();
            std::path::PathBuf::from(to).join(name)
        }
        None => dir.join(name),
    };
    let _ = std::fs::remove_file(&shot);
    let _ = headless(
        &[
            "--window-size=1400,1000",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
            url,
        ],
        &dir.join(format!("profile-{name}")),
    );
    std::fs::read(&shot).expect("no screenshot")
}

/// `--freeze` of the page's style (#c0392b).
const FREEZE: [u8; 3] = [0xc0, 0x39, 0x2b];
/// `--genuine` (#d68910).
const GENUINE: [u8; 3] = [0xd6, 0x89, 0x10];
/// `--inv` (#2e86c1) at the invocation bars' opacity of .75, on white.
const INVOCATION_ON_WHITE: [u8; 3] = [98, 164, 209];

/// The pixels of a PNG as Chromium writes its screenshots (8-bit RGB or
/// RGBA, not interlaced): width, height, and each pixel's RGB, row by row.
fn decode_png(png: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be32 = |b: &[u8]| u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
    let (mut width, mut height, mut channels) = (0, 0, 0);
    let mut compressed = Vec::new();
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = be32(&png[at..]);
        let data = &png[at + 8..at + 8 + len];
        match &png[at + 4..at + 8] {
            b"IHDR" => {
                (width, height) = (be32(data), be32(&data[4..]));
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("PNG colour type {other}"),
                };
                assert_eq!(data[12], 0, "interlaced");
            }
            b"IDAT" => compressed.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1), "PNG data size");
    // Each row is filtered against the pixel to its left (a), the one
    // above (b) and the one above-left (c): undo it.
    let mut above = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(width * height);
    for row in raw.chunks(stride + 1) {
        let mut line = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { line[i - channels] } else { 0 };
            let b = above[i];
            let c = if i >= channels {
                above[i - channels]
            } else {
                0
            };
            line[i] = row[1 + i].wrapping_add(match row[0] {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("PNG filter {other}"),
            });
        }
        pixels.extend(line.chunks(channels).map(|p| [p[0], p[1], p[2]]));
        above = line;
    }
    (width, height, pixels)
}

#[test]
fn every_recorded_neighbouring_failure_is_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
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
            dom.matches(&format!(r#"<tr class="incident" data-kind="{kind}""#))
                .count(),
            want,
            "{kind}"
        );
    }
    assert!(
        dom.contains("ErrorPortAllocation"),
        "the stall's advice is shown"
    );
}

/// The page `scan --format html` writes for `events` (JSON lines), and the
/// document Chromium holds once the page's script ran.
fn rendered(events: &[Value], name: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = thawtrace(&["scan", "--format", "html", input.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = String::from_utf8(out.stdout).unwrap();
    (page.clone(), dom_of(&page, dir.path()))
}

/// The document Chromium holds once `page`'s script ran.
fn dom_of(page: &str, dir: &std::path::Path) -> String {
    let file = dir.join("report.html");
    std::fs::write(&file, page).unwrap();
    let dom = headless(
        &["--dump-dom", &format!("file://{}", file.display())],
        &dir.join("profile"),
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// Every freeze or genuine timeout of `truth` in `streams` is drawn.
fn assert_drawn(dom: &str, truth: &[Value], streams: &[&str]) {
    let mut drawn = 0;
    for t in truth
        .iter()
        .filter(|t| streams.contains(&t["log_stream"].as_str().unwrap()))
    {
        let needle = format!(
            r#"data-ping-event="{}" data-timeout-event="{}""#,
            t["ping_event_id"].as_str().unwrap(),
            t["timeout_event_id"].as_str().unwrap()
        );
        assert!(dom.contains(&needle), "not drawn: {needle}");
        drawn += 1;
    }
    assert!(drawn > 0, "nothing to check in {streams:?}");
}

/// The recorded fixture with its streams renamed by `rename`.
fn renamed(rename: impl Fn(usize, &str) -> String) -> (Vec<Value>, Vec<Value>) {
    let fixture = &fixtures()[0];
    let mut names: Vec<String> = Vec::new();
    let mut events = events(fixture);
    for e in &mut events {
        let stream = e["logStream"].as_str().unwrap().to_owned();
        let n = match names.iter().position(|s| *s == stream) {
            Some(n) => n,
            None => {
                names.push(stream.clone());
                names.len() - 1
            }
        };
        e["logStream"] = rename(n, &stream).into();
    }
    let mut truth = truth(fixture);
    for t in &mut truth {
        let stream = t["log_stream"].as_str().unwrap();
        let n = names.iter().position(|s| s == stream).unwrap();
        t["log_stream"] = rename(n, stream).into();
    }
    (events, truth)
}

#[test]
fn hostile_stream_names_are_shown_as_text() {
    // Each is a valid CloudWatch log stream name; each once ended the data
    // block early, or sent the HTML parser into a state that ate the page.
    const NAMES: [&str; 7] = [
        "<!--<script>",
        "</script><b>bold</b>",
        "x]]><![CDATA[",
        "a\u{2028}b\u{2029}c",
        "&amp; &lt;",
        "\"'`${1}",
        "ordinary",
    ];
    let (events, truth) = renamed(|n, _| NAMES[n].to_owned());
    let (_, dom) = rendered(&events, "hostile names");
    assert_eq!(
        dom.matches("<details data-stream=").count(),
        NAMES.len(),
        "every environment is on the page:\n{}",
        &dom[..dom.len().min(3000)]
    );
    for name in [
        "&lt;!--&lt;script&gt;",
        "&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;",
        "&amp;amp; &amp;lt;",
    ] {
        assert!(dom.contains(name), "{name} is shown as text");
    }
    assert!(!dom.contains("<b>bold</b>"), "the name is not markup");
    assert_drawn(&dom, &truth, &NAMES);
}

#[test]
fn a_timestamp_beyond_javascripts_dates_does_not_stop_the_page() {
    // JavaScript's Date ends 8.64e15 ms from the epoch; logs' timestamps
    // do not. Move one environment with findings past it.
    let fixture = &fixtures()[0];
    let truth = truth(fixture);
    let far = truth[0]["log_stream"].as_str().unwrap();
    let mut events = events(fixture);
    for e in &mut events {
        if e["logStream"] == far {
            e["timestamp"] = (e["timestamp"].as_i64().unwrap() + 9_000_000_000_000_000).into();
        }
    }
    let (_, dom) = rendered(&events, "far timestamps");
    let streams: Vec<&str> = truth
        .iter()
        .map(|t| t["log_stream"].as_str().unwrap())
        .collect();
    assert_drawn(&dom, &truth, &streams);
}

#[test]
fn an_environment_of_70k_invocations_is_drawn() {
    // Spread into Math.min's arguments, this many times overflowed the stack.
    let fixture = &fixtures()[0];
    let truth = truth(fixture);
    let busy = truth[0]["log_stream"].as_str().unwrap().to_owned();
    let mut events = events(fixture);
    let first = events
        .iter()
        .find(|e| e["logStream"] == busy.as_str())
        .unwrap()
        .clone();
    let start = first["timestamp"].as_i64().unwrap() - 10 * 70_000 - 1000;
    for n in 0..70_000i64 {
        let rid = format!("00000000-0000-4000-8000-{n:012}");
        for (k, message) in [
            format!("START RequestId: {rid} Version: $LATEST"),
            format!("END RequestId: {rid}"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut e = first.clone();
            e["id"] = format!("busy-{n}-{k}").into();
            e["timestamp"] = (start + n * 10 + k as i64 * 5).into();
            e["message"] = message.into();
            events.push(e);
        }
    }
    let (_, dom) = rendered(&events, "70k invocations");
    assert_drawn(&dom, &truth, &[busy.as_str()]);
    assert!(
        dom.matches(r#"data-request-id="00000000-0000-4000-8000-"#)
            .count()
            >= 70_000
    );
}

#[test]
fn an_environment_that_cannot_be_drawn_does_not_stop_the_others() {
    let fixture = &fixtures()[0];
    let dir = tempfile::tempdir().unwrap();
    let out = thawtrace(&[
        "scan",
        "--format",
        "html",
        fixture.join("events.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    // Spoil the first environment's data the way a bug in the page would
    // meet it: its invocations are missing.
    let open = r#"<script type="application/json" id="data">"#;
    let from = page.find(open).unwrap() + open.len();
    let to = from + page[from..].find("</script>").unwrap();
    let mut data: Value = serde_json::from_str(&page[from..to]).unwrap();
    let first = &mut data["functions"][0]["streams"][0];
    let spoiled = first["stream"].as_str().unwrap().to_owned();
    first["invocations"] = Value::Null;
    let json = data.to_string().replace('<', "\\u003c");
    let page = format!("{}{json}{}", &page[..from], &page[to..]);
    let dom = dom_of(&page, dir.path());

    let truth = truth(fixture);
    let others: Vec<&str> = truth
        .iter()
        .map(|t| t["log_stream"].as_str().unwrap())
        .filter(|s| *s != spoiled)
        .collect();
    assert_drawn(&dom, &truth, &others);
    assert_eq!(
        dom.matches("<details data-stream=").count(),
        environments(fixture).len(),
        "every environment is listed"
    );
    assert_eq!(
        dom.matches(r#"class="draw-error""#).count(),
        1,
        "the one that failed says so"
    );
}

/// The attributes of the start tag at the start of `tag` (`<name a="b" ...>`),
/// unescaped as Chromium serializes them.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let end = tag.find('>').unwrap_or(tag.len());
    let mut rest = &tag[..end];
    rest = rest.trim_start_matches('<');
    rest = rest.trim_start_matches(|c: char| !c.is_whitespace());
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return out;
        }
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_owned();
        rest = &rest[name_end..];
        if let Some(r) = rest.strip_prefix("=\"") {
            let close = r.find('"').expect("a quoted attribute ends");
            let value = r[..close]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&nbsp;", "\u{a0}")
                .replace("&amp;", "&");
            out.push((name, value));
            rest = &r[close + 1..];
        } else {
            out.push((name, String::new()));
        }
    }
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `dom` cut where each `start` occurs: the text from one to the next.
fn pieces<'a>(dom: &'a str, start: &str) -> Vec<&'a str> {
    let at: Vec<usize> = dom.match_indices(start).map(|(n, _)| n).collect();
    at.iter()
        .enumerate()
        .map(|(k, &n)| &dom[n..at.get(k + 1).copied().unwrap_or(dom.len())])
        .collect()
}

/// A mark on the page: its function (log group), environment (log
/// stream), kind and time, and whether it stands where its function's
/// axis puts that time.
#[derive(Debug)]
struct Mark {
    group: String,
    stream: String,
    kind: String,
    at: i64,
}

/// Every mark of `dom`, each checked to be drawn at its time on its
/// function's axis (`data-x` against the section's `data-t0`..`data-t1`
/// over the 1000 units of the axis).
fn marks(dom: &str) -> Vec<Mark> {
    let mut out = Vec::new();
    for section in pieces(dom, r#"<section class="function""#) {
        let s = attributes(section);
        let group = attr(&s, "data-group").expect("a function names its group");
        let t0: f64 = attr(&s, "data-t0").unwrap().parse().unwrap();
        let t1: f64 = attr(&s, "data-t1").unwrap().parse().unwrap();
        assert!(t0 < t1, "{group}: its axis");
        for details in pieces(section, "<details ") {
            let d = attributes(details);
            let stream = attr(&d, "data-stream").unwrap();
            for g in pieces(details, r#"<g class="mark "#) {
                let g = attributes(g);
                let kind = attr(&g, "data-kind").expect("a mark names its kind");
                let at: i64 = attr(&g, "data-at").unwrap().parse().unwrap();
                let x: f64 = attr(&g, "data-x").unwrap().parse().unwrap();
                let want = (at as f64 - t0) / (t1 - t0) * 1000.0;
                assert!(
                    (x - want).abs() < 0.02,
                    "{group} {stream} {kind} at {at}: drawn at x={x}, its axis puts it at {want}"
                );
                let label = attr(&g, "aria-label").unwrap_or("");
                assert!(
                    label.len() > 20,
                    "{kind} at {at}: a text equivalent ({label:?})"
                );
                out.push(Mark {
                    group: group.to_owned(),
                    stream: stream.to_owned(),
                    kind: kind.to_owned(),
                    at,
                });
            }
        }
    }
    out
}

/// The report of one fixture, as JSON (the scan's findings) and as the
/// document Chromium holds once the page's script ran.
fn scanned(fixture: &std::path::Path, dir: &std::path::Path) -> (Vec<Value>, String, String) {
    let input = fixture.join("events.jsonl");
    let extra = if fixture.join("scan-args.json").exists() {
        scan_args(fixture)
    } else {
        Vec::new()
    };
    let json = scan_json_with(&[&input], &extra);
    let mut args = vec!["scan", "--format", "html", input.to_str().unwrap()];
    args.extend(extra.iter().map(String::as_str));
    let out = thawtrace(&args);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    let dom = dom_of(&page, dir);
    (json, page, dom)
}

#[test]
fn every_finding_of_every_kind_is_marked_at_its_time_on_its_functions_axis() {
    let mut kinds_seen = std::collections::BTreeSet::new();
    for fixture in [
        network_fixture(),
        network_settings_fixture(),
        repo().join("tests/fixtures/recorded"),
        settings_fixture(),
        repo().join("tests/fixtures/recorded-nat-near"),
        modes_fixture(),
        connect_slow_fixture(),
    ] {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let (json, page, dom) = scanned(&fixture, tmp.path());
        assert!(!json.is_empty(), "{name}: findings to check");
        let marks = marks(&dom);
        // Each finding: one mark of its kind at its time in each
        // environment it is about, in its function's section.
        let mut want = 0;
        for f in &json {
            let kind = f["kind"].as_str().unwrap();
            kinds_seen.insert(kind.to_owned());
            let group = f["log_group"].as_str().unwrap();
            let (at, streams) = match f["log_streams"].as_array() {
                Some(streams) => (
                    f["first_at_ms"].as_i64().unwrap(),
                    streams.iter().map(|s| s.as_str().unwrap()).collect(),
                ),
                None => (
                    parse_rfc3339(f["timeout_at"].as_str().unwrap()).unwrap(),
                    vec![f["log_stream"].as_str().unwrap()],
                ),
            };
            for stream in streams {
                want += 1;
                assert!(
                    marks.iter().any(|m| m.group == group
                        && m.stream == stream
                        && m.kind == kind
                        && m.at == at),
                    "{name}: no {kind} mark at {at} in {group} {stream}"
                );
            }
        }
        assert_eq!(
            marks.len(),
            want,
            "{name}: one mark per finding and environment"
        );
        // Every environment with a finding is open; the page says what
        // was found, in its title too.
        for f in &json {
            let streams: Vec<&str> = match f["log_streams"].as_array() {
                Some(s) => s.iter().map(|s| s.as_str().unwrap()).collect(),
                None => vec![f["log_stream"].as_str().unwrap()],
            };
            for stream in streams {
                let open = format!(r#"<details data-stream="{stream}" open="">"#);
                assert!(dom.contains(&open), "{name}: {stream} is open");
            }
        }
        let title = &page[page.find("<title>").unwrap() + 7..page.find("</title>").unwrap()];
        assert!(title.starts_with("thawtrace: "), "{name}: {title}");
        let mut counts = std::collections::BTreeMap::new();
        for f in &json {
            *counts.entry(f["kind"].as_str().unwrap()).or_insert(0) += 1;
        }
        for (kind, n) in &counts {
            assert!(
                title.contains(&format!("{n} ")),
                "{name}: the title counts {kind}: {title}"
            );
        }
        if !counts.contains_key("keepalive_freeze_timeout") {
            assert!(!title.contains("keepalive freeze"), "{name}: {title}");
        }
        // No bare table: a section without findings says so.
        let keepalive = json.iter().any(|f| {
            f["kind"].as_str().unwrap().starts_with("keepalive_") && f.get("log_streams").is_none()
        });
        assert_eq!(
            dom.contains(r#"<table id="findings" hidden="">"#),
            !keepalive,
            "{name}: the keepalive table is hidden when empty"
        );
        assert_eq!(
            dom.contains(r#"<p class="none" id="findings-none">"#),
            !keepalive,
            "{name}: and says so"
        );
        for kind in thawtrace_kinds() {
            assert!(
                dom.contains(&format!(r#"data-legend="{kind}""#)),
                "{name}: the legend explains {kind}"
            );
        }
        if name == "recorded-network" {
            let png = screenshot(
                &format!("file://{}", tmp.path().join("report.html").display()),
                tmp.path(),
                "report-network.png",
            );
            let (_, _, pixels) = decode_png(&png);
            let near = |want: [u8; 3]| {
                pixels
                    .iter()
                    .filter(|p| p.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= 8))
                    .count()
            };
            let (bars, stall) = (near(INVOCATION_ON_WHITE), near(STALL_ON_WHITE));
            assert!(bars >= 2_000, "invocations painted: {bars} pixels");
            assert!(
                stall >= 2_000,
                "the connect stall's window painted: {stall} pixels"
            );
        }
    }
    for kind in thawtrace_kinds() {
        assert!(
            kinds_seen.contains(kind),
            "{kind}: no fixture gives it, so its mark is unchecked"
        );
    }
}

/// Every finding kind (analyzers/src/finding.rs).
fn thawtrace_kinds() -> Vec<&'static str> {
    thawtrace_analyzers::FindingKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect()
}

/// `--stall` (#873600) at the stall band's opacity of .28, on white.
const STALL_ON_WHITE: [u8; 3] = [221, 199, 184];

#[test]
fn zooming_and_panning_a_functions_axis_moves_every_mark_with_it() {
    let fixture = network_fixture();
    let tmp = tempfile::tempdir().unwrap();
    let (_, page, before) = scanned(&fixture, tmp.path());
    let first = attributes(pieces(&before, r#"<section class="function""#)[0]);
    let t = |a: &[(String, String)], n: &str| -> f64 { attr(a, n).unwrap().parse().unwrap() };
    let (t0, t1) = (t(&first, "data-t0"), t(&first, "data-t1"));
    // Keys as a person presses them on the first function's axis: zoom in
    // twice (+, =), then pan later (→); the page redraws on the next frame.
    let keys = r#"<script>
      var axis = document.querySelector("section.function svg.axis");
      ["+", "=", "ArrowRight"].forEach(function (k) {
        axis.dispatchEvent(new KeyboardEvent("keydown", {key: k, bubbles: true}));
      });
    </script></body>"#;
    let page = page.replacen("</body>", keys, 1);
    let file = tmp.path().join("zoomed.html");
    std::fs::write(&file, page).unwrap();
    let out = headless(
        &[
            "--virtual-time-budget=2000",
            "--dump-dom",
            &format!("file://{}", file.display()),
        ],
        &tmp.path().join("profile-zoom"),
    );
    let after = String::from_utf8_lossy(&out.stdout).into_owned();
    let zoomed = attributes(pieces(&after, r#"<section class="function""#)[0]);
    let (z0, z1) = (t(&zoomed, "data-t0"), t(&zoomed, "data-t1"));
    let span = t1 - t0;
    assert!(
        ((z1 - z0) - span / 4.0).abs() < 1.0,
        "zoomed in twice: {} ms of {span}",
        z1 - z0
    );
    let centre = (t0 + t1) / 2.0 + span / 4.0 * 0.1;
    assert!(
        ((z0 + z1) / 2.0 - centre).abs() < 1.0,
        "panned a tenth of the view later"
    );
    // Every mark, redrawn, still stands at its time on the zoomed axis
    // (marks() checks each against its section's data-t0..data-t1).
    assert_eq!(marks(&after).len(), marks(&before).len());

    // One axis for every function: the three functions that stalled
    // together share one view, zoomed from any of them.
    let linked = r#"<script>
      document.getElementById("link-axes").click();
      document.querySelectorAll("section.function svg.axis")[1]
        .dispatchEvent(new KeyboardEvent("keydown", {key: "+", bubbles: true}));
    </script></body>"#;
    let (_, page, _) = scanned(&fixture, tmp.path());
    std::fs::write(&file, page.replacen("</body>", linked, 1)).unwrap();
    let out = headless(
        &[
            "--virtual-time-budget=2000",
            "--dump-dom",
            &format!("file://{}", file.display()),
        ],
        &tmp.path().join("profile-linked"),
    );
    let after = String::from_utf8_lossy(&out.stdout).into_owned();
    let sections = pieces(&after, r#"<section class="function""#);
    let views: std::collections::BTreeSet<(String, String)> = sections
        .iter()
        .map(|s| {
            let a = attributes(s);
            (
                attr(&a, "data-t0").unwrap().to_owned(),
                attr(&a, "data-t1").unwrap().to_owned(),
            )
        })
        .collect();
    assert!(sections.len() > 3);
    assert_eq!(views.len(), 1, "one view for every function: {views:?}");
    let (z0, z1) = views.iter().next().unwrap();
    let (z0, z1): (f64, f64) = (z0.parse().unwrap(), z1.parse().unwrap());
    let (all0, all1) = pieces(&before, r#"<section class="function""#)
        .iter()
        .map(|s| {
            let a = attributes(s);
            (t(&a, "data-t0"), t(&a, "data-t1"))
        })
        .fold((f64::MAX, f64::MIN), |(a, b), (c, d)| (a.min(c), b.max(d)));
    assert!(
        ((z1 - z0) - (all1 - all0) / 2.0).abs() < 1.0,
        "half of the whole period: {} of {}",
        z1 - z0,
        all1 - all0
    );
    assert_eq!(marks(&after).len(), marks(&before).len());
}

#[test]
fn a_function_of_thousands_of_quiet_environments_lists_them_on_request() {
    // Beside the recorded fixture, one function of 5,000 environments
    // with one invocation each and nothing found: they are counted, and
    // listed 200 at a time when asked for, not made one by one at load.
    let fixture = &fixtures()[0];
    let mut events = events(fixture);
    let t = events[0]["timestamp"].as_i64().unwrap();
    for s in 0..5_000i64 {
        let rid = format!("{s:08x}-0000-4000-8000-000000000000");
        for (k, message) in [
            format!("START RequestId: {rid} Version: $LATEST"),
            format!("END RequestId: {rid}"),
        ]
        .into_iter()
        .enumerate()
        {
            events.push(serde_json::json!({
                "id": format!("quiet-{s}-{k}"),
                "timestamp": t + s + k as i64,
                "message": message,
                "logGroup": "/aws/lambda/quiet",
                "logStream": format!("2026/11/28/[$LATEST]{s:032x}"),
            }));
        }
    }
    let (_, dom) = rendered(&events, "5,000 quiet environments");
    assert!(
        dom.contains("5000 more environments without findings"),
        "they are counted"
    );
    assert!(dom.contains("No findings in this function's 5000 environments."));
    assert!(
        !dom.contains(
            r#"<details data-stream="2026/11/28/[$LATEST]00000000000000000000000000000000""#
        ),
        "and not made one by one"
    );
    let truth = truth(fixture);
    let streams: Vec<&str> = truth
        .iter()
        .map(|t| t["log_stream"].as_str().unwrap())
        .collect();
    assert_drawn(&dom, &truth, &streams);
}
