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
//! name an endpoint. Spans are flushed before the handler returns.
//!
//! Every call to a dependency (the lookback, the state table, the OTLP
//! endpoint, the dead-letter queue) runs under the invocation's budget and
//! behind a circuit breaker ([`crate::guard`]). The lines are printed once
//! the export is settled, and once: spans the endpoint did not take go to
//! the dead-letter queue (`THAWTRACE_DEAD_LETTER_QUEUE_URL`) or, without
//! one, are counted as lost (`ExportFailures`, an `export_failed` line);
//! the invocation succeeds either way, so a retry never prints a batch's
//! metrics twice. An invocation that fails names what failed as its
//! `errorType` ([`ErrorType`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use thawtrace_analyzers::{Config, Neighbours};

use crate::export::emf::CollectorCounts;
use crate::export::otlp::OtlpConfig;
use crate::export::{Origin, dead_letter, emf, spans};
use crate::guard::{Breaker, CallBudget, GuardSettings};
use crate::input::awslogs::{EventPayload, Scratch, event_payloads, parse_message};
use crate::input::{Budget, InputError, Limits};
use crate::lookback::cloudwatch::CloudWatch;
use crate::lookback::{LogSource, Lookback, LookbackLimits};
use crate::report;
use crate::state::SharedState;
use thawtrace_analyzers::Collected;

/// What failed an invocation, as the Lambda error's `errorType`; the same
/// names mark the lines of what failed without failing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// The event is not one the collector reads (neither a CloudWatch Logs
    /// subscription nor a Kinesis event), or a record of it cannot be read
    /// now and has no sequence number to be retried by.
    InvalidPayload,
    /// CloudWatch Logs did not answer a look back (logged; never fails an
    /// invocation: the batch goes on without).
    LookbackUnavailable,
    /// The state table did not take a batch's cross-stream state.
    StateUnavailable,
    /// The OTLP endpoint did not take the spans (logged; never fails an
    /// invocation: the spans go to the dead-letter queue).
    ExportFailed,
    /// The lines could not be written to stdout.
    OutputFailed,
}

impl ErrorType {
    /// The name (`InvalidPayload`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidPayload => "InvalidPayload",
            ErrorType::LookbackUnavailable => "LookbackUnavailable",
            ErrorType::StateUnavailable => "StateUnavailable",
            ErrorType::ExportFailed => "ExportFailed",
            ErrorType::OutputFailed => "OutputFailed",
        }
    }
}

/// Why an invocation failed: what, and a message a person can act on.
#[derive(Debug)]
pub struct HandlerError {
    /// What failed.
    pub error_type: ErrorType,
    /// What happened and what to do.
    pub message: String,
}

impl HandlerError {
    fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        HandlerError {
            error_type,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type.as_str(), self.message)
    }
}

impl std::error::Error for HandlerError {}

