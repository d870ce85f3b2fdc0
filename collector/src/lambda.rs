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
use crate::export::{Collected, Origin, emf, spans};
use crate::input::Limits;
use crate::input::awslogs::{Scratch, decode_messages_into, parse_message};
use crate::lookback::cloudwatch::CloudWatch;
use crate::lookback::{LogSource, Lookback, LookbackLimits};
use crate::report;

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
    neighbours: std::sync::Mutex<Neighbours>,
    /// Decoding buffers kept from one event to the next.
    buffers: std::sync::Mutex<(Scratch, Vec<String>)>,
}

/// What one event gave.
pub struct Processed {
    /// Findings, incidents and invocation windows.
    pub collected: Collected,
    /// Counts for the invocation's response.
    pub response: Value,
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
            buffers: std::sync::Mutex::default(),
        }
    }

    /// The spans of what an event gave.
    pub fn spans(&self, collected: &Collected) -> Vec<opentelemetry_sdk::trace::SpanData> {
        spans::spans(collected, &self.origin)
    }

    /// Processes one event's payload, writing the EMF and finding lines to
    /// `out`.
    ///
    /// # Errors
    ///
    /// An invalid payload, a lookback that failed, or `out` that cannot be
    /// written: the batch is delivered again.
    pub async fn process(
        &self,
        payload: &[u8],
        out: &mut impl std::io::Write,
    ) -> Result<Processed, Error> {
        let mut collected = Collected::default();
        // Taken out, not held across the awaits below; put back at the end.
        let (mut scratch, mut texts) =
            std::mem::take(&mut *self.buffers.lock().unwrap_or_else(|e| e.into_inner()));
        decode_messages_into(payload, &self.limits, &mut scratch, &mut texts)
            .map_err(|e| Error::from(format!("invalid payload: {e}")))?;
        let (mut messages, mut events, mut refused, mut fetched) = (0u64, 0u64, 0u64, 0u64);
        for text in &texts {
            let Some(message) = parse_message(text, &self.limits)
                .map_err(|e| Error::from(format!("invalid payload: {e}")))?
            else {
                continue;
            };
            let outcome = self
                .lookback
                .analyze(
                    message.log_group,
                    message.log_stream,
                    &message.events,
                    &self.config,
                    &mut collected,
                )
                .await
                .map_err(|e| Error::from(format!("lookback for {}: {e}", message.log_stream)))?;
            messages += 1;
            events += message.events.len() as u64;
            refused += message.refused;
            fetched += outcome.fetched;
        }
        {
            // Cross-stream kinds: this warm process's view of the batches it
            // received (bounded; see `Neighbours`).
            let mut neighbours = self.neighbours.lock().unwrap_or_else(|e| e.into_inner());
            for signal in collected.signals.drain(..) {
                neighbours.push(signal);
            }
            let mut ready = Collected::default();
            neighbours.emit_ready(&mut ready);
            collected.incidents.append(&mut ready.incidents);
        }
        for line in emf::lines(&collected.findings, &collected.incidents) {
            writeln!(out, "{line}")?;
        }
        for f in &collected.findings {
            writeln!(out, "{}", report::json::to_line(f))?;
        }
        for i in &collected.incidents {
            writeln!(out, "{}", report::json::incident_line(i))?;
        }
        *self.buffers.lock().unwrap_or_else(|e| e.into_inner()) = (scratch, texts);
        let response = json!({
            "messages": messages,
            "events": events,
            "refused": refused,
            "lookback_events": fetched,
            "findings": collected.findings.len(),
            "incidents": collected.incidents.len(),
        });
        Ok(Processed {
            collected,
            response,
        })
    }
}

impl Collector {
    async fn from_env() -> Result<Collector, Error> {
        let mb = |k: &str, default: usize| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let limits = Limits {
            max_decompressed_bytes: mb("THAWTRACE_MAX_DECOMPRESSED_MB", 64) << 20,
            max_event_bytes: mb("THAWTRACE_MAX_EVENT_KB", 1024) << 10,
            ..Limits::default()
        };
        let otlp = match OtlpConfig::from_env() {
            Some(config) => {
                let exporter = config.build()?;
                Some((config, exporter))
            }
            None => None,
        };
        let off = |k: &str| std::env::var(k).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        let window_ms = match std::env::var("THAWTRACE_LOOKBACK_WINDOW") {
            Ok(v) => crate::cli::parse_duration_ms(&v)
                .map_err(|e| format!("THAWTRACE_LOOKBACK_WINDOW: {e}"))?,
            Err(_) => LookbackLimits::default().window_ms,
        };
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
        let config = thresholds_from_env()?.config()?;
        let origin = Origin {
            region: std::env::var("AWS_REGION").ok(),
        };
        Ok(Collector {
            handler: Handler::new(limits, config, origin, lookback),
            otlp,
        })
    }

    async fn handle(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Value, Error> {
        // The lines go out together once the event is processed.
        let mut out = Vec::new();
        let Processed {
            collected,
            mut response,
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
            exported = batch.len();
            crate::export::otlp::export(exporter, batch, &config.retry).await?;
        }
        response["spans"] = json!(exported);
        Ok(response)
    }
}

/// The thresholds of the neighbouring failures from the environment:
/// `THAWTRACE_NAT_IDLE_TIMEOUT`, `THAWTRACE_CONNECT_STALL_WINDOW`,
/// `THAWTRACE_DUPLICATE_WINDOW` (durations like `350s`),
/// `THAWTRACE_CONNECT_STALL_MIN_ENVS` (a count) and
/// `THAWTRACE_IDEMPOTENCY_KEYS` (comma-separated JSON paths, or `none`);
/// the CLI's defaults otherwise.
fn thresholds_from_env() -> Result<crate::cli::Thresholds, Error> {
    let mut t = crate::cli::Thresholds::default();
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let duration = |k: &str, into: &mut i64| -> Result<(), Error> {
        if let Some(v) = var(k) {
            *into = crate::cli::parse_duration_ms(&v).map_err(|e| format!("{k}: {e}"))?;
        }
        Ok(())
    };
    duration("THAWTRACE_NAT_IDLE_TIMEOUT", &mut t.nat_idle_timeout)?;
    duration(
        "THAWTRACE_CONNECT_STALL_WINDOW",
        &mut t.connect_stall_window,
    )?;
    duration("THAWTRACE_DUPLICATE_WINDOW", &mut t.duplicate_window)?;
    if let Some(v) = var("THAWTRACE_CONNECT_STALL_MIN_ENVS") {
        t.connect_stall_min_envs = v.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
            format!("THAWTRACE_CONNECT_STALL_MIN_ENVS: {v:?} is not a count of 1 or more")
        })?;
    }
    if let Some(v) = var("THAWTRACE_IDEMPOTENCY_KEYS") {
        t.idempotency_keys = v.split(',').map(|k| k.trim().to_owned()).collect();
    }
    Ok(t)
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
