//! A scenario's book along its price path, without the engine: the inner loop every replay
//! runs, and the hindsight oracle built on it.
//!
//! "Position-bar evaluation": one position marked at one sub-step price, its PnL and its
//! tiered maintenance added to the book's figures. No allocation happens in the loop.

use rust_decimal::Decimal;

use super::market::{SUBSTEPS_PER_MINUTE, SUBSTEP_MS};
use super::scenario::{Scenario, ScenarioPosition};
use crate::core::tiers::maintenance_in;
use crate::money::{Price, Usdt};
use crate::time::Timestamp;

/// Equity and maintenance of the book at `marks` (one per position) on `wallet`.
pub fn equity_and_maintenance(
    positions: &[ScenarioPosition],
    marks: &[Price],
    wallet: Usdt,
) -> (Usdt, Usdt) {
    let mut equity = wallet.0;
    let mut maintenance = Decimal::ZERO;
    for (p, mark) in positions.iter().zip(marks) {
        equity += p.size.0 * (mark.0 - p.entry.0);
        let notional = Usdt((p.size.0 * mark.0).abs());
        maintenance += maintenance_in(p.tiers.tier_for(notional), notional).0;
    }
    (Usdt(equity), Usdt(maintenance))
}

/// Calls `visit(step, instant, marks)` for every sub-step of the scenario, in order, with the
/// marks of every position at that sub-step (the adverse extreme of each minute first).
pub fn walk(scenario: &Scenario, mut visit: impl FnMut(usize, Timestamp, &[Price])) {
    let minutes = scenario.positions[0].bars.len();
    let start = scenario.start().as_millis();
    let mut marks: Vec<Price> = scenario.positions.iter().map(|p| p.entry).collect();
    for step in 0..minutes * SUBSTEPS_PER_MINUTE {
        let (minute, k) = (step / SUBSTEPS_PER_MINUTE, step % SUBSTEPS_PER_MINUTE);
        for (mark, p) in marks.iter_mut().zip(&scenario.positions) {
            *mark = p.bars[minute].substep(k, p.is_long());
        }
        visit(step, Timestamp(start + step as i64 * SUBSTEP_MS), &marks);
    }
}

/// The largest shortfall of equity under maintenance along the whole path, with no bot and
/// no reserve moved (zero or negative when the book is never liquidated).
pub fn worst_deficit(scenario: &Scenario) -> Usdt {
    let mut worst = Decimal::MIN;
    walk(scenario, |_, _, marks| {
        let (equity, maintenance) =
            equity_and_maintenance(&scenario.positions, marks, scenario.wallet);
        worst = worst.max(maintenance.0 - equity.0);
    });
    Usdt(worst)
}

/// The hindsight oracle: the least reserve that, moved in at the start, avoids liquidation on
/// this path — exact, at the scenario's transfer precision. The venue liquidates when
/// equity ≤ maintenance, so the reserve must exceed the worst deficit strictly.
pub fn oracle_reserve(scenario: &Scenario) -> Usdt {
    let deficit = worst_deficit(scenario);
    if deficit.0 < Decimal::ZERO {
        return Usdt::ZERO;
    }
    let step = scenario.transfer_step;
    if step.0 <= Decimal::ZERO {
        return deficit;
    }
    Usdt((deficit.0 / step.0).floor() * step.0 + step.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(name: &str) -> Scenario {
        Scenario::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn oracle_reserve_is_the_least_that_survives() {
        let mut s = scenario("btc-2024-08-05-10x-long.toml");
        let oracle = oracle_reserve(&s);
        assert!(
            oracle.0 > Decimal::ZERO,
            "the day liquidates a 10× long without help"
        );
        // With the oracle's reserve in the wallet from the start, the book survives …
        s.wallet += oracle;
        assert!(worst_deficit(&s).0 < Decimal::ZERO);
        // … and one transfer step less is liquidated.
        s.wallet -= s.transfer_step;
        assert!(worst_deficit(&s).0 >= Decimal::ZERO);
    }
}
