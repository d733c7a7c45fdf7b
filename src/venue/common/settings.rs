//! Config checks every adapter applies the same way: base URLs and the request timeout.

use std::path::Path;
use std::time::Duration;

use crate::config_file::literal::{DurationLit, RatioLit};
use crate::config_file::ConfigError;
use crate::venue::streaming::StreamSettings;

/// Checks a base URL given in the config and returns it without a trailing slash: `https://`
/// anywhere, plain `http://` only to this machine (a mock), and the base only — `appended`
/// names the paths the adapter adds (for the error message).
pub fn check_base_url(
    file: &Path,
    key: &str,
    raw: &str,
    appended: &str,
) -> Result<String, ConfigError> {
    let url = secure_or_local(file, key, raw, ("https", "http"))?;
    if url.path() != "/" || url.query().is_some() {
        return Err(ConfigError::new(
            file,
            key,
            format!(
                "`{raw}`: give the base only (scheme, host, port); the adapter appends {appended}"
            ),
        ));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// `raw` as a URL whose scheme is `schemes.0` (TLS) anywhere, or `schemes.1` (plain) only to
/// this machine (a mock).
fn secure_or_local(
    file: &Path,
    key: &str,
    raw: &str,
    (secure, plain): (&str, &str),
) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(raw)
        .map_err(|e| ConfigError::new(file, key, format!("`{raw}` is not a URL: {e}")))?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !(url.scheme() == secure || (url.scheme() == plain && local)) {
        return Err(ConfigError::new(
            file,
            key,
            format!("`{raw}`: use {secure}://, or {plain}:// to 127.0.0.1/localhost only"),
        ));
    }
    Ok(url)
}

/// `request_timeout`, or `default` when not given: between 100 ms and 60 s.
pub fn request_timeout(
    file: &Path,
    key: &str,
    given: Option<DurationLit>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let timeout = given.map(|d| d.0).unwrap_or(default);
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(60) {
        return Err(ConfigError::new(file, key, "must be between 100ms and 60s"));
    }
    Ok(timeout)
}

/// Checks a WebSocket base URL: `wss://` anywhere, plain `ws://` only to this machine, the
/// base only (the adapter appends `appended`).
pub fn check_stream_url(
    file: &Path,
    key: &str,
    raw: &str,
    appended: &str,
) -> Result<String, ConfigError> {
    let url = secure_or_local(file, key, raw, ("wss", "ws"))?;
    if url.query().is_some() {
        return Err(ConfigError::new(
            file,
            key,
            format!("`{raw}`: no query string; the adapter appends {appended}"),
        ));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// The venue-neutral streaming knobs of an account's venue table (each adapter's raw table
/// carries them as its own keys, so unknown keys are still refused).
#[derive(Debug, Default)]
pub struct RawStreamKnobs {
    /// `false` reads the account by REST polling alone.
    pub stream: Option<bool>,
    pub reconcile_every: Option<DurationLit>,
    pub drift_alert: Option<RatioLit>,
}

impl RawStreamKnobs {
    /// The stream settings for a venue whose mark stream pushes every `cadence`:
    /// `reconcile_every` between 5 s and 10 min (default 30 s), `drift_alert` above 0 and
    /// below 100 % (default 1 %).
    pub fn build(
        &self,
        file: &Path,
        prefix: &str,
        cadence: Duration,
    ) -> Result<StreamSettings, ConfigError> {
        let mut settings = StreamSettings::for_cadence(cadence);
        if let Some(every) = self.reconcile_every {
            if every.0 < Duration::from_secs(5) || every.0 > Duration::from_secs(600) {
                return Err(ConfigError::new(
                    file,
                    format!("{prefix}reconcile_every"),
                    "must be between 5s and 10m (a REST read reconciles the streamed account this often)",
                ));
            }
            settings.reconcile_every = every.0;
        }
        if let Some(alert) = self.drift_alert {
            if alert.0 .0 <= rust_decimal::Decimal::ZERO || alert.0 .0 >= rust_decimal::Decimal::ONE
            {
                return Err(ConfigError::new(
                    file,
                    format!("{prefix}drift_alert"),
                    "must be above 0 and below 100% (e.g. \"1%\")",
                ));
            }
            settings.drift_alert = alert.0;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_to_this_machine_and_the_base_only() {
        let file = Path::new("t.toml");
        let check = |raw| check_base_url(file, "k", raw, "/x");
        assert_eq!(
            check("https://example.test/").unwrap(),
            "https://example.test"
        );
        assert_eq!(
            check("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(check("http://localhost:1/").unwrap(), "http://localhost:1");
        assert!(check("http://example.test").is_err());
        let error = check("https://example.test/api").unwrap_err().to_string();
        assert!(error.contains("the adapter appends /x"), "{error}");
        assert!(check("https://example.test/?a=1").is_err());
        assert!(check("not a url").is_err());
    }

    #[test]
    fn the_timeout_stays_between_100ms_and_60s() {
        let file = Path::new("t.toml");
        let default = Duration::from_secs(5);
        let lit = |ms| Some(DurationLit(Duration::from_millis(ms)));
        assert_eq!(request_timeout(file, "k", None, default).unwrap(), default);
        assert!(request_timeout(file, "k", lit(99), default).is_err());
        assert!(request_timeout(file, "k", lit(60_001), default).is_err());
        assert_eq!(
            request_timeout(file, "k", lit(100), default).unwrap(),
            Duration::from_millis(100)
        );
    }
}
