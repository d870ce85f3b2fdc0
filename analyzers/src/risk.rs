//! How exposed a function is to keepalive freeze timeouts, from what its
//! streams showed: the freezes, the pings and how close they came.
//!
//! # The model
//!
//! A client with HTTP/2 keepalive sends a ping `I` ms (the keepalive
//! interval) after the last one was answered, and the answer takes `r` ms
//! (the round trip the log shows for pings no freeze held up); the library
//! gives up on it after `T` ms (the ack timeout). The keepalive timer runs
//! on the clock, which goes on while the environment is frozen, and the
//! environment runs a fraction `ρ` of the time (one minus the frozen share
//! of the period seen). So of every `r + ρI` ms the environment *runs*, a
//! ping is in flight for `r`.
//!
//! Lambda freezes the environment at the end of each invocation, at a
//! moment unrelated to that schedule. A freeze of length `L` that starts
//! while a ping has waited `e` ms (uniform over `0..r`) ends in a freeze
//! timeout when `e + L >= T`: the timer fires at the thaw before the ack is
//! read. Averaged over the phase:
//!
//! ```text
//! P(timeout | L) = clamp(L - (T - r), 0, r) / (r + ρI)
//! P(in flight at the freeze) = r / (r + ρI)
//! ```
//!
//! Where the library prints no interval (C-core, whose BDP pings keep no
//! schedule either), `P(in flight at the freeze)` is what the log showed:
//! the pings caught in flight (near misses and freeze timeouts) per freeze.
//!
//! The expected freeze timeouts per day are the mean of `P(timeout | L)`
//! over the freezes seen, times the freezes per day seen; the chance of at
//! least one in a day is `1 - exp(-expected)`. The formula is checked
//! against a simulation of ping schedules and freezes in this module's
//! tests. It leaves out a second way to be caught: a freeze longer than
//! `I` sends a ping at the thaw, and an invocation shorter than `r` after
//! it freezes again with that ping in flight. Those freezes are counted
//! (`freezes_over_interval`) and named in the explanation instead.

use serde::Serialize;

/// What one stream showed of its keepalive exposure.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Exposure {
    /// The log group (function).
    pub log_group: String,
    /// The log stream.
    pub log_stream: String,
    /// From the first event to the last, ms.
    pub span_ms: i64,
    /// Each freeze between two invocations, ms (classic and SnapStart
    /// streams; Managed Instances are never frozen).
    pub freezes: Vec<i64>,
    /// The keepalive interval the library printed (grpc-js).
    pub interval_ms: Option<i64>,
    /// The ack timeout the library printed.
    pub ack_timeout_ms: Option<i64>,
    /// Ping round trips no freeze held up, ms.
    pub round_trips: Vec<i64>,
    /// Pings in flight at a freeze: near misses and freeze timeouts.
    pub pings_in_flight_at_freeze: u64,
    /// Of those, the ones that timed out.
    pub freeze_timeouts: u64,
    /// The smallest margin of a near miss, ms.
    pub min_margin_ms: Option<i64>,
}

/// A function's keepalive risk over the scanned period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Risk {
    /// The function's log group.
    pub log_group: String,
    /// Freezes seen.
    pub freezes: u64,
    /// The longest, ms.
    pub longest_freeze_ms: i64,
    /// Freezes longer than the keepalive interval.
    pub freezes_over_interval: u64,
    /// Pings in flight at a freeze (near misses and freeze timeouts).
    pub pings_in_flight_at_freeze: u64,
    /// Freeze timeouts seen.
    pub freeze_timeouts: u64,
    /// The smallest near-miss margin, ms.
    pub min_margin_ms: Option<i64>,
    /// `I`, `T`, `r` of the model, where the log showed them.
    pub interval_ms: Option<i64>,
    /// See [`Risk::interval_ms`].
    pub ack_timeout_ms: Option<i64>,
    /// See [`Risk::interval_ms`] (the median round trip).
    pub round_trip_ms: Option<i64>,
    /// Freezes per day at the rate seen.
    pub freezes_per_day: f64,
    /// Expected freeze timeouts per day (the model), when `I`, `T` and
    /// `r` are known.
    pub expected_per_day: Option<f64>,
    /// The chance of at least one freeze timeout in a day.
    pub chance_per_day: Option<f64>,
}

