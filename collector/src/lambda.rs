//! The collector as a Lambda function: started by the Lambda runtime
//! (`AWS_LAMBDA_RUNTIME_API` is set), fed by a CloudWatch Logs subscription
//! filter or a Kinesis stream.
//!
//! For each event: decode, correlate each stream's batch with its context
//! (a warm per-stream cache, and `FilterLogEvents` when a timeout's ping is
//! in neither; see [`crate::lookback`]),
//! print one EMF metrics line per function and one JSON line per finding
//! (the `scan --format json` object, which a Logs Insights query can list),
//! and export the spans over OTLP when the `OTEL_EXPORTER_OTLP_*` variables
//! name an endpoint. Spans are flushed before the handler returns; an
//! endpoint still down after the retries fails the invocation, so Lambda
//! delivers the batch again, and the derived IDs make that idempotent.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use thawtrace_analyzers::{Config, Neighbours};

use crate::export::otlp::OtlpConfig;
use crate::export::{Origin, emf, spans};
use crate::input::awslogs::{EventPayload, Scratch, event_payloads, parse_message};
use crate::input::{Budget, InputError, Limits};
use crate::lookback::cloudwatch::CloudWatch;
use crate::lookback::{LogSource, Lookback, LookbackLimits};
use crate::report;
use crate::state::SharedState;
use crate::state::errors::StateError;
use thawtrace_analyzers::Collected;

struct Collector {
    handler: Handler,
    otlp: Option<(OtlpConfig, opentelemetry_otlp::SpanExporter)>,
}

/// The handler's work up to the network: decode an event, correlate each
/// stream's batch with its context (the warm cache, and the lookback
/// source if any), join the cross-stream kinds with this process's earlier
/// batches, write the EMF and JSON lines. What it collected is returned
/// for the spans. Benchmarks drive it without a source.
pub struct Handler {
    limits: Limits,
    config: Config,
    origin: Origin,
    lookback: Lookback,
    /// The cross-stream state shared with other collectors, when
    /// `THAWTRACE_STATE_TABLE` names a table; `neighbours` otherwise.
    shared: Option<SharedState>,
    neighbours: std::sync::Mutex<Neighbours>,
    /// Decoding buffers kept from one event to the next.
    buffers: std::sync::Mutex<Scratch>,
    /// The cross-stream signals dropped (past the limits) already counted
    /// in an EMF line.
    dropped_reported: std::sync::Mutex<u64>,
    /// Payloads rejected by events that had no event time to stamp an EMF
    /// line with (an awslogs event whose data cannot be read): counted in
    /// the next event's line.
    rejected_unreported: std::sync::Mutex<u64>,
}

/// What one event gave.
pub struct Processed {
    /// Findings, incidents and invocation windows.
    pub collected: Collected,
    /// Counts for the invocation's response.
    pub response: Value,
    /// Sequence numbers of the Kinesis records a retry may help: their
    /// lookback failed.
    pub retry: Vec<String>,
    /// Sequence numbers of the Kinesis records whose messages were read
    /// (those to retry if their spans cannot be exported).
    pub read: Vec<String>,
    /// Whether a record without a sequence number was read: if its spans
    /// cannot be exported, only failing the invocation retries it.
    pub read_unnamed: bool,
    /// Whether the event was a Kinesis event (it answers with a partial
    /// batch response).
    pub kinesis: bool,
}

/// Why one payload of an event gave nothing.
enum Skip {
    /// It cannot be read, now or on a retry: counted and named.
    Rejected(InputError),
    /// A retry may help (the lookback it needed failed).
    Retry(Error),
}

impl Handler {
    /// A handler with these settings and this lookback.
    pub fn new(limits: Limits, config: Config, origin: Origin, lookback: Lookback) -> Self {
        Handler {
            limits,
            neighbours: std::sync::Mutex::new(Neighbours::new(&config)),
            config,
            origin,
            lookback,
            shared: None,
            buffers: std::sync::Mutex::default(),
            dropped_reported: std::sync::Mutex::default(),
            rejected_unreported: std::sync::Mutex::default(),
        }
    }

    /// This handler with the cross-stream kinds joined through `state`,
    /// shared with other collectors, instead of in this process.
    #[must_use]
    pub fn with_shared_state(mut self, state: SharedState) -> Self {
        self.shared = Some(state);
        self
    }

