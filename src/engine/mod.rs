//! The control loop: one task per account — tick → snapshot → decide → act → verify → log.
//!
//! Architecture invariant: the engine does not know whether it runs dry or live, nor which
//! venue it talks to. It reads time only through its `Clock`, so the simulator replays a day
//! in milliseconds and the same code watches a live account.

pub mod events;
pub mod ledger;
pub mod shutdown;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::core::volatility::RealizedVolatility;
use crate::core::{
    decide, Action, Blocked, Caps, Decision, RescueState, Severity, Situation, Strategy,
};
use crate::failpoint;
use crate::journal::{Journal, JournalError, RescueRecord, RescueStage, StateChange};
use crate::money::Usdt;
use crate::time::Timestamp;
use crate::venue::{
    Retry, TransferKey, TransferReceipt, TransferRequest, TransferStatus, Venue, VenueError,
    VenueSnapshot,
};
pub use events::{Event, EventKind};
use ledger::RescueLedger;
pub use ledger::{Owner, PortfolioBook, ReserveBook};
pub use shutdown::{Shutdown, ShutdownTrigger};

/// Everything one account runner needs, built at wiring.
pub struct AccountSetup {
    pub name: String,
    pub venue: Arc<dyn Venue>,
    pub strategy: Strategy,
    pub caps: Caps,
    pub poll_interval: Duration,
    pub clock: Clock,
    /// Varies transfer keys between processes; 0 under the simulator for identical replays.
    pub key_salt: u64,
    /// Where rescues are recorded before money moves.
    pub journal: Arc<Journal>,
    /// How long a transfer whose outcome is open must stay unseen at the venue — counted from
    /// the first lookup made once the venue had had time to show it — before it lapses (stops
    /// blocking new rescues; it still counts as spent). A venue's records can lag the call.
    pub unknown_outcome_grace: Duration,
}

/// Why an account runner stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Shutdown,
    /// It made the number of ticks it was told to (`run --ticks`).
    TickLimit,
    /// The venue will say nothing more (the simulator's day has ended).
    VenueClosed(String),
    /// The runner died (a panic): the account went unguarded, which is never a normal run.
    Failed(String),
}

#[derive(Debug)]
pub struct AccountExit {
    pub name: String,
    pub reason: StopReason,
    pub spent: Usdt,
    pub rescues: usize,
}

pub type EventSink = Option<mpsc::UnboundedSender<Event>>;

pub struct AccountRunner {
    name: Arc<str>,
    venue: Arc<dyn Venue>,
    strategy: Strategy,
    caps: Caps,
    poll_interval: Duration,
    clock: Clock,
    key_salt: u64,
    unknown_outcome_grace: Duration,
    ledger: RescueLedger,
    volatility: RealizedVolatility,
    events: EventSink,
    sequence: u64,
    last_zone: Option<Zone>,
    ticks_left: Option<u64>,
    last_reconcile: Option<Timestamp>,
    blind: Blindness,
    /// When each lapsed transfer was last looked up (they are asked about once a minute).
    lapsed_looked_up: std::collections::HashMap<TransferKey, Timestamp>,
    /// Set when the venue refused a transfer for the key's rights: no more transfers from this
    /// runner (each would fail the same way) until the key is fixed and the daemon restarted.
    transfers_stopped: Option<String>,
    /// The positions the venue reported on isolated margin, as last said in the log.
    unguarded: Vec<String>,
}

/// How long the runner has gone without a usable snapshot, and how it backs off meanwhile.
#[derive(Debug, Default)]
struct Blindness {
    consecutive_failures: u32,
    since: Option<Timestamp>,
    /// The venue asked for this pause (`Retry-After`, a 429).
    retry_after: Option<Duration>,
    alerted: bool,
}

/// The decision turns a runner holds from its decision until its intent is journaled.
struct Turn<'a> {
    _portfolio: Option<tokio::sync::MutexGuard<'a, ()>>,
    _reserve: tokio::sync::MutexGuard<'a, ()>,
}

/// Blind (no usable snapshot) for longer than this raises an alert-level event: long enough
/// not to cry wolf on one lost poll, short against a crash that liquidates in minutes.
pub const BLIND_ALERT_AFTER: Duration = Duration::from_secs(60);
/// The longest pause between attempts while a venue keeps failing. A rescue bot that backs
/// off for longer is as good as off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The least time between two lookups of open transfers.
const RECONCILE_MIN_GAP: Duration = Duration::from_secs(1);
/// How often a lapsed transfer is looked up again (a late record settles it).
const LAPSED_LOOKUP_EVERY: Duration = Duration::from_secs(60);

