//! Settling an authorization on chain: the token's facts, the idempotent
//! lookup of an earlier settlement, simulation, the relayed send and the
//! receipt check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes, U64};
use alloy::providers::{ProviderBuilder, SendableTx};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{SolCall, SolEvent};
use alloy::transports::{RpcError, TransportErrorKind};
use serde::Deserialize;

use super::authorization::{self, Authorization, Terms};
use super::token::{self, AuthorizationUsed, decimalsCall, nameCall, versionCall};
use super::{EvmRail, METHOD, Relayer, TokenFacts};
use crate::rail::{SettleError, SettleRequest, Settlement};
use crate::rails::chain::{ChainReceipt, Rpc, RpcFailure, uint};

/// How long a consumed `from:nonce` stays in the proof ledger.
const PROOF_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How far back the `AuthorizationUsed` log of an earlier settlement is
/// looked for (a retry comes within the challenge's lifetime).
const LOG_LOOKBACK_BLOCKS: u64 = 10_000;

/// One send lock per relayer account in this process, so two rails (or
/// two gates) with the same key never pick the same account nonce.
fn send_lock(relayer: Address) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<Address, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let locks = LOCKS.get_or_init(Mutex::default);
    let mut locks = locks.lock().unwrap_or_else(PoisonError::into_inner);
    locks.entry(relayer).or_default().clone()
}

/// A node failure on a read the server makes for itself: never the payer's
/// fault.
fn node_down(what: &str, failure: &RpcFailure) -> SettleError {
    SettleError::internal(format!(
        "could not {what}: {failure}; the payment was not taken by this request, retry the same credential"
    ))
}

/// Whether a node's JSON-RPC error is an EVM revert (the call itself
/// failed) rather than the node refusing to serve.
fn is_revert(code: i64, message: &str) -> bool {
    code == 3 || message.to_ascii_lowercase().contains("revert")
}

/// An `eth_getLogs` entry, as far as the rail reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogEntry {
    transaction_hash: Option<B256>,
    #[serde(default)]
    removed: bool,
}

/// Where a transfer stands after a send or a lookup.
enum Outcome {
    /// The transaction is confirmed and proves the payment.
    Paid(B256),
    /// The transaction reverted (another transaction may have used the
    /// authorization first).
    Reverted(B256),
}

impl EvmRail {
    fn rpc(&self) -> Result<&Rpc, SettleError> {
        self.rpc.as_ref().ok_or_else(|| {
            SettleError::internal(
                "EVM payments are not configured on this server (EVM_RPC_URL is missing).",
            )
        })
    }

    fn inflight_get(&self, key: &(Address, B256)) -> Option<B256> {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
    }

    fn inflight_set(&self, key: (Address, B256), hash: Option<B256>) {
        let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        match hash {
            Some(hash) => {
                inflight.insert(key, hash);
            }
            None => {
                inflight.remove(&key);
            }
        }
    }

    /// A view call to the token, decoded.
    async fn view<C: SolCall>(
        &self,
        rpc: &Rpc,
        token: Address,
        call: C,
    ) -> Result<C::Return, SettleError> {
        let what = format!("call `{}` on the token", C::SIGNATURE);
        let data = rpc
            .call(Address::ZERO, token, call.abi_encode().into())
            .await
            .map_err(|e| node_down(&what, &e))?;
        C::abi_decode_returns(&data).map_err(|_| {
            SettleError::internal(format!(
                "could not {what}: the answer is not ABI-encoded (is EVM_TOKEN an EIP-3009 token on this chain?)"
            ))
        })
    }

