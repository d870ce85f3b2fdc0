//! Near misses: failures that nearly happened, read off the same ledger.
//!
//! A `keepalive_near_miss` is a ping in flight when the environment froze
//! whose ack was read at the thaw: its line and its ack's belong to two
//! invocations (a freeze lay between), and no timeout took it. Its margin
//! is the ack timeout the library printed minus how long the ping waited;
//! negative when the timer had expired in the freeze but the ack was read
//! first (C-core at a thaw).
//!
//! A near miss is final once the ack's owner is: an ack read at a thaw
//! whose START is not in the input yet is reported with that START (its
//! last evidence), so batches of a stream report it once.

use super::ledger::Ledger;
use super::owner::Settled;
use super::{StreamCorrelator, What};
use crate::finding::{Detail, Finding, Incident};
use crate::parse::KeepaliveEvent;
use crate::risk::Exposure;

impl StreamCorrelator {
    /// What the stream showed of its exposure to freeze timeouts: its
    /// freezes, its ping schedule, the pings caught in flight.
    pub(super) fn exposure(
        &self,
        findings: &[Finding],
        near_misses: &[Incident],
        round_trips: Vec<i64>,
        ledger: &Ledger,
    ) -> Exposure {
        let freezes: Vec<i64> = if self.managed() {
            Vec::new()
        } else {
            self.invocations
                .iter()
                .enumerate()
                .filter_map(|(i, _)| self.invocation_owner(i as u32).frozen_before_ms)
                .filter(|&f| f >= 0)
                .collect()
        };
        let median = |mut v: Vec<i64>| {
            v.sort_unstable();
            v.get(v.len() / 2).copied()
        };
        // The ack timeouts and keepalive interval the library printed.
        let mut timeouts = Vec::new();
        let mut intervals = Vec::new();
        for (i, m) in self.marks.iter().enumerate() {
            let What::Keepalive(k) = &m.what else {
                continue;
            };
            match k.event {
                KeepaliveEvent::KeepaliveTimerStarted { interval_ms } => {
                    intervals.push(i64::from(interval_ms));
                }
                KeepaliveEvent::PingSent { .. } => {
                    if let Some(d) = ledger.deadline(i) {
                        timeouts.push(d - m.ts);
                    }
                }
                _ => {}
            }
        }
        let interval_ms = median(intervals);
        let margins = near_misses.iter().filter_map(|i| match i.detail {
            Detail::KeepaliveNearMiss { margin_ms, .. } => margin_ms,
            _ => None,
        });
        let freeze_timeouts = findings
            .iter()
            .filter(|f| f.kind == crate::KeepaliveKind::FreezeTimeout)
            .count() as u64;
        Exposure {
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            span_ms: self.span_ms(),
            freezes,
            interval_ms,
            ack_timeout_ms: median(timeouts),
            round_trips,
            pings_in_flight_at_freeze: near_misses.len() as u64 + freeze_timeouts,
            freeze_timeouts,
            min_margin_ms: margins.min(),
        }
    }

    /// Whether a freeze lay between two marks: their lines belong to
    /// different invocations of a stream that is frozen between them.
    pub(super) fn frozen_between(&self, a: usize, b: usize) -> bool {
        if self.managed() {
            return false;
        }
        let (a, b) = (&self.marks[a], &self.marks[b]);
        self.owner(a).epoch != self.owner(b).epoch
    }

    /// The near misses among the pings acked across a freeze: those no
    /// timeout took (a timeout that followed a late ack is a finding).
    pub(super) fn near_misses(
        &self,
        across: &[(usize, usize)],
        findings: &[Finding],
        ledger: &Ledger,
    ) -> Vec<Incident> {
        across
            .iter()
            .filter(|&&(ping, _)| {
                let pos = self.marks[ping].pos;
                !findings.iter().any(|f| f.ping_line == pos)
            })
            .filter_map(|&(ping, ack)| self.near_miss(ping, ack, ledger))
            .collect()
    }

