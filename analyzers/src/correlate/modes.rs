//! Lambda's execution modes, as a stream shows them, and what each changes:
//!
//! - **Managed Instances** (`platform.initStart` with `initializationType`
//!   `lambda-managed-instances`, or invocations that overlap: a JSON
//!   `platform.report` of a started invocation without its
//!   `platform.runtimeDone`, which only that mode leaves out). Several
//!   invocations run at once and the environment is never frozen, so a
//!   line belongs to the invocation whose request ID it prints (its async
//!   context), no window holds it alone, and no timeout is a freeze
//!   timeout: the findings of such a stream name the invocations in
//!   flight whose calls failed. grpc-js numbers its connections per worker
//!   thread, so a connection there is its label and the invocation that
//!   opened it (whose ID its timer lines carry for its whole life).
//! - **SnapStart** (`RESTORE_START`, `platform.restoreStart`, or the
//!   instrument's `restore` event): the environment was restored from a
//!   snapshot taken after its init. A connection open before the restore
//!   is one the network has forgotten; when its first use after the
//!   restore fails, that is a `snapstart_stale_connection`.

use foldhash::HashMap;

use super::owner::{Epoch, Owner, Settled};
use super::{LogEvent, Mark, Restore, StreamCorrelator, What};
use crate::finding::{Detail, ExecutionMode, Finding, Incident};
use crate::parse::{InitType, Keepalive, KeepaliveEvent, Library, Lifecycle, NetCause};

/// Joins a grpc-js connection label to the request ID of the invocation
/// that opened it, in the ledger's keys on Managed Instances; never in
/// what a finding shows.
pub(super) const OPENED_BY: char = '\u{1f}';

impl StreamCorrelator {
    /// How Lambda ran this stream's environment, from what was read so far.
    pub fn execution_mode(&self) -> ExecutionMode {
        if self.managed() {
            ExecutionMode::ManagedInstances
        } else if self.init_type == Some(InitType::SnapStart) || !self.restores.is_empty() {
            ExecutionMode::SnapStart
        } else {
            ExecutionMode::Classic
        }
    }

    /// Whether the stream is of Lambda Managed Instances.
    pub(super) fn managed(&self) -> bool {
        self.init_type == Some(InitType::ManagedInstances) || self.overlapping
    }

    /// An init or restore record.
    pub(super) fn lifecycle(&mut self, life: Lifecycle, pos: u32, ts: i64, event: &LogEvent<'_>) {
        match life {
            Lifecycle::InitStart(t) => {
                // The first init says what the environment is; a later
                // text INIT_START (after a crash) says nothing new.
                if self.init_type.is_none() || t != InitType::OnDemand {
                    self.init_type = Some(t);
                }
            }
            Lifecycle::Restore => {
                // RESTORE_START and the instrument's `restore` event of the
                // same restore: one restore.
                let started = self.invocations.len();
                let carried = crate::parse::instrument::restored_connections(event.text.raw());
                if let Some(last) = self
                    .restores
                    .last_mut()
                    .filter(|r| r.after_invocations == started)
                {
                    if last.carried.is_empty() {
                        last.carried = carried;
                    }
                    return;
                }
                let id = self.texts.add(&event.id);
                self.restores.push(Restore {
                    pos,
                    ts,
                    id,
                    after_invocations: started,
                    carried,
                });
                // The first calls after a restore are the ones to watch.
                self.watch_failures_until = ts.saturating_add(self.config.failure_window_ms);
            }
            Lifecycle::RestoreReport => {}
        }
    }

    /// A JSON `platform.report`: an invocation that started and had no
    /// `platform.runtimeDone` ran alongside others (Managed Instances); its
    /// report ends its window.
    pub(super) fn json_report(&mut self, request_id: &str, ts: i64) {
        let Some(inv) = self
            .invocations
            .iter_mut()
            .rev()
            .take(64)
            .find(|i| i.request_id == request_id)
        else {
            return;
        };
        if inv.end_ms.is_none() {
            inv.end_ms = Some(ts);
            self.overlapping = true;
        }
    }

