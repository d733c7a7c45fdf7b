//! The API key and its secret.
//!
//! Why a type of its own: the secret must never reach a log line, a panic message, `Debug`
//! output or a metric (freqtrade#6016 and binance-connector-rust#91 leaked theirs through
//! `Debug`). It is held as bytes, shown only as `[redacted]`, used only to sign, and overwritten
//! when dropped. It comes from environment variables named in the config, or from a file only
//! its owner can read.

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
        // Best effort without `unsafe`: `black_box` keeps the wipe from being dropped as a
        // dead store.
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

    /// Reads the key and secret from the environment variables with these names.
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

    /// Reads a file of two lines, `api_key = "…"` and `api_secret = "…"` (TOML). On unix the
    /// file must not be readable by group or others, as OpenSSH demands of private keys.
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
        // Parse by hand rather than through a TOML error message: those quote the offending
        // line, and that line may be the secret.
        let mut key = None;
        let mut secret = None;
        for line in text.lines() {
            let line = line.trim();
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

    /// The hex signature of `payload`: the only use of the secret.
    pub fn sign(&self, payload: &str) -> String {
        signing::sign(&self.secret.0, payload)
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

    const CANARY: &str = "CANARY-SECRET-d41d8cd98f00b204e9800998ecf8427e";

    #[test]
    fn debug_never_shows_the_secret() {
        let credentials = Credentials::new("dbefbc809e3e83c2", CANARY);
        let shown = format!("{credentials:?} {credentials:#?}");
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(shown.contains("[redacted]"));
        assert!(shown.contains("dbef…"));
        assert!(!shown.contains("dbefbc809e3e83c2"));
    }

    #[test]
    fn signs_with_the_secret() {
        let credentials = Credentials::new(
            "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83",
            "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9",
        );
        assert_eq!(
            credentials.sign("recvWindow=5000&timestamp=1591702613943"),
            "5581570ecf76b9b74c6f1a66ef6520c2959a75c32641affb2634d655d6e64db8"
        );
    }

    #[test]
    fn missing_env_names_the_variable_only() {
        let error = Credentials::from_env(
            "MARGINGUARD_TEST_UNSET_KEY",
            "MARGINGUARD_TEST_UNSET_SECRET",
        )
        .unwrap_err();
        assert_eq!(
            error,
            CredentialError::MissingEnv("MARGINGUARD_TEST_UNSET_KEY".into())
        );
    }

    #[cfg(unix)]
    #[test]
    fn file_must_be_owner_only_and_errors_never_quote_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mg-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("binance.toml");
        std::fs::write(
            &path,
            format!("api_key = \"k1\"\napi_secret = \"{CANARY}\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Credentials::from_file(&path).unwrap_err();
        assert!(matches!(
            error,
            CredentialError::FileTooOpen { mode: 0o644, .. }
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let credentials = Credentials::from_file(&path).unwrap();
        assert_eq!(credentials.api_key(), "k1");
        // A broken line is reported without echoing it.
        std::fs::write(&path, format!("{CANARY}\n")).unwrap();
        let error = Credentials::from_file(&path).unwrap_err().to_string();
        assert!(!error.contains(CANARY), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
