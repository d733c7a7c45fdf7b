//! The status board: what the operator side knows of each account, kept from the engine's
//! events. `/metrics`, `/status.json`, the page, `/readyz` and the heartbeat all read it.
//!
//! Bounded however long the daemon runs: per account one latest observation, the last
//! `DECISIONS_KEPT` changes of action, counters and a fixed-bucket histogram.

use std::collections::VecDeque;
use std::time::Duration;

use crate::core::{Action, Caps, Decision, Levels, MetricKind, Metrics, RescueState};
use crate::engine::{Event, EventKind, StopReason};
use crate::money::Usdt;
use crate::report::action_label;
use crate::time::Timestamp;
use crate::venue::{FeedHealth, VenueSnapshot};

/// How many changes of action each account keeps for the page.
pub const DECISIONS_KEPT: usize = 10;

/// What is fixed about an account for the daemon's lifetime, from its config.
#[derive(Debug, Clone)]
pub struct AccountInfo {
    pub name: String,
    pub venue: &'static str,
    /// `live`, `dry-run` or `simulated`.
    pub mode: &'static str,
    pub strategy: String,
    pub metric: MetricKind,
    pub caps: Caps,
}

/// The figures of the last usable snapshot and the decision made on it.
#[derive(Debug, Clone)]
pub struct Observation {
    /// When the tick decided (the account's clock).
    pub at: Timestamp,
    /// When the venue produced the figures.
    pub as_of: Timestamp,
    pub equity: Usdt,
    pub maintenance: Usdt,
    pub wallet_balance: Usdt,
    pub reserve_available: Usdt,
    pub metrics: Metrics,
    pub levels: Levels,
    pub action: Action,
    pub rescues: RescueState,
    /// Open positions on isolated margin, left out and unguarded.
    pub unguarded: Vec<String>,
}

/// One change of action, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionLine {
    pub at: Timestamp,
    pub action: String,
    /// The strategy's metric when it changed.
    pub value: String,
}

/// Top-ups by outcome, counted as their events arrive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopUpCounts {
    pub sent: u64,
    pub landed: u64,
    pub failed: u64,
    pub unknown: u64,
    pub lapsed: u64,
}

/// Upper bounds of the decision-latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A Prometheus-style histogram with fixed buckets: constant memory.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Counts per bucket of `LATENCY_BUCKETS` (not cumulative); the last slot is `+Inf`.
    pub counts: [u64; LATENCY_BUCKETS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[slot] = self.counts[slot].saturating_add(1);
        self.sum_seconds += seconds;
        self.count = self.count.saturating_add(1);
    }
}

/// What the page's badge says about the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Starting,
    Healthy,
    Warning,
    Acting,
    Waiting,
    Stuck,
    Emergency,
    Blind,
    Stopped,
}

impl AccountState {
    pub fn name(self) -> &'static str {
        match self {
            AccountState::Starting => "starting",
            AccountState::Healthy => "healthy",
            AccountState::Warning => "warning",
            AccountState::Acting => "acting",
            AccountState::Waiting => "waiting",
            AccountState::Stuck => "stuck",
            AccountState::Emergency => "emergency",
            AccountState::Blind => "blind",
            AccountState::Stopped => "stopped",
        }
    }

    fn of(action: &Action) -> AccountState {
        use crate::core::{Blocked, Severity};
        match action {
            Action::Hold => AccountState::Healthy,
            Action::Alert {
                severity: Severity::Warning,
                ..
            } => AccountState::Warning,
            Action::TopUp(_) => AccountState::Acting,
            Action::Emergency { .. } => AccountState::Emergency,
            Action::Alert {
                blocked: Some(Blocked::InFlight(_)),
                ..
            } => AccountState::Waiting,
            Action::Alert { .. } => AccountState::Stuck,
        }
    }
}

/// Everything the board holds for one account.
#[derive(Debug, Clone)]
pub struct AccountStatus {
    pub info: AccountInfo,
    pub last: Option<Observation>,
    /// The first tick without a usable snapshot since the last usable one.
    pub failing_since: Option<Timestamp>,
    pub last_failure: Option<String>,
    /// Newest last; at most `DECISIONS_KEPT`.
    pub decisions: VecDeque<DecisionLine>,
    pub top_ups: TopUpCounts,
    pub ticks_decided: u64,
    pub ticks_without_decision: u64,
    pub latency: Histogram,
    pub feed: Option<FeedHealth>,
    pub stopped: Option<StopReason>,
    /// The venue refused the key's rights: no more transfers from this account.
    pub transfers_stopped: Option<String>,
    /// When the board first heard of the account (its clock): "blind since" before any
    /// snapshot arrived.
    pub watched_since: Timestamp,
}

