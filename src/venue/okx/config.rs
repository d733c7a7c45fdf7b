//! The `[accounts.okx]` table: which host, demo or not, which credentials, how patient.
//!
//! ```toml
//! [accounts.okx]
//! region = "global"                  # global (default) | global-openapi | eea | us
//! demo = true                        # demo trading: adds `x-simulated-trading: 1`
//! api_key_env = "OKX_API_KEY"        # or: credentials_file = "okx-key.toml" (mode 0600)
//! api_secret_env = "OKX_API_SECRET"
//! passphrase_env = "OKX_API_PASSPHRASE"
//! # rest_url = "http://127.0.0.1:8080"  # instead of region: a mock or a proxy
//! request_timeout = "5s"
//! stream = true                      # marks and account events over WebSocket (default)
//! # ws_public_url / ws_private_url: only with rest_url (streams are off there without both)
//! reconcile_every = "30s"            # a REST read reconciles the streamed account
//! drift_alert = "1%"                 # local vs REST equity beyond this is logged
//! ```
//!
//! Hosts are spelled out per region (okx.md §1), never derived from one another: a key made
//! on my.okx.com only works on `eea.okx.com`, one made on app.okx.com only on `us.okx.com`
//! (anything else answers 50119 "API key doesn't exist"). The WebSocket hosts are spelled out
//! the same way, per region and demo (`WS_HOSTS`); demo trading streams from `wspap` whatever
//! the REST host. OKX documents no demo WebSocket host for the eea and us regions, so a demo
//! account there polls (and `stream = true` is refused).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::credential::Credentials;
use super::http::HttpSettings;
use super::stream;
use crate::config_file::literal::{DurationLit, RatioLit};
use crate::config_file::{relative_to, ConfigError};
use crate::venue::common::settings::{self, RawStreamKnobs};
use crate::venue::streaming::StreamSettings;

/// (name, REST base URL) per region.
pub const REGIONS: &[(&str, &str)] = &[
    ("global", "https://www.okx.com"),
    ("global-openapi", "https://openapi.okx.com"),
    ("eea", "https://eea.okx.com"),
    ("us", "https://us.okx.com"),
];

const GLOBAL_WS: (&str, &str) = (
    "wss://ws.okx.com:8443/ws/v5/public",
    "wss://ws.okx.com:8443/ws/v5/private",
);
const DEMO_WS: (&str, &str) = (
    "wss://wspap.okx.com:8443/ws/v5/public",
    "wss://wspap.okx.com:8443/ws/v5/private",
);

/// (region, demo, (public, private) WebSocket URL), as okx.md §1 lists them. `openapi.okx.com`
/// is a REST host only: its streams are the global ones.
pub const WS_HOSTS: &[(&str, bool, (&str, &str))] = &[
    ("global", false, GLOBAL_WS),
    ("global-openapi", false, GLOBAL_WS),
    ("global", true, DEMO_WS),
    ("global-openapi", true, DEMO_WS),
    (
        "eea",
        false,
        (
            "wss://wseea.okx.com:8443/ws/v5/public",
            "wss://wseea.okx.com:8443/ws/v5/private",
        ),
    ),
    (
        "us",
        false,
        (
            "wss://wsus.okx.com:8443/ws/v5/public",
            "wss://wsus.okx.com:8443/ws/v5/private",
        ),
    ),
];

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOkx {
    region: Option<String>,
    rest_url: Option<String>,
    demo: Option<bool>,
    api_key_env: Option<String>,
    api_secret_env: Option<String>,
    passphrase_env: Option<String>,
    credentials_file: Option<String>,
    request_timeout: Option<DurationLit>,
    stream: Option<bool>,
    ws_public_url: Option<String>,
    ws_private_url: Option<String>,
    reconcile_every: Option<DurationLit>,
    drift_alert: Option<RatioLit>,
}

