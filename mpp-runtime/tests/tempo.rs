//! The Tempo rail offline: the official receipt vectors, signed transactions
//! from the stock client's signer, the challenge it issues and its
//! configuration errors. The real-chain tests are in `tempo_chain.rs`.
#![cfg(feature = "tempo")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mpp_runtime::rails::chain::alloy;

use alloy::primitives::{Address, U256};
use mpp_runtime::price::{Currency, parse_amount};
use mpp_runtime::rails::chain::ChainLog;
use mpp_runtime::rails::tempo::transfer::Expected;
use mpp_runtime::rails::tempo::{Mode, TempoConfig, TempoRail, memo, pull, verify_receipt};
use mpp_runtime::{Price, Rail, SettleErrorKind};
use serde_json::Value;

fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/tempo/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn addr(v: &Value) -> Address {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn official_receipt_vectors() {
    let vectors = data("receipt-vectors.json");
    let cases = vectors["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let expected = Expected {
            token: addr(&case["currency"]),
            recipient: addr(&case["recipient"]),
            amount: U256::from_str_radix(case["amount"].as_str().unwrap(), 10).unwrap(),
            realm: case["realm"].as_str().unwrap(),
            challenge_id: case["challenge_id"].as_str().unwrap(),
        };
        let receipt = &case["receipt"];
        let logs: Vec<ChainLog> = serde_json::from_value(receipt["logs"].clone()).unwrap();
        let reference = receipt["reference"].as_str().unwrap();
        let outcome = verify_receipt(
            receipt["status"] == "0x1",
            &logs,
            &expected,
            None,
            reference,
        );
        if case["accepted"].as_bool().unwrap() {
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
            assert_eq!(case["reference"].as_str().unwrap(), reference, "{name}");
        } else {
            let error = outcome.expect_err(name);
            assert_eq!(error.kind, SettleErrorKind::VerificationFailed, "{name}");
        }
    }
}

#[test]
fn a_reverted_receipt_never_pays() {
    let vectors = data("receipt-vectors.json");
    let case = &vectors["cases"][0];
    let logs: Vec<ChainLog> = serde_json::from_value(case["receipt"]["logs"].clone()).unwrap();
    let expected = Expected {
        token: addr(&case["currency"]),
        recipient: addr(&case["recipient"]),
        amount: U256::from(1000u64),
        realm: "api.example.com",
        challenge_id: "challenge-123",
    };
    assert!(verify_receipt(true, &logs, &expected, None, "0x1").is_ok());
    let error = verify_receipt(false, &logs, &expected, None, "0x1").unwrap_err();
    assert!(error.detail.contains("reverted"));
    // The log's sender is 0xabcd…: another claimed sender does not match.
    let other: Address = "0x00000000000000000000000000000000000000ff"
        .parse()
        .unwrap();
    assert!(verify_receipt(true, &logs, &expected, Some(other), "0x1").is_err());
    let sender: Address = "0xabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd"
        .parse()
        .unwrap();
    assert_eq!(
        verify_receipt(true, &logs, &expected, Some(sender), "0x1").unwrap(),
        sender
    );
}

struct Fixture {
    raw: Vec<u8>,
    chain_id: u64,
    token: Address,
    recipient: Address,
    amount: U256,
    payer: Address,
}

fn fixture(kind: &str) -> Fixture {
    let tx = data("transactions.json");
    Fixture {
        raw: alloy::hex::decode(tx[kind]["hex"].as_str().unwrap()).unwrap(),
        chain_id: tx["chain_id"].as_u64().unwrap(),
        token: addr(&tx["token"]),
        recipient: addr(&tx["recipient"]),
        amount: U256::from_str_radix(tx["amount"].as_str().unwrap(), 10).unwrap(),
        payer: addr(&tx["payer"]),
    }
}

fn expected<'a>(f: &Fixture, realm: &'a str, id: &'a str) -> Expected<'a> {
    Expected {
        token: f.token,
        recipient: f.recipient,
        amount: f.amount,
        realm,
        challenge_id: id,
    }
}

const BEFORE_EXPIRY: u64 = 1_800_000_000;

#[test]
fn a_signed_transaction_from_the_stock_signer_pays_its_challenge() {
    let f = fixture("plain");
    let tx = data("transactions.json");
    let payment = pull::check(
        f.raw.clone(),
        f.chain_id,
        &expected(&f, "api.example.com", "challenge-123"),
        BEFORE_EXPIRY,
    )
    .unwrap();
    assert_eq!(payment.sender, f.payer);
    assert_eq!(
        format!("{:#x}", payment.hash),
        tx["plain"]["txHash"].as_str().unwrap().to_lowercase()
    );
    // One call, to the token.
    let calls: Vec<_> = pull::calls(&payment).collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, f.token);
}

