//! What the Lambda collector calls (the CloudWatch Logs lookback, the
//! state table, the OTLP endpoint, the dead-letter queue), called under a
//! budget and behind a circuit breaker each, so a dependency that is slow
//! or down never makes an invocation slower than its budget.
//!
//! - The budget of an invocation is the time to its deadline
//!   (`Lambda-Runtime-Deadline-Ms`) less [`SAFETY_MARGIN`], at most
//!   `THAWTRACE_DEPENDENCY_BUDGET` ([`DEFAULT_BUDGET`]). The lookback and
//!   the state table have until half of it, the OTLP export until three
//!   quarters, the dead-letter queue the rest ([`CallBudget`]).
//! - A dependency that failed (an error, or no answer within its share) is
//!   skipped for `THAWTRACE_DEPENDENCY_COOLDOWN` ([`DEFAULT_COOLDOWN`]):
//!   the invocations that follow answer at once, with what they have
//!   ([`Breaker`]).

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What is kept back from the deadline for the answer itself.
pub const SAFETY_MARGIN: Duration = Duration::from_millis(500);
/// The largest budget when `THAWTRACE_DEPENDENCY_BUDGET` is unset.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(5);
/// How long a failed dependency is skipped when
/// `THAWTRACE_DEPENDENCY_COOLDOWN` is unset.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// The connect timeout of every client.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// The budget and the cool-down, from the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardSettings {
    /// The largest budget of an invocation.
    pub budget: Duration,
    /// How long a failed dependency is skipped.
    pub cooldown: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            budget: DEFAULT_BUDGET,
            cooldown: DEFAULT_COOLDOWN,
        }
    }
}

impl GuardSettings {
    /// `THAWTRACE_DEPENDENCY_BUDGET` and `THAWTRACE_DEPENDENCY_COOLDOWN`
    /// (durations like `5s`, `500ms`; `0s` for a cool-down turns the
    /// breaker off), the defaults for what is unset or blank.
    ///
    /// ```
    /// use std::time::Duration;
    /// use thawtrace::guard::GuardSettings;
    /// assert_eq!(GuardSettings::from_env(|_| None), Ok(GuardSettings::default()));
    /// let s = GuardSettings::from_env(|k| (k == "THAWTRACE_DEPENDENCY_BUDGET").then(|| "2s".into())).unwrap();
    /// assert_eq!(s.budget, Duration::from_secs(2));
    /// assert!(GuardSettings::from_env(|_| Some("soon".into())).unwrap_err().starts_with("THAWTRACE_DEPENDENCY_BUDGET"));
    /// assert!(GuardSettings::from_env(|k| (k == "THAWTRACE_DEPENDENCY_BUDGET").then(|| "0s".into())).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// A value that is not a duration (or a budget of zero), naming the
    /// variable.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<GuardSettings, String> {
        let duration = |k: &str, default: Duration| -> Result<Duration, String> {
            match var(k).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => thawtrace_analyzers::time::parse_duration_ms(v.trim())
                    .map_err(|e| format!("{k}: {e}"))
                    .and_then(|ms| {
                        u64::try_from(ms)
                            .map(Duration::from_millis)
                            .map_err(|_| format!("{k}: {v:?} is negative"))
                    }),
            }
        };
        let budget = duration("THAWTRACE_DEPENDENCY_BUDGET", DEFAULT_BUDGET)?;
        if budget.is_zero() {
            return Err("THAWTRACE_DEPENDENCY_BUDGET: a budget of zero leaves nothing for the lookback, the state table or the exporter".into());
        }
        Ok(GuardSettings {
            budget,
            cooldown: duration("THAWTRACE_DEPENDENCY_COOLDOWN", DEFAULT_COOLDOWN)?,
        })
    }
}

/// The time an invocation's dependency calls have, from its start.
#[derive(Clone, Copy, Debug)]
pub struct CallBudget {
    start: Instant,
    total: Duration,
}

impl CallBudget {
    /// The budget of an invocation started at `start` with `to_deadline`
    /// left before its deadline (`None`: no deadline known).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use thawtrace::guard::{CallBudget, SAFETY_MARGIN};
    /// let now = Instant::now();
    /// let b = CallBudget::new(now, Some(Duration::from_secs(3)), Duration::from_secs(5));
    /// assert_eq!(b.total(), Duration::from_secs(3) - SAFETY_MARGIN);
    /// assert_eq!(b.lookup_until(), now + b.total() / 2);
    /// let b = CallBudget::new(now, Some(Duration::from_secs(900)), Duration::from_secs(5));
    /// assert_eq!(b.total(), Duration::from_secs(5));
    /// assert_eq!(CallBudget::new(now, Some(Duration::ZERO), Duration::from_secs(5)).total(), Duration::ZERO);
    /// ```
    pub fn new(start: Instant, to_deadline: Option<Duration>, max: Duration) -> CallBudget {
        let total = to_deadline.map_or(max, |d| d.saturating_sub(SAFETY_MARGIN).min(max));
        CallBudget { start, total }
    }

