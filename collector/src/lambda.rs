//! The collector as a Lambda function: started by the Lambda runtime
//! (`AWS_LAMBDA_RUNTIME_API` is set), fed by a CloudWatch Logs subscription
//! filter or a Kinesis stream.
//!
//! For each event: decode and correlate (the same path as `thawtrace scan`),
//! print one EMF metrics line per function and one JSON line per finding
//! (the `scan --format json` object, which a Logs Insights query can list),
//! and export the spans over OTLP when the `OTEL_EXPORTER_OTLP_*` variables
//! name an endpoint. Spans are flushed before the handler returns; an
//! endpoint still down after the retries fails the invocation, so Lambda
//! delivers the batch again, and the derived IDs make that idempotent.

use std::sync::Mutex;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use thawtrace_analyzers::Config;

use crate::export::otlp::OtlpConfig;
use crate::export::{Collected, Origin, emf, spans};
use crate::input::Limits;
use crate::input::awslogs::{Scratch, analyze_payload};
use crate::report;

struct Collector {
    limits: Limits,
    config: Config,
    origin: Origin,
    otlp: Option<(OtlpConfig, opentelemetry_otlp::SpanExporter)>,
    scratch: Mutex<Scratch>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Collector {
    fn from_env() -> Result<Collector, Error> {
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
        Ok(Collector {
            limits,
            config: Config::default(),
            origin: Origin {
                region: std::env::var("AWS_REGION").ok(),
            },
            otlp,
            scratch: Mutex::new(Scratch::default()),
        })
    }

    async fn handle(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Value, Error> {
        let mut collected = Collected::default();
        let stats = {
            let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
            analyze_payload(
                event.payload.get().as_bytes(),
                &mut scratch,
                &self.limits,
                &self.config,
                &mut collected,
            )
            .map_err(|e| Error::from(format!("invalid payload: {e}")))?
        };
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
            "messages": stats.messages,
            "events": stats.events,
            "refused": stats.refused,
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
        let collector = Collector::from_env()?;
        let collector = &collector;
        lambda_runtime::run(service_fn(move |event| async move {
            collector.handle(event).await
        }))
        .await
    })
}
