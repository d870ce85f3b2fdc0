//! The story a person needs: which invocation sent the ping, which one
//! timed out, how long the environment was frozen, what failed, the fix.

use std::borrow::Cow;
use std::fmt::Write;

use thawtrace_analyzers::parse::NetCause;
use thawtrace_analyzers::time::rfc3339;
use thawtrace_analyzers::{
    Detail, DuplicateReason, ExecutionMode, Finding, Incident, KeepaliveKind,
};

use super::printable::{joined, printable};

// Every field that comes from the logs is shown through `printable`: a
// stream name or an event ID may hold terminal escapes.

fn function_name(group: &str) -> Cow<'_, str> {
    printable(crate::export::spans::function_name(group))
}

fn id(v: Option<&str>) -> Cow<'_, str> {
    printable(v.unwrap_or("(none)"))
}

/// The finding as a paragraph of text: where, the ping, the timeout, the
/// failed call, then the evidence and the fix.
pub fn render(f: &Finding) -> String {
    let mut s = String::new();
    finding_heading(&mut s, f);
    ping_lines(&mut s, f);
    timeout_lines(&mut s, f);
    if let Some(call) = &f.failed_call {
        let _ = writeln!(
            s,
            "  {}  call failed     {} (event {})",
            rfc3339(call.at_ms),
            call.code,
            printable(&call.event_id)
        );
    }
    if f.execution_mode == ExecutionMode::ManagedInstances && !f.failed_request_ids.is_empty() {
        let _ = writeln!(
            s,
            "  failed      invocations {}",
            joined(&f.failed_request_ids)
        );
    }
    let _ = writeln!(s, "  evidence    {}", joined(&f.evidence));
    let _ = writeln!(s, "  fix         {}", f.advice());
    s
}

/// The title (kind, function, library), the stream and the connection.
fn finding_heading(s: &mut String, f: &Finding) {
    let title = match (f.kind, f.execution_mode) {
        (KeepaliveKind::FreezeTimeout, _) => "KEEPALIVE FREEZE TIMEOUT",
        (KeepaliveKind::Timeout, ExecutionMode::ManagedInstances) => {
            "keepalive timeout (Managed Instances: never frozen)"
        }
        (KeepaliveKind::Timeout, _) => "keepalive timeout (genuine, same invocation)",
    };
    let _ = writeln!(
        s,
        "{title}  function {}  ({})",
        function_name(&f.log_group),
        f.library.name()
    );
    let _ = writeln!(s, "  stream      {}", printable(&f.log_stream));
    let _ = writeln!(s, "  connection  {}", printable(&f.connection));
    if let Some(tenant) = &f.tenant_id {
        let _ = writeln!(s, "  tenant      {}", printable(tenant));
    }
}

