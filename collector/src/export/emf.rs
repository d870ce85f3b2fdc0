//! Alerts as CloudWatch Embedded Metric Format lines: namespace
//! `Thawtrace`, one metric per finding kind, dimension `FunctionName` (and
//! `FunctionName`, `TenantId` for the findings of tenant-isolated
//! functions). A log line is all it takes; CloudWatch turns it into
//! metrics that alarms and dashboards use, with no infrastructure of ours.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use thawtrace_analyzers::{Finding, FindingKind, Incident};

use super::spans::function_name;

/// The metric namespace.
pub const NAMESPACE: &str = "Thawtrace";
/// The metric dimension.
pub const DIMENSION: &str = "FunctionName";
/// The second dimension of tenant-isolated functions' findings.
pub const TENANT_DIMENSION: &str = "TenantId";
/// The smallest margin of a function's keepalive near misses (ms): how
/// close a freeze came to a timeout. Only in lines with near misses.
pub const MIN_FREEZE_MARGIN: &str = "MinFreezeMarginMs";

/// One EMF line per function with findings (per function and tenant,
/// where the invocations named a tenant), counting each kind (zeros
/// included, so a dashboard shows the contrast). A tenant's line also
/// counts under `FunctionName` alone, so the function's totals add up.
///
/// A line is stamped with the event time of the newest failure it counts,
/// never the collector's clock, the way CloudWatch Logs' own metric filters
/// stamp their data points: a batch delivered again, or a backlog replayed
/// late, puts its counts at the minute the failures happened.
///
/// The recorded grpc-js capture `thawtrace demo` scans (one function,
/// three freeze timeouts and one genuine timeout) gives one line:
///
/// ```
/// use serde_json::{Value, json};
/// use thawtrace::export::emf;
/// use thawtrace::input::{Limits, read_text};
/// use thawtrace_analyzers::{Batch, Collected, Config};
///
/// let mut batch = Batch::default();
/// read_text("demo", thawtrace::DEMO_EVENTS, &Limits::default(), &mut batch).unwrap();
/// let mut found = Collected::default();
/// batch.analyze(&Config::default(), &mut found);
///
/// let lines = emf::lines(&found.findings, &found.incidents);
/// assert_eq!(lines.len(), 1);
/// let line: Value = serde_json::from_str(&lines[0]).unwrap();
/// assert_eq!(line[emf::DIMENSION], "orders-node"); // from /aws/lambda/orders-node
/// assert_eq!(line["KeepaliveFreezeTimeouts"], 3);
/// assert_eq!(line["KeepaliveTimeouts"], 1);
/// assert_eq!(line["NatIdleResets"], 0); // every kind, zeros too
/// let metrics = &line["_aws"]["CloudWatchMetrics"][0];
/// assert_eq!(metrics["Namespace"], emf::NAMESPACE);
/// assert_eq!(metrics["Dimensions"], json!([["FunctionName"]]));
/// assert_eq!(metrics["Metrics"][0], json!({"Name": "KeepaliveFreezeTimeouts", "Unit": "Count"}));
/// // Every kind, and the smallest margin of the near misses it holds.
/// assert_eq!(metrics["Metrics"].as_array().unwrap().len(), thawtrace_analyzers::FindingKind::ALL.len() + 1);
/// assert!(line[emf::MIN_FREEZE_MARGIN].as_i64().unwrap() > 0);
/// // The minute of the newest failure, not of the scan.
/// let newest = found.findings.iter().map(|f| f.timeout_at_ms).max().unwrap();
/// assert_eq!(line["_aws"]["Timestamp"], newest);
///
/// assert!(emf::lines(&[], &[]).is_empty(), "no findings, no line");
/// ```
pub fn lines(findings: &[Finding], incidents: &[Incident]) -> Vec<String> {
    type Counts = (i64, BTreeMap<FindingKind, u64>);
    let mut per_function: BTreeMap<(&str, Option<&str>), Counts> = BTreeMap::new();
    let mut margins: BTreeMap<(&str, Option<&str>), i64> = BTreeMap::new();
    for i in incidents {
        if let thawtrace_analyzers::Detail::KeepaliveNearMiss {
            margin_ms: Some(m), ..
        } = i.detail
        {
            let key = (function_name(&i.log_group), i.tenant_id.as_deref());
            let min = margins.entry(key).or_insert(m);
            *min = (*min).min(m);
        }
    }
    let kinds = findings
        .iter()
        .map(|f| {
            let tenant = f.tenant_id.as_deref();
            (f.log_group.as_str(), tenant, f.kind.kind(), f.timeout_at_ms)
        })
        .chain(incidents.iter().map(|i| {
            let tenant = i.tenant_id.as_deref();
            (i.log_group.as_str(), tenant, i.kind(), i.last_at_ms)
        }));
    for (group, tenant, kind, at_ms) in kinds {
        let (newest, counts) = per_function
            .entry((function_name(group), tenant))
            .or_insert((at_ms, BTreeMap::new()));
        *newest = (*newest).max(at_ms);
        *counts.entry(kind).or_default() += 1;
    }
    per_function
        .into_iter()
        .map(|((function, tenant), (at_ms, counts))| {
            let margin = margins.get(&(function, tenant)).copied();
            let metrics: Vec<Value> = FindingKind::ALL
                .iter()
                .map(|k| json!({"Name": k.metric_name(), "Unit": "Count"}))
                .chain(
                    margin.map(|_| json!({"Name": MIN_FREEZE_MARGIN, "Unit": "Milliseconds"})),
                )
                .collect();
            let dimensions = match tenant {
                Some(_) => json!([[DIMENSION], [DIMENSION, TENANT_DIMENSION]]),
                None => json!([[DIMENSION]]),
            };
            let mut line = Map::new();
            line.insert(
                "_aws".into(),
                json!({
                    "Timestamp": at_ms,
                    "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": dimensions, "Metrics": metrics}],
                }),
            );
            line.insert(DIMENSION.into(), Value::from(function));
            if let Some(tenant) = tenant {
                line.insert(TENANT_DIMENSION.into(), Value::from(tenant));
            }
            for k in FindingKind::ALL {
                line.insert(k.metric_name().into(), Value::from(counts.get(&k).copied().unwrap_or(0)));
            }
            if let Some(m) = margin {
                line.insert(MIN_FREEZE_MARGIN.into(), Value::from(m));
            }
            Value::Object(line).to_string()
        })
        .collect()
}