    /// The spans of what an event gave.
    pub fn spans(&self, collected: &Collected) -> Vec<opentelemetry_sdk::trace::SpanData> {
        spans::spans(collected, &self.origin)
    }

    /// Processes one event's payload, writing the EMF and finding lines to
    /// `out`. Its payloads (the awslogs data, or each Kinesis record) are
    /// decoded and correlated one at a time, under one decompression budget
    /// for the event ([`Limits::max_decompressed_bytes`]): one payload's text
    /// is held at a time. A payload that cannot be read is counted
    /// (`rejected_records`, EMF `RejectedRecords`), named on stderr and
    /// skipped; a Kinesis record whose lookback failed, or that the records
    /// before it left too little of the budget for, is named in
    /// [`Processed::retry`] (Kinesis retries from it, with a fresh budget).
    ///
    /// With shared state, a batch whose signals could not be joined with it
    /// (DynamoDB failed, retries spent) is retried like a failed lookback:
    /// every Kinesis record read is named in [`Processed::retry`].
    ///
    /// # Errors
    ///
    /// An event that is neither awslogs nor Kinesis, the lookback or shared
    /// state of an awslogs event that failed (or of a Kinesis record
    /// without a sequence number, which a partial batch response cannot
    /// name), or `out` that cannot be written: the event is delivered
    /// again.
    pub async fn process(
        &self,
        payload: &[u8],
        out: &mut impl std::io::Write,
    ) -> Result<Processed, Error> {
        let payloads =
            event_payloads(payload).map_err(|e| Error::from(format!("invalid payload: {e}")))?;
        // Taken out, not held across the awaits below; put back at the end.
        let mut scratch =
            std::mem::take(&mut *self.buffers.lock().unwrap_or_else(|e| e.into_inner()));
        let reading = self.read_payloads(&payloads, &mut scratch).await;
        *self.buffers.lock().unwrap_or_else(|e| e.into_inner()) = scratch;
        let Reading {
            mut collected,
            mut counts,
            mut retry,
            read,
            read_unnamed,
        } = reading?;
        let kinesis = payloads
            .first()
            .is_some_and(|p| p.carrier == crate::input::awslogs::Carrier::Kinesis);
        let dropped = match &self.shared {
            None => self.join_neighbours(&mut collected),
            Some(shared) => {
                let signals = std::mem::take(&mut collected.signals);
                match shared.join(signals, counts.newest_ms).await {
                    Ok(joined) => {
                        collected.incidents.extend(joined.incidents);
                        joined.dropped
                    }
                    Err(e) => {
                        state_failed(&e, kinesis && !read_unnamed, &read, &mut retry)?;
                        0
                    }
                }
            }
        };
        if counts.newest_ms.is_none() {
            counts.newest_ms = payloads.iter().filter_map(|p| p.arrival_ms).max();
        }
        let rejected = self.rejected_to_report(counts.rejected, counts.newest_ms.is_some());
        write_lines(out, &collected)?;
        if let Some(at_ms) = counts.newest_ms
            && let Some(line) = emf::collector_line(rejected, dropped, at_ms)
        {
            writeln!(out, "{line}")?;
        }
        let response = json!({
            "messages": counts.messages,
            "events": counts.events,
            "refused": counts.refused,
            "rejected_records": counts.rejected,
            "lookback_events": counts.fetched,
            "findings": collected.findings.len(),
            "incidents": collected.incidents.len(),
        });
        Ok(Processed {
            collected,
            response,
            retry,
            read,
            read_unnamed,
            kinesis,
        })
    }

