//! The `#[paid(...)]` attribute, re-exported by `mpp-rocket` and `mpp-actix`
//! as `paid`. Use it through those crates:
//!
//! ```ignore
//! use mpp_rocket::{paid, Receipt};
//!
//! #[paid(amount = "5.00", currency = "USD", grants = 10, scope = "report.basic")]
//! #[get("/report")]
//! async fn report(receipt: Receipt) -> String {
//!     format!("paid with {}", receipt.reference)
//! }
//! ```
//!
//! One core, one entry point per framework. The pipeline follows
//! `thiserror`'s: [`attr`] parses the arguments (darling), [`valid`] checks
//! them with the very parsers the runtime uses at startup, [`handler`] reads
//! the function and its route attribute, and [`expand`] generates code. Every
//! error is reported at once, on the offending token, and the original
//! function is emitted with them so IDEs keep working.

mod attr;
mod expand;
mod handler;
mod route_attr;
mod valid;

use proc_macro::TokenStream;

/// The framework a `#[paid]` expansion targets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framework {
    Rocket,
    Actix,
}

impl Framework {
    /// The adapter crate generated code refers to.
    fn krate(self) -> proc_macro2::TokenStream {
        match self {
            Self::Rocket => quote::quote!(::mpp_rocket),
            Self::Actix => quote::quote!(::mpp_actix),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rocket => "Rocket",
            Self::Actix => "Actix",
        }
    }
}

/// `#[paid(...)]` for Rocket handlers: re-exported as `mpp_rocket::paid`.
/// Write it above the route attribute.
#[proc_macro_attribute]
pub fn rocket_paid(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::paid(Framework::Rocket, args.into(), item.into()).into()
}

/// `#[paid(...)]` for Actix-web handlers: re-exported as `mpp_actix::paid`.
/// Write it above the route attribute, if the handler has one.
#[proc_macro_attribute]
pub fn actix_paid(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::paid(Framework::Actix, args.into(), item.into()).into()
}
