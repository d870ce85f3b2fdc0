//! Pairing each ping timeout with the ping it gave up on, and building the
//! findings: kind by the owners of the two lines, the ack that came too
//! late, the failed call after it.
//!
//! A timeout is a library's timeout line, or, where the trace flags leave
//! that line out, what it stands for: a C-core transport that shut down
//! while one of its pings was past its ack deadline with no ack read in
//! time ([`Inference::TransportShutdown`]).

use foldhash::HashMap;

use super::neighbour::Nat;

use super::ledger::{InFlight, Ledger, ping_id_of};
use super::owner::Settled;
use super::{Mark, StreamCorrelator, StreamStats, What};
use crate::finding::{
    FailedCall, Finding, FindingSink, Inference, InvocationWindow, KeepaliveKind, SignalKind,
};
use crate::parse::{Keepalive, KeepaliveEvent};

/// The findings of a stream's keepalive lines so far.
#[derive(Default)]
struct Pairs {
    findings: Vec<Finding>,
    /// Index of the last finding per connection, for late acks.
    last_on: HashMap<String, usize>,
    /// Findings inferred from a transport shutdown, per connection, with
    /// the ping and ack they rest on: a timeout line printed right after
    /// (every tracer on) takes the shutdown's place.
    inferred: HashMap<String, (usize, usize, Option<usize>)>,
    /// Timeout lines whose ping is not in the input.
    unpaired: u64,
    /// Pings and the acks that answered them, where a freeze lay between:
    /// near misses, unless a timeout took the ping after all.
    across_freeze: Vec<(usize, usize)>,
    /// Round trips of pings no freeze held up, ms.
    round_trips: Vec<i64>,
    /// grpc-go's transports: up, and their close bursts.
    go: super::go::GoTransports,
}

impl StreamCorrelator {
    /// Ends the stream: pairs pings with timeouts and pushes the findings.
    pub fn finish(mut self, sink: &mut impl FindingSink) -> StreamStats {
        if self.invocations.is_empty() {
            self.stats.invocations = self.runs.len() as u64;
            // A stream of an init alone (SnapStart's, before its snapshot)
            // has no invocation to guess.
            let init_only = self.init_type.is_some() && self.runs.is_empty();
            self.stats.guessed_windows = u64::from(self.stats.keepalive_lines > 0 && !init_only);
        }
        self.stats.unjudged = u64::from(
            self.stats.keepalive_lines == 0
                && self
                    .marks
                    .iter()
                    .any(|m| matches!(m.what, What::Failure(_))),
        );
        self.stats.managed_instances = u64::from(self.managed());
        self.stats.snapstart =
            u64::from(self.execution_mode() == crate::finding::ExecutionMode::SnapStart);
        let failed = self.invocations_with_network_failures();
        let wants_signals = sink.wants_signals();
        let mut ledger = Ledger::default();
        let mut pairs = Pairs::default();
        let mut nat = Nat::default();
        let mut signals = Vec::new();
        // One pass: every line about a connection goes into the ledger, and
        // each finding is read off the ledger as its line comes.
        for (i, mark) in self.marks.iter().enumerate() {
            match &mark.what {
                What::Keepalive(k) => {
                    let keyed = self.keyed(mark, k);
                    let k = keyed.as_ref().unwrap_or(k);
                    self.keepalive(i, mark, k, &mut ledger, &mut pairs, sink);
                }
                What::Traffic(destination) => {
                    if let Some(idle) = ledger.idle(destination, mark.ts) {
                        self.nat_near_miss(mark, destination, idle, &mut nat);
                    }
                    ledger.activity(destination, mark.ts);
                }
                What::Opened(destination) => ledger.activity(destination, mark.ts),
                What::Retrying => nat.retrying = Some(self.owner(mark).epoch),
                What::Connect(destination, done) => {
                    let started = ledger.connect(
                        destination,
                        *done,
                        self.owner(mark).epoch,
                        mark.pos,
                        mark.ts,
                    );
                    if let Some(start) = started {
                        self.connect_slow(mark, destination, start, &mut nat);
                    }
                }
                What::Net(net, silence) => {
                    if wants_signals && let Some(what) = self.net_signal(mark, net, &ledger) {
                        signals.push((mark, what));
                    }
                    self.nat_failure(mark, net, *silence, &failed, &mut ledger, &mut nat);
                }
                What::Key(key) => {
                    if wants_signals {
                        signals.push((mark, SignalKind::Key { key: key.clone() }));
                    }
                }
                What::Failure(_) => {}
            }
        }
        self.stats.unpaired_timeouts += pairs.unpaired;
        let mut findings = pairs.findings;
        self.attach_failures(&mut findings);
        let stale = self.stale_connections(&mut findings);
        let near_misses = self.near_misses(&pairs.across_freeze, &findings, &ledger);
        if self.stats.keepalive_lines > 0 {
            sink.exposure(self.exposure(&findings, &near_misses, pairs.round_trips, &ledger));
        }
        self.report_invocations(sink);
        for f in findings {
            sink.finding(f);
        }
        for incident in nat.found.into_values().chain(nat.near) {
            sink.incident(incident);
        }
        for incident in stale.into_iter().chain(near_misses) {
            sink.incident(incident);
        }
        if wants_signals {
            self.emit_signals(signals, sink);
        }
        self.stats
    }

