//! Reading API credentials and holding their secret parts.
//!
//! Why a type of its own: a secret must never reach a log line, a panic message, `Debug`
//! output or a metric (freqtrade#6016 and binance-connector-rust#91 leaked theirs through
//! `Debug`). `Hidden` holds it as bytes, shows it only as `[redacted]` and overwrites it when
//! dropped. Values come from environment variables named in the config, or from a file only
//! its owner can read. Each adapter's `Credentials` decides which values it needs and how it
//! signs; the reading and the redaction are here, once.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret value: printed as `[redacted]`, wiped on drop.
#[derive(Clone)]
pub struct Hidden(Vec<u8>);

impl Hidden {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_bytes())
    }

    /// The raw bytes, for signing or for the one header that must carry them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Hidden {
    fn drop(&mut self) {
        // Best effort without `unsafe`: `black_box` keeps the wipe from being dropped as a
        // dead store.
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// An API key and its secret, as Binance and Bybit hold them. Its `Debug` shows the key's
/// first four characters and `[redacted]`; the secret is only ever handed to a signer.
#[derive(Clone)]
pub struct KeyPair {
    api_key: String,
    secret: Hidden,
}

impl KeyPair {
    pub fn new(api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            secret: Hidden::new(secret),
        }
    }

    /// Reads the key and secret from the environment variables with these names.
    pub fn from_env(key_var: &str, secret_var: &str) -> Result<Self, CredentialError> {
        Ok(Self::new(from_env(key_var)?, from_env(secret_var)?))
    }

    /// Reads a file of two lines, `api_key = "…"` and `api_secret = "…"` (TOML). On unix the
    /// file must not be readable by group or others, as OpenSSH demands of private keys.
    pub fn from_file(path: &Path) -> Result<Self, CredentialError> {
        let [key, secret] = from_owner_only_file(
            path,
            ["api_key", "api_secret"],
            "needs both api_key and api_secret, not empty",
        )?;
        Ok(Self::new(key, secret))
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The secret, for a signer only.
    pub fn secret(&self) -> &[u8] {
        self.secret.expose()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &format_args!("{}…", key_prefix(&self.api_key)))
            .field("secret", &self.secret)
            .finish()
    }
}

/// The first four characters of a key: all that logs, `Debug` and `check` show of it.
pub fn key_prefix(api_key: &str) -> String {
    api_key.chars().take(4).collect()
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

impl CredentialError {
    /// Of the `(config key, variable)` pairs a config named, the key that named the variable
    /// this error is about, so a missing passphrase is reported under `passphrase_env` and not
    /// under `api_key_env`; the first key when the error is not about a variable.
    pub fn config_key<'k>(&self, named: &[(&'k str, &str)]) -> &'k str {
        let var = match self {
            CredentialError::MissingEnv(var) | CredentialError::EmptyEnv(var) => Some(var),
            _ => None,
        };
        named
            .iter()
            .find(|(_, named_var)| Some(&named_var.to_string()) == var)
            .or(named.first())
            .map_or("", |(key, _)| key)
    }
}

/// The trimmed value of the environment variable `name`, which must be set and not empty.
pub fn from_env(name: &str) -> Result<String, CredentialError> {
    let value = std::env::var(name).map_err(|_| CredentialError::MissingEnv(name.to_string()))?;
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(CredentialError::EmptyEnv(name.to_string()));
    }
    Ok(value)
}

