//! grpc-go's keepalive timeouts, which grpc-go never names as such before
//! 1.38 and whose ping it never prints: a transport the client closed
//! itself, after the function had been quiet (waiting on it) inside one
//! invocation, stands in for both the ping and the timeout line
//! ([`Inference::TransportClose`]).
//!
//! grpc-go sends its keepalive ping only after `Time` without a read and
//! closes the transport `Timeout` later without an ack; a call in flight
//! then fails with `transport is closing` (1.33) or `keepalive ping failed
//! to receive ACK within timeout` (1.38+). So:
//!
//! - a close whose burst follows at least [`MIN_QUIET_MS`] of the
//!   function's silence, all of it inside the close's invocation, is a
//!   genuine `keepalive_timeout` of that invocation, unless the lines give
//!   another reason (1.38+: `error reading from server: …`);
//! - a close at a thaw (the silence before it spans the freeze) is a
//!   `keepalive_freeze_timeout` whose ping went out in the invocation
//!   before the freeze, only when grpc-go says it was the keepalive (1.38+):
//!   1.33's bare `transport is closing` at a thaw may as well be the
//!   server's close during the freeze, and is left alone;
//! - one close prints a burst of lines (the subchannel's state, the
//!   transport's, each call's failure): the first that decides makes the
//!   burst's one finding.

use foldhash::HashMap;

use super::{BURST_MS, Mark, StreamCorrelator};
use crate::finding::{Finding, Inference, KeepaliveKind};
use crate::parse::Keepalive;
use crate::parse::grpc_go::CloseReason;

/// How long the function must have been quiet, inside one invocation,
/// before a close for it to be a keepalive timeout: grpc-go's keepalive
/// waits `Time` (at least 10 s: grpc-go raises less to it) and `Timeout`
/// after the last read, and at least `Timeout` after a ping it sent at the
/// thaw (the invocation's first line can come a few ms after that ping,
/// so less than a second); a reset met on reuse fails the call at once.
pub(super) const MIN_QUIET_MS: i64 = 500;

/// What the stream's grpc-go lines said of each channel so far.
#[derive(Default)]
pub(super) struct GoTransports {
    /// Whether its transport is up (READY) or down; absent where no state
    /// line was printed (grpc-go's default logs errors only).
    up: HashMap<String, bool>,
    /// Its last close line's time, and whether that burst is decided (a
    /// finding made, or another reason said).
    burst: HashMap<String, (i64, bool)>,
}

impl GoTransports {
    /// `Subchannel Connectivity change to READY`.
    pub(super) fn ready(&mut self, channel: &str) {
        self.up.insert(channel.to_owned(), true);
    }
}