/// Everything the adapter needs, validated. `Debug` shows no secret (`Credentials` redacts).
#[derive(Debug, Clone)]
pub struct OkxSettings {
    /// The region's name, or "custom" for `rest_url`.
    pub region: String,
    pub http: HttpSettings,
    pub credentials: Credentials,
    /// `None`: REST polling alone.
    pub stream: Option<StreamConfig>,
}

/// Where the streams are and how the streamed account is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// The whole URL of the public connection (`…/ws/v5/public`).
    pub public_url: String,
    /// The whole URL of the private connection (`…/ws/v5/private`).
    pub private_url: String,
    pub settings: StreamSettings,
}

impl OkxSettings {
    /// The host is this machine (a mock): documented venue timings need not apply.
    pub fn is_loopback(&self) -> bool {
        crate::venue::common::is_loopback_url(&self.http.base_url)
    }

    /// Settings for an explicit host (tests, embedding).
    pub fn custom(rest_url: &str, demo: bool, credentials: Credentials) -> Self {
        Self {
            region: "custom".into(),
            http: HttpSettings {
                base_url: rest_url.trim_end_matches('/').to_string(),
                demo,
                timeout: DEFAULT_TIMEOUT,
            },
            credentials,
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
            public_url: public_url.to_string(),
            private_url: private_url.to_string(),
            settings,
        });
        self
    }
}

