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
//! stream = true                   # marks and account events over WebSocket (default)
//! # ws_public_url = "ws://127.0.0.1:8080/v5/public/linear"   # only with base_url: streams
//! # ws_private_url = "ws://127.0.0.1:8080/v5/private"        # are off there without both
//! reconcile_every = "30s"         # a REST read reconciles the streamed account
//! drift_alert = "1%"              # local vs REST equity beyond this is logged
//! ```
//!
//! Streams run on the profile's documented hosts (bybit.md §1): mainnet and testnet on their
//! own `stream` hosts; demo trading on `stream-demo` for the private stream and mainnet's
//! public stream, whose data the docs call identical. A region streams on its listed host
//! (`tr`, `kz`, `ge`, `id`, `jp`); the docs list none for `nl`, `ae`, `eu` and `bytick`, so
//! those poll — or give `base_url` and both stream URLs. With `base_url` (a mock, a proxy) the
//! stream URLs are the operator's too: streams run only when both are given.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::credential::Credentials;
use crate::config_file::literal::{DurationLit, MoneyLit, RatioLit};
use crate::config_file::{relative_to, ConfigError};
use crate::money::Usdt;
use crate::venue::common::settings::{self, RawStreamKnobs};
use crate::venue::streaming::StreamSettings;

use super::stream;

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

