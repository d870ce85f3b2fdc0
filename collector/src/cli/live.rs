//! `scan --log-group`: read a live log group through the CloudWatch Logs
//! client into the same JSON-lines text an export would be.

use std::io::IsTerminal;

use super::{ScanArgs, Source};

/// A point in time: RFC 3339, or a duration back from `now_ms`.
fn parse_when(s: &str, now_ms: i64) -> Result<i64, String> {
    thawtrace_analyzers::time::parse_rfc3339(s)
        .map_or_else(
            || thawtrace_analyzers::time::parse_duration_ms(s).map(|d| now_ms - d),
            Ok,
        )
        .map_err(|_| format!("{s:?} is neither an RFC 3339 time nor a duration like 2h"))
}

/// Reads a live log group into one JSON-lines source: the same text an
/// export of those events would be, so both give the same findings.
pub(super) fn live(group: &str, args: &ScanArgs) -> Result<Source, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let start_ms = parse_when(&args.since, now)?;
    let end_ms = match &args.until {
        Some(u) => parse_when(u, now)?,
        None => now + 1,
    };
    if end_ms <= start_ms {
        return Err(format!(
            "--until ({end_ms}) is not after --since ({start_ms})"
        ));
    }
    let query = crate::lookback::cloudwatch::Query {
        group: group.to_owned(),
        stream_prefix: args.log_stream_prefix.clone(),
        start_ms,
        end_ms,
        ..Default::default()
    };
    let tty = std::io::stderr().is_terminal();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let events = runtime.block_on(async {
        let client =
            crate::lookback::cloudwatch::CloudWatch::new(args.endpoint_url.as_deref()).await;
        client
            .events(&query, |n| {
                if tty {
                    eprint!("\rthawtrace: {n} events read from {group}");
                }
            })
            .await
    })?;
    if tty {
        eprintln!();
    }
    let mut text = String::new();
    for e in events {
        let line = serde_json::json!({
            "id": e.event.id, "timestamp": e.event.timestamp_ms, "message": e.event.message,
            "logStream": e.stream, "logGroup": group,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    if text.is_empty() {
        return Err(format!(
            "no events between --since and --until (from {})",
            thawtrace_analyzers::time::rfc3339(start_ms)
        ));
    }
    Ok(Source::text(format!("log group {group}"), text))
}
