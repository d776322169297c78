//! `Payment-Receipt`: proof of settlement returned on the successful response.

use serde_json::{Map, Value};
use thiserror::Error;

use super::timestamp::Timestamp;
use super::{base64url, jcs};

/// A payment receipt.
///
/// ```
/// use mpp_runtime::wire::{Receipt, Timestamp};
/// let receipt = Receipt::success("stripe", "pi_123", Timestamp::from_unix(0));
/// let header = receipt.to_header();
/// assert_eq!(Receipt::parse(&header).unwrap(), receipt);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// The payment method that settled.
    pub method: String,
    /// Method-specific reference (`pi_…`, a transaction hash, …).
    pub reference: String,
    /// Merchant correlation id, when the method carries one.
    pub external_id: Option<String>,
    /// Settlement time.
    pub timestamp: String,
    /// Further method-specific fields. Keys that repeat a core field
    /// (`method`, `reference`, `externalId`, `status`, `timestamp`) are not
    /// written.
    pub extensions: Map<String, Value>,
}

/// A receipt together with its `Payment-Receipt` value, encoded once and
/// shared: cloning it is a reference count. A metered session keeps one, so
/// each credit spent answers with the same header without encoding it
/// again; it dereferences to the [`Receipt`].
///
/// ```
/// use mpp_runtime::wire::{EncodedReceipt, Receipt, Timestamp};
/// let receipt = Receipt::success("stripe", "pi_123", Timestamp::from_unix(0));
/// let encoded = EncodedReceipt::from(receipt.clone());
/// assert_eq!(encoded.header(), receipt.to_header());
/// assert_eq!(encoded.reference, "pi_123");
/// let stored = EncodedReceipt::parse(encoded.header()).unwrap();
/// assert_eq!(stored, encoded);
/// ```
#[derive(Clone)]
pub struct EncodedReceipt(std::sync::Arc<Encoded>);

struct Encoded {
    receipt: Receipt,
    header: Box<str>,
    /// An adapter's own form of the header (see [`EncodedReceipt::cached`]).
    framework: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>,
}

impl EncodedReceipt {
    fn new(receipt: Receipt, header: Box<str>) -> Self {
        Self(std::sync::Arc::new(Encoded {
            receipt,
            header,
            framework: std::sync::OnceLock::new(),
        }))
    }

    /// Parses a `Payment-Receipt` value and keeps it as the header.
    pub fn parse(header: &str) -> Result<Self, ReceiptError> {
        let header = header.trim();
        let receipt = Receipt::parse(header)?;
        Ok(Self::new(receipt, header.into()))
    }

    /// The `Payment-Receipt` header value.
    pub fn header(&self) -> &str {
        &self.0.header
    }

    /// The receipt.
    pub fn receipt(&self) -> &Receipt {
        &self.0.receipt
    }

    /// The receipt by value (a copy only if it is shared).
    pub fn into_receipt(self) -> Receipt {
        match std::sync::Arc::try_unwrap(self.0) {
            Ok(encoded) => encoded.receipt,
            Err(shared) => shared.receipt.clone(),
        }
    }

    /// A value made from the header once and shared by every clone: an
    /// adapter keeps its framework's validated header value here, so the
    /// credits of a session answer with it without checking it again.
    /// `make` runs when nothing (or another type) is kept; `None` from it
    /// is passed on and nothing is kept.
    ///
    /// ```
    /// use mpp_runtime::wire::{EncodedReceipt, Receipt, Timestamp};
    /// let encoded = EncodedReceipt::from(Receipt::success("stripe", "pi_1", Timestamp::from_unix(0)));
    /// let first = encoded.clone().cached(|h| Some(h.len())).unwrap();
    /// // Kept: a later call (on any clone) does not make it again.
    /// assert_eq!(encoded.cached::<usize>(|_| None), Some(first));
    /// ```
    pub fn cached<T: Clone + Send + Sync + 'static>(
        &self,
        make: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        if let Some(kept) = self.0.framework.get() {
            return match kept.downcast_ref::<T>() {
                Some(value) => Some(value.clone()),
                None => make(&self.0.header),
            };
        }
        let value = make(&self.0.header)?;
        let _ = self.0.framework.set(Box::new(value.clone()));
        Some(value)
    }
}

impl From<Receipt> for EncodedReceipt {
    fn from(receipt: Receipt) -> Self {
        let header = receipt.to_header().into_boxed_str();
        Self::new(receipt, header)
    }
}

impl std::ops::Deref for EncodedReceipt {
    type Target = Receipt;

    fn deref(&self) -> &Receipt {
        &self.0.receipt
    }
}

impl PartialEq for EncodedReceipt {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0.receipt == other.0.receipt
    }
}

impl PartialEq<Receipt> for EncodedReceipt {
    fn eq(&self, other: &Receipt) -> bool {
        self.0.receipt == *other
    }
}

impl std::fmt::Debug for EncodedReceipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.receipt.fmt(f)
    }
}