    /// Checks the endpoint's chain and the token's decimals, and builds the
    /// token's EIP-712 domain, once.
    async fn facts(
        &self,
        rpc: &Rpc,
        token: Address,
        chain_id: u64,
    ) -> Result<&TokenFacts, SettleError> {
        self.facts
            .get_or_try_init(|| async {
                let served = rpc
                    .chain_id()
                    .await
                    .map_err(|e| node_down("read the chain id", &e))?;
                if served != chain_id {
                    return Err(SettleError::internal(format!(
                        "EVM_RPC_URL serves chain {served}, but EVM_CHAIN_ID is {chain_id}"
                    )));
                }
                let decimals = self.view(rpc, token, decimalsCall {}).await?;
                if decimals != self.config.decimals {
                    return Err(SettleError::internal(format!(
                        "the token has {decimals} decimals, but EVM_DECIMALS is {}; fix EVM_DECIMALS before taking payments",
                        self.config.decimals
                    )));
                }
                let name = match &self.config.token_name {
                    Some(name) => name.clone(),
                    None => self.view(rpc, token, nameCall {}).await.map_err(|e| {
                        SettleError::internal(format!("{}; or set EVM_TOKEN_NAME", e.detail))
                    })?,
                };
                let version = match &self.config.token_version {
                    Some(version) => version.clone(),
                    None => self.view(rpc, token, versionCall {}).await.map_err(|e| {
                        SettleError::internal(format!("{}; or set EVM_TOKEN_VERSION", e.detail))
                    })?,
                };
                Ok(TokenFacts {
                    domain: authorization::domain(&name, &version, chain_id, token),
                })
            })
            .await
    }

