//! The OKX API key, its secret and its passphrase.
//!
//! Both the secret and the passphrase are secrets: the passphrase travels in plain text in
//! `OK-ACCESS-PASSPHRASE`, so anyone who reads it and the secret can sign. Neither may reach a
//! log line, a panic, `Debug` or `Display`. They are held in a wrapper that prints
//! `[redacted]` and is wiped on drop; the key itself is shown by its first four characters.
//!
//! (Venue-neutral twin of `binance::credential` — the env/0600-file reading is the same idea;
//! kept separate until the lead extracts one shared version.)

use std::fmt;
use std::path::{Path, PathBuf};

use super::signing;

#[derive(Clone)]
struct Hidden(Vec<u8>);

impl Drop for Hidden {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    secret: Hidden,
    passphrase: Hidden,
}

/// Why credentials could not be read. Names variables and files, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("environment variable `{0}` is not set, not valid UTF-8, or empty")]
    MissingEnv(String),
    #[error("cannot read the credentials file {}: {reason}", .path.display())]
    File { path: PathBuf, reason: String },
    #[error("the credentials file {} is readable by group or others (mode {mode:o}); run `chmod 600` on it", .path.display())]
    FileTooOpen { path: PathBuf, mode: u32 },
}

impl Credentials {
    pub fn new(
        api_key: impl Into<String>,
        secret: impl Into<String>,
        passphrase: impl Into<String>,
    ) -> Self {
        Self {
            api_key: api_key.into(),
            secret: Hidden(secret.into().into_bytes()),
            passphrase: Hidden(passphrase.into().into_bytes()),
        }
    }

    /// Reads the three values from the environment variables with these names.
    pub fn from_env(key: &str, secret: &str, passphrase: &str) -> Result<Self, CredentialError> {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| CredentialError::MissingEnv(name.to_string()))
        };
        Ok(Self::new(read(key)?, read(secret)?, read(passphrase)?))
    }

    /// Reads `api_key = "…"`, `api_secret = "…"` and `passphrase = "…"` lines from a file only
    /// its owner can read (on unix). Parsed by hand so no error message quotes a line.
    pub fn from_file(path: &Path) -> Result<Self, CredentialError> {
        let fail = |reason: &str| CredentialError::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| fail(&e.to_string()))?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                return Err(CredentialError::FileTooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(&e.to_string()))?;
        let (mut key, mut secret, mut passphrase) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(fail("every line must read `name = \"value\"`"));
            };
            let value = Some(value.trim().trim_matches('"').to_string());
            match name.trim() {
                "api_key" => key = value,
                "api_secret" => secret = value,
                "passphrase" => passphrase = value,
                _ => return Err(fail("allowed names: api_key, api_secret, passphrase")),
            }
        }
        match (key, secret, passphrase) {
            (Some(k), Some(s), Some(p)) if !k.is_empty() && !s.is_empty() && !p.is_empty() => {
                Ok(Self::new(k, s, p))
            }
            _ => Err(fail("needs api_key, api_secret and passphrase, none empty")),
        }
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The value of `OK-ACCESS-PASSPHRASE`; only the HTTP layer puts it in a header.
    pub(super) fn passphrase(&self) -> &str {
        std::str::from_utf8(&self.passphrase.0).unwrap_or("")
    }

    /// `OK-ACCESS-SIGN` for this pre-hash string: the only use of the secret.
    pub fn sign(&self, prehash: &str) -> String {
        signing::sign(&self.secret.0, prehash)
    }

    /// The key's first four characters, for logs and `check`.
    pub fn key_prefix(&self) -> String {
        self.api_key.chars().take(4).collect()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &format_args!("{}…", self.key_prefix()))
            .field("secret", &self.secret)
            .field("passphrase", &self.passphrase)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-SECRET-9b74c9897bac770ffc029102a200c5de";
    const CANARY_PASS: &str = "CANARY-PASS-0cc175b9c0f1b6a8";

    #[test]
    fn debug_shows_neither_secret_nor_passphrase() {
        let c = Credentials::new("37c541a1-0000-4000-8000-10fe7a038418", CANARY, CANARY_PASS);
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(!shown.contains("37c541a1-0000"), "{shown}");
        assert!(
            shown.contains("37c5…") && shown.contains("[redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn signs_the_reference_vector() {
        let c = Credentials::new("k", "22582BD0CFF14C41EDBF1AB98506286D", "Passphrase-123");
        assert_eq!(
            c.sign("2020-12-08T09:08:57.715ZGET/api/v5/account/config"),
            "Kr/8IrbDYujS4cg2KkmB+tO2HMUXxyayG6ZwNb4H/yA="
        );
        assert_eq!(c.passphrase(), "Passphrase-123");
    }

    #[test]
    fn a_missing_variable_is_named_not_quoted() {
        let error = Credentials::from_env("MG_OKX_UNSET_K", "MG_OKX_UNSET_S", "MG_OKX_UNSET_P")
            .unwrap_err();
        assert_eq!(error, CredentialError::MissingEnv("MG_OKX_UNSET_K".into()));
    }

    #[cfg(unix)]
    #[test]
    fn the_file_must_be_owner_only_and_errors_never_quote_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mg-okx-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("okx.toml");
        let text = format!(
            "api_key = \"k1\"\napi_secret = \"{CANARY}\"\npassphrase = \"{CANARY_PASS}\"\n"
        );
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            Credentials::from_file(&path),
            Err(CredentialError::FileTooOpen { mode: 0o640, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = Credentials::from_file(&path).unwrap();
        assert_eq!((c.api_key(), c.passphrase()), ("k1", CANARY_PASS));
        std::fs::write(&path, format!("{CANARY}\n")).unwrap();
        let error = Credentials::from_file(&path).unwrap_err().to_string();
        assert!(!error.contains("CANARY"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
