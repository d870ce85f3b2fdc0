//! `scan --format html`: one self-contained page (no network, no CDN).
//! Each function (log group) has one time axis, shared by its execution
//! environments (log streams), with zoom and pan: invocations as bars,
//! freezes as gaps with their length, and every finding drawn where it
//! happened (a keepalive ping joined to its timeout by an arrow across the
//! freeze, the idle gap before a NAT reset, a connect stall's window
//! across the environments it hit and the healthy ones beside it, the
//! attempts of a duplicate invocation linked across environments, a
//! SnapStart restore and the failure after it, near misses as warnings).
//! Tables of the findings with the fix follow. Environments with findings
//! are open; the others are drawn only when opened, so a log group of
//! hundreds of thousands stays light.
//!
//! The page's data is one JSON blob, serialized straight from borrowed
//! findings and invocations (no intermediate value per invocation).

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::SerializeSeq;
use serde_json::{Value, json};
use thawtrace_analyzers::time::rfc3339;
use thawtrace_analyzers::{Finding, FindingKind, Incident, InvocationWindow, Summary};

use crate::export::spans::function_name;
use thawtrace_analyzers::Collected;

/// One execution environment's invocations, findings and neighbouring
/// failures (by index into the page's incidents), gathered in one pass
/// over each: a log group of 100,000 streams is drawn in time linear in
/// its size, not by filtering everything once per stream.
#[derive(Default)]
struct Environment<'a> {
    invocations: Vec<&'a InvocationWindow>,
    findings: Vec<&'a Finding>,
    incidents: Vec<usize>,
}

impl Environment<'_> {
    /// Streams with freeze timeouts first, then other findings, then the rest.
    fn rank(&self) -> (bool, bool) {
        let freeze = self
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::KeepaliveFreezeTimeout);
        (
            !freeze,
            self.findings.is_empty() && self.incidents.is_empty(),
        )
    }
}

/// The page's data: the summary, one entry per function with its
/// environments, the findings of each, the neighbouring failures and the
/// keepalive risks.
#[derive(Serialize)]
struct Page<'a> {
    summary: Value,
    /// Findings and neighbouring failures by kind name, every kind listed.
    counts: BTreeMap<&'static str, usize>,
    functions: Vec<Function<'a>>,
    incidents: Vec<Value>,
    risks: Vec<Value>,
}

/// A function (log group) and its environments, in the order shown.
#[derive(Serialize)]
struct Function<'a> {
    group: &'a str,
    function: &'a str,
    streams: Vec<Stream<'a>>,
}

/// One environment as the page draws it.
#[derive(Serialize)]
struct Stream<'a> {
    stream: &'a str,
    /// `[start, end, request ID]` each: compact for 100,000 streams.
    invocations: Invocations<'a>,
    findings: Vec<Value>,
    /// Indexes into [`Page::incidents`].
    incidents: &'a [usize],
}

/// Invocations serialized as `[start, end, request_id]` arrays, written
/// straight from the windows.
struct Invocations<'a>(&'a [&'a InvocationWindow]);

impl Serialize for Invocations<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for i in self.0 {
            seq.serialize_element(&(i.start_ms, i.end_ms, i.request_id.as_str()))?;
        }
        seq.end()
    }
}

/// Every kind's count: findings and neighbouring failures.
fn counts(collected: &Collected) -> BTreeMap<&'static str, usize> {
    let mut counts: BTreeMap<&'static str, usize> =
        FindingKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
    let kinds = collected
        .findings
        .iter()
        .map(|f| FindingKind::from(f.kind))
        .chain(collected.incidents.iter().map(Incident::kind));
    for k in kinds {
        *counts.entry(k.as_str()).or_default() += 1;
    }
    counts
}

/// A kind's name for a person: one, and more than one.
fn label(k: FindingKind) -> (&'static str, &'static str) {
    match k {
        FindingKind::KeepaliveFreezeTimeout => {
            ("keepalive freeze timeout", "keepalive freeze timeouts")
        }
        FindingKind::KeepaliveTimeout => {
            ("genuine keepalive timeout", "genuine keepalive timeouts")
        }
        FindingKind::NatIdleReset => ("NAT idle reset", "NAT idle resets"),
        FindingKind::ConnectStall => ("connect stall", "connect stalls"),
        FindingKind::DuplicateInvocation => ("duplicate invocation", "duplicate invocations"),
        FindingKind::SnapStartStaleConnection => (
            "stale connection after a SnapStart restore",
            "stale connections after a SnapStart restore",
        ),
        FindingKind::KeepaliveNearMiss => ("keepalive near miss", "keepalive near misses"),
        FindingKind::NatIdleNearMiss => ("NAT idle near miss", "NAT idle near misses"),
        FindingKind::ConnectSlow => ("slow connect", "slow connects"),
    }
}

