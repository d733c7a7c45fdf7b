//! The operator's side: what a person (or their monitoring) hears of a running daemon —
//! alerts to a phone, a dead-man heartbeat, Prometheus metrics, health checks and a read-only
//! status page. See docs/operator.md for the config keys, metric names and payloads.
//!
//! Architecture invariant: nothing here can slow or stop a rescue. The engine hands its
//! events over an unbounded channel and never waits on this side; notifiers and the heartbeat
//! sit behind bounded queues with timeouts, and a full queue drops (and counts) an alert
//! rather than blocking. Nothing here moves money or writes the journal.

pub mod alert;
pub mod heartbeat;
pub mod notify;

pub use alert::{Alert, AlertEvent, AlertSeverity};
pub use heartbeat::{Heartbeat, HeartbeatSettings, HeartbeatStats, RawHeartbeat};
pub use notify::{NotifierKind, NotifierSettings, NotifierStats, Notifiers, RawNotifier};
