//! Parsing `#[paid(...)]` arguments with darling: unknown keys (with "did
//! you mean"), duplicates and wrong literal types are reported by darling;
//! values are kept as tokens so later errors can point at them.

use darling::FromMeta;
use darling::ast::NestedMeta;
use darling::util::SpannedValue;
use proc_macro2::TokenStream;

/// The arguments as written.
#[derive(Debug, Default, FromMeta)]
#[darling(default)]
pub(crate) struct PaidArgs {
    /// `amount = "5.00"`.
    pub(crate) amount: Option<syn::LitStr>,
    /// `currency = "USD"`.
    pub(crate) currency: Option<syn::LitStr>,
    /// `grants = 10`: any literal, so a string or a float gets our message.
    pub(crate) grants: Option<syn::Lit>,
    /// `scope = "report.basic"`.
    pub(crate) scope: Option<syn::LitStr>,
    /// `method = "stripe"`.
    pub(crate) method: Option<syn::LitStr>,
    /// `methods = ["stripe", "tempo"]`.
    pub(crate) methods: Option<SpannedValue<Vec<syn::LitStr>>>,
    /// `price = "report.basic"`.
    pub(crate) price: Option<syn::LitStr>,
    /// `preconditions = [path::to::fn, …]`.
    pub(crate) preconditions: Option<syn::Expr>,
    /// `description = "…"`.
    pub(crate) description: Option<syn::LitStr>,
    /// `capture = "after"`.
    pub(crate) capture: Option<syn::LitStr>,
}

/// Parses the attribute's argument list.
pub(crate) fn parse(args: TokenStream) -> darling::Result<PaidArgs> {
    let items = NestedMeta::parse_meta_list(args).map_err(darling::Error::from)?;
    PaidArgs::from_list(&items)
}
