//! A strategy is data: the metric it watches and four levels in that metric.
//!
//! The levels are checked once, here, so the decision code can rely on their order:
//! `0 < floor < top_up_below ≤ alert_below` and `top_up_below < target`.

use std::time::Duration;

use rust_decimal::{Decimal, MathematicalOps};

use super::sweep::SweepRule;
use crate::core::metrics::MetricKind;
use crate::money::Ratio;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// Warn below this, before anything has to move.
    pub alert_below: Ratio,
    /// Move reserve below this.
    pub top_up_below: Ratio,
    /// Refill to this.
    pub target: Ratio,
    /// Below this it is an emergency: move the most the caps allow and alert critically.
    pub floor: Ratio,
}

impl Levels {
    /// Every level but the floor moved up by `by`: a wider trigger keeps its distance to the
    /// alert and the target, so the validated order still holds. Saturated at
    /// `Decimal::MAX`: a cushion level may be set that high, and a level past the bound still
    /// lies above every value.
    pub fn widened(self, by: Ratio) -> Levels {
        Levels {
            alert_below: self.alert_below.saturating_add(by),
            top_up_below: self.top_up_below.saturating_add(by),
            target: self.target.saturating_add(by),
            floor: self.floor,
        }
    }
}

/// Widening of the levels with realized volatility over the rescue horizon.
///
/// Why: a rescue takes one poll interval to notice and one settlement to land; over that
/// horizon a market with per-√second volatility σ moves about `σ·√h`. Acting `k` of those
/// moves earlier keeps a fast wick from going through the trigger before the money lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolatilityWidening {
    /// `k`: how many horizon-sized standard deviations to add.
    pub multiplier: Decimal,
    /// Never widen by more than this, so one wild print cannot drain the reserve.
    pub max_widening: Ratio,
    /// How much recent history the realized volatility is measured over.
    pub window: Duration,
}

impl VolatilityWidening {
    /// `min(k · σ · √h, max)`, with σ the realized volatility per √second. The product
    /// saturates: it is capped at `max` right after, and a wild σ still means "widen fully".
    pub fn widening(&self, sigma_per_sqrt_sec: Ratio, horizon: Duration) -> Ratio {
        // A horizon beyond u64 milliseconds (585 million years) is read as that bound.
        let millis = u64::try_from(horizon.as_millis()).unwrap_or(u64::MAX);
        // Dividing by a constant above 1 cannot overflow.
        let horizon_secs = Decimal::from(millis) / Decimal::from(1000);
        let root = horizon_secs.sqrt().unwrap_or(Decimal::ZERO);
        let k_sigma = Ratio(self.multiplier).saturating_mul(sigma_per_sqrt_sec);
        let raw = k_sigma.saturating_mul(Ratio(root));
        raw.min(self.max_widening).max(Ratio::ZERO)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    pub name: String,
    pub description: String,
    pub metric: MetricKind,
    pub levels: Levels,
    pub volatility: Option<VolatilityWidening>,
    /// When and how far to sweep back to the reserve (`[sweep]`); `None`: never. An
    /// account must also enable sweeping and set its sweep caps.
    pub sweep: Option<SweepRule>,
}

/// Which level is wrong and why; the config layer adds the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct InvalidStrategy {
    pub key: &'static str,
    pub message: String,
}

impl Strategy {
    pub fn new(
        name: String,
        description: String,
        metric: MetricKind,
        levels: Levels,
        volatility: Option<VolatilityWidening>,
    ) -> Result<Self, InvalidStrategy> {
        validate_levels(metric, &levels)?;
        if let Some(v) = &volatility {
            if v.multiplier <= Decimal::ZERO {
                return Err(invalid(
                    "volatility.multiplier",
                    format!("must be above 0, got {}", v.multiplier),
                ));
            }
            if v.max_widening.0 <= Decimal::ZERO {
                return Err(invalid(
                    "volatility.max_widening",
                    format!("must be above 0, got {}", v.max_widening),
                ));
            }
            let widest = levels.target.saturating_add(v.max_widening);
            if metric.levels_below_one() && widest.0 >= Decimal::ONE {
                return Err(invalid(
                    "volatility.max_widening",
                    format!(
                        "target + max_widening must stay below 1 for {}, got {} + {}",
                        metric.name(),
                        levels.target,
                        v.max_widening
                    ),
                ));
            }
            if v.window.is_zero() {
                return Err(invalid("volatility.window", "must be longer than 0".into()));
            }
        }
        Ok(Self {
            name,
            description,
            metric,
            levels,
            volatility,
            sweep: None,
        })
    }

    /// The strategy with a sweep-back rule, checked against its levels (above > target +
    /// margin, below 1 where the metric is a fraction below 1, and a calm period).
    pub fn with_sweep(mut self, rule: SweepRule) -> Result<Self, InvalidStrategy> {
        rule.check(&self.levels)
            .map_err(|message| invalid("sweep.above", message))?;
        if self.metric.levels_below_one() && rule.above.0 >= Decimal::ONE {
            return Err(invalid(
                "sweep.above",
                format!(
                    "must be below 1 for {}, got {}",
                    self.metric.name(),
                    rule.above
                ),
            ));
        }
        if rule.calm_for.is_zero() {
            return Err(invalid(
                "sweep.calm_for",
                "must be longer than 0: a sweep right after a rescue would hand the wick its margin back".into(),
            ));
        }
        self.sweep = Some(rule);
        Ok(self)
    }
}

