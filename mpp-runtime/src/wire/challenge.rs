//! A Payment challenge, as carried by `WWW-Authenticate` (and echoed back
//! inside a credential).

use serde_json::{Map, Value};
use thiserror::Error;

use super::auth_params::{self, AuthParamError};
use super::request::{PaymentRequest, RequestError};
use super::timestamp::Timestamp;

/// The authentication scheme name.
pub const SCHEME: &str = "Payment";

/// One Payment challenge.
///
/// ```
/// use mpp_runtime::wire::Challenge;
/// let header = r#"Payment id="ch_1", realm="api.example.com", method="tempo", intent="charge", request="e30""#;
/// let challenge = Challenge::parse(header).unwrap();
/// assert_eq!(challenge.method, "tempo");
/// assert_eq!(challenge.to_header().unwrap(), header);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    /// Challenge identifier (HMAC-bound to the other fields by this server).
    pub id: String,
    /// Protection space.
    pub realm: String,
    /// Payment method (lowercase, e.g. `stripe`, `tempo`).
    pub method: String,
    /// Payment intent (e.g. `charge`).
    pub intent: String,
    /// Method-specific payment request.
    pub request: PaymentRequest,
    /// Human-readable purpose (display only, not bound).
    pub description: Option<String>,
    /// Request body digest (RFC 9530).
    pub digest: Option<String>,
    /// RFC 3339 expiry.
    pub expires: Option<String>,
    /// A credential header other than `Authorization`, when the server asks
    /// for one.
    pub header: Option<String>,
    /// Server correlation data, returned unchanged by the client.
    pub opaque: Option<String>,
}

