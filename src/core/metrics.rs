//! The three ways to say how far an account is from liquidation, and the collateral that moves
//! each of them back to a target.
//!
//! Notation (DESIGN.md): equity `E` (margin balance), maintenance `M`, initial margin `IM`.
//! - margin-ratio buffer `b = 1 − M/E` — the venues' own number;
//! - cushion `(E − M)/(IM − M)` — the share of the initial-margin cushion still left;
//! - liquidation distance — the smallest correlated relative move `x` of every mark for which
//!   `E(x) = M(x)`, with each position's maintenance re-tiered at the moved notional.
//!
//! Adding collateral `c` raises `E` by `c` and changes neither `M` nor `IM`, so every metric is
//! monotone in `c` and each has a closed form for the collateral that restores a target.
//!
//! Overflow: the figures come from venues and config, so any of them can be near
//! `Decimal::MAX`. Arithmetic here is checked. A quotient that overflows has a known sign and
//! is reported saturated (it is beyond every level either way); anything else that cannot be
//! computed makes the metric `Unknown`, on which the decision moves nothing.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::core::tiers::{checked_maintenance_in, TierTable};
use crate::money::{Price, Qty, Ratio, Usdt};

/// One open position, as the core sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub symbol: String,
    /// Signed size: positive long, negative short.
    pub size: Qty,
    pub entry: Price,
    pub mark: Price,
    /// Leverage the position was opened at; sets its initial margin (`notional / leverage`).
    pub leverage: Decimal,
    pub tiers: Arc<TierTable>,
}

impl Position {
    /// Signed notional at mark: what a +1 relative move of the mark adds to equity.
    /// Saturated at `Decimal`'s bounds, for display and the simulator's account; the metrics
    /// use [`Position::checked_notional`].
    pub fn signed_notional(&self) -> Usdt {
        self.size.saturating_mul(self.mark)
    }

    pub fn notional(&self) -> Usdt {
        self.signed_notional().abs()
    }

    /// `None` when size × mark leaves `Decimal`'s range.
    pub fn checked_signed_notional(&self) -> Option<Usdt> {
        self.size.checked_mul(self.mark)
    }

    pub fn checked_notional(&self) -> Option<Usdt> {
        self.checked_signed_notional().map(Usdt::abs)
    }

    /// Saturated; see [`Position::checked_initial_margin`].
    pub fn initial_margin(&self) -> Usdt {
        self.checked_initial_margin().unwrap_or(Usdt(Decimal::MAX))
    }

    /// `notional / leverage`; `None` when either overflows (a leverage near zero).
    pub fn checked_initial_margin(&self) -> Option<Usdt> {
        let notional = self.checked_notional()?;
        if self.leverage <= Decimal::ZERO {
            return Some(notional);
        }
        notional.0.checked_div(self.leverage).map(Usdt)
    }

    /// Saturated at `Decimal`'s bounds: the simulator adds it to a wallet, and a PnL beyond
    /// them is still "at least that much" in its direction.
    pub fn unrealized_pnl(&self) -> Usdt {
        let move_ = self.mark.0.saturating_sub(self.entry.0);
        Usdt(self.size.0.saturating_mul(move_))
    }
}

/// The cross-margin account's figures at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// Margin balance: wallet balance + unrealized PnL.
    pub equity: Usdt,
    /// Maintenance margin as the venue reports it (the simulator computes it from tiers).
    pub maintenance: Usdt,
    pub positions: Vec<Position>,
}

impl Account {
    /// Saturated; see [`Account::checked_initial_margin`].
    pub fn initial_margin(&self) -> Usdt {
        self.checked_initial_margin().unwrap_or(Usdt(Decimal::MAX))
    }

    /// The book's initial margin; `None` when it is not representable.
    pub fn checked_initial_margin(&self) -> Option<Usdt> {
        self.positions.iter().try_fold(Usdt::ZERO, |sum, p| {
            sum.checked_add(p.checked_initial_margin()?)
        })
    }

