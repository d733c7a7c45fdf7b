//! Realized volatility of a book's correlated move, from the marks the engine has seen.
//!
//! Each observation is a set of marks at one instant. The book's return between two
//! observations is the gross-notional-weighted mean of its symbols' simple returns; the
//! variance per second is Σr² / Σ∆t over the window. Pure: the caller supplies the instants.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rust_decimal::{Decimal, MathematicalOps};

use crate::core::metrics::Position;
use crate::money::{Price, Ratio};
use crate::time::Timestamp;

#[derive(Debug, Clone)]
pub struct RealizedVolatility {
    window: Duration,
    last: Option<(Timestamp, BTreeMap<String, Price>)>,
    /// (instant, squared book return, seconds since the previous observation)
    samples: VecDeque<(Timestamp, Decimal, Decimal)>,
}

impl RealizedVolatility {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last: None,
            samples: VecDeque::new(),
        }
    }

    pub fn observe(&mut self, at: Timestamp, positions: &[Position]) {
        let marks: BTreeMap<String, Price> = positions
            .iter()
            .map(|p| (p.symbol.clone(), p.mark))
            .collect();
        if let Some((previous_at, previous)) = &self.last {
            // `since` comes from an i64 of milliseconds, so it fits a u64.
            let dt = Decimal::from(at.since(*previous_at).as_millis() as u64) / Decimal::from(1000);
            if dt > Decimal::ZERO {
                if let Some(r) = book_return(positions, previous) {
                    // A return too wild to square is still "wilder than anything": the
                    // widening it feeds is capped anyway.
                    self.samples.push_back((at, r.saturating_mul(r), dt));
                }
            }
        }
        self.last = Some((at, marks));
        let oldest = Timestamp(
            at.as_millis()
                .saturating_sub(crate::core::saturated_millis(self.window)),
        );
        while self.samples.front().is_some_and(|(t, ..)| *t < oldest) {
            self.samples.pop_front();
        }
    }

    /// σ per √second, once at least two returns are in the window.
    pub fn per_sqrt_second(&self) -> Option<Ratio> {
        if self.samples.len() < 2 {
            return None;
        }
        // Saturating for the same reason as the squares; Σ∆t is bounded by the window.
        let (sum_sq, sum_dt) = self
            .samples
            .iter()
            .fold((Decimal::ZERO, Decimal::ZERO), |(s, t), (_, r2, dt)| {
                (s.saturating_add(*r2), t.saturating_add(*dt))
            });
        sum_sq.checked_div(sum_dt)?.sqrt().map(Ratio)
    }
}

/// The gross-notional-weighted mean return; `None` when nothing is weighted or a figure
/// overflows (the sample is skipped: one unreadable tick must not stop the estimate).
fn book_return(positions: &[Position], previous: &BTreeMap<String, Price>) -> Option<Decimal> {
    let mut weighted = Decimal::ZERO;
    let mut gross = Decimal::ZERO;
    for p in positions {
        let Some(before) = previous.get(&p.symbol) else {
            continue;
        };
        if before.0 <= Decimal::ZERO {
            continue;
        }
        let weight = p.checked_notional()?.0;
        let simple = p.mark.0.checked_div(before.0)?.checked_sub(Decimal::ONE)?;
        weighted = weighted.checked_add(weight.checked_mul(simple)?)?;
        gross = gross.checked_add(weight)?;
    }
    if gross <= Decimal::ZERO {
        return None;
    }
    weighted.checked_div(gross)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tiers::TierTable;
    use crate::money::Qty;
    use rust_decimal_macros::dec;
    use std::sync::Arc;

    fn at_mark(mark: Decimal) -> Vec<Position> {
        vec![Position {
            symbol: "BTCUSDT".into(),
            size: Qty(dec!(1)),
            entry: Price(dec!(100)),
            mark: Price(mark),
            leverage: dec!(10),
            tiers: Arc::new(TierTable::flat(Ratio(dec!(0.005)))),
        }]
    }

    #[test]
    fn hand_computed_volatility() {
        let mut v = RealizedVolatility::new(Duration::from_secs(3600));
        // Marks 100 → 101 → 100.99 … returns +1 %, then 100 → 99 is −1 %: r² = 0.0001 each.
        v.observe(Timestamp(0), &at_mark(dec!(100)));
        assert_eq!(v.per_sqrt_second(), None);
        v.observe(Timestamp(100_000), &at_mark(dec!(101)));
        v.observe(Timestamp(200_000), &at_mark(dec!(99.99)));
        // Σr² = 0.0001 + 0.0001 = 0.0002 over 200 s ⇒ σ² = 0.000001/s ⇒ σ = 0.001 per √s
        assert_eq!(v.per_sqrt_second(), Some(Ratio(dec!(0.001))));
    }

    /// Issue 10 item 3: a mark moving from 10⁻²⁸ to Decimal::MAX made the return overflow.
    /// That tick is skipped; the estimate goes on from the next.
    #[test]
    fn a_return_too_large_to_compute_is_skipped() {
        let mut v = RealizedVolatility::new(Duration::from_secs(3600));
        v.observe(Timestamp(0), &at_mark(Decimal::new(1, 28)));
        v.observe(Timestamp(100_000), &at_mark(Decimal::MAX));
        v.observe(Timestamp(200_000), &at_mark(Decimal::MAX));
        v.observe(Timestamp(300_000), &at_mark(Decimal::MAX));
        assert_eq!(v.per_sqrt_second(), Some(Ratio(Decimal::ZERO)));
    }

    #[test]
    fn old_samples_leave_the_window() {
        let mut v = RealizedVolatility::new(Duration::from_secs(150));
        v.observe(Timestamp(0), &at_mark(dec!(100)));
        v.observe(Timestamp(100_000), &at_mark(dec!(110)));
        v.observe(Timestamp(200_000), &at_mark(dec!(110)));
        v.observe(Timestamp(300_000), &at_mark(dec!(110)));
        // The +10 % return at t = 100 s is older than 150 s at t = 300 s.
        assert_eq!(v.per_sqrt_second(), Some(Ratio(Decimal::ZERO)));
    }
}
