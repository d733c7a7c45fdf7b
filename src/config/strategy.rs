//! Strategy files (`strategies/*.toml`): raw values, then a validated `Strategy`.

use std::path::Path;

use serde::Deserialize;

use super::literal::{DurationLit, RatioLit};
use super::{load_toml, ConfigError};
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
    Strategy::new(raw.name, raw.description, metric, levels, volatility)
        .map_err(|e| ConfigError::new(path, e.key, e.message))
}
