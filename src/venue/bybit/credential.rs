//! The Bybit API key and its secret.
//!
//! The secret is a `common::credential::Hidden`: used only to sign, shown nowhere (`Debug`
//! prints the first four characters of the key and `[redacted]`), overwritten on drop. Reading
//! from the environment or an owner-only file is shared (`venue::common::credential`); what is
//! Bybit's here are the signatures: REST requests and the private stream's auth.

use std::path::Path;

use super::signing;
use crate::venue::common::credential::KeyPair;

pub use crate::venue::common::credential::CredentialError;

/// The key pair, with Bybit's two signatures (REST, stream auth) as the only uses of the secret.
#[derive(Clone, Debug)]
pub struct Credentials(KeyPair);

impl Credentials {
    pub fn new(api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self(KeyPair::new(api_key, secret))
    }

    pub fn from_env(key_var: &str, secret_var: &str) -> Result<Self, CredentialError> {
        KeyPair::from_env(key_var, secret_var).map(Self)
    }

    pub fn from_file(path: &Path) -> Result<Self, CredentialError> {
        KeyPair::from_file(path).map(Self)
    }

    pub fn api_key(&self) -> &str {
        self.0.api_key()
    }

    /// `X-BAPI-SIGN` for one request.
    pub fn sign(&self, timestamp_ms: i64, recv_window_ms: u128, payload: &str) -> String {
        let message = signing::presign(timestamp_ms, self.0.api_key(), recv_window_ms, payload);
        signing::hmac_hex(self.0.secret(), &message)
    }

    /// The signature of a private-stream auth expiring at `expires_ms` (server ms): the
    /// secret's other use.
    pub fn sign_stream_auth(&self, expires_ms: i64) -> String {
        signing::hmac_hex(self.0.secret(), &super::stream::auth_presign(expires_ms))
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
        // Vector E (bybit.md §2.3): the private stream's auth.
        assert_eq!(
            credentials.sign_stream_auth(1_700_000_001_000),
            "fe14fed8adc891bf6a3d7c60ca81e3080a316580df92a72c4902f98cd5c1fa61"
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
