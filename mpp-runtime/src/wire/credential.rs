//! The paid retry: `Authorization: Payment <base64url(JSON)>`, and the
//! metered-session form `Authorization: Payment session="sess_…"`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
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
///
/// Its `Debug` output leaves out the payload and source values: a credential
/// must never reach a log.
#[derive(Clone, PartialEq)]
pub struct Credential {
    /// The challenge as the client echoed it.
    pub challenge: Challenge,
    /// Method-specific proof (a Stripe SPT, a signed transaction, …).
    pub payload: Map<String, Value>,
    /// Optional payer identifier (a DID string, or an object).
    pub source: Option<Value>,
}

/// What a `Payment` `Authorization` header carries.
// Parsed once per request and consumed at once; boxing the credential would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    /// A paid retry.
    Credential(Credential),
    /// A metered-session follow-up.
    Session(SessionToken),
}

/// The session form: `Payment session="sess_…"` (an optional `method`
/// parameter, as laravel-mpp clients send it, is accepted and ignored).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// The session id.
    pub id: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("challenge", &self.challenge)
            .field(
                "payload",
                &format_args!("<{} fields redacted>", self.payload.len()),
            )
            .field("source", &self.source.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionToken")
            .field("id", &super::redacted(&self.id))
            .finish()
    }
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
        if memchr::memchr2(b'\r', b'\n', header.as_bytes()).is_some() {
            return Err(AuthParamError::LineBreak.into());
        }
        let start = auth_params::first_scheme_start(header, SCHEME)
            .ok_or(CredentialError::MissingScheme)?;
        let rest = header[start + SCHEME.len()..].trim_start_matches([' ', '\t']);
        // A plain session form cannot be a token68 (it holds quotes).
        if let Some(id) = plain_session(rest) {
            return Ok(Self::Session(SessionToken { id: id.to_owned() }));
        }
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
    pub fn from_values<S: AsRef<str>>(
        values: impl IntoIterator<Item = S>,
    ) -> Option<Result<Self, CredentialError>> {
        values
            .into_iter()
            .find_map(|value| match Self::parse(value.as_ref()) {
                Err(CredentialError::MissingScheme) => None,
                other => Some(other),
            })
    }
}

/// The id of the common session form `session="sess_…"` (nothing else, no
/// escapes, printable ASCII), read without the general auth-param parser;
/// anything else is left to it.
fn plain_session(rest: &str) -> Option<&str> {
    let id = rest.strip_prefix("session=\"")?.strip_suffix('"')?;
    let plain = !id.is_empty()
        && id
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\');
    plain.then_some(id)
}

/// The token68 at the start of `rest`, if `rest` holds one rather than
/// auth-params: a run up to the end, whitespace or a comma, with no `=`
/// before its trailing padding and no quote. Its characters are checked by
/// the base64 decoder.
fn token68(rest: &str) -> Option<&str> {
    let b = rest.as_bytes();
    let end = memchr::memchr3(b' ', b'\t', b',', b).unwrap_or(b.len());
    let token = &b[..end];
    let body = token.len() - token.iter().rev().take_while(|&&c| c == b'=').count();
    if body == 0 || memchr::memchr2(b'=', b'"', &token[..body]).is_some() {
        return None;
    }
    Some(&rest[..end])
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
        let wire: WireCredential<'_> =
            serde_json::from_slice(&bytes).map_err(|e| CredentialError::Json(e.to_string()))?;
        wire.into_credential()
    }

    /// Builds a credential from its decoded JSON form (`challenge.request` a
    /// base64url string), as found inside the `Authorization` token.
    pub fn from_json(value: &Value) -> Result<Self, CredentialError> {
        let wire =
            WireCredential::deserialize(value).map_err(|e| CredentialError::Json(e.to_string()))?;
        wire.into_credential()
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
        let challenge = top
            .get("challenge")
            .ok_or(CredentialError::Missing("challenge"))?;
        let challenge =
            Challenge::from_json(challenge).map_err(|e| invalid("challenge", e.to_string()))?;
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

/// A string that borrows from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// `opaque` as echoed: the base64url string, or (older mppx clients) the
/// expanded string map.
enum WireOpaque<'a> {
    Text(Cow<'a, str>),
    Map(Map<String, Value>),
}

impl<'de> Deserialize<'de> for WireOpaque<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OpaqueVisitor;
        impl<'de> Visitor<'de> for OpaqueVisitor {
            type Value = WireOpaque<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a string map")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(WireOpaque::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(WireOpaque::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, String>()? {
                    map.insert(key, Value::String(value));
                }
                Ok(WireOpaque::Map(map))
            }
        }
        deserializer.deserialize_any(OpaqueVisitor)
    }
}

