//! The price-spec parsers `#[paid]` runs at compile time and the runtime at
//! startup: ISO 4217 codes, exact decimal amounts, scopes, grants, default
//! scopes from path templates, and a whole route spec through the gate.
//!
//! The input is split on newlines into currency, amount, scope, grants,
//! path template and description. Never panics; error spans lie inside the
//! text on character boundaries (the macro points at them); an accepted
//! amount formats with the currency's exponent and re-parses equal; a
//! default scope is always a valid scope; a route the gate accepts mints
//! 402s whose challenges parse, carry the price and verify.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use mpp_runtime::price::{
    self, Amount, Currency, MAX_GRANTS, MAX_SCOPE_LEN, default_scope, is_scope_char, parse_amount,
    validate_grants, validate_scope,
};
use mpp_runtime::wire::Challenge;
use mpp_runtime::*;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(6, '\n');
    // Codes are three letters; a long line only slows the "did you mean"
    // search (edit distance to every code) without reaching new code.
    let currency_text = truncate(parts.next().unwrap_or_default(), 16);
    let amount_text = parts.next().unwrap_or_default();
    let scope_text = parts.next().unwrap_or_default();
    let grants_text = parts.next().unwrap_or_default();
    let path_text = parts.next().unwrap_or_default();
    let description = parts.next();

    let currency = check_currency(currency_text);
    for c in [currency.unwrap_or(Currency::USD), Currency::USD] {
        check_amount(amount_text, c);
    }
    check_scope(scope_text);
    let grants = grants_text.trim().parse::<u64>().ok();
    if let Some(g) = grants {
        match validate_grants(g) {
            Ok(v) => assert!(v >= 1 && v <= MAX_GRANTS && u64::from(v) == g),
            Err(_) => assert!(g == 0 || g > u64::from(MAX_GRANTS)),
        }
    }
    let default = default_scope(path_text);
    assert!(
        validate_scope(&default).is_ok(),
        "default_scope({path_text:?}) = {default:?} is not a valid scope"
    );

    check_route(
        currency_text,
        amount_text,
        scope_text,
        grants.and_then(|g| u32::try_from(g).ok()),
        path_text,
        description,
    );
});

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn check_currency(code: &str) -> Option<Currency> {
    match Currency::from_code(code) {
        Ok(c) => {
            assert_eq!(c.code().len(), 3);
            assert!(c.code().bytes().all(|b| b.is_ascii_uppercase()));
            assert!(
                c.code().eq_ignore_ascii_case(code),
                "{code:?} became {}",
                c.code()
            );
            assert_eq!(Currency::from_code(c.code()).ok(), Some(c));
            assert!(c.exponent() <= 4);
            Some(c)
        }
        Err(e) => {
            if let Some(s) = e.suggestion {
                assert!(
                    Currency::from_code(s).is_ok(),
                    "suggested {s} is not a currency"
                );
            }
            let _ = e.to_string();
            None
        }
    }
}

fn check_span(text: &str, span: Option<std::ops::Range<usize>>) {
    if let Some(span) = span {
        assert!(
            span.start <= span.end && span.end <= text.len(),
            "span {span:?} outside {text:?}"
        );
        assert!(
            text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
            "span {span:?} splits a character of {text:?}"
        );
    }
}

fn check_amount(text: &str, currency: Currency) {
    match parse_amount(text, currency) {
        Ok(amount) => {
            assert!(amount.minor_units() > 0);
            assert_eq!(amount.currency(), currency);
            let shown = amount.to_string();
            let decimals = shown.split_once('.').map_or(0, |(_, f)| f.len());
            assert_eq!(decimals, usize::from(currency.exponent()), "{shown}");
            assert_eq!(
                parse_amount(&shown, currency),
                Ok(amount),
                "{text:?} shown as {shown}"
            );
            assert_eq!(
                Amount::from_minor_units(amount.minor_units(), currency),
                Some(amount)
            );
            for decimals in [0u8, 2, 6, 18, 40, u8::MAX] {
                if let Ok(units) = amount.to_base_units(decimals) {
                    let e = currency.exponent();
                    if decimals >= e {
                        let factor = 10u128.pow(u32::from(decimals - e));
                        assert_eq!(units, u128::from(amount.minor_units()) * factor);
                    } else {
                        let factor = 10u128.pow(u32::from(e - decimals));
                        assert_eq!(units * factor, u128::from(amount.minor_units()));
                    }
                }
            }
        }
        Err(e) => {
            check_span(text, e.span());
            let _ = e.to_string();
        }
    }
}

fn check_scope(scope: &str) {
    match validate_scope(scope) {
        Ok(()) => {
            assert!(!scope.is_empty() && scope.len() <= MAX_SCOPE_LEN);
            assert!(scope.chars().all(is_scope_char));
        }
        Err(e) => {
            check_span(scope, e.span());
            let _ = e.to_string();
        }
    }
}

/// A whole route spec through the gate, as the adapters prepare `#[paid]`
/// routes at startup.
fn check_route(
    currency: &str,
    amount: &str,
    scope: &str,
    grants: Option<u32>,
    path: &str,
    description: Option<&str>,
) {
    let gate = common::gate_without_store();
    let mut spec = PaymentSpec::new().amount(amount);
    if !currency.is_empty() {
        spec = spec.currency(currency);
    }
    if !scope.is_empty() {
        spec = spec.scope(scope);
    }
    if let Some(g) = grants {
        spec = spec.grants(g);
    }
    if let Some(d) = description {
        spec = spec.description(d);
    }
    let Ok(route) = gate.route(&RouteSpec::new("GET", path, spec)) else {
        return;
    };
    // What the gate accepted, the parsers accept.
    let code = if currency.is_empty() { "USD" } else { currency };
    let c = Currency::from_code(code).expect("an accepted route has a valid currency");
    assert_eq!(
        route.price().amount,
        parse_amount(amount, c).expect("an accepted amount parses")
    );
    assert!(
        validate_scope(route.scope()).is_ok(),
        "route scope {:?}",
        route.scope()
    );
    if !scope.is_empty() {
        assert_eq!(route.scope(), scope);
    }
    assert!(price::validate_grants(u64::from(route.grants())).is_ok());

    // Its 402 carries one challenge that parses, verifies and names the price.
    let response = gate.challenge(&route);
    assert_eq!(response.status, 402);
    let header = response
        .header("www-authenticate")
        .expect("a 402 carries a challenge");
    assert!(header.is_ascii());
    let challenge = Challenge::parse(header)
        .unwrap_or_else(|e| panic!("the gate minted a challenge it cannot parse ({e}): {header}"));
    assert!(
        common::key().verify_challenge(&challenge),
        "a minted challenge does not verify"
    );
    assert_eq!(
        challenge.request.str_field("amount"),
        Some(route.price().amount.minor_units().to_string().as_str())
    );
    assert_eq!(
        challenge.description.as_deref(),
        route.price().description.as_deref()
    );
}
