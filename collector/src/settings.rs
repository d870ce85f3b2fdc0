//! The settings the CLI (flags) and the Lambda collector (environment)
//! share, read the same way by both. Every default has one home: the
//! analyzers' thresholds in [`Config`]'s constants, the input limits in
//! [`Limits`]'s; the flags' defaults (and `--help`) and the environment's
//! fallbacks are taken from there.

use std::fmt;
use std::str::FromStr;

use thawtrace_analyzers::time::{format_duration_ms, parse_duration_ms};
use thawtrace_analyzers::{Config, IdempotencyKey};

use crate::input::Limits;

/// A duration given as `350s`, `6h`, `1h 30m`, held in ms, shown the same
/// way (`--help`'s defaults).
///
/// ```
/// use thawtrace::settings::Millis;
/// assert_eq!("6h".parse::<Millis>(), Ok(Millis(21_600_000)));
/// assert_eq!(Millis(350_000).to_string(), "350s");
/// assert!("soon".parse::<Millis>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Millis(pub i64);

impl FromStr for Millis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration_ms(s).map(Millis)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration_ms(self.0))
    }
}

/// A share from 1 to 99 percent, as `75%` or `75`.
///
/// ```
/// use thawtrace::settings::percent;
/// assert_eq!(percent("75%"), Ok(75));
/// assert_eq!(percent(" 80 "), Ok(80));
/// assert!(percent("100%").is_err() && percent("most").is_err());
/// ```
///
/// # Errors
///
/// Anything else, saying what was expected.
pub fn percent(s: &str) -> Result<u8, String> {
    s.trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .ok()
        .filter(|p| (1..=99).contains(p))
        .ok_or_else(|| format!("{s:?} is not a percentage from 1% to 99%"))
}

/// The thresholds of the neighbouring failures: AWS's figures by default.
/// Flags for the CLI; [`Thresholds::from_env`] for the Lambda.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// A connection idle this long before its next use failed is a
    /// nat_idle_reset (the NAT gateway's idle timeout).
    #[arg(long, value_name = "DURATION", default_value_t = Millis(Config::NAT_IDLE_TIMEOUT_MS))]
    pub nat_idle_timeout: Millis,
    /// Connect timeouts of many environments within this window are one
    /// connect_stall.
    #[arg(long, value_name = "DURATION", default_value_t = Millis(Config::CONNECT_STALL_WINDOW_MS))]
    pub connect_stall_window: Millis,
    /// A connection idle at least this share (percent) of the NAT idle
    /// timeout whose next use succeeded is a nat_idle_near_miss.
    #[arg(long = "nat-near-miss", value_name = "PERCENT", default_value = "75%", value_parser = percent)]
    pub nat_near_miss_percent: u8,
    /// A connect that took at least this long and went through is a
    /// connect_slow (a warning; 1 s: its first SYN was lost).
    #[arg(long, value_name = "DURATION", default_value_t = Millis(Config::CONNECT_SLOW_MS))]
    pub connect_slow: Millis,
    /// How many environments (log streams) make a connect_stall.
    #[arg(long, value_name = "N", default_value_t = Config::CONNECT_STALL_MIN_ENVS as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_stall_min_envs: u32,
    /// How long request IDs and idempotency keys are remembered to find a
    /// duplicate_invocation.
    #[arg(long, value_name = "DURATION", default_value_t = Millis(Config::DUPLICATE_WINDOW_MS))]
    pub duplicate_window: Millis,
    /// A JSON path in logged events whose value identifies an event
    /// (repeatable; `none` for no key). Default: SQS's messageId.
    #[arg(
        long = "idempotency-key",
        value_name = "PATH",
        default_value = Config::IDEMPOTENCY_KEY
    )]
    pub idempotency_keys: Vec<String>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            nat_idle_timeout: Millis(Config::NAT_IDLE_TIMEOUT_MS),
            nat_near_miss_percent: Config::NAT_NEAR_MISS_PERCENT,
            connect_stall_window: Millis(Config::CONNECT_STALL_WINDOW_MS),
            connect_slow: Millis(Config::CONNECT_SLOW_MS),
            connect_stall_min_envs: Config::CONNECT_STALL_MIN_ENVS as u32,
            duplicate_window: Millis(Config::DUPLICATE_WINDOW_MS),
            idempotency_keys: vec![Config::IDEMPOTENCY_KEY.to_owned()],
        }
    }
}

