//! The Stellar rail against the public Stellar testnet.
//!
//! Runs only when `STELLAR_TESTNET_SECRET` holds the `S…` seed of a testnet
//! account funded with XLM (friendbot) and testnet USDC (Circle's faucet),
//! with a USDC trustline; otherwise each test prints that it skipped and
//! why. `STELLAR_TESTNET_RPC_URL` overrides the endpoint
//! (default `https://soroban-testnet.stellar.org`) and
//! `STELLAR_TESTNET_RECIPIENT` the account paid (default: the payer itself,
//! so a run costs only fees; another recipient needs a USDC trustline).
//! `STELLAR_TESTNET_FEE_PAYER_SECRET` (an XLM-funded account) also runs the
//! sponsored payment. Each payment is 0.01 USDC.
//!
//! The payer's side is built here the way the reference client does it:
//! the transfer is simulated to learn its authorization and resources,
//! then signed (the transaction, or for a sponsored payment only the
//! authorization entry).

#![cfg(feature = "stellar")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use mpp_runtime as rt;

mod support;

#[path = "support/stellar_rpc.rs"]
mod stellar_rpc;

#[path = "support/stellar.rs"]
mod stellar_support;

use std::time::Duration;

use mpp_runtime::rails::stellar::keys::{self, Keypair};
use mpp_runtime::rails::stellar::rpc::StellarRpc;
use mpp_runtime::rails::stellar::transfer::{authorization_payload, to_hex};
use mpp_runtime::rails::stellar::xdr::{
    AccountId, BytesM, DecoratedSignature, HostFunction, Int128Parts, InvokeContractArgs,
    InvokeHostFunctionOp, LedgerEntryData, LedgerKey, LedgerKeyAccount, Limits, Memo, MuxedAccount,
    Operation, OperationBody, Preconditions, PublicKey, ReadXdr, ScBytes, ScMap, ScMapEntry,
    ScSymbol, ScVal, ScVec, SequenceNumber, Signature, SignatureHint, SorobanAuthorizationEntry,
    SorobanCredentials, SorobanTransactionData, TimeBounds, TimePoint, Transaction,
    TransactionEnvelope, TransactionExt, TransactionV1Envelope, Uint256, VecM, WriteXdr,
};
use mpp_runtime::rails::stellar::{
    ALL_ZEROS_ACCOUNT, Network, StellarConfig, StellarRail, TESTNET_RPC_URL, USDC_TESTNET,
};
use mpp_runtime::wire::{Challenge, Credential, Timestamp};
use mpp_runtime::*;
use serde_json::{Value, json};
use support::{config, granted, route, with_auth};

struct Live {
    url: String,
    rpc: StellarRpc,
    payer: Keypair,
    recipient: String,
}

fn live() -> Option<Live> {
    let Some(secret) = std::env::var("STELLAR_TESTNET_SECRET")
        .ok()
        .filter(|s| !s.trim().is_empty())
    else {
        eprintln!(
            "skipped: set STELLAR_TESTNET_SECRET to the S… seed of a testnet account holding XLM and testnet USDC (with a USDC trustline) to run the live Stellar testnet tests"
        );
        return None;
    };
    let payer = Keypair::from_secret(&secret).expect("STELLAR_TESTNET_SECRET is an S… seed");
    let url =
        std::env::var("STELLAR_TESTNET_RPC_URL").unwrap_or_else(|_| TESTNET_RPC_URL.to_owned());
    let recipient =
        std::env::var("STELLAR_TESTNET_RECIPIENT").unwrap_or_else(|_| payer.public_key());
    Some(Live {
        rpc: StellarRpc::new(&url, Duration::from_secs(30)).unwrap(),
        url,
        payer,
        recipient,
    })
}

fn gate_for(live: &Live, sponsor: Option<&str>) -> (Gate, Route) {
    let mut settings = StellarConfig::default()
        .recipient(&live.recipient)
        .rpc_url(&live.url)
        .polling(Duration::from_secs(2), 30);
    if let Some(secret) = sponsor {
        settings = settings.fee_payer(secret);
    }
    let gate = Gate::builder(config().build().unwrap())
        .rail(StellarRail::new(settings).unwrap())
        .build()
        .unwrap();
    let route = route(
        &gate,
        "/live",
        PaymentSpec::new()
            .amount("0.01")
            .method("stellar")
            .scope("stellar.live"),
    );
    (gate, route)
}

fn symbol(name: &str) -> ScVal {
    ScVal::Symbol(ScSymbol(name.try_into().unwrap()))
}

fn address(text: &str) -> ScVal {
    ScVal::Address(keys::parse_address(text).unwrap())
}

