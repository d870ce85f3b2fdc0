//! The connection ledger of one stream: what happened to each connection,
//! from whatever lines its library printed, read in stream order.
//!
//! - **Identity.** A connection is who its lines say: grpc-js `(<id>)
//!   <addr>`, C-core's peer (and its transport, and the connectivity
//!   tracker inside that transport), the instrument's `#<conn> <peer>`.
//!   Lines that name only a destination (urllib3, error messages, grpc-js
//!   connects) are about the function's only connection there; a failure
//!   that names nothing is about the function's only connection of all.
//! - **Lifecycle.** A connect started and not through (per invocation);
//!   the last activity the log vouches for (a client that logs every use);
//!   pings in flight with their ack deadlines, acks too late to stop a
//!   timer, when the next keepalive ping was due; whether a failure the
//!   NAT caused left it dead (a missed gRPC deadline does not close it).
//!
//! Findings come from it: a timeout (a library's line, or a transport's
//! shutdown standing in for it) takes the pings it may have given up on out
//! of the ledger; a network failure asks how long its connection was idle;
//! Lambda's function timeout asks which connect was still pending.
//!
//! Pings are named by their mark's index in the stream; the ledger keeps no
//! text of the lines.

use std::collections::BTreeMap;

// Looked up on every keepalive and network line: a fast hasher.
use foldhash::{HashMap, HashSet};

use super::owner::Epoch;
use super::{Mark, What};
use crate::parse::{Keepalive, KeepaliveEvent};

/// A C-core connectivity tracker lies inside its transport object, this
/// close above the transport's own address (0x288 bytes in grpcio 1.85).
const TRACKER_SPAN: u64 = 0x1_0000;

/// Where grpcio 1.85 puts a transport's connectivity tracker: this far
/// above the transport's address.
const TRACKER_OFFSET: u64 = 0x288;

/// The pings a timeout may have given up on: those still unanswered, and
/// those acked too late to stop their timer (with their ack).
#[derive(Debug, Default)]
pub(super) struct InFlight {
    pub(super) pending: Vec<usize>,
    pub(super) acked_late: Vec<(usize, usize)>,
}

/// One connection's record.
#[derive(Debug, Default)]
struct Connection {
    /// A connect started and not yet through: (invocation epoch, position).
    connecting: Option<(Epoch, u32, i64)>,
    /// The last use the log vouches for (only from clients that log every
    /// request: a gap between two such lines was idle).
    last_activity: Option<i64>,
    /// Since when a connection the NAT forgot, which the client still
    /// holds, has carried nothing.
    dead_since: Option<i64>,
    /// Unanswered pings.
    outstanding: Vec<usize>,
    /// Pings acked at or after their deadline (or of unknown deadline),
    /// with their acks.
    acked_late: Vec<(usize, usize)>,
    /// grpc-js: when the next keepalive ping is due.
    due: Option<i64>,
}

#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Connections the library names: its keepalive lines' key.
    named: HashMap<String, Connection>,
    /// Connections known only by their destination: the function's only
    /// connection there, for all the log can tell.
    to: HashMap<String, Connection>,
    /// The connection of failures that name nothing: the function's only
    /// connection of all.
    unnamed: Connection,
    /// When each ping's ack timer expires, where the library says.
    deadline: HashMap<usize, i64>,
    /// Pings sent well after they were due: at a thaw.
    sent_late: HashSet<usize>,
    /// C-core: the connection (peer) of each transport its lines name.
    transports: BTreeMap<u64, String>,
    /// The pings the last ack line answered, with it: (ping, ack).
    pub(super) acked_now: Vec<(usize, usize)>,
    /// How far above its transport a tracker was, where only one
    /// transport could be its.
    tracker_offset: Option<u64>,
}

impl Ledger {
    fn named(&mut self, connection: &str) -> &mut Connection {
        // Most lines are about a connection already in the ledger: its
        // name is copied only the first time.
        if !self.named.contains_key(connection) {
            self.named
                .insert(connection.to_owned(), Connection::default());
        }
        self.named.get_mut(connection).expect("inserted above")
    }

