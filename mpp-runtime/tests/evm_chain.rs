//! The EVM rail (EIP-3009 `transferWithAuthorization`) against a real chain:
//! plain anvil with the EIP-3009 test token of `tools/chain`.
//!
//! ```sh
//! eval "$(tools/chain/start.sh evm)"
//! eval "$(tools/chain/deploy-token.sh)"
//! MPP_TEST_EVM_RPC_URL=$ANVIL_EVM_RPC_URL MPP_TEST_EVM_TOKEN=$EVM_TOKEN \
//!   cargo test -p mpp-runtime --features evm --test evm_chain
//! tools/chain/stop.sh
//! ```
//!
//! Without `MPP_TEST_EVM_RPC_URL` and `MPP_TEST_EVM_TOKEN` each test prints
//! that it skipped, and why. Payers and recipients are fresh random accounts,
//! so tests run in parallel on one chain and can be rerun on it; anvil dev
//! account 0 (the token's owner) mints, dev account 1 relays.

#![cfg(feature = "evm")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolCall, SolStruct};
use mpp_runtime::rails::evm::{EvmConfig, EvmRail, challenge_nonce};
use mpp_runtime::wire::{Challenge, Credential, ProblemType, Timestamp};
use mpp_runtime::*;
use serde_json::{Map, Value, json};
use support::*;

mod abi {
    #![allow(missing_docs, unreachable_pub)]

    alloy::sol! {
        struct TransferWithAuthorization {
            address from;
            address to;
            uint256 value;
            uint256 validAfter;
            uint256 validBefore;
            bytes32 nonce;
        }
        function mint(address to, uint256 value) external;
        function balanceOf(address owner) external view returns (uint256);
        function transferWithAuthorization(
            address from,
            address to,
            uint256 value,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 nonce,
            bytes signature
        ) external;
    }
}

use abi::{TransferWithAuthorization, balanceOfCall, mintCall, transferWithAuthorizationCall};

const CHAIN_ID: u64 = 31337;
/// Anvil dev account 0: deployed the token, the only minter.
const OWNER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Anvil dev account 1: the rail's relayer.
const RELAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// Anvil dev account 2: a third party relaying an authorization itself.
const THIRD_PARTY_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
/// The test token's EIP-712 domain (tools/chain/README.md).
const TOKEN_NAME: &str = "Test USD";
const TOKEN_VERSION: &str = "2";

/// The chain under test.
#[derive(Clone)]
struct Chain {
    url: String,
    token: Address,
}

/// The chain from `MPP_TEST_EVM_RPC_URL` and `MPP_TEST_EVM_TOKEN`, or a
/// note that the test skipped.
fn chain() -> Option<Chain> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (get("MPP_TEST_EVM_RPC_URL"), get("MPP_TEST_EVM_TOKEN")) {
        (Some(url), Some(token)) => Some(Chain {
            url,
            token: token
                .trim()
                .parse()
                .expect("MPP_TEST_EVM_TOKEN is an address"),
        }),
        _ if std::env::var_os("CI").is_some() => panic!(
            "MPP_TEST_EVM_RPC_URL and MPP_TEST_EVM_TOKEN are not set: CI must run the EVM chain tests (.ci/run starts tools/chain/start.sh evm and deploy-token.sh)"
        ),
        _ => {
            eprintln!(
                "skipped: MPP_TEST_EVM_RPC_URL and MPP_TEST_EVM_TOKEN are not set (start a chain with \
                 `eval \"$(tools/chain/start.sh evm)\"; eval \"$(tools/chain/deploy-token.sh)\"` and export \
                 MPP_TEST_EVM_RPC_URL=$ANVIL_EVM_RPC_URL MPP_TEST_EVM_TOKEN=$EVM_TOKEN)"
            );
            None
        }
    }
}

