//! Exact decimal amounts. Never floats: `"5.00"` USD is 500 minor units, and
//! `"5.001"` USD is an error, not a rounding.

use std::fmt;
use std::ops::Range;

use super::currency::Currency;

/// A positive amount of a currency, held exactly in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    minor: u64,
    currency: Currency,
}

/// Why an amount string was refused. Every variant carries the byte range of
/// the offending text so a compile-time caller can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    /// The string is empty.
    Empty,
    /// A character that is not a digit or the decimal point.
    InvalidCharacter {
        /// Where.
        span: Range<usize>,
        /// What.
        found: char,
    },
    /// A decimal point at the start or end, or a second one.
    MisplacedPoint {
        /// Where.
        span: Range<usize>,
    },
    /// Zeros before the first significant integer digit (`"05.00"`).
    LeadingZero {
        /// Where.
        span: Range<usize>,
    },
    /// More digits after the point than the currency has (`"5.001"` USD).
    TooManyFractionDigits {
        /// The excess digits.
        span: Range<usize>,
        /// How many the currency allows.
        allowed: u8,
        /// The currency.
        currency: Currency,
    },
    /// The amount is zero; a price must be positive.
    Zero {
        /// The whole string.
        span: Range<usize>,
    },
    /// The amount does not fit in 64 bits of minor units.
    TooLarge {
        /// The whole string.
        span: Range<usize>,
    },
}

impl AmountError {
    /// The byte range of the offending text, if any.
    pub fn span(&self) -> Option<Range<usize>> {
        match self {
            Self::Empty => None,
            Self::InvalidCharacter { span, .. }
            | Self::MisplacedPoint { span }
            | Self::LeadingZero { span }
            | Self::TooManyFractionDigits { span, .. }
            | Self::Zero { span }
            | Self::TooLarge { span } => Some(span.clone()),
        }
    }
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the amount is empty; write a decimal such as \"5.00\""),
            Self::InvalidCharacter { found, .. } if matches!(found, '-' | '+') => write!(
                f,
                "amounts are positive decimals without a sign; remove `{found}`"
            ),
            Self::InvalidCharacter { found, .. } => write!(
                f,
                "`{found}` is not allowed in an amount; write digits with an optional `.` (e.g. \"5.00\")"
            ),
            Self::MisplacedPoint { .. } => {
                f.write_str("misplaced decimal point; write digits on both sides, e.g. \"0.50\"")
            }
            Self::LeadingZero { .. } => f.write_str("remove the leading zero"),
            Self::TooManyFractionDigits {
                allowed, currency, ..
            } => write!(
                f,
                "{currency} allows at most {allowed} digit{} after the decimal point",
                if *allowed == 1 { "" } else { "s" }
            ),
            Self::Zero { .. } => f.write_str("the amount must be greater than zero"),
            Self::TooLarge { .. } => f.write_str("the amount is too large"),
        }
    }
}

impl std::error::Error for AmountError {}

/// Parses a decimal amount for a currency. This is the single parser used
/// both at run time and, by `#[paid]`, at compile time.
///
/// ```
/// use mpp_runtime::price::{Currency, parse_amount};
/// let usd = Currency::USD;
/// assert_eq!(parse_amount("5.00", usd).unwrap().minor_units(), 500);
/// assert_eq!(parse_amount("5", usd).unwrap().minor_units(), 500);
/// assert_eq!(parse_amount("0.5", usd).unwrap().to_string(), "0.50");
/// assert!(parse_amount("5.001", usd).is_err());
/// assert!(parse_amount("-1", usd).is_err());
/// assert!(parse_amount("0.00", usd).is_err());
/// ```
pub fn parse_amount(text: &str, currency: Currency) -> Result<Amount, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let whole = 0..text.len();
    let mut point: Option<usize> = None;
    for (at, c) in text.char_indices() {
        match c {
            '0'..='9' => {}
            '.' if point.is_none() => point = Some(at),
            '.' => {
                return Err(AmountError::MisplacedPoint { span: at..at + 1 });
            }
            _ => {
                return Err(AmountError::InvalidCharacter {
                    span: at..at + c.len_utf8(),
                    found: c,
                });
            }
        }
    }
    let (int_part, frac_part, frac_start) = match point {
        Some(p) => (&text[..p], &text[p + 1..], p + 1),
        None => (text, "", text.len()),
    };
    if let Some(p) = point
        && (int_part.is_empty() || frac_part.is_empty())
    {
        return Err(AmountError::MisplacedPoint { span: p..p + 1 });
    }
    if int_part.len() > 1 && int_part.starts_with('0') {
        let zeros = int_part
            .bytes()
            .take_while(|&b| b == b'0')
            .count()
            .min(int_part.len() - 1);
        return Err(AmountError::LeadingZero { span: 0..zeros });
    }
    let allowed = currency.exponent();
    if frac_part.len() > usize::from(allowed) {
        // Trailing zeros beyond the exponent are still too many digits: the
        // author wrote a precision the currency cannot carry.
        let start = frac_start + usize::from(allowed);
        return Err(AmountError::TooManyFractionDigits {
            span: start..text.len(),
            allowed,
            currency,
        });
    }
    let too_large = || AmountError::TooLarge {
        span: whole.clone(),
    };
    let mut minor: u64 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(b - b'0')))
            .ok_or_else(too_large)?;
    }
    for _ in frac_part.len()..usize::from(allowed) {
        minor = minor.checked_mul(10).ok_or_else(too_large)?;
    }
    if minor == 0 {
        return Err(AmountError::Zero { span: whole });
    }
    Ok(Amount { minor, currency })
}