    fn sole(&mut self, destination: Option<&str>) -> &mut Connection {
        let Some(destination) = destination else {
            return &mut self.unnamed;
        };
        if !self.to.contains_key(destination) {
            self.to
                .insert(destination.to_owned(), Connection::default());
        }
        self.to.get_mut(destination).expect("inserted above")
    }

    /// The ack deadline of a ping, where the library printed its timeout.
    pub(super) fn deadline(&self, ping: usize) -> Option<i64> {
        self.deadline.get(&ping).copied()
    }

    /// Whether a ping was sent well after its keepalive interval was up.
    pub(super) fn sent_late(&self, ping: usize) -> bool {
        self.sent_late.contains(&ping)
    }

    /// Reads one keepalive line (mark `i`); `late_timer_ms` is how late a
    /// ping must be to have been sent at a thaw. Returns whether an ack
    /// matched a ping in flight (`None` for lines other than acks).
    pub(super) fn read(
        &mut self,
        marks: &[Mark],
        i: usize,
        k: &Keepalive,
        late_timer_ms: i64,
    ) -> Option<bool> {
        let at = marks[i].ts;
        match &k.event {
            KeepaliveEvent::KeepaliveTimerStarted { interval_ms } => {
                self.named(&k.connection).due = Some(at + i64::from(*interval_ms));
            }
            KeepaliveEvent::PingSent {
                ping_id,
                timeout_ms,
            } => {
                if let Some(t) = timeout_ms {
                    self.deadline.insert(i, at + i64::from(*t));
                }
                if let Some(t) = k.transport {
                    self.transports.insert(t, k.connection.clone());
                }
                let connection = self.named(&k.connection);
                let late = connection
                    .due
                    .take()
                    .is_some_and(|d| at - d > late_timer_ms);
                if ping_id.is_none() {
                    // Libraries without ping ids keep one ping in flight.
                    connection
                        .outstanding
                        .retain(|&p| ping_id_of(&marks[p]).is_some());
                }
                connection.outstanding.push(i);
                if late {
                    self.sent_late.insert(i);
                }
            }
            KeepaliveEvent::PingTimerSet {
                ping_id,
                timeout_ms,
            } => {
                let armed = self
                    .named
                    .values()
                    .flat_map(|c| &c.outstanding)
                    .find(|&&p| ping_id_of(&marks[p]) == Some(*ping_id));
                if let Some(&p) = armed {
                    self.deadline
                        .insert(p, marks[p].ts + i64::from(*timeout_ms));
                }
            }
            KeepaliveEvent::PingAck { ping_id } => return Some(self.ack(marks, i, k, *ping_id)),
            KeepaliveEvent::PingTimeout
            | KeepaliveEvent::TransportShutdown
            | KeepaliveEvent::ClientClosed
            | KeepaliveEvent::TransportReady
            | KeepaliveEvent::TransportClosed { .. } => {}
        }
        None
    }

    fn ack(&mut self, marks: &[Mark], i: usize, k: &Keepalive, ping_id: Option<u64>) -> bool {
        let acks = |p: usize| match ping_id {
            Some(id) => ping_id_of(&marks[p]) == Some(id),
            None => ping_id_of(&marks[p]).is_none(),
        };
        let at = marks[i].ts;
        let deadline = &self.deadline;
        let acked_now = &mut self.acked_now;
        acked_now.clear();
        let mut ack_on = |connection: &mut Connection| {
            let Some(found) = connection.outstanding.iter().position(|&p| acks(p)) else {
                return false;
            };
            let p = connection.outstanding.remove(found);
            acked_now.push((p, i));
            // An ack read after the timer expired did not stop it.
            if deadline.get(&p).is_none_or(|&e| at >= e) {
                connection.acked_late.push((p, i));
            }
            true
        };
        match ping_id {
            // C-core names the ping, not the connection.
            // Every connection's ping of that id is answered (not only the first's).
            Some(_) => {
                self.named
                    .values_mut()
                    .map(&mut ack_on)
                    .filter(|&found| found)
                    .count()
                    > 0
            }
            None => self.named.get_mut(&k.connection).is_some_and(ack_on),
        }
    }

