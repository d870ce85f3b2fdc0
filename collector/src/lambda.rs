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
use crate::input::awslogs::{decode_messages, parse_message};
use crate::lookback::cloudwatch::CloudWatch;
use crate::lookback::{LogSource, Lookback, LookbackLimits};
use crate::report;

struct Collector {
    limits: Limits,
    config: Config,
    origin: Origin,
    otlp: Option<(OtlpConfig, opentelemetry_otlp::SpanExporter)>,
    lookback: Lookback,
    neighbours: std::sync::Mutex<Neighbours>,
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
        Ok(Collector {
            limits,
            neighbours: std::sync::Mutex::new(Neighbours::new(&config)),
            config,
            origin: Origin {
                region: std::env::var("AWS_REGION").ok(),
            },
            otlp,
            lookback,
        })
    }

    async fn handle(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Value, Error> {
        let mut collected = Collected::default();
        let texts = decode_messages(event.payload.get().as_bytes(), &self.limits)
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
            let mut ready = crate::export::Collected::default();
            neighbours.emit_ready(&mut ready);
            collected.incidents.append(&mut ready.incidents);
        }
        for line in emf::lines(&collected.findings, &collected.incidents) {
            println!("{line}");
        }
        for f in &collected.findings {
            println!("{}", report::json::to_line(f));
        }
        for i in &collected.incidents {
            println!("{}", report::json::incident_line(i));
        }
        let mut exported = 0;
        if let Some((config, exporter)) = &self.otlp {
            let batch = spans::spans(&collected, &self.origin);
            exported = batch.len();
            crate::export::otlp::export(exporter, batch, &config.retry).await?;
        }
        Ok(json!({
            "messages": messages,
            "events": events,
            "refused": refused,
            "lookback_events": fetched,
            "findings": collected.findings.len(),
            "incidents": collected.incidents.len(),
            "spans": exported,
        }))
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
