//! moto in server mode on loopback: the AWS APIs the collector calls
//! (CloudWatch Logs, DynamoDB), for the tests that call them.
//!
//! Needs moto: `bash tests/setup.sh`, THAWTRACE_PYTHON=tests/.deps/venv/bin/python.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn python() -> String {
    std::env::var("THAWTRACE_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16) {
    for _ in 0..150 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn moto() -> (Server, u16) {
    moto_with(&["-m", "moto.server"])
}

/// moto answering one request at a time, so a conditional write is atomic
/// as DynamoDB makes it (tests/harness/moto_atomic.py says why).
pub fn moto_atomic() -> (Server, u16) {
    let script = super::repo().join("tests/harness/moto_atomic.py");
    moto_with(&[script.to_str().unwrap()])
}

fn moto_with(program: &[&str]) -> (Server, u16) {
    let port = free_port();
    // Owned at once: dropping it (also on a failed start) kills the server.
    let server = Server(
        Command::new(python())
            .args(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto is installed: bash tests/setup.sh"),
    );
    wait_for_port(port);
    (server, port)
}

/// A client of moto on `$port` from the SDK crate `$sdk`, in `$region`,
/// with moto's test credentials.
macro_rules! moto_client {
    ($sdk:ident, $port:expr, $region:expr) => {{
        use $sdk::config::{BehaviorVersion, Credentials, Region};
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new($region))
                .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
                .endpoint_url(format!("http://127.0.0.1:{}", $port))
                .build(),
        )
    }};
}
#[allow(unused_imports)]
pub(crate) use moto_client;

/// A DynamoDB client of moto on `port`.
pub fn dynamodb_client(port: u16) -> aws_sdk_dynamodb::Client {
    moto_client!(aws_sdk_dynamodb, port, "us-east-1")
}

/// The state table `name` as the template creates it (TTL aside: expiry
/// compares with the wall clock, which no test may depend on).
pub async fn create_state_table(db: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    db.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .send()
        .await
        .unwrap();
}