const DAY_MS: f64 = 86_400_000.0;

/// The schedule of a client's keepalive pings, and how much of the time
/// its environment runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// `I`: from an ack to the next ping, ms.
    pub interval_ms: i64,
    /// `T`: the ack timeout, ms.
    pub timeout_ms: i64,
    /// `r`: a ping's round trip, ms.
    pub rtt_ms: i64,
    /// `ρ`: the share of the time the environment runs (not frozen).
    pub running: f64,
}

impl Schedule {
    /// `P(timeout | L)`: the chance that a freeze of `freeze_ms` ends in a
    /// keepalive timeout.
    ///
    /// ```
    /// use thawtrace_analyzers::risk::Schedule;
    /// let s = Schedule { interval_ms: 5_000, timeout_ms: 1_000, rtt_ms: 50, running: 1.0 };
    /// // Shorter than the ack timeout less a round trip: never.
    /// assert_eq!(s.timeout_chance(900), 0.0);
    /// // Longer than the ack timeout: whenever a ping is in flight.
    /// assert!((s.timeout_chance(60_000) - 50.0 / 5_050.0).abs() < 1e-12);
    /// ```
    pub fn timeout_chance(&self, freeze_ms: i64) -> f64 {
        let rtt = self.rtt_ms.max(0);
        let cycle = (rtt as f64 + self.running.clamp(0.01, 1.0) * self.interval_ms as f64).max(1.0);
        let caught = (freeze_ms - (self.timeout_ms - rtt)).clamp(0, rtt);
        caught as f64 / cycle
    }
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

impl Risk {
    /// The risk of one function from its streams' exposures (all of one
    /// log group).
    pub fn of<'a>(exposures: impl IntoIterator<Item = &'a Exposure>) -> Option<Risk> {
        let exposures: Vec<&Exposure> = exposures.into_iter().collect();
        let first = exposures.first()?;
        let freezes: Vec<i64> = exposures
            .iter()
            .flat_map(|e| e.freezes.iter().copied())
            .collect();
        let interval_ms = median(exposures.iter().filter_map(|e| e.interval_ms).collect());
        let ack_timeout_ms = median(exposures.iter().filter_map(|e| e.ack_timeout_ms).collect());
        let round_trip_ms = median(
            exposures
                .iter()
                .flat_map(|e| e.round_trips.iter().copied())
                .collect(),
        );
        let span_ms: i64 = exposures.iter().map(|e| e.span_ms.max(0)).sum();
        let freezes_per_day = if span_ms > 0 {
            freezes.len() as f64 * DAY_MS / span_ms as f64
        } else {
            0.0
        };
        let frozen: i64 = freezes.iter().sum();
        let running = if span_ms > 0 {
            1.0 - frozen as f64 / span_ms as f64
        } else {
            1.0
        };
        let caught = exposures
            .iter()
            .map(|e| e.pings_in_flight_at_freeze)
            .sum::<u64>();
        // How often a freeze catches a ping in flight: the model's
        // `r / (r + ρI)` where the library prints its interval, else what
        // was seen (C-core prints no interval, and its BDP pings keep no
        // schedule).
        let in_flight = match (interval_ms, round_trip_ms) {
            (Some(i), Some(r)) => Some(r as f64 / (r as f64 + running.clamp(0.01, 1.0) * i as f64)),
            _ if !freezes.is_empty() => Some(caught as f64 / freezes.len() as f64),
            _ => None,
        };
        let expected_per_day = match (in_flight, ack_timeout_ms, round_trip_ms) {
            (Some(p), Some(t), Some(r)) if !freezes.is_empty() && r > 0 => {
                let mean = freezes
                    .iter()
                    .map(|&l| p * (l - (t - r)).clamp(0, r) as f64 / r as f64)
                    .sum::<f64>()
                    / freezes.len() as f64;
                Some(mean * freezes_per_day)
            }
            _ => None,
        };
        Some(Risk {
            log_group: first.log_group.clone(),
            freezes: freezes.len() as u64,
            longest_freeze_ms: freezes.iter().copied().max().unwrap_or(0),
            freezes_over_interval: interval_ms
                .map_or(0, |i| freezes.iter().filter(|&&l| l > i).count() as u64),
            pings_in_flight_at_freeze: exposures.iter().map(|e| e.pings_in_flight_at_freeze).sum(),
            freeze_timeouts: exposures.iter().map(|e| e.freeze_timeouts).sum(),
            min_margin_ms: exposures.iter().filter_map(|e| e.min_margin_ms).min(),
            interval_ms,
            ack_timeout_ms,
            round_trip_ms,
            freezes_per_day,
            expected_per_day,
            chance_per_day: expected_per_day.map(|x| 1.0 - (-x).exp()),
        })
    }

