//! Reading the annotated function: it must be an `async fn`; parameters the
//! payment provides (`Receipt`, `Credential`, `Option<Credential>`,
//! `Option<SessionInfo>`) are told apart from the framework's own.

use darling::Error;
use syn::spanned::Spanned;

/// What a parameter is.
pub(crate) enum Param {
    /// A framework parameter (path segment, guard, extractor, body): passed
    /// through to the framework under `name`.
    Framework {
        name: syn::Ident,
        ty: Box<syn::Type>,
        attrs: Vec<syn::Attribute>,
    },
    /// A value taken from the payment grant.
    Grant {
        name: syn::Ident,
        ty: Box<syn::Type>,
    },
}

/// The analyzed handler.
pub(crate) struct Handler {
    pub(crate) params: Vec<Param>,
    /// Whether the handler takes a plain `Credential`.
    pub(crate) needs_credential: bool,
}

/// The last path segment of a type, and its single generic argument if any.
fn last_segment(ty: &syn::Type) -> Option<(String, Option<&syn::Type>)> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    let inner = match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) if args.args.len() == 1 => match args.args.first()
        {
            Some(syn::GenericArgument::Type(t)) => Some(t),
            _ => None,
        },
        _ => None,
    };
    Some((segment.ident.to_string(), inner))
}

/// Whether `ty` is one of the values a payment grant provides; errors for a
/// form that cannot be provided.
fn grant_kind(ty: &syn::Type, errors: &mut darling::error::Accumulator) -> Option<bool> {
    let (name, inner) = last_segment(ty)?;
    match (name.as_str(), inner.and_then(last_segment)) {
        ("Receipt", None) => Some(false),
        ("Credential", None) => Some(true),
        ("Option", Some((inner, None))) if inner == "Credential" || inner == "SessionInfo" => {
            Some(false)
        }
        ("SessionInfo", None) => {
            errors.push(
                Error::custom(
                    "take `Option<SessionInfo>`: only metered routes (grants > 1) have a session",
                )
                .with_span(ty),
            );
            None
        }
        _ => None,
    }
}

/// Reports a handler that is not an `async fn`. (The wrapper is still
/// generated, so this stays the only error.)
pub(crate) fn check_async(item: &syn::ItemFn, errors: &mut darling::error::Accumulator) {
    if item.sig.asyncness.is_none() {
        errors.push(
            Error::custom(
                "#[paid] handlers must be `async fn`: payment is verified asynchronously",
            )
            .with_span(&item.sig.fn_token),
        );
    }
}

/// Analyzes the function's parameters, collecting the errors that prevent
/// wrapping it.
pub(crate) fn analyze(item: &syn::ItemFn, errors: &mut darling::error::Accumulator) -> Handler {
    let mut params = Vec::new();
    let mut needs_credential = false;
    for (index, input) in item.sig.inputs.iter().enumerate() {
        match input {
            syn::FnArg::Receiver(receiver) => {
                errors
                    .push(Error::custom("#[paid] handlers cannot take `self`").with_span(receiver));
            }
            syn::FnArg::Typed(typed) => {
                let name = match &*typed.pat {
                    syn::Pat::Ident(ident) if ident.subpat.is_none() => ident.ident.clone(),
                    other => syn::Ident::new(&format!("__mpp_arg{index}"), other.span()),
                };
                match grant_kind(&typed.ty, errors) {
                    Some(credential) => {
                        needs_credential |= credential;
                        params.push(Param::Grant {
                            name,
                            ty: typed.ty.clone(),
                        });
                    }
                    None => params.push(Param::Framework {
                        name,
                        ty: typed.ty.clone(),
                        attrs: typed.attrs.clone(),
                    }),
                }
            }
        }
    }
    Handler {
        params,
        needs_credential,
    }
}
