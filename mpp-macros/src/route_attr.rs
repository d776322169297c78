//! Reading the framework's route attribute (`#[get("/report")]`), which
//! `#[paid]` sees because it is written above it: the route's method and
//! path template become part of its identity and default scope.

/// A route attribute's method and path.
pub(crate) struct RouteAttr {
    pub(crate) method: String,
    pub(crate) path: String,
}

const METHOD_ATTRS: &[&str] = &[
    "get", "post", "put", "delete", "patch", "head", "options", "trace", "connect",
];

/// Finds and reads the route attribute among `attrs`.
pub(crate) fn find(attrs: &[syn::Attribute]) -> Option<syn::Result<RouteAttr>> {
    attrs.iter().find_map(|attr| {
        let name = attr.path().segments.last()?.ident.to_string();
        if METHOD_ATTRS.contains(&name.as_str()) {
            Some(read(attr, Some(name.to_ascii_uppercase())))
        } else if name == "route" {
            Some(read(attr, None))
        } else {
            None
        }
    })
}

/// Reads the first string literal (the path) and, for `#[route]`, a method
/// given as `GET`, `method = GET` or `method = "GET"` (else `ANY`).
fn read(attr: &syn::Attribute, method: Option<String>) -> syn::Result<RouteAttr> {
    let args = attr.parse_args_with(
        syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated,
    )?;
    let mut path = None;
    let mut found_method = method;
    for arg in &args {
        match arg {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) if path.is_none() => path = Some(s.value()),
            syn::Expr::Path(p) if found_method.is_none() => {
                found_method = p
                    .path
                    .get_ident()
                    .map(|i| i.to_string().to_ascii_uppercase());
            }
            syn::Expr::Assign(assign) => {
                let key = match &*assign.left {
                    syn::Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
                    _ => None,
                };
                match (key.as_deref(), &*assign.right) {
                    (
                        Some("uri" | "path"),
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }),
                    ) => {
                        path = Some(s.value());
                    }
                    (
                        Some("method"),
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }),
                    ) if found_method.is_none() => {
                        found_method = Some(s.value().to_ascii_uppercase());
                    }
                    (Some("method"), syn::Expr::Path(p)) if found_method.is_none() => {
                        found_method = p
                            .path
                            .get_ident()
                            .map(|i| i.to_string().to_ascii_uppercase());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let path = path.ok_or_else(|| {
        syn::Error::new_spanned(
            attr,
            "expected the route's path as a string, e.g. #[get(\"/report\")]",
        )
    })?;
    // The query part (`/search?<q>`) is not part of the route's identity.
    let path = path.split('?').next().unwrap_or_default().to_owned();
    Ok(RouteAttr {
        method: found_method.unwrap_or_else(|| "ANY".to_owned()),
        path,
    })
}
