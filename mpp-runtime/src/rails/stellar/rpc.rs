//! A small client for the Stellar RPC (Soroban RPC) methods the rail calls:
//! JSON-RPC 2.0 over the reqwest client the Stripe rail also uses.
//!
//! Response shapes follow stellar-rpc's own definitions
//! (`github.com/stellar/go-stellar-sdk/protocols/rpc`): numbers that the Go
//! structs tag `,string` (`createdAt`, `latestLedgerCloseTime`,
//! `minResourceFee`, …) arrive as JSON strings, and are read here as either.

use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::rail::{RailError, SettleError};

/// Why a call to the Stellar RPC failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The endpoint could not be reached or answered something that is not
    /// JSON-RPC: the network's fault, retry later.
    #[error("the Stellar RPC is unreachable: {0}")]
    Unreachable(String),
    /// The endpoint answered a JSON-RPC error.
    #[error("the Stellar RPC refused `{method}` ({code}): {message}")]
    Rejected {
        /// The method called.
        method: &'static str,
        /// The JSON-RPC error code.
        code: i64,
        /// The error message.
        message: String,
    },
    /// The answer is JSON-RPC but not the shape the method returns.
    #[error("the Stellar RPC's answer to `{method}` is unreadable: {reason}")]
    Malformed {
        /// The method called.
        method: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl RpcError {
    /// The settlement error: a server-side failure (500) that leaves the
    /// challenge usable.
    pub fn into_settle_error(self) -> SettleError {
        SettleError::internal(format!(
            "{self}; the payment was not taken by this request, retry the same credential"
        ))
    }
}

/// Reads a number sent as a JSON number or a string of digits.
fn flexible_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| de::Error::custom("not a 64-bit integer")),
        Value::String(s) => s.trim().parse().map_err(de::Error::custom),
        Value::Null => Ok(0),
        other => Err(de::Error::custom(format!("expected a number, got {other}"))),
    }
}

/// `getNetwork`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInfo {
    /// The network passphrase.
    pub passphrase: String,
    /// The protocol version.
    #[serde(default)]
    pub protocol_version: Option<u32>,
}

/// `getLatestLedger`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestLedger {
    /// The ledger's hash (hex).
    #[serde(default)]
    pub id: String,
    /// Its sequence number.
    pub sequence: u32,
    /// When it closed (unix seconds).
    #[serde(default, deserialize_with = "flexible_i64")]
    pub close_time: i64,
}

/// `simulateTransaction`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Simulation {
    /// Set when the simulation failed (a contract error, a missing balance).
    #[serde(default)]
    pub error: Option<String>,
    /// `SorobanTransactionData` (base64) on success.
    #[serde(default)]
    pub transaction_data: Option<String>,
    /// `DiagnosticEvent`s (base64).
    #[serde(default)]
    pub events: Vec<String>,
    /// The minimum resource fee in stroops.
    #[serde(default, deserialize_with = "flexible_i64")]
    pub min_resource_fee: i64,
    /// Present when archived entries must be restored first.
    #[serde(default)]
    pub restore_preamble: Option<Value>,
    /// The ledger simulated against.
    #[serde(default)]
    pub latest_ledger: u32,
}

/// `sendTransaction`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    /// `PENDING`, `DUPLICATE`, `TRY_AGAIN_LATER` or `ERROR`.
    pub status: String,
    /// The transaction hash (hex).
    pub hash: String,
    /// A `TransactionResult` (base64) when `ERROR`.
    #[serde(default)]
    pub error_result_xdr: Option<String>,
}

/// `getTransaction`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionInfo {
    /// `SUCCESS`, `FAILED` or `NOT_FOUND`.
    pub status: String,
    /// The envelope (base64), once included.
    #[serde(default)]
    pub envelope_xdr: Option<String>,
    /// The `TransactionResult` (base64), once included.
    #[serde(default)]
    pub result_xdr: Option<String>,
    /// The ledger it was included in.
    #[serde(default)]
    pub ledger: u32,
    /// When that ledger closed (unix seconds).
    #[serde(default, deserialize_with = "flexible_i64")]
    pub created_at: i64,
    /// The latest ledger the RPC knows.
    #[serde(default)]
    pub latest_ledger: u32,
}

/// One event of `getEvents`, as far as the rail reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventInfo {
    /// The transaction that emitted it (hex).
    #[serde(default)]
    pub tx_hash: String,
    /// The ledger it was emitted in.
    #[serde(default)]
    pub ledger: i64,
}

#[derive(Debug, Deserialize)]
struct Events {
    #[serde(default)]
    events: Option<Vec<EventInfo>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LedgerEntries {
    #[serde(default)]
    entries: Option<Vec<LedgerEntry>>,
}

#[derive(Debug, Deserialize)]
struct LedgerEntry {
    xdr: String,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<JsonRpcError>,
}

#[derive(Debug, Deserialize)]
struct JsonRpcError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Serialize)]
struct Request<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: Value,
}