/// The echoed challenge as found in the token (`request` still encoded).
#[derive(Default)]
struct WireChallenge<'a> {
    id: Option<Cow<'a, str>>,
    realm: Option<Cow<'a, str>>,
    method: Option<Cow<'a, str>>,
    intent: Option<Cow<'a, str>>,
    request: Option<Cow<'a, str>>,
    description: Option<Cow<'a, str>>,
    digest: Option<Cow<'a, str>>,
    expires: Option<Cow<'a, str>>,
    header: Option<Cow<'a, str>>,
    opaque: Option<WireOpaque<'a>>,
}

/// The decoded token: objects only (never arrays), duplicate keys refused,
/// unknown keys ignored.
struct WireCredential<'a> {
    challenge: Option<WireChallenge<'a>>,
    payload: Option<Value>,
    source: Option<Value>,
}

fn set_once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de> Deserialize<'de> for WireChallenge<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChallengeVisitor;
        impl<'de> Visitor<'de> for ChallengeVisitor {
            type Value = WireChallenge<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a challenge object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut c = WireChallenge::default();
                while let Some(Text(key)) = access.next_key::<Text<'de>>()? {
                    let slot = match key.as_ref() {
                        "id" => &mut c.id,
                        "realm" => &mut c.realm,
                        "method" => &mut c.method,
                        "intent" => &mut c.intent,
                        "request" => &mut c.request,
                        "description" => &mut c.description,
                        "digest" => &mut c.digest,
                        "expires" => &mut c.expires,
                        "header" => &mut c.header,
                        "opaque" => {
                            let value = access.next_value::<Option<WireOpaque<'de>>>()?;
                            if let Some(value) = value {
                                set_once(&mut c.opaque, value, "opaque")?;
                            }
                            continue;
                        }
                        _ => {
                            access.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if let Some(Text(value)) = access.next_value::<Option<Text<'de>>>()? {
                        if slot.is_some() {
                            return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                        }
                        *slot = Some(value);
                    }
                }
                Ok(c)
            }
        }
        deserializer.deserialize_map(ChallengeVisitor)
    }
}

