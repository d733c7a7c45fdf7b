//! The one place that reads time.
//!
//! Why: the engine must replay a crash day in milliseconds under the simulator and must let
//! tests control time without sleeping, while a live daemon uses the wall clock. Everything
//! that needs "now" or a wait takes a `Clock`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::time::Timestamp;

#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock; waits are real tokio sleeps.
    Wall,
    /// Virtual time that jumps to whatever instant is waited for. One per simulated account:
    /// simulated accounts share nothing, so each can run as fast as it computes, and a run
    /// replays identically.
    Virtual {
        now: Arc<Mutex<Timestamp>>,
        /// Simulated seconds per wall-clock second, when a replay should be watchable;
        /// `None` replays as fast as it computes.
        speed: Option<u32>,
    },
}

impl Clock {
    pub fn virtual_at(start: Timestamp) -> Self {
        Self::paced_at(start, None)
    }

    pub fn paced_at(start: Timestamp, speed: Option<u32>) -> Self {
        Clock::Virtual {
            now: Arc::new(Mutex::new(start)),
            speed: speed.filter(|s| *s > 0),
        }
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Wall => {
                let since_epoch = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO);
                Timestamp(since_epoch.as_millis() as i64)
            }
            Clock::Virtual { now, .. } => *now.lock().expect("clock lock"),
        }
    }

    pub async fn sleep_until(&self, instant: Timestamp) {
        match self {
            Clock::Wall => {
                let wait = instant.since(self.now());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            Clock::Virtual { now, speed } => {
                let jump = {
                    let mut now = now.lock().expect("clock lock");
                    let jump = instant.since(*now);
                    if instant > *now {
                        *now = instant;
                    }
                    jump
                };
                match speed {
                    Some(speed) => tokio::time::sleep(jump / *speed).await,
                    // Let shutdown and other tasks be seen between virtual instants.
                    None => tokio::task::yield_now().await,
                }
            }
        }
    }

    pub async fn sleep(&self, duration: Duration) {
        self.sleep_until(self.now() + duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_time_jumps_forward_only() {
        let clock = Clock::virtual_at(Timestamp(1_000));
        clock.sleep_until(Timestamp(61_000)).await;
        assert_eq!(clock.now(), Timestamp(61_000));
        clock.sleep_until(Timestamp(5_000)).await;
        assert_eq!(clock.now(), Timestamp(61_000));
        clock.sleep(Duration::from_secs(1)).await;
        assert_eq!(clock.now(), Timestamp(62_000));
    }

    #[tokio::test(start_paused = true)]
    async fn paced_time_waits_a_fraction_of_the_jump() {
        let clock = Clock::paced_at(Timestamp(0), Some(60));
        let started = tokio::time::Instant::now();
        clock.sleep(Duration::from_secs(600)).await;
        assert_eq!(clock.now(), Timestamp(600_000));
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }
}
