//! The local account: the last REST snapshot, re-priced on streamed marks. Pure — no I/O, no
//! clock; "now" arrives as a value — so the stale guard and the re-pricing are tested as
//! plain functions.
//!
//! Re-pricing keeps the venue's own figures as the anchor, exactly as the core's liquidation
//! distance does: for each position whose mark moved from `m` to `m'`,
//! `E' = E + size·(m' − m)` and `M' = M + mm(|size|·m') − mm(|size|·m)` with the position's
//! tier table. Balances, sizes and the reserve are the snapshot's until the next REST read.

use std::collections::HashMap;
use std::time::Duration;

use crate::money::{Price, Usdt};
use crate::time::Timestamp;
use crate::venue::VenueSnapshot;

/// The last streamed mark of one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamedMark {
    pub price: Price,
    /// The venue's time of the mark, on the local clock (its server time less the measured
    /// offset).
    pub at: Timestamp,
    /// When it arrived here.
    pub received: Timestamp,
}

impl StreamedMark {
    /// How old the figure is: from the older of its venue time and its arrival.
    pub fn age(&self, now: Timestamp) -> Duration {
        now.since(self.at.min(self.received))
    }
}

/// Why the local account cannot be priced: the decision must come from REST instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpriced {
    /// A position's symbol has no streamed mark yet.
    NoMark { symbol: String },
    /// A position's mark is older than the stream's cadence allows.
    Stale { symbol: String, age: Duration },
    /// The re-priced figures leave the range of the numbers this program holds.
    OutOfRange { symbol: String },
}

impl std::fmt::Display for Unpriced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unpriced::NoMark { symbol } => write!(f, "no streamed mark for {symbol} yet"),
            Unpriced::Stale { symbol, age } => {
                write!(f, "the streamed mark for {symbol} is {age:?} old")
            }
            Unpriced::OutOfRange { symbol } => write!(
                f,
                "re-pricing {symbol} leaves the range of the numbers this program holds"
            ),
        }
    }
}

/// `seed` re-priced at the streamed marks, or why it cannot be. A mark older than the seed
/// itself leaves the seed's mark in place (REST saw a later price); one older than
/// `max_age` refuses the whole account — no decision on a stale figure.
pub fn reprice(
    seed: &VenueSnapshot,
    marks: &HashMap<String, StreamedMark>,
    now: Timestamp,
    max_age: Duration,
) -> Result<VenueSnapshot, Unpriced> {
    let mut priced = seed.clone();
    let mut equity = seed.account.equity;
    let mut maintenance = seed.account.maintenance;
    let mut as_of = now;
    for position in priced.account.positions.iter_mut() {
        if position.size.is_zero() {
            continue;
        }
        let symbol = &position.symbol;
        let mark = fresh_mark(symbol, marks, now, max_age)?;
        as_of = as_of.min(mark.at.min(mark.received));
        if mark.at < seed.as_of {
            continue;
        }
        let out_of_range = || Unpriced::OutOfRange {
            symbol: symbol.clone(),
        };
        let before = position.clone();
        position.mark = mark.price;
        let pnl_change = position
            .checked_signed_notional()
            .and_then(|after| after.checked_sub(before.checked_signed_notional()?))
            .ok_or_else(out_of_range)?;
        let mm_change = maintenance_of(position)
            .and_then(|after| after.checked_sub(maintenance_of(&before)?))
            .ok_or_else(out_of_range)?;
        equity = equity.checked_add(pnl_change).ok_or_else(out_of_range)?;
        maintenance = maintenance
            .checked_add(mm_change)
            .ok_or_else(out_of_range)?;
    }
    priced.account.equity = equity;
    priced.account.maintenance = maintenance.max(Usdt::ZERO);
    priced.as_of = as_of;
    Ok(priced)
}

/// Whether the marks can price `seed` now (every open position's mark present and fresh):
/// `reprice`'s guard without its work, for deciding whether a frame is worth a tick.
pub fn marks_usable(
    seed: &VenueSnapshot,
    marks: &HashMap<String, StreamedMark>,
    now: Timestamp,
    max_age: Duration,
) -> Result<(), Unpriced> {
    seed.account
        .positions
        .iter()
        .filter(|p| !p.size.is_zero())
        .try_for_each(|p| fresh_mark(&p.symbol, marks, now, max_age).map(|_| ()))
}

/// `symbol`'s streamed mark, unless it is missing or older than `max_age`.
fn fresh_mark<'a>(
    symbol: &str,
    marks: &'a HashMap<String, StreamedMark>,
    now: Timestamp,
    max_age: Duration,
) -> Result<&'a StreamedMark, Unpriced> {
    let mark = marks.get(symbol).ok_or_else(|| Unpriced::NoMark {
        symbol: symbol.to_string(),
    })?;
    let age = mark.age(now);
    if age > max_age {
        return Err(Unpriced::Stale {
            symbol: symbol.to_string(),
            age,
        });
    }
    Ok(mark)
}

