//! The API key and its secret.
//!
//! The secret never reaches a log line, a panic message, `Debug` output or a metric: it is a
//! `common::credential::Hidden`, used only to sign. Reading from the environment or an
//! owner-only file is shared with the other adapters (`venue::common::credential`); what is
//! Binance's here is the signature.

use std::path::Path;

use super::signing;
use crate::venue::common::credential::KeyPair;

pub use crate::venue::common::credential::CredentialError;

/// The key pair, with Binance's signature as its only use of the secret.
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

    /// The hex signature of `payload`: the only use of the secret.
    pub fn sign(&self, payload: &str) -> String {
        signing::sign(self.0.secret(), payload)
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