impl RawOkx {
    pub fn build(self, file: &Path, prefix: &str) -> Result<OkxSettings, ConfigError> {
        let key = |name: &str| format!("{prefix}okx.{name}");
        let allowed = REGIONS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ");
        let (region, base_url) = match (&self.region, &self.rest_url) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    file,
                    key("rest_url"),
                    "give either region or rest_url, not both",
                ))
            }
            (_, Some(url)) => (
                "custom".to_string(),
                settings::check_base_url(file, &key("rest_url"), url, "/api/v5/…")?,
            ),
            (region, None) => {
                let name = region.as_deref().unwrap_or("global");
                let Some((name, url)) = REGIONS.iter().find(|(n, _)| *n == name) else {
                    return Err(ConfigError::new(
                        file,
                        key("region"),
                        format!("unknown region `{name}`; allowed: {allowed} (or rest_url = \"…\" for a mock)"),
                    ));
                };
                (name.to_string(), url.to_string())
            }
        };
        let credentials = match (
            &self.credentials_file,
            &self.api_key_env,
            &self.api_secret_env,
            &self.passphrase_env,
        ) {
            (Some(path), None, None, None) => Credentials::from_file(&relative_to(file, path))
                .map_err(|e| ConfigError::new(file, key("credentials_file"), e.to_string()))?,
            (None, Some(k), Some(s), Some(p)) => Credentials::from_env(k, s, p).map_err(|e| {
                let named = [
                    ("api_key_env", k.as_str()),
                    ("api_secret_env", s),
                    ("passphrase_env", p),
                ];
                ConfigError::new(file, key(e.config_key(&named)), e.to_string())
            })?,
            (None, ..) => {
                return Err(ConfigError::new(
                    file,
                    key("api_key_env"),
                    "name the environment variables holding the key: api_key_env, api_secret_env and passphrase_env (or credentials_file = \"FILE\", mode 0600, with api_key, api_secret and passphrase)",
                ))
            }
            (Some(_), ..) => {
                return Err(ConfigError::new(
                    file,
                    key("credentials_file"),
                    "give either credentials_file or api_key_env/api_secret_env/passphrase_env, not both",
                ))
            }
        };
        let timeout = settings::request_timeout(
            file,
            &key("request_timeout"),
            self.request_timeout,
            DEFAULT_TIMEOUT,
        )?;
        let demo = self.demo.unwrap_or(false);
        let stream = self.stream_config(file, prefix, &region, demo)?;
        Ok(OkxSettings {
            region,
            http: HttpSettings {
                base_url,
                demo,
                timeout,
            },
            credentials,
            stream,
        })
    }

    /// Streams on by default at the region's documented hosts; with `rest_url` only when both
    /// WebSocket URLs are given.
    fn stream_config(
        &self,
        file: &Path,
        prefix: &str,
        region: &str,
        demo: bool,
    ) -> Result<Option<StreamConfig>, ConfigError> {
        let key = |name: &str| format!("{prefix}okx.{name}");
        let knobs = RawStreamKnobs {
            stream: self.stream,
            reconcile_every: self.reconcile_every,
            drift_alert: self.drift_alert,
        };
        let mut settings = knobs.build(file, &key(""), stream::MARK_CADENCE)?;
        // OKX repeats an unchanged mark only every 10 s (`stream::MAX_MARK_AGE`).
        settings.max_mark_age = stream::MAX_MARK_AGE;
        let urls = if region == "custom" {
            self.custom_ws_urls(file, prefix)?
        } else {
            self.region_ws_urls(file, prefix, region, demo)?
        };
        Ok(match (self.stream, urls) {
            (Some(false), _) => None,
            (Some(true), None) => {
                return Err(ConfigError::new(
                    file,
                    key("stream"),
                    if region == "custom" {
                        "with rest_url, streams need ws_public_url and ws_private_url (e.g. \"ws://127.0.0.1:8081/ws/v5/public\")".to_string()
                    } else {
                        format!("OKX documents no demo-trading WebSocket host for region `{region}`; set stream = false (REST polling), or give rest_url with ws_public_url and ws_private_url")
                    },
                ))
            }
            (_, urls) => urls.map(|(public_url, private_url)| StreamConfig {
                public_url,
                private_url,
                settings,
            }),
        })
    }

    /// The region's documented hosts; a WebSocket URL given here is refused.
    fn region_ws_urls(
        &self,
        file: &Path,
        prefix: &str,
        region: &str,
        demo: bool,
    ) -> Result<Option<(String, String)>, ConfigError> {
        for (name, given) in [
            ("ws_public_url", &self.ws_public_url),
            ("ws_private_url", &self.ws_private_url),
        ] {
            if given.is_some() {
                return Err(ConfigError::new(
                    file,
                    format!("{prefix}okx.{name}"),
                    format!("only allowed with rest_url; region `{region}` has fixed hosts"),
                ));
            }
        }
        Ok(WS_HOSTS
            .iter()
            .find(|(r, d, _)| *r == region && *d == demo)
            .map(|(_, _, (public, private))| (public.to_string(), private.to_string())))
    }

    /// Both WebSocket URLs, checked, or neither.
    fn custom_ws_urls(
        &self,
        file: &Path,
        prefix: &str,
    ) -> Result<Option<(String, String)>, ConfigError> {
        let key = |name: &str| format!("{prefix}okx.{name}");
        let check = |name: &str, raw: &str| {
            settings::check_stream_url(
                file,
                &key(name),
                raw,
                "no path (give the whole URL, e.g. \"wss://ws.okx.com:8443/ws/v5/public\")",
            )
        };
        match (&self.ws_public_url, &self.ws_private_url) {
            (Some(public), Some(private)) => Ok(Some((
                check("ws_public_url", public)?,
                check("ws_private_url", private)?,
            ))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(
                file,
                key("ws_private_url"),
                "give ws_private_url with ws_public_url (the account stream needs it)",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                file,
                key("ws_public_url"),
                "give ws_public_url with ws_private_url (the mark stream needs it)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `table` plus credentials from variables this test module alone sets.
    fn build(table: &str) -> Result<OkxSettings, ConfigError> {
        for (var, value) in [
            ("MG_UNIT_OKX_CFG_KEY", "k"),
            ("MG_UNIT_OKX_CFG_SECRET", "s"),
            ("MG_UNIT_OKX_CFG_PASS", "p"),
        ] {
            std::env::set_var(var, value);
        }
        let text = format!(
            "{table}\napi_key_env = \"MG_UNIT_OKX_CFG_KEY\"\napi_secret_env = \"MG_UNIT_OKX_CFG_SECRET\"\npassphrase_env = \"MG_UNIT_OKX_CFG_PASS\"\n"
        );
        let raw: RawOkx = toml::from_str(&text).expect("the table parses");
        raw.build(Path::new("c.toml"), "accounts[0].")
    }

    fn urls(settings: &OkxSettings) -> Option<(&str, &str)> {
        settings
            .stream
            .as_ref()
            .map(|s| (s.public_url.as_str(), s.private_url.as_str()))
    }

    #[test]
    fn each_region_streams_from_its_documented_hosts() {
        let global = build("").unwrap();
        assert_eq!(urls(&global), Some(GLOBAL_WS));
        let stream = global.stream.unwrap().settings;
        assert_eq!(stream.cadence, Duration::from_millis(200));
        assert_eq!(stream.max_mark_age, Duration::from_secs(12));
        assert_eq!(
            urls(&build("region = \"global-openapi\"").unwrap()),
            Some(GLOBAL_WS)
        );
        assert_eq!(urls(&build("demo = true").unwrap()), Some(DEMO_WS));
        assert_eq!(
            urls(&build("region = \"eea\"").unwrap()).unwrap().1,
            "wss://wseea.okx.com:8443/ws/v5/private"
        );
        assert_eq!(
            urls(&build("region = \"us\"").unwrap()).unwrap().0,
            "wss://wsus.okx.com:8443/ws/v5/public"
        );
        assert_eq!(urls(&build("stream = false").unwrap()), None);
        // No documented demo host there: polling, and an explicit `stream = true` is refused.
        assert_eq!(urls(&build("region = \"us\"\ndemo = true").unwrap()), None);
        let error = build("region = \"eea\"\ndemo = true\nstream = true").unwrap_err();
        assert_eq!(error.key, "accounts[0].okx.stream", "{error}");
    }

    #[test]
    fn a_custom_rest_host_streams_only_with_both_urls() {
        let rest = "rest_url = \"http://127.0.0.1:9\"";
        assert_eq!(urls(&build(rest).unwrap()), None);
        let both = format!("{rest}\nws_public_url = \"ws://127.0.0.1:9/ws/v5/public\"\nws_private_url = \"ws://127.0.0.1:9/ws/v5/private\"");
        assert_eq!(
            urls(&build(&both).unwrap()),
            Some((
                "ws://127.0.0.1:9/ws/v5/public",
                "ws://127.0.0.1:9/ws/v5/private"
            ))
        );
        let one = format!("{rest}\nws_public_url = \"ws://127.0.0.1:9/ws/v5/public\"");
        assert_eq!(
            build(&one).unwrap_err().key,
            "accounts[0].okx.ws_private_url"
        );
        let error = build(&format!("{rest}\nstream = true")).unwrap_err();
        assert_eq!(error.key, "accounts[0].okx.stream");
        let plain = both.replace(
            "ws://127.0.0.1:9/ws/v5/private",
            "ws://example.net/ws/v5/private",
        );
        assert_eq!(
            build(&plain).unwrap_err().key,
            "accounts[0].okx.ws_private_url"
        );
    }

    #[test]
    fn bad_stream_keys_name_file_and_key() {
        let error = build("ws_public_url = \"wss://ws.okx.com:8443/ws/v5/public\"").unwrap_err();
        assert_eq!(error.key, "accounts[0].okx.ws_public_url");
        assert!(
            error.message.contains("only allowed with rest_url"),
            "{error}"
        );
        let error = build("reconcile_every = \"1s\"").unwrap_err();
        assert_eq!(error.key, "accounts[0].okx.reconcile_every");
        assert!(error.file.ends_with("c.toml"));
        let error = build("drift_alert = \"0%\"").unwrap_err();
        assert_eq!(error.key, "accounts[0].okx.drift_alert");
    }
}
