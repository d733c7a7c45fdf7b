//! A scenario's book along its price path, without the engine: the inner loop every replay
//! runs, and the hindsight oracle built on it.
//!
//! "Position-bar evaluation": one position marked at one sub-step price, its PnL and its
//! tiered maintenance added to the book's figures. No allocation happens in the loop.
//!
//! The figures saturate at `Decimal`'s bounds instead of overflowing: a scenario may hold a
//! book no venue would (`size = "1e27"` BTC, `--reserve` at `Decimal::MAX`), and the replay
//! must report it rather than panic. A saturated equity or maintenance is "at least this" in
//! its direction, which is what the liquidation check and the oracle compare.

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
    let mut equity = wallet;
    let mut maintenance = Usdt::ZERO;
    for (p, mark) in positions.iter().zip(marks) {
        let pnl = p.size.0.saturating_mul(mark.0.saturating_sub(p.entry.0));
        equity = equity.saturating_add(Usdt(pnl));
        let notional = p.size.saturating_mul(*mark).abs();
        maintenance =
            maintenance.saturating_add(maintenance_in(p.tiers.tier_for(notional), notional));
    }
    (equity, maintenance)
}

/// Calls `visit(step, instant, marks)` for every sub-step of the scenario, in order, with the
/// marks of every position at that sub-step (the adverse extreme of each minute first).
///
/// Indexing is safe: a loaded scenario has at least one position, every position has the
/// same non-empty run of minutes (`Scenario::load` checks both), and `minute` stays below it.
pub fn walk(scenario: &Scenario, mut visit: impl FnMut(usize, Timestamp, &[Price])) {
    let minutes = scenario.positions[0].bars.len();
    let start = scenario.start().as_millis();
    let mut marks: Vec<Price> = scenario.positions.iter().map(|p| p.entry).collect();
    for step in 0..minutes * SUBSTEPS_PER_MINUTE {
        let (minute, k) = (step / SUBSTEPS_PER_MINUTE, step % SUBSTEPS_PER_MINUTE);
        for (mark, p) in marks.iter_mut().zip(&scenario.positions) {
            *mark = p.bars[minute].substep(k, p.is_long());
        }
        visit(step, substep_time(start, step), &marks);
    }
}

/// The instant of sub-step `step` after `start` (ms); saturated, though kline open times are
/// bounded on load so it never needs to be.
pub fn substep_time(start: i64, step: usize) -> Timestamp {
    let offset = i64::try_from(step)
        .unwrap_or(i64::MAX)
        .saturating_mul(SUBSTEP_MS);
    Timestamp(start.saturating_add(offset))
}

/// The largest shortfall of equity under maintenance along the whole path, with no bot and
/// no reserve moved (zero or negative when the book is never liquidated).
pub fn worst_deficit(scenario: &Scenario) -> Usdt {
    let mut worst = Decimal::MIN;
    walk(scenario, |_, _, marks| {
        let (equity, maintenance) =
            equity_and_maintenance(&scenario.positions, marks, scenario.wallet);
        worst = worst.max(maintenance.0.saturating_sub(equity.0));
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
    // The next multiple of the step strictly above the deficit. Past Decimal::MAX no reserve
    // is enough; the largest multiple there is reports that, saturated.
    let above = deficit
        .round_down_to(step)
        .and_then(|below| below.checked_add(step));
    above
        .or_else(|| Usdt(Decimal::MAX).round_down_to(step))
        .unwrap_or(Usdt(Decimal::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Qty;
    use rust_decimal::MathematicalOps;
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

    /// Issue 10 item 3: a scenario whose book is worth more than `Decimal::MAX` at some price
    /// (here 10²⁷ BTC, about 5·10³¹ USDT) panicked with "Multiplication overflowed" while
    /// pricing the path. Its figures saturate instead: the maintenance alone dwarfs the
    /// wallet, so the book is liquidated, and the oracle saturates too.
    #[test]
    fn a_position_too_large_to_price_does_not_overflow_the_path() {
        let mut s = scenario("btc-2024-08-05-10x-long.toml");
        s.positions[0].size = Qty(Decimal::from(10).powi(27));
        let marks = [s.positions[0].entry];
        let (equity, maintenance) = equity_and_maintenance(&s.positions, &marks, s.wallet);
        assert_eq!(equity, s.wallet, "marked at entry: no PnL");
        assert!(maintenance > equity);
        assert!(worst_deficit(&s).0 > Decimal::ZERO);
        assert!(oracle_reserve(&s).0 > Decimal::ZERO);
    }

    /// The reserve can be as large as a `Decimal` holds (`simulate --reserve`); moving it
    /// all in must not overflow the wallet or the oracle.
    #[test]
    fn a_wallet_at_decimal_max_does_not_overflow_the_path() {
        let mut s = scenario("btc-2024-08-05-10x-long.toml");
        s.wallet = Usdt(Decimal::MAX);
        assert!(worst_deficit(&s).0 < Decimal::ZERO, "never liquidated");
        assert_eq!(oracle_reserve(&s), Usdt::ZERO);
    }
}
