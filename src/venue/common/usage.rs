//! What the venues' budgets were spent on, for `/metrics`: requests and weight per endpoint,
//! and the waits for the local budget. Process-wide, because every adapter's pipeline
//! records into it and the operator reads it; keyed by `&'static str` venue names and paths
//! written in the code, so it holds one entry per endpoint however long the daemon runs.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Requests sent to one endpoint, and the budget weight they drew.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointUsage {
    pub requests: u64,
    pub weight: u64,
}

/// Requests that had to wait for the local budget, and for how long in all.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Waits {
    pub count: u64,
    pub total: Duration,
}

#[derive(Debug, Default)]
struct Usage {
    endpoints: BTreeMap<(&'static str, &'static str), EndpointUsage>,
    waits: BTreeMap<&'static str, Waits>,
}

fn usage() -> &'static Mutex<Usage> {
    static USAGE: OnceLock<Mutex<Usage>> = OnceLock::new();
    USAGE.get_or_init(Mutex::default)
}

fn with_usage<T>(f: impl FnOnce(&mut Usage) -> T) -> T {
    // A panic elsewhere while holding the lock leaves counters, not money: read on.
    let mut guard = usage().lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard)
}

/// One request sent to `venue`'s `path`, drawing `weight` from its budget.
pub fn record_request(venue: &'static str, path: &'static str, weight: u32) {
    with_usage(|u| {
        let entry = u.endpoints.entry((venue, path)).or_default();
        entry.requests = entry.requests.saturating_add(1);
        entry.weight = entry.weight.saturating_add(u64::from(weight));
    });
}

/// A request to `venue` waited `waited` for the local budget.
pub fn record_wait(venue: &'static str, waited: Duration) {
    with_usage(|u| {
        let entry = u.waits.entry(venue).or_default();
        entry.count = entry.count.saturating_add(1);
        entry.total = entry.total.saturating_add(waited);
    });
}

/// Every endpoint's usage so far, by `(venue, path)`.
pub fn endpoints() -> Vec<((&'static str, &'static str), EndpointUsage)> {
    with_usage(|u| u.endpoints.iter().map(|(k, v)| (*k, *v)).collect())
}

/// Every venue's waits so far.
pub fn waits() -> Vec<(&'static str, Waits)> {
    with_usage(|u| u.waits.iter().map(|(k, v)| (*k, *v)).collect())
}