/// A Stellar RPC endpoint. `Debug` shows only its host (URLs of RPC
/// providers often carry API keys).
#[derive(Clone)]
pub struct StellarRpc {
    http: reqwest::Client,
    url: reqwest::Url,
}

impl fmt::Debug for StellarRpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StellarRpc")
            .field("host", &self.url.host_str().unwrap_or_default())
            .finish()
    }
}

impl StellarRpc {
    /// A client for `url` (http or https), each call bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RailError> {
        let parsed: reqwest::Url = url
            .parse()
            .map_err(|e| RailError::new(format!("`{}` is not a URL: {e}", redact(url))))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RailError::new(format!(
                "the RPC URL must be http(s), not `{}`",
                parsed.scheme()
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("mpp-runtime/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RailError::new(format!("cannot build the RPC client: {e}")))?;
        Ok(Self { http, url: parsed })
    }

    /// Calls `method` with `params` and reads its `result`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, RpcError> {
        let body = serde_json::to_vec(&Request {
            jsonrpc: "2.0",
            id: 1,
            method,
            params,
        })
        .map_err(|e| RpcError::Unreachable(format!("cannot encode the request: {e}")))?;
        let response = self
            .http
            .post(self.url.clone())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| RpcError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RpcError::Unreachable(e.without_url().to_string()))?;
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|_| {
            RpcError::Unreachable(format!("HTTP {status} without a JSON-RPC answer"))
        })?;
        if let Some(error) = envelope.error {
            return Err(RpcError::Rejected {
                method,
                code: error.code,
                message: error.message,
            });
        }
        let result = envelope.result.ok_or_else(|| RpcError::Malformed {
            method,
            reason: "no `result`".to_owned(),
        })?;
        serde_json::from_value(result).map_err(|e| RpcError::Malformed {
            method,
            reason: e.to_string(),
        })
    }

    /// `getNetwork`.
    pub async fn network(&self) -> Result<NetworkInfo, RpcError> {
        self.call("getNetwork", Value::Null).await
    }

    /// `getLatestLedger`.
    pub async fn latest_ledger(&self) -> Result<LatestLedger, RpcError> {
        self.call("getLatestLedger", Value::Null).await
    }

    /// `simulateTransaction` of a base64 envelope.
    pub async fn simulate(&self, transaction: &str) -> Result<Simulation, RpcError> {
        self.call("simulateTransaction", json!({"transaction": transaction}))
            .await
    }

    /// `sendTransaction` of a base64 envelope.
    pub async fn send(&self, transaction: &str) -> Result<Sent, RpcError> {
        self.call("sendTransaction", json!({"transaction": transaction}))
            .await
    }

    /// `getTransaction` by hex hash.
    pub async fn transaction(&self, hash: &str) -> Result<TransactionInfo, RpcError> {
        self.call("getTransaction", json!({"hash": hash})).await
    }

    /// `getEvents` from `start_ledger` matching `filters`, at most `limit`.
    pub async fn events(
        &self,
        start_ledger: u32,
        filters: Value,
        limit: u32,
    ) -> Result<Vec<EventInfo>, RpcError> {
        let events: Events = self
            .call(
                "getEvents",
                json!({"startLedger": start_ledger, "filters": filters, "pagination": {"limit": limit}}),
            )
            .await?;
        Ok(events.events.unwrap_or_default())
    }

    /// `getLedgerEntries` of one key (base64 `LedgerKey`): the entry's
    /// base64 `LedgerEntryData`, or `None` when it does not exist.
    pub async fn ledger_entry(&self, key: &str) -> Result<Option<String>, RpcError> {
        let entries: LedgerEntries = self
            .call("getLedgerEntries", json!({"keys": [key]}))
            .await?;
        Ok(entries
            .entries
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|e| e.xdr))
    }
}

/// `scheme://host/…`: RPC URLs often carry an API key in their path or
/// query.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if rest.len() > authority.len() {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn string_encoded_numbers_are_read() {
        let info: TransactionInfo = serde_json::from_value(json!({
            "status": "SUCCESS", "createdAt": "1800000000", "ledger": 7, "latestLedger": 9,
            "latestLedgerCloseTime": "1800000005"
        }))
        .unwrap();
        assert_eq!(info.created_at, 1_800_000_000);
        let sim: Simulation =
            serde_json::from_value(json!({"minResourceFee": "61737", "latestLedger": 3})).unwrap();
        assert_eq!(sim.min_resource_fee, 61_737);
        let sim: Simulation = serde_json::from_value(json!({"minResourceFee": 5})).unwrap();
        assert_eq!(sim.min_resource_fee, 5);
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact("https://rpc.example.com/key/abc"),
            "https://rpc.example.com/…"
        );
        assert_eq!(redact("http://u:p@127.0.0.1:8000"), "http://127.0.0.1:8000");
        assert!(StellarRpc::new("ftp://x", Duration::from_secs(1)).is_err());
        let rpc =
            StellarRpc::new("https://rpc.example.com/secret", Duration::from_secs(1)).unwrap();
        assert!(!format!("{rpc:?}").contains("secret"));
    }
}
