//! The `[accounts.binance]` table: which hosts, which credentials, how patient.
//!
//! ```toml
//! [accounts.binance]
//! profile = "testnet"              # production (default) | testnet | custom
//! api_key_env = "BINANCE_API_KEY"  # or: credentials_file = "binance-key.toml" (mode 0600)
//! api_secret_env = "BINANCE_API_SECRET"
//! # futures_url / spot_url: only with profile = "custom" (a mock, a proxy)
//! recv_window = "5s"               # at most 60s; Binance recommends 5s or less
//! request_timeout = "5s"
//! stream = true                    # marks and account events over WebSocket (default)
//! # ws_url: only with profile = "custom" (streams are off there without it)
//! reconcile_every = "30s"          # a REST read reconciles the streamed account
//! drift_alert = "1%"               # local vs REST equity beyond this is logged
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::credential::Credentials;
use super::http::HttpSettings;
use super::stream;
use crate::config_file::literal::DurationLit;
use crate::config_file::{relative_to, ConfigError};
use crate::venue::common::settings::{self, RawStreamKnobs};
use crate::venue::streaming::StreamSettings;

pub const PRODUCTION_FUTURES: &str = "https://fapi.binance.com";
pub const PRODUCTION_SPOT: &str = "https://api.binance.com";
/// The 2026 docs name the demo hosts as the test environment; there is no `/sapi` there.
pub const TESTNET_FUTURES: &str = "https://demo-fapi.binance.com";
pub const TESTNET_SPOT: &str = "https://demo-api.binance.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Production,
    /// Futures and spot demo hosts: no wallet (`/sapi`) endpoints, so no transfer and no key
    /// restrictions; dry-run only.
    Testnet,
    /// Hosts given in the config (a local mock, a proxy).
    Custom,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Production => "production",
            Profile::Testnet => "testnet",
            Profile::Custom => "custom",
        }
    }

    /// Whether the wallet endpoints (transfer, its history, key restrictions) exist there.
    pub fn has_wallet_api(self) -> bool {
        !matches!(self, Profile::Testnet)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinance {
    profile: Option<String>,
    futures_url: Option<String>,
    spot_url: Option<String>,
    api_key_env: Option<String>,
    api_secret_env: Option<String>,
    credentials_file: Option<String>,
    recv_window: Option<DurationLit>,
    request_timeout: Option<DurationLit>,
    ws_url: Option<String>,
    stream: Option<bool>,
    reconcile_every: Option<DurationLit>,
    drift_alert: Option<crate::config_file::literal::RatioLit>,
}

/// Everything the adapter needs, validated. `Debug` shows no secret (`Credentials` redacts).
#[derive(Debug, Clone)]
pub struct BinanceSettings {
    pub profile: Profile,
    pub http: HttpSettings,
    pub credentials: Credentials,
    /// `None`: REST polling alone.
    pub stream: Option<StreamConfig>,
}

/// Where the streams are and how the streamed account is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// The WebSocket base; `/market/...` and `/private/...` are appended.
    pub ws_url: String,
    pub settings: StreamSettings,
}

pub const DEFAULT_RECV_WINDOW: Duration = Duration::from_secs(5);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl BinanceSettings {
    /// Why no transfer can be made with these settings, if none can: the testnet has no
    /// wallet API. A capability of the profile; the config refuses it live.
    pub fn transfers_unavailable(&self) -> Option<&'static str> {
        (self.profile == Profile::Testnet).then_some(
            "an account uses profile = \"testnet\", which has no wallet (/sapi) endpoints, so no transfer can be made there; set dry_run = true",
        )
    }

    /// Both hosts are this machine (a mock): documented venue timings need not apply.
    pub fn is_loopback(&self) -> bool {
        crate::venue::common::is_loopback_url(&self.http.futures_url)
            && crate::venue::common::is_loopback_url(&self.http.spot_url)
    }

    /// Settings for explicit hosts (tests, embedding).
    pub fn custom(futures_url: &str, spot_url: &str, credentials: Credentials) -> Self {
        Self {
            profile: Profile::Custom,
            http: HttpSettings {
                futures_url: futures_url.trim_end_matches('/').to_string(),
                spot_url: spot_url.trim_end_matches('/').to_string(),
                recv_window: DEFAULT_RECV_WINDOW,
                timeout: DEFAULT_TIMEOUT,
            },
            credentials,
            stream: None,
        }
    }

    /// These settings with streams at `ws_url` (tests, embedding).
    pub fn with_stream(mut self, ws_url: &str, settings: StreamSettings) -> Self {
        self.stream = Some(StreamConfig {
            ws_url: ws_url.trim_end_matches('/').to_string(),
            settings,
        });
        self
    }
}