/// A coarse reading of the action, so logs speak when it changes, not every tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    Calm,
    Warning,
    Acting,
    /// Below the trigger with a transfer in flight: expected, not yet alarming.
    Waiting,
    /// Below the trigger and blocked by a cap, the reserve or the cooldown.
    Stuck,
}

impl Zone {
    fn of(action: &Action) -> Zone {
        match action {
            Action::Hold => Zone::Calm,
            Action::Alert {
                severity: Severity::Warning,
                ..
            } => Zone::Warning,
            Action::TopUp(_)
            | Action::Emergency {
                top_up: Some(_), ..
            } => Zone::Acting,
            Action::Alert {
                blocked: Some(Blocked::InFlight(_)),
                ..
            }
            | Action::Emergency {
                blocked: Some(Blocked::InFlight(_)),
                ..
            } => Zone::Waiting,
            Action::Alert { .. } | Action::Emergency { .. } => Zone::Stuck,
        }
    }
}

impl AccountRunner {
    /// Reads the account's rescues back from the journal; fails if it cannot, because caps
    /// computed without them could spend twice.
    pub fn new(setup: AccountSetup, events: EventSink) -> Result<Self, JournalError> {
        let owner = Owner::named(setup.venue.kind(), &setup.name);
        Self::with_owner(setup, owner, ReserveBook::default(), events)
    }

    /// As `new`, for an account whose venue told its identity: its rows are the venue
    /// account's (whatever the config calls it), and `reserve` is shared by every account of
    /// this process that draws on the same reserve wallet.
    pub fn with_owner(
        setup: AccountSetup,
        owner: Owner,
        reserve: ReserveBook,
        events: EventSink,
    ) -> Result<Self, JournalError> {
        let window = setup
            .strategy
            .volatility
            .map(|v| v.window)
            .unwrap_or(Duration::from_secs(3600));
        let ledger = RescueLedger::open(setup.journal, owner, reserve, setup.clock.now())?;
        for rescue in ledger.entries() {
            if let Some(venue_id) = &rescue.venue_id {
                setup.venue.remember(rescue.key, venue_id);
            }
        }
        Ok(Self {
            name: setup.name.into(),
            venue: setup.venue,
            strategy: setup.strategy,
            caps: setup.caps,
            poll_interval: setup.poll_interval,
            clock: setup.clock,
            key_salt: setup.key_salt,
            unknown_outcome_grace: setup.unknown_outcome_grace,
            ledger,
            volatility: RealizedVolatility::new(window),
            events,
            sequence: 0,
            last_zone: None,
            ticks_left: None,
            last_reconcile: None,
            blind: Blindness::default(),
            lapsed_looked_up: std::collections::HashMap::new(),
            transfers_stopped: None,
            unguarded: Vec::new(),
        })
    }

    /// Puts this account under the config's portfolio-wide day cap, shared with the other
    /// runners given the same book.
    pub fn join_portfolio(&mut self, portfolio: PortfolioBook) {
        self.ledger.join_portfolio(portfolio);
    }

    /// Stops the runner after `ticks` more ticks (for scripted checks such as the crash
    /// harness, and for `run --ticks`).
    pub fn stop_after(&mut self, ticks: u64) {
        self.ticks_left = Some(ticks);
    }