    /// A keepalive line: into the ledger; a timeout (or a shutdown standing
    /// in for one) paired with the ping it gave up on.
    fn keepalive(
        &self,
        i: usize,
        mark: &Mark,
        k: &Keepalive,
        ledger: &mut Ledger,
        pairs: &mut Pairs,
        sink: &mut impl FindingSink,
    ) {
        match &k.event {
            KeepaliveEvent::PingAck { ping_id } => {
                if ledger.read(&self.marks, i, k, self.config.late_timer_ms) == Some(false)
                    && ping_id.is_none()
                {
                    self.late_ack(mark, k, pairs);
                }
                for &(ping, ack) in &ledger.acked_now {
                    if self.frozen_between(ping, ack) {
                        pairs.across_freeze.push((ping, ack));
                    } else if pairs.round_trips.len() < 4_096 {
                        pairs
                            .round_trips
                            .push(self.marks[ack].ts - self.marks[ping].ts);
                    }
                }
            }
            KeepaliveEvent::PingTimeout => self.ping_timeout(mark, k, ledger, pairs, sink),
            KeepaliveEvent::TransportShutdown => self.transport_shutdown(mark, k, ledger, pairs),
            KeepaliveEvent::ClientClosed => self.client_closed(mark, k, ledger, pairs),
            KeepaliveEvent::TransportReady => pairs.go.ready(&k.connection),
            KeepaliveEvent::TransportClosed { reason, quiet_ms } => {
                if let Some(f) =
                    self.go_transport_closed(mark, k, *reason, *quiet_ms, &mut pairs.go)
                {
                    pairs
                        .last_on
                        .insert(k.connection.clone(), pairs.findings.len());
                    pairs.findings.push(f);
                }
            }
            _ => {
                ledger.read(&self.marks, i, k, self.config.late_timer_ms);
            }
        }
    }

    /// The ack of a ping that already timed out: it was waiting in the
    /// socket through the freeze, and joins that timeout's evidence.
    fn late_ack(&self, mark: &Mark, k: &Keepalive, pairs: &mut Pairs) {
        if let Some(&f) = pairs.last_on.get(&k.connection) {
            let finding = &mut pairs.findings[f];
            if finding.ack_event_id.is_none()
                && mark.ts - finding.timeout_at_ms <= self.config.late_ack_window_ms
            {
                finding.ack_event_id = Some(self.texts.get(mark.id).to_owned());
                finding.evidence.push(self.texts.get(mark.id).to_owned());
            }
        }
    }

    /// A ping timeout line, paired with the ping in flight it gave up on
    /// (or with the shutdown that stood in for it just before); one whose
    /// ping is not in the input is the caller's to look up.
    fn ping_timeout(
        &self,
        mark: &Mark,
        k: &Keepalive,
        ledger: &mut Ledger,
        pairs: &mut Pairs,
        sink: &mut impl FindingSink,
    ) {
        let in_flight = ledger.take(&k.connection);
        let paired = self.timed_out(mark, &in_flight, ledger);
        if let Some((chosen, _)) = paired
            && self.managed()
        {
            ledger.put_back(&k.connection, in_flight, chosen);
        }
        let findings = &pairs.findings;
        let (f, (ping_idx, ack)) = match (paired, pairs.inferred.remove(&k.connection)) {
            (Some(paired), _) => (findings.len(), paired),
            // The shutdown came first and stood in for this line.
            (None, Some((f, ping_idx, ack)))
                if mark.ts - findings[f].timeout_at_ms <= self.config.late_ack_window_ms =>
            {
                (f, (ping_idx, ack))
            }
            (None, _) => {
                pairs.unpaired += 1;
                sink.unpaired_timeout(self.texts.get(mark.id), mark.ts);
                return;
            }
        };
        pairs.last_on.insert(k.connection.clone(), f);
        let finding = self.timeout_finding(ping_idx, ack, mark, k, ledger, None);
        if f == pairs.findings.len() {
            pairs.findings.push(finding);
        } else {
            pairs.findings[f] = finding;
        }
    }

