//! Which invocation owns a line: by its window (START .. END), by the
//! freeze between END and the next START, or, without platform records, by
//! the runs of printed request IDs; and what settled that answer.

use super::{Mark, Place, StreamCorrelator};

/// Where a line's owner stands in the stream's order of invocations:
/// before the first, in one, or in the unknown invocation after one (a thaw
/// whose START is not in the input). Ordered as the stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Epoch(i64);

impl Epoch {
    /// Before the first invocation (the init phase).
    pub(super) const INIT: Epoch = Epoch(-1);

    /// The invocation of index `idx`.
    pub(super) fn invocation(idx: usize) -> Epoch {
        Epoch(2 * idx as i64)
    }

    /// The unknown invocation after the one of index `idx`.
    pub(super) fn after(idx: usize) -> Epoch {
        Epoch(2 * idx as i64 + 1)
    }

    /// The index of its invocation, when it is a known one.
    pub(super) fn invocation_index(self) -> Option<u32> {
        (self.0 >= 0 && self.0 % 2 == 0).then_some((self.0 / 2) as u32)
    }
}

/// The owner of a line once the stream is read: its epoch and its request
/// ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) epoch: Epoch,
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

/// Without the next START, a silence shorter than this after `END` is not
/// taken for the freeze: a line the runtime flushed just after `END` (a
/// failure logged as the response went out) belongs to the invocation
/// that ended.
const MIN_OPEN_FREEZE_MS: i64 = 500;

impl StreamCorrelator {
    pub(super) fn invocation_owner(&self, idx: u32) -> Owner {
        let inv = &self.invocations[idx as usize];
        // The freeze before an invocation: from the previous one's END to its START.
        let frozen_before_ms = inv
            .before
            .map(|b| &self.betweens[b as usize])
            .and_then(|b| {
                let prev = &self.invocations[b.prev as usize];
                match (prev.end_ms, inv.start_ms) {
                    (Some(end), Some(start)) => Some(start - end),
                    _ => (b.gap_ms >= 0).then_some(b.gap_ms),
                }
            });
        Owner {
            epoch: Epoch::invocation(idx as usize),
            request_id: Some(inv.request_id.clone()),
            frozen_before_ms,
            settled: Settled::Line,
        }
    }

    pub(super) fn owner(&self, mark: &Mark) -> Owner {
        if self.managed() {
            return self.managed_owner(mark);
        }
        if self.invocations.is_empty() {
            return self.run_owner(mark, false);
        }
        match mark.place {
            Place::Init => Owner {
                epoch: Epoch::INIT,
                request_id: self.texts.owned(mark.printed),
                frozen_before_ms: None,
                settled: Settled::Line,
            },
            Place::In(i) => self.invocation_owner(i),
            Place::Between(b) => {
                let between = &self.betweens[b as usize];
                // Before the freeze; or, while the next START is not in the
                // input, after no silence long enough to be one (the
                // freeze may still come, after this line).
                if mark.pos < between.freeze_pos
                    || (between.next.is_none() && between.gap_ms < MIN_OPEN_FREEZE_MS)
                {
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
                        epoch: Epoch::after(between.prev as usize),
                        request_id: None,
                        frozen_before_ms: Some(between.gap_ms),
                        settled: Settled::Open,
                    },
                }
            }
        }
    }

    /// Without platform records: the run of printed request IDs a line
    /// falls in, or, for a timer line that fired late (at a thaw), the run
    /// that starts next.
    pub(super) fn run_owner(&self, mark: &Mark, late: bool) -> Owner {
        // Written between a freeze and the instrument's `thaw` event: at the
        // thaw, in the invocation that logged the event.
        if let Some(t) = self
            .thaws
            .iter()
            .find(|t| (t.from..t.thaw).contains(&mark.pos))
        {
            let k = self.runs.partition_point(|r| r.first_pos <= t.thaw);
            if k > 0 {
                let run = &self.runs[k - 1];
                return Owner {
                    epoch: Epoch::invocation(k - 1),
                    request_id: Some(run.request_id.clone()),
                    frozen_before_ms: Some(t.frozen_ms),
                    settled: Settled::Event(run.first_pos, run.first_event.clone()),
                };
            }
        }
        let at = self.runs.partition_point(|r| r.first_pos <= mark.pos);
        let run_owner = |k: usize, settled| Owner {
            epoch: Epoch::invocation(k),
            request_id: Some(self.runs[k].request_id.clone()),
            frozen_before_ms: None,
            settled,
        };
        if late {
            return match self.runs.get(at) {
                Some(next) => {
                    run_owner(at, Settled::Event(next.first_pos, next.first_event.clone()))
                }
                None => Owner {
                    epoch: at.checked_sub(1).map_or(Epoch::INIT, Epoch::after),
                    request_id: None,
                    frozen_before_ms: None,
                    settled: Settled::Open,
                },
            };
        }
        if at == 0 {
            return Owner {
                epoch: Epoch::INIT,
                request_id: self.texts.owned(mark.printed),
                frozen_before_ms: None,
                settled: Settled::Line,
            };
        }
        run_owner(at - 1, Settled::Line)
    }
}
