//! A balanced channel reports its endpoint changes, every pick, and each
//! endpoint's connection and keepalive: PINGs out, acks in, with the peer.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct EchoMessage {
    #[prost(bytes = "vec", tag = "1")]
    payload: Vec<u8>,
}

#[test]
fn balanced_channel_reports_picks_keepalive_and_endpoint_changes() {
    let examples = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    let port_file =
        std::env::temp_dir().join(format!("thawtrace-balanced-{}.port", std::process::id()));
    let mut server = Command::new(examples.join("echo_server"))
        .arg(&port_file)
        .stdout(Stdio::null())
        .spawn()
        .expect("cargo test builds the echo_server example");
    let mut port = None;
    for _ in 0..100 {
        if let Ok(p) = std::fs::read_to_string(&port_file) {
            port = p.trim().parse::<u16>().ok();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = port.expect("the echo server wrote its port");

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .with_filter(LevelFilter::INFO),
        )
        .with(thawtrace_instrument::layer());
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (channel, endpoints) = thawtrace_instrument::balance_channel::<u16>(4);
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .http2_keep_alive_interval(Duration::from_millis(300))
            .keep_alive_timeout(Duration::from_secs(1))
            .keep_alive_while_idle(true);
        endpoints.insert(port, endpoint).await.unwrap();
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<EchoMessage, EchoMessage>::default();
        let path = http::uri::PathAndQuery::from_static("/thawtrace.Echo/Echo");
        let reply = client
            .unary(
                tonic::Request::new(EchoMessage {
                    payload: b"hi".to_vec(),
                }),
                path,
                codec,
            )
            .await
            .unwrap();
        assert_eq!(reply.into_inner().payload, b"hi");
        // Idle for a few keepalive intervals: PINGs go out and come back.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        endpoints.remove(port).await.unwrap();
    });
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_file(&port_file);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains(r#"event="lb_endpoint_insert""#), "{log}");
    assert!(log.contains(r#"event="lb_endpoint_remove""#), "{log}");
    // The pick names the endpoint, and the request it carried.
    assert!(
        log.contains(r#"event="lb_pick" key="#)
            && log.contains(&format!("uri=http://127.0.0.1:{port}/"))
            && log.contains(r#"path="/thawtrace.Echo/Echo""#),
        "{log}"
    );
    // The endpoint connects with the instrumented connector: DNS-free
    // connect events and PINGs with their peer.
    assert!(log.contains(r#"event="connect_done""#), "{log}");
    assert!(
        log.contains(r#"event="ping_sent""#) && log.contains(&format!("peer=127.0.0.1:{port}")),
        "{log}"
    );
    assert!(log.contains(r#"event="ping_ack""#), "{log}");
    // h2's per-frame DEBUG events never reach the fmt layer.
    assert!(!log.contains("h2::codec"), "{log}");
}
