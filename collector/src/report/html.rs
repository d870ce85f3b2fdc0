//! `scan --format html`: one self-contained page (no network, no CDN) with
//! a timeline per execution environment: invocations as bars, freezes as
//! gaps with their length, each keepalive ping and its timeout joined by an
//! arrow across the freeze, the failed call after it, and a table of the
//! findings with the fix. Streams with findings are expanded; the others
//! are drawn only when opened, so a log group of hundreds stays light.

use serde_json::{Value, json};
use thawtrace_analyzers::time::rfc3339;
use thawtrace_analyzers::{FindingKind, Summary};

use super::advice;
use crate::export::Collected;
use crate::export::spans::function_name;

fn data(collected: &Collected, summary: &Summary) -> Value {
    let mut keys: Vec<(&str, &str)> = collected
        .invocations
        .iter()
        .map(|i| (i.log_group.as_str(), i.log_stream.as_str()))
        .chain(
            collected
                .findings
                .iter()
                .map(|f| (f.log_group.as_str(), f.log_stream.as_str())),
        )
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut streams: Vec<Value> = keys
        .into_iter()
        .map(|(group, stream)| {
            let invocations: Vec<Value> = collected
                .invocations
                .iter()
                .filter(|i| i.log_group == group && i.log_stream == stream)
                .map(|i| json!({"request_id": i.request_id, "start": i.start_ms, "end": i.end_ms}))
                .collect();
            let findings: Vec<Value> = collected
                .findings
                .iter()
                .filter(|f| f.log_group == group && f.log_stream == stream)
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
    // Streams with freeze timeouts first, then other findings, then the rest.
    let rank = |s: &Value| {
        let f = s["findings"].as_array().map_or(0, Vec::len);
        let freeze = s["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["kind"] == FindingKind::KeepaliveFreezeTimeout.as_str());
        (!freeze, f == 0)
    };
    streams.sort_by_key(rank);
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
    // `</` would end the script element early: JSON allows `<\/`.
    let data = data(collected, summary).to_string().replace("</", "<\\/");
    PAGE.replace("/*DATA*/null", &data)
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
    html("td", i.first_iso.slice(11, 23) + (i.last_iso !== i.first_iso ? " .. " + i.last_iso.slice(11, 23) : ""), tr);
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
      html("td", short(f.ping_request_id) + " at " + f.ping_iso.slice(11, 23), tr);
      var t = html("td", short(f.timeout_request_id) + " at " + f.timeout_iso.slice(11, 23), tr);
      if (f.timeout_line_request_id && f.timeout_line_request_id !== f.timeout_request_id)
        html("div", "(line prints " + short(f.timeout_line_request_id) + ")", t, "advice");
      if (f.inferred) html("div", "(inferred: " + f.inferred + ")", t, "advice");
      html("td", secs(f.frozen_ms), tr);
      html("td", f.connection, tr);
      html("td", f.failed_code || "", tr);
    });
  });

  function draw(st, svg) {
    var W = 1000, H = 130, top = 22, barH = 30;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("preserveAspectRatio", "none");
    var times = [];
    st.invocations.forEach(function (i) { if (i.start !== null) times.push(i.start); if (i.end !== null) times.push(i.end); });
    st.findings.forEach(function (f) { times.push(f.ping_at, f.timeout_at); if (f.failed_at) times.push(f.failed_at); });
    if (!times.length) return;
    var t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
    var pad = Math.max((t1 - t0) * 0.02, 50);
    t0 -= pad; t1 += pad;
    function x(t) { return ((t - t0) / (t1 - t0)) * W; }
    var defs = el("defs", {}, svg);
    ["freeze", "genuine"].forEach(function (k) {
      var m = el("marker", {id: "head-" + k + "-" + st.stream.length, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse"}, defs);
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
      el("path", {"class": "arrow " + k, d: "M " + xp + " " + y + " C " + xp + " " + (y + 14) + ", " + xt + " " + (y + 14) + ", " + xt + " " + (y + 2), "marker-end": "url(#head-" + k + "-" + st.stream.length + ")"}, g);
      el("circle", {"class": "ping", cx: xp, cy: y, r: 4}, g);
      el("circle", {"class": "timeout", cx: xt, cy: y, r: 5}, g);
      if (f.failed_at) el("rect", {"class": "failed", x: x(f.failed_at) - 3, y: y - 9, width: 6, height: 6}, g);
    });
    el("text", {"class": "axis", x: 2, y: H - 4}, svg, new Date(t0).toISOString().slice(11, 19));
    el("text", {"class": "axis", x: W - 2, y: H - 4, "text-anchor": "end"}, svg, new Date(t1).toISOString().slice(11, 19));
  }

  var container = document.getElementById("streams");
  data.streams.forEach(function (st) {
    var d = html("details", null, container);
    d.setAttribute("data-stream", st.stream);
    var n = st.findings.length;
    html("summary", st.function + "  " + st.stream + "  (" + st.invocations.length + " invocations" + (n ? ", " + n + " finding" + (n > 1 ? "s" : "") : "") + ")", d);
    var svg = el("svg", {"class": "timeline"}, d);
    var drawn = false;
    function once() { if (!drawn) { drawn = true; draw(st, svg); } }
    if (n) { d.open = true; once(); }
    d.addEventListener("toggle", once);
  });
})();
</script>
</body>
</html>
"##;