    /// The index of the invocation with this request ID.
    fn index_of(&self, request_id: &str) -> Option<u32> {
        self.by_id
            .get_or_init(|| {
                let mut by_id = HashMap::default();
                for (i, inv) in self.invocations.iter().enumerate() {
                    by_id.entry(inv.request_id.clone()).or_insert(i as u32);
                }
                by_id
            })
            .get(request_id)
            .copied()
    }

    /// Managed Instances: a line belongs to the invocation whose request ID
    /// it prints (its async context); one that prints none (`-`) to no
    /// invocation in particular, but to the set in flight.
    pub(super) fn managed_owner(&self, mark: &Mark) -> Owner {
        let printed = mark.printed.map(|t| self.texts.get(t));
        let epoch = printed
            .and_then(|id| self.index_of(id))
            .map_or(Epoch::INIT, |i| Epoch::invocation(i as usize));
        Owner {
            epoch,
            request_id: printed.map(str::to_owned),
            frozen_before_ms: None,
            settled: Settled::Line,
        }
    }

    /// The tenant of the invocation an owner names.
    pub(super) fn tenant_of(&self, epoch: Epoch) -> Option<String> {
        if self.invocations.is_empty() {
            return None;
        }
        let idx = epoch.invocation_index()? as usize;
        self.invocations.get(idx)?.tenant.clone()
    }

    /// Managed Instances: a grpc-js keepalive line keyed by its label and
    /// the invocation that opened the connection (its timers' async
    /// context): worker threads number their connections alike.
    pub(super) fn keyed(&self, mark: &Mark, k: &Keepalive) -> Option<Keepalive> {
        if k.library != Library::GrpcJs || !self.managed() {
            return None;
        }
        let opener = self.texts.get(mark.printed?);
        Some(Keepalive {
            connection: format!("{}{OPENED_BY}{opener}", k.connection),
            ..k.clone()
        })
    }

