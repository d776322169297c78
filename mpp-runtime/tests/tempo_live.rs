//! The Tempo rail against the public Tempo testnet (Moderato, chain 42431).
//!
//! Runs only when `TEMPO_TESTNET_PRIVATE_KEY` holds a testnet key funded with
//! pathUSD (the faucet at docs.tempo.xyz); otherwise it prints that it
//! skipped. `TEMPO_TESTNET_RPC_URL` overrides the endpoint and
//! `TEMPO_TESTNET_RECIPIENT` the address paid (default: the payer itself,
//! so the test costs only fees). Each run pays 0.01 pathUSD twice, once in
//! pull mode and once in push mode.

#![cfg(feature = "tempo")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[path = "support/tempo.rs"]
mod tempo_support;

use mpp_runtime::rails::chain::alloy;
use mpp_runtime::rails::tempo::{
    PATH_USD as PATH_USD_TEXT, TESTNET_CHAIN_ID, TESTNET_RPC_URL, TempoConfig, TempoRail, memo,
};
use mpp_runtime::wire::Credential;
use mpp_runtime::*;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use serde_json::json;
use support::*;
use tempo_support::*;

fn testnet() -> Option<(String, PrivateKeySigner, Address)> {
    let Some(key) = std::env::var("TEMPO_TESTNET_PRIVATE_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    else {
        eprintln!(
            "skipped: set TEMPO_TESTNET_PRIVATE_KEY to a pathUSD-funded Tempo testnet key to run the live testnet tests"
        );
        return None;
    };
    let payer: PrivateKeySigner = key
        .trim()
        .parse()
        .expect("TEMPO_TESTNET_PRIVATE_KEY is a 0x private key");
    let url = std::env::var("TEMPO_TESTNET_RPC_URL").unwrap_or_else(|_| TESTNET_RPC_URL.to_owned());
    let recipient = std::env::var("TEMPO_TESTNET_RECIPIENT")
        .ok()
        .map(|r| r.parse().expect("TEMPO_TESTNET_RECIPIENT is an address"))
        .unwrap_or_else(|| payer.address());
    Some((url, payer, recipient))
}

#[tokio::test]
async fn pays_on_the_public_testnet_in_both_modes() {
    let Some((url, payer, recipient)) = testnet() else {
        return;
    };
    assert_eq!(PATH_USD_TEXT.parse::<Address>().unwrap(), PATH_USD);
    let chain = Chain::with_funder(url.clone(), TESTNET_CHAIN_ID, payer.clone());
    let rail = TempoRail::new(
        TempoConfig::default()
            .recipient(recipient.to_string())
            .rpc_url(&url),
    )
    .unwrap();
    let gate = Gate::builder(config().build().unwrap())
        .rail(rail)
        .build()
        .unwrap();
    let route = route(
        &gate,
        "/live",
        PaymentSpec::new()
            .amount("0.01")
            .method("tempo")
            .scope("tempo.live"),
    );
    for push in [false, true] {
        let c = challenge(&gate, &route, "/live").await;
        let memo = memo::attribution(&c.realm, &c.id, None);
        let raw = chain
            .sign(
                &payer,
                vec![pay_with(PATH_USD, recipient, 10_000, memo)],
                500_000,
            )
            .await;
        let payload = if push {
            let hash = chain.broadcast(&raw).await;
            json!({"type": "hash", "hash": format!("{hash:#x}")})
        } else {
            json!({"type": "transaction", "signature": format!("0x{}", alloy::hex::encode(&raw))})
        };
        let header = Credential {
            challenge: c.clone(),
            payload: payload.as_object().unwrap().clone(),
            source: None,
        }
        .to_header();
        let grant = granted(gate.admit(&route, with_auth("/live", &header)).await);
        println!(
            "testnet {} payment: {}",
            if push { "push" } else { "pull" },
            grant.receipt().reference
        );
    }
}
