//! Validation of the payment terms with the runtime's own parsers
//! (`mpp_runtime::price`), so a term the runtime would refuse at startup is
//! refused at compile time instead, pointing at the token.

use std::ops::Range;

use darling::Error;
use mpp_runtime::Capture;
use mpp_runtime::price::{self, Amount, AmountError, Currency};
use mpp_runtime::rails::stripe_limits;
use mpp_runtime::suggest;
use mpp_runtime::wire::challenge::is_valid_method;
use proc_macro2::Span;
use syn::spanned::Spanned;

use crate::attr::PaidArgs;

/// The payment rails the runtime knows by name, and whether each is compiled
/// in (the adapter's feature of the same name).
const BUILTIN_METHODS: &[(&str, bool)] = &[
    ("stripe", cfg!(feature = "stripe")),
    ("tempo", cfg!(feature = "tempo")),
    ("evm", cfg!(feature = "evm")),
    ("stellar", cfg!(feature = "stellar")),
];

/// The most decimals any ISO 4217 currency has: an amount written without a
/// currency is checked against this here, and against the configured default
/// currency at startup.
const WIDEST_EXPONENT_CURRENCY: &str = "CLF";

/// Validated terms, still carrying their tokens for code generation.
pub(crate) struct Terms {
    pub(crate) amount: Option<syn::LitStr>,
    pub(crate) currency: Option<syn::LitStr>,
    pub(crate) grants: Option<u32>,
    pub(crate) scope: Option<syn::LitStr>,
    pub(crate) methods: Vec<syn::LitStr>,
    pub(crate) price: Option<syn::LitStr>,
    pub(crate) preconditions: Vec<syn::Path>,
    pub(crate) description: Option<syn::LitStr>,
    pub(crate) capture: Option<Capture>,
}

/// Built-in rails that settle at once (on-chain transfers): they cannot
/// defer capture.
const SETTLE_AT_ONCE: &[&str] = &["tempo", "evm", "stellar"];

/// The span of `range` (byte offsets into the string's value) inside a
/// string literal, where the compiler can point inside literals; otherwise
/// the whole literal.
fn sub_span(lit: &syn::LitStr, range: Range<usize>) -> Span {
    let token = lit.token();
    let text = token.to_string();
    let plain = text.len() == lit.value().len() + 2
        && text.starts_with('"')
        && text[1..text.len() - 1] == lit.value();
    if plain {
        token
            .subspan(range.start + 1..range.end + 1)
            .unwrap_or_else(|| lit.span())
    } else {
        lit.span()
    }
}

fn error_at(span: Span, message: impl std::fmt::Display) -> Error {
    Error::from(syn::Error::new(span, message.to_string()))
}