    /// A C-core transport shutting down with a ping past its printed ack
    /// deadline and no ack read in time: a timeout the trace flags left
    /// unprinted (`inferred_from: transport_shutdown`).
    fn transport_shutdown(
        &self,
        mark: &Mark,
        k: &Keepalive,
        ledger: &mut Ledger,
        pairs: &mut Pairs,
    ) {
        let Some((connection, mut in_flight)) = k
            .transport
            .and_then(|tracker| ledger.take_transport(&self.marks, tracker))
        else {
            return;
        };
        // An ack read after the deadline stopped nothing only when the
        // timer fired with it, at the same thaw; read well before the
        // shutdown, it won the race and the shutdown is another's.
        in_flight
            .acked_late
            .retain(|&(_, a)| mark.ts - self.marks[a].ts <= self.config.ack_race_window_ms);
        // Only a ping whose deadline the library printed, and which had
        // passed: a shutdown for any other reason (idle, GOAWAY, the
        // process ending) is none.
        let Some((ping_idx, ack)) = self
            .timed_out(mark, &in_flight, ledger)
            .filter(|&(p, _)| ledger.deadline(p).is_some())
        else {
            if self.managed() {
                ledger.put_back(&connection, in_flight, usize::MAX);
            }
            return;
        };
        if self.managed() {
            ledger.put_back(&connection, in_flight, ping_idx);
        }
        let k = Keepalive {
            connection: connection.clone(),
            ..k.clone()
        };
        let f = pairs.findings.len();
        pairs
            .inferred
            .insert(connection.clone(), (f, ping_idx, ack));
        pairs.last_on.insert(connection, f);
        pairs.findings.push(self.timeout_finding(
            ping_idx,
            ack,
            mark,
            &k,
            ledger,
            Some(Inference::TransportShutdown),
        ));
    }

    /// A client's close of a connection (grpc-java's `GO_AWAY`) with a
    /// keepalive ping unanswered on it: the timeout grpc-java does not
    /// print (`inferred_from: go_away`). A close with no ping in flight
    /// (a shutdown, an idle channel) is none; only unanswered pings count,
    /// as grpc-java prints no ack deadline to judge a late ack by.
    fn client_closed(&self, mark: &Mark, k: &Keepalive, ledger: &mut Ledger, pairs: &mut Pairs) {
        let in_flight = ledger.take(&k.connection);
        let Some(&ping_idx) = in_flight.pending.first() else {
            return;
        };
        pairs
            .last_on
            .insert(k.connection.clone(), pairs.findings.len());
        let finding =
            self.timeout_finding(ping_idx, None, mark, k, ledger, Some(Inference::GoAway));
        pairs.findings.push(finding);
    }

    /// The finding of a ping that timed out at `timeout` (a timeout line,
    /// or what stood in for it), with the ack that came too late for it.
    pub(super) fn timeout_finding(
        &self,
        ping_idx: usize,
        ack: Option<usize>,
        timeout: &Mark,
        k: &Keepalive,
        ledger: &Ledger,
        inferred_from: Option<Inference>,
    ) -> Finding {
        // A timeout well after its ack timer was due fired at a thaw.
        let late_timeout = ledger
            .deadline(ping_idx)
            .is_some_and(|e| timeout.ts - e > self.config.late_timer_ms);
        let late = (ledger.sent_late(ping_idx), late_timeout);
        let mut finding = self.finding(&self.marks[ping_idx], timeout, k, late);
        if let Some(timer) = self.timer_line(ping_idx) {
            finding.evidence.push(self.texts.get(timer.id).to_owned());
        }
        if let Some(ack) = ack {
            finding.ack_event_id = Some(self.texts.get(self.marks[ack].id).to_owned());
            finding
                .evidence
                .push(self.texts.get(self.marks[ack].id).to_owned());
        }
        finding.inferred_from = inferred_from;
        finding
    }