/// Serializes the owner's mints across the tests of this process (one
/// account, one nonce sequence).
static MINT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Chain {
    fn config(&self, recipient: Address) -> EvmConfig {
        EvmConfig::default()
            .recipient(recipient.to_checksum(None))
            .rpc_url(self.url.clone())
            .chain_id(CHAIN_ID)
            .token(self.token.to_checksum(None))
            .relayer_key(RELAYER_KEY)
            .poll_interval(Duration::from_millis(20))
            .poll_attempts(250)
    }

    /// A gate selling `/paid` for 1.00 USD through an evm rail paying
    /// `recipient`.
    fn gate(&self, recipient: Address) -> (Gate, Route) {
        gate_for(
            EvmRail::new(self.config(recipient)).unwrap(),
            MemoryStore::new(),
        )
    }

    async fn mint(&self, to: Address, amount: u64) {
        let _one_at_a_time = MINT.lock().await;
        let owner: PrivateKeySigner = OWNER_KEY.parse().unwrap();
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(owner))
            .connect_http(self.url.parse().unwrap());
        let call = mintCall {
            to,
            value: U256::from(amount),
        };
        let receipt = provider
            .send_transaction(
                TransactionRequest::default()
                    .to(self.token)
                    .input(call.abi_encode().into()),
            )
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "mint reverted");
    }

    async fn balance(&self, owner: Address) -> U256 {
        let provider = ProviderBuilder::new().connect_http(self.url.parse().unwrap());
        let data = provider
            .call(
                TransactionRequest::default()
                    .to(self.token)
                    .input(balanceOfCall { owner }.abi_encode().into()),
            )
            .await
            .unwrap();
        balanceOfCall::abi_decode_returns(&data).unwrap()
    }

    fn domain(&self) -> Eip712Domain {
        Eip712Domain::new(
            Some(TOKEN_NAME.into()),
            Some(TOKEN_VERSION.into()),
            Some(U256::from(CHAIN_ID)),
            Some(self.token),
            None,
        )
    }
}

fn gate_for(rail: EvmRail, store: MemoryStore) -> (Gate, Route) {
    let gate = Gate::builder(config().build().unwrap())
        .rail(rail)
        .store(store)
        .build()
        .unwrap();
    let route = route(
        &gate,
        "/paid",
        PaymentSpec::new().amount("1.00").scope("evm.paid"),
    );
    (gate, route)
}

/// What a payer authorizes (the fields a test tampers with).
#[derive(Clone)]
struct Terms {
    to: Address,
    value: U256,
    valid_after: U256,
    valid_before: U256,
    nonce: B256,
}

impl Terms {
    /// What the challenge asks for, valid until it expires.
    fn of(challenge: &Challenge) -> Self {
        let request = challenge.request.fields();
        let expires = challenge
            .expires
            .as_deref()
            .map(|e| Timestamp::parse_rfc3339(e).unwrap().unix())
            .unwrap_or_else(|| Timestamp::now().unix() + 300);
        Self {
            to: request["recipient"].as_str().unwrap().parse().unwrap(),
            value: request["amount"].as_str().unwrap().parse().unwrap(),
            valid_after: U256::ZERO,
            valid_before: U256::from(expires),
            nonce: challenge_nonce(&challenge.id, &challenge.realm)
                .parse()
                .unwrap(),
        }
    }
}

/// The payload of `terms` signed by `signer` for `from`, as the mppx client
/// writes it.
fn payload(
    chain: &Chain,
    signer: &PrivateKeySigner,
    from: Address,
    terms: &Terms,
) -> Map<String, Value> {
    let message = TransferWithAuthorization {
        from,
        to: terms.to,
        value: terms.value,
        validAfter: terms.valid_after,
        validBefore: terms.valid_before,
        nonce: terms.nonce,
    };
    let digest = message.eip712_signing_hash(&chain.domain());
    let signature = signer.sign_hash_sync(&digest).unwrap();
    json!({
        "type": "authorization",
        "from": from.to_checksum(None),
        "to": terms.to.to_checksum(None),
        "value": terms.value.to_string(),
        "validAfter": terms.valid_after.to_string(),
        "validBefore": terms.valid_before.to_string(),
        "nonce": format!("{:#x}", terms.nonce),
        "signature": format!("0x{}", alloy::hex::encode(signature.as_bytes())),
    })
    .as_object()
    .unwrap()
    .clone()
}

