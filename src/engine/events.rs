//! What the engine reports as it goes, for timelines and tests. Logs carry the same facts.

use std::sync::Arc;

use crate::core::{Action, Decision};
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
    Stopped(StopReason),
}
