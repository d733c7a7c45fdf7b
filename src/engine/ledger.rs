//! The rescues an account runner has made, read from and written through the journal.
//!
//! Caps, cooldown and "in flight" are computed from these rows, never from a counter that
//! could drift from what happened — and because the rows are durable, a restart picks up the
//! day's spend and every transfer whose outcome is still open.

use std::sync::Arc;
use std::time::Duration;

use crate::core::RescueState;
use crate::journal::{Journal, JournalError, RescueRecord, StateChange};
use crate::money::Usdt;
use crate::time::Timestamp;

const DAY: Duration = Duration::from_secs(24 * 3600);

pub struct RescueLedger {
    journal: Arc<Journal>,
    entries: Vec<RescueRecord>,
}

impl RescueLedger {
    /// Loads an account's rows that still matter: the last 24 h and everything unresolved.
    pub fn open(
        journal: Arc<Journal>,
        account: &str,
        now: Timestamp,
    ) -> Result<Self, JournalError> {
        let entries = journal.load(account, now - DAY)?;
        Ok(Self { journal, entries })
    }

    /// Commits the intent before any money moves; `Err` means the transfer must not be sent.
    pub fn record_intent(&mut self, record: RescueRecord) -> Result<(), JournalError> {
        self.journal.insert(&record)?;
        self.entries.push(record);
        Ok(())
    }

    /// Applies a transition in memory and in the journal. The in-memory copy changes even if
    /// the write fails, so this process keeps acting on what it knows; the error is for the
    /// caller to log (a restart reconciles the row from the venue).
    pub fn change(&mut self, change: StateChange<'_>) -> Result<(), JournalError> {
        if let Some(entry) = self.entries.iter_mut().find(|r| r.key == change.key) {
            entry.state = change.state;
            entry.updated_at = change.at;
            entry.verified |= change.verified;
            if let Some(id) = change.venue_id {
                entry.venue_id = Some(id.to_string());
            }
            if let Some(detail) = change.detail {
                entry.detail = Some(detail.to_string());
            }
            if let Some(after) = change.buffer_after {
                entry.buffer_after = Some(after.to_string());
            }
        }
        self.journal.update(&change)
    }

    pub fn entries(&self) -> &[RescueRecord] {
        &self.entries
    }

    /// What the core needs: in flight, spent over the rolling day, last top-up.
    pub fn state(&self, now: Timestamp) -> RescueState {
        let day_start = now - DAY;
        let counted = || self.entries.iter().filter(|r| r.state.may_have_moved());
        RescueState {
            in_flight: self
                .entries
                .iter()
                .filter(|r| r.state.is_open())
                .map(|r| r.amount)
                .sum(),
            spent_last_24h: counted()
                .filter(|r| r.created_at > day_start)
                .map(|r| r.amount)
                .sum(),
            last_top_up_at: counted().map(|r| r.created_at).max(),
        }
    }

    /// Everything that may have moved money, as far as this ledger remembers.
    pub fn total_spent(&self) -> Usdt {
        self.entries
            .iter()
            .filter(|r| r.state.may_have_moved())
            .map(|r| r.amount)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::RescueStage;
    use crate::venue::TransferKey;
    use rust_decimal_macros::dec;

    fn record(at: i64, amount: rust_decimal::Decimal, state: RescueStage) -> RescueRecord {
        RescueRecord {
            key: TransferKey(at as u128),
            account: "a".into(),
            venue: "sim".into(),
            asset: "USDT".into(),
            amount: Usdt(amount),
            created_at: Timestamp(at),
            reason: String::new(),
            buffer_before: String::new(),
            buffer_after: None,
            wallet_before: Usdt::ZERO,
            state,
            venue_id: None,
            detail: None,
            verified: false,
            updated_at: Timestamp(at),
        }
    }

    #[test]
    fn spend_rolls_off_after_a_day_and_refusals_do_not_count() {
        let journal = Arc::new(Journal::in_memory());
        let mut ledger = RescueLedger::open(journal, "a", Timestamp(0)).unwrap();
        let hour = 3_600_000;
        ledger
            .record_intent(record(1, dec!(100), RescueStage::Settled))
            .unwrap();
        ledger
            .record_intent(record(2 * hour, dec!(50), RescueStage::Rejected))
            .unwrap();
        ledger
            .record_intent(record(3 * hour, dec!(25), RescueStage::Unknown))
            .unwrap();
        let state = ledger.state(Timestamp(4 * hour));
        assert_eq!(state.spent_last_24h, Usdt(dec!(125)));
        assert_eq!(state.in_flight, Usdt(dec!(25)));
        assert_eq!(state.last_top_up_at, Some(Timestamp(3 * hour)));
        // 24 h after the first rescue it no longer counts against the day cap.
        let later = ledger.state(Timestamp(24 * hour + 2));
        assert_eq!(later.spent_last_24h, Usdt(dec!(25)));
    }

    #[test]
    fn a_restart_remembers_the_days_spend_and_what_is_in_flight() {
        let journal = Arc::new(Journal::in_memory());
        let hour = 3_600_000;
        {
            let mut ledger = RescueLedger::open(journal.clone(), "a", Timestamp(0)).unwrap();
            ledger
                .record_intent(record(hour, dec!(700), RescueStage::Settled))
                .unwrap();
            ledger
                .record_intent(record(2 * hour, dec!(300), RescueStage::Intent))
                .unwrap();
        }
        let reopened = RescueLedger::open(journal, "a", Timestamp(3 * hour)).unwrap();
        let state = reopened.state(Timestamp(3 * hour));
        assert_eq!(state.spent_last_24h, Usdt(dec!(1000)));
        assert_eq!(
            state.in_flight,
            Usdt(dec!(300)),
            "an intent may have been sent"
        );
    }
}
