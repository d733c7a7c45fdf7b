//! What every configuration-like file shares — the app config, strategies, scenarios and each
//! venue's `[accounts.<venue>]` table: the error that names file and key, the TOML loader,
//! paths relative to the file, the literal types, and the caps table.
//!
//! A leaf: it knows no venue and no config shape, so `config` may build venue settings and
//! the venues' own config modules may use these without the two depending on each other.

pub mod literal;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::core::Caps;
use literal::{DurationLit, MoneyLit};

/// A configuration problem: which file, which key, what is wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

impl ConfigError {
    pub fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Reads and deserializes one TOML file, mapping serde's errors to the key they are about.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, "", format!("cannot read the file: {e}")))?;
    toml::from_str(&source).map_err(|e| {
        let key = e
            .span()
            .map(|span| key_at(&source, span.start))
            .unwrap_or_default();
        ConfigError::new(path, key, e.message().to_string())
    })
}

/// The dotted key at a byte offset: the nearest `[table]` header above it plus the key on
/// its line. Good enough to point a person at the right line; the line number is added too.
fn key_at(source: &str, offset: usize) -> String {
    let before = &source[..offset.min(source.len())];
    let line_number = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = source[line_start..].lines().next().unwrap_or("");
    let header = before[..line_start]
        .lines()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            l.starts_with('[')
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        })
        .unwrap_or_default();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().to_string())
        .unwrap_or_default();
    let dotted = match (header.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => header,
        (false, false) => format!("{header}.{key}"),
    };
    if dotted.is_empty() {
        format!("line {line_number}")
    } else {
        format!("{dotted} (line {line_number})")
    }
}

/// Resolves a path written in a config file relative to that file's folder.
pub fn relative_to(file: &Path, written: &str) -> PathBuf {
    let written = Path::new(written);
    if written.is_absolute() {
        return written.to_path_buf();
    }
    file.parent().unwrap_or(Path::new(".")).join(written)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCaps {
    pub max_per_rescue: MoneyLit,
    pub max_per_day: MoneyLit,
    pub keep_at_least: Option<MoneyLit>,
    pub cooldown: Option<DurationLit>,
}

impl RawCaps {
    pub fn build(&self, file: &Path, prefix: &str) -> Result<Caps, ConfigError> {
        let caps = Caps {
            max_per_rescue: self.max_per_rescue.0,
            max_per_day: self.max_per_day.0,
            keep_at_least: self.keep_at_least.map(|m| m.0).unwrap_or_default(),
            cooldown: self.cooldown.map(|d| d.0).unwrap_or(Duration::ZERO),
        };
        if caps.max_per_rescue.is_zero() {
            return Err(ConfigError::new(
                file,
                format!("{prefix}max_per_rescue"),
                "must be above 0 (it is the most one rescue may move)",
            ));
        }
        if caps.max_per_day < caps.max_per_rescue {
            return Err(ConfigError::new(
                file,
                format!("{prefix}max_per_day"),
                format!(
                    "must be at least max_per_rescue ({}), got {}",
                    caps.max_per_rescue, caps.max_per_day
                ),
            ));
        }
        Ok(caps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_at_names_table_and_key() {
        let src =
            "dry_run = true\n[[accounts]]\nname = \"a\"\n[accounts.caps]\nmax_per_rescue = 1.5\n";
        let offset = src.find("1.5").unwrap();
        assert_eq!(key_at(src, offset), "accounts.caps.max_per_rescue (line 5)");
    }
}
