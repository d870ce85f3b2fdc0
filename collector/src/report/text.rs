//! The story a person needs: which invocation sent the ping, which one
//! timed out, how long the environment was frozen, what failed, the fix.

use std::fmt::Write;

use thawtrace_analyzers::time::rfc3339;
use thawtrace_analyzers::{Finding, FindingKind};

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
        FindingKind::KeepaliveTimeout => "keepalive timeout (genuine, same invocation)",
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