/// `transfer(payer, recipient, amount)` on testnet USDC.
fn transfer_call(live: &Live, amount: i128) -> InvokeContractArgs {
    InvokeContractArgs {
        contract_address: keys::parse_address(USDC_TESTNET).unwrap(),
        function_name: ScSymbol("transfer".try_into().unwrap()),
        args: VecM::try_from(vec![
            address(&live.payer.public_key()),
            address(&live.recipient),
            ScVal::I128(Int128Parts {
                hi: (amount >> 64) as i64,
                lo: amount as u64,
            }),
        ])
        .unwrap(),
    }
}

async fn sequence(live: &Live, account: [u8; 32]) -> i64 {
    let key = LedgerKey::Account(LedgerKeyAccount {
        account_id: AccountId(PublicKey::PublicKeyTypeEd25519(Uint256(account))),
    })
    .to_xdr_base64(Limits::none())
    .unwrap();
    let entry = live
        .rpc
        .ledger_entry(&key)
        .await
        .unwrap()
        .expect("the payer account exists");
    match LedgerEntryData::from_xdr_base64(entry, Limits::none()).unwrap() {
        LedgerEntryData::Account(a) => a.seq_num.0,
        _ => panic!("not an account"),
    }
}

fn envelope_of(tx: &Transaction, signatures: Vec<DecoratedSignature>) -> String {
    TransactionEnvelope::Tx(TransactionV1Envelope {
        tx: tx.clone(),
        signatures: VecM::try_from(signatures).unwrap(),
    })
    .to_xdr_base64(Limits::none())
    .unwrap()
}

/// Builds the transfer as `source` at `seq`, valid until `max_time`,
/// simulates it to learn its authorization entries and resources, and
/// assembles it (unsigned).
async fn assemble(
    live: &Live,
    source: [u8; 32],
    seq: i64,
    max_time: u64,
    amount: i128,
) -> Transaction {
    let mut tx = Transaction {
        source_account: MuxedAccount::Ed25519(Uint256(source)),
        fee: 100,
        seq_num: SequenceNumber(seq),
        cond: Preconditions::Time(TimeBounds {
            min_time: TimePoint(0),
            max_time: TimePoint(max_time),
        }),
        memo: Memo::None,
        operations: VecM::try_from(vec![Operation {
            source_account: None,
            body: OperationBody::InvokeHostFunction(InvokeHostFunctionOp {
                host_function: HostFunction::InvokeContract(transfer_call(live, amount)),
                auth: VecM::default(),
            }),
        }])
        .unwrap(),
        ext: TransactionExt::V0,
    };
    let simulation: Value = live
        .rpc
        .call(
            "simulateTransaction",
            json!({"transaction": envelope_of(&tx, vec![])}),
        )
        .await
        .unwrap();
    assert!(
        simulation.get("error").is_none(),
        "simulation failed: {simulation}"
    );
    let auth: Vec<SorobanAuthorizationEntry> = simulation["results"][0]["auth"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            SorobanAuthorizationEntry::from_xdr_base64(a.as_str().unwrap(), Limits::none()).unwrap()
        })
        .collect();
    let data = SorobanTransactionData::from_xdr_base64(
        simulation["transactionData"].as_str().unwrap(),
        Limits::none(),
    )
    .unwrap();
    let resource_fee: u32 = simulation["minResourceFee"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // A margin over the simulated resources, as SDKs add.
    tx.fee = 100 + resource_fee + resource_fee / 4;
    tx.ext = TransactionExt::V1(data);
    let OperationBody::InvokeHostFunction(mut op) = tx.operations[0].body.clone() else {
        unreachable!("built above")
    };
    op.auth = VecM::try_from(auth).unwrap();
    tx.operations = VecM::try_from(vec![Operation {
        source_account: None,
        body: OperationBody::InvokeHostFunction(op),
    }])
    .unwrap();
    tx
}

fn sign_tx(tx: &Transaction, keys: &Keypair) -> String {
    let hash = tx.hash(Network::Testnet.id()).unwrap();
    envelope_of(
        tx,
        vec![DecoratedSignature {
            hint: SignatureHint(keys.hint()),
            signature: Signature(keys.sign(&hash).to_vec().try_into().unwrap()),
        }],
    )
}

fn challenge_expiry(c: &Challenge) -> u64 {
    Timestamp::parse_rfc3339(c.expires.as_deref().unwrap())
        .unwrap()
        .unix()
}

fn header(c: &Challenge, payload: Value, payer: &Keypair) -> String {
    Credential {
        challenge: c.clone(),
        payload: payload.as_object().unwrap().clone(),
        source: Some(json!(format!(
            "did:pkh:stellar:testnet:{}",
            payer.public_key()
        ))),
    }
    .to_header()
}