#[test]
fn a_signed_transaction_is_refused_for_anything_else() {
    let f = fixture("plain");
    let check = |expected: Expected<'_>, chain: u64, now: u64| {
        pull::check(f.raw.clone(), chain, &expected, now).unwrap_err()
    };
    let base = || expected(&f, "api.example.com", "challenge-123");

    let e = check(base(), 4217, BEFORE_EXPIRY);
    assert!(e.detail.contains("chain 42431"), "{}", e.detail);

    let e = check(
        Expected {
            challenge_id: "challenge-124",
            ..base()
        },
        f.chain_id,
        BEFORE_EXPIRY,
    );
    assert!(e.detail.contains("memo"), "{}", e.detail);

    let e = check(
        Expected {
            realm: "evil.example.com",
            ..base()
        },
        f.chain_id,
        BEFORE_EXPIRY,
    );
    assert!(e.detail.contains("memo"), "{}", e.detail);

    let e = check(
        Expected {
            amount: f.amount + U256::from(1),
            ..base()
        },
        f.chain_id,
        BEFORE_EXPIRY,
    );
    assert!(e.detail.contains("amount"), "{}", e.detail);

    let e = check(
        Expected {
            recipient: f.payer,
            ..base()
        },
        f.chain_id,
        BEFORE_EXPIRY,
    );
    assert!(e.detail.contains("recipient"), "{}", e.detail);

    let e = check(
        Expected {
            token: "0x20c0000000000000000000000000000000000001"
                .parse()
                .unwrap(),
            ..base()
        },
        f.chain_id,
        BEFORE_EXPIRY,
    );
    assert!(e.detail.contains("token"), "{}", e.detail);

    let e = check(base(), f.chain_id, 1_900_000_000);
    assert!(e.detail.contains("validBefore"), "{}", e.detail);
    for e in [
        check(base(), 4217, BEFORE_EXPIRY),
        check(base(), f.chain_id, 1_900_000_001),
    ] {
        assert_eq!(e.kind, SettleErrorKind::VerificationFailed);
    }
}

#[test]
fn sponsored_transactions_are_refused_clearly() {
    for kind in ["fee_payer_envelope", "cosigned"] {
        let f = fixture(kind);
        let e = pull::check(
            f.raw.clone(),
            f.chain_id,
            &expected(&f, "api.example.com", "challenge-123"),
            BEFORE_EXPIRY,
        )
        .unwrap_err();
        assert!(
            e.detail.contains("does not sponsor fees"),
            "{kind}: {}",
            e.detail
        );
    }
}

#[test]
fn garbage_is_an_invalid_payload_not_a_panic() {
    let f = fixture("plain");
    let exp = expected(&f, "api.example.com", "challenge-123");
    for raw in [
        vec![],
        vec![0x76],
        vec![0x02, 0xc0],
        f.raw[..f.raw.len() / 2].to_vec(),
        {
            let mut r = f.raw.clone();
            r.push(0);
            r
        },
    ] {
        let e = pull::check(raw, f.chain_id, &exp, BEFORE_EXPIRY).unwrap_err();
        assert_eq!(e.kind, SettleErrorKind::InvalidPayload, "{}", e.detail);
    }
    // A flipped signature byte recovers another sender (or none): the
    // transaction is then judged as that sender's, never as the payer's.
    let mut tampered = f.raw.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    if let Ok(p) = pull::check(tampered, f.chain_id, &exp, BEFORE_EXPIRY) {
        assert_ne!(p.sender, f.payer);
    }
}

fn config() -> TempoConfig {
    TempoConfig::default()
        .recipient("0x742d35Cc6634c0532925a3b844bC9e7595F8fE00")
        .rpc_url("http://127.0.0.1:9")
}

fn price(amount: &str, currency: &str) -> Price {
    Price {
        amount: parse_amount(amount, Currency::from_code(currency).unwrap()).unwrap(),
        grants: 1,
        scope: "s".into(),
        description: None,
    }
}

#[test]
fn the_challenge_request_is_the_stock_clients_shape() {
    let rail = TempoRail::new(config()).unwrap();
    let request = rail.challenge_request(&price("5.00", "USD")).unwrap();
    assert_eq!(
        Value::Object(request),
        serde_json::json!({
            "amount": "5000000",
            "currency": "0x20C0000000000000000000000000000000000000",
            "methodDetails": {"chainId": 42431},
            "recipient": "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00",
        })
    );
    let push_only = TempoRail::new(config().modes([Mode::Push])).unwrap();
    let request = push_only.challenge_request(&price("0.01", "USD")).unwrap();
    assert_eq!(request["amount"], "10000");
    assert_eq!(
        request["methodDetails"]["supportedModes"],
        serde_json::json!(["push"])
    );
    // A route priced in another currency than the token's is a startup error.
    let e = rail.challenge_request(&price("5.00", "EUR")).unwrap_err();
    assert!(e.0.contains("TEMPO_CURRENCY"), "{e}");
}

#[test]
fn misconfiguration_names_what_to_set() {
    let e = TempoRail::new(TempoConfig::default()).unwrap_err();
    assert!(e.0.contains("TEMPO_RECIPIENT is not set"), "{e}");
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let e = TempoRail::new(TempoConfig::from_lookup(env(&[
        ("TEMPO_RECIPIENT", "0x1234"),
        ("TEMPO_CHAIN_ID", "tempo"),
        ("TEMPO_MODES", "pull,pay"),
        ("TEMPO_RPC_URL", "ftp://node"),
    ])))
    .unwrap_err();
    for needle in [
        "TEMPO_RECIPIENT must be",
        "TEMPO_CHAIN_ID must be",
        "TEMPO_MODES lists `pay`",
        "TEMPO_RPC_URL",
    ] {
        assert!(e.0.contains(needle), "{needle} missing from: {e}");
    }
    let rail = TempoRail::new(TempoConfig::from_lookup(env(&[
        (
            "TEMPO_RECIPIENT",
            "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00",
        ),
        ("TEMPO_CHAIN_ID", "1337"),
        ("TEMPO_RPC_URL", "http://user:secret@127.0.0.1:8545"),
    ])))
    .unwrap();
    let debug = format!("{rail:?}");
    assert!(
        debug.contains("1337") && !debug.contains("secret"),
        "{debug}"
    );
}

#[test]
fn the_memo_matches_the_vectors() {
    let tx = data("transactions.json");
    assert_eq!(
        format!(
            "{:#x}",
            memo::attribution("api.example.com", "challenge-123", None)
        ),
        tx["memo"].as_str().unwrap()
    );
}