/// The `Authorization` header of a paid retry.
fn header(challenge: &Challenge, payload: Map<String, Value>, from: Address) -> String {
    Credential {
        challenge: challenge.clone(),
        payload,
        source: Some(json!(format!(
            "did:pkh:eip155:{CHAIN_ID}:{}",
            from.to_checksum(None)
        ))),
    }
    .to_header()
}

/// A funded payer's credential for `challenge`, after `edit`.
async fn funded_credential(
    chain: &Chain,
    challenge: &Challenge,
    edit: impl FnOnce(&mut Terms),
) -> (PrivateKeySigner, String) {
    let payer = PrivateKeySigner::random();
    chain.mint(payer.address(), 5_000_000).await;
    let mut terms = Terms::of(challenge);
    edit(&mut terms);
    let payload = payload(chain, &payer, payer.address(), &terms);
    let header = header(challenge, payload, payer.address());
    (payer, header)
}

async fn pay(gate: &Gate, route: &Route, header: &str) -> Admission {
    gate.admit(route, with_auth("/paid", header)).await
}

/// A 402 verification failure whose detail says `needle`, with a fresh
/// challenge.
fn assert_refused(admission: Admission, needle: &str) {
    let response = denied(admission);
    assert_eq!(response.status, 402, "{}", response.body_text());
    assert_eq!(problem(&response), ProblemType::VerificationFailed);
    let detail = problem_detail(&response);
    assert!(detail.contains(needle), "expected `{needle}` in: {detail}");
    assert_challenge_response(&response);
}

fn assert_tx_hash(reference: &str) {
    assert_eq!(reference.len(), 66, "{reference}");
    assert!(reference.starts_with("0x"), "{reference}");
    assert!(
        reference[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{reference}"
    );
}

#[tokio::test]
async fn a_signed_authorization_pays_the_challenge() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    assert_eq!(c.method, "evm");
    assert_eq!(
        Value::Object(c.request.fields().clone()),
        json!({
            "amount": "1000000",
            "currency": chain.token.to_checksum(None),
            "methodDetails": {"chainId": CHAIN_ID, "credentialTypes": ["authorization"], "decimals": 6},
            "recipient": recipient.to_checksum(None),
        })
    );

    let (payer, header) = funded_credential(&chain, &c, |_| {}).await;
    let grant = granted(pay(&gate, &route, &header).await);
    let reference = grant.receipt().reference.clone();
    assert_tx_hash(&reference);
    assert_eq!(grant.receipt().method, "evm");
    assert_eq!(grant.receipt().extensions["chainId"], json!(CHAIN_ID));

    // The reference is the relayer's successful transaction to the token.
    let provider = ProviderBuilder::new().connect_http(chain.url.parse().unwrap());
    let receipt = provider
        .get_transaction_receipt(reference.parse().unwrap())
        .await
        .unwrap()
        .expect("the reference is a mined transaction");
    assert!(receipt.status());
    assert_eq!(receipt.to, Some(chain.token));
    let relayer: PrivateKeySigner = RELAYER_KEY.parse().unwrap();
    assert_eq!(receipt.from, relayer.address());

    assert_eq!(chain.balance(recipient).await, U256::from(1_000_000));
    assert_eq!(chain.balance(payer.address()).await, U256::from(4_000_000));
}

#[tokio::test]
async fn replaying_a_paid_credential_is_refused_and_pays_once() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    let (_, header) = funded_credential(&chain, &c, |_| {}).await;
    granted(pay(&gate, &route, &header).await);
    for _ in 0..2 {
        let replay = denied(pay(&gate, &route, &header).await);
        assert_eq!(replay.status, 402);
        assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
    }
    assert_eq!(chain.balance(recipient).await, U256::from(1_000_000));
}

#[tokio::test]
async fn an_authorization_to_another_recipient_is_refused() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    let elsewhere = PrivateKeySigner::random().address();
    let (_, header) = funded_credential(&chain, &c, |t| t.to = elsewhere).await;
    assert_refused(pay(&gate, &route, &header).await, "recipient mismatch");
    assert_eq!(chain.balance(recipient).await, U256::ZERO);
    assert_eq!(chain.balance(elsewhere).await, U256::ZERO);
}