    /// Whether there is anything to say: keepalive pings seen, or a near
    /// miss or freeze timeout.
    pub fn is_exposed(&self) -> bool {
        self.pings_in_flight_at_freeze > 0 || self.expected_per_day.is_some_and(|x| x > 0.0)
    }

    /// The risk in plain words, with the setting that removes it.
    pub fn explain(&self) -> String {
        let mut s = format!(
            "{} freezes (about {:.0} a day), the longest {} ms; {} keepalive pings were in flight at a freeze ({} timed out",
            self.freezes,
            self.freezes_per_day,
            self.longest_freeze_ms,
            self.pings_in_flight_at_freeze,
            self.freeze_timeouts
        );
        match self.min_margin_ms {
            Some(m) if m >= 0 => {
                s.push_str(&format!(", the closest survived with {m} ms to spare"))
            }
            Some(m) => s.push_str(&format!(
                ", one survived {} ms past its timer: the ack won the race at the thaw",
                -m
            )),
            None => {}
        }
        s.push(')');
        if let (Some(t), Some(r), Some(x), Some(p)) = (
            self.ack_timeout_ms,
            self.round_trip_ms,
            self.expected_per_day,
            self.chance_per_day,
        ) {
            let pings = match self.interval_ms {
                Some(i) => format!("pings every {i} ms"),
                None => "pings as often as seen".to_owned(),
            };
            s.push_str(&format!(
                ". With {pings} answered in {r} ms and {t} ms to answer, a freeze timeout is expected {x:.2} times a day at these freezes: a {:.0}% chance of at least one a day",
                p * 100.0
            ));
        }
        if self.freezes_over_interval > 0 {
            s.push_str(&format!(
                "; {} freezes outlasted the keepalive interval, so a ping goes out at the thaw and a short invocation freezes with it in flight",
                self.freezes_over_interval
            ));
        }
        s.push_str(". Leave client keepalive off in Lambda, or raise its ack timeout above the longest freeze");
        s.push_str(&format!(" ({} ms).", self.longest_freeze_ms));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*): the simulation is
    /// the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
        fn exp(&mut self, mean: f64) -> f64 {
            -mean * (1.0 - self.next()).ln()
        }
    }

    /// Simulates one environment: it runs for exponential stretches and
    /// freezes for lengths drawn from `freeze`; pings go out `interval` ms
    /// after the last ack (or at once at a thaw whose timer expired while
    /// frozen), each answered `rtt` ms later; a ping whose deadline passed
    /// by the thaw times out there (the timer fires before the ack is
    /// read), and the next ping follows `interval` after the thaw.
    /// Returns (freezes, timeouts, freeze lengths).
    fn simulate(
        freezes: usize,
        interval: f64,
        timeout: f64,
        rtt: f64,
        mean_run: f64,
        freeze: impl Fn(&mut Rng) -> f64,
    ) -> (usize, usize, Vec<i64>, f64) {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Process time (runs only): when the next ping goes out, and the
        // ping in flight (sent at).
        let mut now = 0.0;
        let mut next_ping = interval;
        let mut in_flight: Option<f64> = None;
        let mut timeouts = 0;
        let mut lengths = Vec::with_capacity(freezes);
        let mut frozen = 0.0;
        for _ in 0..freezes {
            // Run until the freeze.
            let until = now + rng.exp(mean_run);
            loop {
                match in_flight {
                    Some(sent) if sent + rtt <= until => {
                        in_flight = None;
                        next_ping = sent + rtt + interval;
                    }
                    Some(_) => break,
                    None if next_ping <= until => in_flight = Some(next_ping),
                    None => break,
                }
            }
            now = until;
            // Frozen: wall time passes, the process does not run.
            let l = freeze(&mut rng);
            lengths.push(l as i64);
            frozen += l;
            let thaw = now + l;
            if let Some(sent) = in_flight {
                if sent + timeout <= thaw {
                    timeouts += 1;
                    in_flight = None;
                    next_ping = thaw + interval;
                } else if sent + rtt <= thaw {
                    in_flight = None;
                    next_ping = thaw + interval;
                }
            } else if next_ping <= thaw {
                // The keepalive timer expired while frozen: a ping at the thaw.
                in_flight = Some(thaw);
            }
            now = thaw;
        }
        (freezes, timeouts, lengths, 1.0 - frozen / now)
    }

    #[test]
    fn the_formula_matches_a_simulation_of_freezes_and_pings() {
        // Freezes of 0.2 .. 2.2 s against a 1 s ack timeout (pings every
        // 5 s, answered in 80 ms), and a mix with long freezes.
        type Lengths = Box<dyn Fn(&mut Rng) -> f64>;
        let cases: [(&str, Lengths); 2] = [
            (
                "uniform",
                Box::new(|r: &mut Rng| 200.0 + 2_000.0 * r.next()),
            ),
            ("long tail", Box::new(|r: &mut Rng| 100.0 + r.exp(1_500.0))),
        ];
        for (name, freeze) in cases {
            let (n, timeouts, lengths, running) =
                simulate(400_000, 5_000.0, 1_000.0, 80.0, 3_000.0, freeze);
            let schedule = Schedule {
                interval_ms: 5_000,
                timeout_ms: 1_000,
                rtt_ms: 80,
                running,
            };
            let predicted: f64 = lengths.iter().map(|&l| schedule.timeout_chance(l)).sum();
            let seen = timeouts as f64;
            assert!(
                (seen - predicted).abs() / predicted < 0.1,
                "{name}: {seen} timeouts in {n} freezes, the formula says {predicted:.0}"
            );
        }
    }

    #[test]
    fn no_freeze_past_the_timeout_less_a_round_trip_no_risk() {
        let (_, timeouts, lengths, running) =
            simulate(100_000, 5_000.0, 1_000.0, 80.0, 3_000.0, |r| {
                100.0 + 800.0 * r.next()
            });
        assert_eq!(timeouts, 0);
        let schedule = Schedule {
            interval_ms: 5_000,
            timeout_ms: 1_000,
            rtt_ms: 80,
            running,
        };
        assert!(lengths.iter().all(|&l| schedule.timeout_chance(l) == 0.0));
    }

    #[test]
    fn a_function_risk_from_its_streams() {
        let e = Exposure {
            log_group: "/aws/lambda/orders".into(),
            log_stream: "s".into(),
            span_ms: 3_600_000,
            freezes: vec![500, 1_500, 30_000],
            interval_ms: Some(5_000),
            ack_timeout_ms: Some(1_000),
            round_trips: vec![40, 50, 60],
            pings_in_flight_at_freeze: 2,
            freeze_timeouts: 1,
            min_margin_ms: Some(120),
        };
        let r = Risk::of([&e]).unwrap();
        assert_eq!(r.freezes, 3);
        assert_eq!(r.longest_freeze_ms, 30_000);
        assert_eq!(r.freezes_over_interval, 1);
        assert_eq!(r.round_trip_ms, Some(50));
        assert!((r.freezes_per_day - 72.0).abs() < 1e-9);
        // Two of the three freezes outlast T: 50 / (50 + ρ 5000) each,
        // ρ = 1 - 32 s frozen of the hour.
        let running = 1.0 - 32_000.0 / 3_600_000.0;
        let expected = 2.0 * 50.0 / (50.0 + running * 5_000.0) / 3.0 * 72.0;
        assert!((r.expected_per_day.unwrap() - expected).abs() < 1e-9);
        let text = r.explain();
        assert!(text.contains("120 ms to spare"), "{text}");
        assert!(text.contains("30000 ms"), "{text}");
    }
}
