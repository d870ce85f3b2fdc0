//! The `thawtrace` collector and CLI: decode CloudWatch Logs payloads, run
//! the [`thawtrace_analyzers`] core, report findings.
//!
//! Data flows one way: `input` (decode) -> analyzers (parse, correlate) ->
//! `report` (text, JSON lines).

pub mod cli;
pub mod export;
pub mod guard;
pub mod input;
pub mod lambda;
pub mod lookback;
pub mod report;
pub mod settings;
pub mod state;

/// The recorded sample `thawtrace demo` analyses: real @grpc/grpc-js 1.14
/// logs from a Lambda-like environment frozen with SIGSTOP between
/// invocations (see `tests/recorders/`).
pub const DEMO_EVENTS: &str = include_str!("demo/events.jsonl");