/// Why a challenge could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    /// No `Payment` auth scheme in the header.
    #[error("missing Payment scheme")]
    MissingScheme,
    /// The auth-param syntax is broken.
    #[error(transparent)]
    Syntax(#[from] AuthParamError),
    /// A required parameter is absent.
    #[error("missing `{0}` parameter")]
    Missing(&'static str),
    /// A parameter has a value it may not have.
    #[error("invalid `{field}` parameter: {reason}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The `request` parameter does not decode to a JSON object.
    #[error("invalid `request` parameter: {0}")]
    Request(#[from] RequestError),
}

/// Whether `method` is a valid payment method identifier (lowercase, as the
/// stock mppx client enforces: `[a-z][a-z0-9:_-]*`).
pub fn is_valid_method(method: &str) -> bool {
    let mut bytes = method.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":_-".contains(&b))
}

/// Whether `intent` is a valid intent identifier (`1*(ALPHA / DIGIT / "-")`).
pub fn is_valid_intent(intent: &str) -> bool {
    !intent.is_empty()
        && intent
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `name` is a valid HTTP field name (an RFC 9110 token).
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether a credential header name is the protocol default (`Authorization`),
/// which is never advertised nor bound.
pub fn is_default_credential_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization")
}

impl Challenge {
    /// Parses the first `Payment` challenge in a `WWW-Authenticate` value.
    /// Other schemes in the same value are skipped; unknown parameters are
    /// ignored.
    pub fn parse(header: &str) -> Result<Self, ChallengeError> {
        auth_params::check_header(header)?;
        let start =
            auth_params::first_scheme_start(header, SCHEME).ok_or(ChallengeError::MissingScheme)?;
        Self::parse_at(header, start)
    }

    /// Parses every `Payment` challenge in a `WWW-Authenticate` value (a server
    /// offering several methods sends several; the first is the primary).
    pub fn parse_all(header: &str) -> Result<Vec<Self>, ChallengeError> {
        auth_params::check_header(header)?;
        let starts = auth_params::scheme_starts(header, SCHEME);
        if starts.is_empty() {
            return Err(ChallengeError::MissingScheme);
        }
        starts
            .into_iter()
            .map(|start| Self::parse_at(header, start))
            .collect()
    }

    fn parse_at(header: &str, start: usize) -> Result<Self, ChallengeError> {
        let params_text = header[start + SCHEME.len()..].trim_start_matches([' ', '\t']);
        let (params, _) = auth_params::parse_params(params_text)?;
        if let Some(name) = &params.unterminated
            && KNOWN_PARAMS.contains(&name.as_str())
        {
            return Err(AuthParamError::Malformed(params_text.len()).into());
        }
        let required = |name: &'static str| -> Result<String, ChallengeError> {
            params
                .get(name)
                .map(str::to_owned)
                .ok_or(ChallengeError::Missing(name))
        };
        let id = required("id")?;
        if id.is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        let realm = required("realm")?;
        let method = required("method")?;
        if !is_valid_method(&method) {
            return Err(invalid("method", "must be a lowercase method identifier"));
        }
        let intent = required("intent")?;
        if !is_valid_intent(&intent) {
            return Err(invalid("intent", "must be an intent identifier"));
        }
        let request = PaymentRequest::decode(&required("request")?)?;
        let expires = params.get("expires").map(str::to_owned);
        if let Some(expires) = &expires {
            Timestamp::parse_rfc3339(expires).map_err(|e| invalid("expires", e.to_string()))?;
        }
        let header_name = params
            .get("header")
            .filter(|h| !is_default_credential_header(h))
            .map(str::to_owned);
        if let Some(name) = &header_name
            && !is_valid_header_name(name)
        {
            return Err(invalid("header", "must be an HTTP field name"));
        }
        Ok(Self {
            id,
            realm,
            method,
            intent,
            request,
            description: params.get("description").map(str::to_owned),
            digest: params.get("digest").map(str::to_owned),
            expires,
            header: header_name,
            opaque: params.get("opaque").map(str::to_owned),
        })
    }

    /// Formats the challenge as a `WWW-Authenticate` value, with parameters in
    /// the order the stock mppx client emits them. The `request` is always
    /// written in canonical form.
    pub fn to_header(&self) -> Result<String, ChallengeError> {
        if self.id.is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        let request = self.request.canonical();
        let mut out = String::with_capacity(96 + self.realm.len() + request.len());
        out.push_str(SCHEME);
        out.push(' ');
        auth_params::push_param(&mut out, "id", &self.id)?;
        for (name, value) in [
            ("realm", self.realm.as_str()),
            ("method", self.method.as_str()),
            ("intent", self.intent.as_str()),
            ("request", request.as_str()),
        ] {
            out.push_str(", ");
            auth_params::push_param(&mut out, name, value)?;
        }
        let header = self
            .header
            .as_deref()
            .filter(|h| !is_default_credential_header(h));
        for (name, value) in [
            ("description", self.description.as_deref()),
            ("digest", self.digest.as_deref()),
            ("expires", self.expires.as_deref()),
            ("header", header),
            ("opaque", self.opaque.as_deref()),
        ] {
            if let Some(value) = value {
                out.push_str(", ");
                auth_params::push_param(&mut out, name, value)?;
            }
        }
        Ok(out)
    }

    /// The challenge as a protocol object: `request` decoded, absent optional
    /// fields omitted (the form the conformance harness compares).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), self.id.clone().into());
        map.insert("realm".into(), self.realm.clone().into());
        map.insert("method".into(), self.method.clone().into());
        map.insert("intent".into(), self.intent.clone().into());
        map.insert(
            "request".into(),
            Value::Object(self.request.fields().clone()),
        );
        for (name, value) in [
            ("description", &self.description),
            ("digest", &self.digest),
            ("expires", &self.expires),
            ("header", &self.header),
            ("opaque", &self.opaque),
        ] {
            if let Some(value) = value {
                map.insert(name.into(), value.clone().into());
            }
        }
        Value::Object(map)
    }

    /// Builds a challenge from its protocol object (`request` a JSON object).
    pub fn from_json(value: &Value) -> Result<Self, ChallengeError> {
        let Value::Object(map) = value else {
            return Err(invalid("challenge", "must be a JSON object"));
        };
        let string = |name: &'static str| -> Result<Option<String>, ChallengeError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(name, "must be a string")),
            }
        };
        let required = |name: &'static str| string(name)?.ok_or(ChallengeError::Missing(name));
        let request = match map.get("request") {
            Some(Value::Object(fields)) => PaymentRequest::from_fields(fields.clone()),
            Some(Value::String(encoded)) => PaymentRequest::decode(encoded)?,
            Some(_) => return Err(invalid("request", "must be a JSON object")),
            None => return Err(ChallengeError::Missing("request")),
        };
        Ok(Self {
            id: required("id")?,
            realm: required("realm")?,
            method: required("method")?,
            intent: required("intent")?,
            request,
            description: string("description")?,
            digest: string("digest")?,
            expires: string("expires")?,
            header: string("header")?.filter(|h| !is_default_credential_header(h)),
            opaque: string("opaque")?,
        })
    }

    /// The parsed `expires`, if present and valid.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires
            .as_deref()
            .and_then(|e| Timestamp::parse_rfc3339(e).ok())
    }
}

const KNOWN_PARAMS: [&str; 10] = [
    "id",
    "realm",
    "method",
    "intent",
    "request",
    "description",
    "digest",
    "expires",
    "header",
    "opaque",
];

fn invalid(field: &'static str, reason: impl Into<String>) -> ChallengeError {
    ChallengeError::Invalid {
        field,
        reason: reason.into(),
    }
}
