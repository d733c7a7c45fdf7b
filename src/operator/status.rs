//! `/status.json` and `marginguard status`: the per-account summary, as figures in strings.
//!
//! The same struct is written by the daemon and read back by `status`, so the terminal and
//! the page never disagree. It holds nothing `history` and `check` do not already show.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::journal::RescueRecord;
use crate::operator::board::AccountStatus;
use crate::time::Timestamp;

/// How many journal rows a card shows.
pub const RESCUES_SHOWN: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub generated_at: String,
    pub ready: bool,
    pub accounts: Vec<AccountReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountReport {
    pub name: String,
    pub venue: String,
    pub mode: String,
    pub strategy: String,
    pub metric: String,
    pub state: String,
    pub feed: String,
    pub as_of: Option<String>,
    pub snapshot_age_seconds: Option<f64>,
    pub fresh: bool,
    pub equity: Option<String>,
    pub maintenance: Option<String>,
    pub wallet_balance: Option<String>,
    pub buffer: Option<String>,
    pub cushion: Option<String>,
    pub distance: Option<String>,
    pub levels: Option<LevelsReport>,
    pub reserve_available: Option<String>,
    pub keep_at_least: String,
    pub spent_24h: Option<String>,
    pub max_per_day: String,
    pub in_flight: Option<String>,
    pub top_ups: TopUpsReport,
    /// Why the last tick made no decision, while it does not.
    pub last_failure: Option<String>,
    pub transfers_stopped: Option<String>,
    /// Open positions on isolated margin: left out of every decision, not guarded.
    #[serde(default)]
    pub unguarded: Vec<String>,
    pub last_decisions: Vec<DecisionReport>,
    pub rescues: Vec<RescueReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelsReport {
    pub alert_below: String,
    pub top_up_below: String,
    pub target: String,
    pub floor: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpsReport {
    pub sent: u64,
    pub landed: u64,
    pub failed: u64,
    pub unknown: u64,
    pub lapsed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionReport {
    pub at: String,
    pub action: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescueReport {
    pub created_at: String,
    pub amount: String,
    pub state: String,
    pub verified: bool,
    pub reason: String,
}

/// An amount as a person reads it: cents, no trailing zeros (display only: the journal and
/// the decisions keep every digit).
pub fn shown(amount: crate::money::Usdt) -> String {
    amount.0.round_dp(2).normalize().to_string()
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(at: Timestamp) -> String {
    format!("{} {} UTC", at.date(), at.hh_mm_ss())
}

impl RescueReport {
    pub fn of(record: &RescueRecord) -> Self {
        Self {
            created_at: utc(record.created_at),
            amount: shown(record.amount),
            state: record.state.as_str().to_string(),
            verified: record.verified,
            reason: record.reason.clone(),
        }
    }
}

impl AccountReport {
    /// The card for one account at `now` (its clock), with the journal's latest rows
    /// (newest first).
    pub fn of(
        status: &AccountStatus,
        now: Timestamp,
        max_age: Duration,
        rescues: &[RescueRecord],
    ) -> Self {
        let info = &status.info;
        let last = status.last.as_ref();
        let text = |f: &dyn Fn(&crate::operator::board::Observation) -> String| last.map(f);
        Self {
            name: info.name.clone(),
            venue: info.venue.to_string(),
            mode: info.mode.to_string(),
            strategy: info.strategy.clone(),
            metric: info.metric.name().replace('_', " "),
            state: status.state(now, max_age).name().to_string(),
            feed: status.feed_name().to_string(),
            as_of: text(&|l| utc(l.as_of)),
            snapshot_age_seconds: status
                .snapshot_age(now)
                .map(|age| (age.as_secs_f64() * 10.0).round() / 10.0),
            fresh: status.is_fresh(now, max_age),
            equity: text(&|l| shown(l.equity)),
            maintenance: text(&|l| shown(l.maintenance)),
            wallet_balance: text(&|l| shown(l.wallet_balance)),
            buffer: text(&|l| l.metrics.buffer.to_string()),
            cushion: text(&|l| l.metrics.cushion.to_string()),
            distance: text(&|l| l.metrics.distance.to_string()),
            levels: last.map(|l| LevelsReport {
                alert_below: l.levels.alert_below.percent(),
                top_up_below: l.levels.top_up_below.percent(),
                target: l.levels.target.percent(),
                floor: l.levels.floor.percent(),
            }),
            reserve_available: text(&|l| shown(l.reserve_available)),
            keep_at_least: shown(info.caps.keep_at_least),
            spent_24h: text(&|l| shown(l.rescues.spent_last_24h)),
            max_per_day: shown(info.caps.max_per_day),
            in_flight: text(&|l| shown(l.rescues.in_flight)),
            top_ups: TopUpsReport {
                sent: status.top_ups.sent,
                landed: status.top_ups.landed,
                failed: status.top_ups.failed,
                unknown: status.top_ups.unknown,
                lapsed: status.top_ups.lapsed,
            },
            last_failure: status.last_failure.clone(),
            transfers_stopped: status.transfers_stopped.clone(),
            unguarded: last.map(|l| l.unguarded.clone()).unwrap_or_default(),
            last_decisions: status
                .decisions
                .iter()
                .rev()
                .map(|d| DecisionReport {
                    at: utc(d.at),
                    action: d.action.clone(),
                    value: d.value.clone(),
                })
                .collect(),
            rescues: rescues.iter().map(RescueReport::of).collect(),
        }
    }
}

impl StatusReport {
    /// The terminal's form: one block per account.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "marginguard {} — {} — {}\n",
            self.version,
            self.generated_at,
            if self.ready { "ready" } else { "NOT READY" }
        );
        for account in &self.accounts {
            out.push('\n');
            out.push_str(&account.render_text());
        }
        out
    }
}

impl AccountReport {
    fn render_text(&self) -> String {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
        let mut out = format!(
            "{} ({} {}, {}) — {}\n",
            self.name,
            self.venue,
            self.mode,
            self.feed,
            self.state.to_uppercase()
        );
        out.push_str(&format!(
            "  strategy {} on {}\n",
            self.strategy, self.metric
        ));
        if let Some(levels) = &self.levels {
            out.push_str(&format!(
                "  levels: alert below {}, top up below {}, refill to {}, floor {}\n",
                levels.alert_below, levels.top_up_below, levels.target, levels.floor
            ));
        }
        out.push_str(&format!(
            "  distance {}  buffer {}  cushion {}\n",
            or_dash(&self.distance),
            or_dash(&self.buffer),
            or_dash(&self.cushion)
        ));
        out.push_str(&format!(
            "  equity {}  maintenance {}  wallet {}  (as of {}{})\n",
            or_dash(&self.equity),
            or_dash(&self.maintenance),
            or_dash(&self.wallet_balance),
            or_dash(&self.as_of),
            if self.fresh { "" } else { ", STALE" }
        ));
        out.push_str(&format!(
            "  reserve {} (keep at least {})  spent 24 h {} of {}  in flight {}\n",
            or_dash(&self.reserve_available),
            self.keep_at_least,
            or_dash(&self.spent_24h),
            self.max_per_day,
            or_dash(&self.in_flight)
        ));
        let t = self.top_ups;
        if t != TopUpsReport::default() {
            out.push_str(&format!(
                "  top-ups: {} sent, {} landed, {} failed, {} unknown, {} lapsed\n",
                t.sent, t.landed, t.failed, t.unknown, t.lapsed
            ));
        }
        if let Some(why) = &self.last_failure {
            out.push_str(&format!("  last tick made no decision: {why}\n"));
        }
        if let Some(why) = &self.transfers_stopped {
            out.push_str(&format!("  TRANSFERS STOPPED: {why}\n"));
        }
        if !self.unguarded.is_empty() {
            out.push_str(&format!(
                "  NOT GUARDED (isolated margin): {}\n",
                self.unguarded.join(", ")
            ));
        }
        if !self.rescues.is_empty() {
            out.push_str("  recent rescues:\n");
            for r in &self.rescues {
                out.push_str(&format!(
                    "    {}  {} USDT  {}{}  {}\n",
                    r.created_at,
                    r.amount,
                    r.state,
                    if r.verified { " (verified)" } else { "" },
                    r.reason
                ));
            }
        }
        out
    }
}
