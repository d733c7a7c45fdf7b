//! The Bybit API key and its secret.
//!
//! The secret is a `common::credential::Hidden`: used only to sign, shown nowhere (`Debug`
//! prints the first four characters of the key and `[redacted]`), overwritten on drop. Reading
//! from the environment or an owner-only file is shared (`venue::common::credential`); what is
//! Bybit's here is the set of values and the signature.

use std::fmt;
use std::path::Path;

use super::signing;
use crate::venue::common::credential::{self as common, Hidden};

pub use crate::venue::common::credential::CredentialError;

#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    secret: Hidden,
}

impl Credentials {
    pub fn new(api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            secret: Hidden::new(secret),
        }
    }

    pub fn from_env(key_var: &str, secret_var: &str) -> Result<Self, CredentialError> {
        Ok(Self::new(
            common::from_env(key_var)?,
            common::from_env(secret_var)?,
        ))
    }

    /// `api_key = "…"` and `api_secret = "…"` lines; the file must be mode 0600 (or stricter).
    pub fn from_file(path: &Path) -> Result<Self, CredentialError> {
        let [key, secret] = common::from_owner_only_file(
            path,
            ["api_key", "api_secret"],
            "needs both api_key and api_secret, not empty",
        )?;
        Ok(Self::new(key, secret))
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// `X-BAPI-SIGN` for one request: the only use of the secret.
    pub fn sign(&self, timestamp_ms: i64, recv_window_ms: u128, payload: &str) -> String {
        let message = signing::presign(timestamp_ms, &self.api_key, recv_window_ms, payload);
        signing::hmac_hex(self.secret.expose(), &message)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "api_key",
                &format_args!("{}…", common::key_prefix(&self.api_key)),
            )
            .field("secret", &self.secret)
            .finish()
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
