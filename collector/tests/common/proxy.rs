//! The TCP fault proxy (tests/harness/fault_proxy.py --tcp) in front of a
//! dependency on loopback: it refuses, stalls, resets or delays each new
//! connection as its mode file says.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::moto::{Server, python, wait_for_port};
use super::repo;

/// A running proxy; dropping it stops it.
pub struct FaultProxy {
    _server: Server,
    /// Where it listens (for `refuse`: bound, never listened on).
    pub port: u16,
    mode_file: PathBuf,
    state_file: PathBuf,
}

impl FaultProxy {
    /// A proxy to `127.0.0.1:upstream` in `mode` (`pass`, `refuse`,
    /// `stall`, `reset`, `delay MS`), its files in `dir`.
    pub fn start(upstream: u16, mode: &str, dir: &Path) -> FaultProxy {
        let tag = format!("{upstream}-{}", mode.replace(' ', "-"));
        let mode_file = dir.join(format!("proxy-{tag}.mode"));
        let state_file = dir.join(format!("proxy-{tag}.json"));
        std::fs::write(&mode_file, mode).unwrap();
        // Owned at once: dropping it (also on a failed start) kills it.
        let server = Server(
            Command::new(python())
                .arg(repo().join("tests/harness/fault_proxy.py"))
                .arg("--tcp")
                .arg(upstream.to_string())
                .arg(&mode_file)
                .arg(&state_file)
                .spawn()
                .unwrap(),
        );
        for _ in 0..100 {
            if let Some(port) = std::fs::read_to_string(&state_file)
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .and_then(|v| v["port"].as_u64())
            {
                let port = port as u16;
                if mode != "refuse" {
                    wait_for_port(port);
                }
                return FaultProxy {
                    _server: server,
                    port,
                    mode_file,
                    state_file,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the fault proxy did not start");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it does to the next connections from now on.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(&self.mode_file, mode).unwrap();
    }

    /// The connections it took, per mode.
    pub fn connections(&self) -> Value {
        std::fs::read_to_string(&self.state_file)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .map_or(Value::Null, |v| v["connections"].clone())
    }
}