/// Checks every term, collecting all errors.
pub(crate) fn validate(args: PaidArgs, errors: &mut darling::error::Accumulator) -> Terms {
    // Currency first: the amount is checked against it.
    let currency = args
        .currency
        .as_ref()
        .and_then(|lit| match Currency::from_code(&lit.value()) {
            Ok(currency) => Some(currency),
            Err(e) => {
                errors.push(error_at(lit.span(), e));
                None
            }
        });

    let mut amount: Option<Amount> = None;
    if let Some(lit) = &args.amount {
        let (check_currency, stated) = match (currency, &args.currency) {
            (Some(c), _) => (c, true),
            (None, Some(_)) => (Currency::USD, false), // already reported
            (None, None) => (
                Currency::from_code(WIDEST_EXPONENT_CURRENCY).unwrap_or(Currency::USD),
                false,
            ),
        };
        let parsed = (args.currency.is_none() || currency.is_some())
            .then(|| price::parse_amount(&lit.value(), check_currency));
        if stated && let Some(Ok(parsed)) = &parsed {
            amount = Some(*parsed);
        }
        if let Some(Err(e)) = parsed {
            let span = e.span().map_or(lit.span(), |r| sub_span(lit, r));
            let message = match (&e, stated) {
                (AmountError::TooManyFractionDigits { .. }, false) => {
                    format!("{e}; no ISO 4217 currency has that many decimals")
                }
                _ => e.to_string(),
            };
            errors.push(error_at(
                span,
                format!("amount {:?}: {message}", lit.value()),
            ));
        }
    }

    let grants = args.grants.as_ref().and_then(|lit| {
        let parsed = match lit {
            syn::Lit::Int(int) => int
                .base10_parse::<u64>()
                .map_err(|_| "grants must be a whole number, e.g. `grants = 10`".to_owned()),
            _ => Err("grants must be a whole number, e.g. `grants = 10`".to_owned()),
        };
        match parsed.and_then(|n| price::validate_grants(n).map_err(|e| e.to_string())) {
            Ok(g) => Some(g),
            Err(message) => {
                errors.push(error_at(lit.span(), message));
                None
            }
        }
    });

    if let Some(lit) = &args.scope
        && let Err(e) = price::validate_scope(&lit.value())
    {
        let span = e.span().map_or(lit.span(), |r| sub_span(lit, r));
        errors.push(error_at(span, e));
    }

    let mut methods = Vec::new();
    match (&args.method, &args.methods) {
        (Some(method), Some(list)) => {
            errors.push(error_at(
                method.span(),
                "use either `method = \"…\"` or `methods = [\"…\", …]`, not both",
            ));
            let _ = list;
        }
        (Some(method), None) => methods.push(method.clone()),
        (None, Some(list)) => {
            if list.is_empty() {
                errors.push(error_at(
                    list.span(),
                    "`methods` is empty; list at least one payment method, or leave it out to use the default",
                ));
            }
            methods.extend(list.iter().cloned());
        }
        (None, None) => {}
    }
    for (i, lit) in methods.iter().enumerate() {
        if let Err(message) = check_method(&lit.value()) {
            errors.push(error_at(lit.span(), message));
        } else if methods[..i].iter().any(|m| m.value() == lit.value()) {
            errors.push(error_at(
                lit.span(),
                format!("method `{}` is listed twice", lit.value()),
            ));
        }
    }

    if let Some(price_lit) = &args.price {
        for (given, name) in [
            (args.amount.as_ref(), "amount"),
            (args.currency.as_ref(), "currency"),
        ] {
            if let Some(lit) = given {
                errors.push(error_at(
                    lit.span(),
                    format!(
                        "`price = \"{}\"` already sets the amount and currency; remove `{name}`",
                        price_lit.value()
                    ),
                ));
            }
        }
        if let Err(e) = price::validate_scope(&price_lit.value()) {
            errors.push(error_at(
                price_lit.span(),
                format!("not a price-book key: {e}"),
            ));
        }
    } else if args.currency.is_some() && args.amount.is_none() {
        errors.push(error_at(
            args.currency.as_ref().map_or(Span::call_site(), |l| l.span()),
            "`currency` is set without `amount`; set both, or neither to use the configured defaults",
        ));
    }

    let preconditions = match &args.preconditions {
        None => Vec::new(),
        Some(syn::Expr::Array(array)) => array
            .elems
            .iter()
            .filter_map(|elem| match elem {
                syn::Expr::Path(path) if path.qself.is_none() => Some(path.path.clone()),
                other => {
                    errors.push(error_at(
                        other.span(),
                        "expected the path of a precondition function, e.g. `post_exists` or `checks::post_exists`",
                    ));
                    None
                }
            })
            .collect(),
        Some(other) => {
            errors.push(error_at(
                other.span(),
                "expected a list of precondition functions: `preconditions = [post_exists, …]`",
            ));
            Vec::new()
        }
    };

    if let Some(lit) = &args.description {
        let text = lit.value();
        if let Some((at, c)) = text
            .char_indices()
            .find(|(_, c)| c.is_control() && *c != '\t')
        {
            errors.push(error_at(
                sub_span(lit, at..at + c.len_utf8()),
                "the description is sent in a header: it cannot contain line breaks or control characters",
            ));
        }
    }

    let capture = args
        .capture
        .as_ref()
        .and_then(|lit| match lit.value().parse::<Capture>() {
            Ok(capture) => Some(capture),
            Err(e) => {
                let hint = suggest::closest(&lit.value(), ["immediate", "after"])
                    .map(|near| format!("; did you mean `{near}`?"))
                    .unwrap_or_default();
                errors.push(error_at(lit.span(), format!("{e}{hint}")));
                None
            }
        });
    if capture == Some(Capture::After) && grants.is_none_or(|g| g == 1) {
        for lit in &methods {
            if SETTLE_AT_ONCE.contains(&lit.value().as_str()) {
                errors.push(error_at(
                    lit.span(),
                    format!(
                        "method `{}` settles at once and cannot defer capture; remove it or `capture = \"after\"`",
                        lit.value()
                    ),
                ));
            }
        }
    }

    // Stripe's minimum charge, when the macro can see both the amount and
    // its currency (without a currency, the configured default decides, at
    // startup).
    if let (Some(amount), Some(lit)) = (amount, &args.amount)
        && methods.iter().any(|m| m.value() == "stripe")
        && let Some(reason) = stripe_limits::below_minimum(amount)
    {
        errors.push(error_at(lit.span(), reason));
    }

    Terms {
        amount: args.amount,
        currency: args.currency,
        grants,
        scope: args.scope,
        methods,
        price: args.price,
        preconditions,
        description: args.description,
        capture,
    }
}

/// Checks a method name against the rails the runtime knows.
fn check_method(name: &str) -> Result<(), String> {
    if !is_valid_method(name) {
        return Err(format!(
            "`{name}` is not a payment method name: use lowercase letters and digits, e.g. `stripe`"
        ));
    }
    if let Some((_, compiled)) = BUILTIN_METHODS.iter().find(|(n, _)| *n == name) {
        return if *compiled {
            Ok(())
        } else {
            Err(format!(
                "payment method `{name}` is not compiled in; enable the `{name}` feature of the adapter crate"
            ))
        };
    }
    match suggest::closest(name, BUILTIN_METHODS.iter().map(|(n, _)| *n)) {
        // A custom rail's name is fine; a near miss of a built-in one is a typo.
        Some(near) => Err(format!(
            "unknown payment method `{name}`; did you mean `{near}`?"
        )),
        None => Ok(()),
    }
}
