//! The Tempo rail against a real chain: anvil in Tempo mode
//! (`tools/chain/start.sh tempo`, URL in `MPP_TEST_TEMPO_RPC_URL`), with
//! Tempo transactions signed here the way a wallet signs them.
//!
//! Without the chain the tests print that they skipped, unless `CI` is set,
//! where they fail: CI must run them.
//!
//! anvil 1.7.1 mines only the first expiring-nonce transaction of each
//! sender, so every payment comes from a freshly funded key; each test funds
//! from its own dev account so tests can run in parallel.

#![cfg(feature = "tempo")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[path = "support/tempo.rs"]
mod tempo_support;

use std::sync::Arc;

use mpp_runtime::rails::chain::alloy;
use mpp_runtime::rails::tempo::tempo_primitives::transaction::Call;
use mpp_runtime::rails::tempo::{Mode, TempoConfig, TempoRail, memo};
use mpp_runtime::wire::{Challenge, Credential, ProblemType};
use mpp_runtime::*;

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use support::*;
use tempo_support::*;

const CHAIN_ID: u64 = 1337;

/// A shop whose Tempo payments go to a fresh address.
struct Shop {
    gate: Gate,
    route: Route,
    recipient: Address,
}

fn shop_with(url: &str, modes: &[Mode], store: Arc<dyn Store>) -> Shop {
    let recipient = PrivateKeySigner::random().address();
    shop_paying(url, modes, store, recipient)
}

fn shop_paying(url: &str, modes: &[Mode], store: Arc<dyn Store>, recipient: Address) -> Shop {
    let rail = TempoRail::new(
        TempoConfig::default()
            .recipient(recipient.to_string())
            .rpc_url(url)
            .chain_id(CHAIN_ID)
            .modes(modes.iter().copied())
            .wait(policy()),
    )
    .unwrap();
    let gate = Gate::builder(config().build().unwrap())
        .rail(rail)
        .store_arc(store)
        .build()
        .unwrap();
    let route = route(
        &gate,
        "/r",
        PaymentSpec::new()
            .amount("1.00")
            .method("tempo")
            .scope("tempo.test"),
    );
    Shop {
        gate,
        route,
        recipient,
    }
}

fn shop(url: &str) -> Shop {
    shop_with(url, &[Mode::Pull, Mode::Push], Arc::new(MemoryStore::new()))
}

fn credential(challenge: &Challenge, payload: Value, payer: Option<Address>) -> String {
    Credential {
        challenge: challenge.clone(),
        payload: payload.as_object().unwrap().clone(),
        source: payer.map(|p| json!(format!("did:pkh:eip155:{CHAIN_ID}:{p}"))),
    }
    .to_header()
}

fn signed_payload(raw: &[u8]) -> Value {
    json!({"type": "transaction", "signature": format!("0x{}", alloy::hex::encode(raw))})
}

fn hash_payload(hash: B256) -> Value {
    json!({"type": "hash", "hash": format!("{hash:#x}")})
}

fn bound_memo(challenge: &Challenge) -> B256 {
    memo::attribution(&challenge.realm, &challenge.id, None)
}

#[tokio::test]
async fn a_signed_transaction_pays_once_and_the_money_arrives() {
    let Some(url) = chain() else { return };
    let chain = Chain::new(url.clone(), 0);
    let shop = shop(&url);
    let c = challenge(&shop.gate, &shop.route, "/r").await;
    let payer = chain.payer(1).await;
    let raw = chain
        .sign(
            &payer,
            vec![pay_with(PATH_USD, shop.recipient, DOLLAR, bound_memo(&c))],
            300_000,
        )
        .await;
    let paid = credential(&c, signed_payload(&raw), Some(payer.address()));
    let grant = granted(shop.gate.admit(&shop.route, with_auth("/r", &paid)).await);
    let receipt = grant.receipt().clone();
    assert_eq!(receipt.method, "tempo");
    assert_eq!(
        receipt.reference,
        format!("{:#x}", alloy::primitives::keccak256(&raw))
    );
    assert_eq!(
        chain.balance(PATH_USD, shop.recipient).await,
        U256::from(DOLLAR)
    );

    // The same credential again is a replay.
    let again = denied(shop.gate.admit(&shop.route, with_auth("/r", &paid)).await);
    assert_eq!(problem(&again), ProblemType::InvalidChallenge);
    // The same transaction for another challenge pays nothing.
    let c2 = challenge(&shop.gate, &shop.route, "/r").await;
    let replay = credential(&c2, signed_payload(&raw), None);
    let refused = denied(shop.gate.admit(&shop.route, with_auth("/r", &replay)).await);
    // (Its memo binds the first challenge, which is checked first.)
    assert_eq!(problem(&refused), ProblemType::VerificationFailed);
    assert!(
        problem_detail(&refused).contains("memo"),
        "{}",
        problem_detail(&refused)
    );
    assert_eq!(
        chain.balance(PATH_USD, shop.recipient).await,
        U256::from(DOLLAR)
    );
}

