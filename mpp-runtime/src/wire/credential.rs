//! The paid retry: `Authorization: Payment <base64url(JSON)>`, and the
//! metered-session form `Authorization: Payment session="sess_…"`.

use serde_json::{Map, Value};
use thiserror::Error;

use super::auth_params::{self, AuthParamError};
use super::challenge::{Challenge, SCHEME, is_default_credential_header};
use super::request::{PaymentRequest, RequestError};
use super::{base64url, jcs};

/// Largest `Authorization` value accepted (a signed transaction or a Stellar
/// envelope fits comfortably; anything larger is refused before decoding).
pub const MAX_CREDENTIAL_LEN: usize = auth_params::MAX_HEADER_LEN;

/// A payment credential: the echoed challenge plus the method's proof.
///
/// ```
/// use mpp_runtime::wire::{Authorization, Credential};
/// let header = "Payment eyJjaGFsbGVuZ2UiOnsiaWQiOiJjaF8xIiwicmVhbG0iOiJhcGkiLCJtZXRob2QiOiJ0ZW1wbyIsImludGVudCI6ImNoYXJnZSIsInJlcXVlc3QiOiJlMzAifSwicGF5bG9hZCI6e319";
/// let Authorization::Credential(credential) = Authorization::parse(header).unwrap() else { panic!() };
/// assert_eq!(credential.challenge.id, "ch_1");
/// assert_eq!(Credential::parse(&credential.to_header()).unwrap(), credential);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// The challenge as the client echoed it.
    pub challenge: Challenge,
    /// Method-specific proof (a Stripe SPT, a signed transaction, …).
    pub payload: Map<String, Value>,
    /// Optional payer identifier (a DID string, or an object).
    pub source: Option<Value>,
}

/// What a `Payment` `Authorization` header carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    /// A paid retry.
    Credential(Credential),
    /// A metered-session follow-up.
    Session(SessionToken),
}

/// The session form: `Payment session="sess_…"` (an optional `method`
/// parameter, as laravel-mpp clients send it, is accepted and ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// The session id.
    pub id: String,
}