    /// The whole budget.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// Until when the lookback and the state table may be called.
    pub fn lookup_until(&self) -> Instant {
        self.start + self.total / 2
    }

    /// Until when the OTLP export may go on.
    pub fn export_until(&self) -> Instant {
        self.start + self.total * 3 / 4
    }

    /// The end of the budget (the dead-letter queue's share ends here).
    pub fn until(&self) -> Instant {
        self.start + self.total
    }
}

/// Why a dependency gave nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Skipped: it failed less than the cool-down ago.
    Skipped {
        /// The dependency.
        name: &'static str,
        /// What is left of the cool-down.
        cooldown_left: Duration,
    },
    /// No answer within the invocation's budget.
    TimedOut {
        /// The dependency.
        name: &'static str,
        /// How long it was given.
        after: Duration,
    },
    /// It answered with an error.
    Failed {
        /// The dependency.
        name: &'static str,
        /// The error, in words.
        error: String,
    },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Skipped {
                name,
                cooldown_left,
            } => write!(
                f,
                "{name} skipped: it failed recently; tried again in {} ms (THAWTRACE_DEPENDENCY_COOLDOWN)",
                cooldown_left.as_millis()
            ),
            Unavailable::TimedOut { name, after } => write!(
                f,
                "{name} did not answer within {} ms of the invocation's budget (THAWTRACE_DEPENDENCY_BUDGET, and the function's timeout)",
                after.as_millis()
            ),
            Unavailable::Failed { name, error } => write!(f, "{name} failed: {error}"),
        }
    }
}

/// A circuit breaker: after a failure, the dependency is skipped for the
/// cool-down, then tried again.
#[derive(Debug)]
pub struct Breaker {
    name: &'static str,
    cooldown: Duration,
    open_until: Mutex<Option<Instant>>,
}

impl Breaker {
    /// A closed breaker for the dependency `name`.
    pub fn new(name: &'static str, cooldown: Duration) -> Breaker {
        Breaker {
            name,
            cooldown,
            open_until: Mutex::new(None),
        }
    }

    /// The dependency's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Calls `call` unless the breaker is open, for no longer than until
    /// `until`; a failure or a timeout opens the breaker, a success closes
    /// it.
    ///
    /// # Errors
    ///
    /// Why nothing came back.
    pub async fn call<T, E: fmt::Display>(
        &self,
        until: Instant,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Unavailable> {
        let now = Instant::now();
        {
            let open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = *open
                && t > now
            {
                return Err(Unavailable::Skipped {
                    name: self.name,
                    cooldown_left: t - now,
                });
            }
        }
        let given = until.saturating_duration_since(now);
        let result = match tokio::time::timeout_at(until.into(), call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Unavailable::Failed {
                name: self.name,
                error: e.to_string(),
            }),
            Err(_) => Err(Unavailable::TimedOut {
                name: self.name,
                after: given,
            }),
        };
        let mut open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
        *open = match result {
            Ok(_) => None,
            Err(_) => Instant::now().checked_add(self.cooldown),
        };
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_opens_the_breaker_for_the_cooldown_then_it_is_tried_again() {
        let b = Breaker::new("thing", Duration::from_millis(200));
        let far = Instant::now() + Duration::from_secs(5);
        let r: Result<(), _> = b.call(far, async { Err("down") }).await;
        assert!(matches!(r, Err(Unavailable::Failed { .. })));
        let mut called = false;
        let r = b
            .call(far, async {
                called = true;
                Ok::<_, String>(())
            })
            .await;
        assert!(matches!(r, Err(Unavailable::Skipped { .. })), "{r:?}");
        assert!(!called);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(b.call(far, async { Ok::<_, String>(7) }).await, Ok(7));
    }

    #[tokio::test]
    async fn a_call_past_its_budget_is_cut_and_opens_the_breaker() {
        let b = Breaker::new("thing", Duration::from_secs(60));
        let start = Instant::now();
        let r = b
            .call(start + Duration::from_millis(100), async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok::<_, String>(())
            })
            .await;
        assert!(matches!(r, Err(Unavailable::TimedOut { .. })), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            b.call(start + Duration::from_secs(5), async {
                Ok::<_, String>(())
            })
            .await,
            Err(Unavailable::Skipped { .. })
        ));
    }

    #[tokio::test]
    async fn a_cooldown_of_zero_never_skips() {
        let b = Breaker::new("thing", Duration::ZERO);
        let far = Instant::now() + Duration::from_secs(5);
        let _ = b.call(far, async { Err::<(), _>("down") }).await;
        assert_eq!(b.call(far, async { Ok::<_, String>(1) }).await, Ok(1));
    }
}