#[tokio::test]
async fn a_broadcast_transaction_hash_pays_once() {
    let Some(url) = chain() else { return };
    let chain = Chain::new(url.clone(), 1);
    let shop = shop_with(&url, &[Mode::Push], Arc::new(MemoryStore::new()));
    let c = challenge(&shop.gate, &shop.route, "/r").await;
    assert_eq!(
        c.request.fields()["methodDetails"]["supportedModes"],
        json!(["push"])
    );
    let payer = chain.payer(1).await;
    let raw = chain
        .sign(
            &payer,
            vec![pay_with(PATH_USD, shop.recipient, DOLLAR, bound_memo(&c))],
            300_000,
        )
        .await;
    // Push only: the signed transaction itself is refused.
    let pull = credential(&c, signed_payload(&raw), None);
    let refused = denied(shop.gate.admit(&shop.route, with_auth("/r", &pull)).await);
    assert_eq!(problem(&refused), ProblemType::VerificationFailed);

    let hash = chain.broadcast(&raw).await;
    let paid = credential(&c, hash_payload(hash), Some(payer.address()));
    let grant = granted(shop.gate.admit(&shop.route, with_auth("/r", &paid)).await);
    assert_eq!(grant.receipt().reference, format!("{hash:#x}"));
    assert_eq!(
        chain.balance(PATH_USD, shop.recipient).await,
        U256::from(DOLLAR)
    );

    // The hash for another challenge: already used.
    let c2 = challenge(&shop.gate, &shop.route, "/r").await;
    let replay = credential(&c2, hash_payload(hash), None);
    let refused = denied(shop.gate.admit(&shop.route, with_auth("/r", &replay)).await);
    assert_eq!(problem(&refused), ProblemType::VerificationFailed);
    assert!(problem_detail(&refused).contains("already paid"));
    // Someone else's source for the same payment is refused too.
    let c3 = challenge(&shop.gate, &shop.route, "/r").await;
    let stranger = PrivateKeySigner::random().address();
    let claimed = credential(&c3, hash_payload(hash), Some(stranger));
    let refused = denied(
        shop.gate
            .admit(&shop.route, with_auth("/r", &claimed))
            .await,
    );
    assert_eq!(problem(&refused), ProblemType::VerificationFailed);
}

/// Every wrong payment is refused with a 402, moves no money, and leaves
/// the challenge payable.
#[tokio::test]
async fn wrong_payments_are_refused_and_the_challenge_stays_payable() {
    let Some(url) = chain() else { return };
    let chain = Chain::new(url.clone(), 2);
    let shop = shop(&url);
    let c = challenge(&shop.gate, &shop.route, "/r").await;
    let other = challenge(&shop.gate, &shop.route, "/r").await;
    let stranger = PrivateKeySigner::random().address();
    let cases: Vec<(&str, Vec<Call>)> = vec![
        (
            "wrong recipient",
            vec![pay_with(PATH_USD, stranger, DOLLAR, bound_memo(&c))],
        ),
        (
            "wrong amount",
            vec![pay_with(
                PATH_USD,
                shop.recipient,
                DOLLAR - 1,
                bound_memo(&c),
            )],
        ),
        (
            "wrong token",
            vec![pay_with(ALPHA_USD, shop.recipient, DOLLAR, bound_memo(&c))],
        ),
        (
            "memo of another challenge",
            vec![pay_with(
                PATH_USD,
                shop.recipient,
                DOLLAR,
                bound_memo(&other),
            )],
        ),
        (
            "memo of another realm",
            vec![pay_with(
                PATH_USD,
                shop.recipient,
                DOLLAR,
                memo::attribution("evil.example.com", &c.id, None),
            )],
        ),
        (
            "no memo",
            vec![plain_transfer(PATH_USD, shop.recipient, DOLLAR)],
        ),
    ];
    for (name, calls) in cases {
        let payer = PrivateKeySigner::random();
        let raw = chain.sign(&payer, calls, 300_000).await;
        let paid = credential(&c, signed_payload(&raw), None);
        let refused = denied(shop.gate.admit(&shop.route, with_auth("/r", &paid)).await);
        assert_eq!(refused.status, 402, "{name}");
        assert_eq!(
            problem(&refused),
            ProblemType::VerificationFailed,
            "{name}: {}",
            problem_detail(&refused)
        );
    }

    // Push mode: a mined transfer with the wrong memo is refused as well.
    let payer = chain.payer(1).await;
    let raw = chain
        .sign(
            &payer,
            vec![pay_with(
                PATH_USD,
                shop.recipient,
                DOLLAR,
                bound_memo(&other),
            )],
            300_000,
        )
        .await;
    let hash = chain.broadcast(&raw).await;
    let refused = denied(
        shop.gate
            .admit(
                &shop.route,
                with_auth("/r", &credential(&c, hash_payload(hash), None)),
            )
            .await,
    );
    assert_eq!(problem(&refused), ProblemType::VerificationFailed);
    assert!(
        problem_detail(&refused).contains("memo"),
        "{}",
        problem_detail(&refused)
    );
    // That transfer paid `other`, which it was bound to.
    granted(
        shop.gate
            .admit(
                &shop.route,
                with_auth("/r", &credential(&other, hash_payload(hash), None)),
            )
            .await,
    );

    // The first challenge is still payable.
    let payer = chain.payer(1).await;
    let raw = chain
        .sign(
            &payer,
            vec![pay_with(PATH_USD, shop.recipient, DOLLAR, bound_memo(&c))],
            300_000,
        )
        .await;
    granted(
        shop.gate
            .admit(
                &shop.route,
                with_auth("/r", &credential(&c, signed_payload(&raw), None)),
            )
            .await,
    );
    assert_eq!(
        chain.balance(PATH_USD, shop.recipient).await,
        U256::from(2 * DOLLAR)
    );
}