/// What was found, in words, for the page's title and heading: every kind
/// seen with its count, failures before warnings.
fn headline(counts: &BTreeMap<&'static str, usize>) -> String {
    let mut parts = Vec::new();
    for k in FindingKind::ALL {
        let n = counts.get(k.as_str()).copied().unwrap_or(0);
        if n > 0 {
            let (one, many) = label(k);
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    if parts.is_empty() {
        "thawtrace: no findings".to_owned()
    } else {
        format!("thawtrace: {}", parts.join(", "))
    }
}

/// The report's data, which the page's script draws.
fn data<'a>(
    collected: &'a Collected,
    summary: &Summary,
    environments: &'a [((&'a str, &'a str), Environment<'a>)],
    counts: BTreeMap<&'static str, usize>,
) -> Page<'a> {
    let mut functions: Vec<Function<'a>> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for ((group, stream), env) in environments {
        let n = *index.entry(group).or_insert_with(|| {
            functions.push(Function {
                group,
                function: function_name(group),
                streams: Vec::new(),
            });
            functions.len() - 1
        });
        functions[n].streams.push(Stream {
            stream,
            invocations: Invocations(&env.invocations),
            findings: env.findings.iter().map(|&f| finding_json(f)).collect(),
            incidents: &env.incidents,
        });
    }
    let incidents: Vec<Value> = collected.incidents.iter().map(incident_json).collect();
    Page {
        summary: json!({
            "streams": summary.streams, "events": summary.totals.lines, "invocations": summary.totals.invocations,
            "freeze": counts[FindingKind::KeepaliveFreezeTimeout.as_str()],
            "genuine": counts[FindingKind::KeepaliveTimeout.as_str()],
            "incidents": incidents.len(), "dropped_signals": summary.dropped_signals,
        }),
        counts,
        functions,
        incidents,
        risks: super::risks(collected)
            .iter()
            .map(|r| {
                json!({
                    "function": function_name(&r.log_group),
                    "text": r.explain(),
                    "chance_per_day": r.chance_per_day,
                    "min_margin_ms": r.min_margin_ms,
                })
            })
            .collect(),
    }
}

/// The invocations, findings and neighbouring failures of each execution
/// environment (group, stream), in the order they are shown: by function
/// (the first with a freeze timeout first, then those with findings),
/// then by [`Environment::rank`], then by name.
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
    for (n, i) in collected.incidents.iter().enumerate() {
        for stream in &i.log_streams {
            let key = (i.log_group.as_str(), stream.as_str());
            environments.entry(key).or_default().incidents.push(n);
        }
    }
    // Each function ranked by its best environment, then by how many of
    // its environments have findings.
    let mut best: BTreeMap<&str, ((bool, bool), std::cmp::Reverse<usize>)> = BTreeMap::new();
    for ((group, _), env) in &environments {
        let r = env.rank();
        let found = usize::from(!r.1);
        let b = best.entry(group).or_insert((r, std::cmp::Reverse(0)));
        b.0 = b.0.min(r);
        b.1.0 += found;
    }
    let mut environments: Vec<_> = environments.into_iter().collect();
    environments.sort_by_key(|((group, _), env)| (best[group], *group, env.rank()));
    environments
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

/// What stands in [`PAGE`]'s title and heading for what was found.
const TITLE: &str = "<!--TITLE-->";

/// The page.
pub fn render(collected: &Collected, summary: &Summary) -> String {
    let environments = environments(collected);
    let counts = counts(collected);
    let title = headline(&counts);
    let page = data(collected, summary, &environments, counts);
    let json = serde_json::to_string(&page).expect("the page's data always serializes");
    let (head, tail) = PAGE
        .split_once(DATA)
        .expect("the page has a place for its data");
    let mut out = String::with_capacity(head.len() + json.len() + json.len() / 16 + tail.len());
    out.push_str(&head.replace(TITLE, &title));
    script_safe_into(&json, &mut out);
    out.push_str(tail);
    out
}

/// JSON that can stand in a `<script>` element whatever its strings hold.
/// There, `</script` ends the element, and `<!--` then `<script` sends the
/// HTML parser into a state where the real end tag no longer ends it:
/// either way the page loses its script and shows nothing. In JSON these
/// characters occur only inside strings, where `\u003c` means `<`, so
/// `<`, `>` and `&` are written that way; U+2028 and U+2029 too, which
/// older JavaScript did not accept raw in a string.
fn script_safe_into(json: &str, out: &mut String) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_one_place_for_the_data_in_its_data_element() {
        assert_eq!(PAGE.matches(DATA).count(), 1);
        let element = r#"<script type="application/json" id="data">"#;
        assert!(PAGE.contains(&format!("{element}{DATA}</script>")));
        assert_eq!(PAGE.matches(TITLE).count(), 2, "title and heading");
    }

    #[test]
    fn the_headline_names_what_was_found() {
        let mut counts: BTreeMap<&'static str, usize> =
            FindingKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
        assert_eq!(headline(&counts), "thawtrace: no findings");
        counts.insert("nat_idle_reset", 8);
        counts.insert("connect_stall", 1);
        assert_eq!(
            headline(&counts),
            "thawtrace: 8 NAT idle resets, 1 connect stall"
        );
    }
}
