//! The keepalive ledger of one stream: per connection, the pings in flight
//! with their ack deadlines, the acks that came too late to stop a timer,
//! when the next keepalive ping was due, and (C-core) which transport a
//! connection runs on. It is read line by line, in stream order; a timeout
//! (a library's line, or a transport's shutdown standing in for it) takes
//! the pings it may have given up on out of the ledger.
//!
//! Pings are named by their mark's index in the stream; the ledger keeps
//! no text of its own.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Mark, What};
use crate::parse::{Keepalive, KeepaliveEvent};

/// A C-core connectivity tracker lies inside its transport object, this
/// close above the transport's own address (0x288 bytes in grpcio 1.85).
const TRACKER_SPAN: u64 = 0x1_0000;

/// The pings a timeout may have given up on: those still unanswered, and
/// those acked too late to stop their timer (with their ack).
#[derive(Debug, Default)]
pub(super) struct InFlight {
    pub(super) pending: Vec<usize>,
    pub(super) acked_late: Vec<(usize, usize)>,
}

#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Unanswered pings, per connection.
    outstanding: HashMap<String, Vec<usize>>,
    /// Pings acked at or after their deadline (or of unknown deadline),
    /// with their acks, per connection.
    acked_late: HashMap<String, Vec<(usize, usize)>>,
    /// When each ping's ack timer expires, where the library says.
    deadline: HashMap<usize, i64>,
    /// grpc-js: when each connection's next keepalive ping is due.
    due: HashMap<String, i64>,
    /// Pings sent well after they were due: at a thaw.
    sent_late: HashSet<usize>,
    /// C-core: the connection (peer) of each transport its lines name.
    transports: BTreeMap<u64, String>,
}

impl Ledger {
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
                self.due
                    .insert(k.connection.clone(), at + i64::from(*interval_ms));
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
                if self
                    .due
                    .remove(&k.connection)
                    .is_some_and(|d| at - d > late_timer_ms)
                {
                    self.sent_late.insert(i);
                }
                let pending = self.outstanding.entry(k.connection.clone()).or_default();
                if ping_id.is_none() {
                    // Libraries without ping ids keep one ping in flight.
                    pending.retain(|&p| ping_id_of(&marks[p]).is_some());
                }
                pending.push(i);
            }
            KeepaliveEvent::PingTimerSet {
                ping_id,
                timeout_ms,
            } => {
                let armed = self
                    .outstanding
                    .values()
                    .flatten()
                    .find(|&&p| ping_id_of(&marks[p]) == Some(*ping_id));
                if let Some(&p) = armed {
                    self.deadline
                        .insert(p, marks[p].ts + i64::from(*timeout_ms));
                }
            }
            KeepaliveEvent::PingAck { ping_id } => return Some(self.ack(marks, i, k, *ping_id)),
            KeepaliveEvent::PingTimeout | KeepaliveEvent::TransportShutdown => {}
        }
        None
    }

    fn ack(&mut self, marks: &[Mark], i: usize, k: &Keepalive, ping_id: Option<u64>) -> bool {
        let acks = |p: usize| match ping_id {
            Some(id) => ping_id_of(&marks[p]) == Some(id),
            None => ping_id_of(&marks[p]).is_none(),
        };
        let connections: Vec<String> = match ping_id {
            // C-core names the ping, not the connection.
            Some(_) => self.outstanding.keys().cloned().collect(),
            None => vec![k.connection.clone()],
        };
        let mut found = false;
        for connection in connections {
            let pending = self.outstanding.entry(connection.clone()).or_default();
            let Some(at) = pending.iter().position(|&p| acks(p)) else {
                continue;
            };
            let p = pending.remove(at);
            found = true;
            // An ack read after the timer expired did not stop it.
            if self.deadline(p).is_none_or(|e| marks[i].ts >= e) {
                self.acked_late.entry(connection).or_default().push((p, i));
            }
        }
        found
    }

    /// Takes out the pings of a connection whose timeout line was read.
    pub(super) fn take(&mut self, connection: &str) -> InFlight {
        InFlight {
            pending: self.outstanding.remove(connection).unwrap_or_default(),
            acked_late: self.acked_late.remove(connection).unwrap_or_default(),
        }
    }

    /// The connection a C-core connectivity tracker belongs to (the
    /// nearest transport at or below its address), and that transport's
    /// pings, taken out: a transport that shut down has nothing in flight.
    pub(super) fn take_transport(
        &mut self,
        marks: &[Mark],
        tracker: u64,
    ) -> Option<(String, InFlight)> {
        let (&transport, connection) = self
            .transports
            .range(..=tracker)
            .next_back()
            .filter(|(t, _)| tracker - **t < TRACKER_SPAN)?;
        let connection = connection.clone();
        let of_transport = |p: usize| matches!(&marks[p].what, What::Keepalive(ping) if ping.transport == Some(transport));
        let pending = self
            .outstanding
            .get_mut(&connection)
            .map(|v| {
                let (mine, rest) = v.iter().partition(|&&p| of_transport(p));
                *v = rest;
                mine
            })
            .unwrap_or_default();
        let acked_late = self
            .acked_late
            .get_mut(&connection)
            .map(|v| {
                let (mine, rest) = v.iter().partition(|&&(p, _)| of_transport(p));
                *v = rest;
                mine
            })
            .unwrap_or_default();
        Some((
            connection,
            InFlight {
                pending,
                acked_late,
            },
        ))
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
