//! Values as users write them in TOML: money, ratios, durations.
//!
//! Why custom types: TOML floats are binary. Money written as `1.1` would pass through `f64`,
//! so money must be a string or a whole number. Ratios may be floats (`0.08`) because their
//! shortest decimal form is exactly what the user typed; they may also be `"8%"`.

use std::fmt;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::money::{parse_decimal, Ratio, Usdt};

/// An amount of money: `"500.25"` or `500`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyLit(pub Usdt);

impl<'de> Deserialize<'de> for MoneyLit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;
        impl Visitor<'_> for MoneyVisitor {
            type Value = MoneyLit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount as a string (\"500.25\") or a whole number (500)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MoneyLit, E> {
                let value = parse_decimal(v)
                    .map_err(|e| E::custom(format!("{e}; write an amount like \"500.25\"")))?;
                non_negative(value).map(|v| MoneyLit(Usdt(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MoneyLit, E> {
                non_negative(Decimal::from(v)).map(|v| MoneyLit(Usdt(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MoneyLit, E> {
                Ok(MoneyLit(Usdt(Decimal::from(v))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<MoneyLit, E> {
                Err(E::custom(format!(
                    "amounts must be a string (\"{v}\") or a whole number, so no binary float touches money"
                )))
            }
        }
        deserializer.deserialize_any(MoneyVisitor)
    }
}

fn non_negative<E: de::Error>(v: Decimal) -> Result<Decimal, E> {
    if v < Decimal::ZERO {
        Err(E::custom(format!("must not be negative, got {v}")))
    } else {
        Ok(v)
    }
}

/// A fraction: `0.08`, `"0.08"` or `"8%"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatioLit(pub Ratio);

impl<'de> Deserialize<'de> for RatioLit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RatioVisitor;
        impl Visitor<'_> for RatioVisitor {
            type Value = RatioLit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a fraction (0.08) or a percentage (\"8%\")")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RatioLit, E> {
                parse_ratio(v).map(RatioLit).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RatioLit, E> {
                // `{}` prints the shortest decimal that reads back as the same float: the
                // literal the user wrote.
                parse_ratio(&format!("{v}"))
                    .map(RatioLit)
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RatioLit, E> {
                Ok(RatioLit(Ratio(Decimal::from(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RatioLit, E> {
                Ok(RatioLit(Ratio(Decimal::from(v))))
            }
        }
        deserializer.deserialize_any(RatioVisitor)
    }
}

/// `0.08`, `8%` → 0.08.
pub fn parse_ratio(raw: &str) -> Result<Ratio, String> {
    let trimmed = raw.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(n) => (n.trim(), Decimal::ONE_HUNDRED),
        None => (trimmed, Decimal::ONE),
    };
    parse_decimal(number)
        .map(|d| Ratio(d / scale))
        .map_err(|e| format!("{e}; write a fraction like 0.08 or a percentage like \"8%\""))
}

/// A duration with a unit: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationLit(pub Duration);

impl<'de> Deserialize<'de> for DurationLit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationLit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration with a unit: \"250ms\", \"30s\", \"5m\", \"1h\" or \"1d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationLit, E> {
                parse_duration(v).map(DurationLit).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationLit, E> {
                Err(E::custom(format!(
                    "durations need a unit, e.g. \"{v}s\" (ms, s, m, h, d)"
                )))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let trimmed = raw.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("`{raw}` is not a duration; write e.g. \"30s\""))?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{raw}`; allowed: ms, s, m, h, d"
            ))
        }
    };
    count
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{raw}` is too long"))
}

/// Prints a duration the way users write it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[derive(Deserialize)]
    struct Doc {
        money: Option<MoneyLit>,
        ratio: Option<RatioLit>,
        wait: Option<DurationLit>,
    }

    fn parse(src: &str) -> Result<Doc, toml::de::Error> {
        toml::from_str(src)
    }

    #[test]
    fn money_accepts_strings_and_integers_only() {
        assert_eq!(
            parse("money = \"500.25\"").unwrap().money,
            Some(MoneyLit(Usdt(dec!(500.25))))
        );
        assert_eq!(
            parse("money = 500").unwrap().money,
            Some(MoneyLit(Usdt(dec!(500))))
        );
        let err = parse("money = 500.25").err().unwrap().to_string();
        assert!(err.contains("no binary float touches money"), "{err}");
        assert!(parse("money = \"\"").is_err(), "empty is absent, not zero");
        assert!(parse("money = -5").is_err());
    }

    #[test]
    fn ratio_reads_the_literal_exactly() {
        assert_eq!(
            parse("ratio = 0.08").unwrap().ratio,
            Some(RatioLit(Ratio(dec!(0.08))))
        );
        assert_eq!(
            parse("ratio = \"8%\"").unwrap().ratio,
            Some(RatioLit(Ratio(dec!(0.08))))
        );
        assert_eq!(
            parse("ratio = 0.1").unwrap().ratio,
            Some(RatioLit(Ratio(dec!(0.1))))
        );
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(
            parse("wait = \"90s\"").unwrap().wait,
            Some(DurationLit(Duration::from_secs(90)))
        );
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse("wait = 90").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
