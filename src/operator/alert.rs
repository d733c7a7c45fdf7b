//! What the operator is told: one `Alert` per thing worth a message, with a severity.
//!
//! Alerts are built from the engine's events by `operator::alerts` (which also de-duplicates
//! them) and delivered by `operator::notify`. Nothing here does I/O.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::time::Timestamp;

/// How loud an alert is. Notifiers pass alerts at or above their `min_severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    /// Worth knowing: a top-up landed, a condition cleared, a normal shutdown.
    Info,
    /// Look when you can: below the alert level, a top-up sent, a cap bound, a stream fell back.
    Warning,
    /// Look now: below the floor, a transfer failed or its outcome is unknown, the account is
    /// blind, the reserve is exhausted, the key lost its rights, the journal cannot be written.
    Critical,
}

impl AlertSeverity {
    pub fn name(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }

    /// `info`, `warning` or `critical`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "info" => Some(AlertSeverity::Info),
            "warning" => Some(AlertSeverity::Warning),
            "critical" => Some(AlertSeverity::Critical),
            _ => None,
        }
    }
}

/// The kinds of thing an alert is about. The wire name (`name()`) is the webhook payload's
/// `event` field and a metric label, so it never changes once shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// The strategy's metric fell below its alert level (a condition: it clears).
    AlertLevel,
    TopUpSent,
    TopUpLanded,
    /// The venue refused the transfer, or reported it failed.
    TopUpFailed,
    /// The transfer call's answer was lost: it may or may not have moved money.
    TopUpUnknown,
    /// Below the floor (a condition).
    Emergency,
    /// The reserve is below `keep_at_least`, or what it can give is exhausted (a condition).
    ReserveLow,
    /// `max_per_rescue` or `max_per_day` bound a top-up or stopped one (a condition).
    CapReached,
    /// No usable snapshot (venue unreachable, answers unusable or stale) for longer than
    /// `alerts.blind_after` (a condition).
    Blind,
    /// The account's stream is down and it is watched by polling (a condition).
    StreamFallback,
    /// An open position is on isolated margin: left out of every decision (a condition).
    Unguarded,
    /// The venue refused the key's rights for a transfer: no more transfers until fixed.
    KeyProblem,
    /// A rescue could not be journaled, so its money did not move.
    JournalFailure,
    /// The daemon (or one account's runner) stopped.
    Shutdown,
}

impl AlertEvent {
    pub const ALL: [AlertEvent; 14] = [
        AlertEvent::AlertLevel,
        AlertEvent::TopUpSent,
        AlertEvent::TopUpLanded,
        AlertEvent::TopUpFailed,
        AlertEvent::TopUpUnknown,
        AlertEvent::Emergency,
        AlertEvent::ReserveLow,
        AlertEvent::CapReached,
        AlertEvent::Blind,
        AlertEvent::StreamFallback,
        AlertEvent::Unguarded,
        AlertEvent::KeyProblem,
        AlertEvent::JournalFailure,
        AlertEvent::Shutdown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlertEvent::AlertLevel => "alert_level",
            AlertEvent::TopUpSent => "top_up_sent",
            AlertEvent::TopUpLanded => "top_up_landed",
            AlertEvent::TopUpFailed => "top_up_failed",
            AlertEvent::TopUpUnknown => "top_up_unknown",
            AlertEvent::Emergency => "emergency",
            AlertEvent::ReserveLow => "reserve_low",
            AlertEvent::CapReached => "cap_reached",
            AlertEvent::Blind => "blind",
            AlertEvent::StreamFallback => "stream_fallback",
            AlertEvent::Unguarded => "unguarded",
            AlertEvent::KeyProblem => "key_problem",
            AlertEvent::JournalFailure => "journal_failure",
            AlertEvent::Shutdown => "shutdown",
        }
    }

    /// A condition has a start and an end: it is announced once and then "recovered" once.
    pub fn is_condition(self) -> bool {
        matches!(
            self,
            AlertEvent::AlertLevel
                | AlertEvent::Emergency
                | AlertEvent::ReserveLow
                | AlertEvent::CapReached
                | AlertEvent::Blind
                | AlertEvent::StreamFallback
                | AlertEvent::Unguarded
        )
    }
}

/// One message for the operator. Contains figures and reasons, never a secret: the engine's
/// events carry none, and notifiers add their own credentials only to the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub event: AlertEvent,
    pub severity: AlertSeverity,
    /// The config name of the account; `None` for the process as a whole.
    pub account: Option<String>,
    /// `sim`, `binance`, `bybit` or `okx`, when the alert is about an account.
    pub venue: Option<String>,
    /// When it happened, on the account's clock (simulated time under the simulator).
    pub at: Timestamp,
    /// One line: what happened, with the account's name.
    pub title: String,
    /// A few lines: the figures and what the operator may want to do.
    pub text: String,
    /// This alert says that a condition announced earlier has cleared.
    pub recovered: bool,
    /// Machine-readable figures (`amount`, `buffer`, `distance`, `key`, …), as strings.
    pub details: BTreeMap<String, String>,
}

impl Alert {
    /// The one-message form chat notifiers send: a severity mark, the title, the text.
    pub fn chat_text(&self) -> String {
        let mark = match (self.recovered, self.severity) {
            (true, _) => "RECOVERED",
            (false, AlertSeverity::Info) => "INFO",
            (false, AlertSeverity::Warning) => "WARNING",
            (false, AlertSeverity::Critical) => "CRITICAL",
        };
        if self.text.is_empty() {
            format!("[{mark}] {}", self.title)
        } else {
            format!("[{mark}] {}\n{}", self.title, self.text)
        }
    }
}
