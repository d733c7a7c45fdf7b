//! Scenario files (`scenarios/*.toml`): a portfolio, a reserve and the real days it lives
//! through.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::market::{load_klines, Bar};
use crate::config_file::literal::{DurationLit, MoneyLit, RatioLit};
use crate::config_file::{load_toml, relative_to, ConfigError, RawCaps};
use crate::core::{Caps, TierTable};
use crate::money::{parse_decimal, Price, Qty, Ratio, Usdt};
use crate::time::Timestamp;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    wallet: MoneyLit,
    reserve: MoneyLit,
    settlement: Option<DurationLit>,
    transfer_step: Option<MoneyLit>,
    positions: Vec<RawPosition>,
    bot: Option<RawBot>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPosition {
    symbol: String,
    side: String,
    leverage: RatioLit,
    notional: Option<MoneyLit>,
    size: Option<MoneyLit>,
    /// One file, or consecutive days as a list of files.
    klines: KlineFiles,
    tiers: Option<Vec<RawTier>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum KlineFiles {
    One(String),
    Days(Vec<String>),
}

impl KlineFiles {
    fn paths(&self) -> Vec<&str> {
        match self {
            KlineFiles::One(path) => vec![path.as_str()],
            KlineFiles::Days(paths) => paths.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    floor: MoneyLit,
    rate: RatioLit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBot {
    poll_interval: Option<DurationLit>,
    caps: Option<RawCaps>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
    pub wallet: Usdt,
    pub reserve: Usdt,
    /// How long a transfer takes to land in the futures wallet.
    pub settlement: Duration,
    pub transfer_step: Usdt,
    pub positions: Vec<ScenarioPosition>,
    /// What `simulate` uses when no account config is given.
    pub poll_interval: Duration,
    /// The scenario's own caps; `None` lets a replay spend the whole reserve.
    pub caps: Option<Caps>,
}

#[derive(Debug, Clone)]
pub struct ScenarioPosition {
    pub symbol: String,
    pub size: Qty,
    pub entry: Price,
    pub leverage: Decimal,
    pub tiers: Arc<TierTable>,
    pub bars: Arc<Vec<Bar>>,
    pub klines_path: PathBuf,
}

impl ScenarioPosition {
    pub fn is_long(&self) -> bool {
        self.size.0 > Decimal::ZERO
    }
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ConfigError> {
        let raw: RawScenario = load_toml(path)?;
        build(path, raw)
    }

    /// The caps a replay uses: the scenario's own, or the whole reserve.
    pub fn caps_or_reserve(&self) -> Caps {
        self.caps.clone().unwrap_or(Caps {
            max_per_rescue: self.reserve,
            max_per_day: self.reserve,
            keep_at_least: Usdt::ZERO,
            cooldown: Duration::ZERO,
        })
    }

    /// Indexing here and in `end` is safe: `build` refuses a scenario without positions and
    /// `parse_klines` a kline file without rows.
    pub fn start(&self) -> Timestamp {
        self.positions[0].bars[0].open_time
    }

    /// One minute past the open of the last bar (open times are bounded on load, so the
    /// addition cannot overflow).
    pub fn end(&self) -> Timestamp {
        let bars = &self.positions[0].bars;
        Timestamp(bars[bars.len() - 1].open_time.as_millis() + super::market::MINUTE_MS)
    }

    /// Where the prices come from, for output that must say they stand in for the mark.
    pub fn price_source(&self) -> String {
        let mut sources: Vec<&str> = self
            .positions
            .iter()
            .map(|p| {
                if p.klines_path.to_string_lossy().contains("perp") {
                    "Binance USDⓈ-M perpetual last-trade 1m klines"
                } else {
                    "Binance spot last-trade 1m klines"
                }
            })
            .collect();
        sources.dedup();
        sources.join(" + ")
    }
}

/// A simulated poll must advance the clock (0 s would replay the same instant forever) and
/// come at least once a day, the length of a scenario.
pub const POLL_INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(24 * 3600));
/// No venue documents a transfer that takes longer than a day to settle; beyond that the
/// replay's instants would overflow rather than mean anything.
pub const SETTLEMENT_MAX: Duration = Duration::from_secs(24 * 3600);

/// The bound a scenario file and the command line's `--poll-interval` share.
pub fn check_poll_interval(poll: Duration) -> Result<Duration, String> {
    let (min, max) = POLL_INTERVAL_RANGE;
    if poll < min || poll > max {
        Err(format!(
            "must lie between {}s and {}h, got {poll:?}",
            min.as_secs(),
            max.as_secs() / 3600
        ))
    } else {
        Ok(poll)
    }
}

/// The bound a scenario file and the command line's `--settlement` share.
pub fn check_settlement(settlement: Duration) -> Result<Duration, String> {
    if settlement > SETTLEMENT_MAX {
        Err(format!(
            "must be at most {}h, got {settlement:?}",
            SETTLEMENT_MAX.as_secs() / 3600
        ))
    } else {
        Ok(settlement)
    }
}

fn build(path: &Path, raw: RawScenario) -> Result<Scenario, ConfigError> {
    if raw.positions.is_empty() {
        return Err(ConfigError::new(
            path,
            "positions",
            "at least one [[positions]] table is required",
        ));
    }
    let mut positions = Vec::with_capacity(raw.positions.len());
    for (index, position) in raw.positions.iter().enumerate() {
        positions.push(build_position(path, index, position)?);
    }
    check_same_minutes(path, &positions)?;
    let (poll_interval, caps) = match &raw.bot {
        Some(bot) => (
            bot.poll_interval.map(|d| d.0),
            bot.caps
                .as_ref()
                .map(|c| c.build(path, "bot.caps."))
                .transpose()?,
        ),
        None => (None, None),
    };
    Ok(Scenario {
        name: raw.name,
        description: raw.description,
        path: path.to_path_buf(),
        wallet: raw.wallet.0,
        reserve: raw.reserve.0,
        settlement: check_settlement(
            raw.settlement
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(60)),
        )
        .map_err(|e| ConfigError::new(path, "settlement", e))?,
        transfer_step: raw
            .transfer_step
            .map(|m| m.0)
            .unwrap_or(Usdt(Decimal::new(1, 2))),
        positions,
        poll_interval: check_poll_interval(poll_interval.unwrap_or(Duration::from_secs(60)))
            .map_err(|e| ConfigError::new(path, "bot.poll_interval", e))?,
        caps,
    })
}

fn build_position(
    path: &Path,
    index: usize,
    raw: &RawPosition,
) -> Result<ScenarioPosition, ConfigError> {
    let key = |k: &str| format!("positions[{index}].{k}");
    let long = match raw.side.as_str() {
        "long" => true,
        "short" => false,
        other => {
            return Err(ConfigError::new(
                path,
                key("side"),
                format!("`{other}`; allowed: long, short"),
            ))
        }
    };
    let leverage = raw.leverage.0 .0;
    if leverage <= Decimal::ZERO || leverage > Decimal::from(200) {
        return Err(ConfigError::new(
            path,
            key("leverage"),
            format!("must lie in (0, 200], got {leverage}"),
        ));
    }
    let files = raw.klines.paths();
    if files.is_empty() {
        return Err(ConfigError::new(
            path,
            key("klines"),
            "name at least one kline file",
        ));
    }
    let mut bars: Vec<Bar> = Vec::new();
    for file in &files {
        let file_path = relative_to(path, file);
        let day = load_klines(&file_path).map_err(|e| {
            ConfigError::new(path, key("klines"), format!("{}: {e}", file_path.display()))
        })?;
        if let (Some(last), Some(first)) = (bars.last(), day.first()) {
            if first.open_time.as_millis() - last.open_time.as_millis() != super::market::MINUTE_MS
            {
                return Err(ConfigError::new(
                    path,
                    key("klines"),
                    format!(
                        "{} does not start the minute after the file before it ends; list consecutive days in order",
                        file_path.display()
                    ),
                ));
            }
        }
        bars.extend(day);
    }
    // `files` was checked non-empty above and every file holds at least one row.
    let klines_path = relative_to(path, files[0]);
    let entry = bars[0].open;
    let magnitude = match (raw.notional, raw.size) {
        // A real order is a whole number of lots; 10⁻⁶ base units is finer than any
        // venue's lot step, and short numbers keep the replay's arithmetic fast.
        // The entry is positive (checked with the klines), but a huge notional at a tiny
        // price has no representable size.
        (Some(notional), None) => match notional.0 .0.checked_div(entry.0) {
            Some(size) => size.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::ToZero),
            None => {
                return Err(ConfigError::new(
                    path,
                    key("notional"),
                    format!(
                        "{} at the first open {entry} is a size too large to represent",
                        notional.0
                    ),
                ))
            }
        },
        (None, Some(size)) => size.0 .0,
        _ => {
            return Err(ConfigError::new(
                path,
                key("notional"),
                "give exactly one of `notional` (USDT at the first open) or `size` (base units)",
            ))
        }
    };
    if magnitude <= Decimal::ZERO {
        return Err(ConfigError::new(path, key("notional"), "must be above 0"));
    }
    let tiers = match &raw.tiers {
        Some(rows) => tier_table(rows).map_err(|e| ConfigError::new(path, key("tiers"), e))?,
        None => built_in_tiers(&raw.symbol).ok_or_else(|| {
            ConfigError::new(
                path,
                key("tiers"),
                format!(
                    "no built-in brackets for `{}` (built in: {}); add `tiers = [{{ floor = \"0\", rate = \"0.005\" }}, …]`",
                    raw.symbol,
                    built_in_symbols().join(", ")
                ),
            )
        })?,
    };
    Ok(ScenarioPosition {
        symbol: raw.symbol.clone(),
        size: Qty(if long { magnitude } else { -magnitude }),
        entry,
        leverage,
        tiers: Arc::new(tiers),
        bars: Arc::new(bars),
        klines_path,
    })
}

/// Called only with at least one position, each with at least one bar.
fn check_same_minutes(path: &Path, positions: &[ScenarioPosition]) -> Result<(), ConfigError> {
    let first = &positions[0].bars;
    for (index, p) in positions.iter().enumerate().skip(1) {
        if p.bars.len() != first.len() || p.bars[0].open_time != first[0].open_time {
            return Err(ConfigError::new(
                path,
                format!("positions[{index}].klines"),
                "every position's klines must cover the same minutes as the first position's",
            ));
        }
    }
    Ok(())
}

fn tier_table(rows: &[RawTier]) -> Result<TierTable, String> {
    let pairs: Vec<(Usdt, Ratio)> = rows.iter().map(|r| (r.floor.0, r.rate.0)).collect();
    TierTable::from_rates(&pairs).map_err(|e| e.to_string())
}

const BUILT_IN_TIERS: &str = include_str!("../../../data/tiers.toml");

#[derive(Deserialize)]
struct BuiltInTable {
    tiers: Vec<BuiltInTier>,
}

#[derive(Deserialize)]
struct BuiltInTier {
    floor: String,
    rate: String,
}

fn built_in_tables() -> BTreeMap<String, BuiltInTable> {
    toml::from_str(BUILT_IN_TIERS).expect("data/tiers.toml is valid (checked by a test)")
}

fn built_in_symbols() -> Vec<String> {
    built_in_tables().into_keys().collect()
}

/// The simulator's default brackets for a symbol (see data/tiers.toml for provenance).
pub fn built_in_tiers(symbol: &str) -> Option<TierTable> {
    let table = built_in_tables().remove(symbol)?;
    let tiers: Vec<(Usdt, Ratio)> = table
        .tiers
        .iter()
        .map(|t| {
            (
                Usdt(parse_decimal(&t.floor).expect("built-in floor")),
                Ratio(parse_decimal(&t.rate).expect("built-in rate")),
            )
        })
        .collect();
    Some(TierTable::from_rates(&tiers).expect("built-in tiers are valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_tables_parse() {
        for symbol in built_in_symbols() {
            assert!(built_in_tiers(&symbol).is_some(), "{symbol}");
        }
        let btc = built_in_tiers("BTCUSDT").unwrap();
        assert_eq!(btc.tiers().len(), 3);
        assert_eq!(btc.tiers()[2].deduction, Usdt(Decimal::from(1300)));
    }
}
