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
use thawtrace_analyzers::Config;

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
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
        Ok(Collector {
            limits,
            config: Config::default(),
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
        for line in emf::lines(&collected.findings, now_ms()) {
            println!("{line}");
        }
        for f in &collected.findings {
            println!("{}", report::json::to_line(f));
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
            "spans": exported,
        }))
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
