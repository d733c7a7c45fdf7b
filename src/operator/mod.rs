//! The operator's side: what a person (or their monitoring) hears of a running daemon —
//! alerts to a phone, a dead-man heartbeat, Prometheus metrics, health checks and a read-only
//! status page. See docs/operator.md for the config keys, metric names and payloads.
//!
//! Architecture invariant: nothing here can slow or stop a rescue. The engine hands its
//! events over an unbounded channel and never waits on this side; `Operator::observe` only
//! updates the board and hands alerts to sinks that never block (bounded queues with
//! timeouts; a full queue drops and counts). Nothing here moves money or writes the journal.

pub mod alert;
pub mod alerts;
pub mod board;
pub mod heartbeat;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod settings;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use alert::{Alert, AlertEvent, AlertSeverity};
pub use alerts::AlertRules;
pub use heartbeat::{Heartbeat, HeartbeatSettings, HeartbeatStats, RawHeartbeat};
pub use notify::{NotifierKind, NotifierSettings, NotifierStats, Notifiers, RawNotifier};

use crate::clock::Clock;
use crate::engine::{AccountExit, Event, EventKind, StopReason};
use crate::journal::Journal;
use crate::time::Timestamp;
use crate::venue::Venue;
use alerts::Alerter;
use board::{AccountInfo, AccountStatus};
use status::{AccountReport, StatusReport, RESCUES_SHOWN};

/// Where alerts go. `send` must never block or await: it is called on the event path.
#[async_trait::async_trait]
pub trait AlertSink: Send + Sync {
    fn send(&self, alert: &Alert);
    fn counts(&self) -> Vec<NotifierStats>;
    /// At shutdown: deliver what is queued, for at most `within`.
    async fn flush(&self, within: Duration);
}

/// The dead-man heartbeat. Neither call may block.
pub trait PingSink: Send + Sync {
    /// After a healthy tick; pings at most once per interval.
    fn healthy(&self);
    /// While unhealthy (an account blind, a runner failed).
    fn unhealthy(&self);
    /// Pings by result.
    fn counts(&self) -> HeartbeatStats;
}

/// One account as the operator side watches it.
pub struct WatchedAccount {
    pub info: AccountInfo,
    /// The account's clock: ages and blindness are judged on it (simulated time under the
    /// simulator).
    pub clock: Clock,
    pub venue: Arc<dyn Venue>,
    pub journal: Arc<Journal>,
}

struct Watched {
    clock: Clock,
    venue: Arc<dyn Venue>,
    journal: Arc<Journal>,
}

struct State {
    statuses: Vec<AccountStatus>,
    alerter: Alerter,
}

struct Inner {
    watched: Vec<Watched>,
    index: HashMap<String, usize>,
    state: Mutex<State>,
    alerts: Option<Arc<dyn AlertSink>>,
    heartbeat: Option<Arc<dyn PingSink>>,
    rules: AlertRules,
}

/// The operator side of one daemon: cheap to clone, shared by the event collector, the timer
/// and the HTTP endpoint.
#[derive(Clone)]
pub struct Operator {
    inner: Arc<Inner>,
}