    pub fn has_exposure(&self) -> bool {
        self.positions.iter().any(|p| !p.size.is_zero())
    }
}

/// A metric's value: a fraction, or "unbounded" when nothing can liquidate the account (no
/// positions, or no move in range liquidates it), or "unknown" when the account's figures
/// are too large to compute it. Unbounded compares above every value and unknown above
/// unbounded, so a search for the lowest value never settles on a number nobody computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricValue {
    Value(Ratio),
    Unbounded,
    Unknown,
}

impl MetricValue {
    /// Unknown is never below a level: acting on it would be acting on a guess.
    pub fn is_below(self, level: Ratio) -> bool {
        matches!(self, MetricValue::Value(v) if v < level)
    }

    pub fn ratio(self) -> Option<Ratio> {
        match self {
            MetricValue::Value(v) => Some(v),
            MetricValue::Unbounded | MetricValue::Unknown => None,
        }
    }
}

impl PartialOrd for MetricValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MetricValue {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (MetricValue::Value(a), MetricValue::Value(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl MetricValue {
    /// Order of the variants, for comparing different ones.
    fn rank(self) -> u8 {
        match self {
            MetricValue::Value(_) => 0,
            MetricValue::Unbounded => 1,
            MetricValue::Unknown => 2,
        }
    }
}

impl fmt::Display for MetricValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricValue::Value(v) => f.write_str(&v.percent()),
            MetricValue::Unbounded => f.write_str("∞"),
            MetricValue::Unknown => f.write_str("?"),
        }
    }
}

/// Which metric a strategy watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    MarginRatioBuffer,
    Cushion,
    LiquidationDistance,
}

impl MetricKind {
    pub const ALL: [MetricKind; 3] = [
        MetricKind::MarginRatioBuffer,
        MetricKind::Cushion,
        MetricKind::LiquidationDistance,
    ];

    /// The name used in strategy files.
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::MarginRatioBuffer => "margin_ratio_buffer",
            MetricKind::Cushion => "cushion",
            MetricKind::LiquidationDistance => "liquidation_distance",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Whether levels must stay below 100 %: a buffer of 1 needs infinite equity and a move of
    /// 100 % takes a price to zero; the cushion has no such ceiling.
    pub fn levels_below_one(self) -> bool {
        !matches!(self, MetricKind::Cushion)
    }
}

/// All three metrics, always reported, whichever one the strategy acts on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub buffer: MetricValue,
    pub cushion: MetricValue,
    pub distance: LiquidationDistance,
}

impl Metrics {
    pub fn of(account: &Account) -> Self {
        Self {
            buffer: margin_ratio_buffer(account),
            cushion: cushion(account),
            distance: liquidation_distance(account),
        }
    }

    pub fn get(&self, kind: MetricKind) -> MetricValue {
        match kind {
            MetricKind::MarginRatioBuffer => self.buffer,
            MetricKind::Cushion => self.cushion,
            MetricKind::LiquidationDistance => self.distance.magnitude(),
        }
    }
}

/// `1 − M/E`. At or past liquidation with non-positive equity it is reported as −100 %, so a
/// bankrupt account never looks healthier than a merely liquidated one.
pub fn margin_ratio_buffer(account: &Account) -> MetricValue {
    // Nothing open, nothing to liquidate — even on an emptied wallet after a liquidation,
    // where pouring reserve in would save nothing.
    if !account.has_exposure() {
        return MetricValue::Unbounded;
    }
    buffer_of(account.equity, account.maintenance)
}

/// `1 − M/E` of a book with exposure, from its two figures alone (the replay's inner loop).
/// With `E` tiny against `M` the quotient overflows; its sign is `M`'s, and the buffer is
/// reported saturated on that side.
pub fn buffer_of(equity: Usdt, maintenance: Usdt) -> MetricValue {
    if equity.0 <= Decimal::ZERO {
        return MetricValue::Value(Ratio(-Decimal::ONE));
    }
    let used = saturating_div(maintenance.0, equity.0);
    MetricValue::Value(Ratio(Decimal::ONE.saturating_sub(used)))
}

