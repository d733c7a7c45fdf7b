//! The record of rescues an account runner has made: what is in flight, what was spent.
//!
//! Caps, cooldown and "in flight" are computed from here, never from a counter that could
//! drift from what actually happened. (In memory for now; the durable journal replaces it.)

use std::time::Duration;

use crate::core::RescueState;
use crate::money::Usdt;
use crate::time::Timestamp;
use crate::venue::TransferRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Accepted by the venue, not yet seen settled.
    Sent,
    /// The venue's answer never came (timeout, 5xx): may or may not have happened.
    Unknown,
    /// The venue says it settled.
    Settled,
    /// The venue refused it, or reports it failed, or proved it absent: nothing moved.
    NotMoved,
}

#[derive(Debug, Clone)]
pub struct Rescue {
    pub request: TransferRequest,
    pub progress: Progress,
    /// Futures wallet balance when the transfer was sent; it must rise by the amount.
    pub wallet_before: Usdt,
    /// Whether the wallet rise has been checked after settlement.
    pub verified: bool,
}

impl Rescue {
    /// Counted against the caps: everything that may have moved money.
    pub fn counts_as_spent(&self) -> bool {
        self.progress != Progress::NotMoved
    }

    pub fn unresolved(&self) -> bool {
        matches!(self.progress, Progress::Sent | Progress::Unknown)
    }
}

#[derive(Debug, Default)]
pub struct RescueLedger {
    entries: Vec<Rescue>,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl RescueLedger {
    pub fn record(&mut self, request: TransferRequest, progress: Progress, wallet_before: Usdt) {
        self.entries.push(Rescue {
            request,
            progress,
            wallet_before,
            verified: false,
        });
    }

    pub fn entries(&self) -> &[Rescue] {
        &self.entries
    }

    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut Rescue> {
        self.entries.iter_mut()
    }

    /// What the core needs: in flight, spent over the rolling day, last top-up.
    pub fn state(&self, now: Timestamp) -> RescueState {
        let day_start = now - DAY;
        let counted = || self.entries.iter().filter(|r| r.counts_as_spent());
        RescueState {
            in_flight: self
                .entries
                .iter()
                .filter(|r| r.unresolved())
                .map(|r| r.request.amount)
                .sum(),
            spent_last_24h: counted()
                .filter(|r| r.request.created_at > day_start)
                .map(|r| r.request.amount)
                .sum(),
            last_top_up_at: counted().map(|r| r.request.created_at).max(),
        }
    }

    pub fn total_spent(&self) -> Usdt {
        self.entries
            .iter()
            .filter(|r| r.counts_as_spent())
            .map(|r| r.request.amount)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::TransferKey;
    use rust_decimal_macros::dec;

    fn request(at: i64, amount: rust_decimal::Decimal) -> TransferRequest {
        TransferRequest {
            key: TransferKey(at as u128),
            amount: Usdt(amount),
            created_at: Timestamp(at),
        }
    }

    #[test]
    fn spend_rolls_off_after_a_day_and_refusals_do_not_count() {
        let mut ledger = RescueLedger::default();
        let hour = 3_600_000;
        ledger.record(request(0, dec!(100)), Progress::Settled, Usdt::ZERO);
        ledger.record(request(2 * hour, dec!(50)), Progress::NotMoved, Usdt::ZERO);
        ledger.record(request(3 * hour, dec!(25)), Progress::Unknown, Usdt::ZERO);
        let state = ledger.state(Timestamp(4 * hour));
        assert_eq!(state.spent_last_24h, Usdt(dec!(125)));
        assert_eq!(state.in_flight, Usdt(dec!(25)));
        assert_eq!(state.last_top_up_at, Some(Timestamp(3 * hour)));
        // 24 h after the first rescue it no longer counts against the day cap.
        let later = ledger.state(Timestamp(24 * hour + 1));
        assert_eq!(later.spent_last_24h, Usdt(dec!(25)));
    }
}
