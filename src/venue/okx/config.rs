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
//! ```
//!
//! Hosts are spelled out per region (okx.md §1), never derived from one another: a key made
//! on my.okx.com only works on `eea.okx.com`, one made on app.okx.com only on `us.okx.com`
//! (anything else answers 50119 "API key doesn't exist").

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::credential::Credentials;
use super::http::HttpSettings;
use crate::config_file::literal::DurationLit;
use crate::config_file::{relative_to, ConfigError};
use crate::venue::common::settings;

/// (name, REST base URL) per region.
pub const REGIONS: &[(&str, &str)] = &[
    ("global", "https://www.okx.com"),
    ("global-openapi", "https://openapi.okx.com"),
    ("eea", "https://eea.okx.com"),
    ("us", "https://us.okx.com"),
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
}

/// Everything the adapter needs, validated. `Debug` shows no secret (`Credentials` redacts).
#[derive(Debug, Clone)]
pub struct OkxSettings {
    /// The region's name, or "custom" for `rest_url`.
    pub region: String,
    pub http: HttpSettings,
    pub credentials: Credentials,
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
        }
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
        Ok(OkxSettings {
            region,
            http: HttpSettings {
                base_url,
                demo: self.demo.unwrap_or(false),
                timeout,
            },
            credentials,
        })
    }
}