/// `a / b` for `b ≠ 0`, clamped to `Decimal::MAX`/`MIN` when the quotient overflows: its sign
/// is still known, and it lies beyond every level a strategy can set.
fn saturating_div(a: Decimal, b: Decimal) -> Decimal {
    a.checked_div(b).unwrap_or({
        if a.is_sign_negative() == b.is_sign_negative() {
            Decimal::MAX
        } else {
            Decimal::MIN
        }
    })
}

/// `(E − M)/(IM − M)`; unbounded when there is no initial-margin cushion to measure against
/// (no positions), which only happens when nothing can be liquidated.
pub fn cushion(account: &Account) -> MetricValue {
    let Some(room) = cushion_room(account) else {
        return MetricValue::Unknown;
    };
    if room.0 <= Decimal::ZERO {
        if account.has_exposure() {
            // Maintenance at or above initial margin (leverage near 1/rate): there is no
            // cushion to measure, so report none left rather than a flattering number.
            return MetricValue::Value(Ratio::ZERO);
        }
        return MetricValue::Unbounded;
    }
    match account.equity.checked_sub(account.maintenance) {
        Some(left) => MetricValue::Value(Ratio(saturating_div(left.0, room.0))),
        None => MetricValue::Unknown,
    }
}

/// `IM − M`, the initial-margin cushion; `None` when it is not representable.
fn cushion_room(account: &Account) -> Option<Usdt> {
    account
        .checked_initial_margin()?
        .checked_sub(account.maintenance)
}

/// The correlated move of every mark that would liquidate: negative is a fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiquidationDistance {
    /// Already at or past liquidation (E ≤ M).
    Now,
    Move(Ratio),
    /// No move of any size liquidates (no exposure).
    Never,
    /// The account's figures are too large to solve for the move.
    Unknown,
}

impl LiquidationDistance {
    pub fn magnitude(self) -> MetricValue {
        match self {
            LiquidationDistance::Now => MetricValue::Value(Ratio::ZERO),
            LiquidationDistance::Move(x) => MetricValue::Value(x.abs()),
            LiquidationDistance::Never => MetricValue::Unbounded,
            LiquidationDistance::Unknown => MetricValue::Unknown,
        }
    }
}

impl fmt::Display for LiquidationDistance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiquidationDistance::Now => f.write_str("0.00%"),
            LiquidationDistance::Move(x) if x.is_sign_negative() => {
                write!(f, "-{}", x.abs().percent())
            }
            LiquidationDistance::Move(x) => write!(f, "+{}", x.percent()),
            LiquidationDistance::Never => f.write_str("∞"),
            LiquidationDistance::Unknown => f.write_str("?"),
        }
    }
}

/// Equity minus maintenance after a correlated relative move `x` of all marks, with each
/// position's tier chosen at the notional it has at `x_tier` (the caller picks a point inside
/// the segment so the function is linear on it). Anchored to the venue's reported `E` and `M`:
/// only the *change* of maintenance comes from the tier tables. Every evaluation is `None`
/// when its figures leave `Decimal`'s range.
struct Surplus<'a> {
    account: &'a Account,
    net_notional: Usdt,
}

impl<'a> Surplus<'a> {
    fn new(account: &'a Account) -> Option<Self> {
        let net_notional = account.positions.iter().try_fold(Usdt::ZERO, |sum, p| {
            sum.checked_add(p.checked_signed_notional()?)
        })?;
        Some(Self {
            account,
            net_notional,
        })
    }

    fn at(&self, x: Decimal, x_tier: Decimal) -> Option<Decimal> {
        let equity = self
            .account
            .equity
            .0
            .checked_add(x.checked_mul(self.net_notional.0)?)?;
        let mut maintenance = self.account.maintenance.0;
        for position in &self.account.positions {
            let now = position.checked_notional()?;
            let tier = position.tiers.tier_for(scaled(now, x_tier)?);
            let moved = checked_maintenance_in(tier, scaled(now, x)?)?;
            let change = moved.checked_sub(position.tiers.checked_maintenance(now)?)?;
            maintenance = maintenance.checked_add(change.0)?;
        }
        equity.checked_sub(maintenance)
    }

