//! Cross-stream state shared by any number of concurrent collectors, in a
//! DynamoDB table (`THAWTRACE_STATE_TABLE`), so connect stalls and
//! duplicate invocations are found whichever instance got which batch.
//! Without a table a collector keeps this state in its own process
//! ([`thawtrace_analyzers::Neighbours`]), as the CLI does.
//!
//! After a batch is correlated, [`SharedState::join`]:
//!
//! 1. stores each of its signals as one item, written only if its key (its
//!    partition, event time and event ID; see [`item`]) is new: a failed
//!    condition means the event came before (a batch delivered again, or
//!    an event read again through the lookback);
//! 2. raises the shared event-time watermark to the batch's newest event
//!    (never the wall clock), after its signals are stored, so a collector
//!    that sees the watermark past a window also sees the window's signals;
//! 3. reads every partition it wrote to (and those of groups whose every
//!    stall window the watermark has closed since a collector last read
//!    them: listed under `stalls`, so a batch of any function closes
//!    them) with a consistent Query, and
//!    computes their incidents as a whole scan does
//!    ([`Neighbours::incidents_of`]);
//! 4. reports each incident that is settled ([`Settlement`]: a duplicate
//!    at once, a connect stall once its window is closed) when a
//!    conditional update of its marker wins: exactly once across all
//!    collectors, and again when a duplicate gains an attempt. An incident
//!    holding an event of this batch that came before is reported again
//!    (the same incident, with the same span IDs), as a batch delivered
//!    again gives all its findings again; nothing in the table changes.
//!
//! A stall is reported only once the watermark has passed its window's end
//! by one more window, so its connect timeouts may reach the collectors up
//! to a window later than the newest event seen and still be joined as a
//! whole scan joins them; the in-process state reports a stall as soon as
//! enough environments are in (an earlier alarm that a late timeout can
//! change). Items expire (TTL) a grace of [`item::GRACE_MS`] after their
//! event time and window.

pub mod errors;
pub mod item;
pub mod table;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use thawtrace_analyzers::neighbours::Settlement;
use thawtrace_analyzers::{Config, Incident, Neighbours, Signal, SignalKind};
use tokio::task::JoinSet;

use errors::StateError;
use item::{
    REPORTED, REPORTED_SIZE, STALLS, STALLS_CHECKED, STALLS_LAST, WATERMARK, WATERMARK_TIME,
};
use table::{Raised, Table};

/// Bounds of what one batch reads and how many calls it has in flight.
#[derive(Clone, Copy, Debug)]
pub struct StateLimits {
    /// Items read of a group's connect timeouts (and its markers).
    pub stall_items: usize,
    /// Items read of one request ID's starts or one key's sightings (and
    /// its marker): the analyzers keep 64 attempts.
    pub attempt_items: usize,
    /// Groups with connect timeouts read from the `stalls` partition.
    pub groups: usize,
    /// DynamoDB calls in flight at once.
    pub in_flight: usize,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            stall_items: 10_000,
            attempt_items: 65,
            groups: 1_000,
            in_flight: 16,
        }
    }
}

/// What joining a batch with the shared state gave.
#[derive(Debug, Default)]
pub struct Joined {
    /// The incidents to report with this batch.
    pub incidents: Vec<Incident>,
    /// The batch's signals that fell past [`StateLimits`] in their
    /// partition (not joined).
    pub dropped: u64,
}

/// The shared state of the cross-stream kinds; see the module documentation.
#[derive(Clone)]
pub struct SharedState {
    inner: Arc<Inner>,
}

struct Inner {
    table: Table,
    config: Config,
    limits: StateLimits,
}

/// What to do with a computed incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing: not settled, or reported already and none of its events
    /// came again.
    Skip,
    /// Report it: one of its events came again (its marker stays).
    Again,
    /// Claim its marker; report it if the claim wins, or if `again`.
    Claim {
        /// One of its events came again: reported whoever wins.
        again: bool,
    },
}