impl Thresholds {
    /// The thresholds from the environment, named as the template's
    /// parameters set them: `THAWTRACE_NAT_IDLE_TIMEOUT`,
    /// `THAWTRACE_NAT_NEAR_MISS_PERCENT` (`75`),
    /// `THAWTRACE_CONNECT_STALL_WINDOW`, `THAWTRACE_CONNECT_SLOW`,
    /// `THAWTRACE_DUPLICATE_WINDOW` (durations like `350s`), `THAWTRACE_CONNECT_STALL_MIN_ENVS` (a count)
    /// and `THAWTRACE_IDEMPOTENCY_KEYS` (comma-separated JSON paths, or
    /// `none`); the defaults for what is unset or blank. `var` reads one
    /// variable (`std::env::var`, or a map in tests).
    ///
    /// ```
    /// use thawtrace::settings::{Millis, Thresholds};
    /// let t = Thresholds::from_env(|k| (k == "THAWTRACE_NAT_IDLE_TIMEOUT").then(|| "6s".into())).unwrap();
    /// assert_eq!(t.nat_idle_timeout, Millis(6_000));
    /// assert_eq!(t.connect_stall_min_envs, Thresholds::default().connect_stall_min_envs);
    /// let near = Thresholds::from_env(|k| (k == "THAWTRACE_NAT_NEAR_MISS_PERCENT").then(|| "80".into())).unwrap();
    /// assert_eq!(near.nat_near_miss_percent, 80);
    /// let bad = Thresholds::from_env(|k| (k == "THAWTRACE_CONNECT_STALL_MIN_ENVS").then(|| "0".into()));
    /// assert!(bad.unwrap_err().starts_with("THAWTRACE_CONNECT_STALL_MIN_ENVS"));
    /// ```
    ///
    /// # Errors
    ///
    /// A value that does not parse, naming its variable.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Thresholds, String> {
        let mut t = Thresholds::default();
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        for (k, into) in [
            ("THAWTRACE_NAT_IDLE_TIMEOUT", &mut t.nat_idle_timeout),
            (
                "THAWTRACE_CONNECT_STALL_WINDOW",
                &mut t.connect_stall_window,
            ),
            ("THAWTRACE_CONNECT_SLOW", &mut t.connect_slow),
            ("THAWTRACE_DUPLICATE_WINDOW", &mut t.duplicate_window),
        ] {
            if let Some(v) = var(k) {
                *into = v.parse().map_err(|e| format!("{k}: {e}"))?;
            }
        }
        if let Some(v) = var("THAWTRACE_CONNECT_STALL_MIN_ENVS") {
            t.connect_stall_min_envs =
                v.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                    format!("THAWTRACE_CONNECT_STALL_MIN_ENVS: {v:?} is not a count of 1 or more")
                })?;
        }
        if let Some(v) = var("THAWTRACE_NAT_NEAR_MISS_PERCENT") {
            t.nat_near_miss_percent = v
                .trim()
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|p| (1..=99).contains(p))
                .ok_or_else(|| {
                    format!(
                        "THAWTRACE_NAT_NEAR_MISS_PERCENT: {v:?} is not a percentage from 1 to 99"
                    )
                })?;
        }
        if let Some(v) = var("THAWTRACE_IDEMPOTENCY_KEYS") {
            t.idempotency_keys = v.split(',').map(|k| k.trim().to_owned()).collect();
        }
        Ok(t)
    }

    /// The analyzers' settings with these thresholds.
    ///
    /// # Errors
    ///
    /// An idempotency key that is not a JSON path.
    pub fn config(&self) -> Result<Config, String> {
        let keys = self
            .idempotency_keys
            .iter()
            .filter(|k| k.as_str() != "none")
            .map(|k| IdempotencyKey::new(k))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            nat_idle_timeout_ms: self.nat_idle_timeout.0,
            nat_near_miss_percent: self.nat_near_miss_percent,
            connect_stall_window_ms: self.connect_stall_window.0,
            connect_stall_min_envs: self.connect_stall_min_envs as usize,
            connect_slow_ms: self.connect_slow.0,
            duplicate_window_ms: self.duplicate_window.0,
            idempotency_keys: keys.into(),
            ..Config::default()
        })
    }
}