#[tokio::test]
async fn an_authorization_for_another_amount_is_refused() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    for value in [999_999u64, 1_000_001] {
        let (_, header) = funded_credential(&chain, &c, |t| t.value = U256::from(value)).await;
        assert_refused(pay(&gate, &route, &header).await, "amount mismatch");
    }
    assert_eq!(chain.balance(recipient).await, U256::ZERO);
}

#[tokio::test]
async fn an_authorization_for_another_challenge_is_refused() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    let other = challenge(&gate, &route, "/paid").await;
    assert_ne!(c.id, other.id);
    // Signed for `other`, presented with `c`.
    let (_, header) = funded_credential(&chain, &c, |t| {
        t.nonce = challenge_nonce(&other.id, &other.realm).parse().unwrap();
    })
    .await;
    assert_refused(pay(&gate, &route, &header).await, "challenge hash mismatch");
    assert_eq!(chain.balance(recipient).await, U256::ZERO);
}

#[tokio::test]
async fn an_expired_or_not_yet_valid_authorization_is_refused() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    let now = Timestamp::now().unix();
    let (_, header) =
        funded_credential(&chain, &c, |t| t.valid_before = U256::from(now - 10)).await;
    assert_refused(pay(&gate, &route, &header).await, "expired");
    let (_, header) =
        funded_credential(&chain, &c, |t| t.valid_after = U256::from(now + 600)).await;
    assert_refused(pay(&gate, &route, &header).await, "not valid yet");
    assert_eq!(chain.balance(recipient).await, U256::ZERO);
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    let victim = PrivateKeySigner::random();
    chain.mint(victim.address(), 5_000_000).await;
    let forger = PrivateKeySigner::random();
    // The forger signs an authorization spending the victim's tokens.
    let payload = payload(&chain, &forger, victim.address(), &Terms::of(&c));
    let header = header(&c, payload, victim.address());
    assert_refused(pay(&gate, &route, &header).await, "signature mismatch");
    assert_eq!(chain.balance(victim.address()).await, U256::from(5_000_000));
    assert_eq!(chain.balance(recipient).await, U256::ZERO);
}

#[tokio::test]
async fn a_payer_without_funds_is_refused_without_burning_the_challenge() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    let payer = PrivateKeySigner::random();
    let payload = payload(&chain, &payer, payer.address(), &Terms::of(&c));
    let header = header(&c, payload, payer.address());
    // The simulation reverts with the token's reason.
    assert_refused(
        pay(&gate, &route, &header).await,
        "transfer amount exceeds balance",
    );
    // The payer tops up and retries the same credential.
    chain.mint(payer.address(), 1_000_000).await;
    let grant = granted(pay(&gate, &route, &header).await);
    assert_tx_hash(&grant.receipt().reference);
    assert_eq!(chain.balance(recipient).await, U256::from(1_000_000));
    assert_eq!(chain.balance(payer.address()).await, U256::ZERO);
}

#[tokio::test]
async fn an_unreachable_rpc_is_a_500_and_the_credential_stays_usable() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    // A port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = MemoryStore::new();
    let down = EvmRail::new(
        chain
            .config(recipient)
            .rpc_url(format!("http://127.0.0.1:{closed}"))
            .timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let (down_gate, down_route) = gate_for(down, store.clone());
    let c = challenge(&down_gate, &down_route, "/paid").await;
    let (_, header) = funded_credential(&chain, &c, |_| {}).await;
    for _ in 0..2 {
        let response = denied(pay(&down_gate, &down_route, &header).await);
        assert_eq!(response.status, 500, "{}", response.body_text());
        assert_eq!(problem(&response), ProblemType::InternalPaymentError);
        assert!(
            problem_detail(&response).contains("unreachable"),
            "{}",
            problem_detail(&response)
        );
    }
    assert_eq!(chain.balance(recipient).await, U256::ZERO);

    // The same credential, once the node is back (same secret and store).
    let (gate, route) = gate_for(EvmRail::new(chain.config(recipient)).unwrap(), store);
    granted(pay(&gate, &route, &header).await);
    assert_eq!(chain.balance(recipient).await, U256::from(1_000_000));
}