/// The regions' stream hosts, where the docs list one (bybit.md §1).
pub const REGION_STREAMS: &[(&str, &str)] = &[
    ("tr", "stream.bybit.tr"),
    ("kz", "stream.bybit.kz"),
    ("ge", "stream.bybitgeorgia.ge"),
    ("id", "stream.bybit.id"),
    ("jp", "stream.manepa.jp"),
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

    /// The documented (public, private) stream URLs.
    pub fn stream_urls(self) -> (String, String) {
        let (public, private) = match self {
            Profile::Mainnet => (stream::MAINNET_HOST, stream::MAINNET_HOST),
            Profile::Testnet => (stream::TESTNET_HOST, stream::TESTNET_HOST),
            Profile::Demo => (stream::MAINNET_HOST, stream::DEMO_HOST),
        };
        (
            stream::url_at(public, stream::PUBLIC_PATH),
            stream::url_at(private, stream::PRIVATE_PATH),
        )
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
    /// `None`: REST polling alone.
    pub stream: Option<StreamConfig>,
}

/// The (public, private) stream URLs, or why there are none.
type StreamUrls = Result<(String, String), String>;

const NO_GIVEN_STREAMS: &str = "with base_url, streams need ws_public_url and ws_private_url (e.g. \"ws://127.0.0.1:8080/v5/public/linear\" and \"ws://127.0.0.1:8080/v5/private\")";

/// Where the streams are and how the streamed account is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// The public linear stream (tickers), as connected to.
    pub public_url: String,
    /// The private stream (wallet, position), as connected to.
    pub private_url: String,
    pub settings: StreamSettings,
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
            stream: None,
        }
    }

    /// These settings with streams at these URLs (tests, embedding).
    pub fn with_stream(
        mut self,
        public_url: &str,
        private_url: &str,
        settings: StreamSettings,
    ) -> Self {
        self.stream = Some(StreamConfig {
            public_url: public_url.trim_end_matches('/').to_string(),
            private_url: private_url.trim_end_matches('/').to_string(),
            settings,
        });
        self
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
    stream: Option<bool>,
    ws_public_url: Option<String>,
    ws_private_url: Option<String>,
    reconcile_every: Option<DurationLit>,
    drift_alert: Option<RatioLit>,
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
        let stream = self.stream_config(file, prefix, profile)?;
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
            stream,
        })
    }

    /// Streams on by default at the profile's (or region's) documented hosts; with
    /// `base_url`, only at the stream URLs given with it.
    fn stream_config(
        &self,
        file: &Path,
        prefix: &str,
        profile: Profile,
    ) -> Result<Option<StreamConfig>, ConfigError> {
        let key = |name: &str| format!("{prefix}bybit.{name}");
        let knobs = RawStreamKnobs {
            stream: self.stream,
            reconcile_every: self.reconcile_every,
            drift_alert: self.drift_alert,
        };
        let settings = knobs.build(file, &format!("{prefix}bybit."), stream::MARK_CADENCE)?;
        let urls = match &self.base_url {
            Some(_) => self.given_stream_urls(file, prefix)?,
            None => self.documented_stream_urls(file, prefix, profile)?,
        };
        match (self.stream, urls) {
            (Some(false), _) => Ok(None),
            (Some(true), Err(why)) => Err(ConfigError::new(file, key("stream"), why)),
            (_, Err(_)) => Ok(None),
            (_, Ok((public_url, private_url))) => Ok(Some(StreamConfig {
                public_url,
                private_url,
                settings,
            })),
        }
    }

    /// With `base_url`: both stream URLs, checked, or why there are none.
    fn given_stream_urls(&self, file: &Path, prefix: &str) -> Result<StreamUrls, ConfigError> {
        let key = |name: &str| format!("{prefix}bybit.{name}");
        let check = |name: &str, raw: &str| {
            settings::check_stream_url(file, &key(name), raw, "nothing (it subscribes by message)")
        };
        let missing = |name: &str, given: &str| {
            let why =
                format!("{given} needs {name} beside it: the mark and account streams go together");
            ConfigError::new(file, key(name), why)
        };
        match (&self.ws_public_url, &self.ws_private_url) {
            (Some(public), Some(private)) => Ok(Ok((
                check("ws_public_url", public)?,
                check("ws_private_url", private)?,
            ))),
            (Some(_), None) => Err(missing("ws_private_url", "ws_public_url")),
            (None, Some(_)) => Err(missing("ws_public_url", "ws_private_url")),
            (None, None) => Ok(Err(NO_GIVEN_STREAMS.to_string())),
        }
    }

    /// Without `base_url`: the profile's or the region's stream hosts, or why there are none.
    fn documented_stream_urls(
        &self,
        file: &Path,
        prefix: &str,
        profile: Profile,
    ) -> Result<StreamUrls, ConfigError> {
        for (name, given) in [
            ("ws_public_url", &self.ws_public_url),
            ("ws_private_url", &self.ws_private_url),
        ] {
            if given.is_some() {
                return Err(ConfigError::new(
                    file,
                    format!("{prefix}bybit.{name}"),
                    "only allowed with base_url (a mock, a proxy); without it the profile's documented stream hosts are used",
                ));
            }
        }
        let Some(region) = &self.region else {
            return Ok(Ok(profile.stream_urls()));
        };
        Ok(REGION_STREAMS
            .iter()
            .find(|(name, _)| name == region)
            .map(|(_, host)| {
                (
                    stream::url_at(host, stream::PUBLIC_PATH),
                    stream::url_at(host, stream::PRIVATE_PATH),
                )
            })
            .ok_or_else(|| {
                format!("Bybit lists no stream host for region `{region}`; set stream = false, or give base_url with ws_public_url and ws_private_url")
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "marginguard.toml";

    fn build(table: &str) -> Result<BybitSettings, ConfigError> {
        std::env::set_var("MG_UNIT_BYBIT_KEY", "k");
        std::env::set_var("MG_UNIT_BYBIT_SECRET", "s");
        let text = format!(
            "api_key_env = \"MG_UNIT_BYBIT_KEY\"\napi_secret_env = \"MG_UNIT_BYBIT_SECRET\"\n{table}"
        );
        let raw: RawBybit = toml::from_str(&text).expect("a bybit table");
        raw.build(Path::new(FILE), "accounts[0].")
    }

    fn urls(table: &str) -> Option<(String, String)> {
        build(table)
            .unwrap()
            .stream
            .map(|s| (s.public_url, s.private_url))
    }

    fn refused_key(table: &str) -> String {
        let error = build(table).unwrap_err();
        assert!(error.file.ends_with(FILE), "{error}");
        error.key
    }

    #[test]
    fn streams_are_on_at_each_profiles_documented_hosts() {
        let pair = |public: &str, private: &str| Some((public.to_string(), private.to_string()));
        assert_eq!(
            urls(""),
            pair(
                "wss://stream.bybit.com/v5/public/linear",
                "wss://stream.bybit.com/v5/private"
            )
        );
        assert_eq!(
            urls("profile = \"testnet\""),
            pair(
                "wss://stream-testnet.bybit.com/v5/public/linear",
                "wss://stream-testnet.bybit.com/v5/private"
            )
        );
        assert_eq!(
            urls("profile = \"demo\""),
            pair(
                "wss://stream.bybit.com/v5/public/linear",
                "wss://stream-demo.bybit.com/v5/private"
            )
        );
        assert_eq!(
            urls("region = \"tr\""),
            pair(
                "wss://stream.bybit.tr/v5/public/linear",
                "wss://stream.bybit.tr/v5/private"
            )
        );
        assert_eq!(urls("stream = false"), None);
        let settings = build("").unwrap().stream.unwrap().settings;
        assert_eq!(settings.cadence, Duration::from_millis(100));
        assert_eq!(settings.max_mark_age, Duration::from_secs(1));
    }

    #[test]
    fn a_region_without_a_listed_stream_host_polls_unless_told_to_stream() {
        assert_eq!(urls("region = \"nl\""), None);
        let error = build("region = \"nl\"\nstream = true").unwrap_err();
        assert_eq!(error.key, "accounts[0].bybit.stream");
        assert!(error.message.contains("region `nl`"), "{error}");
    }

    #[test]
    fn with_base_url_streams_run_only_at_the_urls_given_with_it() {
        let mock = "base_url = \"http://127.0.0.1:9\"\n";
        assert_eq!(urls(mock), None);
        let both = format!("{mock}ws_public_url = \"ws://127.0.0.1:9/v5/public/linear\"\nws_private_url = \"ws://127.0.0.1:9/v5/private/\"\nreconcile_every = \"10s\"");
        let config = build(&both).unwrap().stream.unwrap();
        assert_eq!(config.public_url, "ws://127.0.0.1:9/v5/public/linear");
        assert_eq!(config.private_url, "ws://127.0.0.1:9/v5/private");
        assert_eq!(config.settings.reconcile_every, Duration::from_secs(10));
        assert_eq!(
            refused_key(&format!("{mock}stream = true")),
            "accounts[0].bybit.stream"
        );
        assert_eq!(
            refused_key(&format!("{mock}ws_public_url = \"ws://127.0.0.1:9/p\"")),
            "accounts[0].bybit.ws_private_url"
        );
        assert_eq!(
            refused_key(&format!("{mock}ws_private_url = \"ws://127.0.0.1:9/p\"")),
            "accounts[0].bybit.ws_public_url"
        );
        assert_eq!(
            refused_key("ws_public_url = \"wss://stream.bybit.com/v5/public/linear\"\nws_private_url = \"wss://stream.bybit.com/v5/private\""),
            "accounts[0].bybit.ws_public_url"
        );
    }

    #[test]
    fn bad_stream_values_name_their_key() {
        let mock =
            "base_url = \"http://127.0.0.1:9\"\nws_private_url = \"ws://127.0.0.1:9/v5/private\"\n";
        let error = build(&format!(
            "{mock}ws_public_url = \"ws://example.com/v5/public/linear\""
        ))
        .unwrap_err();
        assert_eq!(error.key, "accounts[0].bybit.ws_public_url");
        assert!(error.message.contains("wss://"), "{error}");
        assert_eq!(
            refused_key(&format!("{mock}ws_public_url = \"ws://127.0.0.1:9/p?x=1\"")),
            "accounts[0].bybit.ws_public_url"
        );
        assert_eq!(
            refused_key("reconcile_every = \"1s\""),
            "accounts[0].bybit.reconcile_every"
        );
        assert_eq!(
            refused_key("drift_alert = \"0%\""),
            "accounts[0].bybit.drift_alert"
        );
    }
}