impl<'de> Deserialize<'de> for WireCredential<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CredentialVisitor;
        impl<'de> Visitor<'de> for CredentialVisitor {
            type Value = WireCredential<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a credential object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut out = WireCredential {
                    challenge: None,
                    payload: None,
                    source: None,
                };
                while let Some(Text(key)) = access.next_key::<Text<'de>>()? {
                    match key.as_ref() {
                        "challenge" => {
                            let value = access.next_value::<WireChallenge<'de>>()?;
                            set_once(&mut out.challenge, value, "challenge")?;
                        }
                        "payload" => {
                            let value = access.next_value::<Value>()?;
                            set_once(&mut out.payload, value, "payload")?;
                        }
                        "source" => {
                            let value = access.next_value::<Value>()?;
                            set_once(&mut out.source, value, "source")?;
                        }
                        _ => {
                            access.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(CredentialVisitor)
    }
}

impl WireCredential<'_> {
    fn into_credential(self) -> Result<Credential, CredentialError> {
        let ch = self
            .challenge
            .ok_or(CredentialError::Missing("challenge"))?;
        let payload = match self.payload {
            Some(Value::Object(map)) => map,
            Some(_) => return Err(invalid("payload", "must be an object")),
            None => return Err(CredentialError::Missing("payload")),
        };
        let source = match self.source {
            None | Some(Value::Null) => None,
            Some(v @ (Value::String(_) | Value::Object(_))) => Some(v),
            Some(_) => return Err(invalid("source", "must be a string or an object")),
        };
        let id = ch.id.ok_or(CredentialError::Missing("challenge.id"))?;
        if id.is_empty() {
            return Err(invalid("challenge.id", "must not be empty"));
        }
        let required = |v: Option<Cow<'_, str>>, path: &'static str| {
            v.map(Cow::into_owned).ok_or(CredentialError::Missing(path))
        };
        let request = ch
            .request
            .ok_or(CredentialError::Missing("challenge.request"))?;
        let opaque = match ch.opaque {
            None => None,
            Some(WireOpaque::Text(s)) => Some(s.into_owned()),
            // Older mppx clients echoed `opaque` expanded as a string map.
            Some(WireOpaque::Map(map)) => Some(jcs::object_to_base64url(&map)),
        };
        Ok(Credential {
            challenge: Challenge {
                id: id.into_owned(),
                realm: required(ch.realm, "challenge.realm")?,
                method: required(ch.method, "challenge.method")?,
                intent: required(ch.intent, "challenge.intent")?,
                request: PaymentRequest::decode(&request)?,
                description: ch.description.map(Cow::into_owned),
                digest: ch.digest.map(Cow::into_owned),
                expires: ch.expires.map(Cow::into_owned),
                header: ch
                    .header
                    .filter(|h| !is_default_credential_header(h))
                    .map(Cow::into_owned),
                opaque,
            },
            payload,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguishes_token68_from_session_params() {
        assert_eq!(token68("abc=="), Some("abc=="));
        assert_eq!(token68("abc, Bearer x"), Some("abc"));
        assert_eq!(token68("a=b"), None);
        assert_eq!(token68(""), None);
        assert_eq!(token68(r#"session="sess_1""#), None);
        assert_eq!(token68("session=sess_1"), None);
        assert_eq!(
            Authorization::parse(r#"Payment method="stripe", session="sess_1""#).unwrap(),
            Authorization::Session(SessionToken {
                id: "sess_1".into()
            })
        );
        assert_eq!(
            Authorization::parse("payment session=sess_2").unwrap(),
            Authorization::Session(SessionToken {
                id: "sess_2".into()
            })
        );
    }

    #[test]
    fn takes_the_first_payment_credential() {
        let values = [
            "Bearer abc",
            "Basic x, Payment session=\"s1\"",
            "Payment session=s2",
        ];
        assert_eq!(
            Authorization::from_values(values).unwrap().unwrap(),
            Authorization::Session(SessionToken { id: "s1".into() })
        );
        assert!(Authorization::from_values(["Bearer abc"]).is_none());
    }

    #[test]
    fn only_objects_are_credentials() {
        for json in [
            "[]",
            r#"[{"id":"a","realm":"r","method":"m","intent":"i","request":"e30"},{}]"#,
            r#"{"challenge":["a","r","m","i","e30"],"payload":{}}"#,
            r#"{"challenge":{"id":"a","id":"b","realm":"r","method":"m","intent":"i","request":"e30"},"payload":{}}"#,
            r#"{"challenge":{"id":1,"realm":"r","method":"m","intent":"i","request":"e30"},"payload":{}}"#,
            r#"{"challenge":{"id":"a","realm":"r","method":"m","intent":"i","request":"e30"},"payload":[]}"#,
            r#"{"challenge":{"id":"a","realm":"r","method":"m","intent":"i","request":"W10"},"payload":{}}"#,
        ] {
            assert!(
                Credential::from_token(&base64url::encode(json)).is_err(),
                "{json}"
            );
        }
        let legacy = r#"{"challenge":{"id":"a","realm":"r","method":"m","intent":"i","request":"e30","opaque":{"x":"y"}},"payload":{},"extra":1}"#;
        let credential = Credential::from_token(&base64url::encode(legacy)).unwrap();
        assert_eq!(credential.challenge.opaque.as_deref(), Some("eyJ4IjoieSJ9"));
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
