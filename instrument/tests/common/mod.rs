//! What the instrument's integration tests share: a log capture and the
//! echo call.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// A `fmt` writer that keeps what it is given.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A subscriber as a function would have it (`fmt` at INFO, per-layer
/// filtered) with the instrument's layer, writing into `captured`.
pub fn subscriber(captured: &Captured) -> impl tracing::Subscriber + Send + Sync {
    let writer = captured.clone();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .with_filter(LevelFilter::INFO),
        )
        .with(thawtrace_instrument::layer())
}

/// The message of `thawtrace.Echo/Echo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoMessage {
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
}

/// Calls `thawtrace.Echo/Echo` with `payload`; returns the echoed payload.
pub async fn echo<T>(channel: T, payload: &[u8]) -> Vec<u8>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError> + std::fmt::Debug,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    client
        .unary(
            tonic::Request::new(EchoMessage {
                payload: payload.to_vec(),
            }),
            http::uri::PathAndQuery::from_static("/thawtrace.Echo/Echo"),
            tonic_prost::ProstCodec::<EchoMessage, EchoMessage>::default(),
        )
        .await
        .unwrap()
        .into_inner()
        .payload
}
