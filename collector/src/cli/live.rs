//! `scan --log-group` / `--log-group-prefix`: read live log groups through
//! the CloudWatch Logs client into the same JSON-lines text an export
//! would be, several groups at once.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::lookback::cloudwatch::{CloudWatch, GroupEvent, Query};

use super::{ScanArgs, Source};

/// How many log groups are read at once: each reads its pages one after
/// another, so this bounds the requests in flight, well inside
/// FilterLogEvents' quota; the SDK retries a throttled one.
const GROUPS_IN_FLIGHT: usize = 4;

/// A point in time: RFC 3339, or a duration back from `now_ms`.
fn parse_when(s: &str, now_ms: i64) -> Result<i64, String> {
    thawtrace_analyzers::time::parse_rfc3339(s)
        .map_or_else(
            || thawtrace_analyzers::time::parse_duration_ms(s).map(|d| now_ms - d),
            Ok,
        )
        .map_err(|_| format!("{s:?} is neither an RFC 3339 time nor a duration like 2h"))
}

/// Reads the live log groups `--log-group` names and `--log-group-prefix`
/// finds into one JSON-lines source each, in name order: the same text an
/// export of those events would be, so both give the same findings.
pub(super) fn live(args: &ScanArgs) -> Result<Vec<Source>, String> {
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let read = runtime.block_on(async {
        let client = CloudWatch::new(args.endpoint_url.as_deref()).await;
        let mut groups = args.log_group.clone();
        if let Some(prefix) = &args.log_group_prefix {
            let found = client.groups(prefix).await?;
            if found.is_empty() {
                return Err(format!("no log group's name starts with {prefix}"));
            }
            groups.extend(found);
        }
        groups.sort();
        groups.dedup();
        let template = Query {
            stream_prefix: args.log_stream_prefix.clone(),
            start_ms,
            end_ms,
            ..Default::default()
        };
        read_groups(&client, groups, &template).await
    })?;
    let sources: Vec<Source> = read
        .into_iter()
        .filter(|(_, events)| !events.is_empty())
        .map(|(group, events)| {
            let mut text = String::new();
            for e in events {
                let line = serde_json::json!({
                    "id": e.event.id, "timestamp": e.event.timestamp_ms, "message": e.event.message,
                    "logStream": e.stream, "logGroup": group,
                });
                text.push_str(&line.to_string());
                text.push('\n');
            }
            Source::text(format!("log group {group}"), text)
        })
        .collect();
    if sources.is_empty() {
        return Err(format!(
            "no events between --since and --until (from {})",
            thawtrace_analyzers::time::rfc3339(start_ms)
        ));
    }
    Ok(sources)
}

/// Reads each group with `template`'s streams and times, at most
/// [`GROUPS_IN_FLIGHT`] at once, showing one count of the events read on
/// stderr when it is a terminal. The groups come back in the order given.
async fn read_groups(
    client: &CloudWatch,
    groups: Vec<String>,
    template: &Query,
) -> Result<Vec<(String, Vec<GroupEvent>)>, String> {
    let tty = std::io::stderr().is_terminal();
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new(groups.iter().map(|_| AtomicUsize::new(0)).collect());
    let done = Arc::new(AtomicUsize::new(0));
    let show = move |counts: &[AtomicUsize], done: &AtomicUsize| {
        if tty {
            let read: usize = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            let line = progress_line(done.load(Ordering::Relaxed), counts.len(), read);
            eprint!("\r{line}");
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(GROUPS_IN_FLIGHT));
    let total = groups.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, group) in groups.into_iter().enumerate() {
        let (client, counts, slots, done) =
            (client.clone(), counts.clone(), slots.clone(), done.clone());
        let query = Query {
            group: group.clone(),
            ..template.clone()
        };
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.map_err(|e| e.to_string())?;
            let events = client
                .events(&query, |n| {
                    counts[i].store(n, Ordering::Relaxed);
                    show(&counts, &done);
                })
                .await?;
            done.fetch_add(1, Ordering::Relaxed);
            show(&counts, &done);
            Ok::<_, String>((i, group, events))
        });
    }
    let mut read = Vec::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        read.push(done.map_err(|e| e.to_string())??);
    }
    if tty {
        eprintln!();
    }
    read.sort_by_key(|(i, _, _)| *i);
    Ok(read.into_iter().map(|(_, g, e)| (g, e)).collect())
}

/// The progress line of a live scan: a bar of the groups read, and the
/// events read so far.
///
/// ```text
/// thawtrace: [########------------] 2/5 log groups, 1234 events
/// ```
fn progress_line(done: usize, total: usize, events: usize) -> String {
    const WIDTH: usize = 20;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    format!(
        "thawtrace: [{}{}] {done}/{total} log group{}, {events} events",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        if total == 1 { "" } else { "s" },
    )
}

#[cfg(test)]
mod tests {
    use super::progress_line;

    #[test]
    fn the_progress_bar_fills_as_groups_are_read() {
        assert_eq!(
            progress_line(0, 4, 0),
            "thawtrace: [--------------------] 0/4 log groups, 0 events"
        );
        assert_eq!(
            progress_line(1, 4, 250),
            "thawtrace: [#####---------------] 1/4 log groups, 250 events"
        );
        assert_eq!(
            progress_line(1, 1, 7),
            "thawtrace: [####################] 1/1 log group, 7 events"
        );
        assert_eq!(
            progress_line(0, 0, 0),
            "thawtrace: [####################] 0/0 log groups, 0 events"
        );
    }
}
