//! Alerts as CloudWatch Embedded Metric Format lines: namespace
//! `Thawtrace`, one metric per finding kind, dimension `FunctionName`. A
//! log line is all it takes; CloudWatch turns it into metrics that alarms
//! and dashboards use, with no infrastructure of ours.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use thawtrace_analyzers::{Finding, FindingKind, Incident};

use super::spans::function_name;

/// The metric namespace.
pub const NAMESPACE: &str = "Thawtrace";
/// The metric dimension.
pub const DIMENSION: &str = "FunctionName";

/// One EMF line per function with findings, counting each kind (zeros
/// included, so a dashboard shows the contrast).
///
/// A line is stamped with the event time of the newest failure it counts,
/// never the collector's clock, the way CloudWatch Logs' own metric filters
/// stamp their data points: a batch delivered again, or a backlog replayed
/// late, puts its counts at the minute the failures happened.
///
/// ```
/// assert!(thawtrace::export::emf::lines(&[], &[]).is_empty());
/// ```
pub fn lines(findings: &[Finding], incidents: &[Incident]) -> Vec<String> {
    let mut per_function: BTreeMap<&str, (i64, BTreeMap<FindingKind, u64>)> = BTreeMap::new();
    let kinds = findings
        .iter()
        .map(|f| (f.log_group.as_str(), f.kind, f.timeout_at_ms))
        .chain(
            incidents
                .iter()
                .map(|i| (i.log_group.as_str(), i.kind, i.last_at_ms)),
        );
    for (group, kind, at_ms) in kinds {
        let (newest, counts) = per_function
            .entry(function_name(group))
            .or_insert((at_ms, BTreeMap::new()));
        *newest = (*newest).max(at_ms);
        *counts.entry(kind).or_default() += 1;
    }
    per_function
        .into_iter()
        .map(|(function, (at_ms, counts))| {
            let metrics: Vec<Value> = FindingKind::ALL
                .iter()
                .map(|k| json!({"Name": k.metric_name(), "Unit": "Count"}))
                .collect();
            let mut line = Map::new();
            line.insert(
                "_aws".into(),
                json!({
                    "Timestamp": at_ms,
                    "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [[DIMENSION]], "Metrics": metrics}],
                }),
            );
            line.insert(DIMENSION.into(), Value::from(function));
            for k in FindingKind::ALL {
                line.insert(k.metric_name().into(), Value::from(counts.get(&k).copied().unwrap_or(0)));
            }
            Value::Object(line).to_string()
        })
        .collect()
}