    /// Takes out the pings of a connection whose timeout line was read.
    pub(super) fn take(&mut self, connection: &str) -> InFlight {
        match self.named.get_mut(connection) {
            Some(c) => InFlight {
                pending: std::mem::take(&mut c.outstanding),
                acked_late: std::mem::take(&mut c.acked_late),
            },
            None => InFlight::default(),
        }
    }

    /// Puts back the pings a timeout did not give up on, except `chosen`:
    /// on Lambda Managed Instances several processes of one environment
    /// can print the same C-core transport address for different
    /// connections, and one's shutdown ends only its own ping.
    pub(super) fn put_back(&mut self, connection: &str, in_flight: InFlight, chosen: usize) {
        let c = self.named(connection);
        c.outstanding
            .extend(in_flight.pending.into_iter().filter(|&p| p != chosen));
        c.acked_late.extend(
            in_flight
                .acked_late
                .into_iter()
                .filter(|&(p, _)| p != chosen),
        );
        c.outstanding.sort_unstable();
        c.acked_late.sort_unstable();
    }

    /// The connection a C-core connectivity tracker belongs to (the
    /// nearest transport at or below its address), and that transport's
    /// pings, taken out: a transport that shut down has nothing in flight.
    pub(super) fn take_transport(
        &mut self,
        marks: &[Mark],
        tracker: u64,
    ) -> Option<(String, InFlight)> {
        // The nearest transport below the tracker, unless one lies at the
        // offset seen before (or grpcio 1.85's): several processes of a
        // Managed Instances environment lay their transports out alike, so
        // another process's transport can lie between the two.
        let candidates: Vec<u64> = self
            .transports
            .range(tracker.saturating_sub(TRACKER_SPAN - 1)..=tracker)
            .map(|(&t, _)| t)
            .collect();
        let at_offset = |offset: u64| candidates.iter().copied().find(|&t| tracker - t == offset);
        let transport = self
            .tracker_offset
            .and_then(at_offset)
            .or_else(|| at_offset(TRACKER_OFFSET))
            .or_else(|| candidates.last().copied())?;
        if candidates.len() == 1 {
            self.tracker_offset = Some(tracker - transport);
        }
        let name = self.transports[&transport].clone();
        let of_transport = |p: usize| matches!(&marks[p].what, What::Keepalive(ping) if ping.transport == Some(transport));
        let mut in_flight = InFlight::default();
        if let Some(c) = self.named.get_mut(&name) {
            (in_flight.pending, c.outstanding) =
                c.outstanding.iter().partition(|&&p| of_transport(p));
            (in_flight.acked_late, c.acked_late) =
                c.acked_late.iter().partition(|&&(p, _)| of_transport(p));
        }
        Some((name, in_flight))
    }

    /// How long the connection to `destination` had been idle at `at`,
    /// where the log vouches for its last use.
    pub(super) fn idle(&self, destination: &str, at: i64) -> Option<i64> {
        Some(at - self.to.get(destination)?.last_activity?)
    }

    /// Traffic on the connection to `destination`: its last use so far.
    /// A connection that carried something is not dead.
    pub(super) fn activity(&mut self, destination: &str, at: i64) {
        let c = self.sole(Some(destination));
        c.last_activity = Some(at);
        c.dead_since = None;
    }

    /// A call on the connection to `destination` failed at `at`: how long
    /// it had been idle, where the log vouches for its last use. The
    /// connection is gone: whatever goes there next is new, used from now.
    pub(super) fn failed_use(&mut self, destination: Option<&str>, at: i64) -> Option<i64> {
        destination?;
        let c = self.sole(destination);
        let idle = c.last_activity.map(|last| at - last);
        c.last_activity = Some(at);
        idle
    }

