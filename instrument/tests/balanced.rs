//! A balanced channel reports its endpoint changes, every pick, and each
//! endpoint's connection and keepalive: PINGs out, acks in, with the peer.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Captured, echo, subscriber};

#[test]
fn balanced_channel_reports_picks_keepalive_and_endpoint_changes() {
    let examples = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    let tmp = tempfile::tempdir().unwrap();
    let port_file = tmp.path().join("port");
    let server = Command::new(examples.join("echo_server"))
        .arg(&port_file)
        .stdout(Stdio::null())
        .spawn()
        .expect("cargo test builds the echo_server example");
    // Killed however the test ends, so no server outlives it.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let server = Kill(server);
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
    let subscriber = subscriber(&captured);
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
        assert_eq!(echo(channel.clone(), b"hi").await, b"hi");
        // Idle for a few keepalive intervals: PINGs go out and come back.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        endpoints.remove(port).await.unwrap();
        drop(channel);
    });
    drop(server);
    let log = captured.text();
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
