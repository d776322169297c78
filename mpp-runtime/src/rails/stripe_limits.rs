//! Stripe's minimum charge amounts, compiled in whether or not the `stripe`
//! feature is on, so `#[paid]` can check a price at compile time.
//!
//! Source: docs.stripe.com/currencies#minimum-and-maximum-charge-amounts (the
//! same table the stock mppx server uses to decide whether to offer Stripe).

use crate::price::{Amount, Currency};

/// Stripe's minimum charge for `currency`, in its minor units, if Stripe
/// publishes one.
///
/// ```
/// use mpp_runtime::price::Currency;
/// use mpp_runtime::rails::stripe_limits::minimum_charge;
/// assert_eq!(minimum_charge(Currency::USD), Some(50));
/// assert_eq!(minimum_charge(Currency::from_code("JPY").unwrap()), Some(50));
/// ```
pub fn minimum_charge(currency: Currency) -> Option<u64> {
    let minor = match currency.code() {
        "USD" | "EUR" | "AUD" | "BRL" | "CAD" | "CHF" | "INR" | "NZD" | "SGD" => 50,
        "JPY" => 50,
        "GBP" => 30,
        "AED" | "MYR" | "PLN" | "RON" => 200,
        "BGN" => 100,
        "CZK" => 1500,
        "DKK" => 250,
        "HKD" => 400,
        "HUF" => 17500,
        "MXN" | "THB" => 1000,
        "NOK" | "SEK" => 300,
        _ => return None,
    };
    Some(minor)
}

/// Why an amount cannot be charged with Stripe, if it cannot: below the
/// currency's minimum (cards cannot be charged less).
pub fn below_minimum(amount: Amount) -> Option<String> {
    let minimum = minimum_charge(amount.currency())?;
    (amount.minor_units() < minimum).then(|| {
        let floor = Amount::from_minor_units(minimum, amount.currency())
            .map_or_else(|| minimum.to_string(), |a| a.to_string());
        format!(
            "{amount} {currency} is below Stripe's minimum charge of {floor} {currency}; \
             price the route higher, or sell a metered bundle (grants) whose single charge clears it",
            currency = amount.currency()
        )
    })
}
