//! RFC 3339 timestamps, as challenges (`expires`), receipts (`timestamp`) and
//! sessions (`expiresAt`) carry them.
//!
//! The runtime always emits UTC with second precision and a `Z` suffix
//! (`2026-01-29T12:05:00Z`), the form in the conformance vectors. Parsing
//! accepts any RFC 3339 date-time (fractional seconds, `z`, numeric offsets).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// Seconds since the Unix epoch (UTC). The runtime's unit of wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

/// A date-time string that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not an RFC 3339 date-time: {0:?}")]
pub struct TimestampError(pub String);

impl Timestamp {
    /// The timestamp `secs` seconds after the Unix epoch.
    pub const fn from_unix(secs: u64) -> Self {
        Self(secs)
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> u64 {
        self.0
    }

    /// The current wall-clock time, truncated to whole seconds.
    pub fn now() -> Self {
        Self(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }

    /// This timestamp moved forward by `duration` (saturating).
    pub fn plus(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration.as_secs()))
    }

    /// Time remaining from `self` until `later`, zero if `later` is not later.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_secs(later.0.saturating_sub(self.0))
    }

    /// The latest instant RFC 3339 can write: 9999-12-31T23:59:59Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799);

    /// Formats as `YYYY-MM-DDTHH:MM:SSZ` into a fixed buffer (no allocation).
    /// Instants after [`Timestamp::MAX`] are written as `MAX`.
    pub fn to_rfc3339_bytes(self) -> [u8; 20] {
        let secs = self.0.min(Self::MAX.0);
        let days = (secs / 86_400) as i64;
        let secs_of_day = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        let (h, m, s) = (
            secs_of_day / 3600,
            (secs_of_day % 3600) / 60,
            secs_of_day % 60,
        );
        let mut out = *b"0000-00-00T00:00:00Z";
        let year = year.clamp(0, 9999) as u64;
        write_digits(&mut out[0..4], year);
        write_digits(&mut out[5..7], u64::from(month));
        write_digits(&mut out[8..10], u64::from(day));
        write_digits(&mut out[11..13], h);
        write_digits(&mut out[14..16], m);
        write_digits(&mut out[17..19], s);
        out
    }

    /// Formats as `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn to_rfc3339(self) -> String {
        let bytes = self.to_rfc3339_bytes();
        // The buffer only ever holds ASCII digits and separators.
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Parses an RFC 3339 date-time. Fractional seconds are truncated;
    /// numeric offsets are applied. Instants before 1970 or after
    /// [`Timestamp::MAX`] (a year-9999 time with a negative offset) are
    /// rejected.
    ///
    /// ```
    /// use mpp_runtime::wire::Timestamp;
    /// let t = Timestamp::parse_rfc3339("2025-01-06T12:00:00Z").unwrap();
    /// assert_eq!(t.unix(), 1_736_164_800);
    /// assert_eq!(Timestamp::parse_rfc3339("2025-01-06T13:00:00.250+01:00").unwrap(), t);
    /// ```
    pub fn parse_rfc3339(input: &str) -> Result<Self, TimestampError> {
        parse(input.as_bytes()).ok_or_else(|| TimestampError(truncate(input)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_rfc3339_bytes();
        f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
}

fn truncate(input: &str) -> String {
    input.chars().take(64).collect()
}

fn write_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn parse(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || b.len() > 64 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    // A leap second is folded into the next second, as most clocks do.
    let days = days_from_civil(i64::from(year), month, day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = local - offset_secs;
    u64::try_from(utc)
        .ok()
        .filter(|&secs| secs <= Timestamp::MAX.0)
        .map(Timestamp)
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date for a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Timestamp::from_unix(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(1_736_164_800).to_rfc3339(),
            "2025-01-06T12:00:00Z"
        );
        assert_eq!(
            Timestamp::from_unix(951_782_400).to_rfc3339(),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn round_trips_a_range_of_days() {
        for days in (0..200_000u64).step_by(37) {
            let t = Timestamp::from_unix(days * 86_400 + days % 86_400);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
        }
    }

    #[test]
    fn rejects_invalid_dates() {
        for bad in [
            "",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00+0100",
            "1969-12-31T23:59:59Z",
            "２０２５-01-01T00:00:00Z",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    /// A year-9999 time with a negative offset is past what RFC 3339 can
    /// write: formatting it back gave another instant (found while fuzzing
    /// `Payment-Session` round trips).
    #[test]
    fn instants_past_year_9999_are_refused_and_formatting_saturates() {
        assert_eq!(
            Timestamp::parse_rfc3339("9999-12-31T23:59:59Z").unwrap(),
            Timestamp::MAX
        );
        assert!(Timestamp::parse_rfc3339("9999-12-31T23:59:59-00:01").is_err());
        assert!(Timestamp::parse_rfc3339("9999-12-31T23:00:00-23:59").is_err());
        assert_eq!(
            Timestamp::from_unix(u64::MAX).to_rfc3339(),
            "9999-12-31T23:59:59Z"
        );
        let near = Timestamp::parse_rfc3339("9999-12-31T23:59:59+01:00").unwrap();
        assert_eq!(Timestamp::parse_rfc3339(&near.to_rfc3339()).unwrap(), near);
    }

    #[test]
    fn applies_offsets() {
        let utc = Timestamp::parse_rfc3339("2026-01-29T12:00:00Z").unwrap();
        let plus = Timestamp::parse_rfc3339("2026-01-29T14:30:00+02:30").unwrap();
        let minus = Timestamp::parse_rfc3339("2026-01-29T07:00:00.999-05:00").unwrap();
        assert_eq!(utc, plus);
        assert_eq!(utc, minus);
    }
}