/// Why an amount cannot be expressed in a token's base units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitsError {
    /// The token has fewer decimals than the amount uses.
    Precision {
        /// The amount.
        amount: String,
        /// The token's decimals.
        decimals: u8,
    },
    /// The result overflows.
    Overflow,
}

impl fmt::Display for UnitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Precision { amount, decimals } => write!(
                f,
                "{amount} cannot be expressed with {decimals} decimal{}",
                if *decimals == 1 { "" } else { "s" }
            ),
            Self::Overflow => f.write_str("the amount overflows the token's base units"),
        }
    }
}

impl std::error::Error for UnitsError {}

impl Amount {
    /// An amount from minor units (`500` USD is 5.00). Zero is refused.
    pub fn from_minor_units(minor: u64, currency: Currency) -> Option<Self> {
        (minor > 0).then_some(Self { minor, currency })
    }

    /// The amount in minor units of its currency (cents for USD).
    pub const fn minor_units(&self) -> u64 {
        self.minor
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in base units of a token with `decimals` decimals
    /// (5.00 USD is `5_000_000` units of a 6-decimal stablecoin).
    ///
    /// ```
    /// use mpp_runtime::price::{Currency, parse_amount};
    /// let five = parse_amount("5.00", Currency::USD).unwrap();
    /// assert_eq!(five.to_base_units(6).unwrap(), 5_000_000);
    /// assert_eq!(five.to_base_units(0).unwrap(), 5);
    /// assert!(parse_amount("5.25", Currency::USD).unwrap().to_base_units(1).is_err());
    /// ```
    pub fn to_base_units(&self, decimals: u8) -> Result<u128, UnitsError> {
        let exponent = self.currency.exponent();
        let minor = u128::from(self.minor);
        if decimals >= exponent {
            let factor = 10u128
                .checked_pow(u32::from(decimals - exponent))
                .ok_or(UnitsError::Overflow)?;
            minor.checked_mul(factor).ok_or(UnitsError::Overflow)
        } else {
            let divisor = 10u128.pow(u32::from(exponent - decimals));
            if minor % divisor == 0 {
                Ok(minor / divisor)
            } else {
                Err(UnitsError::Precision {
                    amount: self.to_string(),
                    decimals,
                })
            }
        }
    }
}

impl fmt::Display for Amount {
    /// The amount with exactly the currency's number of decimals (`"5.00"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = u32::from(self.currency.exponent());
        if exponent == 0 {
            return write!(f, "{}", self.minor);
        }
        let divisor = 10u64.pow(exponent);
        write!(
            f,
            "{}.{:0width$}",
            self.minor / divisor,
            self.minor % divisor,
            width = exponent as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    #[test]
    fn parses_per_currency_exponent() {
        assert_eq!(parse_amount("100", cur("JPY")).unwrap().minor_units(), 100);
        assert_eq!(
            parse_amount("1.234", cur("KWD")).unwrap().minor_units(),
            1234
        );
        assert_eq!(parse_amount("0.01", cur("USD")).unwrap().minor_units(), 1);
        assert_eq!(
            parse_amount("0.50", cur("EUR")).unwrap().to_string(),
            "0.50"
        );
        assert_eq!(parse_amount("7", cur("KWD")).unwrap().to_string(), "7.000");
    }

    #[test]
    fn points_at_the_offending_text() {
        let usd = Currency::USD;
        assert_eq!(parse_amount("5.001", usd).unwrap_err().span(), Some(4..5));
        assert_eq!(parse_amount("5.0a", usd).unwrap_err().span(), Some(3..4));
        assert_eq!(parse_amount("1.2.3", usd).unwrap_err().span(), Some(3..4));
        assert_eq!(parse_amount(".5", usd).unwrap_err().span(), Some(0..1));
        assert_eq!(parse_amount("5.", usd).unwrap_err().span(), Some(1..2));
        assert_eq!(parse_amount("005", usd).unwrap_err().span(), Some(0..2));
        assert_eq!(parse_amount("1", cur("JPY")).unwrap().to_string(), "1");
        assert!(matches!(
            parse_amount("1.5", cur("JPY")),
            Err(AmountError::TooManyFractionDigits { allowed: 0, .. })
        ));
        assert!(matches!(
            parse_amount("99999999999999999999", usd),
            Err(AmountError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_amount("€5", usd),
            Err(AmountError::InvalidCharacter { span, found: '€' }) if span == (0..3)
        ));
    }

    #[test]
    fn converts_to_token_units() {
        let amount = parse_amount("0.01", Currency::USD).unwrap();
        assert_eq!(amount.to_base_units(6).unwrap(), 10_000);
        assert_eq!(amount.to_base_units(18).unwrap(), 10_000_000_000_000_000);
        assert!(amount.to_base_units(1).is_err());
        assert_eq!(amount.to_base_units(2).unwrap(), 1);
        assert_eq!(
            Amount::from_minor_units(u64::MAX, Currency::USD)
                .unwrap()
                .to_base_units(60),
            Err(UnitsError::Overflow)
        );
    }
}
