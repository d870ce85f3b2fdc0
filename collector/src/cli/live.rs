//! `scan --log-group` / `--log-group-prefix`: read live log groups through
//! the CloudWatch Logs client into the same JSON-lines text an export
//! would be, several groups at once.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::lookback::cloudwatch::{CloudWatch, GroupEvent, Query};

use super::{ScanArgs, Source};

/// How many `FilterLogEvents` requests run at once, over every group and
/// its streams: well inside the API's quota (25 requests a second per
/// account and region, by default); the SDK retries a throttled one.
const REQUESTS_IN_FLIGHT: usize = 8;

/// How many streams one `FilterLogEvents` request names (the API's limit
/// is 100).
const STREAMS_PER_REQUEST: usize = 100;

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
                    "id": e.event.id(), "timestamp": e.event.timestamp_ms, "message": e.event.message(),
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

/// Reads each group with `template`'s streams and times: its streams are
/// listed, then read [`STREAMS_PER_REQUEST`] at a time, every group's
/// requests at once with at most [`REQUESTS_IN_FLIGHT`] in flight, showing
/// one count of the events read on stderr when it is a terminal. The groups
/// come back in the order given, each group's events by time.
async fn read_groups(
    client: &CloudWatch,
    groups: Vec<String>,
    template: &Query,
) -> Result<Vec<(String, Vec<GroupEvent>)>, String> {
    let tty = std::io::stderr().is_terminal();
    let total = groups.len();
    let slots = Arc::new(tokio::sync::Semaphore::new(REQUESTS_IN_FLIGHT));
    // Each group's streams, listed under the same bound.
    let mut listings = tokio::task::JoinSet::new();
    for (i, group) in groups.iter().enumerate() {
        let (client, slots, group, query) = (
            client.clone(),
            slots.clone(),
            group.clone(),
            template.clone(),
        );
        listings.spawn(async move {
            let _slot = slots.acquire_owned().await.map_err(|e| e.to_string())?;
            let streams = client
                .streams(
                    &group,
                    query.stream_prefix.as_deref(),
                    query.start_ms,
                    query.end_ms,
                )
                .await?;
            Ok::<_, String>((i, streams))
        });
    }
    let mut streams: Vec<Vec<String>> = vec![Vec::new(); total];
    while let Some(listed) = listings.join_next().await {
        let (i, s) = listed.map_err(|e| e.to_string())??;
        streams[i] = s;
    }
    // One request per chunk of a group's streams.
    let chunks: Vec<(usize, Vec<String>)> = streams
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.chunks(STREAMS_PER_REQUEST).map(move |c| (i, c.to_vec())))
        .collect();
    let left: Arc<Vec<AtomicUsize>> =
        Arc::new(groups.iter().map(|_| AtomicUsize::new(0)).collect());
    for (i, _) in &chunks {
        left[*i].fetch_add(1, Ordering::Relaxed);
    }
    let done = Arc::new(AtomicUsize::new(
        left.iter()
            .filter(|n| n.load(Ordering::Relaxed) == 0)
            .count(),
    ));
    let read_so_far = Arc::new(AtomicUsize::new(0));
    let show = move |done: &AtomicUsize, read: &AtomicUsize| {
        if tty {
            let line = progress_line(
                done.load(Ordering::Relaxed),
                total,
                read.load(Ordering::Relaxed),
            );
            eprint!("\r{line}");
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (i, chunk) in chunks {
        let (client, slots, left, done, read_so_far) = (
            client.clone(),
            slots.clone(),
            left.clone(),
            done.clone(),
            read_so_far.clone(),
        );
        let query = Query {
            group: groups[i].clone(),
            streams: chunk,
            stream_prefix: None,
            ..template.clone()
        };
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut counted = 0;
            let events = client
                .events(&query, |n| {
                    read_so_far.fetch_add(n - counted, Ordering::Relaxed);
                    counted = n;
                    show(&done, &read_so_far);
                })
                .await?;
            if left[i].fetch_sub(1, Ordering::Relaxed) == 1 {
                done.fetch_add(1, Ordering::Relaxed);
            }
            show(&done, &read_so_far);
            Ok::<_, String>((i, events))
        });
    }
    let mut read: Vec<Vec<GroupEvent>> = vec![Vec::new(); total];
    while let Some(finished) = tasks.join_next().await {
        let (i, events) = finished.map_err(|e| e.to_string())??;
        read[i].extend(events);
    }
    if tty {
        eprintln!();
    }
    Ok(groups
        .into_iter()
        .zip(read)
        .map(|(g, mut events)| {
            events.sort_by(|a, b| {
                (a.event.timestamp_ms, &a.stream, a.event.id()).cmp(&(
                    b.event.timestamp_ms,
                    &b.stream,
                    b.event.id(),
                ))
            });
            (g, events)
        })
        .collect())
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