impl AccountStatus {
    pub fn new(info: AccountInfo, now: Timestamp) -> Self {
        Self {
            info,
            last: None,
            failing_since: None,
            last_failure: None,
            decisions: VecDeque::with_capacity(DECISIONS_KEPT),
            top_ups: TopUpCounts::default(),
            ticks_decided: 0,
            ticks_without_decision: 0,
            latency: Histogram::default(),
            feed: None,
            stopped: None,
            transfers_stopped: None,
            watched_since: now,
        }
    }

    /// Folds one engine event in. `feed` is the venue's feed as read when the event arrived.
    pub fn apply(&mut self, event: &Event, feed: Option<FeedHealth>) {
        match &event.kind {
            EventKind::Observed {
                decision,
                snapshot,
                rescues,
                latency,
            } => self.observed(event.at, decision, snapshot, *rescues, *latency, feed),
            EventKind::NoDecision { reason } => {
                self.ticks_without_decision = self.ticks_without_decision.saturating_add(1);
                self.failing_since.get_or_insert(event.at);
                self.last_failure = Some(reason.clone());
            }
            EventKind::TransferSent { .. } => self.top_ups.sent += 1,
            EventKind::TransferLanded { .. } => self.top_ups.landed += 1,
            EventKind::TransferFailed { .. } => self.top_ups.failed += 1,
            EventKind::TransferNotConfirmed { unknown: true, .. } => self.top_ups.unknown += 1,
            EventKind::TransferNotConfirmed { unknown: false, .. } => self.top_ups.failed += 1,
            EventKind::TransferLapsed { .. } => self.top_ups.lapsed += 1,
            EventKind::TransfersStopped { reason } => self.transfers_stopped = Some(reason.clone()),
            EventKind::Stopped(reason) => self.stopped = Some(reason.clone()),
            EventKind::Blind { .. }
            | EventKind::Recovered { .. }
            | EventKind::JournalWriteFailed { .. } => {}
        }
    }

    fn observed(
        &mut self,
        at: Timestamp,
        decision: &Decision,
        snapshot: &VenueSnapshot,
        rescues: RescueState,
        latency: Duration,
        feed: Option<FeedHealth>,
    ) {
        self.ticks_decided = self.ticks_decided.saturating_add(1);
        self.latency.observe(latency);
        self.failing_since = None;
        self.last_failure = None;
        self.feed = feed;
        let label = action_label(&decision.action);
        if self
            .decisions
            .back()
            .is_none_or(|last| last.action != label)
        {
            if self.decisions.len() == DECISIONS_KEPT {
                self.decisions.pop_front();
            }
            self.decisions.push_back(DecisionLine {
                at,
                action: label,
                value: decision.value.to_string(),
            });
        }
        self.last = Some(Observation {
            at,
            as_of: snapshot.as_of,
            equity: snapshot.account.equity,
            maintenance: snapshot.account.maintenance,
            wallet_balance: snapshot.wallet_balance,
            reserve_available: snapshot.reserve_available,
            metrics: decision.metrics,
            levels: decision.levels,
            action: decision.action,
            rescues,
            unguarded: snapshot.unguarded.clone(),
        });
    }

    /// Since the last usable snapshot's figures, on the account's clock at `now`.
    pub fn snapshot_age(&self, now: Timestamp) -> Option<Duration> {
        self.last.as_ref().map(|last| now.since(last.as_of))
    }

    /// How long the account has gone without a usable snapshot at `now` (since its last
    /// usable tick, or since it was first watched): zero while it sees.
    pub fn blind_for(&self, now: Timestamp) -> Duration {
        match (&self.last, self.failing_since) {
            (_, None) if self.last.is_some() => Duration::ZERO,
            (Some(last), _) => now.since(last.at),
            (None, _) => now.since(self.watched_since),
        }
    }

    /// Fresh: a usable snapshot no older than `max_age`, and the runner still running.
    pub fn is_fresh(&self, now: Timestamp, max_age: Duration) -> bool {
        self.stopped.is_none() && self.snapshot_age(now).is_some_and(|age| age <= max_age)
    }

    pub fn state(&self, now: Timestamp, max_age: Duration) -> AccountState {
        if self.stopped.is_some() {
            return AccountState::Stopped;
        }
        match &self.last {
            None if self.failing_since.is_some() => AccountState::Blind,
            None => AccountState::Starting,
            Some(_) if self.blind_for(now) >= max_age || !self.is_fresh(now, max_age) => {
                AccountState::Blind
            }
            Some(last) => AccountState::of(&last.action),
        }
    }

    /// `streamed`, `polled`, or `polled (stream down)`.
    pub fn feed_name(&self) -> &'static str {
        match &self.feed {
            None => "polled",
            Some(feed) if feed.streaming => "streamed",
            Some(_) => "polled (stream down)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_puts_each_value_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        assert_eq!(h.counts[0], 2, "0.5 ms and 1 ms are ≤ 1 ms");
        assert_eq!(h.counts[2], 1, "3 ms is ≤ 5 ms");
        assert_eq!(h.counts[LATENCY_BUCKETS.len()], 1, "60 s is only ≤ +Inf");
        assert_eq!(h.count, 4);
    }
}