fn maintenance_of(position: &crate::core::Position) -> Option<Usdt> {
    position
        .tiers
        .checked_maintenance(position.checked_notional()?)
}

/// How far REST's equity is from the local figure, as a share of REST's.
pub fn drift(local: Usdt, rest: Usdt) -> Option<crate::money::Ratio> {
    if rest.is_zero() {
        return None;
    }
    local.checked_sub(rest)?.abs().checked_div(rest.abs())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal_macros::dec;

    use super::*;
    use crate::core::{Account, Position, TierTable};
    use crate::money::{Qty, Ratio};

    fn seed() -> VenueSnapshot {
        // One long of 2 BTC at mark 100,000, 1 % flat maintenance: M = 2,000.
        VenueSnapshot {
            as_of: Timestamp(1_000),
            account: Account {
                equity: Usdt(dec!(10_000)),
                maintenance: Usdt(dec!(2_000)),
                positions: vec![Position {
                    symbol: "BTCUSDT".into(),
                    size: Qty(dec!(2)),
                    entry: Price(dec!(100_000)),
                    mark: Price(dec!(100_000)),
                    leverage: dec!(20),
                    tiers: Arc::new(TierTable::flat(Ratio(dec!(0.01)))),
                }],
            },
            wallet_balance: Usdt(dec!(10_000)),
            reserve_available: Usdt(dec!(5_000)),
            shadowed: Usdt::ZERO,
            stand_in_tiers: vec![],
            unguarded: vec![],
        }
    }

    fn marks(price: Price, at: i64) -> HashMap<String, StreamedMark> {
        HashMap::from([(
            "BTCUSDT".to_string(),
            StreamedMark {
                price,
                at: Timestamp(at),
                received: Timestamp(at + 5),
            },
        )])
    }

    #[test]
    fn a_mark_drop_moves_equity_by_size_and_maintenance_by_the_tier() {
        // 2 BTC × −2,000 = −4,000 equity; 1 % of 2 × 98,000 = 1,960 maintenance.
        let priced = reprice(
            &seed(),
            &marks(Price(dec!(98_000)), 2_000),
            Timestamp(2_100),
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(priced.account.equity, Usdt(dec!(6_000)));
        assert_eq!(priced.account.maintenance, Usdt(dec!(1_960)));
        assert_eq!(priced.account.positions[0].mark, Price(dec!(98_000)));
        assert_eq!(priced.as_of, Timestamp(2_000));
        assert_eq!(priced.wallet_balance, Usdt(dec!(10_000)));
    }

    #[test]
    fn a_stale_mark_refuses_the_whole_account() {
        let stale = reprice(
            &seed(),
            &marks(Price(dec!(98_000)), 2_000),
            Timestamp(5_100),
            Duration::from_secs(3),
        );
        assert!(matches!(stale, Err(Unpriced::Stale { .. })), "{stale:?}");
        let none = reprice(&seed(), &HashMap::new(), Timestamp(1_000), Duration::MAX);
        assert!(matches!(none, Err(Unpriced::NoMark { .. })));
    }

    #[test]
    fn marks_usable_agrees_with_reprice() {
        let fresh = marks(Price(dec!(98_000)), 2_000);
        let max = Duration::from_secs(3);
        assert!(marks_usable(&seed(), &fresh, Timestamp(2_100), max).is_ok());
        assert!(matches!(
            marks_usable(&seed(), &fresh, Timestamp(5_100), max),
            Err(Unpriced::Stale { .. })
        ));
        assert!(matches!(
            marks_usable(&seed(), &HashMap::new(), Timestamp(1_000), max),
            Err(Unpriced::NoMark { .. })
        ));
    }

    #[test]
    fn a_mark_older_than_the_rest_snapshot_leaves_its_mark() {
        let priced = reprice(
            &seed(),
            &marks(Price(dec!(50_000)), 900),
            Timestamp(1_200),
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(priced.account.equity, Usdt(dec!(10_000)));
    }

    #[test]
    fn a_huge_mark_is_refused_not_wrapped() {
        let result = reprice(
            &seed(),
            &marks(Price(rust_decimal::Decimal::MAX), 2_000),
            Timestamp(2_000),
            Duration::from_secs(3),
        );
        assert!(matches!(result, Err(Unpriced::OutOfRange { .. })));
    }

    #[test]
    fn drift_is_relative_to_rest() {
        assert_eq!(
            drift(Usdt(dec!(99)), Usdt(dec!(100))),
            Some(Ratio(dec!(0.01)))
        );
        assert_eq!(drift(Usdt(dec!(1)), Usdt::ZERO), None);
    }
}
