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
    Virtual(Arc<Mutex<Timestamp>>),
}

impl Clock {
    pub fn virtual_at(start: Timestamp) -> Self {
        Clock::Virtual(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Wall => {
                let since_epoch = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO);
                Timestamp(since_epoch.as_millis() as i64)
            }
            Clock::Virtual(now) => *now.lock().expect("clock lock"),
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
            Clock::Virtual(now) => {
                {
                    let mut now = now.lock().expect("clock lock");
                    if instant > *now {
                        *now = instant;
                    }
                }
                // Let shutdown and other tasks be seen between virtual instants.
                tokio::task::yield_now().await;
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
}
