//! What the instrument's integration tests share: a log capture, the echo
//! server and call, the example function as a process, and a Lambda
//! Runtime API ([`runtime_api`]).
#![allow(dead_code)]

pub mod runtime_api;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Where `cargo test` builds the examples.
pub fn examples() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
}

/// A child process, killed however the test ends.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `echo_server` example, listening on loopback.
pub struct EchoServer {
    pub port: u16,
    _process: Process,
}

impl EchoServer {
    /// Starts it and waits (bounded) for its port.
    pub fn start() -> EchoServer {
        let tmp = tempfile::tempdir().unwrap();
        let port_file = tmp.path().join("port");
        let child = Command::new(examples().join("echo_server"))
            .arg(&port_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("cargo test builds the echo_server example");
        let process = Process(child);
        for _ in 0..200 {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                return EchoServer {
                    port,
                    _process: process,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the echo server wrote no port");
    }

    /// Its URI.
    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The `lambda_grpc` example run as a function: its stdout, line by line.
pub struct Function {
    lines: Arc<Mutex<Vec<String>>>,
    _process: Process,
}

impl Function {
    /// Starts the example with `env` (the Runtime API's and the test's).
    pub fn start(env: &[(&str, String)]) -> Function {
        let mut command = Command::new(examples().join("lambda_grpc"));
        command.stdout(Stdio::piped()).env_remove("RUST_LOG");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .expect("cargo test builds the lambda_grpc example");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                sink.lock().unwrap().push(line);
            }
        });
        Function {
            lines,
            _process: Process(child),
        }
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (bounded) until a line matches `pred`; all lines so far.
    pub fn wait_for(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        for _ in 0..400 {
            let lines = self.lines();
            if lines.iter().any(|l| pred(l)) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no such line in:\n{}", self.lines().join("\n"));
    }
}
