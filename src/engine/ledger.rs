//! The rescues an account runner has made, read from and written through the journal.
//!
//! Caps, cooldown and "in flight" are computed from these rows, never from a counter that
//! could drift from what happened — and because the rows are durable, a restart picks up the
//! day's spend and every transfer whose outcome is still open.
//!
//! The rows are the venue account's, not the config name's: renaming an account keeps its
//! 24 h spend. Accounts that draw on one reserve wallet share a [`ReserveBook`], so that
//! together they never take it below `keep_at_least`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::core::RescueState;
use crate::journal::{Journal, JournalError, RescueRecord, RescueStage, Scope, StateChange};
use crate::money::Usdt;
use crate::time::Timestamp;
use crate::venue::TransferKey;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Whose rescues these are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The config's name for the account (logs, and rows written before identities).
    pub name: String,
    /// The venue account's identity (`binance:<uid>:usdm`, …).
    pub venue_account: String,
    /// The reserve wallet's identity (`binance:<uid>:spot`, …).
    pub reserve_wallet: String,
}

impl Owner {
    /// An account whose venue tells no identity (the simulator, test venues): its name.
    pub fn named(kind: &str, name: &str) -> Self {
        Self {
            name: name.to_string(),
            venue_account: format!("{kind}:{name}"),
            reserve_wallet: format!("{kind}:{name}:reserve"),
        }
    }

    /// An account whose venue told its own id: its rows follow that id whatever the config
    /// calls it, and its reserve wallet is the one of that venue account.
    pub fn identified(kind: &str, name: &str, account_id: &str) -> Self {
        Self {
            name: name.to_string(),
            venue_account: format!("{kind}:{account_id}:futures"),
            reserve_wallet: format!("{kind}:{account_id}:reserve"),
        }
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            name: &self.name,
            venue_account: &self.venue_account,
            reserve_wallet: &self.reserve_wallet,
        }
    }
}

/// What one reserve wallet has promised, across every account of this process that draws on
/// it. The journal is locked to one process, so this book sees every writer.
#[derive(Clone, Default)]
pub struct ReserveBook {
    held: Arc<Mutex<HashMap<TransferKey, Held>>>,
    /// Taken from the decision until its intent is committed, so two accounts never size a
    /// top-up from the same reserve at once.
    deciding: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Clone)]
