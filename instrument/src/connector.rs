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
use tonic::transport::Endpoint;

use crate::invocation::{self, Stamp};
use crate::task::{self, Connection};
use crate::tcp::{Deadline, TcpSettings, within};

/// Resolves and connects over TCP, logging `dns_start`, `dns_result` /
/// `dns_error`, `connect_start`, `connect_done` / `connect_error` events
/// (target `thawtrace`), each stamped with the current invocation.
///
/// Build it from the `Endpoint` it connects for, as [`connect_lazy`](crate::connect_lazy),
/// [`connect`](crate::connect) and [`balance_channel`](crate::balance_channel)
/// do. tonic sets an endpoint's TCP keepalive and `TCP_NODELAY` only in its
/// own connector (hyper-util's `HttpConnector`), so this one reads them from
/// the endpoint and sets them the same way: `tcp_keepalive`,
/// `tcp_keepalive_interval` and `tcp_keepalive_retries` (the last two where
/// the platform has them, as in hyper-util), and `tcp_nodelay`. The
/// `connect_timeout` bounds resolution and TCP connect together, each of the
/// addresses a name resolves to getting an even share of it, as in
/// `HttpConnector`; when it expires the connect fails with an `io::Error` of
/// kind `TimedOut`, logged as `dns_error` or `connect_error`. Over this
/// connector tonic bounds the whole connect, TLS handshake included, by the
/// same timeout, and applies the endpoint's TLS, HTTP/2 and request
/// settings. `local_address` is not applied: tonic offers no way to read it
/// back. [`Connector::default`] has tonic's defaults.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// let endpoint = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
///     .tcp_keepalive(Some(Duration::from_secs(60)))
///     .connect_timeout(Duration::from_secs(2));
/// let connector = thawtrace_instrument::Connector::from(&endpoint);
/// let channel = endpoint.connect_with_connector_lazy(connector);
/// # drop(channel);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Connector {
    tcp: TcpSettings,
}

impl Default for Connector {
    /// A connector with tonic's defaults: `TCP_NODELAY` on, TCP keepalive
    /// off, no connect timeout (read from a fresh tonic `Endpoint`, so they
    /// stay tonic's).
    fn default() -> Self {
        Connector::from(&Endpoint::from_static("http://localhost"))
    }
}

