//! A connector for tonic's `Endpoint::connect_with_connector` that resolves,
//! connects and reports each step, and hands back a socket that tells the
//! instrument which task drives which connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::invocation;
use crate::task::{self, Connection};

/// Resolves and connects over TCP, logging `dns_start`, `dns_result` /
/// `dns_error`, `connect_start`, `connect_done` / `connect_error` events
/// (target `thawtrace`), each stamped with the current invocation.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let endpoint = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051");
/// let channel = endpoint.connect_with_connector_lazy(thawtrace_instrument::Connector::default());
/// # drop(channel);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Connector {
    nodelay: bool,
}

impl Default for Connector {
    /// A connector that sets `TCP_NODELAY` on its sockets, as tonic's own does.
    fn default() -> Self {
        Connector { nodelay: true }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

async fn connect(uri: Uri, nodelay: bool) -> io::Result<TokioIo<ObservedStream>> {
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let stamp = invocation::current();
    let request_id = stamp.request_id.as_deref().unwrap_or("-").to_owned();
    let between = stamp.between_invocations;
    let addrs: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            tracing::debug!(target: "thawtrace", event = "dns_start", host = %host, request_id, between_invocations = between, "resolving");
            let started = Instant::now();
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => {
                    let found: Vec<SocketAddr> = found.collect();
                    let list = found
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",");
                    tracing::info!(target: "thawtrace", event = "dns_result", host = %host, addrs = %list,
                        duration_ms = ms(started.elapsed()), request_id, between_invocations = between, "resolved");
                    found
                }
                Err(e) => {
                    tracing::warn!(target: "thawtrace", event = "dns_error", host = %host, error = %e,
                        duration_ms = ms(started.elapsed()), request_id, between_invocations = between, "resolution failed");
                    return Err(e);
                }
            }
        }
    };
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host} resolved to no address"),
    );
    for peer in addrs {
        tracing::debug!(target: "thawtrace", event = "connect_start", peer = %peer, request_id, between_invocations = between, "connecting");
        let started = Instant::now();
        match TcpStream::connect(peer).await {
            Ok(stream) => {
                if nodelay {
                    stream.set_nodelay(true)?;
                }
                let connection = Connection::new(Some(peer));
                tracing::info!(target: "thawtrace", event = "connect_done", conn = connection.id, peer = %peer,
                    duration_ms = ms(started.elapsed()), request_id, between_invocations = between, "connected");
                return Ok(TokioIo::new(ObservedStream { stream, connection }));
            }
            Err(e) => {
                tracing::warn!(target: "thawtrace", event = "connect_error", peer = %peer, error = %e,
                    duration_ms = ms(started.elapsed()), request_id, between_invocations = between, "connect failed");
                last = e;
            }
        }
    }
    Err(last)
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<ObservedStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(connect(uri, self.nodelay))
    }
}

/// A TCP stream that binds itself, on every read and write, to the
/// [`Stamped`](crate::Stamped) task doing the I/O: how the instrument knows
/// which connection a PING frame belongs to. [`Connector`] returns it.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use tower::Service;
/// let mut connector = thawtrace_instrument::Connector::default();
/// let io: hyper_util::rt::TokioIo<thawtrace_instrument::ObservedStream> =
///     connector.call(http::Uri::from_static("http://127.0.0.1:50051")).await?;
/// # drop(io); Ok(()) }
/// ```
#[derive(Debug)]
pub struct ObservedStream {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for ObservedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        task::bind(&self.connection);
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ObservedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        task::bind(&self.connection);
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        task::bind(&self.connection);
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
