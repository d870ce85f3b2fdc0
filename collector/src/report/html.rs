//! `scan --format html`: one self-contained page (no network, no CDN) with
//! a timeline per execution environment: invocations as bars, freezes as
//! gaps with their length, each keepalive ping and its timeout joined by an
//! arrow across the freeze, the failed call after it, and a table of the
//! findings with the fix. Streams with findings are expanded; the others
//! are drawn only when opened, so a log group of hundreds stays light.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use thawtrace_analyzers::time::rfc3339;
use thawtrace_analyzers::{Finding, FindingKind, InvocationWindow, Summary};

use super::advice;
use crate::export::Collected;
use crate::export::spans::function_name;

/// One execution environment's invocations and findings, gathered in one
/// pass over each: a log group of 100,000 streams is drawn in time linear
/// in its size, not by filtering everything once per stream.
#[derive(Default)]
struct Environment<'a> {
    invocations: Vec<&'a InvocationWindow>,
    findings: Vec<&'a Finding>,
}

impl Environment<'_> {
    /// Streams with freeze timeouts first, then other findings, then the rest.
    fn rank(&self) -> (bool, bool) {
        let freeze = self
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::KeepaliveFreezeTimeout);
        (!freeze, self.findings.is_empty())
    }
}

fn data(collected: &Collected, summary: &Summary) -> Value {
    let mut environments: BTreeMap<(&str, &str), Environment> = BTreeMap::new();
    for i in &collected.invocations {
        let key = (i.log_group.as_str(), i.log_stream.as_str());
        environments.entry(key).or_default().invocations.push(i);
    }
    for f in &collected.findings {
        let key = (f.log_group.as_str(), f.log_stream.as_str());
        environments.entry(key).or_default().findings.push(f);
    }
    let mut environments: Vec<_> = environments.into_iter().collect();
    environments.sort_by_key(|(_, env)| env.rank());
    let streams: Vec<Value> = environments
        .into_iter()
        .map(|((group, stream), env)| {
            let invocations: Vec<Value> = env
                .invocations
                .iter()
                .map(|i| json!({"request_id": i.request_id, "start": i.start_ms, "end": i.end_ms}))
                .collect();
            let findings: Vec<Value> = env
                .findings
                .iter()
                .map(|f| {
                    json!({
                        "kind": f.kind.as_str(),
                        "library": f.library.name(),
                        "connection": f.connection,
                        "ping_at": f.ping_at_ms, "timeout_at": f.timeout_at_ms,
                        "ping_iso": rfc3339(f.ping_at_ms), "timeout_iso": rfc3339(f.timeout_at_ms),
                        "ping_request_id": f.ping_request_id, "timeout_request_id": f.timeout_request_id,
                        "timeout_line_request_id": f.timeout_line_request_id,
                        "frozen_ms": f.frozen_ms,
                        "ping_event_id": f.ping_event_id, "timeout_event_id": f.timeout_event_id,
                        "failed_at": f.failed_call.as_ref().map(|c| c.at_ms),
                        "failed_code": f.failed_call.as_ref().map(|c| c.code),
                        "inferred": f.inferred_from.map(|i| i.describe()),
                        "advice": advice(f),
                    })
                })
                .collect();
            json!({"group": group, "function": function_name(group), "stream": stream, "invocations": invocations, "findings": findings})
        })
        .collect();
    let count = |k: FindingKind| collected.findings.iter().filter(|f| f.kind == k).count();
    let incidents: Vec<Value> = collected
        .incidents
        .iter()
        .map(|i| {
            let mut v = serde_json::to_value(i).expect("an incident always serializes");
            v["function"] = json!(function_name(&i.log_group));
            v["first_iso"] = json!(rfc3339(i.first_at_ms));
            v["last_iso"] = json!(rfc3339(i.last_at_ms));
            v["advice"] = json!(i.kind.advice());
            v
        })
        .collect();
    json!({
        "summary": {
            "streams": summary.streams, "events": summary.totals.lines, "invocations": summary.totals.invocations,
            "freeze": count(FindingKind::KeepaliveFreezeTimeout), "genuine": count(FindingKind::KeepaliveTimeout),
            "incidents": incidents.len(),
        },
        "streams": streams,
        "incidents": incidents,
    })
}