/// Reads `name = "value"` lines (a TOML subset) for exactly the `names` given and returns
/// their values in that order. On unix the file must not be readable by group or others, as
/// OpenSSH demands of private keys. `incomplete` is the message when a name is missing or
/// empty.
pub fn from_owner_only_file<const N: usize>(
    path: &Path,
    names: [&str; N],
    incomplete: &str,
) -> Result<[String; N], CredentialError> {
    let file_error = |reason: &str| file_error(path, reason);
    check_owner_only(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| file_error(&e.to_string()))?;
    // Parse by hand rather than through a TOML error message: those quote the offending
    // line, and that line may be the secret.
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(file_error("every line must read `name = \"value\"`"));
        };
        let Some(slot) = names.iter().position(|n| *n == name.trim()) else {
            return Err(file_error(&format!("allowed names: {}", names.join(", "))));
        };
        values[slot] = Some(value.trim().trim_matches('"').to_string());
    }
    if values
        .iter()
        .any(|v| v.as_deref().is_none_or(str::is_empty))
    {
        return Err(file_error(incomplete));
    }
    Ok(values.map(Option::unwrap_or_default))
}

/// Reads a file holding one bare secret value on one line — what systemd's `LoadCredential=`
/// provides (`/run/credentials/<unit>/NAME`). The value is trimmed and must not be empty nor
/// span lines. On unix the file must not be readable by group or others. Errors name the file,
/// never its contents.
pub fn secret_from_owner_only_file(path: &Path) -> Result<Hidden, CredentialError> {
    check_owner_only(path)?;
    let mut bytes = std::fs::read(path).map_err(|e| file_error(path, &e.to_string()))?;
    let value = match std::str::from_utf8(&bytes) {
        Ok(text) => single_line_value(text).map(Hidden::new),
        Err(_) => Err("is not valid UTF-8"),
    };
    // The read buffer held the secret too; `Hidden` wipes its own copy, this wipes the other.
    bytes.fill(0);
    std::hint::black_box(&bytes);
    value.map_err(|reason| file_error(path, reason))
}

/// The trimmed value of a one-value file, or why it is not one (never quoting it).
fn single_line_value(text: &str) -> Result<&str, &'static str> {
    let value = text.trim();
    if value.is_empty() {
        return Err("is empty; it must hold the secret value on one line");
    }
    if value.contains(['\n', '\r']) {
        return Err("has more than one line; it must hold only the secret value, on one line");
    }
    Ok(value)
}

fn file_error(path: &Path, reason: &str) -> CredentialError {
    CredentialError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// On unix, refuses a file that group or others may read, as OpenSSH does for private keys.
fn check_owner_only(path: &Path) -> Result<(), CredentialError> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    check_owner_only_beside(path, credentials.as_deref())
}

/// The owner-only rule, with one exception: a file directly inside the unit's systemd
/// credentials directory (`$CREDENTIALS_DIRECTORY`, from `LoadCredential=`). Newer systemd
/// keeps those copies root-owned, mode 0400, and grants the service user read access by a
/// POSIX ACL entry, which `stat` shows as the ACL mask in the group bits (0440) although
/// only that user can read it. There a file passes when no one else may read it and no one
/// but its owner may write it (no "other" bits, no group write).
fn check_owner_only_beside(path: &Path, credentials: Option<&Path>) -> Result<(), CredentialError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).map_err(|e| file_error(path, &e.to_string()))?;
        let mode = metadata.permissions().mode() & 0o777;
        let forbidden = if is_systemd_credential(path, credentials) {
            0o027
        } else {
            0o077
        };
        if mode & forbidden != 0 {
            return Err(CredentialError::FileTooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, credentials);
    Ok(())
}