impl Operator {
    pub fn new(
        accounts: Vec<WatchedAccount>,
        rules: AlertRules,
        alerts: Option<Arc<dyn AlertSink>>,
        heartbeat: Option<Arc<dyn PingSink>>,
    ) -> Self {
        let mut watched = Vec::with_capacity(accounts.len());
        let mut statuses = Vec::with_capacity(accounts.len());
        let mut index = HashMap::new();
        for (i, account) in accounts.into_iter().enumerate() {
            index.insert(account.info.name.clone(), i);
            statuses.push(AccountStatus::new(account.info, account.clock.now()));
            watched.push(Watched {
                clock: account.clock,
                venue: account.venue,
                journal: account.journal,
            });
        }
        Self {
            inner: Arc::new(Inner {
                watched,
                index,
                state: Mutex::new(State {
                    statuses,
                    alerter: Alerter::new(rules),
                }),
                alerts,
                heartbeat,
                rules,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The board holds figures for display; a panic elsewhere leaves them readable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Folds one engine event into the board and sends the alerts it calls for. Never
    /// blocks: called on the path every event takes.
    pub fn observe(&self, event: &Event) {
        let Some(&i) = self.inner.index.get(&*event.account) else {
            return;
        };
        let feed = self.inner.watched[i].venue.feed();
        let (alerts, health) = {
            let mut state = self.state();
            let State { statuses, alerter } = &mut *state;
            statuses[i].apply(event, feed);
            let alerts = alerter.on_event(&statuses[i], event);
            (alerts, self.health(statuses))
        };
        self.deliver(&alerts);
        if let Some(heartbeat) = &self.inner.heartbeat {
            match (health, &event.kind) {
                (Health::Healthy, EventKind::Observed { .. }) => heartbeat.healthy(),
                (Health::Unhealthy, _) => heartbeat.unhealthy(),
                _ => {}
            }
        }
    }

    /// The checks no event triggers: an account whose runner hangs or whose venue answers
    /// nothing for minutes sends no event, so a timer asks.
    pub fn check_time(&self) {
        let (alerts, health) = {
            let mut state = self.state();
            let State { statuses, alerter } = &mut *state;
            let mut alerts = Vec::new();
            for (status, watched) in statuses.iter().zip(&self.inner.watched) {
                alerts.extend(alerter.on_time(status, watched.clock.now()));
            }
            (alerts, self.health(statuses))
        };
        self.deliver(&alerts);
        if let (Some(heartbeat), Health::Unhealthy) = (&self.inner.heartbeat, health) {
            heartbeat.unhealthy();
        }
    }

    /// Healthy: every account fresh. Unhealthy: one is blind or its runner failed. Neither
    /// while accounts are still starting (no ping either way).
    fn health(&self, statuses: &[AccountStatus]) -> Health {
        let max_age = self.inner.rules.blind_after;
        let mut all_fresh = true;
        for (status, watched) in statuses.iter().zip(&self.inner.watched) {
            let now = watched.clock.now();
            if matches!(status.stopped, Some(StopReason::Failed(_)))
                || status.blind_for(now) >= max_age
            {
                return Health::Unhealthy;
            }
            all_fresh &= status.is_fresh(now, max_age);
        }
        if all_fresh {
            Health::Healthy
        } else {
            Health::Starting
        }
    }

    fn deliver(&self, alerts: &[Alert]) {
        for alert in alerts {
            log_alert(alert);
            if let Some(sink) = &self.inner.alerts {
                sink.send(alert);
            }
        }
    }

    /// The one "stopped" alert, with every account's reason, then at most `within` for the
    /// notifiers to deliver what is queued.
    pub async fn stopped(&self, exits: &[AccountExit], within: Duration) {
        let at = self
            .inner
            .watched
            .first()
            .map_or(Timestamp(0), |w| w.clock.now());
        let failed = exits
            .iter()
            .any(|e| matches!(e.reason, StopReason::Failed(_)));
        let lines: Vec<String> = exits
            .iter()
            .map(|e| format!("{}: {:?}, {} USDT spent", e.name, e.reason, e.spent))
            .collect();
        self.deliver(&[alerts::shutdown_alert(at, &lines, failed)]);
        if let Some(sink) = &self.inner.alerts {
            sink.flush(within).await;
        }
    }

    /// Every account ready (a snapshot fresher than `blind_after`), or the names of those
    /// that are not.
    pub fn ready(&self) -> Result<(), Vec<String>> {
        let state = self.state();
        let max_age = self.inner.rules.blind_after;
        let not_ready: Vec<String> = state
            .statuses
            .iter()
            .zip(&self.inner.watched)
            .filter(|(s, w)| !s.is_fresh(w.clock.now(), max_age))
            .map(|(s, _)| s.info.name.clone())
            .collect();
        if not_ready.is_empty() {
            Ok(())
        } else {
            Err(not_ready)
        }
    }

    /// `/metrics`.
    pub fn metrics(&self) -> String {
        let state = self.state();
        let accounts = state
            .statuses
            .iter()
            .zip(&self.inner.watched)
            .map(|(s, w)| (s, w.clock.now()))
            .collect();
        let suppressed = state
            .alerter
            .suppressed()
            .iter()
            .map(|(event, count)| (event.name(), *count))
            .collect();
        metrics::render(&metrics::Scrape {
            accounts,
            max_age: self.inner.rules.blind_after,
            endpoints: crate::venue::common::usage::endpoints(),
            waits: crate::venue::common::usage::waits(),
            notifiers: self
                .inner
                .alerts
                .as_ref()
                .map(|a| a.counts())
                .unwrap_or_default(),
            suppressed,
            heartbeat: self.inner.heartbeat.as_ref().map(|h| h.counts()),
        })
    }

    /// `/status.json` and `marginguard status`. Reads each account's latest journal rows
    /// outside the board's lock (SQLite may take a moment; the event path must not wait).
    pub fn status(&self) -> StatusReport {
        let statuses: Vec<(AccountStatus, Timestamp)> = {
            let state = self.state();
            state
                .statuses
                .iter()
                .zip(&self.inner.watched)
                .map(|(s, w)| (s.clone(), w.clock.now()))
                .collect()
        };
        let max_age = self.inner.rules.blind_after;
        let accounts: Vec<AccountReport> = statuses
            .iter()
            .zip(&self.inner.watched)
            .map(|((status, now), watched)| {
                let rescues = watched
                    .journal
                    .recent(&status.info.name, RESCUES_SHOWN)
                    .unwrap_or_else(|error| {
                        tracing::warn!(account = %status.info.name, %error, "status: journal unreadable");
                        Vec::new()
                    });
                AccountReport::of(status, *now, max_age, &rescues)
            })
            .collect();
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            generated_at: status::utc(crate::clock::Clock::Wall.now()),
            ready: accounts.iter().all(|a| a.fresh),
            accounts,
        }
    }

    /// Runs `check_time` every second until `stop` completes.
    pub async fn run_timer(self, stop: impl std::future::Future<Output = ()>) {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = every.tick() => self.check_time(),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Healthy,
    Unhealthy,
    Starting,
}

/// Every alert is also a log line, so the journal of the service manager has them all even
/// without a notifier.
fn log_alert(alert: &Alert) {
    let account = alert.account.as_deref().unwrap_or("-");
    match alert.severity {
        AlertSeverity::Critical => {
            tracing::error!(
                account,
                event = alert.event.name(),
                alert = true,
                "{}",
                alert.title
            )
        }
        AlertSeverity::Warning => {
            tracing::warn!(
                account,
                event = alert.event.name(),
                alert = true,
                "{}",
                alert.title
            )
        }
        AlertSeverity::Info => {
            tracing::info!(
                account,
                event = alert.event.name(),
                alert = true,
                "{}",
                alert.title
            )
        }
    }
}

/// The running notifiers as the operator's sink. `flush` consumes them, so they sit in an
/// `Option` that the shutdown takes.
pub struct NotifierSink {
    running: Mutex<Option<Notifiers>>,
    /// The counters as they stood when the notifiers were flushed, for a scrape after that.
    at_flush: Mutex<Vec<NotifierStats>>,
}

impl NotifierSink {
    /// Starts one worker per notifier (inside a tokio runtime).
    pub fn start(settings: Vec<NotifierSettings>) -> Self {
        Self {
            running: Mutex::new(Some(Notifiers::start(settings))),
            at_flush: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Notifiers>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl AlertSink for NotifierSink {
    fn send(&self, alert: &Alert) {
        if let Some(notifiers) = self.lock().as_ref() {
            notifiers.send(alert);
        }
    }

    fn counts(&self) -> Vec<NotifierStats> {
        match self.lock().as_ref() {
            Some(notifiers) => notifiers.stats(),
            None => self
                .at_flush
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    async fn flush(&self, within: Duration) {
        let notifiers = self.lock().take();
        if let Some(notifiers) = notifiers {
            let counts = notifiers.stats();
            *self
                .at_flush
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = counts;
            notifiers.flush(within).await;
        }
    }
}

impl PingSink for Heartbeat {
    fn healthy(&self) {
        Heartbeat::healthy(self);
    }

    fn unhealthy(&self) {
        Heartbeat::unhealthy(self);
    }

    fn counts(&self) -> HeartbeatStats {
        self.stats()
    }
}
