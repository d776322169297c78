//! Prepared routes: a route's terms resolved against the price book and
//! defaults once, with every constant part of its challenges precomputed so
//! minting a 402 is a clock read, one HMAC and a few string copies.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::GateInner;
use crate::binding::PrefixedMac;
use crate::config::{check_method_syntax, grants as check_grants, parse_amount};
use crate::error::ConfigError;
use crate::precondition::Checks;
use crate::price::{self, Currency};
use crate::rail::{Price, Rail};
use crate::spec::{Capture, RouteSpec};
use crate::suggest;
use crate::wire::auth_params::{self, AuthParamError};
use crate::wire::problem::problem_json;
use crate::wire::{PaymentRequest, ProblemType, base64url, jcs};

/// A gated route, ready to admit requests. Cheap to clone.
#[derive(Clone)]
pub struct Route(pub(crate) Arc<RouteInner>);

pub(crate) struct RouteInner {
    pub(crate) id: String,
    pub(crate) price: Price,
    /// The route binding carried in `opaque` is the JCS object
    /// `{"grants", "nonce", "route", "scope"}`; these are the canonical JSON
    /// before and after the per-challenge nonce.
    pub(crate) opaque_prefix: String,
    pub(crate) opaque_suffix: String,
    pub(crate) offers: Vec<Offer>,
    pub(crate) checks: Checks,
    /// The price terms, for conflict messages (`5.00 USD x10`).
    pub(crate) terms: String,
    /// The `detail` of this route's 402 (`Payment is required (…).`).
    pub(crate) required_detail: String,
    /// The 402's problem body around the primary challenge id.
    pub(crate) required_body: (String, String),
    /// `opaque`'s base64url with its constant parts encoded once.
    pub(crate) opaque_encoding: OpaqueEncoding,
    /// `capture = "after"` on a route that is not metered: authorize before
    /// the handler, capture on a 2xx answer.
    pub(crate) deferred: bool,
}

/// One method offered on a route.
pub(crate) struct Offer {
    pub(crate) method: String,
    pub(crate) intent: String,
    pub(crate) rail: Arc<dyn Rail>,
    pub(crate) request: PaymentRequest,
    /// HMAC state after `realm|method|intent|request|`.
    pub(crate) mac: PrefixedMac,
    /// HMAC input between `expires` and `opaque`: `||[header|]`.
    pub(crate) mac_middle: String,
    /// Header text between the id and the expiry value.
    pub(crate) header_middle: String,
    /// Header text between the expiry value and the opaque value.
    pub(crate) header_tail: String,
}

/// `opaque` is base64url(`opaque_prefix` ‖ nonce ‖ `opaque_suffix`), and
/// base64 encodes each 3-byte group on its own: the groups that lie wholly
/// inside the constant prefix or suffix encode the same for every challenge.
/// Only the groups around the nonce are encoded per challenge.
pub(crate) struct OpaqueEncoding {
    /// The encoding of the prefix's whole groups.
    head: String,
    /// The prefix's bytes after its last whole group (0 to 2).
    lead: Vec<u8>,
    /// The suffix's bytes that complete the nonce's last group (0 to 2).
    fill: Vec<u8>,
    /// The encoding of the rest of the suffix (starts on a group boundary).
    tail: String,
}

impl OpaqueEncoding {
    fn new(prefix: &str, nonce_len: usize, suffix: &str) -> Self {
        Self::from_bytes(prefix.as_bytes(), nonce_len, suffix.as_bytes())
    }

    fn from_bytes(prefix: &[u8], nonce_len: usize, suffix: &[u8]) -> Self {
        let whole = prefix.len() / 3 * 3;
        let fill = ((3 - (prefix.len() - whole + nonce_len) % 3) % 3).min(suffix.len());
        Self {
            head: base64url::encode(&prefix[..whole]),
            lead: prefix[whole..].to_vec(),
            fill: suffix[..fill].to_vec(),
            tail: base64url::encode(&suffix[fill..]),
        }
    }

    /// The encoded length for a nonce of `nonce_len` bytes.
    pub(crate) fn len(&self, nonce_len: usize) -> usize {
        self.head.len()
            + base64url::encoded_len(self.lead.len() + nonce_len + self.fill.len())
            + self.tail.len()
    }

    /// Appends base64url(prefix ‖ `nonce` ‖ suffix) to `out`.
    pub(crate) fn encode_into(&self, nonce: &[u8], out: &mut String) {
        let mut middle = [0u8; 64];
        let parts = [self.lead.as_slice(), nonce, self.fill.as_slice()];
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        out.push_str(&self.head);
        match middle.get_mut(..len) {
            Some(buf) => {
                let mut at = 0;
                for part in parts {
                    buf[at..at + part.len()].copy_from_slice(part);
                    at += part.len();
                }
                base64url::encode_into(buf, out);
            }
            // Nonces are 22 bytes; a longer one is encoded the slow way.
            None => base64url::encode_into(&parts.concat(), out),
        }
        out.push_str(&self.tail);
    }
}