struct Held {
    venue_account: String,
    amount: Usdt,
    state: RescueStage,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl ReserveBook {
    pub async fn lock_decisions(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.deciding.lock().await
    }

    fn put(&self, record: &RescueRecord) {
        self.lock().insert(
            record.key,
            Held {
                venue_account: record.venue_account.clone(),
                amount: record.amount,
                state: record.state,
                created_at: record.created_at,
                updated_at: record.updated_at,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TransferKey, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the snapshot's reserve figure may not yet show, for `venue_account`'s decision:
    /// its own lapsed transfers (they may yet be debited), and every other account's transfer
    /// that is open, lapsed, or settled after the snapshot was taken.
    fn not_yet_shown(&self, venue_account: &str, now: Timestamp, as_of: Timestamp) -> Usdt {
        let day_start = now - DAY;
        let mut held = self.lock();
        held.retain(|_, h| h.created_at > day_start || h.state.is_open());
        held.values()
            .filter(|h| {
                if h.venue_account == venue_account {
                    h.state == RescueStage::Lapsed
                } else {
                    h.state.is_looked_up()
                        || (h.state == RescueStage::Settled && h.updated_at >= as_of)
                }
            })
            .map(|h| h.amount)
            .sum()
    }
}

/// What every account of this process has moved over the last 24 hours, for the config's
/// `[portfolio] max_per_day`. Loaded from the journals at start (so a restart keeps the
/// day's spend) and kept by every account's ledger as it writes. Without a cap it holds
/// nothing and locks nothing.
#[derive(Clone, Default)]
pub struct PortfolioBook {
    max_per_day: Option<Usdt>,
    moved: Arc<Mutex<HashMap<TransferKey, Moved>>>,
    /// Taken from the decision until its intent is committed, so two accounts never size a
    /// top-up from the same day's allowance at once.
    deciding: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Clone, Copy)]
struct Moved {
    amount: Usdt,
    created_at: Timestamp,
    may_have_moved: bool,
}

impl PortfolioBook {
    /// A cap of `max_per_day` over every row the `journals` hold from the last 24 h.
    pub fn capped(
        max_per_day: Usdt,
        journals: &[Arc<Journal>],
        now: Timestamp,
    ) -> Result<Self, JournalError> {
        let book = Self {
            max_per_day: Some(max_per_day),
            ..Self::default()
        };
        for journal in journals {
            for row in journal.created_after(now - DAY)? {
                book.put(&row);
            }
        }
        Ok(book)
    }

    pub fn max_per_day(&self) -> Option<Usdt> {
        self.max_per_day
    }

    /// The decision turn, when there is a cap to share.
    pub async fn lock_decisions(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.max_per_day {
            Some(_) => Some(self.deciding.lock().await),
            None => None,
        }
    }

    fn put(&self, record: &RescueRecord) {
        if self.max_per_day.is_none() {
            return;
        }
        self.lock().insert(
            record.key,
            Moved {
                amount: record.amount,
                created_at: record.created_at,
                may_have_moved: record.state.may_have_moved(),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TransferKey, Moved>> {
        self.moved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the cap still allows at `now`: the cap less everything that may have moved over
    /// the last 24 h (in flight included). Saturating: never more than the cap.
    pub fn left(&self, now: Timestamp) -> Option<Usdt> {
        let cap = self.max_per_day?;
        let day_start = now - DAY;
        let mut moved = self.lock();
        moved.retain(|_, m| m.created_at > day_start);
        let spent = moved
            .values()
            .filter(|m| m.may_have_moved)
            .fold(Usdt::ZERO, |sum, m| sum.saturating_add(m.amount));
        Some(cap.saturating_sub(spent).max(Usdt::ZERO))
    }
}

pub struct RescueLedger {
    journal: Arc<Journal>,
    owner: Owner,
    entries: Vec<RescueRecord>,
    reserve: ReserveBook,
    portfolio: PortfolioBook,
}

impl RescueLedger {
    /// Loads the rows that still matter: the account's own from the last 24 h and everything
    /// it has unresolved, and every row drawn on its reserve wallet in the last 24 h.
    pub fn open(
        journal: Arc<Journal>,
        owner: Owner,
        reserve: ReserveBook,
        now: Timestamp,
    ) -> Result<Self, JournalError> {
        let rows = journal.load(&owner.scope(), now - DAY)?;
        let mut entries = Vec::new();
        for row in rows {
            reserve.put(&row);
            if is_own(&owner, &row) {
                entries.push(row);
            }
        }
        Ok(Self {
            journal,
            owner,
            entries,
            reserve,
            portfolio: PortfolioBook::default(),
        })
    }

    /// Shares the config's portfolio-wide day cap with the other accounts' ledgers.
    pub fn join_portfolio(&mut self, portfolio: PortfolioBook) {
        for entry in &self.entries {
            portfolio.put(entry);
        }
        self.portfolio = portfolio;
    }

    pub fn portfolio(&self) -> &PortfolioBook {
        &self.portfolio
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    pub fn reserve(&self) -> &ReserveBook {
        &self.reserve
    }

    /// Commits the intent before any money moves; `Err` means the transfer must not be sent.
    pub fn record_intent(&mut self, mut record: RescueRecord) -> Result<(), JournalError> {
        record.venue_account = self.owner.venue_account.clone();
        record.reserve_wallet = self.owner.reserve_wallet.clone();
        self.journal.insert(&record)?;
        self.reserve.put(&record);
        self.portfolio.put(&record);
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
            if entry.unseen_since.is_none() {
                entry.unseen_since = change.unseen_since;
            }
            self.reserve.put(entry);
            self.portfolio.put(entry);
        }
        self.journal.update(&change)
    }

    pub fn entries(&self) -> &[RescueRecord] {
        &self.entries
    }

    /// Forgets rows that can no longer matter — resolved and older than a day — so a daemon
    /// that runs for months keeps a day of rows, not all of them.
    pub fn prune(&mut self, now: Timestamp) {
        let day_start = now - DAY;
        self.entries
            .retain(|r| r.created_at > day_start || r.state.is_open());
    }

    /// What the core needs: in flight, spent over the rolling day, last top-up. A lapsed
    /// transfer is not in flight (it no longer blocks a rescue) but is spent.
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

    /// The reserve a decision may size from: the snapshot's figure less what it may not yet
    /// show (see [`ReserveBook::not_yet_shown`]).
    pub fn usable_reserve(&self, reported: Usdt, now: Timestamp, as_of: Timestamp) -> Usdt {
        let held = self
            .reserve
            .not_yet_shown(&self.owner.venue_account, now, as_of);
        (reported - held).max(Usdt::ZERO)
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

fn is_own(owner: &Owner, row: &RescueRecord) -> bool {
    row.venue_account == owner.venue_account
        || (row.venue_account.is_empty() && row.account == owner.name)
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
            unseen_since: None,
            venue_account: String::new(),
            reserve_wallet: String::new(),
        }
    }

    fn owner(name: &str, uid: &str) -> Owner {
        Owner {
            name: name.into(),
            venue_account: format!("binance:{uid}:usdm"),
            reserve_wallet: format!("binance:{uid}:spot"),
        }
    }

    fn open(journal: &Arc<Journal>, name: &str, at: i64) -> RescueLedger {
        RescueLedger::open(
            journal.clone(),
            owner(name, "1"),
            ReserveBook::default(),
            Timestamp(at),
        )
        .unwrap()
    }

    #[test]
    fn spend_rolls_off_after_a_day_and_refusals_do_not_count() {
        let journal = Arc::new(Journal::in_memory());
        let mut ledger = open(&journal, "a", 0);
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
            let mut ledger = open(&journal, "a", 0);
            ledger
                .record_intent(record(hour, dec!(700), RescueStage::Settled))
                .unwrap();
            ledger
                .record_intent(record(2 * hour, dec!(300), RescueStage::Intent))
                .unwrap();
        }
        let reopened = open(&journal, "a", 3 * hour);
        let state = reopened.state(Timestamp(3 * hour));
        assert_eq!(state.spent_last_24h, Usdt(dec!(1000)));
        assert_eq!(
            state.in_flight,
            Usdt(dec!(300)),
            "an intent may have been sent"
        );
    }

    #[test]
    fn a_lapsed_transfer_is_spent_but_not_in_flight() {
        let journal = Arc::new(Journal::in_memory());
        let mut ledger = open(&journal, "a", 0);
        ledger
            .record_intent(record(1, dec!(400), RescueStage::Lapsed))
            .unwrap();
        let state = ledger.state(Timestamp(2));
        assert_eq!(state.in_flight, Usdt::ZERO);
        assert_eq!(state.spent_last_24h, Usdt(dec!(400)));
        assert_eq!(
            ledger.usable_reserve(Usdt(dec!(1000)), Timestamp(2), Timestamp(2)),
            Usdt(dec!(600)),
            "it may yet be debited from the reserve"
        );
    }

    #[test]
    fn renaming_an_account_keeps_its_days_spend() {
        let journal = Arc::new(Journal::in_memory());
        {
            let mut ledger = open(&journal, "old-name", 0);
            ledger
                .record_intent(record(1, dec!(700), RescueStage::Settled))
                .unwrap();
        }
        let renamed = open(&journal, "new-name", 10);
        assert_eq!(renamed.state(Timestamp(10)).spent_last_24h, Usdt(dec!(700)));
    }

    #[test]
    fn two_accounts_on_one_reserve_see_each_others_transfers() {
        let journal = Arc::new(Journal::in_memory());
        let book = ReserveBook::default();
        let shared = |name: &str, uid: &str| Owner {
            reserve_wallet: "binance:1:spot".into(),
            ..owner(name, uid)
        };
        let mut a = RescueLedger::open(
            journal.clone(),
            shared("a", "1"),
            book.clone(),
            Timestamp(0),
        )
        .unwrap();
        let b = RescueLedger::open(journal, shared("b", "2"), book, Timestamp(0)).unwrap();
        a.record_intent(record(1, dec!(6000), RescueStage::Intent))
            .unwrap();
        assert_eq!(
            b.usable_reserve(Usdt(dec!(30000)), Timestamp(2), Timestamp(0)),
            Usdt(dec!(24000)),
            "b must not size from money a is moving"
        );
        assert_eq!(
            b.state(Timestamp(2)).spent_last_24h,
            Usdt::ZERO,
            "caps stay per account"
        );
    }

    #[test]
    fn pruning_keeps_a_day_and_everything_open() {
        let journal = Arc::new(Journal::in_memory());
        let mut ledger = open(&journal, "a", 0);
        let hour = 3_600_000;
        ledger
            .record_intent(record(1, dec!(1), RescueStage::Settled))
            .unwrap();
        ledger
            .record_intent(record(2, dec!(1), RescueStage::Unknown))
            .unwrap();
        ledger
            .record_intent(record(30 * hour, dec!(1), RescueStage::Settled))
            .unwrap();
        ledger.prune(Timestamp(30 * hour));
        let keys: Vec<u128> = ledger.entries().iter().map(|r| r.key.0).collect();
        assert_eq!(keys, vec![2, (30 * hour) as u128]);
    }
}