/// The page.
pub fn render(collected: &Collected, summary: &Summary) -> String {
    let data = script_safe(&data(collected, summary).to_string());
    PAGE.replace("/*DATA*/null", &data)
}

/// JSON that can stand in a `<script>` element whatever its strings hold.
/// There, `</script` ends the element, and `<!--` then `<script` sends the
/// HTML parser into a state where the real end tag no longer ends it:
/// either way the page loses its script and shows nothing. In JSON these
/// characters occur only inside strings, where `\u003c` means `<`, so
/// `<`, `>` and `&` are written that way; U+2028 and U+2029 too, which
/// older JavaScript did not accept raw in a string.
fn script_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>thawtrace report</title>
<style>
  :root { --freeze: #c0392b; --genuine: #d68910; --inv: #2e86c1; --ink: #1c2833; --muted: #7b8a8b; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 24px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 16px; margin: 20px 0 6px; }
  #advice li { margin: 4px 0; }
  .summary { color: var(--muted); margin-bottom: 16px; }
  table { border-collapse: collapse; width: 100%; margin-bottom: 24px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e5e8e8; vertical-align: top; }
  th { font-weight: 600; }
  td.kind-keepalive_freeze_timeout { color: var(--freeze); font-weight: 600; }
  td.kind-keepalive_timeout { color: var(--genuine); }
  code { font-size: 12px; }
  details { margin: 8px 0; border: 1px solid #e5e8e8; border-radius: 6px; padding: 4px 8px; }
  summary { cursor: pointer; }
  svg.timeline { width: 100%; height: 130px; display: block; margin: 6px 0; }
  .invocation { fill: var(--inv); opacity: .75; }
  .freeze-gap { stroke: #aab7b8; stroke-dasharray: 3 3; }
  .freeze-label { fill: var(--muted); font-size: 11px; }
  .ping { fill: #fff; stroke-width: 2; }
  .timeout { stroke: #fff; stroke-width: 1; }
  .arrow { fill: none; stroke-width: 2; }
  .freeze .ping, .freeze.arrow { stroke: var(--freeze); } .freeze .timeout { fill: var(--freeze); }
  .genuine .ping, .genuine.arrow { stroke: var(--genuine); } .genuine .timeout { fill: var(--genuine); }
  .failed { fill: #6c3483; }
  .axis { fill: var(--muted); font-size: 11px; }
  .advice { color: var(--muted); font-size: 12px; }
  .draw-error { color: var(--freeze); font-size: 12px; }
</style>
</head>
<body>
<h1>thawtrace: gRPC keepalive pings frozen in flight</h1>
<div class="summary" id="summary"></div>
<ul id="advice"></ul>
<h2>Execution environments</h2>
<div id="streams"></div>
<h2>Findings</h2>
<table id="findings"><thead><tr><th>kind</th><th>function / stream</th><th>ping sent in</th><th>timed out in</th><th>frozen</th><th>connection</th><th>failed call</th></tr></thead><tbody></tbody></table>
<h2>Neighbouring failures</h2>
<table id="incidents"><thead><tr><th>kind</th><th>function</th><th>when</th><th>what</th><th>invocations</th><th>fix</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="data">/*DATA*/null</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  function el(tag, attrs, parent, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, text, parent, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }
  function short(id) { return id ? id.slice(0, 8) : "(none)"; }
  function secs(ms) { return ms === null || ms === undefined ? "" : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s"; }
  // The time of day of an RFC 3339 string, to `n` characters (a year may
  // have more than four digits).
  function clock(iso, n) { var t = iso.indexOf("T"); return iso.slice(t + 1, t + 1 + n); }
  // The time of day of ms since the epoch; JavaScript's dates end
  // 8.64e15 ms either side of it, logs' timestamps do not.
  function clockOf(ms) {
    var d = new Date(ms);
    return isNaN(d.getTime()) ? "(beyond JavaScript's dates)" : clock(d.toISOString(), 8);
  }
  // One environment's part of the page failed: say so there, and go on.
  function failed(parent, e) {
    html("div", "This environment could not be drawn: " + e, parent, "draw-error");
  }

  var s = data.summary;
  document.getElementById("summary").textContent =
    s.events + " events, " + s.streams + " execution environments, " + s.invocations + " invocations: " +
    s.freeze + " freeze timeouts, " + s.genuine + " genuine keepalive timeouts, " + s.incidents + " neighbouring failures";

  var ibody = document.querySelector("#incidents tbody");
  if (!data.incidents.length) html("td", "none", html("tr", null, ibody));
  data.incidents.forEach(function (i) {
    var tr = html("tr", null, ibody, "incident");
    tr.setAttribute("data-kind", i.kind);
    tr.setAttribute("data-first-event", i.evidence[0]);
    html("td", i.kind.replace(/_/g, " "), tr, "kind-" + i.kind);
    html("td", i.function, tr);
    html("td", clock(i.first_iso, 12) + (i.last_iso !== i.first_iso ? " .. " + clock(i.last_iso, 12) : ""), tr);
    var what;
    if (i.kind === "nat_idle_reset") {
      what = ({read_timeout: "no reply after ", function_timeout: "timed out, silent, after "}[i.cause] || "reset after ") + secs(i.idle_ms) + " idle (NAT idle timeout " + secs(i.nat_idle_timeout_ms) + ")" + (i.destination ? ", to " + i.destination : "");
    } else if (i.kind === "connect_stall") {
      what = i.environments + " environments timed out connecting to " + (i.destinations.join(", ") || "?") + " within " + secs(i.window_ms);
    } else {
      what = i.reason === "retried" ? "one request ID started " + i.attempts + " times" : i.key + " handled " + i.attempts + " times";
    }
    html("td", what, tr);
    html("td", i.request_ids.map(short).join(" "), tr);
    html("td", i.advice, tr, "advice");
  });

  var body = document.querySelector("#findings tbody");
  var seenAdvice = {};
  data.streams.forEach(function (st) {
    try { findingRows(st); } catch (e) { failed(html("td", null, html("tr", null, body)), e); }
  });
  function findingRows(st) {
    st.findings.forEach(function (f) {
      var tr = html("tr", null, body);
      tr.setAttribute("data-timeout-event", f.timeout_event_id);
      html("td", f.kind === "keepalive_freeze_timeout" ? "freeze timeout" : "genuine timeout", tr, "kind-" + f.kind);
      var where = html("td", null, tr);
      html("div", st.function + " (" + f.library + ")", where);
      html("code", st.stream, where);
      var key = f.kind + "/" + f.library;
      if (!seenAdvice[key]) {
        seenAdvice[key] = true;
        var li = html("li", null, document.getElementById("advice"));
        html("strong", (f.kind === "keepalive_freeze_timeout" ? "Freeze timeouts" : "Genuine timeouts") + " (" + f.library + "): ", li);
        li.appendChild(document.createTextNode(f.advice));
      }
      html("td", short(f.ping_request_id) + " at " + clock(f.ping_iso, 12), tr);
      var t = html("td", short(f.timeout_request_id) + " at " + clock(f.timeout_iso, 12), tr);
      if (f.timeout_line_request_id && f.timeout_line_request_id !== f.timeout_request_id)
        html("div", "(line prints " + short(f.timeout_line_request_id) + ")", t, "advice");
      if (f.inferred) html("div", "(inferred: " + f.inferred + ")", t, "advice");
      html("td", secs(f.frozen_ms), tr);
      html("td", f.connection, tr);
      html("td", f.failed_code || "", tr);
    });
  }

  // Loops, not Math.min.apply or spreads: an environment can hold more
  // invocations than a call has room for arguments.
  function draw(st, svg, index) {
    var W = 1000, H = 130, top = 22, barH = 30;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("preserveAspectRatio", "none");
    var t0 = Infinity, t1 = -Infinity;
    function span(t) { if (t !== null && t !== undefined) { if (t < t0) t0 = t; if (t > t1) t1 = t; } }
    var n, i, f;
    for (n = 0; n < st.invocations.length; n++) { i = st.invocations[n]; span(i.start); span(i.end); }
    for (n = 0; n < st.findings.length; n++) { f = st.findings[n]; span(f.ping_at); span(f.timeout_at); span(f.failed_at); }
    if (t0 > t1) return;
    var pad = Math.max((t1 - t0) * 0.02, 50);
    t0 -= pad; t1 += pad;
    function x(t) { return ((t - t0) / (t1 - t0)) * W; }
    var defs = el("defs", {}, svg);
    ["freeze", "genuine"].forEach(function (k) {
      var m = el("marker", {id: "head-" + k + "-" + index, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse"}, defs);
      el("path", {d: "M 0 0 L 10 5 L 0 10 z", fill: k === "freeze" ? "#c0392b" : "#d68910"}, m);
    });
    var invs = st.invocations.filter(function (i) { return i.start !== null || i.end !== null; });
    invs.forEach(function (i, n) {
      var a = i.start !== null ? i.start : i.end, b = i.end !== null ? i.end : i.start;
      var r = el("rect", {"class": "invocation", x: x(a), y: top, width: Math.max(x(b) - x(a), 2), height: barH, "data-request-id": i.request_id}, svg);
      el("title", {}, r, "invocation " + i.request_id);
      var next = invs[n + 1];
      if (i.end !== null && next && next.start !== null && next.start - i.end > 100) {
        el("line", {"class": "freeze-gap", x1: x(i.end), x2: x(next.start), y1: top + barH / 2, y2: top + barH / 2}, svg);
        if (x(next.start) - x(i.end) > 40)
          el("text", {"class": "freeze-label", x: (x(i.end) + x(next.start)) / 2, y: top - 6, "text-anchor": "middle"}, svg, "frozen " + secs(next.start - i.end));
      }
    });
    st.findings.forEach(function (f, n) {
      var k = f.kind === "keepalive_freeze_timeout" ? "freeze" : "genuine";
      var y = top + barH + 22 + (n % 3) * 16;
      var g = el("g", {"class": "finding " + k, "data-ping-event": f.ping_event_id, "data-timeout-event": f.timeout_event_id}, svg);
      el("title", {}, g, (k === "freeze" ? "freeze timeout" : "genuine timeout") + ": ping in " + f.ping_request_id + ", timed out in " + f.timeout_request_id + (f.frozen_ms ? ", frozen " + secs(f.frozen_ms) : ""));
      var xp = x(f.ping_at), xt = x(f.timeout_at);
      el("path", {"class": "arrow " + k, d: "M " + xp + " " + y + " C " + xp + " " + (y + 14) + ", " + xt + " " + (y + 14) + ", " + xt + " " + (y + 2), "marker-end": "url(#head-" + k + "-" + index + ")"}, g);
      el("circle", {"class": "ping", cx: xp, cy: y, r: 4}, g);
      el("circle", {"class": "timeout", cx: xt, cy: y, r: 5}, g);
      if (f.failed_at) el("rect", {"class": "failed", x: x(f.failed_at) - 3, y: y - 9, width: 6, height: 6}, g);
    });
    el("text", {"class": "axis", x: 2, y: H - 4}, svg, clockOf(t0));
    el("text", {"class": "axis", x: W - 2, y: H - 4, "text-anchor": "end"}, svg, clockOf(t1));
  }

  // Each environment on its own: one that cannot be drawn says so and
  // the others are drawn all the same.
  var container = document.getElementById("streams");
  data.streams.forEach(function (st, index) {
    var d = html("details", null, container);
    try {
      d.setAttribute("data-stream", st.stream);
      var n = st.findings.length;
      html("summary", st.function + "  " + st.stream + "  (" + st.invocations.length + " invocations" + (n ? ", " + n + " finding" + (n > 1 ? "s" : "") : "") + ")", d);
      var svg = el("svg", {"class": "timeline"}, d);
      var drawn = false;
      var once = function () {
        if (drawn) return;
        drawn = true;
        try { draw(st, svg, index); } catch (e) { failed(d, e); }
      };
      if (n) { d.open = true; once(); }
      d.addEventListener("toggle", once);
    } catch (e) {
      if (!d.querySelector("summary")) html("summary", String(st && st.stream), d);
      d.open = true;
      failed(d, e);
    }
  });
})();
</script>
</body>
</html>
"##;
