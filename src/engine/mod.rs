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
use crate::money::Usdt;
use crate::time::Timestamp;
use crate::venue::{
    TransferKey, TransferRequest, TransferStatus, Venue, VenueError, VenueSnapshot,
};
pub use events::{Event, EventKind};
use ledger::{Progress, RescueLedger};
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
}

/// Why an account runner stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Shutdown,
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
    ledger: RescueLedger,
    volatility: RealizedVolatility,
    events: EventSink,
    sequence: u64,
    last_zone: Option<Zone>,
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
    pub fn new(setup: AccountSetup, events: EventSink) -> Self {
        let window = setup
            .strategy
            .volatility
            .map(|v| v.window)
            .unwrap_or(Duration::from_secs(3600));
        Self {
            name: setup.name.into(),
            venue: setup.venue,
            strategy: setup.strategy,
            caps: setup.caps,
            poll_interval: setup.poll_interval,
            clock: setup.clock,
            key_salt: setup.key_salt,
            ledger: RescueLedger::default(),
            volatility: RealizedVolatility::new(window),
            events,
            sequence: 0,
            last_zone: None,
        }
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
            self.send(now, top_up.amount, &decision.action, &snapshot)
                .await;
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
        amount: Usdt,
        action: &Action,
        snapshot: &VenueSnapshot,
    ) {
        let request = TransferRequest {
            key: TransferKey::derive(&self.name, now, self.sequence, self.key_salt),
            amount,
            created_at: now,
        };
        self.sequence += 1;
        let result = self.venue.transfer(&request).await;
        let progress = match &result {
            Ok(receipt) if receipt.status == TransferStatus::Settled => Progress::Settled,
            Ok(_) => Progress::Sent,
            Err(error) if error.retry() == crate::venue::Retry::AfterReconcile => Progress::Unknown,
            Err(_) => Progress::NotMoved,
        };
        self.ledger
            .record(request.clone(), progress, snapshot.wallet_balance);
        match result {
            Ok(receipt) => {
                tracing::warn!(account = %self.name, amount = %amount, key = %request.key,
                    venue_id = ?receipt.venue_id, "top-up sent: {amount} USDT into the futures wallet");
                self.emit(
                    now,
                    EventKind::TransferSent {
                        request,
                        action: *action,
                    },
                );
            }
            Err(error) => {
                tracing::error!(account = %self.name, amount = %amount, key = %request.key,
                    %error, ?progress, "top-up not confirmed");
                self.emit(
                    now,
                    EventKind::TransferNotConfirmed {
                        request,
                        error: error.to_string(),
                        unknown: progress == Progress::Unknown,
                    },
                );
            }
        }
    }

    /// Asks the venue about every transfer whose outcome is open.
    async fn reconcile(&mut self, now: Timestamp) {
        let grace = self.venue.transfer_rules().settlement * 3 + Duration::from_secs(60);
        let open: Vec<(usize, TransferRequest, Progress)> = self
            .ledger
            .entries()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.unresolved())
            .map(|(i, r)| (i, r.request.clone(), r.progress))
            .collect();
        for (index, request, progress) in open {
            let status = match self.venue.transfer_status(&request).await {
                Ok(status) => status,
                Err(error) => {
                    tracing::warn!(account = %self.name, key = %request.key, %error, "transfer lookup failed; still counted as spent");
                    continue;
                }
            };
            let next = match status {
                TransferStatus::Settled => Some(Progress::Settled),
                TransferStatus::Failed(reason) => {
                    tracing::warn!(account = %self.name, key = %request.key, reason, "venue reports the transfer failed");
                    self.emit(
                        now,
                        EventKind::TransferFailed {
                            request: request.clone(),
                            reason,
                        },
                    );
                    Some(Progress::NotMoved)
                }
                // An unknown outcome the venue still does not know after the grace period did
                // not happen; an acknowledged one is waited for.
                TransferStatus::NotFound
                    if progress == Progress::Unknown && now.since(request.created_at) > grace =>
                {
                    tracing::warn!(account = %self.name, key = %request.key, "transfer with unknown outcome is absent at the venue; released");
                    Some(Progress::NotMoved)
                }
                TransferStatus::NotFound | TransferStatus::Pending => None,
            };
            if let Some(next) = next {
                if let Some(entry) = self.ledger.entries_mut().nth(index) {
                    entry.progress = next;
                }
            }
        }
    }

    /// A settled transfer must show in the wallet; say so either way, once.
    fn verify_landed(&mut self, now: Timestamp, snapshot: &VenueSnapshot) {
        let mut landed = Vec::new();
        for entry in self.ledger.entries_mut() {
            if entry.progress != Progress::Settled || entry.verified {
                continue;
            }
            entry.verified = true;
            let rise = snapshot.wallet_balance - entry.wallet_before;
            landed.push((entry.request.clone(), rise >= entry.request.amount, rise));
        }
        for (request, verified, rise) in landed {
            if verified {
                tracing::info!(account = %self.name, amount = %request.amount, key = %request.key, "top-up landed");
            } else {
                tracing::warn!(account = %self.name, amount = %request.amount, key = %request.key, %rise,
                    "venue reports the top-up settled but the futures wallet rose by less");
            }
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
