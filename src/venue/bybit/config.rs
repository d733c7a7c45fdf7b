//! The `[accounts.bybit]` table: which environment, which credentials, how patient.
//!
//! ```toml
//! [accounts.bybit]
//! profile = "testnet"             # mainnet (default) | testnet | demo
//! region = "nl"                   # mainnet only: nl, tr, kz, ge, ae, eu, id, jp, bytick
//! api_key_env = "BYBIT_API_KEY"   # or: credentials_file = "bybit-key.toml" (mode 0600)
//! api_secret_env = "BYBIT_API_SECRET"
//! # base_url = "http://127.0.0.1:8080"   # overrides the host (a mock, a proxy); the profile
//! #                                      # still says which environment it is
//! recv_window = "5s"              # Bybit's default; at most 60s
//! request_timeout = "5s"
//! # assumed_reserve = "1000"      # demo only: the demo has no Funding wallet endpoints
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::credential::Credentials;
use crate::config_file::literal::{DurationLit, MoneyLit};
use crate::config_file::{relative_to, ConfigError};
use crate::money::Usdt;
use crate::venue::common::settings;

pub const MAINNET: &str = "https://api.bybit.com";
pub const TESTNET: &str = "https://api-testnet.bybit.com";
pub const DEMO: &str = "https://api-demo.bybit.com";

/// Regional mainnet hosts for users registered on those sites (bybit.md §1).
pub const REGIONS: &[(&str, &str)] = &[
    ("nl", "https://api.bybit.nl"),
    ("tr", "https://api.bybit.tr"),
    ("kz", "https://api.bybit.kz"),
    ("ge", "https://api.bybitgeorgia.ge"),
    ("ae", "https://api.bybit.ae"),
    ("eu", "https://api.bybit.eu"),
    ("id", "https://api.bybit.id"),
    ("jp", "https://api.manepa.jp"),
    ("bytick", "https://api.bytick.com"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Mainnet,
    /// Testnet: its own keys and funds; transfers work there.
    Testnet,
    /// Mainnet demo trading: no `/v5/asset/*` and no `/v5/user/query-api`, so no Funding
    /// balance, no transfer and no key check. Dry-run only.
    Demo,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Mainnet => "mainnet",
            Profile::Testnet => "testnet",
            Profile::Demo => "demo",
        }
    }

    /// Whether the asset (Funding, transfer) and key-info endpoints exist there.
    pub fn has_asset_api(self) -> bool {
        self != Profile::Demo
    }
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub base_url: String,
    pub recv_window: Duration,
    pub timeout: Duration,
}

/// Everything the adapter needs, validated. `Debug` shows no secret (`Credentials` redacts).
#[derive(Debug, Clone)]
pub struct BybitSettings {
    pub profile: Profile,
    pub http: HttpSettings,
    pub credentials: Credentials,
    /// Demo only: the reserve the dry run pretends to have.
    pub assumed_reserve: Usdt,
}

