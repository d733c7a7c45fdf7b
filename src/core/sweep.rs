//! Sweep-back: returning to the reserve what the bot moved in, once the danger has passed.
//!
//! The two-way half of a rescue (DeFi Saver's repay/boost with hysteresis is the model): a
//! top-up fires below the trigger; a sweep only once the strategy's metric has stayed above
//! a higher `above` level for a calm period, with realized volatility back under a bound, and
//! it never takes the metric below `above − margin` — so the next tick cannot see a top-up
//! due, and a price hovering at `above` cannot make the two chase each other. It returns at
//! most what the bot moved in and has not yet returned: the user's own margin is theirs.
//!
//! Pure, as the rest of the core: "now", the calm period's start and the volatility arrive as
//! values.

use std::time::Duration;

use rust_decimal::Decimal;

use super::metrics::{self, Account, MetricKind, NoAmount};
use super::strategy::Levels;
use crate::money::{Ratio, Usdt};
use crate::time::Timestamp;

/// When and how far to sweep, from the strategy file's `[sweep]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepRule {
    /// Sweep only while the metric is at or above this level…
    pub above: Ratio,
    /// …and never so much that it falls below `above − margin`.
    pub margin: Ratio,
    /// …after it has stayed at or above `above` this long without a break…
    pub calm_for: Duration,
    /// …and, when set, with realized volatility (per √second, as the strategy's widening
    /// reads it) at or below this bound. Unknown volatility is not calm.
    pub max_volatility: Option<Ratio>,
}

impl SweepRule {
    /// The lowest the metric may be left at: `above − margin`.
    pub fn floor(&self) -> Ratio {
        Ratio(self.above.0.saturating_sub(self.margin.0))
    }

    /// `above > target + margin`: after a sweep the metric stays above the refill target,
    /// so a sweep can never leave the account where the next tick would top it up.
    pub fn check(&self, levels: &Levels) -> Result<(), String> {
        if self.margin.0 <= Decimal::ZERO {
            return Err(format!(
                "sweep margin must be above 0, got {}",
                self.margin.percent()
            ));
        }
        let lowest_allowed = levels.target.0.saturating_add(self.margin.0);
        if self.above.0 <= lowest_allowed {
            return Err(format!(
                "sweep above ({}) must be higher than target + margin ({} + {} = {}), so a sweep never leaves the account where a top-up is due",
                self.above.percent(),
                levels.target.percent(),
                self.margin.percent(),
                Ratio(lowest_allowed).percent()
            ));
        }
        Ok(())
    }
}

/// The user's limits on sweeping, per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepCaps {
    pub max_per_sweep: Usdt,
    /// Over any rolling 24 hours, sweeps in flight included.
    pub max_per_day: Usdt,
}

/// Everything one sweep decision needs; all of it values.
#[derive(Debug, Clone)]
pub struct SweepSituation<'a> {
    pub account: &'a Account,
    pub now: Timestamp,
    /// Since when the metric has stayed at or above `above` without a break (`None`: it is
    /// below now, or the runner has not seen it above yet).
    pub calm_since: Option<Timestamp>,
    pub volatility: Option<Ratio>,
    /// What the bot moved in and has not returned: the most any sweep may send back.
    pub returnable: Usdt,
    /// Swept over the last 24 hours, in flight included.
    pub swept_last_24h: Usdt,
    /// A top-up or a sweep whose outcome is open: nothing moves until it is known.
    pub transfer_open: bool,
    /// What the futures wallet lets leave now (the venue's transferable balance), if known.
    pub transferable: Option<Usdt>,
    /// The venue's transfer precision; a sweep is rounded *down* to it.
    pub transfer_step: Usdt,
}

/// What bound a sweep's amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepBound {
    /// The metric would fall to `above − margin`.
    Margin,
    /// Everything the bot moved in is being returned.
    Returnable,
    MaxPerSweep,
    MaxPerDay,
    /// The venue's transferable balance.
    Transferable,
}

/// Why nothing is swept now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepHold {
    /// The metric is below `above`, or has not stayed above it for `calm_for`.
    NotCalm,
    /// Realized volatility is above the bound, or not known yet.
    Volatile,
    /// A transfer's outcome is open.
    TransferOpen,
    /// The bot has moved in nothing it has not returned.
    NothingToReturn,
    /// A bound leaves less than one transfer step.
    Exhausted(SweepBound),
    /// The figures are too large to size a sweep safely.
    Uncomputable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepAction {
    Hold(SweepHold),
    Sweep { amount: Usdt, bound: SweepBound },
}

/// Decides whether to sweep, and how much.
pub fn decide_sweep(
    situation: &SweepSituation<'_>,
    metric: MetricKind,
    rule: &SweepRule,
    caps: &SweepCaps,
) -> SweepAction {
    if let Some(hold) = why_not_now(situation, metric, rule) {
        return SweepAction::Hold(hold);
    }
    if situation.returnable.0 <= Decimal::ZERO {
        return SweepAction::Hold(SweepHold::NothingToReturn);
    }
    let surplus = match metrics::collateral_above(situation.account, metric, rule.floor()) {
        Ok(surplus) => surplus,
        Err(NoAmount::Unreachable | NoAmount::Overflow) => {
            return SweepAction::Hold(SweepHold::Uncomputable)
        }
    };
    let (bound, limit) = tightest(situation, caps, surplus);
    match limit.round_down_to(situation.transfer_step) {
        Some(amount) if amount.0 > Decimal::ZERO => SweepAction::Sweep { amount, bound },
        _ => SweepAction::Hold(SweepHold::Exhausted(bound)),
    }
}

/// The conditions under which no amount is considered at all.
fn why_not_now(
    situation: &SweepSituation<'_>,
    metric: MetricKind,
    rule: &SweepRule,
) -> Option<SweepHold> {
    if situation.transfer_open {
        return Some(SweepHold::TransferOpen);
    }
    let value = metrics::Metrics::of(situation.account).get(metric);
    let above_now = matches!(
        value,
        metrics::MetricValue::Value(_) | metrics::MetricValue::Unbounded
    ) && !value.is_below(rule.above);
    let calm_long_enough = situation
        .calm_since
        .is_some_and(|since| situation.now.since(since) >= rule.calm_for);
    if !above_now || !calm_long_enough {
        return Some(SweepHold::NotCalm);
    }
    let volatile = rule
        .max_volatility
        .is_some_and(|bound| situation.volatility.is_none_or(|v| v > bound));
    volatile.then_some(SweepHold::Volatile)
}

/// The smallest of the bounds on a sweep; on a tie the earlier is named. Differences
/// saturate at zero: a negative room means nothing may go.
fn tightest(situation: &SweepSituation<'_>, caps: &SweepCaps, surplus: Usdt) -> (SweepBound, Usdt) {
    let day_left = caps
        .max_per_day
        .saturating_sub(situation.swept_last_24h.max(Usdt::ZERO))
        .max(Usdt::ZERO);
    let mut bounds = vec![
        (SweepBound::Margin, surplus),
        (SweepBound::Returnable, situation.returnable),
        (SweepBound::MaxPerSweep, caps.max_per_sweep),
        (SweepBound::MaxPerDay, day_left),
    ];
    if let Some(transferable) = situation.transferable {
        bounds.push((SweepBound::Transferable, transferable));
    }
    let mut tightest = bounds[0];
    for candidate in bounds.into_iter().skip(1) {
        if candidate.1 < tightest.1 {
            tightest = candidate;
        }
    }
    (tightest.0, tightest.1.max(Usdt::ZERO))
}
