//! Strategy files (`strategies/*.toml`): raw values, then a validated `Strategy`.

use std::path::Path;

use serde::Deserialize;

use super::literal::{DurationLit, RatioLit};
use super::{load_toml, ConfigError};
use crate::core::sweep::SweepRule;
use crate::core::{Levels, MetricKind, Strategy, VolatilityWidening};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStrategy {
    name: String,
    #[serde(default)]
    description: String,
    metric: String,
    alert_below: RatioLit,
    top_up_below: RatioLit,
    target: RatioLit,
    floor: RatioLit,
    volatility: Option<RawVolatility>,
    sweep: Option<RawSweep>,
}

/// `[sweep]`: when the bot may return to the reserve what it moved in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    above: RatioLit,
    margin: RatioLit,
    calm_for: DurationLit,
    max_volatility: Option<RatioLit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolatility {
    multiplier: RatioLit,
    max_widening: RatioLit,
    window: DurationLit,
}

pub fn load(path: &Path) -> Result<Strategy, ConfigError> {
    let raw: RawStrategy = load_toml(path)?;
    let metric = MetricKind::from_name(&raw.metric).ok_or_else(|| {
        let allowed: Vec<&str> = MetricKind::ALL.iter().map(|k| k.name()).collect();
        ConfigError::new(
            path,
            "metric",
            format!(
                "unknown metric `{}`; allowed: {}",
                raw.metric,
                allowed.join(", ")
            ),
        )
    })?;
    let levels = Levels {
        alert_below: raw.alert_below.0,
        top_up_below: raw.top_up_below.0,
        target: raw.target.0,
        floor: raw.floor.0,
    };
    let volatility = raw.volatility.map(|v| VolatilityWidening {
        multiplier: v.multiplier.0 .0,
        max_widening: v.max_widening.0,
        window: v.window.0,
    });
    let strategy = Strategy::new(raw.name, raw.description, metric, levels, volatility)
        .map_err(|e| ConfigError::new(path, e.key, e.message))?;
    match raw.sweep {
        None => Ok(strategy),
        Some(sweep) => strategy
            .with_sweep(SweepRule {
                above: sweep.above.0,
                margin: sweep.margin.0,
                calm_for: sweep.calm_for.0,
                max_volatility: sweep.max_volatility.map(|v| v.0),
            })
            .map_err(|e| ConfigError::new(path, e.key, e.message)),
    }
}
