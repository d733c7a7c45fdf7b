//! Money, prices and ratios as distinct types.
//!
//! Why newtypes: a `Usdt` amount must never be added to a `Price`, and a `Ratio` of 0.08 must
//! never be mistaken for 0.08 USDT. Everything is `rust_decimal::Decimal` — never `f64` —
//! because the numbers decide how much money moves.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Parses a venue or config number strictly: plain decimal notation only; an empty string is
/// "absent", which is an error here — callers that accept absence check for it first.
pub fn parse_decimal(raw: &str) -> Result<Decimal, ParseDecimalError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ParseDecimalError::Absent);
    }
    // Exponent forms are legal JSON but no venue sends them for money; refusing them keeps a
    // typo like "1e9" from becoming a billion.
    let plain = trimmed
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+');
    if !plain {
        return Err(ParseDecimalError::Invalid(raw.to_string()));
    }
    Decimal::from_str(trimmed).map_err(|_| ParseDecimalError::Invalid(raw.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDecimalError {
    #[error("value is absent (empty string)")]
    Absent,
    #[error("`{0}` is not a decimal number")]
    Invalid(String),
}

macro_rules! decimal_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Decimal);

        impl $name {
            pub const ZERO: Self = Self(Decimal::ZERO);

            pub fn new(value: Decimal) -> Self {
                Self(value)
            }

            pub fn value(self) -> Decimal {
                self.0
            }

            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }

            pub fn is_sign_negative(self) -> bool {
                self.0 < Decimal::ZERO
            }

            pub fn abs(self) -> Self {
                Self(self.0.abs())
            }

            pub fn max(self, other: Self) -> Self {
                if self >= other { self } else { other }
            }

            pub fn min(self, other: Self) -> Self {
                if self <= other { self } else { other }
            }
        }

        impl FromStr for $name {
            type Err = ParseDecimalError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                parse_decimal(raw).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

decimal_newtype!(
    /// An amount of the settlement asset (USDT). Balances, margins, transfers.
    Usdt
);
decimal_newtype!(
    /// A price in USDT per unit of the base asset (a mark, an entry).
    Price
);
decimal_newtype!(
    /// A position size in base units; positive is long, negative is short.
    Qty
);
decimal_newtype!(
    /// A dimensionless fraction: 0.08 is 8 %. Metric values and strategy levels.
    Ratio
);

impl Add for Usdt {
    type Output = Usdt;
    fn add(self, rhs: Usdt) -> Usdt {
        Usdt(self.0 + rhs.0)
    }
}

impl Sub for Usdt {
    type Output = Usdt;
    fn sub(self, rhs: Usdt) -> Usdt {
        Usdt(self.0 - rhs.0)
    }
}

impl AddAssign for Usdt {
    fn add_assign(&mut self, rhs: Usdt) {
        self.0 += rhs.0;
    }
}

impl SubAssign for Usdt {
    fn sub_assign(&mut self, rhs: Usdt) {
        self.0 -= rhs.0;
    }
}

impl Neg for Usdt {
    type Output = Usdt;
    fn neg(self) -> Usdt {
        Usdt(-self.0)
    }
}

impl Sum for Usdt {
    fn sum<I: Iterator<Item = Usdt>>(iter: I) -> Usdt {
        iter.fold(Usdt::ZERO, |acc, x| acc + x)
    }
}

/// Size × price is a signed value in USDT (negative for shorts).
impl Mul<Price> for Qty {
    type Output = Usdt;
    fn mul(self, price: Price) -> Usdt {
        Usdt(self.0 * price.0)
    }
}

impl Mul<Ratio> for Usdt {
    type Output = Usdt;
    fn mul(self, ratio: Ratio) -> Usdt {
        Usdt(self.0 * ratio.0)
    }
}

impl Add for Ratio {
    type Output = Ratio;
    fn add(self, rhs: Ratio) -> Ratio {
        Ratio(self.0 + rhs.0)
    }
}

impl Sub for Ratio {
    type Output = Ratio;
    fn sub(self, rhs: Ratio) -> Ratio {
        Ratio(self.0 - rhs.0)
    }
}

impl Usdt {
    /// Rounds up to a multiple of `step` (the venue's transfer precision). A zero step means
    /// "no rounding".
    pub fn round_up_to(self, step: Usdt) -> Usdt {
        if step.0 <= Decimal::ZERO {
            return self;
        }
        Usdt((self.0 / step.0).ceil() * step.0)
    }

    /// Rounds down to a multiple of `step`; used when rounding up would break a cap.
    pub fn round_down_to(self, step: Usdt) -> Usdt {
        if step.0 <= Decimal::ZERO {
            return self;
        }
        Usdt((self.0 / step.0).floor() * step.0)
    }
}

impl Ratio {
    /// `0.0812` → `8.12%`, for people.
    pub fn percent(self) -> String {
        format!("{:.2}%", self.0 * Decimal::ONE_HUNDRED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn empty_string_is_absent_not_zero() {
        assert_eq!(parse_decimal(""), Err(ParseDecimalError::Absent));
        assert_eq!(parse_decimal("  "), Err(ParseDecimalError::Absent));
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_decimal("12,5").is_err());
        assert!(parse_decimal("NaN").is_err());
        assert!(parse_decimal("0x10").is_err());
        assert!(parse_decimal("1e9").is_err());
    }

    #[test]
    fn venue_strings_parse_exactly() {
        assert_eq!(parse_decimal("23.72469206").unwrap(), dec!(23.72469206));
        assert_eq!(parse_decimal("-0.5").unwrap(), dec!(-0.5));
    }

    #[test]
    fn rounding_to_transfer_step() {
        assert_eq!(
            Usdt(dec!(10.001)).round_up_to(Usdt(dec!(0.01))),
            Usdt(dec!(10.01))
        );
        assert_eq!(
            Usdt(dec!(10.009)).round_down_to(Usdt(dec!(0.01))),
            Usdt(dec!(10.00))
        );
        assert_eq!(
            Usdt(dec!(10.001)).round_up_to(Usdt::ZERO),
            Usdt(dec!(10.001))
        );
    }

    #[test]
    fn signed_notional() {
        assert_eq!(Qty(dec!(-2)) * Price(dec!(100)), Usdt(dec!(-200)));
    }
}