    /// Surplus at `x` with the tier that `x` itself falls in.
    fn exact(&self, x: Decimal) -> Option<Decimal> {
        self.at(x, x)
    }

    /// Relative moves at which some position crosses a tier boundary, on one side of zero.
    /// A boundary whose move overflows lies beyond any representable move and is left out:
    /// past the last boundary kept, the solver treats the surplus as the straight line it is
    /// over every move it can represent.
    fn breakpoints(&self, upward: bool) -> Vec<Decimal> {
        let mut points: Vec<Decimal> = self
            .account
            .positions
            .iter()
            .filter_map(|p| Some((p, p.checked_notional().filter(|n| !n.is_zero())?)))
            .flat_map(|(p, notional)| {
                p.tiers.boundaries().filter_map(move |floor| {
                    floor.0.checked_div(notional.0)?.checked_sub(Decimal::ONE)
                })
            })
            .filter(|x| {
                if upward {
                    *x > Decimal::ZERO
                } else {
                    *x < Decimal::ZERO && *x > -Decimal::ONE
                }
            })
            .collect();
        points.sort();
        if !upward {
            points.reverse();
        }
        points.dedup();
        points
    }
}

/// `notional × (1 + x)`, the notional after a relative move `x`.
fn scaled(notional: Usdt, x: Decimal) -> Option<Usdt> {
    notional
        .0
        .checked_mul(Decimal::ONE.checked_add(x)?)
        .map(Usdt)
}

/// Solves `E(x) = M(x)` for the smallest |x| on either side, exactly: the surplus is linear
/// between tier boundaries, so the root is found by walking segments outwards from zero.
pub fn liquidation_distance(account: &Account) -> LiquidationDistance {
    if !account.has_exposure() {
        return LiquidationDistance::Never;
    }
    solve_distance(account).unwrap_or(LiquidationDistance::Unknown)
}

/// The distance, or `None` when some figure on the way leaves `Decimal`'s range.
fn solve_distance(account: &Account) -> Option<LiquidationDistance> {
    let surplus = Surplus::new(account)?;
    if surplus.exact(Decimal::ZERO)? <= Decimal::ZERO {
        return Some(LiquidationDistance::Now);
    }
    let down = root_downward(&surplus)?;
    let up = root_upward(&surplus, down.map(|d| -d))?;
    Some(match (down, up) {
        (Some(d), Some(u)) if u < -d => LiquidationDistance::Move(Ratio(u)),
        (Some(d), _) => LiquidationDistance::Move(Ratio(d)),
        (None, Some(u)) => LiquidationDistance::Move(Ratio(u)),
        (None, None) => LiquidationDistance::Never,
    })
}

/// The root below zero, `Ok(None)` if no fall liquidates; the outer `None` is an overflow.
fn root_downward(surplus: &Surplus<'_>) -> Option<Option<Decimal>> {
    let mut hi = Decimal::ZERO;
    let mut points = surplus.breakpoints(false);
    points.push(-Decimal::ONE);
    for lo in points {
        // Both ends lie in [−1, 0]: their mean cannot overflow.
        let mid = (lo + hi) / Decimal::TWO;
        let (g_lo, g_hi) = (surplus.at(lo, mid)?, surplus.at(hi, mid)?);
        if g_lo <= Decimal::ZERO {
            return interpolate_root(lo, g_lo, hi, g_hi).map(Some);
        }
        hi = lo;
    }
    Some(None)
}

