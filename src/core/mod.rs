//! The decision core: account figures + strategy + caps → what to do.
//!
//! Architecture invariant: nothing here performs I/O, reads a clock, spawns, or knows about
//! tokio, HTTP or a venue's wire format. "Now" arrives as a value. That is what lets the same
//! code run under the simulator, under property tests and beside a live account.

pub mod metrics;
pub mod reduce;
pub mod strategy;
pub mod sweep;
pub mod tiers;
pub mod volatility;

use std::time::Duration;

use rust_decimal::Decimal;

pub use metrics::{
    Account, LiquidationDistance, MetricKind, MetricValue, Metrics, NoAmount, Position,
};
pub use strategy::{Levels, Strategy, VolatilityWidening};
pub use tiers::{Tier, TierTable};

use crate::money::{Ratio, Usdt};
use crate::time::Timestamp;

/// The user's limits on spending, per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    pub max_per_rescue: Usdt,
    /// Over any rolling 24 hours, in-flight transfers included.
    pub max_per_day: Usdt,
    /// Never take the reserve below this.
    pub keep_at_least: Usdt,
    /// Minimum time between two top-ups.
    pub cooldown: Duration,
}

impl Caps {
    /// Caps that allow nothing: an engine that only watches.
    pub fn nothing() -> Caps {
        Caps {
            max_per_rescue: Usdt::ZERO,
            max_per_day: Usdt::ZERO,
            keep_at_least: Usdt::ZERO,
            cooldown: Duration::ZERO,
        }
    }
}

/// What has already been spent; the engine reads it from the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RescueState {
    /// Sent but not yet seen to land. Any amount here blocks a new top-up.
    pub in_flight: Usdt,
    /// Spent in the last 24 hours, including what is in flight.
    pub spent_last_24h: Usdt,
    pub last_top_up_at: Option<Timestamp>,
}

/// Everything one decision needs; all of it values.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    pub account: &'a Account,
    pub reserve_available: Usdt,
    pub rescues: RescueState,
    pub now: Timestamp,
    /// Realized volatility per √second of the book's correlated move, when known.
    pub volatility: Option<Ratio>,
    /// Poll interval + transfer settlement: how long a rescue takes to land.
    pub rescue_horizon: Duration,
    /// The venue's transfer precision; amounts are rounded up to it.
    pub transfer_step: Usdt,
    /// What the config's portfolio-wide day cap still allows across every account, in
    /// flight included; `None` without such a cap.
    pub portfolio_left: Option<Usdt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Critical,
}

/// Why a top-up that the metric asks for is not made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    InFlight(Usdt),
    Cooldown {
        until: Timestamp,
    },
    /// The caps leave nothing to send; names the one that bound.
    Exhausted(Cap),
    /// The account's figures or the caps are too large to compute the metric or a safe
    /// amount (they leave `Decimal`'s range): nothing moves rather than a guess.
    Uncomputable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    MaxPerRescue,
    MaxPerDay,
    /// The reserve, less `keep_at_least`.
    Reserve,
    /// `[portfolio] max_per_day`: every account of the config together.
    PortfolioPerDay,
}