/// Why a `Payment-Receipt` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReceiptError {
    /// Not base64url.
    #[error("receipt is not base64url: {0}")]
    Encoding(#[from] base64url::Base64Error),
    /// Not a JSON object.
    #[error("receipt is not a JSON object: {0}")]
    Json(String),
    /// A required field is missing or has the wrong type.
    #[error("receipt field `{0}` is missing or invalid")]
    Field(&'static str),
}

impl Receipt {
    /// A success receipt for `method` with `reference`, settled at `at`.
    pub fn success(method: impl Into<String>, reference: impl Into<String>, at: Timestamp) -> Self {
        Self {
            method: method.into(),
            reference: reference.into(),
            external_id: None,
            timestamp: at.to_rfc3339(),
            extensions: Map::new(),
        }
    }

    /// The receipt JSON, in the field order the stock mppx client writes:
    /// `method, reference, externalId?, status, timestamp`, then extensions.
    pub fn to_json_string(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("{\"method\":");
        jcs::write_string(&self.method, &mut out);
        out.push_str(",\"reference\":");
        jcs::write_string(&self.reference, &mut out);
        if let Some(external_id) = &self.external_id {
            out.push_str(",\"externalId\":");
            jcs::write_string(external_id, &mut out);
        }
        out.push_str(",\"status\":\"success\",\"timestamp\":");
        jcs::write_string(&self.timestamp, &mut out);
        let mut extensions: Vec<_> = self
            .extensions
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .collect();
        extensions.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
        for (key, value) in extensions {
            out.push(',');
            jcs::write_string(key, &mut out);
            out.push(':');
            out.push_str(&jcs::to_string(value));
        }
        out.push('}');
        out
    }

    /// Formats as a `Payment-Receipt` value: base64url of the JSON.
    pub fn to_header(&self) -> String {
        base64url::encode(self.to_json_string())
    }

    /// Parses a `Payment-Receipt` value. `status` must be `"success"`.
    pub fn parse(header: &str) -> Result<Self, ReceiptError> {
        let bytes = base64url::decode(header.trim())?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| ReceiptError::Json(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(ReceiptError::Json("not an object".into()));
        };
        Self::from_map(map)
    }

    /// The receipt as a protocol object (`{status, method, timestamp,
    /// reference, externalId?, extra?}`), method-specific fields under
    /// `extra` (the form the conformance harness compares).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("status".into(), "success".into());
        map.insert("method".into(), self.method.clone().into());
        map.insert("timestamp".into(), self.timestamp.clone().into());
        map.insert("reference".into(), self.reference.clone().into());
        if let Some(external_id) = &self.external_id {
            map.insert("externalId".into(), external_id.clone().into());
        }
        if !self.extensions.is_empty() {
            map.insert("extra".into(), Value::Object(self.extensions.clone()));
        }
        Value::Object(map)
    }

    /// Builds a receipt from its protocol object ([`Receipt::to_json`]'s
    /// form). Fields under `extra` become extensions; an extension may not
    /// reuse a core field name.
    pub fn from_protocol_json(value: &Value) -> Result<Self, ReceiptError> {
        let Value::Object(object) = value else {
            return Err(ReceiptError::Json("not an object".into()));
        };
        let core: Map<String, Value> = RESERVED
            .iter()
            .filter_map(|name| object.get(*name).map(|v| ((*name).to_owned(), v.clone())))
            .collect();
        let mut receipt = Self::from_map(core)?;
        match object.get("extra") {
            None | Some(Value::Null) => {}
            Some(Value::Object(extra)) => {
                if extra.keys().any(|k| RESERVED.contains(&k.as_str())) {
                    return Err(ReceiptError::Field("extra"));
                }
                receipt.extensions = extra.clone();
            }
            Some(_) => return Err(ReceiptError::Field("extra")),
        }
        Ok(receipt)
    }

    /// Builds a receipt from its JSON object form.
    pub fn from_map(mut map: Map<String, Value>) -> Result<Self, ReceiptError> {
        let mut string = |name: &'static str| match map.remove(name) {
            Some(Value::String(s)) => Ok(Some(s)),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(ReceiptError::Field(name)),
        };
        if string("status")?.as_deref() != Some("success") {
            return Err(ReceiptError::Field("status"));
        }
        let method = string("method")?.ok_or(ReceiptError::Field("method"))?;
        let reference = string("reference")?
            .filter(|r| !r.is_empty())
            .ok_or(ReceiptError::Field("reference"))?;
        let timestamp = string("timestamp")?.ok_or(ReceiptError::Field("timestamp"))?;
        if Timestamp::parse_rfc3339(&timestamp).is_err() {
            return Err(ReceiptError::Field("timestamp"));
        }
        let external_id = string("externalId")?;
        Ok(Self {
            method,
            reference,
            external_id,
            timestamp,
            extensions: map,
        })
    }
}

const RESERVED: [&str; 5] = ["method", "reference", "externalId", "status", "timestamp"];
