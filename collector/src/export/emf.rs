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
/// ```
/// let lines = thawtrace::export::emf::lines(&[], &[], 1_700_000_000_000);
/// assert!(lines.is_empty());
/// ```
pub fn lines(findings: &[Finding], incidents: &[Incident], now_ms: i64) -> Vec<String> {
    let mut per_function: BTreeMap<&str, BTreeMap<FindingKind, u64>> = BTreeMap::new();
    let kinds = findings
        .iter()
        .map(|f| (f.log_group.as_str(), f.kind))
        .chain(incidents.iter().map(|i| (i.log_group.as_str(), i.kind)));
    for (group, kind) in kinds {
        *per_function
            .entry(function_name(group))
            .or_default()
            .entry(kind)
            .or_default() += 1;
    }
    per_function
        .into_iter()
        .map(|(function, counts)| {
            let metrics: Vec<Value> = FindingKind::ALL
                .iter()
                .map(|k| json!({"Name": k.metric_name(), "Unit": "Count"}))
                .collect();
            let mut line = Map::new();
            line.insert(
                "_aws".into(),
                json!({
                    "Timestamp": now_ms,
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
