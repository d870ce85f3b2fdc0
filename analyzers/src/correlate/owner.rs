//! Which invocation owns a line: by its window (START .. END), by the
//! freeze between END and the next START, or, without platform records, by
//! the runs of printed request IDs; and what settled that answer.

use super::{Mark, Place, StreamCorrelator};

/// The owner of a line once the stream is read: an epoch (even numbers are
/// invocations in order, odd ones the unknown invocation after one) and its
/// request ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) epoch: i64,
    pub(super) request_id: Option<String>,
    pub(super) frozen_before_ms: Option<i64>,
    pub(super) settled: Settled,
}

/// What fixed a line's owner: the line itself, a later event (the START a
/// line written at the thaw waits for), or nothing yet (the input ends
/// before it): a finding is final once both its lines are settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Settled {
    Line,
    Event(u32, String),
    Open,
}

impl StreamCorrelator {
    pub(super) fn invocation_owner(&self, idx: u32) -> Owner {
        let inv = &self.invocations[idx as usize];
        // The freeze before an invocation: from the previous one's END to its START.
        let frozen_before_ms = self
            .betweens
            .iter()
            .find(|b| b.next == Some(idx))
            .and_then(|b| {
                let prev = &self.invocations[b.prev as usize];
                match (prev.end_ms, inv.start_ms) {
                    (Some(end), Some(start)) => Some(start - end),
                    _ => (b.gap_ms >= 0).then_some(b.gap_ms),
                }
            });
        Owner {
            epoch: 2 * i64::from(idx),
            request_id: Some(inv.request_id.clone()),
            frozen_before_ms,
            settled: Settled::Line,
        }
    }

    pub(super) fn owner(&self, mark: &Mark) -> Owner {
        if self.invocations.is_empty() {
            return self.run_owner(mark);
        }
        match mark.place {
            Place::Init => Owner {
                epoch: -1,
                request_id: mark.printed.clone(),
                frozen_before_ms: None,
                settled: Settled::Line,
            },
            Place::In(i) => self.invocation_owner(i),
            Place::Between(b) => {
                let between = &self.betweens[b as usize];
                if mark.pos < between.freeze_pos {
                    return self.invocation_owner(between.prev);
                }
                match between.next {
                    Some(next) => {
                        let mut owner = self.invocation_owner(next);
                        owner.settled = match &self.invocations[next as usize].start_event {
                            Some((pos, id)) => Settled::Event(*pos, id.clone()),
                            None => Settled::Line,
                        };
                        owner
                    }
                    // Written at a thaw whose START is not in the input.
                    None => Owner {
                        epoch: 2 * i64::from(between.prev) + 1,
                        request_id: None,
                        frozen_before_ms: Some(between.gap_ms),
                        settled: Settled::Open,
                    },
                }
            }
        }
    }

    pub(super) fn run_owner(&self, mark: &Mark) -> Owner {
        let at = self.runs.partition_point(|r| r.first_pos <= mark.pos);
        // The window's end is known once the next request ID appears.
        let settled = match self.runs.get(at) {
            Some(next) => Settled::Event(next.first_pos, next.first_event.clone()),
            None if at == 0 => Settled::Line,
            None => Settled::Open,
        };
        // Lines at the thaw before the next window's first line are its.
        let k = match self.runs.get(at) {
            Some(next) if next.thaw_pos <= mark.pos => at + 1,
            _ => at,
        };
        if k == 0 {
            return Owner {
                epoch: -1,
                request_id: mark.printed.clone(),
                frozen_before_ms: None,
                settled: Settled::Line,
            };
        }
        let run = &self.runs[k - 1];
        Owner {
            epoch: 2 * (k as i64 - 1),
            request_id: Some(run.request_id.clone()),
            frozen_before_ms: (k > 1).then_some(run.gap_ms),
            settled,
        }
    }
}
