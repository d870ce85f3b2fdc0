//! A Lambda Runtime API on loopback, enough for lambda_runtime 1.5: it
//! hands out the invocations a test queues (to every `/next` poll, so
//! several can be in flight under `AWS_LAMBDA_MAX_CONCURRENCY`), records
//! the responses, and answers SnapStart's `/restore/next` when the test
//! restores the environment. HTTP/1.1 with keep-alive, as lambda_runtime's
//! pooled client speaks it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

const PREFIX: &str = "/2018-06-01/runtime";

#[derive(Default)]
struct Shared {
    /// Request ID -> the body posted to `/response` (or `/error`).
    responses: Mutex<HashMap<String, String>>,
    responded: Notify,
    restore_polled: Mutex<bool>,
    restore_polls: Notify,
    restored: Mutex<bool>,
    restore: Notify,
    /// Bodies posted to `/init/error` and `/restore/error`.
    errors: Mutex<Vec<String>>,
}

/// The emulator: bound at [`RuntimeApi::bind`], serving from
/// [`RuntimeApi::serve`] until the tokio runtime it serves on is dropped.
pub struct RuntimeApi {
    /// What `AWS_LAMBDA_RUNTIME_API` names.
    pub addr: SocketAddr,
    listener: Mutex<Option<std::net::TcpListener>>,
    queue: mpsc::UnboundedSender<(String, String)>,
    pending: Pending,
    shared: Arc<Shared>,
}

impl RuntimeApi {
    /// Listens on 127.0.0.1 (no tokio runtime needed yet, so a test can
    /// set the function's environment before starting any thread).
    pub fn bind() -> RuntimeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (queue, pending) = mpsc::unbounded_channel();
        RuntimeApi {
            addr,
            listener: Mutex::new(Some(listener)),
            queue,
            pending: Arc::new(tokio::sync::Mutex::new(pending)),
            shared: Arc::default(),
        }
    }

    /// Starts serving, on the current tokio runtime.
    pub fn serve(&self) {
        let listener = self.listener.lock().unwrap().take().expect("served once");
        let listener = TcpListener::from_std(listener).unwrap();
        let (pending, shared) = (self.pending.clone(), self.shared.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, pending.clone(), shared.clone()));
            }
        });
    }

    /// The environment a lambda_runtime function needs to poll this API.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", "orders-rust".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ]
    }

    /// Queues an invocation; the next `/next` poll gets it.
    pub fn invoke(&self, request_id: &str, event: &str) {
        self.queue
            .send((request_id.to_owned(), event.to_owned()))
            .unwrap();
    }

    /// Waits for the response of `request_id`.
    pub async fn response(&self, request_id: &str) -> String {
        loop {
            let notified = self.shared.responded.notified();
            if let Some(body) = self.shared.responses.lock().unwrap().get(request_id) {
                return body.clone();
            }
            notified.await;
        }
    }

    /// Waits until the runtime has called `/restore/next` (its init is done
    /// and it waits for the snapshot to be restored).
    pub async fn restore_polled(&self) {
        loop {
            let notified = self.shared.restore_polls.notified();
            if *self.shared.restore_polled.lock().unwrap() {
                return;
            }
            notified.await;
        }
    }

    /// Restores the environment: `/restore/next` answers.
    pub fn restore(&self) {
        *self.shared.restored.lock().unwrap() = true;
        self.shared.restore.notify_waiters();
    }

    /// What the runtime posted to `/init/error` or `/restore/error`.
    pub fn errors(&self) -> Vec<String> {
        self.shared.errors.lock().unwrap().clone()
    }
}

type Pending = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, String)>>>;

async fn serve(stream: TcpStream, pending: Pending, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            if read.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if read.read_exact(&mut body).await.is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.strip_prefix(PREFIX).unwrap_or(path);
        let response = match (method, path) {
            ("GET", "/invocation/next") => {
                let Some((request_id, event)) = pending.lock().await.recv().await else {
                    return;
                };
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     lambda-runtime-aws-request-id: {request_id}\r\n\
                     lambda-runtime-deadline-ms: 4102444800000\r\n\
                     lambda-runtime-invoked-function-arn: arn:aws:lambda:eu-west-1:123456789012:function:orders-rust\r\n\
                     content-length: {}\r\n\r\n{event}",
                    event.len()
                )
            }
            ("GET", "/restore/next") => {
                *shared.restore_polled.lock().unwrap() = true;
                shared.restore_polls.notify_waiters();
                loop {
                    let notified = shared.restore.notified();
                    if *shared.restored.lock().unwrap() {
                        break;
                    }
                    notified.await;
                }
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_owned()
            }
            ("POST", "/init/error" | "/restore/error") => {
                shared.errors.lock().unwrap().push(body);
                accepted()
            }
            ("POST", path) => {
                let request_id = path
                    .strip_prefix("/invocation/")
                    .and_then(|p| p.split('/').next())
                    .unwrap_or("")
                    .to_owned();
                shared.responses.lock().unwrap().insert(request_id, body);
                shared.responded.notify_waiters();
                accepted()
            }
            _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_owned(),
        };
        if write.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn accepted() -> String {
    let body = r#"{"status":"OK"}"#;
    format!(
        "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}
