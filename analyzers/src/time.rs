//! Time without a clock: log timestamps are milliseconds since the Unix
//! epoch, the contract prints them as RFC 3339, and thresholds are written
//! as durations (`350s`, `6h`). `jiff` does the calendar and the parsing.

use jiff::{Span, SpanTotal, Timestamp, Unit};

/// Formats ms since the Unix epoch as RFC 3339 UTC with milliseconds
/// (clamped to the years -9999..=9999).
///
/// ```
/// assert_eq!(thawtrace_analyzers::time::rfc3339(1795853233137), "2026-11-28T08:07:13.137Z");
/// assert_eq!(thawtrace_analyzers::time::rfc3339(-1), "1969-12-31T23:59:59.999Z");
/// ```
pub fn rfc3339(ms: i64) -> String {
    let t = Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    format!("{t:.3}")
}

/// Parses an RFC 3339 timestamp (`2026-11-28T08:07:13.137Z`, any offset
/// such as `+01:00`) into ms since the Unix epoch (finer digits dropped).
///
/// ```
/// use thawtrace_analyzers::time::{parse_rfc3339, rfc3339};
/// let ms = parse_rfc3339("2026-11-28T08:07:13.137Z").unwrap();
/// assert_eq!(rfc3339(ms), "2026-11-28T08:07:13.137Z");
/// assert_eq!(parse_rfc3339("2026-11-28T09:07:13.137+01:00"), Some(ms));
/// assert_eq!(parse_rfc3339("yesterday"), None);
/// assert_eq!(parse_rfc3339("2026-11-28T08:07:13"), None); // no offset: no instant
/// ```
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    s.parse::<Timestamp>().ok().map(Timestamp::as_millisecond)
}

/// Parses a duration into ms: `500ms`, `45s`, `30m`, `2h`, `1d`,
/// `1h 30m`, `2 hours` (a day is 24 hours; months and years, whose length
/// varies, are refused, as are negative durations).
///
/// ```
/// use thawtrace_analyzers::time::parse_duration_ms;
/// assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
/// assert_eq!(parse_duration_ms("1d"), Ok(86_400_000));
/// assert_eq!(parse_duration_ms("1h 30m"), Ok(5_400_000));
/// assert!(parse_duration_ms("soon").is_err());
/// assert!(parse_duration_ms("-5s").is_err());
/// assert!(parse_duration_ms("1mo").is_err());
/// ```
///
/// # Errors
///
/// Text that is not such a duration, naming it.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "{:?} is not a duration like 30m or 2h (units: ms, s, m, h, d, w)",
            s.trim()
        )
    };
    let span: Span = s.trim().parse().map_err(|_| bad())?;
    let ms = span
        .total(SpanTotal::from(Unit::Millisecond).days_are_24_hours())
        .map_err(|_| bad())?;
    if ms < 0.0 {
        return Err(format!(
            "{:?} is negative: a duration is 0 or more",
            s.trim()
        ));
    }
    // A span's total is below 2^63 ms (jiff bounds spans), and whole
    // milliseconds are what the thresholds hold.
    Ok(ms.round() as i64)
}

/// Formats ms as the shortest duration [`parse_duration_ms`] reads back
/// exactly (`350s`, `6h`, `1500ms`): how defaults are shown.
///
/// ```
/// use thawtrace_analyzers::time::{format_duration_ms, parse_duration_ms};
/// assert_eq!(format_duration_ms(350_000), "350s");
/// assert_eq!(format_duration_ms(6 * 3_600_000), "6h");
/// assert_eq!(parse_duration_ms(&format_duration_ms(1_500)), Ok(1_500));
/// ```
pub fn format_duration_ms(ms: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    UNITS
        .iter()
        .find(|(scale, _)| ms != 0 && ms % scale == 0)
        .map_or_else(
            || format!("{ms}ms"),
            |(scale, unit)| format!("{}{unit}", ms / scale),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for ms in [0, 951_782_400_000, 1_795_853_233_137, 4_102_444_799_999, -1] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{ms}");
        }
        for ms in [1, 999, 1_000, 350_000, 3_600_000, 6 * 3_600_000, 86_400_000] {
            assert_eq!(parse_duration_ms(&format_duration_ms(ms)), Ok(ms), "{ms}");
        }
    }
}