pub const DEFAULT_RECV_WINDOW: Duration = Duration::from_secs(5);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl BybitSettings {
    /// Why no transfer can be made with these settings, if none can: demo trading has no
    /// transfer endpoints. A capability of the profile; the config refuses it live.
    pub fn transfers_unavailable(&self) -> Option<&'static str> {
        (self.profile == Profile::Demo).then_some(
            "an account uses profile = \"demo\": Bybit's demo trading has no transfer endpoints (/v5/asset/transfer/*), so no top-up can be made there; set dry_run = true, or use profile = \"testnet\" to exercise transfers",
        )
    }

    /// The host is this machine (a mock): documented venue timings need not apply.
    pub fn is_loopback(&self) -> bool {
        crate::venue::common::is_loopback_url(&self.http.base_url)
    }

    /// Settings for an explicit host (tests, embedding).
    pub fn at(profile: Profile, base_url: &str, credentials: Credentials) -> Self {
        Self {
            profile,
            http: HttpSettings {
                base_url: base_url.trim_end_matches('/').to_string(),
                recv_window: DEFAULT_RECV_WINDOW,
                timeout: DEFAULT_TIMEOUT,
            },
            credentials,
            assumed_reserve: Usdt::ZERO,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBybit {
    profile: Option<String>,
    region: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    api_secret_env: Option<String>,
    credentials_file: Option<String>,
    recv_window: Option<DurationLit>,
    request_timeout: Option<DurationLit>,
    assumed_reserve: Option<MoneyLit>,
}

impl RawBybit {
    pub fn build(self, file: &Path, prefix: &str) -> Result<BybitSettings, ConfigError> {
        let key = |name: &str| format!("{prefix}bybit.{name}");
        let profile = match self.profile.as_deref().unwrap_or("mainnet") {
            "mainnet" => Profile::Mainnet,
            "testnet" => Profile::Testnet,
            "demo" => Profile::Demo,
            other => {
                return Err(ConfigError::new(
                    file,
                    key("profile"),
                    format!("unknown profile `{other}`; allowed: mainnet, testnet, demo"),
                ))
            }
        };
        let mut base_url = match profile {
            Profile::Mainnet => MAINNET,
            Profile::Testnet => TESTNET,
            Profile::Demo => DEMO,
        }
        .to_string();
        if let Some(region) = &self.region {
            if profile != Profile::Mainnet {
                return Err(ConfigError::new(
                    file,
                    key("region"),
                    "regional hosts exist for mainnet only; remove `region` or set profile = \"mainnet\"",
                ));
            }
            let allowed: Vec<&str> = REGIONS.iter().map(|(name, _)| *name).collect();
            base_url = REGIONS
                .iter()
                .find(|(name, _)| name == region)
                .map(|(_, url)| url.to_string())
                .ok_or_else(|| {
                    ConfigError::new(
                        file,
                        key("region"),
                        format!("unknown region `{region}`; allowed: {}", allowed.join(", ")),
                    )
                })?;
        }
        if let Some(url) = &self.base_url {
            if self.region.is_some() {
                return Err(ConfigError::new(
                    file,
                    key("base_url"),
                    "give either region or base_url, not both",
                ));
            }
            base_url = settings::check_base_url(file, &key("base_url"), url, "/v5/…")?;
        }
        let credentials = match (&self.credentials_file, &self.api_key_env, &self.api_secret_env) {
            (Some(path), None, None) => Credentials::from_file(&relative_to(file, path))
                .map_err(|e| ConfigError::new(file, key("credentials_file"), e.to_string()))?,
            (None, Some(key_env), Some(secret_env)) => Credentials::from_env(key_env, secret_env)
                .map_err(|e| {
                    let named = [("api_key_env", key_env.as_str()), ("api_secret_env", secret_env)];
                    ConfigError::new(file, key(e.config_key(&named)), e.to_string())
                })?,
            (None, _, _) => {
                return Err(ConfigError::new(
                    file,
                    key("api_key_env"),
                    "name the environment variables holding the key: api_key_env = \"BYBIT_API_KEY\" and api_secret_env = \"BYBIT_API_SECRET\" (or credentials_file = \"FILE\", mode 0600)",
                ))
            }
            (Some(_), _, _) => {
                return Err(ConfigError::new(
                    file,
                    key("credentials_file"),
                    "give either credentials_file or api_key_env/api_secret_env, not both",
                ))
            }
        };
        let recv_window = self.recv_window.map(|d| d.0).unwrap_or(DEFAULT_RECV_WINDOW);
        if recv_window < Duration::from_millis(100) || recv_window > Duration::from_secs(60) {
            return Err(ConfigError::new(
                file,
                key("recv_window"),
                "must be between 100ms and 60s (Bybit's default is 5s)",
            ));
        }
        let timeout = settings::request_timeout(
            file,
            &key("request_timeout"),
            self.request_timeout,
            DEFAULT_TIMEOUT,
        )?;
        let assumed_reserve =
            match (self.assumed_reserve, profile) {
                (Some(_), p) if p != Profile::Demo => return Err(ConfigError::new(
                    file,
                    key("assumed_reserve"),
                    "only allowed with profile = \"demo\" (elsewhere the Funding wallet is read)",
                )),
                (reserve, _) => reserve.map(|m| m.0).unwrap_or_default(),
            };
        Ok(BybitSettings {
            profile,
            http: HttpSettings {
                base_url,
                recv_window,
                timeout,
            },
            credentials,
            assumed_reserve,
        })
    }
}