    /// C-core's `Set ping timeout timer` line of a ping, when the deadline
    /// it gives is what a finding rests on.
    pub(super) fn timer_line(&self, ping_idx: usize) -> Option<&Mark> {
        let id = ping_id_of(&self.marks[ping_idx])?;
        self.marks[ping_idx..].iter().take(64).find(|m| {
            matches!(&m.what, What::Keepalive(Keepalive { event: KeepaliveEvent::PingTimerSet { ping_id, .. }, .. }) if *ping_id == id)
        })
    }

    fn report_invocations(&self, sink: &mut impl FindingSink) {
        if !sink.wants_invocations() {
            return;
        }
        let execution_mode = self.execution_mode();
        let window =
            |request_id: &str, start_ms, end_ms, tenant: &Option<String>| InvocationWindow {
                log_group: self.log_group.clone(),
                log_stream: self.log_stream.clone(),
                request_id: request_id.to_owned(),
                start_ms,
                end_ms,
                execution_mode,
                tenant_id: tenant.clone(),
            };
        if self.invocations.is_empty() {
            for run in &self.runs {
                sink.invocation(window(&run.request_id, None, None, &None));
            }
        }
        for inv in &self.invocations {
            sink.invocation(window(
                &inv.request_id,
                inv.start_ms,
                inv.end_ms,
                &inv.tenant,
            ));
        }
    }

    /// Which ping a timeout gave up on, and the ack that came too late for
    /// it, if any. Where the library printed the ack timeout, only a ping
    /// whose timer had expired can have timed out: the latest such one (at a
    /// thaw, C-core may read a late ack and send a new ping just before the
    /// expired timer fires). Otherwise the oldest unanswered ping, else one
    /// acked a moment before (the ack and the timer raced at the thaw).
    fn timed_out(
        &self,
        timeout: &Mark,
        in_flight: &InFlight,
        ledger: &Ledger,
    ) -> Option<(usize, Option<usize>)> {
        // A line's event time is when the runtime read it, which lags the
        // print by what the pipe held: a ping line read a few tens of ms
        // late puts its deadline after the timeout that ended it (seen
        // under load). A tenth of the ack timeout absorbs that and still
        // tells a ping sent at the thaw, just before the expired timer
        // fired, from the one that expired.
        const SLACK_MS: i64 = 5;
        let (pending, late) = (&in_flight.pending, &in_flight.acked_late);
        let expired = |p: usize| {
            ledger.deadline(p).is_some_and(|e| {
                let slack = SLACK_MS.max((e - self.marks[p].ts) / 10);
                e <= timeout.ts + slack
            })
        };
        let candidates = pending
            .iter()
            .map(|&p| (p, None))
            .chain(late.iter().map(|&(p, a)| (p, Some(a))));
        if let Some(best) = candidates
            .filter(|&(p, _)| expired(p))
            .max_by_key(|&(p, _)| self.marks[p].pos)
        {
            return Some(best);
        }
        if let Some(&p) = pending.iter().find(|&&p| ledger.deadline(p).is_none()) {
            return Some((p, None));
        }
        late.iter()
            .rev()
            .find(|&&(p, ack)| {
                ledger.deadline(p).is_none()
                    && timeout.ts - self.marks[ack].ts <= self.config.ack_race_window_ms
            })
            .map(|&(p, ack)| (p, Some(ack)))
    }

