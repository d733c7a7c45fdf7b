//! Configuration: TOML in, typed and validated values out.
//!
//! Two steps, as ripgrep does with its flags: serde reads *raw* values (unknown keys are
//! errors), then `build` turns them into the types the engine uses and checks what serde
//! cannot (levels in order, files that exist). Every error names the file, the key and what is
//! allowed; nothing starts on a bad config.

pub mod strategy;

pub use crate::config_file::{literal, load_toml, relative_to, ConfigError, RawCaps};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::core::{Caps, Strategy};
use crate::operator::http::HttpSettings;
use crate::operator::settings::{build_notifiers, OperatorSettings, RawAlerts, RawHttp};
use crate::operator::{RawHeartbeat, RawNotifier};
use crate::venue::binance::config::RawBinance;
use crate::venue::binance::BinanceSettings;
use crate::venue::bybit::config::RawBybit;
use crate::venue::bybit::BybitSettings;
use crate::venue::okx::config::RawOkx;
use crate::venue::okx::OkxSettings;
use crate::venue::sim::Scenario;
use literal::DurationLit;

// ---------------------------------------------------------------------------------------------
// Raw values, as serde reads them.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    dry_run: Option<bool>,
    journal: Option<String>,
    http: Option<RawHttp>,
    alerts: Option<RawAlerts>,
    portfolio: Option<RawPortfolio>,
    #[serde(default)]
    notifiers: Vec<RawNotifier>,
    heartbeat: Option<RawHeartbeat>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: String,
    venue: String,
    strategy: String,
    poll_interval: Option<DurationLit>,
    unknown_outcome_grace: Option<DurationLit>,
    caps: RawCaps,
    sim: Option<RawSim>,
    binance: Option<RawBinance>,
    bybit: Option<RawBybit>,
    okx: Option<RawOkx>,
}

/// `[portfolio]`: limits across every account of the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortfolio {
    max_per_day: literal::MoneyLit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSim {
    scenario: String,
    /// Simulated seconds per wall-clock second; absent replays as fast as possible.
    speed: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Built values.

pub const VENUES: &[&str] = &["sim", "binance", "bybit", "okx"];
/// Venues the design names that have no adapter yet; named in the error so users know.
const PLANNED_VENUES: &[&str] = &[];

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub dry_run: bool,
    /// The live journal; dry-run uses a sibling file (`*.dry-run.*`).
    pub journal: PathBuf,
    pub accounts: Vec<AccountConfig>,
    /// Alerts, heartbeat, the HTTP endpoint.
    pub operator: OperatorSettings,
    /// `[portfolio] max_per_day`: what every account together may move over any 24 h.
    pub portfolio_max_per_day: Option<crate::money::Usdt>,
}

/// The journal's file when the config names none, beside the config.
pub const DEFAULT_JOURNAL: &str = "marginguard-journal.sqlite";
/// How long an unknown outcome is looked up before its absence is believed.
pub const DEFAULT_UNKNOWN_OUTCOME_GRACE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub name: String,
    pub venue: VenueConfig,
    pub strategy: Strategy,
    pub strategy_path: PathBuf,
    pub poll_interval: Duration,
    pub unknown_outcome_grace: Duration,
    pub caps: Caps,
}

#[derive(Debug, Clone)]
pub enum VenueConfig {
    Sim {
        scenario: Box<Scenario>,
        scenario_path: PathBuf,
        /// Simulated seconds per wall-clock second (`None`: as fast as possible).
        speed: Option<u32>,
    },
    /// A live (or testnet) Binance USDⓈ-M cross-margin account.
    Binance(Box<BinanceSettings>),
    /// A Bybit Unified Trading Account in cross margin (mainnet, testnet or demo).
    Bybit(Box<BybitSettings>),
    /// An OKX account (production, regional or demo trading) with cross-margin swaps.
    Okx(Box<OkxSettings>),
}

