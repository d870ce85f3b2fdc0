//! A complete Rust Lambda function calling a gRPC service with HTTP/2
//! keepalive (ping every 5 s, ack within 1 s), instrumented by
//! `thawtrace-instrument`. Copy it.
//!
//! Environment: `GRPC_TARGET` (default `http://127.0.0.1:50051`),
//! `GRPC_KEEPALIVE=off` to run without keepalive. Event: `{"calls": N}`.
//!
//! The service is `thawtrace.Echo/Echo` (bytes in, bytes out); its
//! messages are written out with prost's derive, so no protoc is needed.

use std::sync::OnceLock;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, Runtime, layers::TracingLayer, service_fn};
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

#[derive(Clone, PartialEq, prost::Message)]
struct EchoMessage {
    #[prost(bytes = "vec", tag = "1")]
    payload: Vec<u8>,
}

/// One channel per execution environment, made at the first invocation and
/// kept across invocations (and freezes), as real functions do.
static CHANNEL: OnceLock<Channel> = OnceLock::new();

fn channel() -> Channel {
    CHANNEL
        .get_or_init(|| {
            let target =
                std::env::var("GRPC_TARGET").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
            let mut endpoint = Endpoint::from_shared(target).expect("GRPC_TARGET is a URI");
            if std::env::var("GRPC_KEEPALIVE").as_deref() != Ok("off") {
                endpoint = endpoint
                    .http2_keep_alive_interval(Duration::from_secs(5))
                    .keep_alive_timeout(Duration::from_secs(1))
                    .keep_alive_while_idle(true);
            }
            thawtrace_instrument::connect_lazy(endpoint)
        })
        .clone()
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
    tracing::info!(calls, "handling order batch");
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
    Runtime::new(service_fn(handler))
        .layer(thawtrace_instrument::ThawLogLayer)
        .layer(TracingLayer::new())
        .run()
        .await
}
