//! What one stream says about the neighbouring failures: NAT idle resets
//! (decided here, from the stream alone), and the signals the cross-stream
//! analysis ([`crate::Neighbours`]) needs.

use std::collections::{BTreeMap, HashSet};

use super::ledger::Ledger;
use super::owner::Epoch;
use super::{Mark, StreamCorrelator, What};
use crate::finding::{Detail, FindingSink, Incident, Signal, SignalKind};
use crate::parse::{NetCause, NetFailure};

/// The NAT idle resets of a stream so far.
#[derive(Default)]
pub(super) struct Nat {
    /// The invocation (epoch) of the latest `Retry needed`.
    pub(super) retrying: Option<Epoch>,
    /// Per owning invocation (by epoch, in order): the incident so far.
    pub(super) found: BTreeMap<Epoch, Incident>,
    /// Near misses: idle connections that survived the NAT, and slow
    /// connects that went through.
    pub(super) near: Vec<Incident>,
}

impl StreamCorrelator {
    /// `nat_idle_reset`: a network failure (reset, read timeout, missed
    /// deadline, function timeout, a request retried on a new connection)
    /// at the first use of a connection idle at least the NAT idle timeout.
    /// A connection's idle time is the longest the log can vouch for:
    ///
    /// - the function's silence before the burst of lines the failure ends
    ///   (since its own last line, or its invocation's START): idle inside
    ///   one invocation, or a call that waited that long for a reply the
    ///   NAT could no longer deliver;
    /// - the time since the end of the last invocation without a network
    ///   failure (freezes, and the failed invocations after it, on a
    ///   connection that stayed dead), unless a function timeout restarted
    ///   the process (and its connections) in between;
    /// - where the client logs every use of its connections (urllib3 at
    ///   DEBUG), the time since that connection's last traffic, from the
    ///   ledger;
    /// - for a gRPC connection that missed a deadline after the NAT forgot
    ///   it (which does not close it), how long the ledger has had it dead.
    ///
    /// One finding per invocation, every failure line of it as evidence.
    pub(super) fn nat_failure(
        &self,
        mark: &Mark,
        net: &NetFailure,
        silence: i64,
        failed: &Failed,
        ledger: &mut Ledger,
        nat: &mut Nat,
    ) {
        if !is_nat_symptom(net.cause) {
            return;
        }
        let threshold = self.config.nat_idle_timeout_ms;
        let destination = net.destination.as_deref();
        let owner = self.owner(mark);
        let on_connection = ledger.failed_use(destination, mark.ts);
        // A new connection is a lost one's replacement only right after a
        // retry in the same invocation (not the next invocation's, after a
        // failure already counted, nor a pool growing).
        if net.cause == NetCause::Retried && nat.retrying.take() != Some(owner.epoch) {
            return;
        }
        let Some(request_id) = owner.request_id.clone() else {
            return;
        };
        let still_dead = (net.cause == NetCause::DeadlineExceeded)
            .then(|| ledger.dead_for(destination, mark.ts))
            .flatten();
        let idle = [
            Some(silence),
            self.idle_since_last_good(owner.epoch, failed),
            on_connection,
            owner.frozen_before_ms,
            still_dead,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(-1);
        if idle < threshold {
            return;
        }
        if net.cause == NetCause::DeadlineExceeded {
            ledger.dead_since(destination, mark.ts - idle);
        }
        self.nat_incident(mark, net, idle, nat.found.entry(owner.epoch), request_id);
        if let Some(incident) = nat.found.get_mut(&owner.epoch)
            && incident.tenant_id.is_none()
        {
            incident.tenant_id = self.tenant_of(owner.epoch);
        }
    }

    /// `nat_idle_near_miss`: a connection the log vouches was idle for at
    /// least [`Config::nat_near_miss_percent`](crate::Config) of the NAT
    /// idle timeout, whose next use (a response read) succeeded.
    pub(super) fn nat_near_miss(&self, mark: &Mark, destination: &str, idle: i64, nat: &mut Nat) {
        let timeout = self.config.nat_idle_timeout_ms;
        let near = timeout.saturating_mul(i64::from(self.config.nat_near_miss_percent)) / 100;
        if idle < near || idle >= timeout {
            return;
        }
        let owner = self.owner(mark);
        nat.near.push(Incident {
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            log_streams: vec![self.log_stream.clone()],
            request_ids: owner.request_id.clone().into_iter().collect(),
            first_at_ms: mark.ts - idle,
            last_at_ms: mark.ts,
            detail: Detail::NatIdleNearMiss {
                request_id: owner.request_id,
                destination: destination.to_owned(),
                idle_ms: idle,
                nat_idle_timeout_ms: timeout,
                margin_ms: timeout - idle,
            },
            evidence: vec![self.texts.get(mark.id).to_owned()],
            tenant_id: self.tenant_of(owner.epoch),
        });
    }

    /// `connect_slow`: a connect that took at least
    /// [`Config::connect_slow_ms`](crate::Config) from its attempt's start
    /// (`start`: that mark's position and time) to the connection, and went
    /// through. It is the invocation that started the connect's.
    pub(super) fn connect_slow(
        &self,
        mark: &Mark,
        destination: &str,
        start: (u32, i64),
        nat: &mut Nat,
    ) {
        let (start_pos, start_ts) = start;
        let took = mark.ts - start_ts;
        if took < self.config.connect_slow_ms {
            return;
        }
        let Ok(i) = self.marks.binary_search_by_key(&start_pos, |m| m.pos) else {
            return;
        };
        let started = &self.marks[i];
        let owner = self.owner(started);
        nat.near.push(Incident {
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            log_streams: vec![self.log_stream.clone()],
            request_ids: owner.request_id.clone().into_iter().collect(),
            first_at_ms: start_ts,
            last_at_ms: mark.ts,
            detail: Detail::ConnectSlow {
                request_id: owner.request_id,
                destination: destination.to_owned(),
                connect_ms: took,
                threshold_ms: self.config.connect_slow_ms,
            },
            evidence: vec![
                self.texts.get(started.id).to_owned(),
                self.texts.get(mark.id).to_owned(),
            ],
            tenant_id: self.tenant_of(owner.epoch),
        });
    }

    /// Adds a failure line to its invocation's `nat_idle_reset` (one per
    /// invocation, every failure line of it as evidence).
    fn nat_incident(
        &self,
        mark: &Mark,
        net: &NetFailure,
        idle: i64,
        entry: std::collections::btree_map::Entry<'_, Epoch, Incident>,
        request_id: String,
    ) {
        let threshold = self.config.nat_idle_timeout_ms;
        let incident = entry.or_insert_with(|| Incident {
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            log_streams: vec![self.log_stream.clone()],
            request_ids: vec![request_id],
            first_at_ms: mark.ts,
            last_at_ms: mark.ts,
            detail: Detail::NatIdleReset {
                cause: net.cause,
                idle_ms: idle,
                nat_idle_timeout_ms: threshold,
                destination: None,
            },
            evidence: Vec::new(),
            tenant_id: None,
        });
        incident.last_at_ms = mark.ts;
        incident.evidence.push(self.texts.get(mark.id).to_owned());
        if let Detail::NatIdleReset { destination, .. } = &mut incident.detail
            && destination.is_none()
        {
            destination.clone_from(&net.destination);
        }
    }

    /// The invocations (by index) with a failure that may be a NAT's, and
    /// those whose process Lambda restarted at a function timeout.
    pub(super) fn invocations_with_network_failures(&self) -> Failed {
        let mut failed = Failed::default();
        for mark in &self.marks {
            let What::Net(net, _) = &mark.what else {
                continue;
            };
            let Some(idx) = self.owner(mark).epoch.invocation_index() else {
                continue;
            };
            // A request retried on a new connection left a good one.
            if is_nat_symptom(net.cause) && net.cause != NetCause::Retried {
                failed.network.insert(idx);
            }
            if net.cause == NetCause::FunctionTimeout {
                failed.restarted.insert(idx);
            }
        }
        failed
    }

    /// From the end of the last invocation before the one of `epoch` that
    /// had no network failure, to that invocation's start: how long a
    /// connection last used then has been idle. `None` without platform
    /// windows, or when a function timeout restarted the process since.
    fn idle_since_last_good(&self, epoch: Epoch, failed: &Failed) -> Option<i64> {
        if self.invocations.is_empty() {
            return None;
        }
        let idx = epoch.invocation_index()?;
        let start = self.invocations[idx as usize].start_ms?;
        for j in (0..idx).rev() {
            if failed.restarted.contains(&j) {
                return None;
            }
            if !failed.network.contains(&j) {
                let inv = &self.invocations[j as usize];
                return inv.end_ms.or(inv.start_ms).map(|end| start - end);
            }
        }
        None
    }

    /// A connect that timed out: a client's connect timeout, or Lambda's
    /// function timeout while a connect was pending (which the ledger
    /// knows), a connect timeout with no timeout of its own.
    pub(super) fn net_signal(
        &self,
        mark: &Mark,
        net: &NetFailure,
        ledger: &Ledger,
    ) -> Option<SignalKind> {
        let destination = match net.cause {
            NetCause::ConnectTimeout => net.destination.clone(),
            NetCause::FunctionTimeout => {
                Some(ledger.pending_connect(self.owner(mark).epoch)?.to_owned())
            }
            _ => return None,
        };
        Some(SignalKind::ConnectTimeout { destination })
    }

    /// The signals for the cross-stream analysis: each invocation's start,
    /// then those of lines (`marked`), each with the invocation that owns
    /// its line.
    pub(super) fn emit_signals(
        &self,
        marked: Vec<(&Mark, SignalKind)>,
        sink: &mut impl FindingSink,
    ) {
        let group: std::sync::Arc<str> = self.log_group.as_str().into();
        let stream: std::sync::Arc<str> = self.log_stream.as_str().into();
        let signal = |request_id, at_ms, event_id: &str, what| Signal {
            log_group: group.clone(),
            log_stream: stream.clone(),
            request_id,
            at_ms,
            event_id: event_id.to_owned(),
            what,
        };
        for inv in &self.invocations {
            if let (Some(at), Some((_, id))) = (inv.start_ms, &inv.start_event) {
                sink.signal(signal(
                    Some(inv.request_id.clone()),
                    at,
                    id,
                    SignalKind::Start,
                ));
            }
        }
        for (mark, what) in marked {
            sink.signal(signal(
                self.owner(mark).request_id,
                mark.ts,
                self.texts.get(mark.id),
                what,
            ));
        }
    }
}

/// Invocations (by index) with a NAT symptom, and those a function
/// timeout ended (Lambda restarts the process: new connections).
#[derive(Default)]
pub(super) struct Failed {
    network: HashSet<u32>,
    restarted: HashSet<u32>,
}

/// The failures a connection the NAT forgot can cause at its next use.
fn is_nat_symptom(cause: NetCause) -> bool {
    match cause {
        NetCause::Reset
        | NetCause::ReadTimeout
        | NetCause::FunctionTimeout
        | NetCause::DeadlineExceeded
        | NetCause::Retried => true,
        NetCause::ConnectTimeout | NetCause::ConnectRefused => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::correlate::IdempotencyKey;
    use crate::{Collected, Config, FindingKind};

    const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

    fn run(lines: &[(i64, String)], config: Config) -> Collected {
        crate::correlate::run_stream(lines, config).0
    }

    fn reset_after_freeze(frozen_ms: i64) -> Vec<(i64, String)> {
        let reset = format!(
            "2026-11-28T10:24:23.108Z\t{B}\tERROR\techo call 0 failed: 14 14 UNAVAILABLE: Connection dropped"
        );
        vec![
            (0, format!("START RequestId: {A} Version: $LATEST")),
            (50, format!("END RequestId: {A}")),
            (
                50 + frozen_ms,
                format!("START RequestId: {B} Version: $LATEST"),
            ),
            (60 + frozen_ms, reset),
            (70 + frozen_ms, format!("END RequestId: {B}")),
        ]
    }

    /// botocore at DEBUG through the Python runtime (recorded lines).
    fn urllib3(rid: &str, msg: &str) -> String {
        format!("[DEBUG]\t2026-12-06T01:21:20.119Z\t{rid}\t{msg}")
    }

    fn reused_after(idle_ms: i64, fresh: bool) -> Vec<(i64, String)> {
        let response = r#"http://127.0.0.1:39933 "GET /reports?list-type=2&encoding-type=url HTTP/1.1" 200 238"#;
        let mut lines = vec![
            (0, format!("START RequestId: {A} Version: $LATEST")),
            (
                5,
                urllib3(A, "Starting new HTTP connection (1): 127.0.0.1:39933"),
            ),
            (20, urllib3(A, response)),
            (30, format!("END RequestId: {A}")),
            (
                30 + idle_ms,
                format!("START RequestId: {B} Version: $LATEST"),
            ),
        ];
        if fresh {
            lines.push((
                31 + idle_ms,
                urllib3(B, "Starting new HTTP connection (1): 127.0.0.1:39933"),
            ));
        }
        lines.push((40 + idle_ms, urllib3(B, response)));
        lines
    }

    #[test]
    fn a_connection_idle_most_of_the_nat_timeout_that_survived_is_a_near_miss() {
        let config = Config {
            nat_idle_timeout_ms: 6_000,
            ..Config::default()
        };
        let out = run(&reused_after(5_000, false), config.clone());
        assert_eq!(out.incidents.len(), 1, "{:?}", out.incidents);
        let i = &out.incidents[0];
        assert_eq!(i.kind(), FindingKind::NatIdleNearMiss);
        assert_eq!(i.request_ids, [B]);
        match &i.detail {
            crate::Detail::NatIdleNearMiss {
                idle_ms, margin_ms, ..
            } => assert_eq!((*idle_ms, *margin_ms), (5_020, 980)),
            other => panic!("{other:?}"),
        }
        // Nowhere near the timeout, or on a new connection: nothing.
        assert!(
            run(&reused_after(2_000, false), config.clone())
                .incidents
                .is_empty()
        );
        assert!(run(&reused_after(5_000, true), config).incidents.is_empty());
    }

    #[test]
    fn a_reset_after_a_long_freeze_is_a_nat_idle_reset_and_after_a_short_one_not() {
        let config = Config {
            nat_idle_timeout_ms: 6_000,
            ..Config::default()
        };
        let out = run(&reset_after_freeze(8_000), config.clone());
        assert_eq!(out.incidents.len(), 1);
        let i = &out.incidents[0];
        assert_eq!(i.kind(), FindingKind::NatIdleReset);
        assert_eq!(i.request_ids, [B]);
        assert_eq!(i.evidence, ["e3"]);
        assert!(run(&reset_after_freeze(3_000), config).incidents.is_empty());
        // AWS's 350 s by default.
        assert!(
            run(&reset_after_freeze(8_000), Config::default())
                .incidents
                .is_empty()
        );
    }

    #[test]
    fn a_read_timeout_logged_after_end_keeps_the_functions_silence() {
        // Recorded: the runtime flushed botocore's error line in the same
        // millisecond as END and REPORT, which sort before it.
        let config = Config {
            nat_idle_timeout_ms: 6_000,
            ..Config::default()
        };
        let error = r#"[ERROR] ReadTimeoutError: Read timeout on endpoint URL: "http://127.0.0.1:46669/slow-8000?list-type=2&encoding-type=url""#;
        let lines = vec![
            (0, format!("START RequestId: {A} Version: $LATEST")),
            (
                1,
                format!(
                    "[INFO]\t2026-11-28T12:23:53.887Z\t{A}\tevent {{\"bucket\": \"slow-8000\"}}"
                ),
            ),
            (12_045, format!("END RequestId: {A}")),
            (
                12_045,
                format!("REPORT RequestId: {A}\tDuration: 12045.37 ms"),
            ),
            (12_045, error.to_owned()),
        ];
        let out = run(&lines, config);
        assert_eq!(out.incidents.len(), 1, "{:?}", out.incidents);
        assert_eq!(out.incidents[0].request_ids, [A]);
        assert!(matches!(
            out.incidents[0].detail,
            crate::Detail::NatIdleReset {
                idle_ms: 12_044,
                ..
            }
        ));
    }

    #[test]
    fn a_function_timeout_record_counts_the_silence_up_to_it() {
        // The JSON log format: Lambda's `platform.runtimeDone` with status
        // `timeout` is a platform record, not the function's own line; the
        // silence is from the function's last line to it.
        let config = Config {
            nat_idle_timeout_ms: 6_000,
            ..Config::default()
        };
        let lines = vec![
            (
                0,
                format!(
                    r#"{{"time":"2026-11-28T12:00:00.000Z","type":"platform.start","record":{{"requestId":"{A}","version":"$LATEST"}}}}"#
                ),
            ),
            (
                1,
                format!(
                    r#"{{"timestamp":"2026-11-28T12:00:00.001Z","level":"INFO","message":"event {{\"bucket\": \"slow\"}}","requestId":"{A}"}}"#
                ),
            ),
            (
                9_001,
                format!(
                    r#"{{"time":"2026-11-28T12:00:09.001Z","type":"platform.runtimeDone","record":{{"requestId":"{A}","status":"timeout","metrics":{{"durationMs":9001.0,"producedBytes":0}}}}}}"#
                ),
            ),
        ];
        let out = run(&lines, config);
        assert_eq!(out.incidents.len(), 1, "{:?}", out.incidents);
        assert!(matches!(
            out.incidents[0].detail,
            crate::Detail::NatIdleReset {
                cause: crate::parse::NetCause::FunctionTimeout,
                idle_ms: 9_000,
                ..
            }
        ));
    }

    #[test]
    fn idempotency_keys_in_plain_and_escaped_lines() {
        let key = IdempotencyKey::new("messageId").unwrap();
        let plain = r#"event {"Records": [{"messageId": "ff04f3f5-6ed3", "body": "x"}, {"messageId": "9020d123"}]}"#;
        assert_eq!(
            key.find(plain).collect::<Vec<_>>(),
            ["ff04f3f5-6ed3", "9020d123"]
        );
        // A JSON-format line inside a subscription message: escaped twice.
        let escaped = r#"{\"message\": \"event {\\\"Records\\\": [{\\\"messageId\\\": \\\"ff04f3f5\\\"}]}\"}"#;
        assert_eq!(key.find(escaped).collect::<Vec<_>>(), ["ff04f3f5"]);
        // Not a key: a word in text, or a longer name.
        assert_eq!(key.find("the messageId is unknown").count(), 0);
        assert_eq!(key.find(r#"{"messageIds": ["a"]}"#).count(), 0);
        assert!(IdempotencyKey::new("detail..orderId").is_err());
        assert!(IdempotencyKey::new("").is_err());
    }
}