    /// Managed Instances: the invocations in flight at some moment of
    /// `from..=to` (started by `to`, not reported before `from`), with when
    /// they reported.
    pub(super) fn in_flight_at(
        &self,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = (&str, Option<i64>)> {
        self.invocations
            .iter()
            .filter(move |i| {
                i.start_ms.is_some_and(|s| s <= to) && i.end_ms.is_none_or(|e| e >= from)
            })
            .map(|i| (i.request_id.as_str(), i.end_ms))
    }

    /// `snapstart_stale_connection`s, and the keepalive findings they
    /// explain taken out of `findings`.
    ///
    /// A restored environment's stream starts at its restore: the init
    /// that opened its connections ran elsewhere, before the snapshot. So
    /// a restore opens a *stale window*, until the first sign after it that
    /// a connection works (an ack read, a connect through, traffic). The
    /// first failed call in that window is the first use of a connection
    /// the network forgot: the finding, named by the invocation whose call
    /// failed. A keepalive timeout of a ping sent in the window is the same
    /// dead connection, not a freeze (its ack was never coming): it joins
    /// the finding's evidence instead of being reported.
    pub(super) fn stale_connections(&self, findings: &mut Vec<Finding>) -> Vec<Incident> {
        let mut found = Vec::new();
        for (r, restore) in self.restores.iter().enumerate() {
            let next = self.restores.get(r + 1).map_or(u32::MAX, |n| n.pos);
            let until = self
                .marks
                .iter()
                .filter(|m| m.pos > restore.pos && m.pos < next)
                .find(|m| self.shows_life(m))
                .map_or(next, |m| m.pos);
            let in_window = |pos: u32| pos > restore.pos && pos < until;
            let explained: Vec<Finding>;
            (explained, *findings) = std::mem::take(findings)
                .into_iter()
                .partition(|f| in_window(f.ping_line) && f.timeout_line < until);
            let Some(mut incident) = self.first_failed_call(restore, until) else {
                continue;
            };
            // The failed call stays last: the line a caller reading batches
            // reports the finding with.
            let failed_call = incident.evidence.pop();
            incident
                .evidence
                .extend(explained.into_iter().map(|f| f.timeout_event_id));
            incident.evidence.extend(failed_call);
            found.push(incident);
        }
        found
    }

    /// Whether a line shows a connection working: an ack read, a connect
    /// through, traffic.
    fn shows_life(&self, m: &Mark) -> bool {
        match &m.what {
            What::Keepalive(k) => matches!(k.event, KeepaliveEvent::PingAck { .. }),
            What::Connect(_, done) => *done,
            What::Traffic(_) | What::Opened(_) => true,
            _ => false,
        }
    }

    /// The first failed call of an invocation in a restore's stale window
    /// (a connect that failed is a new connection's, not the restored
    /// one's), as the finding.
    fn first_failed_call(&self, restore: &Restore, until: u32) -> Option<Incident> {
        let window = || {
            self.marks
                .iter()
                .filter(move |m| m.pos > restore.pos && m.pos < until)
        };
        let (m, failure, request_id) = window().find_map(|m| {
            let failure = match &m.what {
                What::Failure(code) => *code,
                What::Net(net, _)
                    if !matches!(
                        net.cause,
                        NetCause::FunctionTimeout
                            | NetCause::ConnectTimeout
                            | NetCause::ConnectRefused
                    ) =>
                {
                    net.cause.as_str()
                }
                _ => return None,
            };
            Some((m, failure, self.owner(m).request_id?))
        })?;
        // One line, two marks: its network cause, then its gRPC status,
        // which names the failure users know.
        let failure = window()
            .find_map(|n| match n.what {
                What::Failure(code) if n.pos == m.pos => Some(code),
                _ => None,
            })
            .unwrap_or(failure);
        // The connection, where the window's lines name one: a keepalive
        // line's, or the failure's destination.
        let keepalive = window()
            .filter(|k| k.pos <= m.pos)
            .filter(|k| matches!(&k.what, What::Keepalive(k) if !k.connection.is_empty()));
        let connection = keepalive
            .clone()
            .find_map(|k| match &k.what {
                What::Keepalive(k) => Some(k.connection.clone()),
                _ => None,
            })
            .or_else(|| (!restore.carried.is_empty()).then(|| restore.carried.join(", ")))
            .or_else(|| {
                window().find_map(|n| match &n.what {
                    What::Net(net, _) if n.pos == m.pos => net.destination.clone(),
                    _ => None,
                })
            });
        let mut evidence = vec![self.texts.get(restore.id).to_owned()];
        evidence.extend(keepalive.take(4).map(|k| self.texts.get(k.id).to_owned()));
        evidence.push(self.texts.get(m.id).to_owned());
        let epoch = self.owner(m).epoch;
        Some(Incident {
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            log_streams: vec![self.log_stream.clone()],
            request_ids: vec![request_id.clone()],
            first_at_ms: restore.ts,
            last_at_ms: m.ts,
            detail: Detail::SnapStartStaleConnection {
                request_id,
                connection,
                restore_at_ms: restore.ts,
                failure,
            },
            evidence,
            tenant_id: self.tenant_of(epoch),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::correlate::run_stream;
    use crate::{Config, Detail, ExecutionMode, FindingKind};

    const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
    const C: &str = "cccccccc-0000-4000-8000-000000000003";

    fn platform(kind: &str, record: &str) -> String {
        format!(
            r#"{{"time":"2026-12-06T10:00:00.000Z","type":"platform.{kind}","record":{{{record}}}}}"#
        )
    }

    fn start(rid: &str) -> String {
        platform(
            "start",
            &format!(r#""requestId":"{rid}","version":"$LATEST""#),
        )
    }

    fn report(rid: &str) -> String {
        platform(
            "report",
            &format!(r#""requestId":"{rid}","metrics":{{"durationMs":12.0}},"status":"success""#),
        )
    }

    /// A line as the Node.js runtime client prints it in the JSON log
    /// format: the request ID of the line's async context.
    fn app(rid: &str, level: &str, message: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-12-06T10:00:00.000Z","level":"{level}","requestId":"{rid}","message":"{message}"}}"#
        )
    }

    fn grpcjs(rid: &str, what: &str) -> String {
        app(
            rid,
            "ERROR",
            &format!(
                "D 2026-12-06T10:00:00.000Z | v1.14.7 8 | keepalive | (1) 127.0.0.1:443 {what}"
            ),
        )
    }

    /// Two invocations at once; A opened the connection, its ping goes out,
    /// A reports, then B's CPU-bound step holds the event loop 2.5 s: the
    /// ack timer fires late (as after a freeze), and B's call fails.
    fn managed_stream(init: bool) -> Vec<(i64, String)> {
        let mut lines = Vec::new();
        if init {
            lines.push((
                0,
                platform(
                    "initStart",
                    r#""initializationType":"lambda-managed-instances","phase":"init","runtimeVersion":"nodejs:22.v1","functionName":"orders","functionVersion":"$LATEST","instanceId":"i-1","instanceMaxMemory":2147483648"#,
                ),
            ));
        }
        lines.extend([
            (10, start(A)),
            (12, start(B)),
            (20, app(A, "INFO", "echo call 0 ok")),
            (4_000, grpcjs(A, "Sending ping with timeout 1000ms")),
            (4_010, report(A)),
            (6_600, grpcjs(A, "Ping timeout passed without response")),
            (
                6_605,
                app(
                    B,
                    "ERROR",
                    "echo call 0 failed: 14 UNAVAILABLE: Connection dropped",
                ),
            ),
            (6_700, report(B)),
        ]);
        lines
    }

    #[test]
    fn managed_instances_are_never_frozen() {
        for init in [true, false] {
            let (out, stats) = run_stream(&managed_stream(init), Config::default());
            assert_eq!(stats.managed_instances, 1, "init record: {init}");
            assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
            let f = &out.findings[0];
            assert_eq!(f.kind, FindingKind::KeepaliveTimeout);
            assert_eq!(f.execution_mode, ExecutionMode::ManagedInstances);
            assert_eq!(f.frozen_ms, None);
            // A had reported when the timer fired: only B was in flight.
            assert_eq!(f.failed_request_ids, [B]);
            assert_eq!(f.connection, "(1) 127.0.0.1:443");
            assert!(out.invocations.iter().all(|w| w.end_ms.is_some()));
        }
    }

    #[test]
    fn the_same_lines_one_at_a_time_in_classic_mode_are_a_freeze() {
        // The contrast: with a runtimeDone ending A and B starting after,
        // the same ping and timeout straddle a freeze.
        let lines = vec![
            (10, start(A)),
            (4_000, grpcjs(A, "Sending ping with timeout 1000ms")),
            (
                4_005,
                platform(
                    "runtimeDone",
                    &format!(r#""requestId":"{A}","status":"success""#),
                ),
            ),
            (4_010, report(A)),
            (9_000, start(B)),
            (9_001, grpcjs(A, "Ping timeout passed without response")),
        ];
        let (out, stats) = run_stream(&lines, Config::default());
        assert_eq!(stats.managed_instances, 0);
        assert_eq!(out.findings[0].kind, FindingKind::KeepaliveFreezeTimeout);
        assert_eq!(out.findings[0].execution_mode, ExecutionMode::Classic);
    }

    #[test]
    fn failed_calls_that_print_the_openers_id_go_to_the_invocations_in_flight() {
        // Recorded (grpc-js 1.14, Node 20 AsyncLocalStorage): a call's
        // callback runs in the async context of the invocation that opened
        // the connection, so every failure line prints A, long reported.
        let lines = vec![
            (10, start(A)),
            (500, report(A)),
            (1_000, start(B)),
            (1_001, start(C)),
            (4_000, grpcjs(A, "Sending ping with timeout 1000ms")),
            (5_001, grpcjs(A, "Ping timeout passed without response")),
            (
                5_003,
                app(
                    A,
                    "ERROR",
                    "echo call 0 failed: 14 UNAVAILABLE: Connection dropped",
                ),
            ),
            (
                5_004,
                app(
                    A,
                    "ERROR",
                    "echo call 0 failed: 14 UNAVAILABLE: Connection dropped",
                ),
            ),
            (5_020, report(C)),
            (5_021, report(B)),
        ];
        let (out, _) = run_stream(&lines, Config::default());
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].failed_request_ids, [C, B]);
        assert_eq!(out.findings[0].ping_request_id.as_deref(), Some(A));
    }

    #[test]
    fn worker_threads_number_their_connections_alike() {
        // Two workers, each with its "(1) 127.0.0.1:443": A's connection
        // pings and is answered; C's ping goes unanswered and times out.
        // Keyed by label alone, A's ack would clear C's ping.
        let lines = vec![
            (10, start(A)),
            (11, start(C)),
            (1_000, grpcjs(C, "Sending ping with timeout 1000ms")),
            (1_001, grpcjs(A, "Sending ping with timeout 1000ms")),
            (1_050, grpcjs(A, "Received ping response")),
            (2_001, grpcjs(C, "Ping timeout passed without response")),
            (
                2_002,
                app(
                    C,
                    "ERROR",
                    "echo call 0 failed: 14 UNAVAILABLE: Connection dropped",
                ),
            ),
            (2_100, report(A)),
            (2_200, report(C)),
        ];
        let (out, stats) = run_stream(&lines, Config::default());
        assert_eq!(stats.unpaired_timeouts, 0);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].ping_event_id, "e2");
        assert_eq!(out.findings[0].failed_request_ids, [C]);
    }

    #[test]
    fn tenants_ride_on_findings_and_windows() {
        let mut lines = managed_stream(true);
        lines[2].1 = platform(
            "start",
            &format!(r#""requestId":"{B}","version":"$LATEST","tenantId":"acme-co""#),
        );
        let (out, _) = run_stream(&lines, Config::default());
        let b = out.invocations.iter().find(|w| w.request_id == B).unwrap();
        assert_eq!(b.tenant_id.as_deref(), Some("acme-co"));
        assert_eq!(b.execution_mode, ExecutionMode::ManagedInstances);
        // The timeout line names A (the connection's opener), no tenant.
        assert_eq!(out.findings[0].tenant_id, None);
    }

    const PEER: &str = "ipv4:127.0.0.1:42167";

    fn ccore(ts: &str, what: &str) -> String {
        format!("I1206 {ts}    4337 writing.cc:144] CLIENT[0x7fd29800b610]: {what}")
    }

    fn failed(rid: &str, how: &str) -> String {
        format!("[ERROR]\t2026-12-06T10:00:00.000Z\t{rid}\techo call 0 failed: {how}")
    }

    /// A restored Python function's stream, as Lambda writes it: it starts
    /// at the restore (the init that opened the connection ran before the
    /// snapshot, elsewhere).
    fn restored(after: &[(i64, String)]) -> Vec<(i64, String)> {
        let mut lines = vec![
            (0, "RESTORE_START Runtime Version: python:3.12.v36\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:abc".to_owned()),
            (49, "RESTORE_REPORT Restore Duration: 48.95 ms".to_owned()),
            (50, format!("START RequestId: {A} Version: 1")),
        ];
        lines.extend(after.iter().cloned());
        lines
    }

    #[test]
    fn the_first_call_on_a_restored_connection_fails() {
        let (out, stats) = run_stream(
            &restored(&[
                (
                    52,
                    failed(
                        A,
                        "UNAVAILABLE Stream removed (recvmsg:Connection reset by peer (104))",
                    ),
                ),
                (54, format!("END RequestId: {A}")),
            ]),
            Config::default(),
        );
        assert_eq!(stats.snapstart, 1);
        assert_eq!(out.incidents.len(), 1, "{:?}", out.incidents);
        let i = &out.incidents[0];
        assert_eq!(i.kind(), FindingKind::SnapStartStaleConnection);
        assert_eq!(i.request_ids, [A]);
        assert_eq!(i.evidence, ["e0", "e3"]);
        match &i.detail {
            Detail::SnapStartStaleConnection {
                failure,
                restore_at_ms,
                ..
            } => {
                assert_eq!(*failure, "UNAVAILABLE");
                assert_eq!(*restore_at_ms, 0);
            }
            other => panic!("{other:?}"),
        }
        let json = serde_json::to_value(i).unwrap();
        assert_eq!(json["kind"], "snapstart_stale_connection");
        assert_eq!(json["request_id"], A);
    }

    #[test]
    fn a_ping_lost_on_the_restored_connection_is_no_freeze_timeout() {
        // A blackholed flow: the call waits out its deadline in A, then a
        // ping sent in B is never answered and its timer fires at the thaw
        // in C. The restored connection was dead all along: one
        // stale-connection finding, not a freeze timeout.
        let (out, _) = run_stream(
            &restored(&[
                (2_050, failed(A, "DEADLINE_EXCEEDED Deadline Exceeded")),
                (2_052, format!("END RequestId: {A}")),
                (2_300, format!("START RequestId: {B} Version: 1")),
                (
                    3_300,
                    ccore("10:00:03.300000", &format!("Ping 12 sent [{PEER}]: x")),
                ),
                (
                    3_300,
                    ccore(
                        "10:00:03.300000",
                        "Set ping timeout timer of 1000ms for ping id 12",
                    ),
                ),
                (4_300, failed(B, "DEADLINE_EXCEEDED Deadline Exceeded")),
                (4_301, format!("END RequestId: {B}")),
                (4_600, format!("START RequestId: {C} Version: 1")),
                (
                    4_601,
                    "I1206 10:00:04.601000    4337 connectivity_state.cc:150] ConnectivityStateTracker client_transport[0x7fd29800b898]: READY -> SHUTDOWN (close_transport, OK)".to_owned(),
                ),
            ]),
            Config::default(),
        );
        assert!(out.findings.is_empty(), "{:?}", out.findings);
        assert_eq!(out.incidents.len(), 1);
        assert_eq!(out.incidents[0].request_ids, [A]);
        assert!(out.incidents[0].evidence.contains(&"e11".to_owned()));
    }

    #[test]
    fn a_connection_that_works_after_the_restore_ends_the_watch() {
        // Connected lazily (or re-created in an after-restore hook): an
        // ack is read first, and a later failure is not the snapshot's.
        let (out, _) = run_stream(
            &restored(&[
                (
                    320,
                    ccore("10:00:00.320000", &format!("Ping 12 sent [{PEER}]: x")),
                ),
                (330, ccore("10:00:00.330000", "received ping ack 12")),
                (900, failed(A, "DEADLINE_EXCEEDED Deadline Exceeded")),
            ]),
            Config::default(),
        );
        assert!(out.incidents.is_empty(), "{:?}", out.incidents);
    }

    #[test]
    fn no_restore_no_stale_connection() {
        let mut lines = restored(&[(52, failed(A, "UNAVAILABLE Socket closed"))]);
        lines.drain(..2);
        let (out, stats) = run_stream(&lines, Config::default());
        assert_eq!(stats.snapstart, 0);
        assert!(out.incidents.is_empty());
    }
}
