//! What the engine reports as it goes, for timelines and tests. Logs carry the same facts.

use std::sync::Arc;

use crate::core::{Action, Decision, RescueState};
use crate::engine::StopReason;
use crate::money::Usdt;
use crate::time::Timestamp;
use crate::venue::{TransferRequest, VenueSnapshot};

#[derive(Debug, Clone)]
pub struct Event {
    pub account: Arc<str>,
    pub at: Timestamp,
    pub kind: EventKind,
}

#[derive(Debug, Clone)]
pub enum EventKind {
    Observed {
        decision: Box<Decision>,
        snapshot: Box<VenueSnapshot>,
        /// What the journal says was spent and is in flight, as the decision saw it.
        rescues: RescueState,
        /// From the tick's start to the decision, snapshot fetch included (the account's
        /// clock: real time live, simulated time under the simulator).
        latency: std::time::Duration,
    },
    TransferSent {
        request: TransferRequest,
        action: Action,
    },
    /// The transfer call failed: refused (`unknown == false`) or outcome unknown.
    TransferNotConfirmed {
        request: TransferRequest,
        error: String,
        unknown: bool,
    },
    TransferLanded {
        request: TransferRequest,
        wallet_rise: Usdt,
        verified: bool,
    },
    TransferFailed {
        request: TransferRequest,
        reason: String,
    },
    NoDecision {
        reason: String,
    },
    /// An open transfer the venue does not show stopped blocking rescues; it stays spent.
    TransferLapsed {
        request: TransferRequest,
    },
    /// No usable snapshot for `BLIND_ALERT_AFTER` or longer: the account is not guarded.
    Blind {
        since: Timestamp,
        failures: u32,
        reason: String,
    },
    /// Usable snapshots again after a `Blind` event.
    Recovered {
        blind_for: std::time::Duration,
        failures: u32,
    },
    /// The journal could not be written. `moved_nothing`: it was a rescue's intent, so its
    /// money did not move; otherwise a state change, reconciled from the venue after a restart.
    JournalWriteFailed {
        error: String,
        moved_nothing: bool,
    },
    /// The venue refused the key for a transfer: this account sends no more transfers.
    TransfersStopped {
        reason: String,
    },
    Stopped(StopReason),
}
