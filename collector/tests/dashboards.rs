//! The deployment template, the CloudWatch dashboard and the Grafana
//! dashboard against the code: cfn-lint passes on the template, and every
//! metric, namespace, dimension, span name, span attribute and Logs Insights
//! field they use is one the collector really emits (read from the code and
//! from real output, not from a second copy).

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use serde_json::Value;
use thawtrace::export::{Origin, emf, spans};
use thawtrace_analyzers::Collected;
use thawtrace_analyzers::{Batch, Config, FindingKind};

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

/// Field names of the finding JSON lines the collector prints (what Logs
/// Insights sees), from a real scan.
fn finding_fields() -> BTreeSet<String> {
    let out = thawtrace(&["demo", "--format", "json"]);
    let first: Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    first.as_object().unwrap().keys().cloned().collect()
}

/// Attribute keys of the spans the collector exports, from a real scan.
fn span_attributes() -> BTreeSet<String> {
    let text = std::fs::read_to_string(fixtures()[0].join("events.jsonl")).unwrap();
    let mut batch = Batch::default();
    thawtrace::input::read_text(
        "fixture",
        &text,
        &thawtrace::input::Limits::default(),
        &mut batch,
    )
    .unwrap();
    let mut collected = Collected::default();
    batch.analyze(&Config::default(), &mut collected);
    spans::spans(
        &collected,
        &Origin {
            region: Some("eu-west-1".into()),
        },
    )
    .iter()
    .flat_map(|s| s.attributes.iter().map(|kv| kv.key.to_string()))
    .collect()
}

/// The collector's own metrics (no dimension): what it calls that failed,
/// and what it skipped.
fn collector_metric_names() -> BTreeSet<&'static str> {
    [
        emf::LOOKBACK_FAILURES,
        emf::EXPORT_FAILURES,
        emf::STATE_FAILURES,
        emf::REJECTED_RECORDS,
        emf::DROPPED_SIGNALS,
    ]
    .into()
}

fn metric_names() -> BTreeSet<&'static str> {
    FindingKind::ALL
        .iter()
        .map(|k| k.metric_name())
        .chain([emf::MIN_FREEZE_MARGIN])
        .collect()
}

/// The field names a Logs Insights query reads (string literals, aliases and
/// the language's own words left out).
fn insights_fields(query: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "source",
        "fields",
        "filter",
        "stats",
        "count",
        "sort",
        "asc",
        "desc",
        "limit",
        "ispresent",
        "ceil",
        "as",
        "by",
        "and",
        "or",
        "not",
        "aws",
        "lambda",
    ];
    let mut without_literals = String::new();
    let mut quoted = None;
    for c in query.chars() {
        match quoted {
            Some(q) if c == q => quoted = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quoted = Some(c),
            None => without_literals.push(c),
        }
    }
    let words: Vec<&str> = without_literals
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@'))
        .collect();
    let aliases: BTreeSet<&str> = words
        .windows(2)
        .filter(|w| w[0] == "as")
        .map(|w| w[1])
        .collect();
    words
        .into_iter()
        .filter(|w| !w.is_empty() && !w.starts_with('@') && !w.chars().all(|c| c.is_ascii_digit()))
        .filter(|w| !WORDS.contains(&w.to_ascii_lowercase().as_str()) && !aliases.contains(w))
        .map(str::to_owned)
        .collect()
}

#[test]
fn template_passes_cfn_lint() {
    let python = std::env::var("THAWTRACE_PYTHON").unwrap_or_else(|_| "python3".into());
    // cfn-lint's console script, run by the interpreter that has it.
    let out = Command::new(python)
        .args(["-c", "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())"])
        .arg(repo().join("dashboards/template.yaml"))
        .output()
        .expect("cfn-lint is installed: bash tests/setup.sh");
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `Default:` of a template parameter.
fn parameter_default(template: &str, name: &str) -> String {
    let at = template
        .find(&format!("\n  {name}:\n"))
        .unwrap_or_else(|| panic!("parameter {name}"));
    let block = &template[at + 1..];
    let line = block
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix("Default:"))
        .unwrap_or_else(|| panic!("{name} has a default"));
    line.trim().trim_matches(['\'', '"']).to_owned()
}

/// The template's parameter defaults are the collector's own (one home:
/// the analyzers' and the lookback's constants), however each is written.
#[test]
fn template_defaults_are_the_collectors() {
    use thawtrace_analyzers::time::parse_duration_ms;
    let template = read("dashboards/template.yaml");
    let ms = |name| parse_duration_ms(&parameter_default(&template, name)).unwrap();
    assert_eq!(ms("NatIdleTimeout"), Config::NAT_IDLE_TIMEOUT_MS);
    assert_eq!(
        parameter_default(&template, "NatNearMissPercent").parse::<u8>(),
        Ok(Config::NAT_NEAR_MISS_PERCENT)
    );
    assert_eq!(ms("ConnectStallWindow"), Config::CONNECT_STALL_WINDOW_MS);
    assert_eq!(
        ms("LookbackWindow"),
        thawtrace::lookback::LookbackLimits::default().window_ms
    );
    assert_eq!(
        parameter_default(&template, "ConnectStallMinEnvironments").parse::<usize>(),
        Ok(Config::CONNECT_STALL_MIN_ENVS)
    );
    assert_eq!(
        parameter_default(&template, "IdempotencyKeys"),
        Config::IDEMPOTENCY_KEY
    );
    let guard = thawtrace::guard::GuardSettings::default();
    assert_eq!(
        ms("DependencyBudget"),
        guard.budget.as_millis() as i64,
        "the budget's default"
    );
    assert_eq!(ms("DependencyCooldown"), guard.cooldown.as_millis() as i64);
}