#[tokio::test]
async fn pays_on_the_public_testnet_in_pull_and_push_mode() {
    let Some(live) = live() else { return };
    let (gate, route) = gate_for(&live, None);
    let payer = live.payer.public_bytes();

    // Pull: the payer signs, the server submits.
    let c = support::challenge(&gate, &route, "/live").await;
    let seq = sequence(&live, payer).await;
    let tx = assemble(&live, payer, seq + 1, challenge_expiry(&c), 100_000).await;
    let paid = header(
        &c,
        json!({"type": "transaction", "transaction": sign_tx(&tx, &live.payer)}),
        &live.payer,
    );
    let grant = granted(gate.admit(&route, with_auth("/live", &paid)).await);
    println!("testnet pull payment: {}", grant.receipt().reference);

    // Push: the payer submits, then binds the hash to the challenge.
    let c = support::challenge(&gate, &route, "/live").await;
    let seq = sequence(&live, payer).await;
    let tx = assemble(&live, payer, seq + 1, challenge_expiry(&c), 100_000).await;
    let signed = sign_tx(&tx, &live.payer);
    let sent = live.rpc.send(&signed).await.unwrap();
    assert_eq!(sent.status, "PENDING", "{sent:?}");
    for _ in 0..30 {
        if live.rpc.transaction(&sent.hash).await.unwrap().status == "SUCCESS" {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let signature = to_hex(
        &live
            .payer
            .sign(format!("{}:{}", c.id, sent.hash).as_bytes()),
    );
    let paid = header(
        &c,
        json!({"type": "signedHash", "hash": sent.hash, "sourceSignature": signature}),
        &live.payer,
    );
    let grant = granted(gate.admit(&route, with_auth("/live", &paid)).await);
    assert_eq!(grant.receipt().reference, sent.hash);
    println!("testnet push payment: {}", grant.receipt().reference);
}

#[tokio::test]
async fn pays_on_the_public_testnet_with_sponsored_fees() {
    let Some(live) = live() else { return };
    let Some(sponsor) = std::env::var("STELLAR_TESTNET_FEE_PAYER_SECRET")
        .ok()
        .filter(|s| !s.trim().is_empty())
    else {
        eprintln!(
            "skipped: set STELLAR_TESTNET_FEE_PAYER_SECRET (an XLM-funded testnet account) with STELLAR_TESTNET_SECRET to run the sponsored payment"
        );
        return;
    };
    let (gate, route) = gate_for(&live, Some(&sponsor));
    let c = support::challenge(&gate, &route, "/live").await;
    let zeros = keys::parse_account(ALL_ZEROS_ACCOUNT).unwrap();
    // Simulated from the all-zeros source, the transfer needs the payer's
    // address authorization, which the payer alone signs.
    let mut tx = assemble(&live, zeros, 1, challenge_expiry(&c), 100_000).await;
    let latest = live.rpc.latest_ledger().await.unwrap().sequence;
    let OperationBody::InvokeHostFunction(mut op) = tx.operations[0].body.clone() else {
        unreachable!("built by assemble")
    };
    let mut entries = op.auth.to_vec();
    for entry in &mut entries {
        let SorobanCredentials::Address(credentials) = &mut entry.credentials else {
            continue;
        };
        credentials.signature_expiration_ledger = latest + 40;
        let payload =
            authorization_payload(Network::Testnet.id(), credentials, &entry.root_invocation)
                .unwrap();
        let signature = live.payer.sign(&payload);
        credentials.signature = ScVal::Vec(Some(ScVec(
            VecM::try_from(vec![ScVal::Map(Some(ScMap(
                VecM::try_from(vec![
                    ScMapEntry {
                        key: symbol("public_key"),
                        val: ScVal::Bytes(ScBytes(
                            BytesM::try_from(live.payer.public_bytes().to_vec()).unwrap(),
                        )),
                    },
                    ScMapEntry {
                        key: symbol("signature"),
                        val: ScVal::Bytes(ScBytes(BytesM::try_from(signature.to_vec()).unwrap())),
                    },
                ])
                .unwrap(),
            )))])
            .unwrap(),
        )));
    }
    op.auth = VecM::try_from(entries).unwrap();
    tx.operations = VecM::try_from(vec![Operation {
        source_account: None,
        body: OperationBody::InvokeHostFunction(op),
    }])
    .unwrap();
    let paid = header(
        &c,
        json!({"type": "transaction", "transaction": envelope_of(&tx, vec![])}),
        &live.payer,
    );
    let grant = granted(gate.admit(&route, with_auth("/live", &paid)).await);
    println!("testnet sponsored payment: {}", grant.receipt().reference);
}