/// `path` is a file directly inside the credentials directory (both resolved).
fn is_systemd_credential(path: &Path, credentials: Option<&Path>) -> bool {
    let Some(directory) = credentials.and_then(|d| d.canonicalize().ok()) else {
        return false;
    };
    path.canonicalize()
        .ok()
        .and_then(|file| file.parent().map(Path::to_path_buf))
        .is_some_and(|parent| parent == directory)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Newer systemd shows its credential copies as 0440 (an ACL mask): accepted there, and
    /// only there; a group-writable or world-readable file is refused everywhere.
    #[cfg(unix)]
    #[test]
    fn a_systemd_credential_with_an_acl_mask_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("mg-cred-dir-{}", std::process::id()));
        let credentials = root.join("credentials");
        std::fs::create_dir_all(&credentials).unwrap();
        let inside = credentials.join("telegram-token");
        let outside = root.join("telegram-token");
        for (file, mode) in [(&inside, 0o440), (&outside, 0o440)] {
            std::fs::write(file, "x").unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        assert!(check_owner_only_beside(&inside, Some(&credentials)).is_ok());
        assert!(check_owner_only_beside(&inside, None).is_err());
        assert!(check_owner_only_beside(&outside, Some(&credentials)).is_err());
        for mode in [0o460, 0o444] {
            std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                check_owner_only_beside(&inside, Some(&credentials)).is_err(),
                "{mode:o}"
            );
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    const CANARY: &str = "CANARY-COMMON-45c48cce2e2d7fbdea1afc51c7c6ad26";

    #[test]
    fn hidden_shows_nothing_and_key_prefix_four_characters() {
        let hidden = Hidden::new(CANARY);
        let shown = format!("{hidden:?} {hidden:#?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert_eq!(hidden.expose(), CANARY.as_bytes());
        assert_eq!(key_prefix("AbCdEfGh"), "AbCd");
        assert_eq!(key_prefix("ab"), "ab");
    }

    #[test]
    fn a_missing_variable_is_named_not_quoted() {
        assert_eq!(
            from_env("MARGINGUARD_TEST_COMMON_UNSET"),
            Err(CredentialError::MissingEnv(
                "MARGINGUARD_TEST_COMMON_UNSET".into()
            ))
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_file_must_be_owner_only_and_complete_and_errors_never_quote_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mg-common-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.toml");
        let names = ["api_key", "api_secret"];
        std::fs::write(
            &path,
            format!("# k\napi_key = \"k1\"\napi_secret = \"{CANARY}\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        assert!(matches!(
            from_owner_only_file(&path, names, "incomplete"),
            Err(CredentialError::FileTooOpen { mode: 0o604, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            from_owner_only_file(&path, names, "incomplete").unwrap(),
            ["k1", CANARY]
        );
        std::fs::write(&path, "api_key = \"k1\"\napi_secret = \"\"\n").unwrap();
        let error = from_owner_only_file(&path, names, "incomplete").unwrap_err();
        assert!(error.to_string().ends_with(": incomplete"), "{error}");
        std::fs::write(&path, format!("{CANARY}\n")).unwrap();
        let error = from_owner_only_file(&path, names, "incomplete").unwrap_err();
        assert!(!error.to_string().contains("CANARY"), "{error}");
        std::fs::write(&path, format!("other = \"{CANARY}\"\n")).unwrap();
        let error = from_owner_only_file(&path, names, "incomplete").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("allowed names: api_key, api_secret"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    #[cfg(unix)]
    #[test]
    fn a_single_secret_file_is_owner_only_one_line_and_never_quoted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mg-common-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("TOKEN");
        let write = |text: &str, mode: u32| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write(&format!("{CANARY}\n"), 0o640);
        let error = secret_from_owner_only_file(&path).unwrap_err();
        assert!(matches!(
            error,
            CredentialError::FileTooOpen { mode: 0o640, .. }
        ));
        write(&format!("  {CANARY}\n"), 0o400);
        let secret = secret_from_owner_only_file(&path).unwrap();
        assert_eq!(secret.expose(), CANARY.as_bytes());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        for (text, says) in [
            (" \n".to_string(), "is empty"),
            (format!("{CANARY}\n{CANARY}\n"), "more than one line"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = secret_from_owner_only_file(&path).unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
            assert!(!error.contains("CANARY"), "{error}");
        }
        std::fs::write(&path, [0xff, 0xfe, b'C']).unwrap();
        let error = secret_from_owner_only_file(&path).unwrap_err().to_string();
        assert!(error.contains("UTF-8"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            secret_from_owner_only_file(&path).is_err(),
            "a missing file"
        );
    }
}