/// The root above zero, as [`root_downward`]. The walk stops at `nearer_than` (the fall
/// that liquidates): a rise at least that large is not the distance, and far rises are where
/// the figures overflow — a dust position's tier boundaries sit at enormous moves.
fn root_upward(surplus: &Surplus<'_>, nearer_than: Option<Decimal>) -> Option<Option<Decimal>> {
    let beyond = |x: Decimal| nearer_than.is_some_and(|limit| x >= limit);
    let mut lo = Decimal::ZERO;
    for hi in surplus.breakpoints(true) {
        if beyond(lo) {
            return Some(None);
        }
        let mid = lo.checked_add(hi)?.checked_div(Decimal::TWO)?;
        let (g_lo, g_hi) = (surplus.at(lo, mid)?, surplus.at(hi, mid)?);
        if g_hi <= Decimal::ZERO {
            return interpolate_root(lo, g_lo, hi, g_hi).map(Some);
        }
        lo = hi;
    }
    if beyond(lo) {
        return Some(None);
    }
    // Past the last boundary the surplus is a straight line: solve it directly.
    let probe = lo.checked_add(Decimal::ONE)?;
    let (g_lo, g_probe) = (surplus.at(lo, probe)?, surplus.at(probe, probe)?);
    let slope = g_probe.checked_sub(g_lo)?;
    if slope >= Decimal::ZERO {
        return Some(None);
    }
    // g_lo > 0 and slope < 0: the step is negative, and one that overflows puts the root
    // beyond any representable rise — reported saturated at Decimal::MAX.
    let step = g_lo.checked_div(slope).unwrap_or(Decimal::MIN);
    Some(Some(lo.saturating_sub(step)))
}

/// Root of the straight line through `(lo, g_lo)` and `(hi, g_hi)`, where the signs differ.
fn interpolate_root(lo: Decimal, g_lo: Decimal, hi: Decimal, g_hi: Decimal) -> Option<Decimal> {
    if g_hi == g_lo {
        return Some(hi);
    }
    let run = g_hi.checked_mul(hi.checked_sub(lo)?)?;
    hi.checked_sub(run.checked_div(g_hi.checked_sub(g_lo)?)?)
}

/// Why no amount of collateral is given for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAmount {
    /// No amount reaches it (a buffer target of 100 % or more, or a cushion with no
    /// initial-margin room).
    Unreachable,
    /// The account's figures are too large to compute the amount.
    Overflow,
}

/// The collateral that brings `kind` exactly to `target` (zero if it is already there).
pub fn collateral_for_target(
    account: &Account,
    kind: MetricKind,
    target: Ratio,
) -> Result<Usdt, NoAmount> {
    let needed = signed_collateral(account, kind, target)?;
    Ok(Usdt(needed.max(Decimal::ZERO)))
}

/// The collateral that can leave while `kind` stays at or above `level` (zero if it is not
/// above it): what a sweep may take. Every metric is monotone in equity and each formula
/// below is exact in it, so the surplus is the negated shortfall.
pub fn collateral_above(
    account: &Account,
    kind: MetricKind,
    level: Ratio,
) -> Result<Usdt, NoAmount> {
    let needed = signed_collateral(account, kind, level)?;
    // Negating a Decimal cannot overflow: its range is symmetric.
    Ok(Usdt((-needed).max(Decimal::ZERO)))
}

/// Collateral to add (positive) or that could leave (negative) for `kind` to be `target`.
fn signed_collateral(
    account: &Account,
    kind: MetricKind,
    target: Ratio,
) -> Result<Decimal, NoAmount> {
    match kind {
        MetricKind::MarginRatioBuffer => buffer_collateral(account, target),
        MetricKind::Cushion => cushion_collateral(account, target),
        MetricKind::LiquidationDistance => distance_collateral(account, target),
    }
}

/// 1 − M/(E + c) = b*  ⇔  c = M/(1 − b*) − E
fn buffer_collateral(account: &Account, target: Ratio) -> Result<Decimal, NoAmount> {
    if target.0 >= Decimal::ONE {
        return Err(NoAmount::Unreachable);
    }
    let equity_needed = Decimal::ONE
        .checked_sub(target.0)
        .and_then(|free| account.maintenance.0.checked_div(free));
    equity_needed
        .and_then(|e| e.checked_sub(account.equity.0))
        .ok_or(NoAmount::Overflow)
}