/// What to do with an incident whose settlement is `s`, at watermark
/// `watermark_ms`, whose marker holds `reported` (the size it was last
/// reported with), and which holds an event that came again or not.
///
/// ```
/// use thawtrace::state::{Step, step};
/// use thawtrace_analyzers::neighbours::Settlement;
/// let stall = Settlement { identity: "s".into(), size: 3, closed_after_ms: Some(100) };
/// assert_eq!(step(&stall, 100, None, false), Step::Skip, "window still open");
/// assert_eq!(step(&stall, 101, None, false), Step::Claim { again: false });
/// assert_eq!(step(&stall, 101, Some(3), false), Step::Skip);
/// assert_eq!(step(&stall, 101, Some(3), true), Step::Again);
/// assert_eq!(step(&stall, 101, Some(2), true), Step::Claim { again: true });
/// ```
pub fn step(s: &Settlement, watermark_ms: i64, reported: Option<usize>, again: bool) -> Step {
    if !s.is_closed(watermark_ms) {
        Step::Skip
    } else if reported.is_some_and(|n| n >= s.size) {
        if again { Step::Again } else { Step::Skip }
    } else {
        Step::Claim { again }
    }
}

impl SharedState {
    /// The state in `table`, with the thresholds of `config`.
    pub fn new(table: Table, config: Config, limits: StateLimits) -> SharedState {
        SharedState {
            inner: Arc::new(Inner {
                table,
                config,
                limits,
            }),
        }
    }

    /// Joins a batch's `signals` with the shared state and returns the
    /// incidents to report with it; `newest_ms` is the batch's newest event
    /// time (the watermark is raised to it).
    ///
    /// # Errors
    ///
    /// A DynamoDB call failed once the SDK's retries were spent: the batch
    /// is to be delivered again (what it stored reads as a redelivery).
    pub async fn join(
        &self,
        signals: Vec<Signal>,
        newest_ms: Option<i64>,
    ) -> Result<Joined, StateError> {
        let inner = &self.inner;
        let config = &inner.config;
        let longest = config
            .duplicate_window_ms
            .max(config.connect_stall_window_ms);
        let Some(newest) = signals.iter().map(|s| s.at_ms).chain(newest_ms).max() else {
            return Ok(Joined::default());
        };

        // 1. The signals, each once.
        let mut mine: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut stall_last: BTreeMap<String, i64> = BTreeMap::new();
        let mut puts = Vec::new();
        for s in &signals {
            let Some(it) = item::signal_item(s, item::expires_s(s.at_ms, longest)) else {
                continue;
            };
            let pk = item::partition(s).expect("an item has a partition");
            mine.entry(pk).or_default().push(s.event_id.clone());
            if let SignalKind::ConnectTimeout { .. } = s.what {
                let last = stall_last.entry(s.log_group.to_string()).or_insert(s.at_ms);
                *last = (*last).max(s.at_ms);
            }
            puts.push((s.event_id.clone(), it));
        }
        let stored = self
            .each(puts, |inner, (event, it)| async move {
                Ok((event, inner.table.put_new(it).await?))
            })
            .await?;
        let again: Arc<HashSet<String>> = Arc::new(
            stored
                .into_iter()
                .filter(|(_, new)| !new)
                .map(|(event, _)| event)
                .collect(),
        );

        // 2. The groups with connect timeouts, then the watermark.
        let groups = stall_last.into_iter().collect::<Vec<_>>();
        self.each(groups, move |inner, (group, last)| async move {
            let expires = item::expires_s(last, longest);
            inner
                .table
                .raise((STALLS, &group), STALLS_LAST, last, Some(expires))
                .await
                .map(drop)
        })
        .await?;
        let watermark = match inner
            .table
            .raise((WATERMARK, WATERMARK), WATERMARK_TIME, newest, None)
            .await?
        {
            Raised::Yes | Raised::Already(None) => newest,
            Raised::Already(Some(t)) => t.max(newest),
        };

        // 3. The groups whose windows are all closed now and not yet
        // settled are read too.
        let (open, _) = inner.table.query(STALLS, inner.limits.groups).await?;
        let window = config.connect_stall_window_ms;
        let mut closing = Vec::new();
        for g in &open {
            let (Some(group), Some(last)) =
                (item::string(g, item::SK), item::number(g, STALLS_LAST))
            else {
                continue;
            };
            let settled = item::number(g, STALLS_CHECKED).is_some_and(|c| c >= last);
            if !settled && watermark > last.saturating_add(window.saturating_mul(2)) {
                mine.entry(item::stall_partition(group)).or_default();
                closing.push((group.to_owned(), last));
            }
        }

        // 4. Each partition's incidents, settled.
        let partitions: Vec<(String, Vec<String>)> = mine.into_iter().collect();
        let mut settled = self
            .each(partitions, move |inner, (pk, events)| {
                let again = Arc::clone(&again);
                async move {
                    let found = inner.settle(&pk, watermark, &again, &events).await?;
                    Ok((pk, found))
                }
            })
            .await?;
        settled.sort_by(|a, b| a.0.cmp(&b.0));
        let mut joined = Joined::default();
        for (_, (incidents, dropped)) in settled {
            joined.incidents.extend(incidents);
            joined.dropped += dropped;
        }

        // 5. Groups whose every window is now closed and reported.
        self.each(closing, |inner, (group, last)| async move {
            inner
                .table
                .set_if((STALLS, &group), STALLS_CHECKED, last, (STALLS_LAST, last))
                .await
                .map(drop)
        })
        .await?;
        Ok(joined)
    }

