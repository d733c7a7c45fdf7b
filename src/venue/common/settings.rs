//! Config checks every adapter applies the same way: base URLs and the request timeout.

use std::path::Path;
use std::time::Duration;

use crate::config_file::literal::DurationLit;
use crate::config_file::ConfigError;

/// Checks a base URL given in the config and returns it without a trailing slash: `https://`
/// anywhere, plain `http://` only to this machine (a mock), and the base only — `appended`
/// names the paths the adapter adds (for the error message).
pub fn check_base_url(
    file: &Path,
    key: &str,
    raw: &str,
    appended: &str,
) -> Result<String, ConfigError> {
    let url = reqwest::Url::parse(raw)
        .map_err(|e| ConfigError::new(file, key, format!("`{raw}` is not a URL: {e}")))?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !(url.scheme() == "https" || (url.scheme() == "http" && local)) {
        return Err(ConfigError::new(
            file,
            key,
            format!("`{raw}`: use https://, or http:// to 127.0.0.1/localhost only"),
        ));
    }
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
