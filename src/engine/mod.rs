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
use crate::core::{decide, Action, Blocked, Caps, Decision, Severity, Situation, Strategy};
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
    /// How long a transfer whose outcome is unknown keeps being looked up before its absence
    /// at the venue is believed (a venue's records can lag the call).
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
}

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
        let window = setup
            .strategy
            .volatility
            .map(|v| v.window)
            .unwrap_or(Duration::from_secs(3600));
        let ledger = RescueLedger::open(setup.journal, &setup.name, setup.clock.now())?;
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
        })
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
            tokio::select! {
                biased;
                _ = shutdown.wait() => break StopReason::Shutdown,
                _ = self.clock.sleep_until(next) => {}
            }
            if let Err(reason) = self.tick().await {
                break reason;
            }
            if let Some(left) = self.ticks_left.as_mut() {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    break StopReason::TickLimit;
                }
            }
            // Missed ticks are skipped, not bunched: a late tick is followed by a full interval.
            next = (next + self.poll_interval).max(self.clock.now());
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
        let now = self.clock.now();
        self.reconcile(now).await;
        let snapshot = match self.venue.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(VenueError::Closed { reason }) => return Err(StopReason::VenueClosed(reason)),
            Err(error) => {
                self.no_decision(now, format!("snapshot failed: {error}"));
                return Ok(());
            }
        };
        let age = now.since(snapshot.as_of);
        if age > self.max_snapshot_age() {
            self.no_decision(
                now,
                format!("snapshot is stale ({age:?} old, as of {})", snapshot.as_of),
            );
            return Ok(());
        }
        self.verify_landed(now, &snapshot);
        self.volatility
            .observe(snapshot.as_of, &snapshot.account.positions);
        let decision = self.decide(now, &snapshot);
        self.log_decision(&decision, &snapshot);
        self.emit(
            now,
            EventKind::Observed {
                decision: Box::new(decision.clone()),
                snapshot: Box::new(snapshot.clone()),
            },
        );
        if let Some(top_up) = decision.action.top_up() {
            self.send(now, &decision, top_up.amount, &snapshot).await;
        }
        Ok(())
    }

    /// Older than two poll intervals (at least 10 s) means "no decision this tick".
    fn max_snapshot_age(&self) -> Duration {
        (self.poll_interval * 2).max(Duration::from_secs(10))
    }

    fn decide(&self, now: Timestamp, snapshot: &VenueSnapshot) -> Decision {
        let rules = self.venue.transfer_rules();
        let situation = Situation {
            account: &snapshot.account,
            reserve_available: snapshot.reserve_available,
            rescues: self.ledger.state(now),
            now,
            volatility: self.volatility.per_sqrt_second(),
            rescue_horizon: self.poll_interval + rules.settlement,
            transfer_step: rules.step,
        };
        decide(&situation, &self.strategy, &self.caps)
    }

    async fn send(
        &mut self,
        now: Timestamp,
        decision: &Decision,
        amount: Usdt,
        snapshot: &VenueSnapshot,
    ) {
        let request = TransferRequest {
            key: TransferKey::derive(&self.name, now, self.sequence, self.key_salt),
            amount,
            created_at: now,
        };
        self.sequence += 1;
        failpoint::hit(failpoint::BEFORE_INTENT);
        let intent = RescueRecord {
            key: request.key,
            account: self.name.to_string(),
            venue: self.venue.kind().to_string(),
            asset: "USDT".into(),
            amount,
            created_at: now,
            reason: self.reason(decision),
            buffer_before: decision.metrics.buffer.to_string(),
            buffer_after: None,
            wallet_before: snapshot.wallet_balance,
            state: RescueStage::Intent,
            venue_id: None,
            detail: None,
            verified: false,
            updated_at: now,
        };
        if let Err(error) = self.ledger.record_intent(intent) {
            // No durable intent, no transfer: a crash now could not be reconciled.
            tracing::error!(account = %self.name, %error, "journal write failed; top-up NOT sent");
            self.emit(
                now,
                EventKind::NoDecision {
                    reason: format!("journal write failed: {error}"),
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
        self.record(StateChange {
            venue_id: venue_id.as_deref(),
            detail: detail.as_deref(),
            ..StateChange::to(request.key, stage, self.clock.now())
        });
        (result, stage)
    }

    /// The decision in words, for the journal.
    fn reason(&self, decision: &Decision) -> String {
        let kind = if matches!(decision.action, Action::Emergency { .. }) {
            "EMERGENCY: "
        } else {
            ""
        };
        format!(
            "{kind}{} {} < {} (refill to {})",
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
        }
    }

    /// Asks the venue about every transfer whose outcome is open — including intents found in
    /// the journal after a restart, which may or may not have been sent.
    async fn reconcile(&mut self, now: Timestamp) {
        let open: Vec<RescueRecord> = self
            .ledger
            .entries()
            .iter()
            .filter(|r| r.state.is_open())
            .cloned()
            .collect();
        for rescue in open {
            let request = TransferRequest {
                key: rescue.key,
                amount: rescue.amount,
                created_at: rescue.created_at,
            };
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
                // A transfer the venue accepted is waited for. One whose call may never have
                // been made, or whose answer was lost, is believed absent only once the venue
                // has had time to show it.
                // Where the venue refuses a repeated key, a transfer it does not show is sent
                // again under that key at once: if the first landed, the second is refused.
                TransferStatus::NotFound
                    if rescue.state != RescueStage::Acked
                        && self.venue.refuses_duplicate_keys() =>
                {
                    tracing::warn!(account = %self.name, key = %request.key, "transfer with unknown outcome is absent at the venue; resending it under the same key");
                    let (result, stage) = self.call_transfer(&request).await;
                    if let Err(error) = result {
                        tracing::error!(account = %self.name, key = %request.key, %error, stage = %stage, "resend not confirmed");
                    }
                }
                TransferStatus::NotFound
                    if rescue.state != RescueStage::Acked
                        && now.since(request.created_at) >= self.unknown_outcome_grace =>
                {
                    tracing::warn!(account = %self.name, key = %request.key, "transfer with unknown outcome is absent at the venue; released");
                    self.record(StateChange {
                        detail: Some("absent at the venue after the grace period"),
                        ..StateChange::to(request.key, RescueStage::Rejected, now)
                    });
                }
                TransferStatus::NotFound | TransferStatus::Pending => {}
            }
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
            let rise = snapshot.wallet_balance - rescue.wallet_before;
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

    fn no_decision(&mut self, now: Timestamp, reason: String) {
        tracing::warn!(account = %self.name, %reason, "no decision this tick");
        self.emit(now, EventKind::NoDecision { reason });
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
/// `grace` to finish the step they are in before abandoning them.
pub async fn run_accounts(
    runners: Vec<AccountRunner>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> Vec<AccountExit> {
    let (trigger, listener) = shutdown::channel();
    let mut tasks = tokio::task::JoinSet::new();
    for runner in runners {
        tasks.spawn(runner.run(listener.clone()));
    }
    let mut exits = Vec::new();
    tokio::select! {
        _ = collect_exits(&mut tasks, &mut exits) => return sorted(exits),
        _ = shutdown => {}
    }
    tracing::info!(?grace, "shutting down: finishing the steps in flight");
    trigger.trigger();
    if tokio::time::timeout(grace, collect_exits(&mut tasks, &mut exits))
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
    exits: &mut Vec<AccountExit>,
) {
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(exit) => exits.push(exit),
            Err(error) => tracing::error!(%error, "account runner panicked"),
        }
    }
}

fn sorted(mut exits: Vec<AccountExit>) -> Vec<AccountExit> {
    exits.sort_by(|a, b| a.name.cmp(&b.name));
    exits
}
