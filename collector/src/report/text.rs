//! The story a person needs: which invocation sent the ping, which one
//! timed out, how long the environment was frozen, what failed, the fix.

use std::fmt::Write;

use thawtrace_analyzers::time::rfc3339;
use thawtrace_analyzers::{Detail, Finding, FindingKind, Incident};

use super::advice;

fn function_name(group: &str) -> &str {
    group.strip_prefix("/aws/lambda/").unwrap_or(group)
}

fn id(v: Option<&str>) -> &str {
    v.unwrap_or("(none)")
}

/// The finding as a paragraph of text.
pub fn render(f: &Finding) -> String {
    let mut s = String::new();
    let title = match f.kind {
        FindingKind::KeepaliveFreezeTimeout => "KEEPALIVE FREEZE TIMEOUT",
        _ => "keepalive timeout (genuine, same invocation)",
    };
    let _ = writeln!(
        s,
        "{title}  function {}  ({})",
        function_name(&f.log_group),
        f.library.name()
    );
    let _ = writeln!(s, "  stream      {}", f.log_stream);
    let _ = writeln!(s, "  connection  {}", f.connection);
    let timeout = f
        .ping_timeout_ms
        .map(|t| format!(", ack timeout {t} ms"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "  {}  ping sent       in invocation {}{timeout}",
        rfc3339(f.ping_at_ms),
        id(f.ping_request_id.as_deref())
    );
    if let Some(frozen) = f.frozen_ms {
        let _ = writeln!(
            s,
            "  {:>24}  frozen {frozen} ms between the two invocations",
            ""
        );
    }
    let _ = writeln!(
        s,
        "  {}  ping timed out  in invocation {}",
        rfc3339(f.timeout_at_ms),
        id(f.timeout_request_id.as_deref())
    );
    if f.kind == FindingKind::KeepaliveFreezeTimeout
        && f.timeout_line_request_id.is_some()
        && f.timeout_line_request_id != f.timeout_request_id
    {
        let _ = writeln!(
            s,
            "  {:>24}  (the timeout line prints request ID {}: it fired at the thaw, before the new invocation's code ran)",
            "",
            id(f.timeout_line_request_id.as_deref())
        );
    }
    if let Some(inference) = f.inferred_from {
        let _ = writeln!(s, "  {:>24}  inferred: {}", "", inference.describe());
    }
    if f.ack_event_id.is_some() {
        let _ = writeln!(
            s,
            "  {:>24}  the ack was read right after: it had been waiting in the socket",
            ""
        );
    }
    if let Some(call) = &f.failed_call {
        let _ = writeln!(
            s,
            "  {}  call failed     {} (event {})",
            rfc3339(call.at_ms),
            call.code,
            call.event_id
        );
    }
    let _ = writeln!(s, "  evidence    {}", f.evidence.join(" "));
    let _ = writeln!(s, "  fix         {}", advice(f));
    s
}

/// A neighbouring failure as a paragraph of text.
pub fn render_incident(i: &Incident) -> String {
    let mut s = String::new();
    let title = match i.kind {
        FindingKind::NatIdleReset => "NAT IDLE RESET",
        FindingKind::ConnectStall => "CONNECT STALL",
        _ => "DUPLICATE INVOCATION",
    };
    let _ = writeln!(s, "{title}  function {}", function_name(&i.log_group));
    match &i.detail {
        Detail::NatIdleReset {
            cause,
            idle_ms,
            nat_idle_timeout_ms,
            destination,
        } => {
            let what = match cause {
                thawtrace_analyzers::parse::NetCause::ReadTimeout => {
                    "a call waited for a reply that never came"
                }
                thawtrace_analyzers::parse::NetCause::FunctionTimeout => {
                    "the function timed out waiting, silent"
                }
                _ => "the first use of the connection was reset",
            };
            let _ = writeln!(s, "  stream      {}", i.log_stream);
            let _ = writeln!(s, "  invocation  {}", i.request_ids.join(" "));
            let _ = writeln!(
                s,
                "  {}  {what}: idle {idle_ms} ms, NAT idle timeout {nat_idle_timeout_ms} ms{}",
                rfc3339(i.first_at_ms),
                destination
                    .as_deref()
                    .map(|d| format!(", to {d}"))
                    .unwrap_or_default()
            );
        }
        Detail::ConnectStall {
            environments,
            destinations,
            window_ms,
        } => {
            let _ = writeln!(
                s,
                "  {environments} environments timed out connecting to {} within {window_ms} ms",
                if destinations.is_empty() {
                    "(unnamed)".to_owned()
                } else {
                    destinations.join(", ")
                }
            );
            let _ = writeln!(
                s,
                "  {} .. {}",
                rfc3339(i.first_at_ms),
                rfc3339(i.last_at_ms)
            );
            let _ = writeln!(s, "  streams     {}", i.log_streams.join(" "));
            let _ = writeln!(s, "  invocations {}", i.request_ids.join(" "));
        }
        Detail::DuplicateInvocation {
            reason,
            attempts,
            key,
        } => {
            let how = match (*reason, key) {
                ("retried", _) => format!(
                    "request ID {} started {attempts} times",
                    i.request_ids.join(" ")
                ),
                (_, Some(key)) => format!(
                    "{key} handled by {attempts} invocations: {}",
                    i.request_ids.join(" ")
                ),
                _ => format!("{attempts} invocations"),
            };
            let _ = writeln!(s, "  {how}");
            let _ = writeln!(
                s,
                "  {} .. {}",
                rfc3339(i.first_at_ms),
                rfc3339(i.last_at_ms)
            );
            let _ = writeln!(s, "  streams     {}", i.log_streams.join(" "));
        }
    }
    let _ = writeln!(s, "  evidence    {}", i.evidence.join(" "));
    let _ = writeln!(s, "  fix         {}", i.kind.advice());
    s
}
