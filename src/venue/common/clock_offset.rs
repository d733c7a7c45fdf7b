//! The venue's clock as seen from here: the offset `server − (t_send + t_recv) / 2`, measured
//! against the venue's server-time endpoint and measured again once it is a minute old.
//!
//! Each adapter calls its own server-time endpoint and reads its own answer; this holds the
//! arithmetic, the last measurement and its age. Signed timestamps use `server_now_ms`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::time::Timestamp;

/// How old the offset may get before it is measured again.
pub const OFFSET_MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    /// Server minus local, ms.
    pub offset_ms: i64,
    pub round_trip: Duration,
}

impl ClockOffset {
    /// The pre-flight line about the clock, as `check` prints it: the skew against `venue`,
    /// the venue's own limit when it has one, and a nudge to fix NTP past `fix_above_ms`.
    pub fn describe(&self, venue: &str, limit: Option<&str>, fix_above_ms: i64) -> String {
        let skew = if self.offset_ms >= 0 {
            format!("local clock {} ms behind {venue}", self.offset_ms)
        } else {
            format!("local clock {} ms ahead of {venue}", -self.offset_ms)
        };
        let limit = limit.map(|l| format!("; {l}")).unwrap_or_default();
        let fix = if self.offset_ms.abs() > fix_above_ms {
            format!("; more than {} s off: fix NTP", fix_above_ms / 1000)
        } else {
            String::new()
        };
        format!(
            "clock: {skew} (round trip {} ms; timestamps are corrected{limit}{fix})",
            self.round_trip.as_millis()
        )
    }
}

/// A measurement under way: taken just before the server-time request is sent.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    sent_ms: i64,
    started: Instant,
}

/// A measurement whose answer has arrived (its server time not yet read).
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    sent_ms: i64,
    received_ms: i64,
    round_trip: Duration,
}

/// The local clock and the last measured offset from it to the venue's.
pub struct ServerClock {
    clock: Clock,
    last: Mutex<Option<(ClockOffset, Instant)>>,
}

impl ServerClock {
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            last: Mutex::new(None),
        }
    }

    /// The local clock (the engine's time domain).
    pub fn local_now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The last measured offset, if any.
    pub fn offset(&self) -> Option<ClockOffset> {
        self.last.lock().expect("offset lock").map(|(o, _)| o)
    }

    /// The last measured offset in ms, 0 before the first measurement.
    pub fn offset_ms(&self) -> i64 {
        self.offset().map(|o| o.offset_ms).unwrap_or(0)
    }

    /// Local time corrected by the measured offset, in server milliseconds.
    pub fn server_now_ms(&self) -> i64 {
        self.clock.now().as_millis() + self.offset_ms()
    }

    /// Whether an offset was measured less than `OFFSET_MAX_AGE` ago.
    pub fn is_fresh(&self) -> bool {
        matches!(*self.last.lock().expect("offset lock"),
            Some((_, at)) if at.elapsed() < OFFSET_MAX_AGE)
    }

    /// Call just before sending the server-time request.
    pub fn probe(&self) -> Probe {
        Probe {
            sent_ms: self.clock.now().as_millis(),
            started: Instant::now(),
        }
    }

    /// Call as soon as the server-time answer has arrived, before reading it.
    pub fn answered(&self, probe: Probe) -> Answered {
        let round_trip = probe.started.elapsed();
        Answered {
            sent_ms: probe.sent_ms,
            received_ms: self.clock.now().as_millis(),
            round_trip,
        }
    }

    /// Records the offset from the server's time in that answer, and returns it.
    pub fn record(&self, answered: Answered, server_ms: i64) -> ClockOffset {
        let offset = ClockOffset {
            offset_ms: server_ms - (answered.sent_ms + answered.received_ms) / 2,
            round_trip: answered.round_trip,
        };
        *self.last.lock().expect("offset lock") = Some((offset, Instant::now()));
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_taken_at_the_midpoint_and_kept_fresh_for_a_minute() {
        let time = ServerClock::new(Clock::Wall);
        assert_eq!(
            (time.offset(), time.offset_ms(), time.is_fresh()),
            (None, 0, false)
        );
        let answered = Answered {
            sent_ms: 1_000,
            received_ms: 1_200,
            round_trip: Duration::from_millis(200),
        };
        let offset = time.record(answered, 5_100);
        assert_eq!(offset.offset_ms, 4_000);
        assert_eq!(time.offset(), Some(offset));
        assert!(time.is_fresh());
        // Two readings of the wall clock: the second may be a millisecond later.
        let drift = time.server_now_ms() - time.local_now().as_millis();
        assert!((3_999..=4_000).contains(&drift), "{drift}");
    }
}

#[cfg(test)]
mod describe_tests {
    use super::*;

    #[test]
    fn the_clock_line_names_the_skew_the_limit_and_the_fix() {
        let ahead = ClockOffset {
            offset_ms: -6_200,
            round_trip: Duration::from_millis(40),
        };
        assert_eq!(
            ahead.describe("OKX", Some("OKX refuses more than 30 s"), 5_000),
            "clock: local clock 6200 ms ahead of OKX (round trip 40 ms; timestamps are corrected; OKX refuses more than 30 s; more than 5 s off: fix NTP)"
        );
        let behind = ClockOffset {
            offset_ms: 12,
            round_trip: Duration::from_millis(3),
        };
        assert_eq!(
            behind.describe("Binance", None, 1_000),
            "clock: local clock 12 ms behind Binance (round trip 3 ms; timestamps are corrected)"
        );
    }
}