    /// Ticks until shutdown or until the venue closes. A tick is never interrupted: shutdown
    /// is looked at only between ticks.
    pub async fn run(mut self, mut shutdown: Shutdown) -> AccountExit {
        let mut next = self.clock.now();
        let reason = loop {
            if shutdown.is_triggered() {
                break StopReason::Shutdown;
            }
            // A streamed venue's news (a mark that moved) wakes the tick at once — but not
            // while the venue is failing: then the back-off paces the attempts, not the
            // stream's rate.
            let listen = self.blind.consecutive_failures == 0;
            let poll_due = tokio::select! {
                biased;
                _ = shutdown.wait() => break StopReason::Shutdown,
                _ = self.clock.sleep_until(next) => true,
                _ = self.venue.changed(), if listen => false,
            };
            if let Err(reason) = self.tick_woken(poll_due).await {
                break reason;
            }
            if let Some(left) = self.ticks_left.as_mut() {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    break StopReason::TickLimit;
                }
            }
            next = match self.backoff() {
                // A failing venue is asked again later and later, not every tick forever.
                Some(pause) => self.clock.now() + pause,
                // A tick woken by the venue's news keeps the poll schedule.
                None if !poll_due => next,
                // Missed ticks are skipped, not bunched: a late tick is followed by a full
                // interval.
                None => (next + self.poll_interval).max(self.clock.now()),
            };
        };
        tracing::info!(account = %self.name, ?reason, spent = %self.ledger.total_spent(), "account runner stopped");
        self.emit(self.clock.now(), EventKind::Stopped(reason.clone()));
        AccountExit {
            name: self.name.to_string(),
            reason,
            spent: self.ledger.total_spent(),
            rescues: self.ledger.entries().len(),
        }
    }

    /// One full step. `Err` only when the runner must stop.
    pub async fn tick(&mut self) -> Result<(), StopReason> {
        self.tick_woken(true).await
    }

    /// One step, woken by the poll timer (`poll_due`) or by the venue's news.
    async fn tick_woken(&mut self, poll_due: bool) -> Result<(), StopReason> {
        let now = self.clock.now();
        self.ledger.prune(now);
        // A streamed venue may tick many times a second; between polls, lookups of open
        // transfers go out at most once a second (the venues' history budgets are per
        // minute).
        if poll_due
            || self
                .last_reconcile
                .is_none_or(|last| now.since(last) >= RECONCILE_MIN_GAP)
        {
            self.last_reconcile = Some(now);
            self.reconcile(now).await;
        }
        let snapshot = match self.venue.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(VenueError::Closed { reason }) => return Err(StopReason::VenueClosed(reason)),
            Err(error) => {
                let retry_after = match &error {
                    VenueError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                };
                self.went_blind(now, format!("snapshot failed: {error}"), retry_after);
                return Ok(());
            }
        };
        // The age is measured when the figures arrive, not when the tick began: a fetch that
        // took a minute delivers minute-old figures, whatever time the venue stamped them.
        let received = self.clock.now();
        let age = received.since(snapshot.as_of);
        if age > self.max_snapshot_age() {
            self.went_blind(
                now,
                format!("snapshot is stale ({age:?} old, as of {})", snapshot.as_of),
                None,
            );
            return Ok(());
        }
        self.can_see(now);
        self.note_unguarded(&snapshot);
        self.verify_landed(now, &snapshot);
        self.lapse_unseen(now, &snapshot);
        self.volatility
            .observe(snapshot.as_of, &snapshot.account.positions);
        // Accounts that share a reserve wallet (or, under a portfolio cap, every account)
        // decide one at a time, each seeing what the others have committed, until this
        // one's intent is in the journal. Always the portfolio's turn first, then the
        // reserve's: one order, so two runners never wait on each other.
        let portfolio = self.ledger.portfolio().clone();
        let reserve = self.ledger.reserve().clone();
        let turn = Turn {
            _portfolio: portfolio.lock_decisions().await,
            _reserve: reserve.lock_decisions().await,
        };
        let rescues = self.ledger.state(now);
        let decision = self.decide(now, &snapshot, rescues);
        let latency = self.clock.now().since(now);
        self.log_decision(&decision, &snapshot);
        self.emit(
            now,
            EventKind::Observed {
                decision: Box::new(decision.clone()),
                snapshot: Box::new(snapshot.clone()),
                rescues,
                latency,
            },
        );
        if let Some(top_up) = decision.action.top_up() {
            self.send(now, &decision, top_up.amount, &snapshot, turn)
                .await;
        }
        Ok(())
    }

    /// Says, when it changes, which open positions are on isolated margin: a top-up of the
    /// cross wallet cannot help them, so they are left out of every decision and unguarded.
    fn note_unguarded(&mut self, snapshot: &VenueSnapshot) {
        if snapshot.unguarded == self.unguarded {
            return;
        }
        if snapshot.unguarded.is_empty() {
            tracing::info!(account = %self.name, "no position on isolated margin any more");
        } else {
            tracing::warn!(account = %self.name, alert = true, positions = ?snapshot.unguarded,
                "NOT GUARDED: {} on isolated margin; marginguard tops up the cross wallet, which an isolated position does not draw on — switch it to cross margin to have it guarded",
                snapshot.unguarded.join(", "));
        }
        self.unguarded = snapshot.unguarded.clone();
    }

    /// How soon the runner sees the account again: the stream's cadence while the venue
    /// streams, the poll interval otherwise.
    fn observation_interval(&self) -> Duration {
        self.venue
            .observation_interval()
            .map_or(self.poll_interval, |every| every.min(self.poll_interval))
    }

    /// Older than two poll intervals (at least 10 s) means "no decision this tick".
    fn max_snapshot_age(&self) -> Duration {
        (self.poll_interval * 2).max(Duration::from_secs(10))
    }

    /// No usable snapshot this tick: no decision, one more consecutive failure, and an
    /// alert-level event once the account has been blind for `BLIND_ALERT_AFTER`.
    fn went_blind(&mut self, now: Timestamp, reason: String, retry_after: Option<Duration>) {
        let blind = &mut self.blind;
        blind.consecutive_failures = blind.consecutive_failures.saturating_add(1);
        blind.retry_after = retry_after;
        let since = *blind.since.get_or_insert(now);
        let failures = blind.consecutive_failures;
        if !blind.alerted && now.since(since) >= BLIND_ALERT_AFTER {
            blind.alerted = true;
            let blind_for = now.since(since);
            tracing::error!(account = %self.name, alert = true, failures, ?blind_for, %reason,
                "BLIND: no usable snapshot for {blind_for:?}; the account is not guarded");
            self.emit(
                now,
                EventKind::Blind {
                    since,
                    failures,
                    reason: reason.clone(),
                },
            );
        }
        if failures == 1 || failures.is_power_of_two() {
            tracing::warn!(account = %self.name, %reason, failures, "no decision this tick");
        } else {
            tracing::debug!(account = %self.name, %reason, failures, "no decision this tick");
        }
        self.emit(now, EventKind::NoDecision { reason });
    }

    fn can_see(&mut self, now: Timestamp) {
        let blind = std::mem::take(&mut self.blind);
        if let Some(since) = blind.since {
            let blind_for = now.since(since);
            if blind.alerted {
                tracing::warn!(account = %self.name, alert = true, failures = blind.consecutive_failures, ?blind_for,
                    "recovered: snapshots are usable again after {blind_for:?}");
                self.emit(
                    now,
                    EventKind::Recovered {
                        blind_for,
                        failures: blind.consecutive_failures,
                    },
                );
            } else {
                tracing::info!(account = %self.name, failures = blind.consecutive_failures, "snapshots are usable again");
            }
        }
    }

    /// The pause before the next attempt while the venue keeps failing: the poll interval
    /// doubled per consecutive failure up to `MAX_BACKOFF` (never less than the poll), with
    /// ±20 % jitter so many accounts do not retry in step, and never shorter than a
    /// `Retry-After` the venue gave. `None` when the last tick saw the venue.
    fn backoff(&self) -> Option<Duration> {
        let failures = self.blind.consecutive_failures;
        if failures == 0 {
            return None;
        }
        let doublings = (failures - 1).min(16);
        let cap = MAX_BACKOFF.max(self.poll_interval);
        let base = self
            .poll_interval
            .checked_mul(1u32 << doublings)
            .unwrap_or(cap)
            .min(cap);
        // Deterministic jitter (salt 0 under the simulator replays identically).
        let seed = self.key_salt ^ u64::from(failures).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let permille = 800 + (crate::time::splitmix(seed) % 401); // 0.8 ..= 1.2
        let jittered = base.mul_f64(permille as f64 / 1000.0);
        Some(jittered.max(self.blind.retry_after.unwrap_or_default()))
    }

    fn decide(&self, now: Timestamp, snapshot: &VenueSnapshot, rescues: RescueState) -> Decision {
        let rules = self.venue.transfer_rules();
        let situation = Situation {
            account: &snapshot.account,
            reserve_available: self.ledger.usable_reserve(
                snapshot.reserve_available,
                now,
                snapshot.as_of,
            ),
            rescues,
            now,
            volatility: self.volatility.per_sqrt_second(),
            rescue_horizon: self.observation_interval() + rules.settlement,
            transfer_step: rules.step,
            portfolio_left: self.ledger.portfolio().left(now),
        };
        decide(&situation, &self.strategy, &self.caps)
    }

    async fn send(
        &mut self,
        now: Timestamp,
        decision: &Decision,
        amount: Usdt,
        snapshot: &VenueSnapshot,
        turn: Turn<'_>,
    ) {
        if let Some(reason) = &self.transfers_stopped {
            tracing::error!(account = %self.name, alert = true, %amount, %reason,
                "a top-up of {amount} USDT is needed but transfers are stopped: {reason}");
            self.emit(
                now,
                EventKind::NoDecision {
                    reason: format!("transfers stopped: {reason}"),
                },
            );
            return;
        }
        // Stamped when the intent is written, just before the call — not at the tick's start,
        // which a slow snapshot can put minutes earlier: venues without client ids (Binance)
        // find a lost transfer again by a time window around this instant.
        let created_at = self.clock.now();
        let request = TransferRequest {
            key: TransferKey::derive(&self.name, now, self.sequence, self.key_salt),
            amount,
            created_at,
        };
        self.sequence += 1;
        failpoint::hit(failpoint::BEFORE_INTENT);
        let owner = self.ledger.owner().clone();
        let intent = RescueRecord {
            key: request.key,
            account: self.name.to_string(),
            venue: self.venue.kind().to_string(),
            asset: "USDT".into(),
            amount,
            created_at,
            reason: self.reason(decision, snapshot),
            buffer_before: decision.metrics.buffer.to_string(),
            buffer_after: None,
            wallet_before: snapshot.wallet_balance,
            state: RescueStage::Intent,
            venue_id: None,
            detail: None,
            verified: false,
            updated_at: created_at,
            unseen_since: None,
            venue_account: owner.venue_account,
            reserve_wallet: owner.reserve_wallet,
        };
        let recorded = self.ledger.record_intent(intent);
        // The intent is committed (or not): other accounts on this reserve now see it.
        drop(turn);
        if let Err(error) = recorded {
            // No durable intent, no transfer: a crash now could not be reconciled.
            tracing::error!(account = %self.name, %error, alert = true, "journal write failed; top-up NOT sent");
            self.emit(
                now,
                EventKind::JournalWriteFailed {
                    error: error.to_string(),
                    moved_nothing: true,
                },
            );
            return;
        }
        failpoint::hit(failpoint::AFTER_INTENT);
        let (result, stage) = self.call_transfer(&request).await;
        match result {
            Ok(receipt) => {
                tracing::warn!(account = %self.name, amount = %amount, key = %request.key,
                    venue_id = ?receipt.venue_id, "top-up sent: {amount} USDT into the futures wallet");
                self.emit(
                    now,
                    EventKind::TransferSent {
                        request,
                        action: decision.action,
                    },
                );
            }
            Err(error) => {
                tracing::error!(account = %self.name, amount = %amount, key = %request.key,
                    %error, stage = %stage, "top-up not confirmed");
                self.emit(
                    now,
                    EventKind::TransferNotConfirmed {
                        request,
                        error: error.to_string(),
                        unknown: stage == RescueStage::Unknown,
                    },
                );
            }
        }
    }

    /// Makes the transfer call and records what its answer means for the rescue.
    async fn call_transfer(
        &mut self,
        request: &TransferRequest,
    ) -> (Result<TransferReceipt, VenueError>, RescueStage) {
        let result = self.venue.transfer(request).await;
        failpoint::hit(failpoint::AFTER_RESPONSE);
        let (stage, venue_id, detail) = match &result {
            Ok(receipt) if receipt.status == TransferStatus::Settled => {
                (RescueStage::Settled, receipt.venue_id.clone(), None)
            }
            Ok(receipt) => (RescueStage::Acked, receipt.venue_id.clone(), None),
            Err(error) if error.retry() == Retry::AfterReconcile => {
                (RescueStage::Unknown, None, Some(error.to_string()))
            }
            Err(error) => (RescueStage::Rejected, None, Some(error.to_string())),
        };
        if let Err(VenueError::Auth { message }) = &result {
            self.stop_transfers(message);
        }
        self.record(StateChange {
            venue_id: venue_id.as_deref(),
            detail: detail.as_deref(),
            ..StateChange::to(request.key, stage, self.clock.now())
        });
        (result, stage)
    }

    /// The venue refused a transfer for the key's rights (revoked, IP no longer allowed,
    /// transfer permission removed): every further transfer would fail the same way, so this
    /// account stops sending and says so, loudly, instead of retrying each tick while the
    /// account may be liquidated. Watching goes on; a restart after fixing the key resumes.
    fn stop_transfers(&mut self, message: &str) {
        let reason = format!("the venue refused the key: {message}");
        tracing::error!(account = %self.name, alert = true, %reason,
            "TRANSFERS STOPPED for this account: fix the API key's permissions and restart marginguard");
        self.emit(
            self.clock.now(),
            EventKind::TransfersStopped {
                reason: reason.clone(),
            },
        );
        self.transfers_stopped = Some(reason);
    }

    /// The decision in words, for the journal.
    /// Why a top-up was sent, as the journal keeps it; a size computed on stand-in tiers says
    /// so, because its maintenance figures are the venue's flat rate, not its tier table.
    fn reason(&self, decision: &Decision, snapshot: &VenueSnapshot) -> String {
        let kind = if matches!(decision.action, Action::Emergency { .. }) {
            "EMERGENCY: "
        } else {
            ""
        };
        let degraded = if snapshot.stand_in_tiers.is_empty() {
            String::new()
        } else {
            format!(
                "; sized on stand-in tiers for {}",
                snapshot.stand_in_tiers.join(", ")
            )
        };
        format!(
            "{kind}{} {} < {} (refill to {}){degraded}",
            self.strategy.metric.name(),
            decision.value,
            decision.levels.top_up_below.percent(),
            decision.levels.target.percent()
        )
    }

    /// Writes a transition; a failed write is logged, not fatal — the row stays open in the
    /// journal and is reconciled from the venue on the next start.
    fn record(&mut self, change: StateChange<'_>) {
        if let Err(error) = self.ledger.change(change) {
            tracing::error!(account = %self.name, %error, "journal update failed; the venue will be asked again after a restart");
            self.emit(
                self.clock.now(),
                EventKind::JournalWriteFailed {
                    error: error.to_string(),
                    moved_nothing: false,
                },
            );
        }
    }

    /// Asks the venue about every transfer whose outcome is open — including intents found in
    /// the journal after a restart, which may or may not have been sent — and about lapsed
    /// ones, at most once a minute, so a record that shows up late still settles its row.
    async fn reconcile(&mut self, now: Timestamp) {
        let due: Vec<RescueRecord> = self
            .ledger
            .entries()
            .iter()
            .filter(|r| {
                r.state.is_open()
                    || (r.state == RescueStage::Lapsed && self.lapsed_lookup_due(r, now))
            })
            .cloned()
            .collect();
        for rescue in due {
            let request = TransferRequest {
                key: rescue.key,
                amount: rescue.amount,
                created_at: rescue.created_at,
            };
            if rescue.state == RescueStage::Lapsed {
                self.lapsed_looked_up.insert(rescue.key, now);
            }
            let status = match self.venue.transfer_status(&request).await {
                Ok(status) => status,
                Err(error) => {
                    tracing::warn!(account = %self.name, key = %request.key, %error, "transfer lookup failed; still counted as spent");
                    continue;
                }
            };
            match status {
                TransferStatus::Settled => {
                    failpoint::hit(failpoint::DURING_VERIFICATION);
                    if rescue.state == RescueStage::Lapsed {
                        tracing::warn!(account = %self.name, key = %request.key, amount = %request.amount,
                            "a lapsed transfer showed up at the venue after all: settled");
                    }
                    // Keep which venue record settled it: after a restart that record must
                    // not be matched to another rescue of the same amount.
                    let venue_id = self.venue.matched_id(request.key);
                    self.record(StateChange {
                        venue_id: venue_id.as_deref(),
                        ..StateChange::to(request.key, RescueStage::Settled, now)
                    });
                }
                TransferStatus::Failed(reason) => {
                    tracing::warn!(account = %self.name, key = %request.key, reason, "venue reports the transfer failed");
                    self.record(StateChange {
                        detail: Some(&reason),
                        ..StateChange::to(request.key, RescueStage::Rejected, now)
                    });
                    self.emit(now, EventKind::TransferFailed { request, reason });
                }
                // Where the venue refuses a repeated key, a transfer whose call may never have
                // been made, or whose answer was lost, and that the venue does not show, is
                // sent again under that key at once: if the first landed, the second is
                // refused. That is the venue proving it absent; nothing is guessed.
                TransferStatus::NotFound
                    if matches!(rescue.state, RescueStage::Intent | RescueStage::Unknown)
                        && self.venue.refuses_duplicate_keys() =>
                {
                    tracing::warn!(account = %self.name, key = %request.key, "transfer with unknown outcome is absent at the venue; resending it under the same key");
                    let (result, stage) = self.call_transfer(&request).await;
                    if let Err(error) = result {
                        tracing::error!(account = %self.name, key = %request.key, %error, stage = %stage, "resend not confirmed");
                    }
                }
                TransferStatus::NotFound | TransferStatus::Pending => {
                    self.note_unseen(&rescue, now, status == TransferStatus::NotFound)
                }
            }
        }
        let keep: std::collections::HashSet<TransferKey> =
            self.ledger.entries().iter().map(|r| r.key).collect();
        self.lapsed_looked_up.retain(|key, _| keep.contains(key));
    }

    fn lapsed_lookup_due(&self, rescue: &RescueRecord, now: Timestamp) -> bool {
        self.lapsed_looked_up
            .get(&rescue.key)
            .is_none_or(|at| now.since(*at) >= LAPSED_LOOKUP_EVERY)
    }

    /// When the venue could first have been expected to show `rescue`: once it can no longer
    /// be acting on the call (`Venue::may_still_act_for`) and its settlement time has passed.
    fn visible_from(&self, rescue: &RescueRecord) -> Timestamp {
        rescue.created_at + self.venue.may_still_act_for() + self.venue.transfer_rules().settlement
    }

    /// The venue did not show `rescue` settled. The first such answer after the venue had had
    /// time to show it starts the grace (journaled, so a restart does not restart it).
    fn note_unseen(&mut self, rescue: &RescueRecord, now: Timestamp, absent: bool) {
        if rescue.unseen_since.is_some() || rescue.state == RescueStage::Lapsed {
            return;
        }
        if now < self.visible_from(rescue) {
            return;
        }
        tracing::info!(account = %self.name, key = %rescue.key, absent,
            "the venue does not show the transfer settled although it has had time; grace starts");
        self.record(StateChange {
            unseen_since: Some(now),
            ..StateChange::to(rescue.key, rescue.state, now)
        });
    }

    /// The rule for releasing an open transfer the venue does not show (ARCHITECTURE.md):
    /// it lapses once `unknown_outcome_grace` has passed since the first lookup that missed it
    /// after the venue had had time — or at once, after that time, if the futures wallet rose
    /// by its amount, which says the money most likely landed. A lapsed row no longer blocks a
    /// rescue but stays spent (caps and reserve) for 24 h and is still looked up.
    fn lapse_unseen(&mut self, now: Timestamp, snapshot: &VenueSnapshot) {
        let lapsing: Vec<(RescueRecord, &'static str)> = self
            .ledger
            .entries()
            .iter()
            .filter(|r| r.state.is_open())
            .filter_map(|r| {
                let unseen_since = r.unseen_since?;
                let rose = snapshot
                    .wallet_balance
                    .0
                    .checked_sub(r.wallet_before.0)
                    .is_some_and(|rise| rise >= r.amount.0);
                if rose {
                    Some((r.clone(), "the venue does not show it, but the futures wallet rose by its amount: most likely landed; still counted as spent"))
                } else if now.since(unseen_since) >= self.unknown_outcome_grace {
                    Some((r.clone(), "not shown by the venue for the grace period after it had had time; it may still have moved, so it stays counted as spent for 24 h"))
                } else {
                    None
                }
            })
            .collect();
        for (rescue, why) in lapsing {
            tracing::warn!(account = %self.name, key = %rescue.key, amount = %rescue.amount, state = %rescue.state, why, "transfer lapsed: no longer blocks a rescue");
            self.record(StateChange {
                detail: Some(why),
                ..StateChange::to(rescue.key, RescueStage::Lapsed, now)
            });
            let request = TransferRequest {
                key: rescue.key,
                amount: rescue.amount,
                created_at: rescue.created_at,
            };
            self.emit(now, EventKind::TransferLapsed { request });
        }
    }

    /// A settled transfer must show in the wallet; say so either way, once.
    fn verify_landed(&mut self, now: Timestamp, snapshot: &VenueSnapshot) {
        let landed: Vec<RescueRecord> = self
            .ledger
            .entries()
            .iter()
            .filter(|r| r.state == RescueStage::Settled && !r.verified)
            .cloned()
            .collect();
        if landed.is_empty() {
            // The common case, every tick: nothing to verify, nothing to compute.
            return;
        }
        let buffer_after = crate::core::metrics::margin_ratio_buffer(&snapshot.account).to_string();
        for rescue in landed {
            let rise = Usdt(
                snapshot
                    .wallet_balance
                    .0
                    .checked_sub(rescue.wallet_before.0)
                    .unwrap_or_default(),
            );
            let verified = rise >= rescue.amount;
            if verified {
                tracing::info!(account = %self.name, amount = %rescue.amount, key = %rescue.key, "top-up landed");
            } else {
                tracing::warn!(account = %self.name, amount = %rescue.amount, key = %rescue.key, %rise,
                    "venue reports the top-up settled but the futures wallet rose by less");
            }
            self.record(StateChange {
                buffer_after: Some(&buffer_after),
                verified: true,
                detail: (!verified)
                    .then_some("settled, but the wallet rose by less than the amount"),
                ..StateChange::to(rescue.key, RescueStage::Settled, now)
            });
            let request = TransferRequest {
                key: rescue.key,
                amount: rescue.amount,
                created_at: rescue.created_at,
            };
            self.emit(
                now,
                EventKind::TransferLanded {
                    request,
                    wallet_rise: rise,
                    verified,
                },
            );
        }
    }

    /// Logs when the situation changes, not every tick: a hovering price would otherwise
    /// write the same warning every poll. Top-ups are logged where they are sent.
    fn log_decision(&mut self, decision: &Decision, snapshot: &VenueSnapshot) {
        let zone = Zone::of(&decision.action);
        let changed = self.last_zone != Some(zone);
        self.last_zone = Some(zone);
        let m = &decision.metrics;
        let metric = self.strategy.metric.name();
        let shadow = (!snapshot.shadowed.is_zero()).then(|| snapshot.shadowed.to_string());
        if !changed {
            tracing::debug!(account = %self.name, buffer = %m.buffer, distance = %m.distance, action = ?decision.action, "tick");
            return;
        }
        match zone {
            Zone::Calm => {
                tracing::info!(account = %self.name, buffer = %m.buffer, cushion = %m.cushion,
                distance = %m.distance, equity = %snapshot.account.equity, shadowed = ?shadow, "healthy")
            }
            Zone::Warning => {
                tracing::warn!(account = %self.name, buffer = %m.buffer, cushion = %m.cushion,
                distance = %m.distance, alert_below = %decision.levels.alert_below.percent(), shadowed = ?shadow,
                "{metric} below its alert level")
            }
            Zone::Acting if !snapshot.stand_in_tiers.is_empty() => {
                tracing::warn!(account = %self.name, distance = %m.distance, buffer = %m.buffer,
                stand_in_tiers = ?snapshot.stand_in_tiers, shadowed = ?shadow,
                "{metric} below its trigger: topping up, sized on stand-in tiers (the venue's tier table was unreadable)")
            }
            Zone::Acting => {
                tracing::info!(account = %self.name, distance = %m.distance, buffer = %m.buffer,
                shadowed = ?shadow, "{metric} below its trigger: topping up")
            }
            Zone::Waiting => {
                tracing::warn!(account = %self.name, distance = %m.distance, buffer = %m.buffer,
                action = ?decision.action, "{metric} below its trigger: waiting for the transfer in flight")
            }
            Zone::Stuck => {
                tracing::error!(account = %self.name, buffer = %m.buffer, distance = %m.distance,
                action = ?decision.action, shadowed = ?shadow, "{metric} below its trigger and no top-up can be made")
            }
        }
    }

    fn emit(&self, at: Timestamp, kind: EventKind) {
        if let Some(events) = &self.events {
            // A closed receiver means nobody renders a timeline; the logs still have it all.
            let _ = events.send(Event {
                account: self.name.clone(),
                at,
                kind,
            });
        }
    }
}

