//! The `Endpoint`'s TCP settings reach the socket the instrumented
//! connector opens, as they would with tonic's own connector: TCP keepalive
//! (the fix for NAT idle resets), `TCP_NODELAY`, and a connect timeout that
//! fails with `TimedOut` and is logged as the connect's failure. Everything
//! on loopback; the options are read back from the client's socket.

mod common;

use std::io;
use std::time::Duration;

use common::{Captured, subscriber};
use hyper_util::rt::TokioIo;
use socket2::SockRef;
use thawtrace_instrument::{Connector, ObservedStream};
use tokio::net::TcpListener;
use tonic::transport::Endpoint;
use tower::ServiceExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A loopback listener, and an endpoint for it. The kernel completes
/// connections to it without an accept.
async fn listener() -> (TcpListener, Endpoint) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
    (listener, endpoint)
}

/// Connects through the instrumented connector built from `endpoint`.
async fn connect(endpoint: &Endpoint) -> io::Result<TokioIo<ObservedStream>> {
    Connector::from(endpoint)
        .oneshot(endpoint.uri().clone())
        .await
}

/// The client's end of the connection, for its socket options.
fn client(io: &TokioIo<ObservedStream>) -> SockRef<'_> {
    SockRef::from(io.inner().get_ref())
}

#[cfg(target_os = "linux")]
#[test]
fn keepalive_and_nodelay_from_the_endpoint_are_on_the_clients_socket() {
    runtime().block_on(async {
        let (_listener, endpoint) = listener().await;
        let endpoint = endpoint
            .tcp_keepalive(Some(Duration::from_secs(7)))
            .tcp_keepalive_interval(Some(Duration::from_secs(3)))
            .tcp_keepalive_retries(Some(4))
            .tcp_nodelay(true);
        let io = connect(&endpoint).await.expect("connected on loopback");
        let socket = client(&io);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(7));
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 4);
        assert!(socket.tcp_nodelay().unwrap());
    });
}

#[test]
fn by_default_nodelay_is_on_and_keepalive_off_as_in_tonic() {
    runtime().block_on(async {
        let (_listener, endpoint) = listener().await;
        let io = connect(&endpoint).await.expect("connected on loopback");
        let socket = client(&io);
        assert!(!socket.keepalive().unwrap());
        assert!(socket.tcp_nodelay().unwrap());

        let io = connect(&endpoint.clone().tcp_nodelay(false))
            .await
            .expect("connected on loopback");
        assert!(!client(&io).tcp_nodelay().unwrap());
    });
}

#[test]
fn an_expired_connect_timeout_fails_with_timed_out_and_is_logged() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(subscriber(&captured));
    runtime().block_on(async {
        // A listener that would accept: the connect fails for want of time,
        // not for want of a peer. A zero timeout has expired before the
        // first attempt, whatever the machine's speed.
        let (listener, endpoint) = listener().await;
        let port = listener.local_addr().unwrap().port();
        let endpoint = endpoint.connect_timeout(Duration::ZERO);
        let error = connect(&endpoint).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            error.to_string().contains("connect timeout expired"),
            "{error}"
        );

        // Through the public entry point, tonic's error carries it.
        let error = thawtrace_instrument::connect(endpoint).await.unwrap_err();
        let timed_out =
            std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .filter_map(|e| e.downcast_ref::<io::Error>())
            .any(|e| e.kind() == io::ErrorKind::TimedOut);
        assert!(timed_out, "{error:?}");

        // A name to resolve: the resolution is what runs out of time.
        let endpoint = Endpoint::from_shared(format!("http://localhost:{port}"))
            .unwrap()
            .connect_timeout(Duration::ZERO);
        let error = connect(&endpoint).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    });
    let log = captured.text();
    let connect_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("event=\"connect_error\""))
        .collect();
    assert_eq!(connect_errors.len(), 2, "{log}");
    for line in connect_errors {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
        assert!(
            line.contains("timed out: the 0ns connect timeout expired"),
            "{line}"
        );
    }
    let dns_error = log
        .lines()
        .find(|l| l.contains("event=\"dns_error\""))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        dns_error.contains("resolving localhost timed out"),
        "{dns_error}"
    );
}