/// When the ping was sent and in which invocation, and how long the
/// environment was frozen after it.
fn ping_lines(s: &mut String, f: &Finding) {
    let timeout = f
        .ping_timeout_ms
        .map(|t| format!(", ack timeout {t} ms"))
        .unwrap_or_default();
    // grpc-go prints no ping: its time is the start of the silence it went out in.
    let what = if f.inferred_from == Some(thawtrace_analyzers::Inference::TransportClose) {
        "quiet since    "
    } else {
        "ping sent      "
    };
    let _ = writeln!(
        s,
        "  {}  {what} in invocation {}{timeout}",
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
}

/// When the ping timed out and in which invocation, with what the reader
/// needs to trust that: the request ID the line itself prints, how the
/// finding was inferred, the ack read late.
fn timeout_lines(s: &mut String, f: &Finding) {
    let _ = writeln!(
        s,
        "  {}  ping timed out  in invocation {}",
        rfc3339(f.timeout_at_ms),
        id(f.timeout_request_id.as_deref())
    );
    if f.kind == KeepaliveKind::FreezeTimeout
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
}

/// A neighbouring failure as a paragraph of text: a title, what happened
/// (told the way its kind needs), then the evidence and the fix.
pub fn render_incident(i: &Incident) -> String {
    let mut s = String::new();
    let title = match i.detail {
        Detail::NatIdleReset { .. } => "NAT IDLE RESET",
        Detail::ConnectStall { .. } => "CONNECT STALL",
        Detail::DuplicateInvocation { .. } => "DUPLICATE INVOCATION",
        Detail::SnapStartStaleConnection { .. } => "SNAPSTART STALE CONNECTION",
        Detail::KeepaliveNearMiss { .. } => "keepalive near miss (warning)",
        Detail::NatIdleNearMiss { .. } => "NAT idle near miss (warning)",
        Detail::ConnectSlow { .. } => "slow connect (warning)",
    };
    let _ = writeln!(s, "{title}  function {}", function_name(&i.log_group));
    match &i.detail {
        Detail::NatIdleReset {
            cause,
            idle_ms,
            nat_idle_timeout_ms,
            destination,
        } => nat_idle_reset_lines(
            &mut s,
            i,
            *cause,
            *idle_ms,
            *nat_idle_timeout_ms,
            destination.as_deref(),
        ),
        Detail::ConnectStall {
            environments,
            destinations,
            window_ms,
        } => connect_stall_lines(&mut s, i, *environments, destinations, *window_ms),
        Detail::DuplicateInvocation {
            reason,
            attempts,
            key,
        } => duplicate_invocation_lines(&mut s, i, *reason, *attempts, key.as_deref()),
        Detail::SnapStartStaleConnection {
            connection,
            restore_at_ms,
            failure,
            ..
        } => stale_connection_lines(&mut s, i, connection.as_deref(), *restore_at_ms, failure),
        Detail::ConnectSlow {
            destination,
            connect_ms,
            threshold_ms,
            ..
        } => {
            let _ = writeln!(s, "  stream      {}", printable(&i.log_stream));
            let _ = writeln!(s, "  invocation  {}", joined(&i.request_ids));
            let _ = writeln!(
                s,
                "  {}  the connect to {} took {connect_ms} ms and went through (slow from {threshold_ms} ms: a lost SYN)",
                rfc3339(i.first_at_ms),
                printable(destination)
            );
        }
        Detail::NatIdleNearMiss {
            destination,
            idle_ms,
            nat_idle_timeout_ms,
            margin_ms,
            ..
        } => {
            let _ = writeln!(s, "  stream      {}", printable(&i.log_stream));
            let _ = writeln!(s, "  invocation  {}", joined(&i.request_ids));
            let _ = writeln!(
                s,
                "  {}  the connection to {} was used again after {idle_ms} ms idle: {margin_ms} ms short of the NAT idle timeout ({nat_idle_timeout_ms} ms)",
                rfc3339(i.last_at_ms),
                printable(destination)
            );
        }
        Detail::KeepaliveNearMiss {
            library,
            connection,
            ping_request_id,
            ack_request_id,
            ping_at_ms,
            waited_ms,
            margin_ms,
            frozen_ms,
            ..
        } => {
            let _ = writeln!(s, "  stream      {}", printable(&i.log_stream));
            let _ = writeln!(
                s,
                "  connection  {} ({})",
                printable(connection),
                library.name()
            );
            let _ = writeln!(
                s,
                "  {}  ping sent       in invocation {}",
                rfc3339(*ping_at_ms),
                id(ping_request_id.as_deref())
            );
            if let Some(frozen) = frozen_ms {
                let _ = writeln!(s, "  {:>24}  frozen {frozen} ms with it in flight", "");
            }
            let margin = match margin_ms {
                Some(m) if *m >= 0 => format!(", {m} ms before its timer"),
                Some(m) => format!(", {} ms after its timer expired: the ack won the race", -m),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "  {}  ack read        in invocation {} after {waited_ms} ms{margin}",
                rfc3339(i.last_at_ms),
                id(ack_request_id.as_deref())
            );
        }
    }
    if let Some(tenant) = &i.tenant_id {
        let _ = writeln!(s, "  tenant      {}", printable(tenant));
    }
    let _ = writeln!(s, "  evidence    {}", joined(&i.evidence));
    let _ = writeln!(s, "  fix         {}", i.advice());
    s
}

/// A NAT idle reset: its stream and invocation, then what failed after how
/// long idle, against which NAT idle timeout, to where.
fn nat_idle_reset_lines(
    s: &mut String,
    i: &Incident,
    cause: NetCause,
    idle_ms: i64,
    nat_idle_timeout_ms: i64,
    destination: Option<&str>,
) {
    let what = match cause {
        NetCause::ReadTimeout => "a call waited for a reply that never came",
        NetCause::FunctionTimeout => "the function timed out waiting, silent",
        _ => "the first use of the connection was reset",
    };
    let _ = writeln!(s, "  stream      {}", printable(&i.log_stream));
    let _ = writeln!(s, "  invocation  {}", joined(&i.request_ids));
    let _ = writeln!(
        s,
        "  {}  {what}: idle {idle_ms} ms, NAT idle timeout {nat_idle_timeout_ms} ms{}",
        rfc3339(i.first_at_ms),
        destination
            .map(|d| format!(", to {}", printable(d)))
            .unwrap_or_default()
    );
}

/// A function's keepalive risk as a paragraph: what its freezes and pings
/// showed, how likely a freeze timeout is per day, what removes it.
pub fn render_risk(r: &thawtrace_analyzers::risk::Risk) -> String {
    format!(
        "KEEPALIVE RISK  function {}\n  {}\n",
        function_name(&r.log_group),
        printable(&r.explain())
    )
}

/// A SnapStart stale connection: the restore, then the invocation whose
/// first call on the restored connection failed, and how.
fn stale_connection_lines(
    s: &mut String,
    i: &Incident,
    connection: Option<&str>,
    restore_ms: i64,
    failure: &str,
) {
    let _ = writeln!(s, "  stream      {}", printable(&i.log_stream));
    let _ = writeln!(s, "  invocation  {}", joined(&i.request_ids));
    if let Some(c) = connection {
        let _ = writeln!(s, "  connection  {}", printable(c));
    }
    let _ = writeln!(
        s,
        "  {}  restored from the SnapStart snapshot, with the connections of its init",
        rfc3339(restore_ms)
    );
    let _ = writeln!(
        s,
        "  {}  the first call after the restore failed: {}",
        rfc3339(i.last_at_ms),
        printable(failure)
    );
}

/// A connect stall: how many environments timed out connecting to where,
/// within what window, when, and which streams and invocations.
fn connect_stall_lines(
    s: &mut String,
    i: &Incident,
    environments: usize,
    destinations: &[String],
    window_ms: i64,
) {
    let _ = writeln!(
        s,
        "  {environments} environments timed out connecting to {} within {window_ms} ms",
        if destinations.is_empty() {
            "(unnamed)".to_owned()
        } else {
            destinations
                .iter()
                .map(|d| printable(d))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(
        s,
        "  {} .. {}",
        rfc3339(i.first_at_ms),
        rfc3339(i.last_at_ms)
    );
    let _ = writeln!(s, "  streams     {}", joined(&i.log_streams));
    let _ = writeln!(s, "  invocations {}", joined(&i.request_ids));
}

/// A duplicate invocation: which request ID started again, or which key
/// was handled by several invocations; when, and in which streams.
fn duplicate_invocation_lines(
    s: &mut String,
    i: &Incident,
    reason: DuplicateReason,
    attempts: usize,
    key: Option<&str>,
) {
    let how = match (reason, key) {
        (DuplicateReason::Retried, _) => format!(
            "request ID {} started {attempts} times",
            joined(&i.request_ids)
        ),
        (DuplicateReason::SameKey, Some(key)) => format!(
            "{} handled by {attempts} invocations: {}",
            printable(key),
            joined(&i.request_ids)
        ),
        (DuplicateReason::SameKey, None) => format!("{attempts} invocations"),
    };
    let _ = writeln!(s, "  {how}");
    let _ = writeln!(
        s,
        "  {} .. {}",
        rfc3339(i.first_at_ms),
        rfc3339(i.last_at_ms)
    );
    let _ = writeln!(s, "  streams     {}", joined(&i.log_streams));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_controls(s: &str) -> Vec<char> {
        s.chars().filter(|&c| c.is_control() && c != '\n').collect()
    }

    #[test]
    fn incidents_show_what_the_logs_hold_escaped() {
        let hostile = |what: &str| format!("{what}\u{1b}[2J\u{9b}");
        for detail in [
            Detail::NatIdleReset {
                cause: NetCause::Reset,
                idle_ms: 400_000,
                nat_idle_timeout_ms: 350_000,
                destination: Some(hostile("orders.internal:443")),
            },
            Detail::ConnectStall {
                environments: 3,
                destinations: vec![hostile("orders.internal:443")],
                window_ms: 60_000,
            },
            Detail::DuplicateInvocation {
                reason: DuplicateReason::SameKey,
                attempts: 2,
                key: Some(hostile("messageId=m-1")),
            },
            Detail::SnapStartStaleConnection {
                request_id: hostile("req-1"),
                connection: Some(hostile("ipv4:10.0.0.1:443")),
                restore_at_ms: 1_795_853_230_000,
                failure: "UNAVAILABLE",
            },
        ] {
            let incident = Incident {
                log_group: hostile("/aws/lambda/orders"),
                log_stream: hostile("stream-a"),
                log_streams: vec![hostile("stream-a"), hostile("stream-b")],
                request_ids: vec![hostile("req-1")],
                first_at_ms: 1_795_853_230_000,
                last_at_ms: 1_795_853_231_000,
                detail,
                evidence: vec![hostile("event-1")],
                tenant_id: Some(hostile("tenant-1")),
            };
            let text = render_incident(&incident);
            assert_eq!(raw_controls(&text), Vec::<char>::new(), "{text}");
            assert!(text.contains(r"orders\x1b[2J\u{9b}"), "{text}");
        }
    }
}