/// (E + c − M)/(IM − M) = t  ⇔  c = t(IM − M) + M − E
fn cushion_collateral(account: &Account, target: Ratio) -> Result<Decimal, NoAmount> {
    let room = cushion_room(account).ok_or(NoAmount::Overflow)?;
    if room.0 <= Decimal::ZERO {
        return Err(NoAmount::Unreachable);
    }
    target
        .0
        .checked_mul(room.0)
        .and_then(|e| e.checked_add(account.maintenance.0))
        .and_then(|e| e.checked_sub(account.equity.0))
        .ok_or(NoAmount::Overflow)
}

/// The surplus is concave in x (maintenance is convex in notional), so the distance reaches
/// d* exactly when the surplus is non-negative at both −d* and +d*.
fn distance_collateral(account: &Account, target: Ratio) -> Result<Decimal, NoAmount> {
    if target.0 >= Decimal::ONE && account.positions.iter().any(|p| p.size.0 > Decimal::ZERO) {
        return Err(NoAmount::Unreachable);
    }
    let shortfalls = || {
        let surplus = Surplus::new(account)?;
        // Negating a Decimal cannot overflow: its range is symmetric.
        let short_fall = -surplus.exact(-target.0)?;
        let short_rise = -surplus.exact(target.0)?;
        Some(short_fall.max(short_rise))
    };
    shortfalls().ok_or(NoAmount::Overflow)
}