    /// Reads an event's payloads one at a time: each read, skipped and
    /// counted, or named for a retry.
    ///
    /// # Errors
    ///
    /// A payload a retry may help that has no sequence number to name it
    /// by: the whole event is delivered again.
    async fn read_payloads(
        &self,
        payloads: &[EventPayload<'_>],
        scratch: &mut Scratch,
    ) -> Result<Reading, Error> {
        let mut budget = Budget::for_input(&self.limits, 0);
        let mut r = Reading::default();
        for p in payloads {
            let sequence_number = p.sequence_number.as_deref().map(str::to_owned);
            match self
                .payload(p, &mut budget, scratch, &mut r.collected, &mut r.counts)
                .await
            {
                Ok(()) => match sequence_number {
                    Some(n) => r.read.push(n),
                    None => r.read_unnamed = true,
                },
                Err(Skip::Rejected(e)) => {
                    r.counts.rejected += 1;
                    eprintln!(
                        "{}",
                        json!({"thawtrace": "payload_rejected", "place": p.place, "error": e.to_string()})
                    );
                }
                Err(Skip::Retry(e)) => {
                    let Some(n) = sequence_number else {
                        return Err(e);
                    };
                    eprintln!(
                        "{}",
                        json!({"thawtrace": "payload_retried", "place": p.place, "error": e.to_string()})
                    );
                    r.retry.push(n);
                }
            }
        }
        Ok(r)
    }

    /// Decodes one payload and correlates its stream's batch with its
    /// context, into `collected`.
    async fn payload(
        &self,
        p: &EventPayload<'_>,
        budget: &mut Budget,
        scratch: &mut Scratch,
        collected: &mut Collected,
        counts: &mut Counts,
    ) -> Result<(), Skip> {
        // A payload the budget is too small for when the ones before it
        // used some, and that would fit it alone (as its gzip trailer
        // says): a retry starting from it (Kinesis retries from the
        // earliest record named) gives it the whole budget.
        let shared = budget.total_used() > 0;
        let text = match p.decode(budget, scratch) {
            Ok(text) => text,
            Err(e) => {
                let whole = Budget::for_input(&self.limits, 0).decompress_left();
                let alone_fits = scratch.stated_size().is_none_or(|n| n <= whole);
                return Err(if shared && alone_fits && e.is_over_limit() {
                    Skip::Retry(Error::from(format!(
                        "{e} (the event's earlier payloads used part of it)"
                    )))
                } else {
                    Skip::Rejected(e)
                });
            }
        };
        let Some(message) = parse_message(text, &self.limits).map_err(Skip::Rejected)? else {
            return Ok(());
        };
        let outcome = self
            .lookback
            .analyze(
                message.log_group,
                message.log_stream,
                &message.events,
                &self.config,
                collected,
            )
            .await
            .map_err(|e| {
                Skip::Retry(Error::from(format!(
                    "lookback for {}: {e}",
                    message.log_stream
                )))
            })?;
        counts.messages += 1;
        counts.events += message.events.len() as u64;
        counts.refused += message.refused;
        counts.fetched += outcome.fetched;
        let newest = message.events.iter().map(|e| e.timestamp_ms).max();
        counts.newest_ms = counts.newest_ms.max(newest);
        Ok(())
    }

    /// The rejected payloads an EMF line stamped now (`stamped`: there is
    /// an event time) counts: this event's and those of earlier events
    /// that had no time; kept for the next line when there is no time.
    fn rejected_to_report(&self, rejected: u64, stamped: bool) -> u64 {
        let mut pending = self
            .rejected_unreported
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let total = *pending + rejected;
        *pending = if stamped { 0 } else { total };
        total
    }

    /// Cross-stream kinds: this warm process's view of the batches it
    /// received (bounded; see `Neighbours`). The signals are taken from
    /// `collected`, the incidents they complete added to it.
    /// Returns how many signals were dropped past the limits since the last
    /// event.
    fn join_neighbours(&self, collected: &mut Collected) -> u64 {
        let mut neighbours = self.neighbours.lock().unwrap_or_else(|e| e.into_inner());
        for signal in collected.signals.drain(..) {
            neighbours.push(signal);
        }
        let mut ready = Collected::default();
        neighbours.emit_ready(&mut ready);
        collected.incidents.append(&mut ready.incidents);
        let mut reported = self
            .dropped_reported
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let dropped = neighbours.dropped().saturating_sub(*reported);
        *reported = neighbours.dropped();
        dropped
    }
}

/// A batch whose signals the shared state could not take: every record
/// read is named for a retry (the signals already stored read as a
/// redelivery then) when all can be named by sequence number; otherwise
/// the invocation fails, so the whole event comes again.
fn state_failed(
    e: &StateError,
    named: bool,
    read: &[String],
    retry: &mut Vec<String>,
) -> Result<(), Error> {
    if !named {
        return Err(Error::from(e.to_string()));
    }
    eprintln!(
        "{}",
        json!({"thawtrace": "state_failed", "error": e.to_string(), "records_to_retry": read.len()})
    );
    retry.extend_from_slice(read);
    Ok(())
}

/// What reading an event's payloads gave (see [`Processed`]).
#[derive(Default)]
struct Reading {
    collected: Collected,
    counts: Counts,
    retry: Vec<String>,
    read: Vec<String>,
    read_unnamed: bool,
}

/// What the messages of one event held, for the invocation's response.
#[derive(Default)]
struct Counts {
    /// Subscription messages read (control messages are not counted).
    messages: u64,
    /// Their log events.
    events: u64,
    /// Log events refused (over the size limit, message not a string).
    refused: u64,
    /// Context lines fetched by the lookback.
    fetched: u64,
    /// Payloads that could not be read.
    rejected: u64,
    /// The newest event time read (what the collector's own metrics are
    /// stamped with).
    newest_ms: Option<i64>,
}

/// The EMF lines, then a JSON line per finding and per incident.
fn write_lines(out: &mut impl std::io::Write, collected: &Collected) -> std::io::Result<()> {
    for line in emf::lines(&collected.findings, &collected.incidents) {
        writeln!(out, "{line}")?;
    }
    for f in &collected.findings {
        writeln!(out, "{}", report::json::to_line(f))?;
    }
    for i in &collected.incidents {
        writeln!(out, "{}", report::json::incident_line(i))?;
    }
    Ok(())
}

impl Collector {
    async fn from_env() -> Result<Collector, Error> {
        let var = |k: &str| std::env::var(k).ok();
        let limits = crate::settings::limits_from_env(var)?;
        let otlp = match OtlpConfig::from_env() {
            Some(config) => {
                let exporter = config.build()?;
                Some((config, exporter))
            }
            None => None,
        };
        let off = |k: &str| std::env::var(k).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        let window_ms = crate::settings::lookback_window_from_env(var)?;
        let source: Option<Box<dyn LogSource>> = if off("THAWTRACE_LOOKBACK") {
            None
        } else {
            Some(Box::new(CloudWatch::new(None).await))
        };
        let lookback = Lookback::new(
            LookbackLimits {
                window_ms,
                ..LookbackLimits::default()
            },
            !off("THAWTRACE_CACHE"),
            source,
        );
        let config = crate::settings::Thresholds::from_env(var)?.config()?;
        let origin = Origin {
            region: std::env::var("AWS_REGION").ok(),
        };
        let mut handler = Handler::new(limits, config.clone(), origin, lookback);
        if let Some(name) = crate::settings::state_table_from_env(var) {
            let table = crate::state::table::Table::new(&name).await;
            handler = handler.with_shared_state(SharedState::new(
                table,
                config,
                crate::state::StateLimits::default(),
            ));
        }
        Ok(Collector { handler, otlp })
    }

