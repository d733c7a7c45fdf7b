//! The Bybit API key and its secret.
//!
//! The secret is held as bytes, used only to sign, shown nowhere (`Debug` prints the first four
//! characters of the key and `[redacted]`), and overwritten on drop. It comes from environment
//! variables named in the config or from a file only its owner can read.
//!
//! (Venue-neutral: the Binance adapter has the same type; the lead may extract one.)

use std::fmt;
use std::path::{Path, PathBuf};

use super::signing;

#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    secret: Secret,
}

#[derive(Clone)]
struct Secret(Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

/// Why credentials could not be read. Names variables and files, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("environment variable `{0}` is not set (or not valid UTF-8)")]
    MissingEnv(String),
    #[error("environment variable `{0}` is empty")]
    EmptyEnv(String),
    #[error("cannot read the credentials file {}: {reason}", .path.display())]
    File { path: PathBuf, reason: String },
    #[error("the credentials file {} is readable by group or others (mode {mode:o}); run `chmod 600` on it", .path.display())]
    FileTooOpen { path: PathBuf, mode: u32 },
}

impl Credentials {
    pub fn new(api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            secret: Secret(secret.into().into_bytes()),
        }
    }

    pub fn from_env(key_var: &str, secret_var: &str) -> Result<Self, CredentialError> {
        let read = |name: &str| {
            let value =
                std::env::var(name).map_err(|_| CredentialError::MissingEnv(name.to_string()))?;
            let value = value.trim().to_string();
            if value.is_empty() {
                return Err(CredentialError::EmptyEnv(name.to_string()));
            }
            Ok(value)
        };
        Ok(Self::new(read(key_var)?, read(secret_var)?))
    }

    /// `api_key = "…"` and `api_secret = "…"` lines; the file must be mode 0600 (or stricter).
    /// Parsed by hand so no error message ever quotes a line (it may be the secret).
    pub fn from_file(path: &Path) -> Result<Self, CredentialError> {
        let file_error = |reason: &str| CredentialError::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let metadata = std::fs::metadata(path).map_err(|e| file_error(&e.to_string()))?;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CredentialError::FileTooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| file_error(&e.to_string()))?;
        let (mut key, mut secret) = (None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(file_error("every line must read `name = \"value\"`"));
            };
            let value = value.trim().trim_matches('"').to_string();
            match name.trim() {
                "api_key" => key = Some(value),
                "api_secret" => secret = Some(value),
                _ => return Err(file_error("allowed names: api_key, api_secret")),
            }
        }
        match (key, secret) {
            (Some(k), Some(s)) if !k.is_empty() && !s.is_empty() => Ok(Self::new(k, s)),
            _ => Err(file_error("needs both api_key and api_secret, not empty")),
        }
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// `X-BAPI-SIGN` for one request: the only use of the secret.
    pub fn sign(&self, timestamp_ms: i64, recv_window_ms: u128, payload: &str) -> String {
        let message = signing::presign(timestamp_ms, &self.api_key, recv_window_ms, payload);
        signing::hmac_hex(&self.secret.0, &message)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.api_key.chars().take(4).collect();
        f.debug_struct("Credentials")
            .field("api_key", &format_args!("{shown}…"))
            .field("secret", &format_args!("[redacted]"))
            .finish()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-BYBIT-9e107d9d372bb6826bd81d3542a419d6";

    #[test]
    fn debug_never_shows_the_secret_or_the_whole_key() {
        let credentials = Credentials::new("AbCdEfGhIjKlMnOpQr", CANARY);
        let shown = format!("{credentials:?} {credentials:#?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(!shown.contains("AbCdEfGhIjKlMnOpQr"), "{shown}");
        assert!(shown.contains("AbCd…") && shown.contains("[redacted]"));
    }

    #[test]
    fn signs_the_reference_vector() {
        let credentials =
            Credentials::new("AbCdEfGhIjKlMnOpQr", "0123456789abcdefghijklmnopqrstuvwxyz");
        assert_eq!(
            credentials.sign(1_700_000_000_000, 5000, "accountType=UNIFIED&coin=USDT"),
            "31e360a6e0ff8a9aac126c5f39a88b77fe0f88b2b973aa375f2066b02b2d1911"
        );
    }

    #[cfg(unix)]
    #[test]
    fn file_must_be_owner_only_and_errors_never_quote_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mg-bybit-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bybit.toml");
        std::fs::write(
            &path,
            format!("api_key = \"k1\"\napi_secret = \"{CANARY}\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            Credentials::from_file(&path),
            Err(CredentialError::FileTooOpen { mode: 0o640, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Credentials::from_file(&path).unwrap().api_key(), "k1");
        std::fs::write(&path, format!("{CANARY}\n")).unwrap();
        let error = Credentials::from_file(&path).unwrap_err().to_string();
        assert!(!error.contains(CANARY), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
