//! The `[[notifiers]]` tables: which receiver, which credentials, which alerts.
//!
//! ```toml
//! [[notifiers]]
//! name = "phone"                 # letters, digits, - and _; a metric label
//! kind = "telegram"              # telegram | discord | webhook
//! bot_token_env = "MARGINGUARD_TELEGRAM_TOKEN"   # or bot_token_file = "FILE" (mode 0600)
//! chat_id = "123456789"
//! # api_url = "https://api.telegram.org"
//! # min_severity = "info"        # info | warning | critical
//! # accounts = ["main"]
//! # timeout = "10s"              # 1s..60s
//! ```
//!
//! Secrets come from an environment variable (`*_env`) or an owner-only file (`*_file`, the
//! bare value on one line, as systemd's `LoadCredential=` writes it). Errors name the key and
//! the variable or file, never the value — and never a secret URL, only what is wrong with it.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{NotifierKind, NotifierSettings, DEFAULT_TIMEOUT};
use crate::config_file::literal::DurationLit;
use crate::config_file::{relative_to, ConfigError};
use crate::operator::alert::AlertSeverity;
use crate::venue::common::credential::{self, Hidden};

/// Telegram's Bot API, when `api_url` is not given.
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";
const MIN_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// One `[[notifiers]]` table as written; `build` checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifier {
    name: Option<String>,
    kind: Option<String>,
    bot_token_env: Option<String>,
    bot_token_file: Option<String>,
    chat_id: Option<ChatIdLit>,
    api_url: Option<String>,
    webhook_url_env: Option<String>,
    webhook_url_file: Option<String>,
    url_env: Option<String>,
    url_file: Option<String>,
    hmac_secret_env: Option<String>,
    hmac_secret_file: Option<String>,
    min_severity: Option<String>,
    accounts: Option<Vec<String>>,
    timeout: Option<DurationLit>,
}

/// A chat id as written: Telegram's ids are numbers, so `chat_id = 123` is taken as readily
/// as `"123"` or `"@channel"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ChatIdLit {
    Text(String),
    Number(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Telegram,
    Discord,
    Webhook,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Telegram => "telegram",
            Kind::Discord => "discord",
            Kind::Webhook => "webhook",
        }
    }

    /// The keys only this kind takes.
    fn own_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Telegram => &["bot_token_env", "bot_token_file", "chat_id", "api_url"],
            Kind::Discord => &["webhook_url_env", "webhook_url_file"],
            Kind::Webhook => &["url_env", "url_file", "hmac_secret_env", "hmac_secret_file"],
        }
    }
}

impl RawNotifier {
    /// The validated notifier; `prefix` is where the table sits (`notifiers[0].`). Whether
    /// `name` is unique and `accounts` name configured accounts is the caller's to check.
    pub fn build(self, file: &Path, prefix: &str) -> Result<NotifierSettings, ConfigError> {
        let key = |name: &str| format!("{prefix}{name}");
        let name = self.checked_name(file, &key("name"))?;
        let kind = self.checked_kind(file, &key("kind"))?;
        self.refuse_foreign_keys(file, prefix, kind)?;
        let min_severity = self.checked_severity(file, &key("min_severity"))?;
        let accounts = self.checked_accounts(file, &key("accounts"))?;
        let timeout = checked_timeout(file, &key("timeout"), self.timeout)?;
        let kind = self.kind_settings(file, prefix, kind)?;
        Ok(NotifierSettings {
            name,
            kind,
            min_severity,
            accounts,
            timeout,
        })
    }

    fn checked_name(&self, file: &Path, key: &str) -> Result<String, ConfigError> {
        let name = self.name.as_deref().unwrap_or_default();
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if name.is_empty() || !name.chars().all(allowed) {
            return Err(ConfigError::new(
                file,
                key,
                "required: a name of letters, digits, - and _ (it is the metric label), e.g. name = \"phone\"",
            ));
        }
        Ok(name.to_string())
    }

    fn checked_kind(&self, file: &Path, key: &str) -> Result<Kind, ConfigError> {
        match self.kind.as_deref() {
            Some("telegram") => Ok(Kind::Telegram),
            Some("discord") => Ok(Kind::Discord),
            Some("webhook") => Ok(Kind::Webhook),
            Some(other) => Err(ConfigError::new(
                file,
                key,
                format!("unknown kind `{other}`; allowed: telegram, discord, webhook"),
            )),
            None => Err(ConfigError::new(
                file,
                key,
                "required; allowed: telegram, discord, webhook",
            )),
        }
    }