#[tokio::test]
async fn without_a_relayer_key_402s_are_issued_and_settlement_names_the_variable() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let config = EvmConfig::from_lookup(|name| match name {
        "EVM_RECIPIENT" => Some(recipient.to_checksum(None)),
        "EVM_RPC_URL" => Some(chain.url.clone()),
        "EVM_CHAIN_ID" => Some(CHAIN_ID.to_string()),
        "EVM_TOKEN" => Some(chain.token.to_checksum(None)),
        _ => None,
    });
    let rail = EvmRail::new(config).unwrap();
    assert_eq!(rail.relayer_address(), None);
    rail.check_config().unwrap();
    let (gate, route) = gate_for(rail, MemoryStore::new());
    let c = challenge(&gate, &route, "/paid").await;
    let (_, header) = funded_credential(&chain, &c, |_| {}).await;
    let response = denied(pay(&gate, &route, &header).await);
    assert_eq!(response.status, 500, "{}", response.body_text());
    assert_eq!(problem(&response), ProblemType::InternalPaymentError);
    assert!(
        problem_detail(&response).contains("EVM_RELAYER_KEY"),
        "{}",
        problem_detail(&response)
    );
    assert_eq!(chain.balance(recipient).await, U256::ZERO);
}

#[tokio::test]
async fn an_authorization_already_relayed_elsewhere_is_verified_not_resent() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    let payer = PrivateKeySigner::random();
    chain.mint(payer.address(), 1_000_000).await;
    let terms = Terms::of(&c);
    let payload = payload(&chain, &payer, payer.address(), &terms);

    // Someone (the payer's wallet, a previous try of ours that timed out)
    // already relayed the authorization.
    let signature: alloy::primitives::Bytes =
        payload["signature"].as_str().unwrap().parse().unwrap();
    let call = transferWithAuthorizationCall {
        from: payer.address(),
        to: terms.to,
        value: terms.value,
        validAfter: terms.valid_after,
        validBefore: terms.valid_before,
        nonce: terms.nonce,
        signature,
    };
    let third: PrivateKeySigner = THIRD_PARTY_KEY.parse().unwrap();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(third))
        .connect_http(chain.url.parse().unwrap());
    let relayed = provider
        .send_transaction(
            TransactionRequest::default()
                .to(chain.token)
                .input(call.abi_encode().into()),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(relayed.status());

    let header = header(&c, payload, payer.address());
    let grant = granted(pay(&gate, &route, &header).await);
    assert_eq!(
        grant.receipt().reference,
        format!("{:#x}", relayed.transaction_hash)
    );
    assert_eq!(chain.balance(recipient).await, U256::from(1_000_000));
    // And it pays once.
    let replay = denied(pay(&gate, &route, &header).await);
    assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
}

#[tokio::test]
async fn concurrent_payments_share_the_relayer_without_nonce_collisions() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let mut headers = Vec::new();
    for _ in 0..5 {
        let c = challenge(&gate, &route, "/paid").await;
        headers.push(funded_credential(&chain, &c, |_| {}).await.1);
    }
    let tasks: Vec<_> = headers
        .into_iter()
        .map(|header| {
            let (gate, route) = (gate.clone(), route.clone());
            tokio::spawn(async move { granted(pay(&gate, &route, &header).await) })
        })
        .collect();
    let mut references = Vec::new();
    for task in tasks {
        references.push(task.await.unwrap().receipt().reference.clone());
    }
    references.sort();
    references.dedup();
    assert_eq!(references.len(), 5);
    assert_eq!(chain.balance(recipient).await, U256::from(5_000_000));
}

