//! Numbers from a venue's JSON, read from the raw token into `Decimal`, never through `f64`.
//!
//! Venues send most figures as strings (`"23.72469206"`) and some as JSON numbers; both read
//! the same. An empty string or `null` is *absent* — an error from `decimal`, `None` from
//! `optional` — never zero.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::money::parse_decimal;

/// A numeric field, kept as its raw JSON token until it is read.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Num(Box<RawValue>);

impl Num {
    /// `"1.5"` and `1.5` alike; `""` and `null` are absent (an error).
    pub fn decimal(&self, field: &str) -> Result<Decimal, String> {
        let token = self.0.get().trim();
        let text = if token.starts_with('"') {
            serde_json::from_str::<String>(token).map_err(|e| format!("{field}: {e}"))?
        } else if token == "null" {
            String::new()
        } else {
            token.to_string()
        };
        parse_decimal(&text).map_err(|e| format!("{field}: {e}"))
    }

    /// `None` for `""`/`null`; an error for anything else that is not a decimal.
    pub fn optional(&self, field: &str) -> Result<Option<Decimal>, String> {
        match self.0.get().trim() {
            r#""""# | "null" => Ok(None),
            _ => self.decimal(field).map(Some),
        }
    }

    pub fn integer(&self, field: &str) -> Result<i64, String> {
        let value = self.decimal(field)?;
        if !value.fract().is_zero() {
            return Err(format!("{field}: `{value}` is not a whole number"));
        }
        i64::try_from(value).map_err(|_| format!("{field}: `{value}` is out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(token: &str) -> Num {
        serde_json::from_str(token).unwrap()
    }

    #[test]
    fn strings_and_numbers_read_alike_and_empty_is_absent() {
        assert_eq!(num(r#""1.5""#).decimal("f").unwrap(), Decimal::new(15, 1));
        assert_eq!(num("1.5").decimal("f").unwrap(), Decimal::new(15, 1));
        assert!(num(r#""""#).decimal("f").is_err());
        assert!(num("null").decimal("f").is_err());
        assert_eq!(num(r#""""#).optional("f").unwrap(), None);
        assert_eq!(num("42").integer("f").unwrap(), 42);
        assert!(num("4.2")
            .integer("f")
            .unwrap_err()
            .contains("not a whole number"));
    }
}