#[test]
fn template_alarms_and_filters_on_what_the_collector_emits() {
    let template = read("dashboards/template.yaml");
    assert!(template.contains(&format!("Namespace: {}", emf::NAMESPACE)));
    assert!(template.contains(&format!(
        "MetricName: {}",
        FindingKind::KeepaliveFreezeTimeout.metric_name()
    )));
    assert!(template.contains(&format!("- Name: {}", emf::DIMENSION)));
    assert!(
        template.contains(&format!(
            "Default: '{}'",
            thawtrace::lookback::FILTER_PATTERN
        )),
        "the subscription filter pattern is the one the collector's lookback uses"
    );
    for line in template
        .lines()
        .filter(|l| l.trim_start().starts_with("MetricName:"))
    {
        let name = line.trim_start().trim_start_matches("MetricName:").trim();
        assert!(
            metric_names().contains(name),
            "alarm on unknown metric {name}"
        );
    }
}

#[test]
fn cloudwatch_dashboard_is_embedded_in_the_template_unchanged() {
    let file: Value = serde_json::from_str(&read("dashboards/cloudwatch-dashboard.json")).unwrap();
    let template = read("dashboards/template.yaml");
    let begin = template.find("DashboardBody: !Sub |").unwrap();
    let end = template
        .find("# END dashboards/cloudwatch-dashboard.json")
        .unwrap();
    let embedded: String = template[begin..end]
        .lines()
        .skip(1)
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    let embedded: Value = serde_json::from_str(&embedded).unwrap();
    assert_eq!(embedded, file);
}

#[test]
fn cloudwatch_dashboard_reads_only_what_the_collector_emits() {
    let dash: Value = serde_json::from_str(&read("dashboards/cloudwatch-dashboard.json")).unwrap();
    let fields = finding_fields();
    let mut metrics_seen = BTreeSet::new();
    let mut collector_seen = BTreeSet::new();
    for w in dash["widgets"].as_array().unwrap() {
        let p = &w["properties"];
        match w["type"].as_str().unwrap() {
            // The collector's own metrics: named, no dimension.
            "metric" if p["metrics"][0][0].is_string() => {
                for m in p["metrics"].as_array().unwrap() {
                    assert_eq!(m[0], emf::NAMESPACE);
                    let name = m[1].as_str().unwrap();
                    assert!(
                        collector_metric_names().contains(name),
                        "unknown collector metric {name}"
                    );
                    assert_eq!(m.as_array().unwrap().len(), 2, "no dimension: {m}");
                    collector_seen.insert(name.to_owned());
                }
            }
            "metric" => {
                let expr = p["metrics"][0][0]["expression"].as_str().unwrap();
                assert!(
                    expr.contains(&format!("{{{},{}}}", emf::NAMESPACE, emf::DIMENSION)),
                    "{expr}"
                );
                let name = expr
                    .split("MetricName=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                assert!(metric_names().contains(name), "unknown metric {name}");
                metrics_seen.insert(name.to_owned());
            }
            "log" => {
                for f in insights_fields(p["query"].as_str().unwrap()) {
                    assert!(
                        fields.contains(&f),
                        "the finding lines have no field {f:?} ({fields:?})"
                    );
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        metrics_seen.len(),
        metric_names().len(),
        "a panel for every finding kind, and the smallest freeze margin"
    );
    assert_eq!(
        collector_seen.len(),
        collector_metric_names().len(),
        "the collector's failures of what it calls, and what it skipped"
    );
}

#[test]
fn grafana_dashboard_reads_only_what_the_collector_emits() {
    let dash: Value = serde_json::from_str(&read("dashboards/grafana-dashboard.json")).unwrap();
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    let vars: BTreeSet<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        vars.contains("traces") && vars.contains("cloudwatch"),
        "data sources are chosen by variables"
    );
    let fields = finding_fields();
    let attributes = span_attributes();
    let span_names: BTreeSet<&str> = FindingKind::ALL.iter().map(|k| k.span_name()).collect();
    let (mut metrics, mut logs, mut traces, mut collector) = (0, 0, 0, 0);
    for panel in dash["panels"].as_array().unwrap() {
        assert!(panel["gridPos"].is_object());
        for t in panel["targets"].as_array().into_iter().flatten() {
            match panel["datasource"]["type"].as_str() {
                Some("cloudwatch") if t["queryMode"] == "Metrics" => {
                    metrics += 1;
                    assert_eq!(t["namespace"], emf::NAMESPACE);
                    let name = t["metricName"].as_str().unwrap();
                    if t["dimensions"].as_object().unwrap().is_empty() {
                        // The collector's own metrics have no dimension.
                        assert!(collector_metric_names().contains(name), "{name}");
                        collector += 1;
                    } else {
                        assert!(metric_names().contains(name), "{name}");
                        assert!(t["dimensions"].get(emf::DIMENSION).is_some());
                    }
                }
                Some("cloudwatch") => {
                    logs += 1;
                    for f in insights_fields(t["expression"].as_str().unwrap()) {
                        assert!(fields.contains(&f), "the finding lines have no field {f:?}");
                    }
                }
                Some("tempo") => {
                    traces += 1;
                    let q = t["query"].as_str().unwrap();
                    let name = q
                        .split("name = \"")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap();
                    assert!(span_names.contains(name), "unknown span {name}");
                    for attr in q.split("span.").skip(1) {
                        let attr: String = attr
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                            .collect();
                        assert!(
                            attributes.contains(&attr),
                            "spans have no attribute {attr} ({attributes:?})"
                        );
                    }
                }
                other => panic!("unexpected data source {other:?}"),
            }
        }
    }
    assert!(
        metrics >= 2 && logs >= 2 && traces >= 1 && collector >= 2,
        "{metrics} metric, {logs} log, {traces} trace panels, {collector} collector metrics"
    );
}
