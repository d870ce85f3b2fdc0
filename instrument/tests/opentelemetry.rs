//! With tracing-opentelemetry beside it, the instrument's stamp reaches the
//! OpenTelemetry data: its events become span events that carry the
//! invocation's request ID, also those of a background task.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

const REQUEST_ID: &str = "5d1a2c3b-0000-4000-8000-000000000001";

#[test]
fn instrument_events_carry_the_request_id_as_attributes() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(thawtrace_instrument::layer())
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            // lambda_runtime's own span for an invocation.
            let invocation = tracing::info_span!(
                target: "lambda_runtime::layers::trace",
                "Lambda runtime invoke",
                requestId = REQUEST_ID
            );
            async {
                let uri: http::Uri = format!("http://localhost:{port}").parse().unwrap();
                // A background task, outside the invocation's span, as
                // tonic's connection task is.
                let task = thawtrace_instrument::spawn(tower::ServiceExt::oneshot(
                    thawtrace_instrument::Connector::default(),
                    uri,
                ));
                task.await.unwrap().expect("connected on loopback");
            }
            .instrument(invocation)
            .await;
            // The stamp span of an invocation closes, and is exported, when
            // stamped work first runs under a later state: here, the next
            // invocation.
            let next = tracing::info_span!(
                target: "lambda_runtime::layers::trace",
                "Lambda runtime invoke",
                requestId = "5d1a2c3b-0000-4000-8000-000000000002"
            );
            thawtrace_instrument::spawn(async {})
                .instrument(next)
                .await
                .unwrap();
        });
    });
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let events: Vec<_> = spans.iter().flat_map(|s| s.events.events.iter()).collect();
    let attr = |e: &opentelemetry::trace::Event, key: &str| {
        e.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    for name in ["dns_result", "connect_done"] {
        let e = events
            .iter()
            .find(|e| attr(e, "event").as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {name} span event in {spans:#?}"));
        assert_eq!(attr(e, "request_id").as_deref(), Some(REQUEST_ID), "{name}");
        assert_eq!(
            attr(e, "between_invocations").as_deref(),
            Some("false"),
            "{name}"
        );
    }
    // The stamp span itself is exported with the request ID.
    assert!(spans.iter().any(|s| {
        s.name == "thawtrace"
            && s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "request_id" && kv.value.to_string() == REQUEST_ID)
    }));
}
