//! Code generation.
//!
//! For `#[paid(...)] #[get("/report")] async fn report(user: User, receipt: Receipt) -> T`
//! the expansion is, in outline:
//!
//! ```text
//! #[get("/report")]
//! async fn report(user: User, __mpp_paid: PaidContext<__mpp_route_report>) -> Paid<T> {
//!     let grant = match __mpp_paid.admit().await { Ok(g) => g, Err(denied) => return Paid::denied(denied) };
//!     let receipt: Receipt = take(&grant)?;            // each payment parameter
//!     __mpp_paid.finish(__mpp_inner_report(user, receipt).await, grant).await  // capture = "after": capture or release
//! }
//! async fn __mpp_inner_report(user: User, receipt: Receipt) -> T { /* the original body */ }
//! struct __mpp_route_report;                           // its PaidRoute: the RouteSpec, built once
//! ```
//!
//! The framework guard/extractor only captures the request; the payment is
//! decided inside the handler, after every other guard, extractor and the
//! body have succeeded, so a request that fails authentication or body
//! parsing is never charged. The original body runs unchanged in the inner
//! function, so `return`, `?` and `impl Trait` keep their meaning.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::Framework;
use crate::handler::{self, Handler, Param};
use crate::route_attr::{self, RouteAttr};
use crate::valid::{self, Terms};