    async fn handle(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Value, Error> {
        // The lines go out together once the event is processed.
        let mut out = Vec::new();
        let Processed {
            collected,
            mut response,
            mut retry,
            read,
            read_unnamed,
            kinesis,
        } = self
            .handler
            .process(event.payload.get().as_bytes(), &mut out)
            .await?;
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out)?;
            stdout.flush()?;
        }
        let mut exported = 0;
        if let Some((config, exporter)) = &self.otlp {
            let batch = self.handler.spans(&collected);
            let n = batch.len();
            match crate::export::otlp::export(exporter, batch, &config.retry).await {
                Ok(_) => exported = n,
                // The records whose spans these were may succeed on a retry
                // (those without a sequence number only by an error).
                Err(e) if kinesis && !read_unnamed => {
                    eprintln!(
                        "{}",
                        json!({"thawtrace": "export_failed", "error": e, "records_to_retry": read.len()})
                    );
                    retry.extend(read);
                }
                Err(e) => return Err(Error::from(e)),
            }
        }
        response["spans"] = json!(exported);
        if kinesis {
            // A partial batch response (ReportBatchItemFailures): only the
            // records a retry may help.
            retry.sort();
            retry.dedup();
            response["batchItemFailures"] =
                retry.iter().map(|n| json!({"itemIdentifier": n})).collect();
        }
        Ok(response)
    }
}

/// Runs the Lambda handler until the runtime stops it.
///
/// # Errors
///
/// What the Lambda runtime reports (it cannot reach the Runtime API).
pub fn run() -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let collector = Collector::from_env().await?;
        let collector = &collector;
        lambda_runtime::run(service_fn(move |event| async move {
            collector.handle(event).await
        }))
        .await
    })
}