impl Route {
    /// The route identity bound into its challenges (`GET /report`).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The resolved price.
    pub fn price(&self) -> &Price {
        &self.0.price
    }

    /// The scope metered sessions are locked to.
    pub fn scope(&self) -> &str {
        &self.0.price.scope
    }

    /// Accesses one payment buys.
    pub fn grants(&self) -> u32 {
        self.0.price.grants
    }

    /// Offered methods, primary first.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        self.0.offers.iter().map(|o| o.method.as_str())
    }

    /// The `request` object this route's challenge carries for `method`.
    pub fn request(&self, method: &str) -> Option<&Map<String, Value>> {
        self.0.offer(method).map(|o| o.request.fields())
    }

    /// Whether payments on this route are only authorized before the
    /// handler and captured when it answers 2xx (`capture = "after"`, not
    /// metered).
    pub fn defers_capture(&self) -> bool {
        self.0.deferred
    }

    /// Whether preconditions run before the payment (they see the whole
    /// request).
    pub(crate) fn has_preconditions(&self) -> bool {
        !self.0.checks.is_empty()
    }

    /// Names of the preconditions that run before the gate, in order.
    pub fn preconditions(&self) -> impl Iterator<Item = &str> {
        self.0.checks.iter().map(|(name, _)| name.as_str())
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("id", &self.0.id)
            .field("price", &self.0.price)
            .field("methods", &self.methods().collect::<Vec<_>>())
            .field("preconditions", &self.preconditions().collect::<Vec<_>>())
            .finish()
    }
}

impl RouteInner {
    pub(crate) fn offer(&self, method: &str) -> Option<&Offer> {
        self.offers.iter().find(|o| o.method == method)
    }
}

fn header_error(context: &str, e: AuthParamError) -> ConfigError {
    ConfigError::Invalid(format!("{context}: cannot be sent in a header: {e}"))
}