    /// Attaches to each finding the first failed call of its invocation
    /// from just before the timeout (another thread may log the failure
    /// first) to the end of the failure window.
    fn attach_failures(&self, findings: &mut [Finding]) {
        const BEFORE_MS: i64 = 100;
        let failures: Vec<(&Mark, &'static str, Option<String>)> = self
            .marks
            .iter()
            .filter_map(|m| match m.what {
                What::Failure(code) => Some((m, code, self.owner(m).request_id)),
                _ => None,
            })
            .collect();
        if self.managed() {
            return self.attach_managed_failures(findings, &failures);
        }
        let mut used = vec![false; failures.len()];
        for finding in findings {
            let from = finding.timeout_at_ms - BEFORE_MS;
            let to = finding
                .timeout_at_ms
                .saturating_add(self.config.failure_window_ms);
            let hit = failures.iter().enumerate().find(|(i, (m, _, owner))| {
                !used[*i] && (from..=to).contains(&m.ts) && *owner == finding.timeout_request_id
            });
            if let Some((i, (mark, code, owner))) = hit {
                used[i] = true;
                finding.evidence.push(self.texts.get(mark.id).to_owned());
                finding.failed_call = Some(FailedCall {
                    event_id: self.texts.get(mark.id).to_owned(),
                    at_ms: mark.ts,
                    code,
                    line: mark.pos,
                });
                finding.failed_request_ids.extend(owner.clone());
            }
        }
    }

    /// Managed Instances: the invocations whose calls a teardown failed.
    ///
    /// Each failed call after a timeout goes to one teardown: among those
    /// within the failure window before it, the first with no failure yet
    /// (several connections torn down at once fail one call each), else
    /// the latest. A teardown fails as many invocations as it has failed
    /// calls, among those in flight then: the ones the failure lines name,
    /// when they name distinct invocations in flight; otherwise (a grpc-js
    /// call's callback prints the request ID of the invocation that opened
    /// the connection) the rest are the invocations in flight that ended
    /// first after it.
    fn attach_managed_failures(
        &self,
        findings: &mut [Finding],
        failures: &[(&Mark, &'static str, Option<String>)],
    ) {
        const BEFORE_MS: i64 = 100;
        let window = self.config.failure_window_ms;
        let mut assigned: Vec<Vec<usize>> = vec![Vec::new(); findings.len()];
        for (i, (mark, _, _)) in failures.iter().enumerate() {
            let candidates: Vec<usize> = findings
                .iter()
                .enumerate()
                .filter(|(_, f)| {
                    (f.timeout_at_ms - BEFORE_MS..=f.timeout_at_ms.saturating_add(window))
                        .contains(&mark.ts)
                })
                .map(|(k, _)| k)
                .collect();
            let pick = candidates
                .iter()
                .copied()
                .find(|&k| assigned[k].is_empty())
                .or_else(|| candidates.last().copied());
            if let Some(k) = pick {
                assigned[k].push(i);
            }
        }
        let mut taken: Vec<String> = Vec::new();
        for (finding, mine) in findings.iter_mut().zip(assigned) {
            let Some(&first) = mine.first() else { continue };
            let (mark, code, _) = &failures[first];
            finding.failed_call = Some(FailedCall {
                event_id: self.texts.get(mark.id).to_owned(),
                at_ms: mark.ts,
                code,
                line: mark.pos,
            });
            for &i in &mine {
                finding
                    .evidence
                    .push(self.texts.get(failures[i].0.id).to_owned());
            }
            // A report can reach the log before the failure line of the
            // call that ended its invocation (the runtime's pipe and the
            // function's are two): in flight within a moment of the
            // teardown.
            let at = finding.timeout_at_ms;
            let mut in_flight: Vec<(&str, Option<i64>)> =
                self.in_flight_at(at - BEFORE_MS, at).collect();
            let mut failed: Vec<String> = Vec::new();
            for &i in &mine {
                if let Some(owner) = &failures[i].2
                    && in_flight.iter().any(|(r, _)| r == owner)
                    && !failed.contains(owner)
                {
                    failed.push(owner.clone());
                }
            }
            let wanted = mine.len().min(in_flight.len()).max(failed.len());
            // The invocations still running at the teardown first, then
            // those that ended in the moment before it.
            in_flight.sort_by_key(|&(_, end)| {
                let end = end.unwrap_or(i64::MAX);
                (end < at, end)
            });
            for (r, _) in in_flight {
                if failed.len() >= wanted {
                    break;
                }
                if !failed.iter().any(|f| f == r) && !taken.iter().any(|t| t == r) {
                    failed.push(r.to_owned());
                }
            }
            taken.extend(failed.iter().cloned());
            finding.failed_request_ids = failed;
        }
    }

    /// The finding of a ping and its timeout. `late` says whether each
    /// fired well after its timer was due: without platform records, that
    /// places it at a thaw, in the invocation that starts next.
    /// The event that makes a finding final: the later of what settled
    /// each of its lines' owners; `None` while either is open.
    fn settled_by(&self, lines: [(&Settled, &Mark); 2]) -> Option<String> {
        lines
            .into_iter()
            .map(|(settled, mark)| match settled {
                Settled::Line => Some((mark.pos, self.texts.get(mark.id))),
                Settled::Event(pos, id) => Some((*pos, id.as_str())),
                Settled::Open => None,
            })
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max_by_key(|(pos, _)| *pos))
            .map(|(_, id)| id.to_owned())
    }

    pub(super) fn finding(
        &self,
        ping: &Mark,
        timeout: &Mark,
        k: &Keepalive,
        late: (bool, bool),
    ) -> Finding {
        let owner = |mark: &Mark, late: bool| {
            if self.invocations.is_empty() {
                self.run_owner(mark, late)
            } else {
                self.owner(mark)
            }
        };
        let ping_owner = owner(ping, late.0);
        let timeout_owner = owner(timeout, late.1);
        // Managed Instances are never frozen: whatever held the timer back
        // (a busy event loop), it was no freeze.
        let freeze = !self.managed() && ping_owner.epoch != timeout_owner.epoch;
        let settled_by = self.settled_by([
            (&ping_owner.settled, ping),
            (&timeout_owner.settled, timeout),
        ]);
        let ping_timeout_ms = match &ping.what {
            What::Keepalive(Keepalive {
                event: KeepaliveEvent::PingSent { timeout_ms, .. },
                ..
            }) => *timeout_ms,
            _ => None,
        };
        Finding {
            kind: if freeze {
                KeepaliveKind::FreezeTimeout
            } else {
                KeepaliveKind::Timeout
            },
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            library: k.library,
            ping_request_id: ping_owner.request_id,
            timeout_request_id: timeout_owner.request_id,
            ping_line_request_id: self.texts.owned(ping.printed),
            timeout_line_request_id: self.texts.owned(timeout.printed),
            connection: k
                .connection
                .split(super::modes::OPENED_BY)
                .next()
                .unwrap_or_default()
                .to_owned(),
            ping_at_ms: ping.ts,
            timeout_at_ms: timeout.ts,
            ping_timeout_ms,
            // Without platform records, the silence between the two lines.
            frozen_ms: match (freeze, self.invocations.is_empty()) {
                (false, _) => None,
                (true, false) => timeout_owner.frozen_before_ms,
                (true, true) => Some(timeout.ts - ping.ts),
            },
            ping_event_id: self.texts.get(ping.id).to_owned(),
            timeout_event_id: self.texts.get(timeout.id).to_owned(),
            ack_event_id: None,
            failed_call: None,
            failed_request_ids: Vec::new(),
            execution_mode: self.execution_mode(),
            tenant_id: self.tenant_of(timeout_owner.epoch),
            evidence: vec![
                self.texts.get(ping.id).to_owned(),
                self.texts.get(timeout.id).to_owned(),
            ],
            inferred_from: None,
            ping_line: ping.pos,
            timeout_line: timeout.pos,
            settled_by,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, FindingKind};

    /// Recorded (grpcio 1.x, `GRPC_TRACE=all`, a fresh settings matrix
    /// under load): the runtime read the ping's lines 14 ms after C-core
    /// printed them, and the timeout's at once, so by event time the ack
    /// deadline (ping + 1000 ms) came 12 ms after the timeout it caused.
    #[test]
    fn a_ping_line_read_late_still_pairs_with_its_timeout() {
        let rid = "9d202814-c7fc-428f-8945-896c0ca65d00";
        let start = format!("START RequestId: {rid} Version: $LATEST");
        let lines: [(i64, &str); 5] = [
            (1_796_531_442_109, start.as_str()),
            (
                1_796_531_442_124,
                "I1206 04:30:42.110759    4337 writing.cc:144] CLIENT[0x7fd29800b610]: Ping 6389214578840072507 sent [ipv4:127.0.0.1:42167]: max_pings_without_data: 0, pings_before_data_required: 0, last_ping_sent_time_: @1796531442110ms",
            ),
            (
                1_796_531_442_124,
                "I1206 04:30:42.110861    4337 writing.cc:792] CLIENT[0x7fd29800b610]: Set ping timeout timer of 1000ms for ping id 6389214578840072507",
            ),
            (
                1_796_531_443_112,
                "I1206 04:30:43.111999    4338 chttp2_transport.cc:2072] ipv4:127.0.0.1:42167: Ping timeout. Closing transport.",
            ),
            (
                1_796_531_443_118,
                "[ERROR]\t2026-12-06T04:30:43.118Z\t9d202814-c7fc-428f-8945-896c0ca65d00\techo call 0 failed: StatusCode.UNAVAILABLE Stream removed (ping timeout)",
            ),
        ];
        let (out, stats) = crate::correlate::run_stream(&lines, Config::default());
        assert_eq!(stats.unpaired_timeouts, 0);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].kind, FindingKind::KeepaliveTimeout);
        assert_eq!(out.findings[0].ping_event_id, "e1");
        assert_eq!(out.findings[0].timeout_event_id, "e3");
    }
}
