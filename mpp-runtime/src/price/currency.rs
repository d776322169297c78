//! ISO 4217 currencies and their minor-unit exponents.

use std::fmt;

use crate::suggest;

/// An ISO 4217 currency with a minor unit (codes without one, such as XAU or
/// XDR, cannot price a route).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// A currency code that is not an active ISO 4217 code with a minor unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyError {
    /// The code as given.
    pub code: String,
    /// The closest known code, for a "did you mean" hint.
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for CurrencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not an ISO 4217 currency code", self.code)?;
        if let Some(s) = self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        }
        Ok(())
    }
}

impl std::error::Error for CurrencyError {}

impl Currency {
    /// US dollar, the default currency.
    pub const USD: Currency = Currency {
        code: *b"USD",
        exponent: 2,
    };

    /// Looks up a code, case-insensitively (`usd` and `USD` are the same).
    ///
    /// ```
    /// use mpp_runtime::price::Currency;
    /// assert_eq!(Currency::from_code("jpy").unwrap().exponent(), 0);
    /// assert_eq!(Currency::from_code("KWD").unwrap().exponent(), 3);
    /// assert_eq!(Currency::from_code("USX").unwrap_err().suggestion, Some("USD"));
    /// ```
    pub fn from_code(code: &str) -> Result<Self, CurrencyError> {
        let upper = code.to_ascii_uppercase();
        ISO_4217
            .iter()
            .find(|(c, _)| *c == upper)
            .map(|&(c, exponent)| {
                let b = c.as_bytes();
                Currency {
                    code: [b[0], b[1], b[2]],
                    exponent,
                }
            })
            .ok_or_else(|| CurrencyError {
                code: code.to_owned(),
                suggestion: suggest::closest(&upper, ISO_4217.iter().map(|(c, _)| *c)),
            })
    }

    /// The uppercase three-letter code.
    pub fn code(&self) -> &str {
        // Codes come from the static table, which is ASCII.
        std::str::from_utf8(&self.code).unwrap_or_default()
    }

    /// Digits after the decimal point in the minor unit (USD 2, JPY 0, KWD 3).
    pub const fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Every supported code with its exponent.
    pub fn all() -> impl Iterator<Item = Currency> {
        ISO_4217
            .iter()
            .filter_map(|(c, _)| Currency::from_code(c).ok())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Active ISO 4217 codes with a minor unit, and the number of decimals.
#[rustfmt::skip]
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2),
    ("BGN", 2), ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2),
    ("BOV", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2), ("BWP", 2), ("BYN", 2),
    ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHE", 2), ("CHF", 2), ("CHW", 2),
    ("CLF", 4), ("CLP", 0), ("CNY", 2), ("COP", 2), ("COU", 2), ("CRC", 2),
    ("CUP", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2),
    ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2), ("EUR", 2), ("FJD", 2),
    ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2),
    ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2),
    ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2),
    ("ISK", 0), ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2),
    ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2),
    ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2),
    ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2),
    ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2),
    ("MXN", 2), ("MXV", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2),
    ("NIO", 2), ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2),
    ("PEN", 2), ("PGK", 2), ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0),
    ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2), ("RWF", 0), ("SAR", 2),
    ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2),
    ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2),
    ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3),
    ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2),
    ("UGX", 0), ("USD", 2), ("USN", 2), ("UYI", 0), ("UYU", 2), ("UYW", 4),
    ("UZS", 2), ("VED", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2),
    ("XAF", 0), ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0), ("YER", 2),
    ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_uppercase() {
        for pair in ISO_4217.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?}", pair);
        }
        assert!(
            ISO_4217
                .iter()
                .all(|(c, e)| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) && *e <= 4)
        );
    }

    #[test]
    fn rejects_codes_without_minor_units_and_garbage() {
        for code in ["XAU", "XDR", "XTS", "US", "USDD", "", "U$D", "€"] {
            assert!(Currency::from_code(code).is_err(), "{code}");
        }
    }
}