/// Runs every account until each stops or `shutdown` completes; then gives the runners
/// `grace` to finish the step they are in before abandoning them. A runner that dies (a
/// panic) is reported as `StopReason::Failed` and stops the others: an account that went
/// unguarded must end the process non-zero (a service manager restarts it), never look like
/// a normal run.
pub async fn run_accounts(
    runners: Vec<AccountRunner>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> Vec<AccountExit> {
    let (trigger, listener) = shutdown::channel();
    let mut tasks = tokio::task::JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for runner in runners {
        let name = runner.name.to_string();
        let handle = tasks.spawn(runner.run(listener.clone()));
        names.insert(handle.id(), name);
    }
    let mut exits = Vec::new();
    tokio::select! {
        _ = collect_exits(&mut tasks, &names, &mut exits, &trigger) => return sorted(exits),
        _ = shutdown => {}
    }
    tracing::info!(?grace, "shutting down: finishing the steps in flight");
    trigger.trigger();
    if tokio::time::timeout(
        grace,
        collect_exits(&mut tasks, &names, &mut exits, &trigger),
    )
    .await
    .is_err()
    {
        tracing::error!(
            remaining = tasks.len(),
            "grace period over; abandoning runners mid-step"
        );
        tasks.abort_all();
    }
    sorted(exits)
}

async fn collect_exits(
    tasks: &mut tokio::task::JoinSet<AccountExit>,
    names: &std::collections::HashMap<tokio::task::Id, String>,
    exits: &mut Vec<AccountExit>,
    trigger: &ShutdownTrigger,
) {
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, exit)) => exits.push(exit),
            Err(error) => {
                let name = names.get(&error.id()).cloned().unwrap_or_default();
                let why = panic_message(error);
                tracing::error!(account = %name, alert = true, %why,
                    "account runner FAILED; the account is unguarded: stopping every account so the process exits non-zero");
                exits.push(AccountExit {
                    name,
                    reason: StopReason::Failed(why),
                    spent: Usdt::ZERO,
                    rescues: 0,
                });
                trigger.trigger();
            }
        }
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    if error.is_cancelled() {
        return "cancelled".into();
    }
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".into())
}

fn sorted(mut exits: Vec<AccountExit>) -> Vec<AccountExit> {
    exits.sort_by(|a, b| a.name.cmp(&b.name));
    exits
}