/// Resolves a route spec into a prepared route.
pub(crate) fn prepare(gate: &GateInner, spec: &RouteSpec) -> Result<RouteInner, ConfigError> {
    let id = spec.id();
    let ctx = format!("route `{id}`");
    let s = &spec.spec;
    let config = &gate.config;
    let defaults = &config.defaults;

    let entry = match &s.price {
        Some(key) => {
            if s.amount.is_some() || s.currency.is_some() {
                return Err(ConfigError::PriceWithAmount(ctx));
            }
            let entry = config
                .price_book
                .get(key)
                .ok_or_else(|| ConfigError::UnknownPrice {
                    context: ctx.clone(),
                    key: key.clone(),
                    suggestion: suggest::closest(key, config.price_book.keys().map(String::as_str))
                        .map(str::to_owned),
                })?;
            Some((key.as_str(), entry))
        }
        None => None,
    };

    let amount = match (entry, &s.amount) {
        (Some((_, entry)), _) => entry.amount,
        (None, Some(text)) => {
            let currency = match &s.currency {
                Some(code) => {
                    Currency::from_code(code).map_err(|source| ConfigError::Currency {
                        context: ctx.clone(),
                        source,
                    })?
                }
                None => defaults.currency,
            };
            parse_amount(&ctx, text, currency)?
        }
        (None, None) => {
            if s.currency.is_some() {
                return Err(ConfigError::Invalid(format!(
                    "{ctx}: `currency` is set without `amount`; set both, or neither to use the defaults"
                )));
            }
            defaults
                .amount
                .ok_or_else(|| ConfigError::NoAmount(ctx.clone()))?
        }
    };

    let grants = match (s.grants, entry.and_then(|(_, e)| e.grants)) {
        (Some(g), _) => check_grants(&ctx, g)?,
        (None, Some(g)) => g,
        (None, None) => defaults.grants,
    };

    let scope = match (&s.scope, entry) {
        (Some(scope), _) => scope.clone(),
        (None, Some((key, _))) => key.to_owned(),
        // Without a path template (a handler registered by hand), its name.
        (None, None) if spec.path.is_empty() => price::default_scope(
            spec.handler
                .as_deref()
                .and_then(|h| h.rsplit("::").next())
                .unwrap_or("root"),
        ),
        (None, None) => price::default_scope(&spec.path),
    };
    price::validate_scope(&scope).map_err(|source| ConfigError::Scope {
        context: ctx.clone(),
        scope: scope.clone(),
        source,
    })?;

    let methods: Vec<String> = if !s.methods.is_empty() {
        s.methods.clone()
    } else if let Some(methods) = entry.and_then(|(_, e)| e.methods.clone()) {
        methods
    } else if let Some(method) = &defaults.method {
        vec![method.clone()]
    } else if gate.rails.len() == 1 {
        gate.rails.keys().cloned().collect()
    } else {
        return Err(ConfigError::NoMethod(ctx));
    };
    for (i, method) in methods.iter().enumerate() {
        check_method_syntax(&ctx, method)?;
        if methods[..i].contains(method) {
            return Err(ConfigError::Invalid(format!(
                "{ctx}: method `{method}` is listed twice"
            )));
        }
    }

    let description = s
        .description
        .clone()
        .or_else(|| entry.and_then(|(_, e)| e.description.clone()));

    let checks = gate.preconditions.resolve(&ctx, &s.preconditions)?;

    let price = Price {
        amount,
        grants,
        scope: scope.clone(),
        description: description.clone(),
    };
    let terms = format!("{} {} x{}", amount, amount.currency(), grants);

    // JCS orders the keys grants < nonce < route < scope.
    let mut opaque_prefix = String::from("{\"grants\":");
    jcs::write_string(&grants.to_string(), &mut opaque_prefix);
    opaque_prefix.push_str(",\"nonce\":\"");
    let mut opaque_suffix = String::from("\",\"route\":");
    jcs::write_string(&id, &mut opaque_suffix);
    opaque_suffix.push_str(",\"scope\":");
    jcs::write_string(&scope, &mut opaque_suffix);
    opaque_suffix.push('}');

    let capture = s.capture.unwrap_or(defaults.capture);
    // Metered routes capture when the session is created, before the first
    // access: there is nothing to defer.
    let deferred = capture == Capture::After && grants == 1;

    let mut offers = Vec::with_capacity(methods.len());
    for method in methods {
        let rail = gate.rail(&ctx, &method)?;
        if deferred && !rail.defers_capture() {
            return Err(ConfigError::Invalid(format!(
                "{ctx}: capture = \"after\", but method `{method}` settles at once and cannot defer capture; \
                 offer only methods that can (stripe), or remove `capture = \"after\"` (or MPP_CAPTURE=after)"
            )));
        }
        let fields = rail
            .challenge_request(&price)
            .map_err(|source| ConfigError::Rail {
                method: method.clone(),
                source,
            })?;
        let request = PaymentRequest::from_fields(fields);
        let intent = rail.intent().to_owned();

        let mut middle = String::with_capacity(96 + request.encoded().len());
        middle.push('"');
        for (name, value) in [
            ("realm", config.realm.as_str()),
            ("method", method.as_str()),
            ("intent", intent.as_str()),
            ("request", request.encoded()),
        ] {
            middle.push_str(", ");
            auth_params::push_param(&mut middle, name, value).map_err(|e| header_error(&ctx, e))?;
        }
        if let Some(description) = &description {
            middle.push_str(", ");
            auth_params::push_param(&mut middle, "description", description)
                .map_err(|e| header_error(&ctx, e))?;
        }
        middle.push_str(", expires=\"");

        let mut tail = String::from("\"");
        let mut mac_middle = String::from("||");
        if let Some(header) = &config.credential_header {
            tail.push_str(", ");
            auth_params::push_param(&mut tail, "header", header)
                .map_err(|e| header_error(&ctx, e))?;
            mac_middle.push_str(header);
            mac_middle.push('|');
        }
        tail.push_str(", opaque=\"");

        let mac = config
            .key
            .prefixed(&config.realm, &method, &intent, request.encoded());
        offers.push(Offer {
            method,
            intent,
            rail,
            request,
            mac,
            mac_middle,
            header_middle: middle,
            header_tail: tail,
        });
    }

    let required_detail = match &price.description {
        Some(d) => format!("Payment is required ({d})."),
        None => "Payment is required.".to_owned(),
    };
    // Challenge ids are base64url: written as JSON strings without escapes.
    let mut required_body = problem_json(ProblemType::PaymentRequired, &required_detail, Some(""));
    required_body.truncate(required_body.len() - "\"}".len());
    let opaque_encoding = OpaqueEncoding::new(
        &opaque_prefix,
        crate::random::NonceSource::LEN,
        &opaque_suffix,
    );
    Ok(RouteInner {
        id,
        required_body: (required_body, "\"}".to_owned()),
        opaque_encoding,
        required_detail,
        price,
        opaque_prefix,
        opaque_suffix,
        offers,
        checks,
        terms,
        deferred,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_encoding_matches_encoding_the_whole() {
        let text = "{\"grants\":\"1\",\"nonce\":\"é…\",\"route\":\"GET /r\"}";
        for p in 0..8 {
            for q in (0..8).chain(text.len() - 2..=text.len()) {
                for nonce_len in [0, 1, 2, 3, 21, 22, 23, 70] {
                    let (prefix, suffix) = (&text.as_bytes()[..p], &text.as_bytes()[q..]);
                    let nonce: Vec<u8> = (0..nonce_len).map(|i| b'a' + (i % 26) as u8).collect();
                    let whole = [prefix, &nonce, suffix].concat();
                    let encoding = OpaqueEncoding::from_bytes(prefix, nonce_len, suffix);
                    let mut out = String::new();
                    encoding.encode_into(&nonce, &mut out);
                    assert_eq!(out, base64url::encode(&whole), "{p} {q} {nonce_len}");
                    assert_eq!(encoding.len(nonce_len), out.len());
                }
            }
        }
    }
}
