//! Payment rails shipped with the runtime, each behind a cargo feature.

pub mod stripe_limits;

#[cfg(feature = "stripe")]
pub mod stripe;