impl From<std::io::Error> for HandlerError {
    fn from(e: std::io::Error) -> Self {
        HandlerError::new(
            ErrorType::OutputFailed,
            format!("cannot write the EMF and finding lines to stdout: {e}"),
        )
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Diagnostic {
        Diagnostic {
            error_type: e.error_type.as_str().to_owned(),
            error_message: e.message,
        }
    }
}

/// The lookback's source behind its breaker, under the current
/// invocation's budget.
struct GuardedSource {
    inner: Box<dyn LogSource>,
    breaker: Breaker,
    until: Arc<Mutex<Option<Instant>>>,
}

impl LogSource for GuardedSource {
    fn fetch<'a>(
        &'a self,
        group: &'a str,
        stream: &'a str,
        start_ms: i64,
        end_ms: i64,
    ) -> crate::lookback::Fetching<'a> {
        Box::pin(async move {
            let until = until_or_default(&self.until);
            self.breaker
                .call(until, self.inner.fetch(group, stream, start_ms, end_ms))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The time set for the calls of this invocation; without one (the
/// handler driven directly, with no deadline: tests, benchmarks), an hour.
fn until_or_default(until: &Mutex<Option<Instant>>) -> Instant {
    let set = *until.lock().unwrap_or_else(|e| e.into_inner());
    set.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
}

/// Where spans the endpoint did not take go.
struct DeadLetter {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    breaker: Breaker,
}

struct Collector {
    handler: Handler,
    otlp: Option<(OtlpConfig, opentelemetry_otlp::SpanExporter)>,
    export_breaker: Breaker,
    dead_letter: Option<DeadLetter>,
    settings: GuardSettings,
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
    /// Until when the lookback and the state table may be called in this
    /// invocation (shared with the lookback's [`GuardedSource`]).
    lookup_until: Arc<Mutex<Option<Instant>>>,
    /// The state table's breaker.
    state_breaker: Breaker,
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
    /// The collector's own counts for its EMF line ([`Processed::collector_line`]).
    pub counts: CollectorCounts,
    /// The event time the collector's EMF line is stamped with, if any.
    pub stamp_ms: Option<i64>,
}

impl Processed {
    /// The collector's EMF line, with `export_failures` added: printed
    /// after the finding lines, once the export is settled.
    pub fn collector_line(&self, export_failures: u64) -> Option<String> {
        let counts = CollectorCounts {
            export_failures,
            ..self.counts
        };
        emf::collector_line(&counts, self.stamp_ms?)
    }
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
            lookup_until: Arc::default(),
            state_breaker: Breaker::new("the state table", crate::guard::DEFAULT_COOLDOWN),
        }
    }

    /// Sets until when this invocation's lookback and state table calls
    /// may run ([`CallBudget::lookup_until`]).
    pub fn set_lookup_until(&self, until: Instant) {
        *self.lookup_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
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
    /// `out` (the collector's own EMF line is left to the caller:
    /// [`Processed::collector_line`]). Its payloads (the awslogs data, or each Kinesis record) are
    /// decoded and correlated one at a time, under one decompression budget
    /// for the event ([`Limits::max_decompressed_bytes`]): one payload's text
    /// is held at a time. A payload that cannot be read is counted
    /// (`rejected_records`, EMF `RejectedRecords`), named on stderr and
    /// skipped; a Kinesis record whose lookback failed, or that the records
    /// before it left too little of the budget for, is named in
    /// [`Processed::retry`] (Kinesis retries from it, with a fresh budget).
    ///
    /// A look back that fails, times out or is skipped by its breaker
    /// costs a batch only the pings it would have found: the timeouts left
    /// without one are printed as `ping_not_looked_up` lines
    /// (`"lookback": "unavailable"`) and counted (`LookbackFailures`).
    ///
    /// With shared state, a batch whose signals could not be joined with it
    /// (DynamoDB failed, timed out or was skipped) is retried: every Kinesis
    /// record read is named in [`Processed::retry`].
    ///
    /// # Errors
    ///
    /// An event that is neither awslogs nor Kinesis (`InvalidPayload`), the
    /// shared state of an awslogs event that failed, or of a Kinesis
    /// record without a sequence number, which a partial batch response
    /// cannot name (`StateUnavailable`), or `out` that cannot be written:
    /// nothing was written, the event is delivered again.
    pub async fn process(
        &self,
        payload: &[u8],
        out: &mut impl std::io::Write,
    ) -> Result<Processed, HandlerError> {
        let payloads = event_payloads(payload).map_err(|e| {
            HandlerError::new(
                ErrorType::InvalidPayload,
                format!("{e}; the collector reads CloudWatch Logs subscription events and Kinesis events of them: check the function's triggers"),
            )
        })?;
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
            unlooked,
        } = reading?;
        let mut state_failures = 0;
        let kinesis = payloads
            .first()
            .is_some_and(|p| p.carrier == crate::input::awslogs::Carrier::Kinesis);
        let dropped = match &self.shared {
            None => self.join_neighbours(&mut collected),
            Some(shared) => {
                let signals = std::mem::take(&mut collected.signals);
                let until = until_or_default(&self.lookup_until);
                match self
                    .state_breaker
                    .call(until, shared.join(signals, counts.newest_ms))
                    .await
                {
                    Ok(joined) => {
                        collected.incidents.extend(joined.incidents);
                        joined.dropped
                    }
                    Err(e) => {
                        state_failures = 1;
                        state_failed(&e.to_string(), kinesis && !read_unnamed, &read, &mut retry)?;
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
        for line in &unlooked {
            writeln!(out, "{line}")?;
        }
        let response = json!({
            "messages": counts.messages,
            "events": counts.events,
            "refused": counts.refused,
            "rejected_records": counts.rejected,
            "lookback_events": counts.fetched,
            "lookback_failures": counts.lookback_failures,
            "pings_not_looked_up": unlooked.len(),
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
            counts: CollectorCounts {
                rejected_records: rejected,
                dropped_signals: dropped,
                lookback_failures: counts.lookback_failures,
                export_failures: 0,
                state_failures,
            },
            stamp_ms: counts.newest_ms,
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
    ) -> Result<Reading, HandlerError> {
        let mut budget = Budget::for_input(&self.limits, 0);
        let mut r = Reading::default();
        for p in payloads {
            let sequence_number = p.sequence_number.as_deref().map(str::to_owned);
            match self.payload(p, &mut budget, scratch, &mut r).await {
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
                        return Err(HandlerError::new(
                            ErrorType::InvalidPayload,
                            format!(
                                "{} at {}; it has no sequence number to be retried by alone: raise THAWTRACE_MAX_DECOMPRESSED_MB or send smaller batches",
                                e, p.place
                            ),
                        ));
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
        reading: &mut Reading,
    ) -> Result<(), Skip> {
        let Reading {
            collected,
            counts,
            unlooked,
            ..
        } = reading;
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
        if outcome.lookup_failed {
            counts.lookback_failures += 1;
        }
        let error = outcome.lookup_error.as_deref().unwrap_or_default();
        for (id, at_ms) in &outcome.unlooked {
            unlooked.push(
                json!({
                    "thawtrace": "ping_not_looked_up",
                    "lookback": "unavailable",
                    "error_type": ErrorType::LookbackUnavailable.as_str(),
                    "log_group": message.log_group,
                    "log_stream": message.log_stream,
                    "timeout_event_id": id,
                    "timeout_at": thawtrace_analyzers::time::rfc3339(*at_ms),
                    "error": error,
                })
                .to_string(),
            );
        }
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
    e: &str,
    named: bool,
    read: &[String],
    retry: &mut Vec<String>,
) -> Result<(), HandlerError> {
    if !named {
        return Err(HandlerError::new(
            ErrorType::StateUnavailable,
            format!(
                "{e}; the event is delivered again. Check the table (THAWTRACE_STATE_TABLE), the function's role and its network route to DynamoDB"
            ),
        ));
    }
    eprintln!(
        "{}",
        json!({"thawtrace": "state_failed", "error_type": ErrorType::StateUnavailable.as_str(), "error": e, "records_to_retry": read.len()})
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
    /// A `ping_not_looked_up` line per timeout whose ping the lookback
    /// could not look up.
    unlooked: Vec<String>,
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
    /// Batches whose look back was unavailable.
    lookback_failures: u64,
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
        let settings = GuardSettings::from_env(var)?;
        let otlp = match OtlpConfig::from_env() {
            Some(config) => {
                let exporter = config.build()?;
                Some((config, exporter))
            }
            None => None,
        };
        let off = |k: &str| std::env::var(k).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        let window_ms = crate::settings::lookback_window_from_env(var)?;
        let lookup_until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let source: Option<Box<dyn LogSource>> = if off("THAWTRACE_LOOKBACK") {
            None
        } else {
            Some(Box::new(GuardedSource {
                inner: Box::new(CloudWatch::new(None).await),
                breaker: Breaker::new("CloudWatch Logs (lookback)", settings.cooldown),
                until: lookup_until.clone(),
            }))
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
        handler.lookup_until = lookup_until;
        handler.state_breaker = Breaker::new("the state table (DynamoDB)", settings.cooldown);
        if let Some(name) = crate::settings::state_table_from_env(var) {
            let table = crate::state::table::Table::new(&name).await;
            handler = handler.with_shared_state(SharedState::new(
                table,
                config,
                crate::state::StateLimits::default(),
            ));
        }
        let dead_letter = match crate::settings::dead_letter_queue_from_env(var) {
            Some(queue_url) => Some(DeadLetter {
                client: dead_letter::client(None).await,
                queue_url,
                breaker: Breaker::new("the dead-letter queue (SQS)", settings.cooldown),
            }),
            None => None,
        };
        Ok(Collector {
            handler,
            otlp,
            export_breaker: Breaker::new("the OTLP endpoint", settings.cooldown),
            dead_letter,
            settings,
        })
    }

    async fn handle(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Value, HandlerError> {
        let start = Instant::now();
        let to_deadline = (UNIX_EPOCH + Duration::from_millis(event.context.deadline))
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        // No deadline header (0): the largest budget.
        let to_deadline = (event.context.deadline > 0).then_some(to_deadline);
        let budget = CallBudget::new(start, to_deadline, self.settings.budget);
        self.handler.set_lookup_until(budget.lookup_until());
        // The lines go out together, once the export is settled.
        let mut out = Vec::new();
        let processed = self
            .handler
            .process(event.payload.get().as_bytes(), &mut out)
            .await?;
        let mut export_failures = 0;
        let mut response = processed.response.clone();
        if let Some((config, exporter)) = &self.otlp {
            let batch = self.handler.spans(&processed.collected);
            let n = batch.len();
            let sent = if n == 0 {
                Ok(0)
            } else {
                self.export_breaker
                    .call(
                        budget.export_until(),
                        crate::export::otlp::export(exporter, batch.clone(), &config.retry),
                    )
                    .await
            };
            match sent {
                Ok(_) => response["spans"] = json!(n),
                Err(e) => {
                    export_failures = 1;
                    response["spans"] = json!(0);
                    let (kept, lost) = self.dead_letter(&batch, &e.to_string(), &budget).await;
                    response["dead_lettered_spans"] = json!(kept);
                    response["spans_lost"] = json!(lost);
                }
            }
        } else {
            response["spans"] = json!(0);
        }
        if let Some(line) = processed.collector_line(export_failures) {
            use std::io::Write;
            writeln!(out, "{line}")?;
        }
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out)?;
            stdout.flush()?;
        }
        let mut retry = processed.retry;
        if processed.kinesis {
            // A partial batch response (ReportBatchItemFailures): only the
            // records a retry may help.
            retry.sort();
            retry.dedup();
            response["batchItemFailures"] =
                retry.iter().map(|n| json!({"itemIdentifier": n})).collect();
        }
        Ok(response)
    }

    /// Spans the endpoint did not take: to the dead-letter queue if there
    /// is one, within what is left of the budget; an `export_failed` line
    /// either way. Returns how many spans were kept and how many lost.
    async fn dead_letter(
        &self,
        batch: &[opentelemetry_sdk::trace::SpanData],
        error: &str,
        budget: &CallBudget,
    ) -> (usize, usize) {
        let n = batch.len();
        let (kept, line) = match &self.dead_letter {
            Some(dl) => {
                let bodies = dead_letter::encode(batch);
                match dl
                    .breaker
                    .call(
                        budget.until(),
                        dead_letter::send(&dl.client, &dl.queue_url, &bodies),
                    )
                    .await
                {
                    Ok(()) => (
                        n,
                        json!({"thawtrace": "export_failed", "error_type": ErrorType::ExportFailed.as_str(), "error": error,
                            "spans": n, "dead_lettered_spans": n, "spans_lost": 0, "dead_letter_queue": dl.queue_url,
                            "replay": "thawtrace replay-spans --queue-url <the queue> --otlp-endpoint <the endpoint>"}),
                    ),
                    Err(dle) => (
                        0,
                        json!({"thawtrace": "export_failed", "error_type": ErrorType::ExportFailed.as_str(), "error": error,
                            "spans": n, "dead_lettered_spans": 0, "spans_lost": n, "dead_letter_queue": dl.queue_url,
                            "dead_letter_error": dle.to_string()}),
                    ),
                }
            }
            None => (
                0,
                json!({"thawtrace": "export_failed", "error_type": ErrorType::ExportFailed.as_str(), "error": error,
                    "spans": n, "dead_lettered_spans": 0, "spans_lost": n,
                    "hint": "set THAWTRACE_DEAD_LETTER_QUEUE_URL (the template's DeadLetterQueue parameter) to keep undelivered spans for replay"}),
            ),
        };
        eprintln!("{line}");
        (kept, n - kept)
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
            collector.handle(event).await.map_err(Diagnostic::from)
        }))
        .await
    })
}
