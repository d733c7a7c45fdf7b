//! The last resort, for an account that opted in: below the floor, with no reserve or cap
//! room left to restore it, shrink the position by reduce-only market orders — the smallest
//! reduction that brings the metric back to the floor, at most `max_share` of each position
//! per rescue — rather than let the venue liquidate all of it.
//!
//! Never while a top-up could still restore the floor: money first, positions only when the
//! money cannot do it. The reduction is pro rata across the positions (each by the same
//! share), modelled at the mark less `slippage` on the reduced notional; maintenance falls by
//! what each position's tiers say it falls. Pure, as the rest of the core.

use rust_decimal::Decimal;

use super::metrics::{self, Account, MetricKind, MetricValue, Metrics};
use crate::money::{Qty, Ratio, Usdt};

/// From the account's `[accounts.reduce]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReduceRule {
    /// The most of each position one rescue may close (0 < share ≤ 1).
    pub max_share: Ratio,
    /// The adverse fill assumed on the reduced notional, as a fraction of it.
    pub slippage: Ratio,
}

/// One reduce-only order: close `quantity` (a magnitude) of the position in `symbol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReduceOrder {
    pub symbol: String,
    pub quantity: Qty,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reduction {
    /// The share of each position to close.
    pub share: Ratio,
    pub orders: Vec<ReduceOrder>,
    /// The metric the model expects after the orders fill (and the top-up lands).
    pub after: MetricValue,
    /// `share` is the cap, and the floor is not reached even so.
    pub capped: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReduceDecision {
    /// At or above the floor.
    NotNeeded,
    /// The top-up the caps allow restores the floor: no position is touched.
    TopUpSuffices,
    Reduce(Reduction),
    /// The figures are too large to size a reduction: nothing is closed on a guess.
    Uncomputable,
}

/// Bisection steps on the share: 2⁻⁴⁰ of the cap is far below any venue's lot size.
const STEPS: u32 = 40;

/// Decides whether to reduce, and by how much, given the top-up (`top_up`) the caps and
/// reserve allow sending now (zero when none).
pub fn decide_reduction(
    account: &Account,
    metric: MetricKind,
    floor: Ratio,
    top_up: Usdt,
    rule: &ReduceRule,
) -> ReduceDecision {
    let value = Metrics::of(account).get(metric);
    if value == MetricValue::Unknown {
        return ReduceDecision::Uncomputable;
    }
    if !value.is_below(floor) {
        return ReduceDecision::NotNeeded;
    }
    let funded = metrics::with_collateral(account, top_up.max(Usdt::ZERO));
    let after_top_up = Metrics::of(&funded).get(metric);
    if !after_top_up.is_below(floor) && after_top_up != MetricValue::Unknown {
        return ReduceDecision::TopUpSuffices;
    }
    let cap = rule.max_share.0.clamp(Decimal::ZERO, Decimal::ONE);
    if cap.is_zero() {
        return ReduceDecision::Uncomputable;
    }
    let reaches = |share: Decimal| -> Option<bool> {
        let reduced = reduced(&funded, share, rule.slippage)?;
        let after = Metrics::of(&reduced).get(metric);
        (after != MetricValue::Unknown).then(|| !after.is_below(floor))
    };
    let Some(at_cap) = reaches(cap) else {
        return ReduceDecision::Uncomputable;
    };
    let share = if at_cap {
        smallest_share(cap, reaches)
    } else {
        Some(cap)
    };
    let Some(share) = share else {
        return ReduceDecision::Uncomputable;
    };
    match reduction(&funded, metric, share, rule, !at_cap) {
        Some(reduction) => ReduceDecision::Reduce(reduction),
        None => ReduceDecision::Uncomputable,
    }
}

/// The smallest share in (0, cap] that reaches the floor, by bisection (the metric improves
/// as the book shrinks); `hi` always reaches it, so the answer is on the safe side.
fn smallest_share(cap: Decimal, reaches: impl Fn(Decimal) -> Option<bool>) -> Option<Decimal> {
    let (mut lo, mut hi) = (Decimal::ZERO, cap);
    for _ in 0..STEPS {
        let mid = (lo + hi) / Decimal::TWO;
        if reaches(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

fn reduction(
    funded: &Account,
    metric: MetricKind,
    share: Decimal,
    rule: &ReduceRule,
    capped: bool,
) -> Option<Reduction> {
    let after = Metrics::of(&reduced(funded, share, rule.slippage)?).get(metric);
    let orders = funded
        .positions
        .iter()
        .filter(|p| !p.size.is_zero())
        .map(|p| {
            Some(ReduceOrder {
                symbol: p.symbol.clone(),
                quantity: Qty(p.size.0.abs().checked_mul(share)?),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Reduction {
        share: Ratio(share),
        orders,
        after,
        capped,
    })
}

/// The account with every position reduced by `share` at its mark, the fill costing
/// `slippage` of the reduced notional, and maintenance lowered by what the tiers say.
/// `None` when the figures leave `Decimal`'s range.
fn reduced(account: &Account, share: Decimal, slippage: Ratio) -> Option<Account> {
    let keep = Decimal::ONE.checked_sub(share)?;
    let mut equity = account.equity.0;
    let mut maintenance = account.maintenance.0;
    let mut positions = Vec::with_capacity(account.positions.len());
    for position in &account.positions {
        let notional = position.checked_notional()?;
        let mut smaller = position.clone();
        smaller.size = Qty(position.size.0.checked_mul(keep)?);
        let smaller_notional = smaller.checked_notional()?;
        let closed = notional.0.checked_sub(smaller_notional.0)?;
        equity = equity.checked_sub(closed.checked_mul(slippage.0)?)?;
        let before = position.tiers.maintenance(notional).0;
        let after = position.tiers.maintenance(smaller_notional).0;
        maintenance = maintenance.checked_sub(before.checked_sub(after)?)?;
        positions.push(smaller);
    }
    Some(Account {
        equity: Usdt(equity),
        maintenance: Usdt(maintenance.max(Decimal::ZERO)),
        positions,
    })
}