impl From<&Endpoint> for Connector {
    /// A connector that applies `endpoint`'s TCP keepalive, `TCP_NODELAY` and
    /// connect timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let endpoint = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
    ///     .tcp_keepalive(Some(Duration::from_secs(60)))
    ///     .tcp_keepalive_interval(Some(Duration::from_secs(10)))
    ///     .tcp_keepalive_retries(Some(3));
    /// let connector = thawtrace_instrument::Connector::from(&endpoint);
    /// # drop(connector);
    /// ```
    fn from(endpoint: &Endpoint) -> Self {
        Connector {
            tcp: TcpSettings::from(endpoint),
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The host (brackets of an IPv6 literal removed) and port a URI names.
fn host_port(uri: &Uri) -> io::Result<(String, u16)> {
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
    Ok((host, port))
}

/// The addresses of `host`: itself when it is an IP literal, else
/// resolved within the deadline, logging `dns_start` and `dns_result` or
/// `dns_error`.
async fn resolve(
    host: &str,
    port: u16,
    deadline: Option<Deadline>,
    stamp: &Stamp,
) -> io::Result<Vec<SocketAddr>> {
    let request_id = stamp.request_id.as_deref().unwrap_or("-");
    let between = stamp.between_invocations;
    let in_flight = stamp.in_flight;
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    tracing::debug!(target: "thawtrace", event = "dns_start", host = %host, request_id, between_invocations = between, in_flight, "resolving");
    let started = Instant::now();
    let lookup = tokio::net::lookup_host((host, port));
    match within(deadline, || format!("resolving {host}"), lookup).await {
        Ok(found) => {
            let found: Vec<SocketAddr> = found.collect();
            let list = found
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            tracing::info!(target: "thawtrace", event = "dns_result", host = %host, addrs = %list,
                duration_ms = ms(started.elapsed()), request_id, between_invocations = between, in_flight, "resolved");
            Ok(found)
        }
        Err(e) => {
            tracing::warn!(target: "thawtrace", event = "dns_error", host = %host, error = %e,
                duration_ms = ms(started.elapsed()), request_id, between_invocations = between, in_flight, "resolution failed");
            Err(e)
        }
    }
}

async fn connect(
    uri: Uri,
    tcp: TcpSettings,
    deadline: Option<Deadline>,
) -> io::Result<TokioIo<ObservedStream>> {
    let (host, port) = host_port(&uri)?;
    let stamp = invocation::current();
    let request_id = stamp.request_id.as_deref().unwrap_or("-");
    let between = stamp.between_invocations;
    let in_flight = stamp.in_flight;
    let addrs = resolve(&host, port, deadline, &stamp).await?;
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host} resolved to no address"),
    );
    let count = addrs.len();
    for (i, peer) in addrs.into_iter().enumerate() {
        // Out of time after a failed attempt: its error is the answer.
        if i > 0 && deadline.is_some_and(|d| d.passed()) {
            break;
        }
        tracing::debug!(target: "thawtrace", event = "connect_start", peer = %peer, request_id, between_invocations = between, in_flight, "connecting");
        let started = Instant::now();
        match tcp.connect(peer, deadline, count).await {
            Ok(stream) => {
                let connection = Connection::new(Some(peer));
                tracing::info!(target: "thawtrace", event = "connect_done", conn = connection.id, peer = %peer,
                    duration_ms = ms(started.elapsed()), request_id, between_invocations = between, in_flight, "connected");
                return Ok(TokioIo::new(ObservedStream {
                    stream,
                    connection,
                    tls: TlsWatch::new(),
                }));
            }
            Err(e) => {
                tracing::warn!(target: "thawtrace", event = "connect_error", peer = %peer, error = %e,
                    duration_ms = ms(started.elapsed()), request_id, between_invocations = between, in_flight, "connect failed");
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
        // Taken now, before tonic starts its own timer over this future.
        let deadline = self.tcp.deadline();
        Box::pin(connect(uri, self.tcp.clone(), deadline))
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
    tls: TlsWatch,
}

/// Watches the TLS records the client writes (when tonic runs TLS over this
/// socket) for the end of the handshake: the client's final flight starts
/// with a ChangeCipherSpec (TLS 1.2, and 1.3 in compatibility mode) or an
/// encrypted record (TLS 1.3), written right after it read the server's
/// Finished. Only record headers are read; nothing is kept.
#[derive(Debug)]
enum TlsWatch {
    /// Nothing written yet.
    Start(Instant),
    /// In the handshake: the header bytes of the next record gathered so
    /// far, and what is left of the current record's body.
    Handshake {
        started: Instant,
        header: [u8; 5],
        have: usize,
        remaining: usize,
    },
    /// Not TLS, or done: nothing more to look at.
    Off,
}

const TLS_CHANGE_CIPHER_SPEC: u8 = 20;
const TLS_HANDSHAKE: u8 = 22;
const TLS_APPLICATION_DATA: u8 = 23;

impl TlsWatch {
    fn new() -> Self {
        TlsWatch::Start(Instant::now())
    }

    /// Looks at bytes written; the handshake's duration once it is over.
    // Kept whole (about 60 lines): one state machine over the record
    // stream, whose states read best side by side.
    fn written(&mut self, mut bytes: &[u8]) -> Option<Duration> {
        loop {
            match self {
                TlsWatch::Off => return None,
                TlsWatch::Start(started) => {
                    // A ClientHello record: handshake type, TLS major version 3.
                    if bytes.is_empty() {
                        return None;
                    }
                    if bytes[0] != TLS_HANDSHAKE || bytes.get(1).is_some_and(|&v| v != 3) {
                        *self = TlsWatch::Off;
                        return None;
                    }
                    *self = TlsWatch::Handshake {
                        started: *started,
                        header: [0; 5],
                        have: 0,
                        remaining: 0,
                    };
                }
                TlsWatch::Handshake {
                    started,
                    header,
                    have,
                    remaining,
                } => {
                    if bytes.is_empty() {
                        return None;
                    }
                    if *remaining > 0 {
                        let skip = (*remaining).min(bytes.len());
                        *remaining -= skip;
                        bytes = &bytes[skip..];
                        continue;
                    }
                    let take = (5 - *have).min(bytes.len());
                    header[*have..*have + take].copy_from_slice(&bytes[..take]);
                    *have += take;
                    bytes = &bytes[take..];
                    if *have < 5 {
                        return None;
                    }
                    *have = 0;
                    match header[0] {
                        TLS_CHANGE_CIPHER_SPEC | TLS_APPLICATION_DATA => {
                            let took = started.elapsed();
                            *self = TlsWatch::Off;
                            return Some(took);
                        }
                        TLS_HANDSHAKE => {
                            *remaining = usize::from(u16::from_be_bytes([header[3], header[4]]));
                        }
                        // An alert or anything else: not a handshake we follow.
                        _ => {
                            *self = TlsWatch::Off;
                            return None;
                        }
                    }
                }
            }
        }
    }
}

impl ObservedStream {
    /// The TCP stream underneath, to read its addresses or socket options.
    /// Reading or writing through it bypasses the instrument.
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// use tower::Service;
    /// let mut connector = thawtrace_instrument::Connector::default();
    /// let io = connector.call(http::Uri::from_static("http://127.0.0.1:50051")).await?;
    /// let local = io.inner().get_ref().local_addr()?;
    /// # drop(local); Ok(()) }
    /// ```
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    fn watch_tls(&mut self, written: &[u8]) {
        if let Some(took) = self.tls.written(written) {
            let stamp = invocation::current();
            let peer = self
                .connection
                .peer
                .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            tracing::info!(target: "thawtrace", event = "tls_done", conn = self.connection.id, peer = %peer,
                duration_ms = ms(took), request_id = stamp.request_id.as_deref().unwrap_or("-"),
                between_invocations = stamp.between_invocations, in_flight = stamp.in_flight, "TLS handshake done");
        }
    }
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
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result
            && !matches!(self.tls, TlsWatch::Off)
        {
            self.watch_tls(&buf[..n]);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        task::bind(&self.connection);
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(mut n)) = result
            && !matches!(self.tls, TlsWatch::Off)
        {
            for b in bufs {
                if n == 0 {
                    break;
                }
                let take = n.min(b.len());
                self.watch_tls(&b[..take]);
                n -= take;
            }
        }
        result
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, len: usize) -> Vec<u8> {
        let mut r = vec![kind, 3, 3, (len >> 8) as u8, len as u8];
        r.resize(5 + len, 0xaa);
        r
    }

    #[test]
    fn the_handshake_ends_at_the_clients_final_flight_however_it_is_split() {
        let mut hello = record(TLS_HANDSHAKE, 300);
        hello.extend(record(TLS_CHANGE_CIPHER_SPEC, 1));
        hello.extend(record(TLS_APPLICATION_DATA, 60));
        // Byte by byte: the header of each record spans writes.
        let mut watch = TlsWatch::new();
        let mut done = None;
        for (i, b) in hello.iter().enumerate() {
            if let Some(d) = watch.written(std::slice::from_ref(b)) {
                done = Some((i, d));
            }
        }
        // The ChangeCipherSpec header's last byte.
        assert_eq!(done.map(|(i, _)| i), Some(305 + 4));
        // All at once (TLS 1.3 without the compatibility record).
        let mut watch = TlsWatch::new();
        let mut flight = record(TLS_HANDSHAKE, 512);
        assert!(watch.written(&flight).is_none());
        flight = record(TLS_APPLICATION_DATA, 80);
        assert!(watch.written(&flight).is_some());
        assert!(matches!(watch, TlsWatch::Off));
    }

    #[test]
    fn plaintext_http2_is_not_tls() {
        let mut watch = TlsWatch::new();
        assert!(watch.written(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").is_none());
        assert!(matches!(watch, TlsWatch::Off));
        assert!(watch.written(&record(TLS_APPLICATION_DATA, 1)).is_none());
    }
}