impl VenueConfig {
    /// Why this venue can make no transfer, if it cannot (a testnet without a wallet API, a
    /// demo without transfer endpoints): such an account may only run dry.
    pub fn transfers_unavailable(&self) -> Option<&'static str> {
        match self {
            VenueConfig::Binance(settings) => settings.transfers_unavailable(),
            VenueConfig::Bybit(settings) => settings.transfers_unavailable(),
            VenueConfig::Sim { .. } | VenueConfig::Okx(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            VenueConfig::Sim { .. } => "sim",
            VenueConfig::Binance(_) => "binance",
            VenueConfig::Bybit(_) => "bybit",
            VenueConfig::Okx(_) => "okx",
        }
    }
}

pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = load_toml(path)?;
        build_config(path, raw)
    }

    /// Only where the journals are, for `history`: the accounts are not built, so no key
    /// has to be in the environment to read what the bot did.
    pub fn load_journal_settings(path: &Path) -> Result<JournalSettings, ConfigError> {
        let raw: RawConfig = load_toml(path)?;
        Ok(JournalSettings {
            dry_run: raw.dry_run.unwrap_or(true),
            journal: journal_path(path, raw.journal.as_deref())?,
        })
    }

    /// What `status` needs: where the daemon's endpoint listens, and where its journals
    /// are and which accounts it watches, for when no endpoint answers. Needs no secrets.
    pub fn load_status_settings(path: &Path) -> Result<StatusSettings, ConfigError> {
        let raw: RawConfig = load_toml(path)?;
        Ok(StatusSettings {
            journal: JournalSettings {
                dry_run: raw.dry_run.unwrap_or(true),
                journal: journal_path(path, raw.journal.as_deref())?,
            },
            http: raw.http.map(|h| h.build(path)).transpose()?,
            accounts: raw
                .accounts
                .iter()
                .map(|a| (a.name.clone(), a.venue.clone()))
                .collect(),
        })
    }
}

/// The part of a config `status` reads.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub journal: JournalSettings,
    pub http: Option<HttpSettings>,
    /// `(name, venue)` of every account, in config order.
    pub accounts: Vec<(String, String)>,
}

/// The part of a config that says where its journals are.
#[derive(Debug, Clone)]
pub struct JournalSettings {
    pub dry_run: bool,
    /// The live journal; dry-run uses a sibling file (`*.dry-run.*`).
    pub journal: PathBuf,
}

impl JournalSettings {
    /// The journal a reader (`history`, `status`) opens: the dry-run one when the config
    /// runs dry or the reader asks for it, the live one otherwise.
    pub fn to_read(&self, force_dry_run: bool) -> PathBuf {
        if self.dry_run || force_dry_run {
            crate::journal::dry_run_path(&self.journal)
        } else {
            self.journal.clone()
        }
    }
}

fn journal_path(path: &Path, named: Option<&str>) -> Result<PathBuf, ConfigError> {
    let journal = relative_to(path, named.unwrap_or(DEFAULT_JOURNAL));
    if journal.is_dir() {
        return Err(ConfigError::new(
            path,
            "journal",
            format!(
                "`{}` is a folder; name a file, e.g. \"state/journal.sqlite\"",
                journal.display()
            ),
        ));
    }
    Ok(journal)
}