impl RawBinance {
    pub fn build(self, file: &Path, prefix: &str) -> Result<BinanceSettings, ConfigError> {
        let key = |name: &str| format!("{prefix}binance.{name}");
        let profile = match self.profile.as_deref().unwrap_or("production") {
            "production" => Profile::Production,
            "testnet" => Profile::Testnet,
            "custom" => Profile::Custom,
            other => {
                return Err(ConfigError::new(
                    file,
                    key("profile"),
                    format!("unknown profile `{other}`; allowed: production, testnet, custom"),
                ))
            }
        };
        let stream = self.stream_config(file, prefix, profile)?;
        let (futures_url, spot_url) = match profile {
            Profile::Custom => {
                let futures = self.futures_url.ok_or_else(|| {
                    ConfigError::new(
                        file,
                        key("futures_url"),
                        "profile = \"custom\" needs futures_url (e.g. \"http://127.0.0.1:8080\")",
                    )
                })?;
                let spot = self.spot_url.ok_or_else(|| {
                    ConfigError::new(
                        file,
                        key("spot_url"),
                        "profile = \"custom\" needs spot_url (serves /api and /sapi)",
                    )
                })?;
                (
                    settings::check_base_url(
                        file,
                        &key("futures_url"),
                        &futures,
                        "/fapi, /api, /sapi",
                    )?,
                    settings::check_base_url(file, &key("spot_url"), &spot, "/fapi, /api, /sapi")?,
                )
            }
            _ => {
                for (name, given) in [
                    ("futures_url", &self.futures_url),
                    ("spot_url", &self.spot_url),
                ] {
                    if given.is_some() {
                        return Err(ConfigError::new(
                            file,
                            key(name),
                            format!("only allowed with profile = \"custom\"; profile `{}` has fixed hosts", profile.name()),
                        ));
                    }
                }
                match profile {
                    Profile::Testnet => (TESTNET_FUTURES.to_string(), TESTNET_SPOT.to_string()),
                    _ => (PRODUCTION_FUTURES.to_string(), PRODUCTION_SPOT.to_string()),
                }
            }
        };
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
                    "name the environment variables holding the key: api_key_env = \"BINANCE_API_KEY\" and api_secret_env = \"BINANCE_API_SECRET\" (or credentials_file = \"FILE\", mode 0600)",
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
        if recv_window.is_zero() || recv_window > Duration::from_secs(60) {
            return Err(ConfigError::new(
                file,
                key("recv_window"),
                "must be above 0 and at most 60s (Binance recommends 5s or less)",
            ));
        }
        let timeout = settings::request_timeout(
            file,
            &key("request_timeout"),
            self.request_timeout,
            DEFAULT_TIMEOUT,
        )?;
        Ok(BinanceSettings {
            profile,
            http: HttpSettings {
                futures_url,
                spot_url,
                recv_window,
                timeout,
            },
            credentials,
            stream,
        })
    }

    /// Streams on by default at the profile's host; a custom profile streams only when
    /// given `ws_url`.
    fn stream_config(
        &self,
        file: &Path,
        prefix: &str,
        profile: Profile,
    ) -> Result<Option<StreamConfig>, ConfigError> {
        let key = |name: &str| format!("{prefix}binance.{name}");
        let ws_url = match (profile, &self.ws_url) {
            (Profile::Custom, Some(raw)) => Some(settings::check_stream_url(
                file,
                &key("ws_url"),
                raw,
                "/market/stream, /private/ws",
            )?),
            (Profile::Custom, None) => None,
            (_, Some(_)) => {
                return Err(ConfigError::new(
                    file,
                    key("ws_url"),
                    format!(
                        "only allowed with profile = \"custom\"; profile `{}` has fixed hosts",
                        profile.name()
                    ),
                ))
            }
            (Profile::Testnet, None) => Some(stream::TESTNET_WS.to_string()),
            (Profile::Production, None) => Some(stream::PRODUCTION_WS.to_string()),
        };
        let knobs = RawStreamKnobs {
            stream: self.stream,
            reconcile_every: self.reconcile_every,
            drift_alert: self.drift_alert,
        };
        let settings = knobs.build(file, &format!("{prefix}binance."), stream::MARK_CADENCE)?;
        Ok(match (self.stream, ws_url) {
            (Some(false), _) => None,
            (Some(true), None) => {
                return Err(ConfigError::new(
                    file,
                    key("stream"),
                    "profile = \"custom\" streams only with ws_url (e.g. \"ws://127.0.0.1:8081\")",
                ))
            }
            (_, ws_url) => ws_url.map(|ws_url| StreamConfig { ws_url, settings }),
        })
    }
}