/// The input limits from the environment: `THAWTRACE_MAX_DECOMPRESSED_MB`
/// and `THAWTRACE_MAX_EVENT_KB`, the defaults for what is unset.
///
/// ```
/// use thawtrace::input::Limits;
/// let l = thawtrace::settings::limits_from_env(|k| (k == "THAWTRACE_MAX_EVENT_KB").then(|| "256".into())).unwrap();
/// assert_eq!(l.max_event_bytes, 256 << 10);
/// assert_eq!(l.max_decompressed_bytes, Limits::default().max_decompressed_bytes);
/// ```
///
/// # Errors
///
/// A value that is not a size of 1 or more, naming its variable.
pub fn limits_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Limits, String> {
    let size = |k: &str, default: usize, shift: u32| -> Result<usize, String> {
        match var(k).filter(|v| !v.trim().is_empty()) {
            None => Ok(default << shift),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .and_then(|n| n.checked_shl(shift).filter(|b| b >> shift == n))
                .ok_or_else(|| format!("{k}: {v:?} is not a size of 1 or more")),
        }
    };
    Ok(Limits {
        max_decompressed_bytes: size("THAWTRACE_MAX_DECOMPRESSED_MB", Limits::DECOMPRESSED_MB, 20)?,
        max_event_bytes: size("THAWTRACE_MAX_EVENT_KB", Limits::EVENT_KB, 10)?,
        ..Limits::default()
    })
}

/// How far back the Lambda's lookback reaches: `THAWTRACE_LOOKBACK_WINDOW`
/// (a duration), the lookback's default when unset or blank.
///
/// ```
/// use thawtrace::lookback::LookbackLimits;
/// use thawtrace::settings::lookback_window_from_env;
/// assert_eq!(lookback_window_from_env(|_| None), Ok(LookbackLimits::default().window_ms));
/// assert_eq!(lookback_window_from_env(|_| Some(" ".into())), Ok(LookbackLimits::default().window_ms));
/// assert_eq!(lookback_window_from_env(|_| Some("5m".into())), Ok(300_000));
/// assert!(lookback_window_from_env(|_| Some("soon".into())).unwrap_err().starts_with("THAWTRACE_LOOKBACK_WINDOW"));
/// ```
///
/// # Errors
///
/// A value that is not a duration, naming the variable.
pub fn lookback_window_from_env(var: impl Fn(&str) -> Option<String>) -> Result<i64, String> {
    const K: &str = "THAWTRACE_LOOKBACK_WINDOW";
    match var(K).filter(|v| !v.trim().is_empty()) {
        Some(v) => parse_duration_ms(&v).map_err(|e| format!("{K}: {e}")),
        None => Ok(crate::lookback::LookbackLimits::default().window_ms),
    }
}

/// The DynamoDB table the collectors share their cross-stream state in:
/// `THAWTRACE_STATE_TABLE`; `None` (state kept in the process) when unset
/// or blank.
///
/// ```
/// use thawtrace::settings::state_table_from_env;
/// assert_eq!(state_table_from_env(|_| None), None);
/// assert_eq!(state_table_from_env(|_| Some(" ".into())), None);
/// assert_eq!(state_table_from_env(|_| Some("thawtrace-state".into())).as_deref(), Some("thawtrace-state"));
/// ```
pub fn state_table_from_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    var("THAWTRACE_STATE_TABLE")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The SQS queue that keeps the spans the OTLP endpoint did not take:
/// `THAWTRACE_DEAD_LETTER_QUEUE_URL`; `None` (such spans are counted and
/// logged as lost) when unset or blank.
///
/// ```
/// use thawtrace::settings::dead_letter_queue_from_env;
/// assert_eq!(dead_letter_queue_from_env(|_| None), None);
/// assert_eq!(dead_letter_queue_from_env(|_| Some("https://sqs.eu-west-1.amazonaws.com/1/q".into())).as_deref(), Some("https://sqs.eu-west-1.amazonaws.com/1/q"));
/// ```
pub fn dead_letter_queue_from_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    var("THAWTRACE_DEAD_LETTER_QUEUE_URL")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}
