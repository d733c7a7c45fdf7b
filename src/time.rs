//! Instants as Unix milliseconds. The core receives them as values and never reads a clock.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// How long after `earlier` this is; zero when it is not after it.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// `HH:MM` of the UTC day, for compact timelines.
    pub fn hh_mm(self) -> String {
        let (_, h, m, _) = self.civil();
        format!("{h:02}:{m:02}")
    }

    /// `HH:MM:SS` of the UTC day.
    pub fn hh_mm_ss(self) -> String {
        let (_, h, m, s) = self.civil();
        format!("{h:02}:{m:02}:{s:02}")
    }

    /// `YYYY-MM-DD` (UTC).
    pub fn date(self) -> String {
        let ((y, mo, d), ..) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}")
    }

    fn civil(self) -> ((i64, u32, u32), i64, i64, i64) {
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        (
            civil_from_days(days),
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60,
        )
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, UTC).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis(rhs)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis(rhs)))
    }
}

/// A duration in ms, saturated: `as i64` would keep only the low bits of a huge one, which can
/// come out negative and move an instant the wrong way.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.rem_euclid(1000);
        write!(f, "{}T{}.{ms:03}Z", self.date(), self.hh_mm_ss())
    }
}

/// A well-mixed 64-bit value from `x` (splitmix64), for jitter that replays identically.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_a_known_instant() {
        // 1722816000000 is 2024-08-05T00:00:00Z (first row of BTCUSDT-1m-2024-08-05.csv)
        let t = Timestamp(1_722_816_000_000 + 6 * 3_600_000 + 24 * 60_000);
        assert_eq!(t.to_string(), "2024-08-05T06:24:00.000Z");
        assert_eq!(t.hh_mm(), "06:24");
    }

    #[test]
    fn a_huge_duration_saturates_instead_of_wrapping() {
        // 2^64 ms: `as i64` kept the low 64 bits, 0, and the instant did not move.
        let huge = Duration::from_millis(u64::MAX) + Duration::from_millis(1);
        assert_eq!(Timestamp(0) + huge, Timestamp(i64::MAX));
        assert_eq!(Timestamp(0) - huge, Timestamp(-i64::MAX));
    }

    #[test]
    fn since_never_goes_negative() {
        assert_eq!(Timestamp(5).since(Timestamp(10)), Duration::ZERO);
        assert_eq!(Timestamp(10).since(Timestamp(5)), Duration::from_millis(5));
    }
}
