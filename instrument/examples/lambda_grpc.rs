//! A complete Rust Lambda function calling a gRPC service with HTTP/2
//! keepalive (ping every 5 s, ack within 1 s), instrumented by
//! `thawtrace-instrument`. Copy it.
//!
//! Environment: `GRPC_TARGET` (default `http://127.0.0.1:50051`),
//! `GRPC_KEEPALIVE=off` to run without keepalive, `GRPC_CONNECT_AT_INIT=1`
//! to make the channel and one call during init (before a SnapStart
//! snapshot) instead of at the first invocation.
//!
//! Event: `{"calls": N}` makes N echo calls (default 1); with
//! `"spin_ms": M` the handler first holds its thread CPU-busy for M ms (an
//! event-loop stall: the runtime's timers on that thread run late; with
//! `TOKIO_WORKER_THREADS=1`, tokio's own variable, that is every timer,
//! the connection's keepalive included).
//!
//! Execution modes, as lambda_runtime reads them:
//! - Lambda Managed Instances: `AWS_LAMBDA_MAX_CONCURRENCY=N` (N > 1) runs
//!   N invocations at once (lambda_runtime's `run_concurrent`, feature
//!   `concurrency-tokio`); unset or 1, one at a time, as before.
//! - SnapStart: `AWS_LAMBDA_INITIALIZATION_TYPE=snap-start` makes the
//!   runtime wait for the restore after init; the after-restore hook logs
//!   the `restore` event and, with `THAWTRACE_RECREATE_ON_RESTORE=1`,
//!   re-creates the channel. Without it the channel made during init is
//!   kept, stale connection and all.
//!
//! The service is `thawtrace.Echo/Echo` (bytes in, bytes out); its
//! messages are written out with prost's derive, so no protoc is needed.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use lambda_runtime::{Error, LambdaEvent, Runtime, layers::TracingLayer, service_fn};
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, PartialEq, prost::Message)]
struct EchoMessage {
    #[prost(bytes = "vec", tag = "1")]
    payload: Vec<u8>,
}

/// One channel per execution environment, made at the first invocation (or
/// during init) and kept across invocations (and freezes), as real
/// functions do; replaced only by the after-restore hook.
static CHANNEL: RwLock<Option<Channel>> = RwLock::new(None);

fn new_channel() -> Channel {
    let target = std::env::var("GRPC_TARGET").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let mut endpoint = Endpoint::from_shared(target).expect("GRPC_TARGET is a URI");
    if std::env::var("GRPC_KEEPALIVE").as_deref() != Ok("off") {
        endpoint = endpoint
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(1))
            .keep_alive_while_idle(true);
    }
    thawtrace_instrument::connect_lazy(endpoint)
}

fn channel() -> Channel {
    if let Some(channel) = &*CHANNEL.read().unwrap_or_else(|e| e.into_inner()) {
        return channel.clone();
    }
    CHANNEL
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(new_channel)
        .clone()
}

fn enabled(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

async fn echo(payload: Vec<u8>) -> Result<EchoMessage, tonic::Status> {
    let mut client = tonic::client::Grpc::new(channel());
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static("/thawtrace.Echo/Echo");
    let codec = tonic_prost::ProstCodec::<EchoMessage, EchoMessage>::default();
    let request = tonic::Request::new(EchoMessage { payload });
    Ok(client.unary(request, path, codec).await?.into_inner())
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let calls = event
        .payload
        .get("calls")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let spin_ms = event.payload.get("spin_ms").and_then(Value::as_u64);
    tracing::info!(calls, "handling order batch");
    if let Some(ms) = spin_ms {
        // Busy, not asleep: nothing else runs on this thread meanwhile.
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        tracing::info!(spin_ms = ms, "spun");
    }
    let mut ok = 0;
    for i in 0..calls {
        match echo(format!("call {i}").into_bytes()).await {
            Ok(_) => {
                ok += 1;
                tracing::info!(call = i, "echo call ok");
            }
            Err(status) => {
                tracing::error!(call = i, code = ?status.code(), message = status.message(), "echo call failed");
            }
        }
    }
    Ok(json!({ "ok": ok }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    thawtrace_instrument::init();
    if enabled("GRPC_CONNECT_AT_INIT") {
        // A connection opened during init: under SnapStart it is in the
        // snapshot, and every restored environment inherits it.
        match echo(b"init".to_vec()).await {
            Ok(_) => tracing::info!("echo call at init ok"),
            Err(status) => {
                tracing::error!(code = ?status.code(), message = status.message(), "echo call at init failed");
            }
        }
    }
    let restore = if enabled("THAWTRACE_RECREATE_ON_RESTORE") {
        thawtrace_instrument::OnRestore::new(|| {
            *CHANNEL.write().unwrap_or_else(|e| e.into_inner()) = Some(new_channel());
            tracing::info!("channel re-created after the restore");
        })
    } else {
        thawtrace_instrument::OnRestore::log_only()
    };
    Runtime::new(service_fn(handler))
        .register_snapstart_resource(Arc::new(restore))
        .layer(thawtrace_instrument::ThawLogLayer)
        .layer(TracingLayer::new())
        // Sequential unless AWS_LAMBDA_MAX_CONCURRENCY is above 1.
        .run_concurrent()
        .await
}
