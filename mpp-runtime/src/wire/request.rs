//! The challenge `request` parameter: a JSON object, canonicalized with JCS
//! and base64url-encoded on the wire.

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use thiserror::Error;

use super::{base64url, jcs};

/// Why a `request` (or `opaque`) value is not base64url of a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// Not base64url.
    #[error("not base64url: {0}")]
    Encoding(#[from] base64url::Base64Error),
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotObject,
}

/// A payment request: method-specific JSON (`amount`, `currency`,
/// `recipient`, `methodDetails`, …).
///
/// It keeps the encoded form it was built from, so a credential that echoes
/// the server's canonical string can be checked without re-serializing. A
/// decoded request is validated at once but only turned into a map when its
/// fields are read.
#[derive(Clone)]
pub struct PaymentRequest {
    encoded: String,
    fields: OnceLock<Map<String, Value>>,
}

impl PartialEq for PaymentRequest {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded || self.fields() == other.fields()
    }
}

impl fmt::Debug for PaymentRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentRequest")
            .field("encoded", &self.encoded)
            .field("fields", self.fields())
            .finish()
    }
}

impl PaymentRequest {
    /// Builds a request from its fields, encoding it canonically.
    ///
    /// ```
    /// use mpp_runtime::wire::PaymentRequest;
    /// let mut fields = serde_json::Map::new();
    /// fields.insert("amount".into(), "100".into());
    /// assert_eq!(PaymentRequest::from_fields(fields).encoded(), "eyJhbW91bnQiOiIxMDAifQ");
    /// ```
    pub fn from_fields(fields: Map<String, Value>) -> Self {
        let encoded = jcs::object_to_base64url(&fields);
        Self {
            encoded,
            fields: OnceLock::from(fields),
        }
    }

    /// Decodes a wire value, keeping `encoded` exactly as given. The value
    /// must be base64url of a JSON object.
    pub fn decode(encoded: &str) -> Result<Self, RequestError> {
        let bytes = base64url::decode(encoded)?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(match serde_json::from_slice::<ValidJson>(&bytes) {
                Ok(_) => RequestError::NotObject,
                Err(e) => RequestError::Json(e.to_string()),
            });
        }
        serde_json::from_slice::<ValidJson>(&bytes)
            .map_err(|e| RequestError::Json(e.to_string()))?;
        Ok(Self {
            encoded: encoded.to_owned(),
            fields: OnceLock::new(),
        })
    }

    /// The encoded form this request was built from (canonical when built by
    /// [`PaymentRequest::from_fields`], as received when decoded).
    pub fn encoded(&self) -> &str {
        &self.encoded
    }

    /// The canonical encoding (JCS, then base64url without padding).
    pub fn canonical(&self) -> String {
        jcs::object_to_base64url(self.fields())
    }

    /// The decoded fields.
    pub fn fields(&self) -> &Map<String, Value> {
        // `decode` checked that `encoded` is a JSON object that parses as a
        // `Value` (the same strings, escapes and number ranges), so this
        // cannot fall back to the empty map.
        self.fields
            .get_or_init(|| decode_object(&self.encoded).unwrap_or_default())
    }

    /// A string field of the request, if present.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.fields().get(name).and_then(Value::as_str)
    }

    /// Consumes the request, returning its fields.
    pub fn into_fields(self) -> Map<String, Value> {
        self.fields();
        self.fields.into_inner().unwrap_or_default()
    }
}

/// A JSON document accepted exactly when it parses as a [`Value`] (strings
/// with valid escapes, numbers in range), without building the value.
struct ValidJson;

impl<'de> serde::Deserialize<'de> for ValidJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValidJsonVisitor)
    }
}

struct ValidJsonVisitor;

impl<'de> serde::de::Visitor<'de> for ValidJsonVisitor {
    type Value = ValidJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }
    fn visit_i64<E>(self, _: i64) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }
    fn visit_u64<E>(self, _: u64) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }
    fn visit_f64<E>(self, _: f64) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }
    fn visit_str<E>(self, _: &str) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }
    fn visit_unit<E>(self) -> Result<ValidJson, E> {
        Ok(ValidJson)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ValidJson, A::Error> {
        while seq.next_element::<ValidJson>()?.is_some() {}
        Ok(ValidJson)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ValidJson, A::Error> {
        while map.next_entry::<ValidJson, ValidJson>()?.is_some() {}
        Ok(ValidJson)
    }
}

/// Decodes base64url (either alphabet, padded or not) of a JSON object.
pub fn decode_object(encoded: &str) -> Result<Map<String, Value>, RequestError> {
    let bytes = base64url::decode(encoded)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(RequestError::NotObject),
        Err(e) => Err(RequestError::Json(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_accepts_exactly_what_fields_parses() {
        for json in [
            r#"{"amount":"100","x":1e400}"#,
            r#"{"s":"\ud800"}"#,
            "[]",
            "{",
        ] {
            assert!(
                PaymentRequest::decode(&base64url::encode(json)).is_err(),
                "{json}"
            );
        }
        assert!(PaymentRequest::decode(&base64url::encode(b"{\"s\":\"\xff\"}")).is_err());
        let ok = PaymentRequest::decode(&base64url::encode(
            r#"{"a":[1,2.5,{"b":null}],"c":"\u00e9"}"#,
        ))
        .unwrap();
        assert_eq!(ok.fields()["c"], "é");
    }
}
