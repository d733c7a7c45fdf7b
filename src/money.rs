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
    Decimal::from_str(trimmed).map_err(|_| {
        if well_formed(trimmed) {
            ParseDecimalError::OutOfRange(raw.to_string())
        } else {
            ParseDecimalError::Invalid(raw.to_string())
        }
    })
}

/// An optional sign, digits, at most one point, at least one digit: a number `Decimal` refuses
/// in this shape is one too large for it, which deserves its own message.
fn well_formed(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDecimalError {
    #[error("value is absent (empty string)")]
    Absent,
    #[error("`{0}` is not a decimal number")]
    Invalid(String),
    /// A well-formed number too large to hold: saying "not a number" sent users hunting
    /// for a typo.
    #[error("`{0}` is a number beyond ±79,228,162,514,264,337,593,543,950,335, the largest this program holds")]
    OutOfRange(String),
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

            /// `None` when the sum leaves `Decimal`'s range: the caller decides what that means.
            pub fn checked_add(self, rhs: Self) -> Option<Self> {
                self.0.checked_add(rhs.0).map(Self)
            }

            pub fn checked_sub(self, rhs: Self) -> Option<Self> {
                self.0.checked_sub(rhs.0).map(Self)
            }

            /// Clamped to `Decimal::MAX`/`MIN`: only for figures where "at least this much" is
            /// the honest reading of an overflow (a limit, a sum of exposures).
            pub fn saturating_add(self, rhs: Self) -> Self {
                Self(self.0.saturating_add(rhs.0))
            }

            pub fn saturating_sub(self, rhs: Self) -> Self {
                Self(self.0.saturating_sub(rhs.0))
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

impl Qty {
    /// Size × price; `None` when the notional leaves `Decimal`'s range.
    pub fn checked_mul(self, price: Price) -> Option<Usdt> {
        self.0.checked_mul(price.0).map(Usdt)
    }

    /// Size × price clamped to `Decimal::MAX`/`MIN`, for reports of absurdly large books.
    pub fn saturating_mul(self, price: Price) -> Usdt {
        Usdt(self.0.saturating_mul(price.0))
    }
}

impl Usdt {
    pub fn checked_mul(self, ratio: Ratio) -> Option<Usdt> {
        self.0.checked_mul(ratio.0).map(Usdt)
    }

    pub fn saturating_mul(self, ratio: Ratio) -> Usdt {
        Usdt(self.0.saturating_mul(ratio.0))
    }

    /// How many times `rhs` goes into `self`; `None` for a zero divisor or an overflow.
    pub fn checked_div(self, rhs: Usdt) -> Option<Ratio> {
        self.0.checked_div(rhs.0).map(Ratio)
    }

    /// Rounds up to a multiple of `step` (the venue's transfer precision). A zero step means
    /// "no rounding". `None` when that multiple is not representable, which only happens
    /// within one step of `Decimal::MAX`.
    pub fn round_up_to(self, step: Usdt) -> Option<Usdt> {
        round_to(self, step, true)
    }

    /// Rounds down to a multiple of `step`; used when rounding up would break a cap. `None`
    /// only within one step of `Decimal::MIN`, or where the multiple is not exact there.
    pub fn round_down_to(self, step: Usdt) -> Option<Usdt> {
        round_to(self, step, false)
    }
}

/// The multiple of `step` next to `amount` in one direction, by the remainder rather than
/// `amount / step`: the quotient overflows for large amounts and fine steps (`Decimal::MAX /
/// 0.01`), while the remainder is always smaller than the step.
fn round_to(amount: Usdt, step: Usdt, up: bool) -> Option<Usdt> {
    if step.0 <= Decimal::ZERO {
        return Some(amount);
    }
    let rest = amount.0.checked_rem(step.0)?;
    // Towards zero first: never larger in magnitude than `amount`, so never out of range.
    let toward_zero = amount.0.checked_sub(rest)?;
    let mut rounded = match (up, rest.cmp(&Decimal::ZERO)) {
        (true, std::cmp::Ordering::Greater) => toward_zero.checked_add(step.0)?,
        (false, std::cmp::Ordering::Less) => toward_zero.checked_sub(step.0)?,
        _ => toward_zero,
    };
    // Near the ends of the range `Decimal` drops digits; a result that lost them is no
    // multiple of the step and must not be sent as one.
    if !rounded.checked_rem(step.0)?.is_zero() {
        return None;
    }
    // Written with the step's decimals, as `(amount / step).ceil() * step` did: the amount is
    // sent to venues as text.
    rounded.rescale(step.0.scale());
    Some(Usdt(rounded))
}

impl Ratio {
    pub fn checked_mul(self, rhs: Ratio) -> Option<Ratio> {
        self.0.checked_mul(rhs.0).map(Ratio)
    }

    /// Clamped to `Decimal::MAX`/`MIN`: for a level or a widening, where "at least this" is
    /// what an overflow means.
    pub fn saturating_mul(self, rhs: Ratio) -> Ratio {
        Ratio(self.0.saturating_mul(rhs.0))
    }

    /// `0.0812` → `8.12%`, for people. A ratio beyond `Decimal::MAX / 100` (a saturated
    /// metric) prints at the bound rather than panicking in a report.
    pub fn percent(self) -> String {
        format!("{:.2}%", self.0.saturating_mul(Decimal::ONE_HUNDRED))
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

    /// Issue 10 item 8: a number too large to hold was called "not a decimal number".
    #[test]
    fn a_number_too_large_is_out_of_range_not_garbage() {
        let huge = "792281625142643375935439503350";
        assert_eq!(
            parse_decimal(huge),
            Err(ParseDecimalError::OutOfRange(huge.into()))
        );
        assert!(parse_decimal(&format!("-{huge}"))
            .unwrap_err()
            .to_string()
            .contains("largest this program holds"));
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
            Some(Usdt(dec!(10.01)))
        );
        assert_eq!(
            Usdt(dec!(10.009)).round_down_to(Usdt(dec!(0.01))),
            Some(Usdt(dec!(10.00)))
        );
        assert_eq!(
            Usdt(dec!(10.001)).round_up_to(Usdt::ZERO),
            Some(Usdt(dec!(10.001)))
        );
        assert_eq!(
            Usdt(dec!(-10.009)).round_down_to(Usdt(dec!(0.01))),
            Some(Usdt(dec!(-10.01)))
        );
        assert_eq!(
            Usdt(dec!(-10.009)).round_up_to(Usdt(dec!(0.01))),
            Some(Usdt(dec!(-10.00)))
        );
    }

    /// Amounts go to venues as text: a rounded amount keeps the step's decimals, as it did
    /// when rounding divided by the step.
    #[test]
    fn rounded_amounts_are_written_with_the_steps_decimals() {
        let step = Usdt(dec!(0.01));
        for (amount, up, text) in [
            (dec!(10), true, "10.00"),
            (dec!(10.009), false, "10.00"),
            (dec!(102.85714285714285714285714286), true, "102.86"),
        ] {
            let rounded = if up {
                Usdt(amount).round_up_to(step)
            } else {
                Usdt(amount).round_down_to(step)
            };
            assert_eq!(rounded.unwrap().to_string(), text);
        }
    }

    /// Issue 10 item 3 (a): `Decimal::MAX / 0.01` overflowed inside the rounding.
    #[test]
    fn rounding_decimal_max_does_not_overflow() {
        let max = Usdt(Decimal::MAX);
        let cent = Usdt(dec!(0.01));
        // Decimal::MAX is a whole number, hence a multiple of a cent already.
        assert_eq!(max.round_up_to(cent), Some(max));
        assert_eq!(max.round_down_to(cent), Some(max));
        // It is odd: the even number above it does not exist, the one below does.
        let two = Usdt(dec!(2));
        assert_eq!(max.round_up_to(two), None);
        assert_eq!(
            max.round_down_to(two),
            Some(Usdt(Decimal::MAX - Decimal::ONE))
        );
        assert_eq!(Usdt(Decimal::MIN).round_down_to(two), None);
        // A tiny step divides MAX without a quotient ever being formed.
        let tiny = Usdt(Decimal::new(1, 28));
        assert_eq!(max.round_down_to(tiny), Some(max));
    }

    #[test]
    fn checked_operations_refuse_to_overflow() {
        let max = Usdt(Decimal::MAX);
        assert_eq!(max.checked_add(Usdt(dec!(1))), None);
        assert_eq!(Usdt(Decimal::MIN).checked_sub(Usdt(dec!(1))), None);
        assert_eq!(max.saturating_add(Usdt(dec!(1))), max);
        assert_eq!(Qty(Decimal::MAX).checked_mul(Price(dec!(2))), None);
        assert_eq!(
            Qty(Decimal::MAX).saturating_mul(Price(dec!(-2))),
            Usdt(Decimal::MIN)
        );
        assert_eq!(
            max.checked_mul(Ratio(dec!(0.5))),
            Some(Usdt(Decimal::MAX / dec!(2)))
        );
        assert_eq!(Usdt(dec!(1)).checked_div(Usdt::ZERO), None);
        assert_eq!(max.checked_div(Usdt(dec!(0.5))), None);
        assert_eq!(
            Usdt(dec!(450)).checked_div(Usdt(dec!(600))),
            Some(Ratio(dec!(0.75)))
        );
    }

    #[test]
    fn a_saturated_ratio_still_prints() {
        assert_eq!(Ratio(dec!(0.0812)).percent(), "8.12%");
        assert!(Ratio(Decimal::MAX)
            .percent()
            .starts_with("79228162514264337593543950335"));
    }

    #[test]
    fn signed_notional() {
        assert_eq!(Qty(dec!(-2)) * Price(dec!(100)), Usdt(dec!(-200)));
    }
}