    /// Verifies and settles one credential.
    pub(super) async fn settle_authorization(
        &self,
        req: &SettleRequest,
    ) -> Result<Settlement, SettleError> {
        let (recipient, token, chain_id) = self.terms().map_err(|e| SettleError::internal(e.0))?;
        let amount_text = req.request.str_field("amount").unwrap_or_default();
        let amount = uint("amount", amount_text).map_err(|_| {
            SettleError::internal("the challenge's amount is not a base-unit integer")
        })?;
        let auth = Authorization::parse(&req.payload)?;
        let rpc = self.rpc()?;
        let facts = self.facts(rpc, token, chain_id).await?;
        let terms = Terms {
            recipient,
            amount,
            chain_id,
            challenge_id: &req.challenge.id,
            realm: &req.challenge.realm,
            domain: &facts.domain,
            now: self.clock.now().unix(),
        };
        authorization::verify(&auth, &terms, req.source.as_ref())?;

        let proof = format!("{:#x}:{:#x}", auth.from, auth.nonce);
        match req.proofs.is_used(METHOD, &proof).await {
            Ok(false) => {}
            Ok(true) => {
                return Err(SettleError::verification_failed(
                    "this EVM authorization has already paid for a request",
                ));
            }
            Err(e) => {
                return Err(SettleError::internal(format!(
                    "the payment ledger is unavailable ({e}); retry the same credential"
                )));
            }
        }
        let relayer = self.relayer()?;

        let hash = self.transfer(rpc, relayer, token, chain_id, &auth).await?;

        match req.proofs.consume(METHOD, &proof, PROOF_TTL).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(SettleError::verification_failed(
                    "this EVM authorization has already paid for a request",
                ));
            }
            Err(e) => {
                tracing::error!(tx = %hash, %e, "an EVM payment settled but could not be recorded");
                return Err(SettleError::internal(format!(
                    "the payment settled in {hash:#x} but could not be recorded ({e}); retry the same credential"
                )));
            }
        }
        let mut settlement = Settlement::new(
            format!("{hash:#x}"),
            amount_text,
            req.request.str_field("currency").unwrap_or_default(),
        );
        settlement.payer = Some(auth.from.to_checksum(None));
        settlement
            .receipt_fields
            .insert("chainId".into(), serde_json::Value::from(chain_id));
        Ok(settlement)
    }

    /// Makes sure the authorization is used on chain, by an earlier
    /// transaction or by sending one, and returns the transaction that
    /// proves the payment.
    async fn transfer(
        &self,
        rpc: &Rpc,
        relayer: &Relayer,
        token: Address,
        chain_id: u64,
        auth: &Authorization,
    ) -> Result<B256, SettleError> {
        let key = (auth.from, auth.nonce);
        if self.authorization_used(rpc, token, auth).await? {
            return self.earlier_settlement(rpc, token, auth).await;
        }
        // A send of ours the node still knows about (the last try timed
        // out): wait for it rather than sending again.
        if let Some(hash) = self.inflight_get(&key) {
            let known: Option<serde_json::Value> = rpc
                .request("eth_getTransactionByHash", (hash,))
                .await
                .map_err(|e| node_down("look up the pending transfer", &e))?;
            if known.is_some() {
                return self.conclude(rpc, token, auth, hash).await;
            }
            self.inflight_set(key, None);
        }
        let calldata = token::transfer_calldata(auth);
        self.simulate(rpc, relayer.address(), token, calldata.clone())
            .await?;
        let hash = self
            .send(rpc, relayer, token, chain_id, key, calldata)
            .await?;
        self.conclude(rpc, token, auth, hash).await
    }

    /// Waits for our transaction and checks it; a revert caused by another
    /// transaction using the authorization first falls back to that one.
    async fn conclude(
        &self,
        rpc: &Rpc,
        token: Address,
        auth: &Authorization,
        hash: B256,
    ) -> Result<B256, SettleError> {
        let key = (auth.from, auth.nonce);
        match self.confirmed(rpc, token, auth, hash).await? {
            Outcome::Paid(hash) => {
                self.inflight_set(key, None);
                Ok(hash)
            }
            Outcome::Reverted(hash) => {
                self.inflight_set(key, None);
                if self.authorization_used(rpc, token, auth).await? {
                    return self.earlier_settlement(rpc, token, auth).await;
                }
                Err(SettleError::verification_failed(format!(
                    "the transfer transaction {hash:#x} reverted on chain"
                )))
            }
        }
    }

    /// Waits for `hash` with the configured policy and checks its receipt.
    async fn confirmed(
        &self,
        rpc: &Rpc,
        token: Address,
        auth: &Authorization,
        hash: B256,
    ) -> Result<Outcome, SettleError> {
        let receipt = rpc
            .wait(hash, &self.config.wait_policy())
            .await
            .map_err(|e| node_down("read the transfer's receipt", &e))?
            .ok_or_else(|| {
                SettleError::internal(format!(
                    "the transfer {hash:#x} is not confirmed yet; retry the same credential"
                ))
            })?;
        self.check_receipt(&receipt, token, auth)
    }

    fn check_receipt(
        &self,
        receipt: &ChainReceipt,
        token: Address,
        auth: &Authorization,
    ) -> Result<Outcome, SettleError> {
        let hash = receipt.transaction_hash;
        if !receipt.succeeded() {
            return Ok(Outcome::Reverted(hash));
        }
        match token::receipt_mismatch(receipt, token, auth) {
            None => Ok(Outcome::Paid(hash)),
            Some(reason) => {
                tracing::error!(tx = %hash, reason, "an EVM transfer did not pay as authorized");
                Err(SettleError::verification_failed(format!(
                    "transaction {hash:#x} does not prove the payment: {reason}"
                )))
            }
        }
    }

    /// `authorizationState(from, nonce)`.
    async fn authorization_used(
        &self,
        rpc: &Rpc,
        token: Address,
        auth: &Authorization,
    ) -> Result<bool, SettleError> {
        let data = rpc
            .call(
                Address::ZERO,
                token,
                token::state_calldata(auth.from, auth.nonce),
            )
            .await
            .map_err(|e| node_down("read the authorization's state", &e))?;
        token::authorizationStateCall::abi_decode_returns(&data).map_err(|_| {
            SettleError::internal(
                "the token's authorizationState answer is not ABI-encoded (is EVM_TOKEN an EIP-3009 token?)",
            )
        })
    }

    /// The authorization is already used: finds the transaction that used
    /// it (`AuthorizationUsed(from, nonce)`) and verifies it paid.
    async fn earlier_settlement(
        &self,
        rpc: &Rpc,
        token: Address,
        auth: &Authorization,
    ) -> Result<B256, SettleError> {
        let head = rpc
            .block_number()
            .await
            .map_err(|e| node_down("read the head block", &e))?;
        let from_block = U64::from(head.saturating_sub(LOG_LOOKBACK_BLOCKS));
        let filter = serde_json::json!({
            "address": token,
            "fromBlock": from_block,
            "toBlock": "latest",
            "topics": [AuthorizationUsed::SIGNATURE_HASH, auth.from.into_word(), auth.nonce],
        });
        let logs: Vec<LogEntry> = rpc
            .request("eth_getLogs", (filter,))
            .await
            .map_err(|e| node_down("look up the earlier settlement", &e))?;
        let Some(hash) = logs
            .iter()
            .filter(|l| !l.removed)
            .find_map(|l| l.transaction_hash)
        else {
            tracing::error!(
                from = %auth.from,
                nonce = %auth.nonce,
                "an EVM authorization is used on chain but its transaction was not found"
            );
            return Err(SettleError::internal(format!(
                "this authorization was already used on chain, but its transaction was not found in the last {LOG_LOOKBACK_BLOCKS} blocks"
            )));
        };
        match self.confirmed(rpc, token, auth, hash).await? {
            Outcome::Paid(hash) => Ok(hash),
            Outcome::Reverted(hash) => Err(SettleError::internal(format!(
                "the transaction {hash:#x} that used this authorization reverted"
            ))),
        }
    }

    /// `eth_call` of the transfer from the relayer: a revert is the
    /// payer's to fix (no funds, a used or expired authorization, …).
    async fn simulate(
        &self,
        rpc: &Rpc,
        relayer: Address,
        token: Address,
        calldata: Bytes,
    ) -> Result<(), SettleError> {
        match rpc.call(relayer, token, calldata).await {
            Ok(_) => Ok(()),
            Err(RpcFailure::Rejected { code, message }) if is_revert(code, &message) => {
                Err(SettleError::verification_failed(format!(
                    "the token refused this authorization: {message}"
                )))
            }
            Err(e) => Err(node_down("simulate the transfer", &e)),
        }
    }

    /// Signs and sends the transfer from the relayer, one send at a time
    /// per relayer account. The hash is remembered before broadcasting, so
    /// a retry after an unclear failure waits for it instead of paying gas
    /// twice.
    async fn send(
        &self,
        rpc: &Rpc,
        relayer: &Relayer,
        token: Address,
        chain_id: u64,
        key: (Address, B256),
        calldata: Bytes,
    ) -> Result<B256, SettleError> {
        // Nonces are read from the node (`pending`) under the lock, not
        // cached: a failed send never leaves a gap.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .with_chain_id(chain_id)
            .wallet(EthereumWallet::from(relayer.signer.clone()))
            .connect_reqwest(relayer.http.clone(), relayer.url.clone());
        let request = TransactionRequest::default()
            .from(relayer.address())
            .to(token)
            .input(calldata.into());

        let lock = send_lock(relayer.address());
        let _guard = lock.lock().await;
        let filled = provider.fill(request).await.map_err(|e| match e {
            RpcError::ErrorResp(payload) if is_revert(payload.code, &payload.message) => {
                SettleError::verification_failed(format!(
                    "the token refused this authorization: {}",
                    payload.message
                ))
            }
            other => fill_failure(other),
        })?;
        let SendableTx::Envelope(envelope) = filled else {
            return Err(SettleError::internal(
                "the relayer's transaction could not be signed",
            ));
        };
        let hash = *envelope.tx_hash();
        self.inflight_set(key, Some(hash));
        match rpc.send_raw(&envelope.encoded_2718()).await {
            Ok(_) => Ok(hash),
            Err(RpcFailure::Rejected { message, .. })
                if message.to_ascii_lowercase().contains("already known") =>
            {
                Ok(hash)
            }
            Err(RpcFailure::Rejected { code, message }) => {
                self.inflight_set(key, None);
                tracing::error!(code, %message, relayer = %relayer.address(), "the node refused the relayer's transaction");
                Err(SettleError::internal(format!(
                    "the node refused the relayer's transaction ({code}): {message}"
                )))
            }
            Err(e) => Err(node_down("send the transfer", &e)),
        }
    }
}

fn fill_failure(error: RpcError<TransportErrorKind>) -> SettleError {
    tracing::error!(%error, "could not prepare the relayer's transaction");
    SettleError::internal(format!(
        "could not prepare the relayer's transaction: {error}; retry the same credential"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn reverts_are_told_from_node_failures() {
        assert!(is_revert(
            3,
            "execution reverted: Eip3009Token: authorization is used"
        ));
        assert!(is_revert(-32000, "Execution Reverted"));
        assert!(!is_revert(-32005, "limit exceeded"));
        assert!(!is_revert(-32000, "header not found"));
    }

    #[test]
    fn one_lock_per_relayer() {
        let a = Address::repeat_byte(1);
        assert!(Arc::ptr_eq(&send_lock(a), &send_lock(a)));
        assert!(!Arc::ptr_eq(
            &send_lock(a),
            &send_lock(Address::repeat_byte(2))
        ));
    }
}