    fn near_miss(&self, ping: usize, ack: usize, ledger: &Ledger) -> Option<Incident> {
        let (p, a) = (&self.marks[ping], &self.marks[ack]);
        let What::Keepalive(k) = &p.what else {
            return None;
        };
        let (ping_owner, ack_owner) = (self.owner(p), self.owner(a));
        // Final once the ack's owner is: an ack read at a thaw whose START
        // is not in the input yet waits for it (a caller reading batches
        // reports a near miss with the batch holding its last evidence).
        let settling = match &ack_owner.settled {
            Settled::Open => return None,
            Settled::Event(pos, id) if *pos > a.pos => Some(id.clone()),
            _ => None,
        };
        let deadline = ledger.deadline(ping);
        let mut evidence = vec![self.texts.get(p.id).to_owned()];
        if let Some(timer) = self.timer_line(ping) {
            evidence.push(self.texts.get(timer.id).to_owned());
        }
        evidence.push(self.texts.get(a.id).to_owned());
        // The START that placed the ack at the thaw, last: what settles it.
        evidence.extend(settling);
        let request_ids: Vec<String> = [&ping_owner.request_id, &ack_owner.request_id]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Some(Incident {
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            log_streams: vec![self.log_stream.clone()],
            request_ids,
            first_at_ms: p.ts,
            last_at_ms: a.ts,
            detail: Detail::KeepaliveNearMiss {
                library: k.library,
                connection: k
                    .connection
                    .split(super::modes::OPENED_BY)
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                ping_request_id: ping_owner.request_id,
                ack_request_id: ack_owner.request_id,
                ping_at_ms: p.ts,
                waited_ms: a.ts - p.ts,
                ack_timeout_ms: deadline.map(|d| d - p.ts),
                margin_ms: deadline.map(|d| d - a.ts),
                frozen_ms: ack_owner.frozen_before_ms,
            },
            evidence,
            tenant_id: self.tenant_of(ack_owner.epoch),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::correlate::run_stream;
    use crate::{Config, Detail, FindingKind};

    const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

    fn grpcjs(rid: &str, what: &str) -> String {
        format!(
            "2026-12-06T10:00:00.000Z\t{rid}\tERROR\tD 2026-12-06T10:00:00.000Z | v1.14.7 8 | keepalive | (1) 127.0.0.1:443 {what}"
        )
    }

    fn stream(freeze_ms: i64) -> Vec<(i64, String)> {
        let thaw = 4_010 + freeze_ms;
        vec![
            (0, format!("START RequestId: {A} Version: $LATEST")),
            (4_000, grpcjs(A, "Sending ping with timeout 1000ms")),
            (4_005, format!("END RequestId: {A}")),
            (
                4_006,
                format!("REPORT RequestId: {A}\tDuration: 4005.00 ms"),
            ),
            (thaw, format!("START RequestId: {B} Version: $LATEST")),
            (thaw + 2, grpcjs(A, "Received ping response")),
        ]
    }

    #[test]
    fn a_ping_that_outlived_a_short_freeze_is_a_near_miss() {
        let (out, _) = run_stream(&stream(600), Config::default());
        assert!(out.findings.is_empty());
        assert_eq!(out.incidents.len(), 1);
        let i = &out.incidents[0];
        assert_eq!(i.kind(), FindingKind::KeepaliveNearMiss);
        assert_eq!(i.request_ids, [A, B]);
        match &i.detail {
            Detail::KeepaliveNearMiss {
                waited_ms,
                margin_ms,
                ack_timeout_ms,
                frozen_ms,
                ..
            } => {
                assert_eq!(*waited_ms, 612);
                assert_eq!(*ack_timeout_ms, Some(1_000));
                assert_eq!(*margin_ms, Some(388));
                assert_eq!(*frozen_ms, Some(605));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_ping_answered_before_the_freeze_is_nothing() {
        let mut lines = stream(600);
        // The ack came 40 ms after the ping, before END.
        let ack = lines.pop().unwrap();
        lines.insert(2, (4_040, ack.1));
        lines.sort_by_key(|l| l.0);
        let (out, _) = run_stream(&lines, Config::default());
        assert!(out.incidents.is_empty(), "{:?}", out.incidents);
        let e = &out.exposures[0];
        assert_eq!(e.round_trips, [40]);
        assert_eq!(
            (e.ack_timeout_ms, e.pings_in_flight_at_freeze),
            (Some(1_000), 0)
        );
    }

    #[test]
    fn a_ping_that_timed_out_is_a_finding_not_a_near_miss() {
        let mut lines = stream(3_000);
        lines.insert(
            5,
            (7_011, grpcjs(A, "Ping timeout passed without response")),
        );
        let (out, _) = run_stream(&lines, Config::default());
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].kind, FindingKind::KeepaliveFreezeTimeout);
        assert!(out.incidents.is_empty(), "{:?}", out.incidents);
    }
}
