//! The OKX API key, its secret and its passphrase.
//!
//! Both the secret and the passphrase are secrets: the passphrase travels in plain text in
//! `OK-ACCESS-PASSPHRASE`, so anyone who reads it and the secret can sign. Neither may reach a
//! log line, a panic, `Debug` or `Display`. Both are `common::credential::Hidden` (prints
//! `[redacted]`, wiped on drop); the key itself is shown by its first four characters. Reading
//! from the environment or an owner-only file is shared (`venue::common::credential`); what is
//! OKX's here is the third value and the signature.

use std::fmt;
use std::path::Path;

use super::signing;
use crate::venue::common::credential::{self as common, Hidden};

pub use crate::venue::common::credential::CredentialError;

#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    secret: Hidden,
    passphrase: Hidden,
}

impl Credentials {
    pub fn new(
        api_key: impl Into<String>,
        secret: impl Into<String>,
        passphrase: impl Into<String>,
    ) -> Self {
        Self {
            api_key: api_key.into(),
            secret: Hidden::new(secret),
            passphrase: Hidden::new(passphrase),
        }
    }

    /// Reads the three values from the environment variables with these names.
    pub fn from_env(key: &str, secret: &str, passphrase: &str) -> Result<Self, CredentialError> {
        Ok(Self::new(
            common::from_env(key)?,
            common::from_env(secret)?,
            common::from_env(passphrase)?,
        ))
    }

    /// Reads `api_key = "…"`, `api_secret = "…"` and `passphrase = "…"` lines from a file only
    /// its owner can read (on unix). Parsed by hand so no error message quotes a line.
    pub fn from_file(path: &Path) -> Result<Self, CredentialError> {
        let [key, secret, passphrase] = common::from_owner_only_file(
            path,
            ["api_key", "api_secret", "passphrase"],
            "needs api_key, api_secret and passphrase, none empty",
        )?;
        Ok(Self::new(key, secret, passphrase))
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The value of `OK-ACCESS-PASSPHRASE`; only the HTTP layer puts it in a header.
    pub(super) fn passphrase(&self) -> &str {
        std::str::from_utf8(self.passphrase.expose()).unwrap_or("")
    }

    /// `OK-ACCESS-SIGN` for this pre-hash string: the only use of the secret.
    pub fn sign(&self, prehash: &str) -> String {
        signing::sign(self.secret.expose(), prehash)
    }

    /// The key's first four characters, for logs and `check`.
    pub fn key_prefix(&self) -> String {
        common::key_prefix(&self.api_key)
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