fn invalid(key: &'static str, message: String) -> InvalidStrategy {
    InvalidStrategy { key, message }
}

fn validate_levels(metric: MetricKind, l: &Levels) -> Result<(), InvalidStrategy> {
    if l.floor.0 <= Decimal::ZERO {
        return Err(invalid(
            "floor",
            format!("must be above 0, got {}", l.floor),
        ));
    }
    if l.floor >= l.top_up_below {
        return Err(invalid(
            "floor",
            format!(
                "must be below top_up_below ({}), got {}",
                l.top_up_below, l.floor
            ),
        ));
    }
    if l.top_up_below > l.alert_below {
        return Err(invalid(
            "top_up_below",
            format!(
                "must not be above alert_below ({}), got {}",
                l.alert_below, l.top_up_below
            ),
        ));
    }
    if l.top_up_below >= l.target {
        return Err(invalid(
            "target",
            format!(
                "must be above top_up_below ({}), got {}",
                l.top_up_below, l.target
            ),
        ));
    }
    if metric.levels_below_one() {
        for (key, level) in [("alert_below", l.alert_below), ("target", l.target)] {
            if level.0 >= Decimal::ONE {
                return Err(invalid(
                    key,
                    format!("must be below 1 for {}, got {}", metric.name(), level),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn levels(alert: Decimal, trigger: Decimal, target: Decimal, floor: Decimal) -> Levels {
        Levels {
            alert_below: Ratio(alert),
            top_up_below: Ratio(trigger),
            target: Ratio(target),
            floor: Ratio(floor),
        }
    }

    fn check(metric: MetricKind, l: Levels) -> Result<Strategy, InvalidStrategy> {
        Strategy::new("t".into(), String::new(), metric, l, None)
    }

    #[test]
    fn seed_ladder_levels_are_valid() {
        let l = levels(dec!(0.30), dec!(0.20), dec!(0.30), dec!(0.10));
        assert!(check(MetricKind::MarginRatioBuffer, l).is_ok());
    }

    #[test]
    fn each_ordering_rule_names_its_key() {
        let cases = [
            (levels(dec!(0.3), dec!(0.2), dec!(0.3), dec!(0)), "floor"),
            (levels(dec!(0.3), dec!(0.2), dec!(0.3), dec!(0.2)), "floor"),
            (
                levels(dec!(0.1), dec!(0.2), dec!(0.3), dec!(0.05)),
                "top_up_below",
            ),
            (
                levels(dec!(0.3), dec!(0.2), dec!(0.2), dec!(0.05)),
                "target",
            ),
            (
                levels(dec!(1.2), dec!(0.2), dec!(0.3), dec!(0.05)),
                "alert_below",
            ),
        ];
        for (l, key) in cases {
            let err = check(MetricKind::LiquidationDistance, l).unwrap_err();
            assert_eq!(err.key, key, "{l:?}");
        }
    }

    #[test]
    fn cushion_may_target_above_one() {
        let l = levels(dec!(1.5), dec!(1.2), dec!(2), dec!(0.5));
        assert!(check(MetricKind::Cushion, l).is_ok());
    }

    #[test]
    fn widening_hand_computed() {
        let w = VolatilityWidening {
            multiplier: dec!(3),
            max_widening: Ratio(dec!(0.10)),
            window: Duration::from_secs(3600),
        };
        // σ = 0.0001 per √s, h = 100 s ⇒ 3 × 0.0001 × 10 = 0.003
        assert_eq!(
            w.widening(Ratio(dec!(0.0001)), Duration::from_secs(100)),
            Ratio(dec!(0.003))
        );
        // capped at 0.10
        assert_eq!(
            w.widening(Ratio(dec!(1)), Duration::from_secs(100)),
            Ratio(dec!(0.10))
        );
    }

    /// Issue 10 item 3: k·σ·√h overflowed for a wild σ; it saturates and is capped.
    #[test]
    fn a_wild_volatility_widens_fully_not_a_panic() {
        let w = VolatilityWidening {
            multiplier: Decimal::MAX,
            max_widening: Ratio(dec!(0.10)),
            window: Duration::from_secs(3600),
        };
        assert_eq!(
            w.widening(Ratio(Decimal::MAX), Duration::MAX),
            Ratio(dec!(0.10))
        );
        assert_eq!(w.widening(Ratio(Decimal::MIN), Duration::MAX), Ratio::ZERO);
        let l = levels(dec!(1.5), dec!(1.2), Decimal::MAX, dec!(0.5));
        assert_eq!(l.widened(Ratio(dec!(0.10))).target, Ratio(Decimal::MAX));
    }
}