#[tokio::test]
async fn the_token_domain_can_be_configured() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = gate_for(
        EvmRail::new(
            chain
                .config(recipient)
                .token_domain(TOKEN_NAME, TOKEN_VERSION),
        )
        .unwrap(),
        MemoryStore::new(),
    );
    let c = challenge(&gate, &route, "/paid").await;
    let (_, header) = funded_credential(&chain, &c, |_| {}).await;
    granted(pay(&gate, &route, &header).await);

    // A wrong domain cannot verify the payer's signature.
    let (gate, route) = gate_for(
        EvmRail::new(chain.config(recipient).token_domain("USD Coin", "2")).unwrap(),
        MemoryStore::new(),
    );
    let c = challenge(&gate, &route, "/paid").await;
    let (_, header) = funded_credential(&chain, &c, |_| {}).await;
    assert_refused(pay(&gate, &route, &header).await, "signature mismatch");
    assert_eq!(chain.balance(recipient).await, U256::from(1_000_000));
}

#[tokio::test]
async fn a_source_naming_someone_else_is_refused() {
    let Some(chain) = chain() else { return };
    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let c = challenge(&gate, &route, "/paid").await;
    let payer = PrivateKeySigner::random();
    chain.mint(payer.address(), 1_000_000).await;
    let payload = payload(&chain, &payer, payer.address(), &Terms::of(&c));
    // `source` names another account.
    let header = header(&c, payload.clone(), recipient);
    assert_refused(pay(&gate, &route, &header).await, "source mismatch");
    // Without `source` it pays.
    let header = Credential {
        challenge: c.clone(),
        payload,
        source: None,
    }
    .to_header();
    granted(pay(&gate, &route, &header).await);
}

/// The stock mppx 0.11 CLI (`tools/mppx`, `npm ci --prefix tools/mppx`)
/// signs the challenge (`mppx sign`), with a configuration giving it the
/// test token's EIP-712 domain (the CLI only knows USDC and USDT domains).
#[tokio::test]
async fn the_stock_mppx_client_pays() {
    let Some(chain) = chain() else { return };
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/mppx");
    let cli = tools.join("node_modules/.bin/mppx");
    if !cli.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: npm ci --prefix tools/mppx"
        );
        eprintln!(
            "skipped: {} is missing (npm ci --prefix tools/mppx)",
            cli.display()
        );
        return;
    }
    let modules = tools.join("node_modules").canonicalize().unwrap();
    let dir = std::env::temp_dir().join(format!("mpp-evm-mppx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("mppx.config.mjs");
    std::fs::write(
        &config,
        format!(
            "import {{ privateKeyToAccount }} from 'file://{viem}'\n\
             import {{ evm }} from 'file://{mppx}'\n\
             export default {{ methods: [evm.charge({{ account: privateKeyToAccount(process.env.MPPX_PRIVATE_KEY), \
             authorization: {{ name: '{TOKEN_NAME}', version: '{TOKEN_VERSION}' }} }})] }}\n",
            viem = modules.join("viem/_esm/accounts/index.js").display(),
            mppx = modules.join("mppx/dist/client/index.js").display(),
        ),
    )
    .unwrap();

    let recipient = PrivateKeySigner::random().address();
    let (gate, route) = chain.gate(recipient);
    let response = denied(gate.admit(&route, get("/paid")).await);
    let www = response.header("www-authenticate").unwrap().to_owned();
    let payer = PrivateKeySigner::random();
    chain.mint(payer.address(), 1_000_000).await;
    let key = format!("0x{}", alloy::hex::encode(payer.to_bytes()));
    let output = std::process::Command::new(&cli)
        .args(["sign", "--challenge", &www, "--config"])
        .arg(&config)
        .env("MPPX_PRIVATE_KEY", &key)
        .env("MPPX_RPC_URL", &chain.url)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mppx sign failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let header = stdout
        .lines()
        .map(str::trim)
        .find_map(|l| {
            l.find("Payment ")
                .map(|i| l[i..].trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("no Authorization header in: {stdout}"));

    let grant = granted(pay(&gate, &route, &header).await);
    assert_tx_hash(&grant.receipt().reference);
    assert_eq!(chain.balance(recipient).await, U256::from(1_000_000));
}
