//! Payment rails shipped with the runtime, each behind a cargo feature.

pub mod stripe_limits;

#[cfg(any(
    feature = "stripe",
    feature = "tempo",
    feature = "evm",
    feature = "stellar"
))]
mod env;

#[cfg(feature = "stripe")]
pub mod stripe;

#[cfg(any(feature = "tempo", feature = "evm"))]
pub mod chain;

#[cfg(feature = "tempo")]
pub mod tempo;

#[cfg(feature = "evm")]
pub mod evm;

#[cfg(feature = "stellar")]
pub mod stellar;