    /// The kind-specific keys given, by name.
    fn given_kind_keys(&self) -> [(&'static str, bool); 10] {
        [
            ("bot_token_env", self.bot_token_env.is_some()),
            ("bot_token_file", self.bot_token_file.is_some()),
            ("chat_id", self.chat_id.is_some()),
            ("api_url", self.api_url.is_some()),
            ("webhook_url_env", self.webhook_url_env.is_some()),
            ("webhook_url_file", self.webhook_url_file.is_some()),
            ("url_env", self.url_env.is_some()),
            ("url_file", self.url_file.is_some()),
            ("hmac_secret_env", self.hmac_secret_env.is_some()),
            ("hmac_secret_file", self.hmac_secret_file.is_some()),
        ]
    }

    /// A key of another kind (`chat_id` on a discord notifier) is a mistake worth naming: the
    /// operator meant something by it.
    fn refuse_foreign_keys(
        &self,
        file: &Path,
        prefix: &str,
        kind: Kind,
    ) -> Result<(), ConfigError> {
        let foreign = self
            .given_kind_keys()
            .into_iter()
            .find(|(key, given)| *given && !kind.own_keys().contains(key));
        match foreign {
            Some((foreign, _)) => Err(ConfigError::new(
                file,
                format!("{prefix}{foreign}"),
                format!(
                    "not a key of kind = \"{}\"; it takes {}",
                    kind.name(),
                    kind.own_keys().join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    fn checked_severity(&self, file: &Path, key: &str) -> Result<AlertSeverity, ConfigError> {
        let Some(raw) = self.min_severity.as_deref() else {
            return Ok(AlertSeverity::Info);
        };
        AlertSeverity::parse(raw).ok_or_else(|| {
            ConfigError::new(
                file,
                key,
                format!("unknown severity `{raw}`; allowed: info, warning, critical"),
            )
        })
    }

    fn checked_accounts(&self, file: &Path, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(accounts) = &self.accounts else {
            return Ok(None);
        };
        if accounts.is_empty() {
            return Err(ConfigError::new(
                file,
                key,
                "an empty list would pass no account's alerts; leave the key out for every account's",
            ));
        }
        if accounts.iter().any(|a| a.trim().is_empty()) {
            return Err(ConfigError::new(
                file,
                key,
                "account names must not be empty",
            ));
        }
        Ok(Some(accounts.clone()))
    }

    /// The receiver and its credentials, read from the environment or from files.
    fn kind_settings(
        &self,
        file: &Path,
        prefix: &str,
        kind: Kind,
    ) -> Result<NotifierKind, ConfigError> {
        let source = |env, path| SecretSource::new(file, prefix, env, path);
        match kind {
            Kind::Telegram => {
                let token = source(
                    ("bot_token_env", &self.bot_token_env),
                    ("bot_token_file", &self.bot_token_file),
                );
                Ok(NotifierKind::Telegram {
                    api_url: telegram_api_url(
                        file,
                        &format!("{prefix}api_url"),
                        self.api_url.as_deref(),
                    )?,
                    bot_token: token.required()?.0,
                    chat_id: self.checked_chat_id(file, &format!("{prefix}chat_id"))?,
                })
            }
            Kind::Discord => {
                let url = source(
                    ("webhook_url_env", &self.webhook_url_env),
                    ("webhook_url_file", &self.webhook_url_file),
                );
                Ok(NotifierKind::Discord {
                    webhook_url: url.required_url()?,
                })
            }
            Kind::Webhook => {
                let url = source(("url_env", &self.url_env), ("url_file", &self.url_file));
                let hmac = source(
                    ("hmac_secret_env", &self.hmac_secret_env),
                    ("hmac_secret_file", &self.hmac_secret_file),
                );
                Ok(NotifierKind::Webhook {
                    url: url.required_url()?,
                    hmac_secret: hmac.optional()?.map(|(secret, _)| secret),
                })
            }
        }
    }

    fn checked_chat_id(&self, file: &Path, key: &str) -> Result<String, ConfigError> {
        let chat_id = match &self.chat_id {
            Some(ChatIdLit::Text(text)) => text.trim().to_string(),
            Some(ChatIdLit::Number(number)) => number.to_string(),
            None => String::new(),
        };
        if chat_id.is_empty() {
            return Err(ConfigError::new(
                file,
                key,
                "required for kind = \"telegram\": the chat to write to, e.g. chat_id = \"123456789\"",
            ));
        }
        Ok(chat_id)
    }
}

/// `timeout` for each request: 1 s to 60 s, 10 s when not given.
fn checked_timeout(
    file: &Path,
    key: &str,
    given: Option<DurationLit>,
) -> Result<Duration, ConfigError> {
    let timeout = given.map_or(DEFAULT_TIMEOUT, |d| d.0);
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
        return Err(ConfigError::new(file, key, "must be between 1s and 60s"));
    }
    Ok(timeout)
}

/// Telegram's API base (not secret, so quoted in errors), without a trailing slash.
fn telegram_api_url(file: &Path, key: &str, given: Option<&str>) -> Result<String, ConfigError> {
    let Some(raw) = given else {
        return Ok(TELEGRAM_API_URL.to_string());
    };
    let refuse = |why: &str| ConfigError::new(file, key, format!("`{raw}` {why}"));
    check_url(raw).map_err(|why| refuse(&why))?;
    if raw.contains(['?', '#']) {
        return Err(refuse(
            "must be the base only: `/bot<token>/sendMessage` is appended",
        ));
    }
    Ok(raw.trim().trim_end_matches('/').to_string())
}

/// Where a secret comes from: the `(key, variable)` and `(key, file)` pairs a table names.
pub(crate) struct SecretSource<'a> {
    pub file: &'a Path,
    pub prefix: &'a str,
    pub env: (&'static str, Option<&'a str>),
    pub path: (&'static str, Option<&'a str>),
}

impl<'a> SecretSource<'a> {
    /// The source named by the keys `env.0` (a variable) and `path.0` (a file), each with
    /// what the table gave for it.
    pub fn new(
        file: &'a Path,
        prefix: &'a str,
        env: (&'static str, &'a Option<String>),
        path: (&'static str, &'a Option<String>),
    ) -> Self {
        SecretSource {
            file,
            prefix,
            env: (env.0, env.1.as_deref()),
            path: (path.0, path.1.as_deref()),
        }
    }

    /// The secret and the full key it came from; an error naming both keys when neither is
    /// given.
    pub fn required(&self) -> Result<(Hidden, String), ConfigError> {
        self.optional()?.ok_or_else(|| {
            let (env_key, _) = self.env;
            let (file_key, _) = self.path;
            ConfigError::new(
                self.file,
                self.key(env_key),
                format!("required: {env_key} = \"VARIABLE\" or {file_key} = \"FILE\" (mode 0600)"),
            )
        })
    }

    /// The secret, when one of the two keys is given; an error when both are.
    pub fn optional(&self) -> Result<Option<(Hidden, String)>, ConfigError> {
        match (self.env, self.path) {
            ((env_key, Some(_)), (file_key, Some(_))) => Err(ConfigError::new(
                self.file,
                self.key(env_key),
                format!("give either {env_key} or {file_key}, not both"),
            )),
            ((env_key, Some(variable)), _) => {
                let key = self.key(env_key);
                let value = credential::from_env(variable)
                    .map_err(|e| ConfigError::new(self.file, &key, e.to_string()))?;
                Ok(Some((Hidden::new(value), key)))
            }
            (_, (file_key, Some(path))) => {
                let key = self.key(file_key);
                let secret = credential::secret_from_owner_only_file(&relative_to(self.file, path))
                    .map_err(|e| ConfigError::new(self.file, &key, e.to_string()))?;
                Ok(Some((secret, key)))
            }
            (_, (_, None)) => Ok(None),
        }
    }

    /// A required secret that is a URL (a webhook, the heartbeat), checked without being
    /// quoted: the URL is the credential.
    pub fn required_url(&self) -> Result<Hidden, ConfigError> {
        let (url, key) = self.required()?;
        let checked = std::str::from_utf8(url.expose())
            .map_err(|_| "is not valid UTF-8".to_string())
            .and_then(check_url);
        match checked {
            Ok(()) => Ok(url),
            Err(why) => Err(ConfigError::new(
                self.file,
                key,
                format!("the URL it names {why} (the URL is not shown: it is a secret)"),
            )),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// Whether `raw` is a URL alerts may go to: `https://` anywhere, `http://` only to this
/// machine (a test receiver, a local relay). The reason names the scheme, never the URL.
fn check_url(raw: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if local => Ok(()),
        "http" => {
            Err("uses http:// to a host other than 127.0.0.1/localhost/[::1]; use https://".into())
        }
        scheme => Err(format!(
            "has the scheme `{scheme}`; use https:// (or http:// to 127.0.0.1/localhost)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const CANARY: &str = "CANARY-NOTIFY-config-7d1f0b";

    fn file() -> PathBuf {
        PathBuf::from("/etc/marginguard/config.toml")
    }

    fn build(toml_text: &str) -> Result<NotifierSettings, ConfigError> {
        let raw: RawNotifier = toml::from_str(toml_text).expect("the table parses");
        raw.build(&file(), "notifiers[0].")
    }

    fn error_of(toml_text: &str) -> ConfigError {
        build(toml_text).expect_err("refused")
    }

    /// Sets `name` to `value` for this test process; names are unique per test.
    fn set_env(name: &str, value: &str) -> String {
        std::env::set_var(name, value);
        name.to_string()
    }

    #[test]
    fn a_telegram_notifier_builds_with_defaults() {
        let var = set_env("MG_NOTIFY_CFG_TG_TOKEN", CANARY);
        let built = build(&format!(
            "name = \"phone\"\nkind = \"telegram\"\nbot_token_env = \"{var}\"\nchat_id = 123456789\n"
        ))
        .unwrap();
        assert_eq!(built.name, "phone");
        assert_eq!(built.min_severity, AlertSeverity::Info);
        assert_eq!(built.timeout, DEFAULT_TIMEOUT);
        assert_eq!(built.accounts, None);
        match &built.kind {
            NotifierKind::Telegram {
                api_url,
                bot_token,
                chat_id,
            } => {
                assert_eq!(api_url, TELEGRAM_API_URL);
                assert_eq!(bot_token.expose(), CANARY.as_bytes());
                assert_eq!(chat_id, "123456789");
            }
            other => panic!("not telegram: {other:?}"),
        }
        assert!(!format!("{built:?}").contains("CANARY"));
    }

    #[test]
    fn each_error_names_its_key() {
        let token = set_env("MG_NOTIFY_CFG_ERR_TOKEN", CANARY);
        let hook = set_env(
            "MG_NOTIFY_CFG_ERR_HOOK",
            "https://discord.example/api/webhooks/1/x",
        );
        let telegram = format!("name = \"p\"\nkind = \"telegram\"\nbot_token_env = \"{token}\"\n");
        let discord = format!("name = \"t\"\nkind = \"discord\"\nwebhook_url_env = \"{hook}\"\n");
        let cases = [
            ("kind = \"discord\"\n".to_string(), "notifiers[0].name"),
            (
                "name = \"a b\"\nkind = \"discord\"\n".to_string(),
                "notifiers[0].name",
            ),
            ("name = \"a\"\n".to_string(), "notifiers[0].kind"),
            (
                "name = \"a\"\nkind = \"slack\"\n".to_string(),
                "notifiers[0].kind",
            ),
            (telegram.clone(), "notifiers[0].chat_id"),
            (
                format!("{telegram}chat_id = \"  \"\n"),
                "notifiers[0].chat_id",
            ),
            (
                format!("{telegram}chat_id = \"1\"\napi_url = \"http://tg.example\"\n"),
                "notifiers[0].api_url",
            ),
            (
                format!("{telegram}chat_id = \"1\"\napi_url = \"https://tg.example/?x=1\"\n"),
                "notifiers[0].api_url",
            ),
            (
                "name = \"p\"\nkind = \"telegram\"\nchat_id = \"1\"\n".to_string(),
                "notifiers[0].bot_token_env",
            ),
            (
                format!("{telegram}chat_id = \"1\"\nbot_token_file = \"t\"\n"),
                "notifiers[0].bot_token_env",
            ),
            (
                format!("{discord}chat_id = \"1\"\n"),
                "notifiers[0].chat_id",
            ),
            (
                format!("{discord}hmac_secret_env = \"X\"\n"),
                "notifiers[0].hmac_secret_env",
            ),
            (
                format!("{discord}min_severity = \"loud\"\n"),
                "notifiers[0].min_severity",
            ),
            (format!("{discord}accounts = []\n"), "notifiers[0].accounts"),
            (
                format!("{discord}timeout = \"500ms\"\n"),
                "notifiers[0].timeout",
            ),
            (
                format!("{discord}timeout = \"2m\"\n"),
                "notifiers[0].timeout",
            ),
            (
                "name = \"t\"\nkind = \"discord\"\nwebhook_url_env = \"MG_NOTIFY_CFG_UNSET\"\n"
                    .to_string(),
                "notifiers[0].webhook_url_env",
            ),
            (
                "name = \"w\"\nkind = \"webhook\"\n".to_string(),
                "notifiers[0].url_env",
            ),
        ];
        for (table, key) in cases {
            let error = error_of(&table);
            assert_eq!(error.key, key, "{table}: {error}");
            assert!(!error.to_string().contains("CANARY"), "{error}");
        }
    }

    #[test]
    fn secret_urls_are_checked_but_never_quoted() {
        let plain = set_env(
            "MG_NOTIFY_CFG_PLAIN",
            &format!("http://hooks.example/{CANARY}"),
        );
        let ftp = set_env(
            "MG_NOTIFY_CFG_FTP",
            &format!("ftp://hooks.example/{CANARY}"),
        );
        let junk = set_env("MG_NOTIFY_CFG_JUNK", &format!("not a url {CANARY}"));
        for (var, says) in [(plain, "http://"), (ftp, "`ftp`"), (junk, "not a URL")] {
            let error = error_of(&format!(
                "name = \"w\"\nkind = \"webhook\"\nurl_env = \"{var}\"\n"
            ));
            assert_eq!(error.key, "notifiers[0].url_env");
            let text = error.to_string();
            assert!(text.contains(says), "{text}");
            assert!(
                !text.contains("CANARY") && !text.contains("hooks.example"),
                "{text}"
            );
        }
        let local = set_env("MG_NOTIFY_CFG_LOCAL", "http://127.0.0.1:9/hook");
        let secret = set_env("MG_NOTIFY_CFG_HMAC", CANARY);
        let built = build(&format!(
            "name = \"w\"\nkind = \"webhook\"\nurl_env = \"{local}\"\nhmac_secret_env = \"{secret}\"\nmin_severity = \"critical\"\naccounts = [\"main\"]\ntimeout = \"5s\"\n"
        ))
        .unwrap();
        assert_eq!(built.min_severity, AlertSeverity::Critical);
        assert_eq!(built.accounts, Some(vec!["main".to_string()]));
        assert_eq!(built.timeout, Duration::from_secs(5));
        assert!(matches!(
            built.kind,
            NotifierKind::Webhook {
                hmac_secret: Some(_),
                ..
            }
        ));
        assert!(!format!("{built:?}").contains("CANARY"));
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_is_read_relative_to_the_config() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mg-notify-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("discord");
        std::fs::write(&token, "https://discord.example/api/webhooks/1/tok\n").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let raw: RawNotifier =
            toml::from_str("name = \"t\"\nkind = \"discord\"\nwebhook_url_file = \"discord\"\n")
                .unwrap();
        let built = raw
            .build(&dir.join("config.toml"), "notifiers[1].")
            .unwrap();
        assert!(matches!(built.kind, NotifierKind::Discord { .. }));
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
        let raw: RawNotifier =
            toml::from_str("name = \"t\"\nkind = \"discord\"\nwebhook_url_file = \"discord\"\n")
                .unwrap();
        let error = raw
            .build(&dir.join("config.toml"), "notifiers[1].")
            .unwrap_err();
        assert_eq!(error.key, "notifiers[1].webhook_url_file");
        assert!(error.message.contains("chmod 600"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_by_the_raw_table() {
        let parsed =
            toml::from_str::<RawNotifier>("name = \"a\"\nkind = \"discord\"\ncolour = \"red\"\n");
        assert!(parsed.unwrap_err().to_string().contains("colour"));
    }
}