fn build_config(path: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
    if raw.accounts.is_empty() {
        return Err(ConfigError::new(
            path,
            "accounts",
            "at least one [[accounts]] table is required",
        ));
    }
    let mut accounts: Vec<AccountConfig> = Vec::with_capacity(raw.accounts.len());
    for (index, account) in raw.accounts.into_iter().enumerate() {
        let built = build_account(path, index, account)?;
        if accounts.iter().any(|a| a.name == built.name) {
            return Err(ConfigError::new(
                path,
                format!("accounts[{index}].name"),
                format!(
                    "`{}` is used twice; account names must be unique",
                    built.name
                ),
            ));
        }
        accounts.push(built);
    }
    let dry_run = raw.dry_run.unwrap_or(true);
    let journal = journal_path(path, raw.journal.as_deref())?;
    let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
    let operator = OperatorSettings {
        http: raw.http.map(|h| h.build(path)).transpose()?,
        alerts: raw.alerts.unwrap_or_default().build(path)?,
        notifiers: build_notifiers(path, raw.notifiers, &names)?,
        heartbeat: raw
            .heartbeat
            .map(|h| h.build(path, "heartbeat."))
            .transpose()?,
    };
    let portfolio_max_per_day = raw
        .portfolio
        .map(|p| portfolio_cap(path, p.max_per_day.0))
        .transpose()?;
    Ok(Config {
        path: path.to_path_buf(),
        dry_run,
        journal,
        accounts,
        operator,
        portfolio_max_per_day,
    })
}

/// Zero would forbid every rescue while looking configured: a mistake, not a setting.
fn portfolio_cap(
    path: &Path,
    max_per_day: crate::money::Usdt,
) -> Result<crate::money::Usdt, ConfigError> {
    if max_per_day.is_zero() {
        return Err(ConfigError::new(
            path,
            "portfolio.max_per_day",
            "0 would forbid every rescue; give the most all accounts together may move in 24 h, or drop [portfolio]",
        ));
    }
    Ok(max_per_day)
}

fn build_account(path: &Path, index: usize, raw: RawAccount) -> Result<AccountConfig, ConfigError> {
    let prefix = format!("accounts[{index}].");
    let valid_name = !raw.name.is_empty()
        && raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err(ConfigError::new(
            path,
            format!("{prefix}name"),
            format!("`{}`: use letters, digits, `-` and `_` only", raw.name),
        ));
    }
    let poll_interval = raw
        .poll_interval
        .map(|d| d.0)
        .unwrap_or(DEFAULT_POLL_INTERVAL);
    if poll_interval < Duration::from_secs(1) {
        return Err(ConfigError::new(
            path,
            format!("{prefix}poll_interval"),
            "must be at least 1s (venues rate-limit faster polling)",
        ));
    }
    let caps = raw.caps.build(path, &format!("{prefix}caps."))?;
    let strategy_path = relative_to(path, &raw.strategy);
    let strategy = strategy::load(&strategy_path)?;
    let venue = build_venue(
        path,
        &prefix,
        &raw.venue,
        VenueTables {
            sim: raw.sim,
            binance: raw.binance,
            bybit: raw.bybit,
            okx: raw.okx,
        },
    )?;
    let unknown_outcome_grace = unknown_outcome_grace(
        path,
        &prefix,
        raw.unknown_outcome_grace.map(|d| d.0),
        &venue,
    )?;
    Ok(AccountConfig {
        name: raw.name,
        venue,
        strategy,
        strategy_path,
        poll_interval,
        unknown_outcome_grace,
        caps,
    })
}

/// The shortest `unknown_outcome_grace` allowed against a real venue. Binance's guidance for an
/// unknown transfer is to resend only after "a grace period (allow several seconds of
/// replication lag)" (`../shared/exchanges/binance.md` §transfer idempotency); ten seconds is
/// the least reading of "several" that still leaves a margin. The grace is measured from the
/// first lookup that missed a transfer after the venue had had time, and a lapsed row keeps
/// counting against the caps, so a longer grace only delays a retry.
pub const UNKNOWN_OUTCOME_GRACE_FLOOR: Duration = Duration::from_secs(10);