impl StreamCorrelator {
    /// A grpc-go close line: the finding it makes, if its burst makes one.
    pub(super) fn go_transport_closed(
        &self,
        mark: &Mark,
        k: &Keepalive,
        reason: CloseReason,
        quiet_ms: Option<i64>,
        go: &mut GoTransports,
    ) -> Option<Finding> {
        let channel = k.connection.as_str();
        let burst = go
            .burst
            .get(channel)
            .copied()
            .filter(|&(at, _)| mark.ts - at <= BURST_MS);
        // A new burst on a transport the lines showed down (the first
        // connect's CONNECTING, a reconnect's TRANSIENT_FAILURE) is no close.
        let was_down = burst.is_none() && go.up.get(channel) == Some(&false);
        let decided = burst.is_some_and(|(_, d)| d) || was_down || reason == CloseReason::Other;
        if let Some(up) = go.up.get_mut(channel) {
            *up = false;
        }
        go.burst.insert(channel.to_owned(), (mark.ts, decided));
        if decided || self.invocations.is_empty() {
            return None;
        }
        let quiet = quiet_ms?;
        let owner = self.owner(mark);
        let idx = owner.epoch.invocation_index()? as usize;
        let start = self.invocations.get(idx)?.start_ms?;
        let quiet_from = mark.ts - quiet;
        let mut finding = if quiet_from >= start {
            if quiet < MIN_QUIET_MS {
                return None;
            }
            self.finding(mark, mark, k, (false, false))
        } else if reason == CloseReason::Keepalive && idx > 0 {
            let mut f = self.finding(mark, mark, k, (false, false));
            f.kind = KeepaliveKind::FreezeTimeout;
            f.ping_request_id = Some(self.invocations[idx - 1].request_id.clone());
            f.frozen_ms = owner.frozen_before_ms;
            f
        } else {
            return None;
        };
        // The ping went out after the connection's last sign of life: the
        // start of the silence is as near as the lines place it.
        finding.ping_at_ms = quiet_from.max(0);
        finding.evidence.dedup();
        finding.inferred_from = Some(Inference::TransportClose);
        go.burst.insert(channel.to_owned(), (mark.ts, true));
        Some(finding)
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;
    use crate::finding::KeepaliveKind;

    const A: &str = "0f4be6c5-7a0c-4bd4-9d3c-6b1f3e6c1a01";
    const B: &str = "1e5cf7d6-8b1d-4ce5-8e4d-7c2f4f7d2b02";

    /// Two invocations, A then B after a freeze, with `at_thaw` lines
    /// printed right after B's START and `in_b` lines `quiet` ms after B's
    /// first line of its own.
    fn stream_quiet(at_thaw: &[&str], in_b: &[&str], quiet: i64) -> Vec<(i64, String)> {
        let t0 = 1_796_567_600_000;
        let mut lines = vec![
            (t0, format!("START RequestId: {A} Version: $LATEST")),
            (t0 + 5, "2026/12/06 14:33:20 handling order batch".into()),
            (t0 + 90, "2026/12/06 14:33:20 echo call 0 ok".into()),
            (t0 + 92, format!("END RequestId: {A}")),
            (t0 + 3_000, format!("START RequestId: {B} Version: $LATEST")),
        ];
        lines.extend(at_thaw.iter().map(|l| (t0 + 3_001, l.to_string())));
        lines.push((
            t0 + 3_010,
            "2026/12/06 14:33:23 handling order batch".into(),
        ));
        lines.extend(in_b.iter().map(|l| (t0 + 3_010 + quiet, l.to_string())));
        lines.push((t0 + 3_020 + quiet, format!("END RequestId: {B}")));
        lines
    }

    fn stream(at_thaw: &[&str], in_b: &[&str]) -> Vec<(i64, String)> {
        stream_quiet(at_thaw, in_b, 6_000)
    }

    fn kinds(lines: &[(i64, String)]) -> Vec<(KeepaliveKind, Option<String>, Option<String>)> {
        let lines: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
        let (out, _) = crate::correlate::run_stream(&lines, Config::default());
        out.findings
            .iter()
            .map(|f| {
                (
                    f.kind,
                    f.ping_request_id.clone(),
                    f.timeout_request_id.clone(),
                )
            })
            .collect()
    }

    /// grpc-go 1.33 (recorded texts): a close after the function's silence
    /// inside B is B's genuine timeout, one finding per burst.
    #[test]
    fn a_close_after_silence_in_one_invocation_is_a_genuine_timeout() {
        let found = kinds(&stream(
            &[],
            &[
                "INFO: 2026/12/06 14:33:29 [core] Subchannel Connectivity change to CONNECTING",
                "2026/12/06 14:33:29 echo call 0 failed: rpc error: code = Unavailable desc = transport is closing",
                "INFO: 2026/12/06 14:33:29 [transport] transport: loopyWriter.run returning. connection error: desc = \"transport is closing\"",
            ],
        ));
        assert_eq!(
            found,
            [(KeepaliveKind::Timeout, Some(B.into()), Some(B.into()))]
        );
    }

    /// 1.33's bare close at a thaw may be the server's: nothing reported.
    /// 1.38+'s keepalive reason at a thaw (upstream text, not recorded) is a
    /// freeze timeout whose ping went out in A.
    #[test]
    fn a_close_at_a_thaw_counts_only_when_it_names_the_keepalive() {
        let bare =
            ["INFO: 2026/12/06 14:33:23 [core] Subchannel Connectivity change to CONNECTING"];
        assert_eq!(kinds(&stream(&bare, &[])), []);
        let named = [
            "2026/12/06 14:33:23 INFO: [transport] [client-transport 0xc000180000] Closing: connection error: desc = \"keepalive ping failed to receive ACK within timeout\"",
            "2026/12/06 14:33:23 INFO: [core] [Channel #1 SubChannel #2] Subchannel Connectivity change to IDLE",
        ];
        assert_eq!(
            kinds(&stream(&named, &[])),
            [(KeepaliveKind::FreezeTimeout, Some(A.into()), Some(B.into()))]
        );
    }

    /// Another reason said (1.38+: a read error) vetoes the burst; a
    /// failure at once (no silence) is none either.
    #[test]
    fn a_close_for_another_reason_or_without_silence_is_no_timeout() {
        let eof = [
            "2026/12/06 14:33:29 INFO: [transport] [client-transport 0xc000180000] Closing: connection error: desc = \"error reading from server: EOF\"",
            "2026/12/06 14:33:29 INFO: [core] [Channel #1 SubChannel #2] Subchannel Connectivity change to IDLE",
        ];
        assert_eq!(kinds(&stream(&[], &eof)), []);
        let at_once = [
            "2026/12/06 14:33:23 echo call 0 failed: rpc error: code = Unavailable desc = transport is closing",
        ];
        assert_eq!(kinds(&stream_quiet(&[], &at_once, 20)), []);
        assert_eq!(kinds(&stream_quiet(&[], &at_once, 700)).len(), 1);
    }
}