/// The same account with `amount` more collateral: what a settled top-up does.
/// Saturated at `Decimal::MAX`: it models money that exists, and is used in tests and
/// reports, not to size a transfer.
pub fn with_collateral(account: &Account, amount: Usdt) -> Account {
    Account {
        equity: account.equity.saturating_add(amount),
        ..account.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn btc_tiers() -> Arc<TierTable> {
        Arc::new(
            TierTable::from_rates(&[
                (Usdt(dec!(0)), Ratio(dec!(0.004))),
                (Usdt(dec!(50000)), Ratio(dec!(0.005))),
                (Usdt(dec!(250000)), Ratio(dec!(0.01))),
            ])
            .unwrap(),
        )
    }

    fn position(size: Decimal, entry: Decimal, mark: Decimal, leverage: Decimal) -> Position {
        Position {
            symbol: "BTCUSDT".into(),
            size: Qty(size),
            entry: Price(entry),
            mark: Price(mark),
            leverage,
            tiers: btc_tiers(),
        }
    }

    /// A 10× long of 2 BTC at 50,000 (notional 100,000) on a 10,000 wallet, mark at entry.
    fn ten_x_long() -> Account {
        let p = position(dec!(2), dec!(50000), dec!(50000), dec!(10));
        let maintenance = p.tiers.maintenance(p.notional());
        Account {
            equity: Usdt(dec!(10000)),
            maintenance,
            positions: vec![p],
        }
    }

    #[test]
    fn hand_computed_buffer_and_cushion() {
        let account = ten_x_long();
        // M = 100,000 × 0.005 − 50 = 450; b = 1 − 450/10,000 = 0.955
        assert_eq!(account.maintenance, Usdt(dec!(450)));
        assert_eq!(
            margin_ratio_buffer(&account),
            MetricValue::Value(Ratio(dec!(0.955)))
        );
        // IM = 100,000/10 = 10,000; cushion = (10,000 − 450)/(10,000 − 450) = 1
        assert_eq!(cushion(&account), MetricValue::Value(Ratio(dec!(1))));
    }

    #[test]
    fn hand_computed_distance_single_long() {
        let account = ten_x_long();
        // Fall x: E(x) = 10,000 + 100,000x. Notional 100,000(1+x) stays ≥ 50,000 for x ≥ −0.5,
        // so tier 2: M(x) = 100,000(1+x) × 0.005 − 50 = 450 + 500x.
        // 10,000 + 100,000x = 450 + 500x  ⇒  x = −9,550/99,500 = −0.0959798994974874371859296482
        let d = liquidation_distance(&account);
        let LiquidationDistance::Move(x) = d else {
            panic!("expected a move, got {d:?}")
        };
        assert!((x.0 - dec!(-0.0959798994974874371859296482)).abs() < dec!(1e-20));
    }

    #[test]
    fn hand_computed_distance_crosses_a_tier() {
        // 2 BTC marked at 30,000 (notional 60,000, tier 2): M = 60,000 × 0.005 − 50 = 250,
        // E = 10,000. In tier 2, M(x) = 250 + 300x and E(x) = 10,000 + 60,000x. At the tier
        // boundary (notional 50,000, x = −1/6) the surplus is 0 − 200 < 0, so the root is in
        // tier 2: 10,000 + 60,000x = 250 + 300x ⇒ x = −9,750/59,700 = −0.16331658291457286432160804
        let p = position(dec!(2), dec!(50000), dec!(30000), dec!(10));
        let account = Account {
            equity: Usdt(dec!(10000)),
            maintenance: Usdt(dec!(250)),
            positions: vec![p],
        };
        let LiquidationDistance::Move(x) = liquidation_distance(&account) else {
            panic!()
        };
        assert!((x.0 - dec!(-0.16331658291457286432160804)).abs() < dec!(1e-20));
    }

    #[test]
    fn distance_below_a_tier_boundary() {
        // As above with E = 12,000: at the boundary (x = −1/6) the surplus is
        // 12,000 − 10,000 − 200 = 1,800 > 0, so the root lies in tier 1 (0.4 %, no deduction),
        // anchored to the reported M: M(x) = 250 + (240(1+x) − 250) = 240 + 240x.
        // 12,000 + 60,000x = 240 + 240x ⇒ x = −11,760/59,760 = −0.196787148594377510040160643
        let p = position(dec!(2), dec!(50000), dec!(30000), dec!(10));
        let account = Account {
            equity: Usdt(dec!(12000)),
            maintenance: Usdt(dec!(250)),
            positions: vec![p],
        };
        let LiquidationDistance::Move(x) = liquidation_distance(&account) else {
            panic!()
        };
        assert!((x.0 - dec!(-0.196787148594377510040160643)).abs() < dec!(1e-20));
    }

    #[test]
    fn short_is_liquidated_by_a_rise() {
        // Short 2 BTC at 50,000, E = 10,000, M = 450.
        // Rise x: E(x) = 10,000 − 100,000x; tier 2 up to notional 250,000:
        // 10,000 − 100,000x = 450 + 500x ⇒ x = 9,550/100,500 = 0.0950248756218905472636815920
        let p = position(dec!(-2), dec!(50000), dec!(50000), dec!(10));
        let account = Account {
            equity: Usdt(dec!(10000)),
            maintenance: Usdt(dec!(450)),
            positions: vec![p],
        };
        let LiquidationDistance::Move(x) = liquidation_distance(&account) else {
            panic!()
        };
        assert!((x.0 - dec!(0.0950248756218905472636815920)).abs() < dec!(1e-20));
    }

    #[test]
    fn no_positions_is_never_liquidated() {
        let account = Account {
            equity: Usdt(dec!(100)),
            maintenance: Usdt::ZERO,
            positions: vec![],
        };
        assert_eq!(liquidation_distance(&account), LiquidationDistance::Never);
        assert_eq!(margin_ratio_buffer(&account), MetricValue::Unbounded);
        assert_eq!(cushion(&account), MetricValue::Unbounded);
    }

    /// Regression: after a liquidation the account is flat with an empty wallet; the buffer
    /// read −100 % and an emergency top-up was poured into an account with nothing to save.
    #[test]
    fn liquidated_flat_account_needs_no_rescue() {
        let account = Account {
            equity: Usdt::ZERO,
            maintenance: Usdt::ZERO,
            positions: vec![],
        };
        assert_eq!(margin_ratio_buffer(&account), MetricValue::Unbounded);
        assert_eq!(liquidation_distance(&account), LiquidationDistance::Never);
    }

    #[test]
    fn equity_below_maintenance_is_liquidation_now() {
        let mut account = ten_x_long();
        account.equity = Usdt(dec!(400));
        assert_eq!(liquidation_distance(&account), LiquidationDistance::Now);
    }

    #[test]
    fn top_up_for_distance_restores_it_exactly() {
        let account = ten_x_long();
        // Target 12 %: surplus at x = −0.12 is 10,000 − 12,000 − (450 − 60) = −2,390 → c = 2,390
        let c = collateral_for_target(&account, MetricKind::LiquidationDistance, Ratio(dec!(0.12)))
            .unwrap();
        assert_eq!(c, Usdt(dec!(2390)));
        let after = with_collateral(&account, c);
        assert_eq!(
            liquidation_distance(&after).magnitude(),
            MetricValue::Value(Ratio(dec!(0.12)))
        );
    }

    #[test]
    fn top_up_for_buffer_hand_computed() {
        let mut account = ten_x_long();
        account.equity = Usdt(dec!(500));
        // b* = 0.3: c = 450/0.7 − 500 = 142.857142857142857142857142857…
        let c = collateral_for_target(&account, MetricKind::MarginRatioBuffer, Ratio(dec!(0.3)))
            .unwrap();
        assert!((c.0 - dec!(142.85714285714285714285714286)).abs() < dec!(1e-20));
    }

    /// Issue 10 item 3: a dust position's tier boundaries sit at moves beyond `Decimal::MAX`
    /// (50,000 / 10⁻²⁸); computing them overflowed. They are out of reach and left out.
    #[test]
    fn a_dust_position_does_not_overflow_the_breakpoints() {
        let mut account = ten_x_long();
        account
            .positions
            .push(position(Decimal::new(1, 28), dec!(1), dec!(1), dec!(10)));
        let LiquidationDistance::Move(x) = liquidation_distance(&account) else {
            panic!("expected a move")
        };
        // As hand_computed_distance_single_long: the dust changes nothing visible.
        assert!((x.0 - dec!(-0.0959798994974874371859296482)).abs() < dec!(1e-20));
    }

    /// A leverage near zero puts the initial margin past `Decimal::MAX`: the cushion, which
    /// needs it, is unknown; the buffer, which does not, is still computed.
    #[test]
    fn a_leverage_near_zero_makes_the_cushion_unknown_not_a_panic() {
        let mut account = ten_x_long();
        account.positions[0].leverage = Decimal::new(1, 28);
        assert_eq!(cushion(&account), MetricValue::Unknown);
        assert_eq!(
            collateral_for_target(&account, MetricKind::Cushion, Ratio(dec!(0.3))),
            Err(NoAmount::Overflow)
        );
        assert_eq!(account.initial_margin(), Usdt(Decimal::MAX));
        assert_eq!(
            margin_ratio_buffer(&account),
            MetricValue::Value(Ratio(dec!(0.955)))
        );
    }

    /// A book priced beyond `Decimal::MAX` has no distance anyone computed.
    #[test]
    fn a_position_too_large_to_price_has_an_unknown_distance() {
        let mut account = ten_x_long();
        account.positions[0].size = Qty(Decimal::MAX);
        assert_eq!(liquidation_distance(&account), LiquidationDistance::Unknown);
        assert_eq!(
            liquidation_distance(&account).magnitude(),
            MetricValue::Unknown
        );
        assert_eq!(liquidation_distance(&account).to_string(), "?");
    }

    #[test]
    fn unknown_compares_above_everything() {
        let value = MetricValue::Value(Ratio(Decimal::MAX));
        assert!(value < MetricValue::Unbounded);
        assert!(MetricValue::Unbounded < MetricValue::Unknown);
        assert!(!MetricValue::Unknown.is_below(Ratio(Decimal::MAX)));
    }
}