    /// Runs `call` on each of `work`, at most [`StateLimits::in_flight`]
    /// at once; their results in any order, or the first error.
    async fn each<W, T, F, Fut>(&self, work: Vec<W>, call: F) -> Result<Vec<T>, StateError>
    where
        W: Send + 'static,
        T: Send + 'static,
        F: Fn(Arc<Inner>, W) -> Fut,
        Fut: std::future::Future<Output = Result<T, StateError>> + Send + 'static,
    {
        let mut out = Vec::with_capacity(work.len());
        let mut running = JoinSet::new();
        let mut first_error = None;
        for w in work {
            while running.len() >= self.inner.limits.in_flight.max(1) {
                collect(running.join_next().await, &mut out, &mut first_error);
            }
            running.spawn(call(Arc::clone(&self.inner), w));
        }
        while let Some(done) = running.join_next().await {
            collect(Some(done), &mut out, &mut first_error);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

fn collect<T>(
    done: Option<Result<Result<T, StateError>, tokio::task::JoinError>>,
    out: &mut Vec<T>,
    first_error: &mut Option<StateError>,
) {
    match done {
        Some(Ok(Ok(t))) => out.push(t),
        Some(Ok(Err(e))) => {
            first_error.get_or_insert(e);
        }
        // A call that panicked: the SDK's, never expected; the batch fails.
        Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Some(Err(_)) | None => {}
    }
}

impl Inner {
    /// Reads partition `pk` and returns the incidents to report with this
    /// batch, and how many of the batch's `events` in it were past the
    /// read's bound.
    async fn settle(
        &self,
        pk: &str,
        watermark: i64,
        again: &HashSet<String>,
        events: &[String],
    ) -> Result<(Vec<Incident>, u64), StateError> {
        let cap = if pk.starts_with("stall#") {
            self.limits.stall_items
        } else {
            self.limits.attempt_items
        };
        let (items, _) = self.table.query(pk, cap).await?;
        let mut markers: HashMap<String, usize> = HashMap::new();
        let mut signals = Vec::with_capacity(items.len());
        for it in &items {
            match item::string(it, item::SK) {
                Some(sk) if sk.starts_with(REPORTED) => {
                    let n = item::number(it, REPORTED_SIZE).unwrap_or(0);
                    markers.insert(sk.to_owned(), usize::try_from(n).unwrap_or(0));
                }
                _ => signals.extend(item::signal_of(it)),
            }
        }
        let read: HashSet<&str> = signals.iter().map(|s| s.event_id.as_str()).collect();
        let dropped = events.iter().filter(|e| !read.contains(e.as_str())).count() as u64;
        let longest = self
            .config
            .duplicate_window_ms
            .max(self.config.connect_stall_window_ms);
        let mut out = Vec::new();
        for incident in Neighbours::incidents_of(&self.config, signals) {
            let Some(s) = Settlement::of(&incident) else {
                continue;
            };
            let marker = item::marker_key(&s.identity);
            let holds_again = incident.evidence.iter().any(|e| again.contains(e));
            let report = match step(&s, watermark, markers.get(&marker).copied(), holds_again) {
                Step::Skip => false,
                Step::Again => true,
                Step::Claim { again } => {
                    let size = i64::try_from(s.size).unwrap_or(i64::MAX);
                    let expires = item::expires_s(incident.last_at_ms, longest);
                    let won = self
                        .table
                        .raise((pk, &marker), REPORTED_SIZE, size, Some(expires))
                        .await?;
                    again || won == Raised::Yes
                }
            };
            if report {
                out.push(incident);
            }
        }
        Ok((out, dropped))
    }
}