fn unknown_outcome_grace(
    path: &Path,
    prefix: &str,
    configured: Option<Duration>,
    venue: &VenueConfig,
) -> Result<Duration, ConfigError> {
    let grace = configured.unwrap_or(DEFAULT_UNKNOWN_OUTCOME_GRACE);
    // The simulator answers at once and a mock on this machine is not the venue: the floor
    // is about real venues' replication lag.
    let local = match venue {
        VenueConfig::Sim { .. } => true,
        VenueConfig::Binance(s) => s.is_loopback(),
        VenueConfig::Bybit(s) => s.is_loopback(),
        VenueConfig::Okx(s) => s.is_loopback(),
    };
    if grace < UNKNOWN_OUTCOME_GRACE_FLOOR && !local {
        return Err(ConfigError::new(
            path,
            format!("{prefix}unknown_outcome_grace"),
            format!(
                "must be at least {}s against a real venue, got {grace:?}: venues document seconds of lag before a transfer shows in history (lower values only for a venue on 127.0.0.1 or localhost)",
                UNKNOWN_OUTCOME_GRACE_FLOOR.as_secs()
            ),
        ));
    }
    Ok(grace)
}

/// The venue tables an account may carry; only the one its `venue` names may be present.
struct VenueTables {
    sim: Option<RawSim>,
    binance: Option<RawBinance>,
    bybit: Option<RawBybit>,
    okx: Option<RawOkx>,
}

impl VenueTables {
    fn present(&self) -> impl Iterator<Item = &'static str> {
        [
            ("sim", self.sim.is_some()),
            ("binance", self.binance.is_some()),
            ("bybit", self.bybit.is_some()),
            ("okx", self.okx.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
    }
}

/// The message for a venue whose table is missing: what it needs and where it is explained.
fn missing_table(venue: &str) -> String {
    let needs = match venue {
        "sim" => "`scenario = \"FILE\"`",
        "okx" => "api_key_env, api_secret_env and passphrase_env (see docs/okx.md)",
        "binance" => "api_key_env and api_secret_env (see docs/binance.md)",
        _ => "api_key_env and api_secret_env (see docs/bybit.md)",
    };
    format!("venue = \"{venue}\" needs a [accounts.{venue}] table with {needs}")
}

fn build_venue(
    path: &Path,
    prefix: &str,
    venue: &str,
    tables: VenueTables,
) -> Result<VenueConfig, ConfigError> {
    // The venue's name first: a misspelt venue is the mistake to report, not the table that
    // follows from it.
    if !VENUES.contains(&venue) {
        let message = if PLANNED_VENUES.contains(&venue) {
            format!(
                "the `{venue}` adapter is not built yet; allowed now: {}",
                VENUES.join(", ")
            )
        } else {
            format!("unknown venue `{venue}`; allowed: {}", VENUES.join(", "))
        };
        return Err(ConfigError::new(path, format!("{prefix}venue"), message));
    }
    if let Some(other) = tables.present().find(|name| *name != venue) {
        return Err(ConfigError::new(
            path,
            format!("{prefix}{other}"),
            format!("a [accounts.{other}] table only goes with venue = \"{other}\", not `{venue}`"),
        ));
    }
    let missing = || ConfigError::new(path, format!("{prefix}{venue}"), missing_table(venue));
    match venue {
        "bybit" => {
            let bybit = tables.bybit.ok_or_else(missing)?;
            Ok(VenueConfig::Bybit(Box::new(bybit.build(path, prefix)?)))
        }
        "okx" => {
            let okx = tables.okx.ok_or_else(missing)?;
            Ok(VenueConfig::Okx(Box::new(okx.build(path, prefix)?)))
        }
        "binance" => {
            let binance = tables.binance.ok_or_else(missing)?;
            Ok(VenueConfig::Binance(Box::new(binance.build(path, prefix)?)))
        }
        _ => {
            let sim = tables.sim.ok_or_else(missing)?;
            if sim.speed == Some(0) {
                return Err(ConfigError::new(
                    path,
                    format!("{prefix}sim.speed"),
                    "must be at least 1 (simulated seconds per wall-clock second); omit it to replay as fast as possible",
                ));
            }
            let scenario_path = relative_to(path, &sim.scenario);
            let scenario = Scenario::load(&scenario_path)?;
            Ok(VenueConfig::Sim {
                scenario: Box::new(scenario),
                scenario_path,
                speed: sim.speed,
            })
        }
    }
}
