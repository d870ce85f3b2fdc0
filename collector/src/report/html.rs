//! `scan --format html`: one self-contained page (no network, no CDN) with
//! a timeline per execution environment: invocations as bars, freezes as
//! gaps with their length, each keepalive ping and its timeout joined by an
//! arrow across the freeze, the failed call after it, and a table of the
//! findings with the fix. Streams with findings are expanded; the others
//! are drawn only when opened, so a log group of hundreds stays light.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use thawtrace_analyzers::time::rfc3339;
use thawtrace_analyzers::{Finding, FindingKind, Incident, InvocationWindow, Summary};

use crate::export::spans::function_name;
use thawtrace_analyzers::Collected;

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

/// The report's data, which the page's script draws: the summary, one
/// entry per execution environment (those with freeze timeouts first) and
/// the neighbouring failures.
fn data(collected: &Collected, summary: &Summary) -> Value {
    let streams: Vec<Value> = environments(collected)
        .into_iter()
        .map(|((group, stream), env)| environment_json(group, stream, &env))
        .collect();
    let count = |k: FindingKind| collected.findings.iter().filter(|f| f.kind == k).count();
    let incidents: Vec<Value> = collected.incidents.iter().map(incident_json).collect();
    json!({
        "summary": {
            "streams": summary.streams, "events": summary.totals.lines, "invocations": summary.totals.invocations,
            "freeze": count(FindingKind::KeepaliveFreezeTimeout), "genuine": count(FindingKind::KeepaliveTimeout),
            "incidents": incidents.len(), "dropped_signals": summary.dropped_signals,
        },
        "streams": streams,
        "incidents": incidents,
        "risks": super::risks(collected).iter().map(|r| json!({
            "function": function_name(&r.log_group),
            "text": r.explain(),
            "chance_per_day": r.chance_per_day,
            "min_margin_ms": r.min_margin_ms,
        })).collect::<Vec<Value>>(),
    })
}

/// The invocations and findings of each execution environment (group,
/// stream), in the order they are shown: by [`Environment::rank`], then
/// by name.
fn environments(collected: &Collected) -> Vec<((&str, &str), Environment<'_>)> {
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
    environments
}

/// One execution environment: its names, its invocations as bars, its
/// findings.
fn environment_json(group: &str, stream: &str, env: &Environment<'_>) -> Value {
    let invocations: Vec<Value> = env
        .invocations
        .iter()
        .map(|i| json!({"request_id": i.request_id, "start": i.start_ms, "end": i.end_ms}))
        .collect();
    let findings: Vec<Value> = env.findings.iter().map(|&f| finding_json(f)).collect();
    json!({"group": group, "function": function_name(group), "stream": stream, "invocations": invocations, "findings": findings})
}

/// A finding as the page draws it and lists it.
fn finding_json(f: &Finding) -> Value {
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
        "execution_mode": f.execution_mode.as_str(),
        "failed_request_ids": f.failed_request_ids,
        "tenant_id": f.tenant_id,
        "advice": f.advice(),
    })
}

/// A neighbouring failure: its JSON line's object, with its function, its
/// times as RFC 3339 and its fix.
fn incident_json(i: &Incident) -> Value {
    let mut v = serde_json::to_value(i).expect("an incident always serializes");
    v["function"] = json!(function_name(&i.log_group));
    v["first_iso"] = json!(rfc3339(i.first_at_ms));
    v["last_iso"] = json!(rfc3339(i.last_at_ms));
    v["advice"] = json!(i.advice());
    v
}

/// The page, edited as HTML in `page.html`: its styles and script are
/// inline, so the report stays one self-contained file.
const PAGE: &str = include_str!("page.html");

/// What stands in [`PAGE`] where the report's data goes: the content of
/// its `<script type="application/json" id="data">` element.
const DATA: &str = "/*DATA*/null";

/// The page.
pub fn render(collected: &Collected, summary: &Summary) -> String {
    let data = script_safe(&data(collected, summary).to_string());
    PAGE.replace(DATA, &data)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_one_place_for_the_data_in_its_data_element() {
        assert_eq!(PAGE.matches(DATA).count(), 1);
        let element = r#"<script type="application/json" id="data">"#;
        assert!(PAGE.contains(&format!("{element}{DATA}</script>")));
    }
}