impl Cap {
    pub fn name(self) -> &'static str {
        match self {
            Cap::MaxPerRescue => "max_per_rescue",
            Cap::MaxPerDay => "max_per_day",
            Cap::Reserve => "reserve (after keep_at_least)",
            Cap::PortfolioPerDay => "portfolio max_per_day",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopUp {
    pub amount: Usdt,
    /// What would restore the target; more than `amount` when a cap bound.
    pub needed: Usdt,
    pub clamped_by: Option<Cap>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// At or above the alert level.
    Hold,
    /// Below the alert level, or below the trigger but unable to act.
    Alert {
        severity: Severity,
        blocked: Option<Blocked>,
    },
    /// Below the trigger: restore the target.
    TopUp(TopUp),
    /// Below the floor: move the most the caps allow, or say loudly why nothing moves.
    Emergency {
        top_up: Option<TopUp>,
        blocked: Option<Blocked>,
    },
}

impl Action {
    pub fn top_up(&self) -> Option<TopUp> {
        match self {
            Action::TopUp(t) => Some(*t),
            Action::Emergency { top_up, .. } => *top_up,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub metrics: Metrics,
    /// The strategy's metric, as acted on.
    pub value: MetricValue,
    /// The levels in force (widened by volatility when the strategy says so).
    pub levels: Levels,
    pub action: Action,
}

/// Decides one tick.
pub fn decide(situation: &Situation<'_>, strategy: &Strategy, caps: &Caps) -> Decision {
    let metrics = Metrics::of(situation.account);
    let value = metrics.get(strategy.metric);
    let levels = effective_levels(strategy, situation);
    let action = choose_action(situation, strategy.metric, &levels, caps, value);
    Decision {
        metrics,
        value,
        levels,
        action,
    }
}

/// The strategy's levels, widened by `k·σ·√horizon` when it scales with volatility.
pub fn effective_levels(strategy: &Strategy, situation: &Situation<'_>) -> Levels {
    match (&strategy.volatility, situation.volatility) {
        (Some(widening), Some(sigma)) => strategy
            .levels
            .widened(widening.widening(sigma, situation.rescue_horizon)),
        _ => strategy.levels,
    }
}

fn choose_action(
    situation: &Situation<'_>,
    metric: MetricKind,
    levels: &Levels,
    caps: &Caps,
    value: MetricValue,
) -> Action {
    if value == MetricValue::Unknown {
        // Not known to be safe either: say so loudly, move nothing.
        return blocked_action(false, Blocked::Uncomputable);
    }
    if !value.is_below(levels.alert_below) {
        return Action::Hold;
    }
    if !value.is_below(levels.top_up_below) {
        return Action::Alert {
            severity: Severity::Warning,
            blocked: None,
        };
    }
    let emergency = value.is_below(levels.floor);
    if let Some(blocked) = blocked_by_history(situation, caps) {
        return blocked_action(emergency, blocked);
    }
    let Some(needed) = collateral_needed(situation.account, metric, levels.target) else {
        return blocked_action(emergency, Blocked::Uncomputable);
    };
    // Below the floor, move the most allowed: the target is a wish, survival is the point.
    let wanted = if emergency {
        needed.max(caps.max_per_rescue)
    } else {
        needed
    };
    match clamp(wanted, situation, caps) {
        Err(blocked) => blocked_action(emergency, blocked),
        Ok((amount, clamped_by)) => {
            let top_up = TopUp {
                amount,
                needed,
                clamped_by: if amount < needed { clamped_by } else { None },
            };
            if emergency {
                Action::Emergency {
                    top_up: Some(top_up),
                    blocked: None,
                }
            } else {
                Action::TopUp(top_up)
            }
        }
    }
}

fn blocked_action(emergency: bool, blocked: Blocked) -> Action {
    if emergency {
        Action::Emergency {
            top_up: None,
            blocked: Some(blocked),
        }
    } else {
        Action::Alert {
            severity: Severity::Critical,
            blocked: Some(blocked),
        }
    }
}

/// In flight or cooling down: both come from the record of past rescues.
fn blocked_by_history(situation: &Situation<'_>, caps: &Caps) -> Option<Blocked> {
    let rescues = situation.rescues;
    if rescues.in_flight.0 > Decimal::ZERO {
        return Some(Blocked::InFlight(rescues.in_flight));
    }
    let last = rescues.last_top_up_at?;
    let until = cooldown_end(last, caps.cooldown);
    (situation.now < until).then_some(Blocked::Cooldown { until })
}

/// `last + cooldown`, saturated: a cooldown too long for i64 milliseconds must read as
/// "forever", where a plain cast of its u128 milliseconds could wrap into the past and let a
/// top-up through.
fn cooldown_end(last: Timestamp, cooldown: Duration) -> Timestamp {
    Timestamp(last.as_millis().saturating_add(saturated_millis(cooldown)))
}

/// A duration in i64 milliseconds, `i64::MAX` when longer (292 million years). `Timestamp`'s
/// `+ Duration` casts the u128 and can wrap; configured durations are unbounded.
pub(crate) fn saturated_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The collateral to restore `target`; if the target is unreachable by collateral (it never is
/// for validated levels, but a venue could report maintenance ≥ initial margin), ask for
/// everything the caps allow. `None` when the figures are too large to compute it.
fn collateral_needed(account: &Account, metric: MetricKind, target: Ratio) -> Option<Usdt> {
    match metrics::collateral_for_target(account, metric, target) {
        Ok(amount) => Some(amount),
        Err(NoAmount::Unreachable) => Some(Usdt(Decimal::MAX)),
        Err(NoAmount::Overflow) => None,
    }
}

/// `min(wanted, max_per_rescue, reserve − keep_at_least, day cap left, portfolio left)`,
/// rounded up to the
/// transfer step unless rounding up would cross the binding cap (then rounded down). `Err`
/// names the cap that leaves nothing to send, or says no safe amount can be computed.
fn clamp(
    wanted: Usdt,
    situation: &Situation<'_>,
    caps: &Caps,
) -> Result<(Usdt, Option<Cap>), Blocked> {
    let (binding, limit) = binding_limit(situation, caps);
    let step = situation.transfer_step;
    let allowed = match limit.round_down_to(step) {
        Some(allowed) if allowed.0 > Decimal::ZERO => allowed,
        // Not representable only within a step of Decimal::MIN: nothing is allowed.
        _ => return Err(Blocked::Exhausted(binding)),
    };
    match wanted.round_up_to(step) {
        Some(rounded) if rounded <= allowed => Ok((rounded, None)),
        Some(_) => Ok((allowed, Some(binding))),
        // The multiple above `wanted` is past Decimal::MAX: `allowed` is all that can go.
        None if wanted >= allowed => Ok((allowed, Some(binding))),
        // `wanted` cannot be rounded yet is below what is allowed: sending `allowed` would
        // send more than the target needs.
        None => Err(Blocked::Uncomputable),
    }
}

/// The tightest of the caps. The differences saturate, which only ever lowers a limit
/// that overflowed upwards (it is still at least `Decimal::MAX`) or keeps one that
/// overflowed downwards at nothing allowed: never a bigger transfer. A negative amount spent
/// or kept back means nothing (the config refuses them) and counts as zero, so it cannot
/// lift a limit above the day cap or the reserve itself.
fn binding_limit(situation: &Situation<'_>, caps: &Caps) -> (Cap, Usdt) {
    let spent = situation.rescues.spent_last_24h.max(Usdt::ZERO);
    let day_left = caps.max_per_day.saturating_sub(spent);
    let reserve_left = situation
        .reserve_available
        .saturating_sub(caps.keep_at_least.max(Usdt::ZERO));
    let portfolio_left = situation
        .portfolio_left
        .map_or(Usdt(Decimal::MAX), |left| left.max(Usdt::ZERO));
    let mut binding = (Cap::MaxPerRescue, caps.max_per_rescue);
    for candidate in [
        (Cap::MaxPerDay, day_left),
        (Cap::Reserve, reserve_left),
        (Cap::PortfolioPerDay, portfolio_left),
    ] {
        // Strictly smaller: on a tie the earlier cap is named, as `min_by_key` did.
        if candidate.1 < binding.1 {
            binding = candidate;
        }
    }
    binding
}

#[cfg(test)]
mod tests;
