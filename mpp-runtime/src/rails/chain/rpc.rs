//! A small JSON-RPC client for the calls the on-chain rails make, on
//! alloy's `RpcClient` over reqwest.

use std::fmt;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U64};
use alloy::rpc::client::RpcClient;
use alloy::rpc::json_rpc::{RpcRecv, RpcSend};
use alloy::transports::http::reqwest;
use alloy::transports::{RpcError, TransportErrorKind};
use serde::Deserialize;

use crate::rail::{RailError, SettleError};

/// Why a JSON-RPC call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcFailure {
    /// The node could not be reached or answered garbage: the network's
    /// fault, retry later.
    Unreachable(String),
    /// The node answered with a JSON-RPC error (a reverted call, a refused
    /// transaction).
    Rejected {
        /// The JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
}

impl fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(reason) => write!(f, "the chain's RPC node is unreachable: {reason}"),
            Self::Rejected { code, message } => write!(f, "the node refused ({code}): {message}"),
        }
    }
}

impl RpcFailure {
    /// The settlement error for a node that could not be reached (500, the
    /// challenge stays usable).
    pub fn into_settle_error(self) -> SettleError {
        match self {
            Self::Unreachable(_) => SettleError::internal(format!(
                "{self}; the payment was not taken by this request, retry the same credential"
            )),
            Self::Rejected { .. } => SettleError::verification_failed(self.to_string()),
        }
    }

    fn from_rpc(error: RpcError<TransportErrorKind>) -> Self {
        match error {
            RpcError::ErrorResp(payload) => Self::Rejected {
                code: payload.code,
                message: payload.message.to_string(),
            },
            other => Self::Unreachable(other.to_string()),
        }
    }
}

/// How long to wait for a transaction to be included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Pause between two receipt polls.
    pub poll_interval: Duration,
    /// How many polls before giving up.
    pub attempts: u32,
    /// Blocks that must exist on top of (and including) the transaction's.
    pub confirmations: u64,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            attempts: 60,
            confirmations: 1,
        }
    }
}

/// One log of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChainLog {
    /// The emitting contract.
    pub address: Address,
    /// Indexed topics (the event signature first).
    pub topics: Vec<B256>,
    /// Unindexed data.
    pub data: Bytes,
}

/// The parts of a transaction receipt the rails check; read leniently so
/// chains with their own transaction types (Tempo's 0x76) parse too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainReceipt {
    /// The transaction's hash.
    pub transaction_hash: B256,
    /// `0x1` on success.
    pub status: Option<U64>,
    /// The sender.
    pub from: Address,
    /// The block it was included in.
    pub block_number: Option<U64>,
    /// Its logs.
    #[serde(default)]
    pub logs: Vec<ChainLog>,
}

impl ChainReceipt {
    /// Whether the transaction succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == Some(U64::from(1))
    }
}

/// A JSON-RPC endpoint. `Debug` shows only its host (URLs often carry API
/// keys).
#[derive(Clone)]
pub struct Rpc {
    client: RpcClient,
    host: String,
}

impl fmt::Debug for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rpc").field("host", &self.host).finish()
    }
}

impl Rpc {
    /// A client for `url`, each call bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RailError> {
        let parsed: reqwest::Url = url
            .parse()
            .map_err(|e| RailError::new(format!("the RPC URL `{url}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RailError::new(format!(
                "the RPC URL must be http(s), not `{}`",
                parsed.scheme()
            )));
        }
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| RailError::new(format!("cannot build the RPC client: {e}")))?;
        let client = RpcClient::new_http_with_client(http, parsed);
        Ok(Self { client, host })
    }

    /// Calls `method` with `params`.
    pub async fn request<P: RpcSend, R: RpcRecv>(
        &self,
        method: &'static str,
        params: P,
    ) -> Result<R, RpcFailure> {
        self.client
            .request(method, params)
            .await
            .map_err(RpcFailure::from_rpc)
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, RpcFailure> {
        let id: U64 = self.request("eth_chainId", ()).await?;
        Ok(id.to())
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64, RpcFailure> {
        let number: U64 = self.request("eth_blockNumber", ()).await?;
        Ok(number.to())
    }

    /// `eth_getTransactionReceipt`: `None` while the transaction is unknown
    /// or pending.
    pub async fn receipt(&self, hash: B256) -> Result<Option<ChainReceipt>, RpcFailure> {
        self.request("eth_getTransactionReceipt", (hash,)).await
    }

    /// `eth_sendRawTransaction`.
    pub async fn send_raw(&self, raw: &[u8]) -> Result<B256, RpcFailure> {
        self.request("eth_sendRawTransaction", (Bytes::copy_from_slice(raw),))
            .await
    }

    /// `eth_call` of `to` with `data` from `from`, at the latest block.
    pub async fn call(&self, from: Address, to: Address, data: Bytes) -> Result<Bytes, RpcFailure> {
        let call = serde_json::json!({"from": from, "to": to, "data": data});
        self.request("eth_call", (call, "latest")).await
    }

    /// Polls for the receipt of `hash` until it is included with enough
    /// confirmations. `Ok(None)` when it did not appear within the policy.
    pub async fn wait(
        &self,
        hash: B256,
        policy: &WaitPolicy,
    ) -> Result<Option<ChainReceipt>, RpcFailure> {
        for attempt in 0..policy.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(policy.poll_interval).await;
            }
            let Some(receipt) = self.receipt(hash).await? else {
                continue;
            };
            let Some(included) = receipt.block_number else {
                continue;
            };
            if policy.confirmations <= 1 {
                return Ok(Some(receipt));
            }
            let head = self.block_number().await?;
            if head.saturating_sub(included.to::<u64>()) + 1 >= policy.confirmations {
                return Ok(Some(receipt));
            }
        }
        Ok(None)
    }
}
