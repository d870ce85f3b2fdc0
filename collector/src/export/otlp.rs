//! OTLP export of a batch's spans, over gRPC or HTTP/protobuf, with retries.
//!
//! The endpoint and protocol come from the standard variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_HEADERS`, …) or, on the
//! CLI, from `--otlp-endpoint`/`--otlp-protocol`. An endpoint that stays
//! down past the retries is an error: the Lambda handler fails the batch so
//! Lambda delivers it again, and the derived IDs make the second delivery
//! produce the same spans, not new ones.

use std::time::Duration;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318, path `/v1/traces`).
    HttpProtobuf,
}

impl Protocol {
    /// Parses the values `OTEL_EXPORTER_OTLP_PROTOCOL` takes.
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" | "http" => Some(Protocol::HttpProtobuf),
            _ => None,
        }
    }
}

/// How hard to try before giving up on a batch.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all.
    pub attempts: u32,
    /// Wait after the first failure; doubled after each next one.
    pub first_backoff: Duration,
    /// Longest single wait.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The endpoint; `None` leaves it to the `OTEL_*` variables.
    pub endpoint: Option<String>,
    /// The transport.
    pub protocol: Protocol,
    /// Retries.
    pub retry: Retry,
}

impl OtlpConfig {
    /// The configuration the standard variables describe, or `None` when
    /// they name no endpoint (then nothing is exported).
    pub fn from_env() -> Option<OtlpConfig> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))?;
        let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .and_then(|p| Protocol::parse(&p))
            .unwrap_or(Protocol::HttpProtobuf);
        Some(OtlpConfig {
            endpoint: None,
            protocol,
            retry: Retry::default(),
        })
    }

    /// Builds the exporter. Needs a tokio runtime.
    pub fn build(&self) -> Result<opentelemetry_otlp::SpanExporter, String> {
        let timeout = Duration::from_secs(5);
        let built = match self.protocol {
            Protocol::Grpc => {
                // One retry policy, ours (bounded, documented): the
                // exporter's own is turned off.
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
                    .with_timeout(timeout);
                if let Some(e) = &self.endpoint {
                    b = b.with_endpoint(e.clone());
                }
                b.build()
            }
            Protocol::HttpProtobuf => {
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
                    .with_timeout(timeout);
                if let Some(e) = &self.endpoint {
                    let e = e.trim_end_matches('/');
                    let e = if e.ends_with("/v1/traces") {
                        e.to_owned()
                    } else {
                        format!("{e}/v1/traces")
                    };
                    b = b.with_endpoint(e);
                }
                b.build()
            }
        };
        let mut exporter = built.map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
        exporter.set_resource(
            &Resource::builder()
                .with_service_name("thawtrace")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        );
        Ok(exporter)
    }
}

/// Exports `spans`, retrying with exponential backoff. Returns the number of
/// attempts it took.
///
/// # Errors
///
/// The last error, once every attempt failed.
pub async fn export(
    exporter: &opentelemetry_otlp::SpanExporter,
    spans: Vec<SpanData>,
    retry: &Retry,
) -> Result<u32, String> {
    if spans.is_empty() {
        return Ok(0);
    }
    let mut wait = retry.first_backoff;
    let mut last = String::new();
    for attempt in 1..=retry.attempts.max(1) {
        match exporter.export(spans.clone()).await {
            Ok(()) => return Ok(attempt),
            Err(e) => last = e.to_string(),
        }
        if attempt < retry.attempts {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(retry.max_backoff);
        }
    }
    Err(format!(
        "OTLP export failed after {} attempts: {last}",
        retry.attempts
    ))
}