/// The collector's own counts, for its EMF line ([`collector_line`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CollectorCounts {
    /// Records or payloads that could not be decoded and were skipped
    /// (never retried): `RejectedRecords`.
    pub rejected_records: u64,
    /// What the cross-stream analysis ignored past its tracking limits:
    /// `DroppedSignals`.
    pub dropped_signals: u64,
    /// Batches whose look back at CloudWatch Logs failed, timed out or was
    /// skipped by the breaker: `LookbackFailures`.
    pub lookback_failures: u64,
    /// Span batches the OTLP endpoint did not take: `ExportFailures`.
    pub export_failures: u64,
    /// Batches whose cross-stream state the table did not take:
    /// `StateFailures`.
    pub state_failures: u64,
}

impl CollectorCounts {
    fn metrics(&self) -> [(&'static str, u64); 5] {
        [
            (REJECTED_RECORDS, self.rejected_records),
            (DROPPED_SIGNALS, self.dropped_signals),
            (LOOKBACK_FAILURES, self.lookback_failures),
            (EXPORT_FAILURES, self.export_failures),
            (STATE_FAILURES, self.state_failures),
        ]
    }
}

/// The collector's own counts as one EMF line (namespace `Thawtrace`, no
/// dimension): every count of [`CollectorCounts`], zeros included. `None`
/// when all are zero. `at_ms` is an event time (the newest event of the
/// invocation's input, or the records' arrival time), as for [`lines`].
///
/// ```
/// use serde_json::Value;
/// use thawtrace::export::emf::{self, CollectorCounts};
/// assert!(emf::collector_line(&CollectorCounts::default(), 1_795_853_233_137).is_none());
/// let counts = CollectorCounts { rejected_records: 2, export_failures: 1, ..CollectorCounts::default() };
/// let line: Value = serde_json::from_str(&emf::collector_line(&counts, 1_795_853_233_137).unwrap()).unwrap();
/// assert_eq!(line["RejectedRecords"], 2);
/// assert_eq!(line["DroppedSignals"], 0);
/// assert_eq!(line["ExportFailures"], 1);
/// assert_eq!(line["LookbackFailures"], 0);
/// assert_eq!(line["_aws"]["Timestamp"], 1_795_853_233_137i64);
/// assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([[]]));
/// assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len(), 5);
/// ```
pub fn collector_line(counts: &CollectorCounts, at_ms: i64) -> Option<String> {
    let metrics = counts.metrics();
    if metrics.iter().all(|&(_, n)| n == 0) {
        return None;
    }
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": metrics.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, n) in metrics {
        line.insert(name.into(), Value::from(n));
    }
    Some(Value::Object(line).to_string())
}

/// The metric counting undecodable records and payloads, skipped.
pub const REJECTED_RECORDS: &str = "RejectedRecords";
/// The metric counting cross-stream signals ignored past the limits.
pub const DROPPED_SIGNALS: &str = "DroppedSignals";
/// The metric counting batches whose lookback was unavailable.
pub const LOOKBACK_FAILURES: &str = "LookbackFailures";
/// The metric counting span batches the OTLP endpoint did not take.
pub const EXPORT_FAILURES: &str = "ExportFailures";
/// The metric counting batches the state table did not take.
pub const STATE_FAILURES: &str = "StateFailures";

#[cfg(test)]
mod tests {
    use super::*;
    use thawtrace_analyzers::{Detail, Incident};

    fn stale(tenant: Option<&str>, at_ms: i64) -> Incident {
        Incident {
            log_group: "/aws/lambda/orders".into(),
            log_stream: "s".into(),
            log_streams: vec!["s".into()],
            request_ids: vec!["r1".into()],
            first_at_ms: at_ms,
            last_at_ms: at_ms,
            detail: Detail::SnapStartStaleConnection {
                request_id: "r1".into(),
                connection: None,
                restore_at_ms: at_ms,
                failure: "UNAVAILABLE",
            },
            evidence: vec!["e1".into()],
            tenant_id: tenant.map(str::to_owned),
        }
    }

    #[test]
    fn a_tenants_findings_count_per_tenant_and_per_function() {
        let lines = lines(
            &[],
            &[
                stale(Some("acme"), 1_000),
                stale(Some("acme"), 2_000),
                stale(None, 3_000),
            ],
        );
        let lines: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let untenanted = &lines[0];
        assert!(untenanted.get(TENANT_DIMENSION).is_none());
        assert_eq!(untenanted["SnapStartStaleConnections"], 1);
        assert_eq!(
            untenanted["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[DIMENSION]])
        );
        let acme = &lines[1];
        assert_eq!(acme[TENANT_DIMENSION], "acme");
        assert_eq!(acme[DIMENSION], "orders");
        assert_eq!(acme["SnapStartStaleConnections"], 2);
        assert_eq!(acme["_aws"]["Timestamp"], 2_000);
        assert_eq!(
            acme["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[DIMENSION], [DIMENSION, TENANT_DIMENSION]])
        );
    }
}
