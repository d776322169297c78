//! Tempo chain helpers shared by the real-chain tests: a wallet's side of a
//! Tempo payment (signing a `0x76` transaction), funding and balances.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::num::NonZeroU64;
use std::time::Duration;

use mpp_runtime::rails::chain::alloy;
use mpp_runtime::rails::chain::{Rpc, WaitPolicy};
use mpp_runtime::rails::tempo::tempo_primitives::TempoTransaction;
use mpp_runtime::rails::tempo::tempo_primitives::transaction::{
    Call, PrimitiveSignature, TempoSignature,
};

use alloy::eips::Encodable2718;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::eth::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::SolCall;

sol! {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferWithMemo(address to, uint256 amount, bytes32 memo) external returns (bool);
    function balanceOf(address owner) external view returns (uint256);
}

pub const PATH_USD: Address = Address::new([
    0x20, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
]);
pub const ALPHA_USD: Address = Address::new([
    0x20, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
]);
/// anvil's well-known dev keys (the `test … junk` mnemonic).
pub const DEV_KEYS: [&str; 8] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdc0d53dcd2d",
];
/// One dollar of pathUSD (6 decimals).
pub const DOLLAR: u64 = 1_000_000;

/// The local Tempo chain's URL, or `None` after saying the test skipped
/// (a failure under `CI`).
pub fn chain() -> Option<String> {
    match std::env::var("MPP_TEST_TEMPO_RPC_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "MPP_TEST_TEMPO_RPC_URL is not set: CI must run the Tempo chain tests (.ci/run starts tools/chain/start.sh tempo)"
        ),
        _ => {
            eprintln!(
                "skipped: set MPP_TEST_TEMPO_RPC_URL to an anvil started with `tools/chain/start.sh tempo`"
            );
            None
        }
    }
}

pub struct Chain {
    pub url: String,
    pub rpc: Rpc,
    pub chain_id: u64,
    funder: PrivateKeySigner,
}

impl Chain {
    /// A local anvil (chain 1337) funding payers from dev account `funder`.
    pub fn new(url: String, funder: usize) -> Self {
        Self::with_funder(url, 1337, DEV_KEYS[funder].parse().unwrap())
    }

    /// A chain funding payers from `funder`.
    pub fn with_funder(url: String, chain_id: u64, funder: PrivateKeySigner) -> Self {
        Self {
            rpc: Rpc::new(&url, Duration::from_secs(20)).unwrap(),
            url,
            chain_id,
            funder,
        }
    }

    /// Sends `amount` of `token` from this test's dev account to `to` (an
    /// ordinary transaction, sequential nonce) and waits for it.
    pub async fn fund(&self, token: Address, to: Address, amount: u64) {
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(self.funder.clone()))
            .connect_http(self.url.parse().unwrap());
        let call = transferCall {
            to,
            amount: U256::from(amount),
        };
        let request = TransactionRequest::default()
            .to(token)
            .input(call.abi_encode().into());
        let hash = *provider.send_transaction(request).await.unwrap().tx_hash();
        let receipt = self
            .rpc
            .wait(hash, &policy())
            .await
            .unwrap()
            .expect("the funding transaction was mined");
        assert!(receipt.succeeded());
    }

    /// A fresh payer holding `dollars` of pathUSD (plus fees).
    pub async fn payer(&self, dollars: u64) -> PrivateKeySigner {
        let payer = PrivateKeySigner::random();
        self.fund(PATH_USD, payer.address(), dollars * DOLLAR + DOLLAR)
            .await;
        payer
    }

    pub async fn balance(&self, token: Address, owner: Address) -> U256 {
        let data = balanceOfCall { owner }.abi_encode();
        let out = self.rpc.call(owner, token, data.into()).await.unwrap();
        U256::from_be_slice(&out)
    }

    /// A Tempo transaction with `calls`, signed by `payer`, paying its fee in
    /// pathUSD, with an expiring nonce (as the mppx client builds them).
    pub async fn sign(&self, payer: &PrivateKeySigner, calls: Vec<Call>, gas: u64) -> Vec<u8> {
        let price: U256 = self.rpc.request("eth_gasPrice", ()).await.unwrap();
        let price = u128::try_from(price).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let tx = TempoTransaction {
            chain_id: self.chain_id,
            fee_token: Some(PATH_USD),
            max_priority_fee_per_gas: price,
            max_fee_per_gas: price * 2,
            gas_limit: gas,
            calls,
            nonce_key: U256::MAX,
            nonce: 0,
            valid_before: NonZeroU64::new(now + 25),
            ..TempoTransaction::default()
        };
        let signature = payer.sign_hash_sync(&tx.signature_hash()).unwrap();
        let signed = tx.into_signed(TempoSignature::Primitive(PrimitiveSignature::Secp256k1(
            signature,
        )));
        signed.encoded_2718()
    }

    /// Broadcasts `raw` (push mode: the payer does it) and waits for it.
    pub async fn broadcast(&self, raw: &[u8]) -> B256 {
        let hash = self.rpc.send_raw(raw).await.unwrap();
        self.rpc
            .wait(hash, &policy())
            .await
            .unwrap()
            .expect("the payment was mined");
        hash
    }
}

pub fn policy() -> WaitPolicy {
    WaitPolicy {
        poll_interval: Duration::from_millis(100),
        attempts: 100,
        confirmations: 1,
    }
}

/// A `transferWithMemo` call.
pub fn pay_with(token: Address, to: Address, amount: u64, memo: B256) -> Call {
    Call {
        to: TxKind::Call(token),
        value: U256::ZERO,
        input: transferWithMemoCall {
            to,
            amount: U256::from(amount),
            memo,
        }
        .abi_encode()
        .into(),
    }
}

/// A plain `transfer` call.
pub fn plain_transfer(token: Address, to: Address, amount: u64) -> Call {
    Call {
        to: TxKind::Call(token),
        value: U256::ZERO,
        input: Bytes::from(
            transferCall {
                to,
                amount: U256::from(amount),
            }
            .abi_encode(),
        ),
    }
}
