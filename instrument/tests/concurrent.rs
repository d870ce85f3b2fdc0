//! Lambda Managed Instances: two invocations in flight at once in one
//! process (lambda_runtime's `run_concurrent` polling a Runtime API on
//! loopback), sharing one channel to the echo server. Each invocation's
//! events, and those of the tasks it spawned, carry its own request ID; the
//! shared connection's events (connect, keepalive PINGs and acks, close)
//! carry the invocation whose call opened it, also after both ended;
//! `between_invocations` is true only once none is in flight.
//!
//! One test in this file: it sets the process's environment first.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::runtime_api::RuntimeApi;
use common::{Captured, EchoServer, echo, subscriber};
use lambda_runtime::{LambdaEvent, Runtime, layers::TracingLayer, service_fn};
use serde_json::{Value, json};
use tokio::sync::{Barrier, watch};
use tonic::transport::Channel;

const A: &str = "0b8e4d0c-aaaa";
const B: &str = "0b8e4d0c-bbbb";

/// The value of `key=` in a text line's own fields (after the span prefix).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let fields = &line[line.find("}: ").map_or(0, |i| i + 3)..];
    let at = fields.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &fields[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split(' ').next()?,
    })
}

#[test]
fn concurrent_invocations_are_each_stamped_with_their_own_request_id() {
    let server = EchoServer::start();
    let api = RuntimeApi::bind();
    // SAFETY: no other thread runs yet in this test binary (one test, and
    // the echo server is a child process).
    unsafe {
        std::env::set_var("AWS_LAMBDA_MAX_CONCURRENCY", "2");
        for (key, value) in api.env() {
            std::env::set_var(key, value);
        }
    }
    let captured = Captured::default();
    // Global: lambda_runtime runs each invocation on a worker task.
    tracing::subscriber::set_global_default(subscriber(&captured)).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // One channel for the environment, made before any invocation.
    let endpoint = tonic::transport::Endpoint::from_shared(server.uri())
        .unwrap()
        .http2_keep_alive_interval(Duration::from_millis(50))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    let channel: Arc<Mutex<Option<Channel>>> =
        Arc::new(Mutex::new(Some(runtime.block_on(async {
            thawtrace_instrument::connect_lazy(endpoint)
        }))));
    let both_in_flight = Arc::new(Barrier::new(2));
    let (ended, ended_rx) = watch::channel(false);
    let handler = {
        let channel = channel.clone();
        service_fn(move |event: LambdaEvent<Value>| {
            let (channel, both_in_flight, ended_rx) =
                (channel.clone(), both_in_flight.clone(), ended_rx.clone());
            async move {
                let id = event.context.request_id.clone();
                both_in_flight.wait().await;
                let own = thawtrace_instrument::current();
                // A task of this invocation: its events carry it, now and
                // after the invocation ended.
                let mut later = ended_rx.clone();
                let background = id.clone();
                let task = thawtrace_instrument::spawn(async move {
                    tracing::info!(owner = %background, "background work");
                    let _ = later.wait_for(|ended| *ended).await;
                    tracing::info!(owner = %background, "background work after the end");
                });
                drop(task);
                let shared = channel.lock().unwrap().clone().unwrap();
                let echoed = echo(shared, id.as_bytes()).await;
                both_in_flight.wait().await;
                Ok::<_, lambda_runtime::Error>(json!({
                    "stamp": own.request_id.as_deref(),
                    "in_flight": own.in_flight,
                    "between": own.between_invocations,
                    "echoed": String::from_utf8(echoed).unwrap(),
                }))
            }
        })
    };
    // On a thread of its own: the runtime's future is not `Send` (its error
    // conversion is not general enough for `tokio::spawn`).
    let handle = runtime.handle().clone();
    std::thread::spawn(move || {
        handle.block_on(async move {
            let _ = Runtime::new(handler)
                .layer(thawtrace_instrument::ThawLogLayer)
                .layer(TracingLayer::new())
                .run_concurrent()
                .await;
        })
    });
    runtime.block_on(async { api.serve() });
    api.invoke(A, "{}");
    api.invoke(B, "{}");
    for id in [A, B] {
        let response = runtime.block_on(api.response(id));
        let response: Value = serde_json::from_str(&response).unwrap();
        assert_eq!(
            response,
            json!({"stamp": id, "in_flight": 2, "between": false, "echoed": id}),
            "inside the handler, its own invocation"
        );
    }
    // The spans close just after the responses are posted.
    let mut idle = false;
    for _ in 0..1000 {
        if thawtrace_instrument::current().in_flight == Some(0) {
            idle = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(idle, "both invocations ended");
    ended.send(true).unwrap();
    // Keepalive goes on between invocations, on the connection's own task.
    let acks = || captured.text().matches(r#"event="ping_ack""#).count();
    let acks_while_in_flight = acks();
    for _ in 0..1000 {
        if acks() > acks_while_in_flight {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The shared channel goes: its connection closes, with none in flight.
    drop(channel.lock().unwrap().take());
    let mut log = String::new();
    for _ in 0..1000 {
        log = captured.text();
        if log.matches("background work after the end").count() == 2
            && log.contains(r#"event="connection_closed""#)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(runtime);

    for id in [A, B] {
        let during = log
            .lines()
            .find(|l| l.ends_with(&format!("background work owner={id}")))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(
            during.contains(&format!(
                r#"thawtrace{{request_id="{id}" between_invocations=false}}"#
            )),
            "{log}"
        );
        let after = log
            .lines()
            .find(|l| l.ends_with(&format!("background work after the end owner={id}")))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(
            after.contains(&format!(
                r#"thawtrace{{request_id="{id}" between_invocations=true}}"#
            )),
            "{log}"
        );
    }
    // One connection, opened by the call of one of the two, and its events
    // carry that invocation to the end.
    let events = |name: &str| -> Vec<&str> {
        log.lines()
            .filter(|l| l.contains(&format!(r#"event="{name}""#)))
            .collect()
    };
    let connects = events("connect_done");
    assert_eq!(connects.len(), 1, "{log}");
    let opener = field(connects[0], "request_id").unwrap();
    assert!([A, B].contains(&opener), "{log}");
    assert_eq!(field(connects[0], "in_flight"), Some("2"), "{log}");
    assert_eq!(
        field(connects[0], "between_invocations"),
        Some("false"),
        "{log}"
    );
    let closed = events("connection_closed");
    assert_eq!(closed.len(), 1, "{log}");
    assert_eq!(field(closed[0], "conn"), field(connects[0], "conn"));
    assert_eq!(field(closed[0], "request_id"), Some(opener), "{log}");
    assert_eq!(field(closed[0], "in_flight"), Some("0"), "{log}");
    assert_eq!(
        field(closed[0], "between_invocations"),
        Some("true"),
        "{log}"
    );
    let pings = events("ping_sent");
    assert!(!pings.is_empty() && !events("ping_ack").is_empty(), "{log}");
    for line in pings.into_iter().chain(events("ping_ack")) {
        assert_eq!(field(line, "conn"), field(connects[0], "conn"), "{log}");
        assert_eq!(field(line, "request_id"), Some(opener), "{log}");
    }
    // The last ack came in with none in flight.
    let last_ack = *events("ping_ack").last().unwrap();
    assert_eq!(
        field(last_ack, "between_invocations"),
        Some("true"),
        "{log}"
    );
    assert_eq!(field(last_ack, "in_flight"), Some("0"), "{log}");
    assert!(events("thaw").is_empty(), "never frozen: {log}");
}
