//! Maintenance-margin tiers ("brackets", "risk limits").
//!
//! Every venue charges maintenance on a position's notional at mark through a tax-bracket table:
//! `maintenance = notional × rate − deduction`, with the rate and deduction of the tier the
//! notional falls in. Binance calls the deduction `cum`, Bybit `mmDeduction`. When the
//! deductions are built by the recursion Binance documents, the function is continuous and
//! convex in notional — the liquidation-distance solver relies on that.

use rust_decimal::Decimal;

use crate::money::{Ratio, Usdt};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// Lowest notional of this tier (inclusive).
    pub floor: Usdt,
    pub rate: Ratio,
    /// Subtracted after `notional × rate`; keeps maintenance continuous across tiers.
    pub deduction: Usdt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierTable {
    tiers: Vec<Tier>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTiers {
    #[error("a tier table needs at least one tier")]
    Empty,
    #[error("the first tier must start at notional 0, not {0}")]
    FirstFloorNotZero(Usdt),
    #[error("tier floors must increase strictly (tier {index} starts at {floor})")]
    FloorsNotIncreasing { index: usize, floor: Usdt },
    #[error("tier {index} has rate {rate}; rates must lie in [0, 1) and never decrease")]
    BadRate { index: usize, rate: Ratio },
    /// A deduction below zero puts maintenance above `notional × rate`, which no venue's
    /// table does; it means the figures were misread.
    #[error("tier {index} has deduction {deduction}; deductions are never negative")]
    NegativeDeduction { index: usize, deduction: Usdt },
}

impl TierTable {
    /// Builds a table from `(floor, rate)` pairs, computing each deduction with the recursion
    /// Binance documents: `cum_n = floor_n × (rate_n − rate_{n−1}) + cum_{n−1}`.
    ///
    /// The shape is checked before any deduction is computed: with floors increasing and
    /// rates in `[0, 1)` never decreasing, `cum_n ≤ floor_n × rate_n < floor_n`, so no step
    /// of the recursion can overflow. Unchecked, a venue's malformed table could.
    pub fn from_rates(floors_and_rates: &[(Usdt, Ratio)]) -> Result<Self, InvalidTiers> {
        let shape = floors_and_rates
            .iter()
            .map(|&(floor, rate)| Tier {
                floor,
                rate,
                deduction: Usdt::ZERO,
            })
            .collect();
        let mut table = Self::new(shape)?;
        let mut deduction = Usdt::ZERO;
        let mut previous_rate = table.tiers.first().map_or(Ratio::ZERO, |t| t.rate);
        for tier in table.tiers.iter_mut().skip(1) {
            // Bounded by `floor × rate` (see above): these operators cannot overflow.
            deduction += tier.floor * (tier.rate - previous_rate);
            tier.deduction = deduction;
            previous_rate = tier.rate;
        }
        Ok(table)
    }

    /// Takes the venue's own table, deductions included, after checking its shape.
    pub fn new(tiers: Vec<Tier>) -> Result<Self, InvalidTiers> {
        let first = tiers.first().ok_or(InvalidTiers::Empty)?;
        if !first.floor.is_zero() {
            return Err(InvalidTiers::FirstFloorNotZero(first.floor));
        }
        for (index, tier) in tiers.iter().enumerate() {
            let rate_in_range = tier.rate.0 >= Decimal::ZERO && tier.rate.0 < Decimal::ONE;
            let rate_not_lower = index == 0 || tier.rate >= tiers[index - 1].rate;
            if !rate_in_range || !rate_not_lower {
                return Err(InvalidTiers::BadRate {
                    index,
                    rate: tier.rate,
                });
            }
            if tier.deduction.is_sign_negative() && !tier.deduction.is_zero() {
                return Err(InvalidTiers::NegativeDeduction {
                    index,
                    deduction: tier.deduction,
                });
            }
            if index > 0 && tier.floor <= tiers[index - 1].floor {
                return Err(InvalidTiers::FloorsNotIncreasing {
                    index,
                    floor: tier.floor,
                });
            }
        }
        Ok(Self { tiers })
    }

    /// A single-rate table, for venues or tests that give one rate.
    pub fn flat(rate: Ratio) -> Self {
        Self {
            tiers: vec![Tier {
                floor: Usdt::ZERO,
                rate,
                deduction: Usdt::ZERO,
            }],
        }
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The tier a (non-negative) notional falls in.
    pub fn tier_for(&self, notional: Usdt) -> &Tier {
        let index = self
            .tiers
            .partition_point(|tier| tier.floor <= notional)
            .saturating_sub(1);
        // In bounds: every constructor (`new`, `flat`) guarantees at least one tier, and the
        // index is at most `len − 1`.
        &self.tiers[index]
    }

    /// Maintenance margin of a position with this absolute notional at mark; saturated at
    /// `Decimal::MAX` (see [`maintenance_in`]).
    pub fn maintenance(&self, notional: Usdt) -> Usdt {
        let notional = notional.abs();
        maintenance_in(self.tier_for(notional), notional)
    }

    /// As [`TierTable::maintenance`], `None` when it leaves `Decimal`'s range.
    pub fn checked_maintenance(&self, notional: Usdt) -> Option<Usdt> {
        let notional = notional.abs();
        checked_maintenance_in(self.tier_for(notional), notional)
    }

    /// Floors above zero: the notionals where the rate changes.
    pub fn boundaries(&self) -> impl Iterator<Item = Usdt> + '_ {
        self.tiers.iter().skip(1).map(|tier| tier.floor)
    }
}

/// `notional × rate − deduction`, never below zero. Saturated at `Decimal::MAX` for the
/// simulator's liquidation engine, where a maintenance beyond it is still beyond any equity;
/// solvers use [`checked_maintenance_in`].
pub fn maintenance_in(tier: &Tier, notional: Usdt) -> Usdt {
    // A rate below 1 cannot overflow the product; the subtraction can, with a venue's own
    // (unchecked) negative deduction.
    let charged = notional.saturating_mul(tier.rate);
    charged.saturating_sub(tier.deduction).max(Usdt::ZERO)
}

/// `notional × rate − deduction`, never below zero; `None` when it overflows.
pub fn checked_maintenance_in(tier: &Tier, notional: Usdt) -> Option<Usdt> {
    let charged = notional.checked_mul(tier.rate)?;
    Some(charged.checked_sub(tier.deduction)?.max(Usdt::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn usdt(v: Decimal) -> Usdt {
        Usdt(v)
    }

    /// The worked example in shared/exchanges/binance.md §4.1: brackets [0, 50k) 0.4 %,
    /// [50k, 250k) 0.5 %, [250k, …) 1 %; cum₂ = 50,000 × 0.001 = 50,
    /// cum₃ = 50 + 250,000 × 0.005 = 1,300; a 500,000 notional carries 500,000 × 1 % − 1,300
    /// = 3,700.
    fn binance_btc_example() -> TierTable {
        TierTable::from_rates(&[
            (usdt(dec!(0)), Ratio(dec!(0.004))),
            (usdt(dec!(50000)), Ratio(dec!(0.005))),
            (usdt(dec!(250000)), Ratio(dec!(0.01))),
        ])
        .unwrap()
    }

    /// A venue table read with a negative deduction was accepted (found by the arithmetic
    /// review of issue 10 item 3).
    #[test]
    fn a_negative_deduction_is_refused() {
        let tier = |floor, rate, deduction| Tier {
            floor: usdt(floor),
            rate: Ratio(rate),
            deduction: usdt(deduction),
        };
        let table = TierTable::new(vec![
            tier(dec!(0), dec!(0.004), dec!(0)),
            tier(dec!(50000), dec!(0.005), dec!(-50)),
        ]);
        assert!(matches!(
            table,
            Err(InvalidTiers::NegativeDeduction { index: 1, .. })
        ));
    }

    #[test]
    fn binance_worked_example_deductions() {
        let table = binance_btc_example();
        assert_eq!(table.tiers()[1].deduction, usdt(dec!(50)));
        assert_eq!(table.tiers()[2].deduction, usdt(dec!(1300)));
        assert_eq!(table.maintenance(usdt(dec!(500000))), usdt(dec!(3700)));
    }

    #[test]
    fn continuous_at_boundaries() {
        let table = binance_btc_example();
        // 250,000 × 0.005 − 50 = 1,200 = 250,000 × 0.01 − 1,300
        assert_eq!(table.maintenance(usdt(dec!(250000))), usdt(dec!(1200)));
        assert_eq!(
            table.maintenance(usdt(dec!(249999.99))),
            usdt(dec!(1199.99995))
        );
    }

    #[test]
    fn short_notional_is_charged_on_its_absolute_value() {
        let table = binance_btc_example();
        assert_eq!(table.maintenance(usdt(dec!(-10000))), usdt(dec!(40)));
    }

    #[test]
    fn malformed_tables_are_refused() {
        assert_eq!(TierTable::new(vec![]), Err(InvalidTiers::Empty));
        let decreasing = TierTable::from_rates(&[
            (usdt(dec!(0)), Ratio(dec!(0.01))),
            (usdt(dec!(100)), Ratio(dec!(0.005))),
        ]);
        assert!(matches!(
            decreasing,
            Err(InvalidTiers::BadRate { index: 1, .. })
        ));
        let unordered = TierTable::from_rates(&[
            (usdt(dec!(0)), Ratio(dec!(0.01))),
            (usdt(dec!(0)), Ratio(dec!(0.02))),
        ]);
        assert!(matches!(
            unordered,
            Err(InvalidTiers::FloorsNotIncreasing { index: 1, .. })
        ));
    }

    /// Issue 10 item 3: the deductions were computed before the shape was checked, so a
    /// malformed table (a rate of 5 at a floor of Decimal::MAX) overflowed instead of being
    /// refused.
    #[test]
    fn a_malformed_table_is_refused_before_its_deductions_overflow() {
        let table = TierTable::from_rates(&[
            (usdt(dec!(0)), Ratio(dec!(0.5))),
            (usdt(Decimal::MAX), Ratio(dec!(5))),
        ]);
        assert!(matches!(table, Err(InvalidTiers::BadRate { index: 1, .. })));
    }

    /// The highest tier at Decimal::MAX still computes its deduction exactly.
    #[test]
    fn a_tier_at_decimal_max_has_a_deduction() {
        let table = TierTable::from_rates(&[
            (usdt(dec!(0)), Ratio(dec!(0))),
            (usdt(Decimal::MAX), Ratio(dec!(0.5))),
        ])
        .unwrap();
        assert_eq!(table.tiers()[1].deduction, usdt(Decimal::MAX * dec!(0.5)));
        assert_eq!(table.maintenance(usdt(Decimal::MAX)), Usdt::ZERO);
    }
}