/// Why an `Authorization: Payment` value is not a usable credential.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialError {
    /// No `Payment` scheme in the value.
    #[error("missing Payment scheme")]
    MissingScheme,
    /// The value is larger than [`MAX_CREDENTIAL_LEN`].
    #[error("credential is too large ({0} bytes)")]
    TooLarge(usize),
    /// Auth-param syntax errors in the session form.
    #[error(transparent)]
    Syntax(#[from] AuthParamError),
    /// The token is not base64url.
    #[error("credential is not base64url: {0}")]
    Encoding(#[from] base64url::Base64Error),
    /// The decoded token is not a JSON object.
    #[error("credential is not a JSON object: {0}")]
    Json(String),
    /// A required field is missing.
    #[error("credential is missing `{0}`")]
    Missing(&'static str),
    /// A field has the wrong type or an invalid value.
    #[error("credential field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field (dotted path).
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl From<RequestError> for CredentialError {
    fn from(e: RequestError) -> Self {
        invalid("challenge.request", e.to_string())
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CredentialError {
    CredentialError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Authorization {
    /// Parses the first `Payment` credential in an `Authorization` value.
    pub fn parse(header: &str) -> Result<Self, CredentialError> {
        if header.len() > MAX_CREDENTIAL_LEN {
            return Err(CredentialError::TooLarge(header.len()));
        }
        auth_params::check_header(header)?;
        let start = *auth_params::scheme_starts(header, SCHEME)
            .first()
            .ok_or(CredentialError::MissingScheme)?;
        let rest = header[start + SCHEME.len()..].trim_start_matches([' ', '\t']);
        if let Some(token) = token68(rest) {
            return Credential::from_token(token).map(Self::Credential);
        }
        let (params, _) = auth_params::parse_params(rest)?;
        match params.get("session") {
            Some(id) if !id.is_empty() => Ok(Self::Session(SessionToken { id: id.to_owned() })),
            Some(_) => Err(invalid("session", "must not be empty")),
            None => Err(CredentialError::Missing("session")),
        }
    }

    /// Parses the first `Payment` credential among several header values
    /// (a request may carry more than one `Authorization` line).
    ///
    /// Returns `None` when no value uses the `Payment` scheme.
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Option<Result<Self, CredentialError>> {
        values.into_iter().find_map(|value| match Self::parse(value) {
            Err(CredentialError::MissingScheme) => None,
            other => Some(other),
        })
    }
}

/// The token68 at the start of `rest`, if `rest` holds one (rather than
/// auth-params): `1*(ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/") *"="`
/// followed by the end of the value, whitespace or a comma.
fn token68(rest: &str) -> Option<&str> {
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b"-._~+/".contains(&b[i])) {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    while i < b.len() && b[i] == b'=' {
        i += 1;
    }
    match b.get(i) {
        None | Some(b' ' | b'\t' | b',') => Some(&rest[..i]),
        _ => None,
    }
}

impl Credential {
    /// Parses an `Authorization` value that must hold a full credential.
    pub fn parse(header: &str) -> Result<Self, CredentialError> {
        match Authorization::parse(header)? {
            Authorization::Credential(credential) => Ok(credential),
            Authorization::Session(_) => Err(CredentialError::Missing("challenge")),
        }
    }

    /// Decodes the base64url token of a credential.
    pub fn from_token(token: &str) -> Result<Self, CredentialError> {
        let bytes = base64url::decode(token)?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| CredentialError::Json(e.to_string()))?;
        Self::from_json(value)
    }

    /// Builds a credential from its decoded JSON form (`challenge.request` a
    /// base64url string).
    pub fn from_json(value: Value) -> Result<Self, CredentialError> {
        let Value::Object(mut top) = value else {
            return Err(CredentialError::Json("not an object".into()));
        };
        let Some(Value::Object(mut ch)) = top.remove("challenge") else {
            return Err(match top.contains_key("challenge") {
                true => invalid("challenge", "must be an object"),
                false => CredentialError::Missing("challenge"),
            });
        };
        let payload = match top.remove("payload") {
            Some(Value::Object(map)) => map,
            Some(_) => return Err(invalid("payload", "must be an object")),
            None => return Err(CredentialError::Missing("payload")),
        };
        let source = match top.remove("source") {
            None | Some(Value::Null) => None,
            Some(v @ (Value::String(_) | Value::Object(_))) => Some(v),
            Some(_) => return Err(invalid("source", "must be a string or an object")),
        };
        let id = take_string(&mut ch, "id", "challenge.id")?
            .ok_or(CredentialError::Missing("challenge.id"))?;
        if id.is_empty() {
            return Err(invalid("challenge.id", "must not be empty"));
        }
        let required = |ch: &mut Map<String, Value>, name: &str, path: &'static str| {
            take_string(ch, name, path)?.ok_or(CredentialError::Missing(path))
        };
        let realm = required(&mut ch, "realm", "challenge.realm")?;
        let method = required(&mut ch, "method", "challenge.method")?;
        let intent = required(&mut ch, "intent", "challenge.intent")?;
        let request = PaymentRequest::decode(&required(&mut ch, "request", "challenge.request")?)?;
        let opaque = match ch.remove("opaque") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            // Older mppx clients echoed `opaque` expanded as a string map.
            Some(Value::Object(map)) if map.values().all(Value::is_string) => {
                Some(jcs::object_to_base64url(&map))
            }
            Some(_) => return Err(invalid("challenge.opaque", "must be a string")),
        };
        let header = take_string(&mut ch, "header", "challenge.header")?
            .filter(|h| !is_default_credential_header(h));
        Ok(Self {
            challenge: Challenge {
                id,
                realm,
                method,
                intent,
                request,
                description: take_string(&mut ch, "description", "challenge.description")?,
                digest: take_string(&mut ch, "digest", "challenge.digest")?,
                expires: take_string(&mut ch, "expires", "challenge.expires")?,
                header,
                opaque,
            },
            payload,
            source,
        })
    }

    /// The credential as a protocol object: the challenge with its `request`
    /// decoded (the form the conformance harness compares).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("challenge".into(), self.challenge.to_json());
        map.insert("payload".into(), Value::Object(self.payload.clone()));
        if let Some(source) = &self.source {
            map.insert("source".into(), source.clone());
        }
        Value::Object(map)
    }

    /// Builds a credential from its protocol object (`challenge.request` a
    /// JSON object, as [`Credential::to_json`] writes it).
    pub fn from_protocol_json(value: &Value) -> Result<Self, CredentialError> {
        let Value::Object(top) = value else {
            return Err(CredentialError::Json("not an object".into()));
        };
        let challenge = top.get("challenge").ok_or(CredentialError::Missing("challenge"))?;
        let challenge = Challenge::from_json(challenge).map_err(|e| invalid("challenge", e.to_string()))?;
        if challenge.id.is_empty() {
            return Err(invalid("challenge.id", "must not be empty"));
        }
        let payload = match top.get("payload") {
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(invalid("payload", "must be an object")),
            None => return Err(CredentialError::Missing("payload")),
        };
        let source = match top.get("source") {
            None | Some(Value::Null) => None,
            Some(v @ (Value::String(_) | Value::Object(_))) => Some(v.clone()),
            Some(_) => return Err(invalid("source", "must be a string or an object")),
        };
        Ok(Self {
            challenge,
            payload,
            source,
        })
    }

    /// The credential as JSON, fields in the order the conformance vectors
    /// use, `challenge.request` in canonical encoding.
    pub fn to_json_string(&self) -> String {
        let ch = &self.challenge;
        let mut out = String::with_capacity(256 + ch.request.encoded().len());
        out.push_str("{\"challenge\":{");
        let mut first = true;
        let mut field = |out: &mut String, name: &str, value: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            jcs::write_string(name, out);
            out.push(':');
            jcs::write_string(value, out);
        };
        let request = ch.request.canonical();
        for (name, value) in [
            ("id", Some(ch.id.as_str())),
            ("realm", Some(ch.realm.as_str())),
            ("method", Some(ch.method.as_str())),
            ("intent", Some(ch.intent.as_str())),
            ("request", Some(request.as_str())),
            ("description", ch.description.as_deref()),
            ("digest", ch.digest.as_deref()),
            ("expires", ch.expires.as_deref()),
            ("header", ch.header.as_deref()),
            ("opaque", ch.opaque.as_deref()),
        ] {
            if let Some(value) = value {
                field(&mut out, name, value);
            }
        }
        out.push_str("},\"payload\":");
        out.push_str(&jcs::object_to_string(&self.payload));
        if let Some(source) = &self.source {
            out.push_str(",\"source\":");
            out.push_str(&jcs::to_string(source));
        }
        out.push('}');
        out
    }

    /// Formats as an `Authorization` value: `Payment <base64url(JSON)>`.
    pub fn to_header(&self) -> String {
        let mut out = String::from("Payment ");
        base64url::encode_into(self.to_json_string().as_bytes(), &mut out);
        out
    }
}

fn take_string(
    map: &mut Map<String, Value>,
    name: &str,
    path: &'static str,
) -> Result<Option<String>, CredentialError> {
    match map.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(path, "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguishes_token68_from_session_params() {
        assert_eq!(token68("abc=="), Some("abc=="));
        assert_eq!(token68("abc, Bearer x"), Some("abc"));
        assert_eq!(token68(r#"session="sess_1""#), None);
        assert_eq!(token68("session=sess_1"), None);
        assert_eq!(
            Authorization::parse(r#"Payment method="stripe", session="sess_1""#).unwrap(),
            Authorization::Session(SessionToken { id: "sess_1".into() })
        );
        assert_eq!(
            Authorization::parse("payment session=sess_2").unwrap(),
            Authorization::Session(SessionToken { id: "sess_2".into() })
        );
    }

    #[test]
    fn takes_the_first_payment_credential() {
        let values = ["Bearer abc", "Basic x, Payment session=\"s1\"", "Payment session=s2"];
        assert_eq!(
            Authorization::from_values(values).unwrap().unwrap(),
            Authorization::Session(SessionToken { id: "s1".into() })
        );
        assert!(Authorization::from_values(["Bearer abc"]).is_none());
    }

    #[test]
    fn rejects_oversized_values() {
        let big = format!("Payment {}", "A".repeat(MAX_CREDENTIAL_LEN));
        assert!(matches!(
            Authorization::parse(&big),
            Err(CredentialError::TooLarge(_))
        ));
    }
}