/// The whole attribute: parse, validate, generate. On errors the function is
/// still emitted (as generated code when only the terms are wrong, as written
/// when the function itself cannot be wrapped) together with every error.
pub(crate) fn paid(framework: Framework, args: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(_) => {
            let error = syn::Error::new(
                first_span(&item),
                "#[paid] goes on a request handler: an `async fn` with a route attribute below it",
            )
            .to_compile_error();
            return quote!(#error #item);
        }
    };

    let mut errors = darling::Error::accumulator();
    let args = errors.handle(crate::attr::parse(args)).unwrap_or_default();
    let terms = valid::validate(args, &mut errors);
    handler::check_async(&item_fn, &mut errors);

    let mut fatal = darling::Error::accumulator();
    let handler = handler::analyze(&item_fn, &mut fatal);
    let route = match route_attr::find(&item_fn.attrs) {
        Some(Ok(route)) => Some(route),
        Some(Err(e)) => {
            fatal.push(e.into());
            None
        }
        None if framework == Framework::Rocket => {
            fatal.push(darling::Error::custom(format!(
                "#[paid] must be written above the {} route attribute, e.g. `#[paid(amount = \"1.00\")] #[get(\"/path\")]`",
                framework.name()
            ))
            .with_span(&item_fn.sig.ident));
            None
        }
        None => None,
    };

    let fatal = fatal.finish().err().map(|e| e.write_errors());
    let errors = errors.finish().err().map(|e| e.write_errors());
    match fatal {
        Some(fatal) => quote!(#fatal #errors #item_fn),
        None => {
            let generated = generate(framework, &item_fn, &terms, &handler, route.as_ref());
            quote!(#errors #generated)
        }
    }
}

fn first_span(tokens: &TokenStream) -> Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

/// `a::b::c` without spaces.
fn path_text(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

fn generate(
    framework: Framework,
    item: &syn::ItemFn,
    terms: &Terms,
    handler: &Handler,
    route: Option<&RouteAttr>,
) -> TokenStream {
    let krate = framework.krate();
    let rt = quote!(#krate::__private::runtime);
    let vis = &item.vis;
    let attrs = &item.attrs;
    let name = &item.sig.ident;
    let name_text = name.to_string();
    let route_ty = format_ident!("__mpp_route_{}", name);
    let inner_name = format_ident!("__mpp_inner_{}", name);
    let (generics, where_clause) = (&item.sig.generics, &item.sig.generics.where_clause);
    let (method, path) = route.map_or(("ANY", ""), |r| (r.method.as_str(), r.path.as_str()));
    let output = match &item.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };

    let mut builder = Vec::new();
    if let Some(lit) = &terms.amount {
        builder.push(quote!(.amount(#lit)));
    }
    if let Some(lit) = &terms.currency {
        builder.push(quote!(.currency(#lit)));
    }
    if let Some(grants) = terms.grants {
        builder.push(quote!(.grants(#grants)));
    }
    if let Some(lit) = &terms.scope {
        builder.push(quote!(.scope(#lit)));
    }
    for lit in &terms.methods {
        builder.push(quote!(.method(#lit)));
    }
    if let Some(lit) = &terms.price {
        builder.push(quote!(.price(#lit)));
    }
    if let Some(lit) = &terms.description {
        builder.push(quote!(.description(#lit)));
    }
    match terms.capture {
        Some(mpp_runtime::Capture::After) => {
            builder.push(quote!(.capture(#rt::Capture::After)));
        }
        Some(mpp_runtime::Capture::Immediate) => {
            builder.push(quote!(.capture(#rt::Capture::Immediate)));
        }
        None => {}
    }
    for path in &terms.preconditions {
        let text = path_text(path);
        // Spanned on the path: a typo or a wrong signature is reported there.
        builder.push(quote_spanned!(path.span()=>
            .precondition(#rt::PreconditionRef::function(#text, #path))
        ));
    }
    let needs_credential = handler.needs_credential;

    let outer_params = handler.params.iter().filter_map(|param| match param {
        Param::Framework { name, ty, attrs } => Some(quote!(#(#attrs)* #name: #ty)),
        Param::Grant { .. } => None,
    });
    let bindings = handler.params.iter().filter_map(|param| match param {
        Param::Grant { name, ty } => Some(quote_spanned!(ty.span()=>
            let #name: #ty = match #rt::handler::take::<#ty>(&__mpp_grant, #name_text) {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(denied) => return #krate::Paid::denied(denied),
            };
        )),
        Param::Framework { .. } => None,
    });
    let call_args = handler.params.iter().map(|param| match param {
        Param::Framework { name, .. } | Param::Grant { name, .. } => name,
    });
    let call = match item.sig.asyncness {
        Some(_) => quote!(#inner_name(#(#call_args),*).await),
        None => quote!(#inner_name(#(#call_args),*)),
    };

    let mut inner = item.clone();
    inner.attrs.clear();
    inner.vis = syn::Visibility::Inherited;
    inner.sig.ident = inner_name.clone();
    for input in &mut inner.sig.inputs {
        if let syn::FnArg::Typed(typed) = input {
            typed.attrs.clear();
        }
    }

    // Actix has no launch-time hook: routes register themselves so that
    // `Mpp::build` can check them all at startup. (Rocket's sentinel does it.)
    let registration = match framework {
        Framework::Actix => quote! {
            #krate::__private::inventory::submit! {
                #krate::__private::Registration::new::<#route_ty>()
            }
        },
        Framework::Rocket => quote!(),
    };

    quote! {
        #(#attrs)*
        #vis async fn #name #generics (
            #(#outer_params,)*
            __mpp_paid: #krate::__private::PaidContext<#route_ty>
        ) -> #krate::Paid<#output> #where_clause {
            let mut __mpp_paid = __mpp_paid;
            let __mpp_grant = match __mpp_paid.admit().await {
                ::core::result::Result::Ok(grant) => grant,
                ::core::result::Result::Err(denied) => return #krate::Paid::denied(denied),
            };
            #(#bindings)*
            __mpp_paid.finish(#call, __mpp_grant).await
        }

        #[doc(hidden)]
        #[allow(clippy::too_many_arguments)]
        #inner

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #route_ty;

        impl #rt::handler::PaidRoute for #route_ty {
            const NEEDS_CREDENTIAL: bool = #needs_credential;

            fn prepared() -> ::core::option::Option<&'static #rt::handler::PreparedRoute> {
                static PREPARED: #rt::handler::PreparedRoute = #rt::handler::PreparedRoute::new();
                ::core::option::Option::Some(&PREPARED)
            }

            fn route_spec() -> &'static #rt::RouteSpec {
                static SPEC: ::std::sync::LazyLock<#rt::RouteSpec> = ::std::sync::LazyLock::new(|| {
                    #rt::RouteSpec::new(#method, #path, #rt::PaymentSpec::new() #(#builder)*)
                        .with_handler(::core::concat!(::core::module_path!(), "::", #name_text))
                });
                &SPEC
            }
        }

        #registration
    }
}