#[tokio::test]
async fn a_transaction_that_would_revert_is_refused_and_a_reverted_one_never_pays() {
    let Some(url) = chain() else { return };
    let chain = Chain::new(url.clone(), 3);
    let shop = shop(&url);
    let c = challenge(&shop.gate, &shop.route, "/r").await;
    // Pays the dollar, then tries to move far more than the payer has: the
    // whole transaction reverts.
    let calls = |c: &Challenge| {
        vec![
            pay_with(PATH_USD, shop.recipient, DOLLAR, bound_memo(c)),
            plain_transfer(PATH_USD, shop.recipient, 1_000 * DOLLAR),
        ]
    };
    let payer = chain.payer(1).await;
    let raw = chain.sign(&payer, calls(&c), 400_000).await;
    let refused = denied(
        shop.gate
            .admit(
                &shop.route,
                with_auth("/r", &credential(&c, signed_payload(&raw), None)),
            )
            .await,
    );
    assert_eq!(problem(&refused), ProblemType::VerificationFailed);
    assert!(
        problem_detail(&refused).contains("would fail"),
        "{}",
        problem_detail(&refused)
    );

    // Mined anyway (by the payer): the receipt says it reverted.
    let hash = chain.rpc.send_raw(&raw).await.unwrap();
    let receipt = chain.rpc.wait(hash, &policy()).await.unwrap().unwrap();
    assert!(!receipt.succeeded());
    let refused = denied(
        shop.gate
            .admit(
                &shop.route,
                with_auth("/r", &credential(&c, hash_payload(hash), None)),
            )
            .await,
    );
    assert_eq!(problem(&refused), ProblemType::VerificationFailed);
    assert!(problem_detail(&refused).contains("reverted"));
    assert_eq!(chain.balance(PATH_USD, shop.recipient).await, U256::ZERO);
}

#[tokio::test]
async fn an_unreachable_node_is_a_500_and_the_credential_settles_later() {
    let Some(url) = chain() else { return };
    let chain = Chain::new(url.clone(), 4);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let recipient = PrivateKeySigner::random().address();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let down = shop_paying(&closed, &[Mode::Pull, Mode::Push], store.clone(), recipient);
    let up = shop_paying(&url, &[Mode::Pull, Mode::Push], store, recipient);

    let c = challenge(&down.gate, &down.route, "/r").await;
    let payer = chain.payer(1).await;
    let raw = chain
        .sign(
            &payer,
            vec![pay_with(PATH_USD, recipient, DOLLAR, bound_memo(&c))],
            300_000,
        )
        .await;
    let paid = credential(&c, signed_payload(&raw), None);
    let failed = denied(down.gate.admit(&down.route, with_auth("/r", &paid)).await);
    assert_eq!(failed.status, 500);
    assert_eq!(problem(&failed), ProblemType::InternalPaymentError);
    assert!(
        problem_detail(&failed).contains("unreachable"),
        "{}",
        problem_detail(&failed)
    );

    // Same secret, realm, route and store, with the node back: the
    // challenge was not burned and the same credential pays.
    let grant = granted(up.gate.admit(&up.route, with_auth("/r", &paid)).await);
    assert_eq!(
        grant.receipt().reference,
        format!("{:#x}", alloy::primitives::keccak256(&raw))
    );
    assert_eq!(chain.balance(PATH_USD, recipient).await, U256::from(DOLLAR));
}

#[tokio::test]
async fn a_retry_after_the_broadcast_finds_the_mined_payment() {
    let Some(url) = chain() else { return };
    let chain = Chain::new(url.clone(), 5);
    let shop = shop(&url);
    let c = challenge(&shop.gate, &shop.route, "/r").await;
    let payer = chain.payer(1).await;
    let raw = chain
        .sign(
            &payer,
            vec![pay_with(PATH_USD, shop.recipient, DOLLAR, bound_memo(&c))],
            300_000,
        )
        .await;
    // The server broadcast it, then lost the answer (a timeout): the
    // transaction is mined, and the client retries the same credential.
    chain.broadcast(&raw).await;
    let paid = credential(&c, signed_payload(&raw), None);
    granted(shop.gate.admit(&shop.route, with_auth("/r", &paid)).await);
    assert_eq!(
        chain.balance(PATH_USD, shop.recipient).await,
        U256::from(DOLLAR)
    );
}
