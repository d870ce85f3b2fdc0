//! What a finding becomes for a person (text) or a program (JSON lines).

pub mod html;
pub mod json;
pub mod printable;
pub mod text;

/// Each function's keepalive risk (issue 18), from its streams'
/// exposures, by log group; only the functions with something to say.
pub fn risks(collected: &thawtrace_analyzers::Collected) -> Vec<thawtrace_analyzers::risk::Risk> {
    let mut by_group: std::collections::BTreeMap<&str, Vec<&thawtrace_analyzers::risk::Exposure>> =
        std::collections::BTreeMap::new();
    for e in &collected.exposures {
        by_group.entry(e.log_group.as_str()).or_default().push(e);
    }
    by_group
        .into_values()
        .filter_map(thawtrace_analyzers::risk::Risk::of)
        .filter(thawtrace_analyzers::risk::Risk::is_exposed)
        .collect()
}
