//! Crash points for the crash harness (`tests/crash.rs`).
//!
//! When `MARGINGUARD_CRASH_AT` names a point, the process announces it on stderr
//! (`FAILPOINT <name>`) and stops there, so the harness can SIGKILL it at exactly that step of
//! a rescue. Unset — always, outside that harness — a point costs one cached comparison.

use std::sync::OnceLock;
use std::time::Duration;

pub const ENV: &str = "MARGINGUARD_CRASH_AT";

/// Just before the intent row is written.
pub const BEFORE_INTENT: &str = "before_intent";
/// The intent is durable; the transfer call has not been made.
pub const AFTER_INTENT: &str = "after_intent";
/// The venue answered the transfer call; the answer is not recorded yet.
pub const AFTER_RESPONSE: &str = "after_response";
/// The venue says the transfer settled; the journal does not know yet.
pub const DURING_VERIFICATION: &str = "during_verification";

pub const ALL: [&str; 4] = [
    BEFORE_INTENT,
    AFTER_INTENT,
    AFTER_RESPONSE,
    DURING_VERIFICATION,
];

fn armed() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT
        .get_or_init(|| std::env::var(ENV).ok().filter(|p| !p.is_empty()))
        .as_deref()
}

/// Stops the process here if the harness armed this point.
pub fn hit(point: &str) {
    if armed() == Some(point) {
        eprintln!("FAILPOINT {point}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
