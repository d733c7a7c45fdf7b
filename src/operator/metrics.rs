//! `/metrics`: the board, the venues' usage and the notifiers' counters in the Prometheus text
//! format (version 0.0.4). Names are listed in docs/operator.md; a test parses the output.
//!
//! Money goes out as the decimal strings it is held as: a scrape never rounds a figure
//! through `f64` (Prometheus parses them as floats on its side, for graphs only).

use std::fmt::Write;
use std::time::Duration;

use crate::core::{LiquidationDistance, MetricValue};
use crate::operator::board::{AccountStatus, LATENCY_BUCKETS};
use crate::operator::{HeartbeatStats, NotifierStats};
use crate::time::Timestamp;
use crate::venue::common::usage::{EndpointUsage, Waits};

/// Everything one scrape shows.
pub struct Scrape<'a> {
    /// Each account's board entry and the time on its clock now.
    pub accounts: Vec<(&'a AccountStatus, Timestamp)>,
    /// Fresh means a snapshot no older than this.
    pub max_age: Duration,
    pub endpoints: Vec<((&'static str, &'static str), EndpointUsage)>,
    pub waits: Vec<(&'static str, Waits)>,
    pub notifiers: Vec<NotifierStats>,
    /// De-duplicated alerts by event name.
    pub suppressed: Vec<(&'static str, u64)>,
    /// Heartbeat pings; `None` without a heartbeat.
    pub heartbeat: Option<HeartbeatStats>,
}

/// A metric family being written: its HELP/TYPE header once, then its samples.
struct Family<'o> {
    out: &'o mut String,
    name: &'static str,
}

impl<'o> Family<'o> {
    fn new(out: &'o mut String, name: &'static str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Self { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.sample_named(self.name, labels, value);
    }

    fn sample_named(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.out, "{name}");
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Label values escape backslash, double quote and newline (the text format's rule).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The sample value of a metric: its ratio, `+Inf` when unbounded, nothing when unknown.
fn metric_value(value: MetricValue) -> Option<String> {
    match value {
        MetricValue::Value(ratio) => Some(ratio.0.normalize().to_string()),
        MetricValue::Unbounded => Some("+Inf".into()),
        MetricValue::Unknown => None,
    }
}

fn distance_value(distance: LiquidationDistance) -> Option<String> {
    match distance {
        LiquidationDistance::Now => Some("0".into()),
        LiquidationDistance::Move(ratio) => Some(ratio.0.normalize().to_string()),
        LiquidationDistance::Never => Some("+Inf".into()),
        LiquidationDistance::Unknown => None,
    }
}

pub fn render(scrape: &Scrape<'_>) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let mut build = Family::new(
        &mut out,
        "marginguard_build_info",
        "gauge",
        "The running version.",
    );
    build.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1);
    account_figures(&mut out, scrape);
    account_activity(&mut out, scrape);
    venue_usage(&mut out, scrape);
    operator_counters(&mut out, scrape);
    out
}

type Figure = fn(&AccountStatus) -> Option<String>;

fn account_figures(out: &mut String, scrape: &Scrape<'_>) {
    let gauges: [(&'static str, &str, Figure); 10] = [
        (
            "marginguard_account_equity_usdt",
            "Equity (margin balance) at the last usable snapshot.",
            |s| s.last.as_ref().map(|l| l.equity.to_string()),
        ),
        (
            "marginguard_account_maintenance_usdt",
            "Maintenance margin at the last usable snapshot.",
            |s| s.last.as_ref().map(|l| l.maintenance.to_string()),
        ),
        (
            "marginguard_account_wallet_balance_usdt",
            "Futures wallet balance at the last usable snapshot.",
            |s| s.last.as_ref().map(|l| l.wallet_balance.to_string()),
        ),
        (
            "marginguard_margin_buffer_ratio",
            "1 - maintenance/equity.",
            |s| s.last.as_ref().and_then(|l| metric_value(l.metrics.buffer)),
        ),
        (
            "marginguard_cushion_ratio",
            "Cushion: (equity - maintenance) / initial margin.",
            |s| {
                s.last
                    .as_ref()
                    .and_then(|l| metric_value(l.metrics.cushion))
            },
        ),
        (
            "marginguard_liquidation_distance_ratio",
            "The correlated price move that would liquidate (+Inf: none does).",
            |s| {
                s.last
                    .as_ref()
                    .and_then(|l| distance_value(l.metrics.distance))
            },
        ),
        (
            "marginguard_reserve_available_usdt",
            "What the reserve wallet could send.",
            |s| s.last.as_ref().map(|l| l.reserve_available.to_string()),
        ),
        (
            "marginguard_spent_24h_usdt",
            "Moved into the futures wallet over the last 24 h, in flight included.",
            |s| {
                s.last
                    .as_ref()
                    .map(|l| l.rescues.spent_last_24h.to_string())
            },
        ),
        (
            "marginguard_in_flight_usdt",
            "Sent, not yet seen to land.",
            |s| s.last.as_ref().map(|l| l.rescues.in_flight.to_string()),
        ),
        (
            "marginguard_dry_run",
            "1 when the money-moving call is only logged.",
            |s| Some(u8::from(s.info.mode == "dry-run").to_string()),
        ),
    ];
    for (name, help, figure) in gauges {
        let mut family = Family::new(out, name, "gauge", help);
        for (status, _) in &scrape.accounts {
            if let Some(value) = figure(status) {
                family.sample(&labels(status), value);
            }
        }
    }
    let mut levels = Family::new(
        out,
        "marginguard_strategy_level_ratio",
        "gauge",
        "The strategy's levels in force (widened by volatility where the strategy says so).",
    );
    for (status, _) in &scrape.accounts {
        let Some(last) = &status.last else { continue };
        let l = last.levels;
        let metric = status.info.metric.name();
        for (level, ratio) in [
            ("alert_below", l.alert_below),
            ("top_up_below", l.top_up_below),
            ("target", l.target),
            ("floor", l.floor),
        ] {
            let [a, v] = labels(status);
            levels.sample(
                &[a, v, ("metric", metric), ("level", level)],
                ratio.0.normalize(),
            );
        }
    }
    let mut caps = Family::new(
        out,
        "marginguard_cap_usdt",
        "gauge",
        "The account's caps: max_per_rescue, max_per_day, keep_at_least.",
    );
    for (status, _) in &scrape.accounts {
        let c = &status.info.caps;
        for (cap, amount) in [
            ("max_per_rescue", c.max_per_rescue),
            ("max_per_day", c.max_per_day),
            ("keep_at_least", c.keep_at_least),
        ] {
            let [a, v] = labels(status);
            caps.sample(&[a, v, ("cap", cap)], amount.0.normalize());
        }
    }
}

fn labels(status: &AccountStatus) -> [(&'static str, &str); 2] {
    [
        ("account", status.info.name.as_str()),
        ("venue", status.info.venue),
    ]
}

fn account_activity(out: &mut String, scrape: &Scrape<'_>) {
    let mut top_ups = Family::new(
        out,
        "marginguard_top_ups_total",
        "counter",
        "Top-ups by outcome since the daemon started.",
    );
    for (status, _) in &scrape.accounts {
        let t = status.top_ups;
        for (outcome, count) in [
            ("sent", t.sent),
            ("landed", t.landed),
            ("failed", t.failed),
            ("unknown", t.unknown),
            ("lapsed", t.lapsed),
        ] {
            let [a, v] = labels(status);
            top_ups.sample(&[a, v, ("outcome", outcome)], count);
        }
    }
    let mut ticks = Family::new(
        out,
        "marginguard_ticks_total",
        "counter",
        "Ticks by result: decided on a usable snapshot, or no decision.",
    );
    for (status, _) in &scrape.accounts {
        let [a, v] = labels(status);
        ticks.sample(&[a, v, ("result", "decided")], status.ticks_decided);
        ticks.sample(
            &[a, v, ("result", "no_decision")],
            status.ticks_without_decision,
        );
    }
    let mut age = Family::new(
        out,
        "marginguard_snapshot_age_seconds",
        "gauge",
        "Seconds since the last usable snapshot's figures.",
    );
    for (status, now) in &scrape.accounts {
        if let Some(seconds) = status.snapshot_age(*now) {
            age.sample(&labels(status), seconds.as_secs_f64());
        }
    }
    let mut ready = Family::new(
        out,
        "marginguard_account_ready",
        "gauge",
        "1 when the account has a snapshot fresher than alerts.blind_after.",
    );
    for (status, now) in &scrape.accounts {
        let fresh = status.is_fresh(*now, scrape.max_age);
        ready.sample(&labels(status), u8::from(fresh));
    }
    let mut unguarded = Family::new(
        out,
        "marginguard_unguarded_positions",
        "gauge",
        "Open positions on isolated margin, left out of every decision.",
    );
    for (status, _) in &scrape.accounts {
        if let Some(last) = &status.last {
            unguarded.sample(&labels(status), last.unguarded.len());
        }
    }
    let mut stream = Family::new(
        out,
        "marginguard_stream_connected",
        "gauge",
        "1 while the account is streamed, 0 while it falls back to polling.",
    );
    for (status, _) in &scrape.accounts {
        if let Some(feed) = &status.feed {
            stream.sample(&labels(status), u8::from(feed.streaming));
        }
    }
    latency(out, scrape);
}

fn latency(out: &mut String, scrape: &Scrape<'_>) {
    let name = "marginguard_decision_latency_seconds";
    let mut family = Family::new(
        out,
        name,
        "histogram",
        "From a tick's start to its decision, snapshot fetch included.",
    );
    for (status, _) in &scrape.accounts {
        let h = &status.latency;
        let [a, v] = labels(status);
        let mut cumulative = 0u64;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(h.counts) {
            cumulative = cumulative.saturating_add(count);
            let le = bound.to_string();
            family.sample_named(
                "marginguard_decision_latency_seconds_bucket",
                &[a, v, ("le", &le)],
                cumulative,
            );
        }
        family.sample_named(
            "marginguard_decision_latency_seconds_bucket",
            &[a, v, ("le", "+Inf")],
            h.count,
        );
        family.sample_named(
            "marginguard_decision_latency_seconds_sum",
            &[a, v],
            h.sum_seconds,
        );
        family.sample_named(
            "marginguard_decision_latency_seconds_count",
            &[a, v],
            h.count,
        );
    }
}

fn venue_usage(out: &mut String, scrape: &Scrape<'_>) {
    let mut requests = Family::new(
        out,
        "marginguard_venue_requests_total",
        "counter",
        "REST requests sent, by venue and endpoint.",
    );
    for ((venue, path), usage) in &scrape.endpoints {
        requests.sample(&[("venue", venue), ("endpoint", path)], usage.requests);
    }
    let mut weight = Family::new(
        out,
        "marginguard_venue_request_weight_total",
        "counter",
        "Budget weight drawn by those requests.",
    );
    for ((venue, path), usage) in &scrape.endpoints {
        weight.sample(&[("venue", venue), ("endpoint", path)], usage.weight);
    }
    let mut waits = Family::new(
        out,
        "marginguard_rate_limit_waits_total",
        "counter",
        "Requests that waited for the local rate-limit budget.",
    );
    for (venue, w) in &scrape.waits {
        waits.sample(&[("venue", venue)], w.count);
    }
    let mut seconds = Family::new(
        out,
        "marginguard_rate_limit_wait_seconds_total",
        "counter",
        "Seconds spent waiting for the local rate-limit budget.",
    );
    for (venue, w) in &scrape.waits {
        seconds.sample(&[("venue", venue)], w.total.as_secs_f64());
    }
}

fn operator_counters(out: &mut String, scrape: &Scrape<'_>) {
    type Count = fn(&NotifierStats) -> u64;
    let families: [(&'static str, &str, Count); 3] = [
        (
            "marginguard_alerts_sent_total",
            "Alerts delivered, by notifier.",
            |d| d.sent,
        ),
        (
            "marginguard_alerts_failed_total",
            "Alerts the receiver refused or never answered, after retries.",
            |d| d.failed,
        ),
        (
            "marginguard_alerts_dropped_total",
            "Alerts dropped because the notifier's queue was full.",
            |d| d.dropped,
        ),
    ];
    for (name, help, count) in families {
        let mut family = Family::new(out, name, "counter", help);
        for notifier in &scrape.notifiers {
            family.sample(&[("notifier", &notifier.name)], count(notifier));
        }
    }
    let mut suppressed = Family::new(
        out,
        "marginguard_alerts_suppressed_total",
        "counter",
        "Alerts not sent because one of the same kind was sent within alerts.cool_off.",
    );
    for (event, count) in &scrape.suppressed {
        suppressed.sample(&[("event", event)], count);
    }
    if let Some(heartbeat) = scrape.heartbeat {
        let mut pings = Family::new(
            out,
            "marginguard_heartbeat_pings_total",
            "counter",
            "Heartbeat pings by result: ok, fail (the /fail URL), error (not delivered).",
        );
        for (result, count) in [
            ("ok", heartbeat.ok),
            ("fail", heartbeat.fail),
            ("error", heartbeat.error),
        ] {
            pings.sample(&[("result", result)], count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
