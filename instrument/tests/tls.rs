//! A TLS channel over the instrumented connector: tonic runs rustls over
//! the socket the connector hands it, and the instrument reports when the
//! handshake is done (`tls_done`), between `connect_done` and the first
//! keepalive PING. Real parts: a tonic TLS server on loopback, certificates
//! made by openssl for the test.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Captured, EchoMessage, echo, subscriber};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, Server, ServerTlsConfig};

/// A CA and a `localhost` certificate it signed, in `dir`.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=thawtrace test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
}

#[test]
fn a_tls_handshake_is_reported_between_connect_and_the_first_ping() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir);
    // More than one crypto provider is compiled into the workspace's test
    // build (the AWS SDK brings one): name the one tonic's TLS uses.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();

    let captured = Captured::default();
    let subscriber = subscriber(&captured);
    let _guard = tracing::subscriber::set_default(subscriber);
    // One thread: the subscriber above is this thread's default.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let identity = Identity::from_pem(read("server.pem"), read("server.key"));
        let server = tokio::spawn(
            Server::builder()
                .tls_config(ServerTlsConfig::new().identity(identity))
                .unwrap()
                .add_service(EchoServer)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let endpoint = tonic::transport::Endpoint::from_shared(format!("https://localhost:{port}"))
            .unwrap()
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(read("ca.pem")))
                    .domain_name("localhost"),
            )
            .unwrap()
            .http2_keep_alive_interval(Duration::from_millis(300))
            .keep_alive_while_idle(true);
        let channel = thawtrace_instrument::connect(endpoint).await.unwrap();
        assert_eq!(echo(channel.clone(), b"over tls").await, b"over tls");
        // Idle, the connection kept: keepalive PINGs go out.
        tokio::time::sleep(Duration::from_millis(700)).await;
        drop(channel);
        server.abort();
    });
    let log = captured.text();
    let at = |event: &str| {
        log.find(&format!(r#"event="{event}""#))
            .unwrap_or_else(|| panic!("no {event}:\n{log}"))
    };
    assert!(at("dns_result") < at("connect_done"), "{log}");
    assert!(at("connect_done") < at("tls_done"), "{log}");
    assert!(at("tls_done") < at("ping_sent"), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains(r#"event="tls_done""#))
        .unwrap();
    assert!(
        line.contains("conn=1") && line.contains("peer=127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("duration_ms="), "{line}");
}

/// `/thawtrace.Echo/Echo`, answering with the request.
#[derive(Clone)]
struct EchoServer;

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = "thawtrace.Echo";
}

impl tower::Service<http::Request<tonic::body::Body>> for EchoServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        struct Echo;
        impl tonic::server::UnaryService<EchoMessage> for Echo {
            type Response = EchoMessage;
            type Future = std::future::Ready<Result<tonic::Response<EchoMessage>, tonic::Status>>;
            fn call(&mut self, request: tonic::Request<EchoMessage>) -> Self::Future {
                std::future::ready(Ok(tonic::Response::new(request.into_inner())))
            }
        }
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                EchoMessage,
                EchoMessage,
            >::default());
            Ok(grpc.unary(Echo, req).await)
        })
    }
}
