//! `[http]` and `[alerts]`: raw values as serde reads them, then built and checked (the
//! notifiers' and the heartbeat's tables are read in `notify::config` and `heartbeat`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config_file::literal::{format_duration, DurationLit};
use crate::config_file::ConfigError;
use crate::operator::http::{HttpSettings, DEFAULT_LISTEN};
use crate::operator::{AlertRules, HeartbeatSettings, NotifierSettings, RawNotifier};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    listen: Option<String>,
    allow_remote: Option<bool>,
}

impl RawHttp {
    pub fn build(self, file: &Path) -> Result<HttpSettings, ConfigError> {
        let raw = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = raw.parse().map_err(|_| {
            ConfigError::new(
                file,
                "http.listen",
                format!("`{raw}` is not an address with a port; write e.g. \"{DEFAULT_LISTEN}\""),
            )
        })?;
        // The page shows balances and positions' health: on a public address anyone who
        // reaches the port reads them. Loopback unless the user says otherwise, knowingly.
        if !listen.ip().is_loopback() && self.allow_remote != Some(true) {
            return Err(ConfigError::new(
                file,
                "http.listen",
                format!("`{listen}` is not a loopback address; the endpoint shows account figures to whoever reaches it. Use 127.0.0.1 (and an SSH tunnel), or set http.allow_remote = true behind a firewall"),
            ));
        }
        Ok(HttpSettings { listen })
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    cool_off: Option<DurationLit>,
    blind_after: Option<DurationLit>,
}

const COOL_OFF_RANGE: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(24 * 3600));
const BLIND_AFTER_RANGE: (Duration, Duration) =
    (Duration::from_secs(10), Duration::from_secs(3600));

impl RawAlerts {
    pub fn build(self, file: &Path) -> Result<AlertRules, ConfigError> {
        let defaults = AlertRules::default();
        Ok(AlertRules {
            cool_off: within(
                file,
                "alerts.cool_off",
                self.cool_off,
                defaults.cool_off,
                COOL_OFF_RANGE,
            )?,
            blind_after: within(
                file,
                "alerts.blind_after",
                self.blind_after,
                defaults.blind_after,
                BLIND_AFTER_RANGE,
            )?,
        })
    }
}

fn within(
    file: &Path,
    key: &str,
    value: Option<DurationLit>,
    default: Duration,
    (low, high): (Duration, Duration),
) -> Result<Duration, ConfigError> {
    let value = value.map_or(default, |d| d.0);
    if value < low || value > high {
        return Err(ConfigError::new(
            file,
            key,
            format!(
                "must be between {} and {}, got {}",
                format_duration(low),
                format_duration(high),
                format_duration(value)
            ),
        ));
    }
    Ok(value)
}

/// Everything on the operator's side a config sets.
#[derive(Debug, Clone, Default)]
pub struct OperatorSettings {
    /// `None`: no endpoint (the default).
    pub http: Option<HttpSettings>,
    pub alerts: AlertRules,
    pub notifiers: Vec<NotifierSettings>,
    pub heartbeat: Option<HeartbeatSettings>,
}

/// Builds every `[[notifiers]]` table; names are unique, and `accounts` name accounts of
/// this config (a misspelt one would silently never alert).
pub fn build_notifiers(
    file: &Path,
    raw: Vec<RawNotifier>,
    account_names: &[&str],
) -> Result<Vec<NotifierSettings>, ConfigError> {
    let mut built: Vec<NotifierSettings> = Vec::with_capacity(raw.len());
    for (index, notifier) in raw.into_iter().enumerate() {
        let prefix = format!("notifiers[{index}].");
        let notifier = notifier.build(file, &prefix)?;
        if built.iter().any(|n| n.name == notifier.name) {
            return Err(ConfigError::new(
                file,
                format!("{prefix}name"),
                format!(
                    "`{}` is used twice; notifier names must be unique",
                    notifier.name
                ),
            ));
        }
        if let Some(unknown) = notifier
            .accounts
            .iter()
            .flatten()
            .find(|a| !account_names.contains(&a.as_str()))
        {
            return Err(ConfigError::new(
                file,
                format!("{prefix}accounts"),
                format!(
                    "`{unknown}` is not an account of this config; accounts: {}",
                    account_names.join(", ")
                ),
            ));
        }
        built.push(notifier);
    }
    Ok(built)
}