    /// How long the connection to `destination` has been dead (a NAT's
    /// forgotten flow the client still holds), if it is.
    pub(super) fn dead_for(&self, destination: Option<&str>, at: i64) -> Option<i64> {
        let c = match destination {
            Some(d) => self.to.get(d)?,
            None => &self.unnamed,
        };
        let since = c.dead_since?;
        Some(at - since)
    }

    /// The connection to `destination` is dead since `since` (unless it was
    /// already).
    pub(super) fn dead_since(&mut self, destination: Option<&str>, since: i64) {
        self.sole(destination).dead_since.get_or_insert(since);
    }

    /// A connect to `destination` started (or, `done`, got through) in the
    /// invocation of `epoch`.
    /// A connect to `destination` started or (`done`) went through at
    /// `ts`; for one that went through, the start of its attempt (its mark's
    /// position and time), when the log showed it.
    pub(super) fn connect(
        &mut self,
        destination: &str,
        done: bool,
        epoch: Epoch,
        pos: u32,
        ts: i64,
    ) -> Option<(u32, i64)> {
        let to = self.sole(Some(destination));
        let started = to.connecting.take();
        if !done {
            to.connecting = Some((epoch, pos, ts));
            return None;
        }
        started.map(|(_, pos, ts)| (pos, ts))
    }

    /// The destination of the first connect still pending in the invocation
    /// of `epoch`.
    pub(super) fn pending_connect(&self, epoch: Epoch) -> Option<&str> {
        self.to
            .iter()
            .filter_map(|(d, c)| match c.connecting {
                Some((e, pos, _)) if e == epoch => Some((pos, d.as_str())),
                _ => None,
            })
            .min()
            .map(|(_, d)| d)
    }
}

/// The ping id a ping line printed (C-core), if any.
pub(super) fn ping_id_of(mark: &Mark) -> Option<u64> {
    match &mark.what {
        What::Keepalive(Keepalive {
            event: KeepaliveEvent::PingSent { ping_id, .. },
            ..
        }) => *ping_id,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_is_one_connection_until_a_failure_replaces_it() {
        let mut l = Ledger::default();
        l.activity("10.0.0.1:443", 1_000);
        // The failed use was idle since the last traffic; the replacement is new.
        assert_eq!(l.failed_use(Some("10.0.0.1:443"), 9_000), Some(8_000));
        assert_eq!(l.failed_use(Some("10.0.0.1:443"), 9_500), Some(500));
        // Nothing vouches for a destination never used, nor for no destination.
        assert_eq!(l.failed_use(Some("10.0.0.2:443"), 9_000), None);
        assert_eq!(l.failed_use(None, 9_000), None);
    }

    #[test]
    fn a_dead_connection_stays_dead_until_it_carries_something() {
        let mut l = Ledger::default();
        l.dead_since(None, 100);
        l.dead_since(None, 5_000);
        assert_eq!(l.dead_for(None, 7_000), Some(6_900));
        assert_eq!(l.dead_for(Some("10.0.0.1:443"), 7_000), None);
        l.dead_since(Some("10.0.0.1:443"), 1_000);
        l.activity("10.0.0.1:443", 2_000);
        assert_eq!(l.dead_for(Some("10.0.0.1:443"), 7_000), None);
    }

    #[test]
    fn the_first_connect_still_pending_in_an_invocation() {
        let mut l = Ledger::default();
        let e = Epoch::invocation;
        assert_eq!(l.connect("10.0.0.1:443", false, e(0), 3, 100), None);
        // Through: the attempt's start comes back, for its duration.
        assert_eq!(
            l.connect("10.0.0.1:443", true, e(0), 4, 1_300),
            Some((3, 100))
        );
        l.connect("10.0.0.2:443", false, e(1), 7, 2_000);
        l.connect("10.0.0.3:443", false, e(1), 5, 1_900);
        // A second "through" line of the same connect has no start.
        assert_eq!(l.connect("10.0.0.1:443", true, e(0), 8, 1_310), None);
        assert_eq!(l.pending_connect(e(0)), None);
        assert_eq!(l.pending_connect(e(1)), Some("10.0.0.3:443"));
        assert_eq!(l.pending_connect(e(2)), None);
    }
}
