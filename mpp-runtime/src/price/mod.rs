//! Prices: exact decimal amounts, ISO 4217 currencies, scopes and grants.
//!
//! This module is plain `std` code with no I/O so that `#[paid]` can run the
//! very same validation at compile time that the runtime runs at startup.

mod amount;
mod currency;
mod scope;

pub use amount::{Amount, AmountError, UnitsError, parse_amount};
pub use currency::{Currency, CurrencyError};
pub use scope::{MAX_SCOPE_LEN, ScopeError, default_scope, is_scope_char, validate_scope};

/// The most accesses one payment may buy.
pub const MAX_GRANTS: u32 = 1_000_000;

/// Checks a grant count: at least 1, at most [`MAX_GRANTS`].
///
/// ```
/// assert!(mpp_runtime::price::validate_grants(10).is_ok());
/// assert!(mpp_runtime::price::validate_grants(0).is_err());
/// ```
pub fn validate_grants(grants: u64) -> Result<u32, GrantsError> {
    match u32::try_from(grants) {
        Ok(0) => Err(GrantsError::Zero),
        Ok(g) if g <= MAX_GRANTS => Ok(g),
        _ => Err(GrantsError::TooMany(grants)),
    }
}

/// Why a grant count was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantsError {
    /// Zero accesses.
    Zero,
    /// More than [`MAX_GRANTS`].
    TooMany(u64),
}

impl std::fmt::Display for GrantsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Zero => f.write_str("grants must be at least 1 (one payment buys one access)"),
            Self::TooMany(n) => write!(f, "grants = {n} is above the limit of {MAX_GRANTS}"),
        }
    }
}

impl std::error::Error for GrantsError {}
