//! A Stellar payer's side for the tests: the fixtures of
//! `tests/data/stellar/transactions.json` (made with the official
//! @stellar/stellar-sdk), credential payloads, the push binding signature,
//! and re-signing a fixture transaction with other time bounds (for tests
//! that run on the wall clock).
//!
//! The including crate root declares `use <the runtime crate> as rt;`.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use serde_json::{Value, json};

use crate::rt::rails::stellar::keys::Keypair;
use crate::rt::rails::stellar::transfer::{Envelope, to_hex};
use crate::rt::rails::stellar::xdr::{
    DecoratedSignature, Limits, Preconditions, ReadXdr, Signature, SignatureHint, TimeBounds,
    TimePoint, TransactionEnvelope, VecM, WriteXdr,
};

use super::stellar_rpc::data;

/// `transactions.json`.
pub fn fixtures() -> Value {
    data("transactions.json")
}

/// A fixture key pair: `payer`, `recipient`, `sponsor` or `stranger`.
pub fn keypair(name: &str) -> Keypair {
    Keypair::from_secret(fixtures()["keys"][name]["secret"].as_str().unwrap()).unwrap()
}

/// A fixture account's `G…` address.
pub fn account(name: &str) -> String {
    fixtures()["keys"][name]["public"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The base64 envelope of fixture `group.name` (`pull`, `sponsored`,
/// `push`).
pub fn envelope(group: &str, name: &str) -> String {
    let f = fixtures();
    let x = &f[group][name]["xdr"];
    assert!(x.is_string(), "no fixture {group}.{name}");
    x.as_str().unwrap().to_owned()
}

/// The hash the SDK computed for fixture `group.name`.
pub fn fixture_hash(group: &str, name: &str) -> String {
    fixtures()[group][name]["hash"].as_str().unwrap().to_owned()
}

/// The fixtures' network id.
pub fn network_id() -> [u8; 32] {
    crate::rt::rails::stellar::keys::network_id(fixtures()["passphrase"].as_str().unwrap())
}

/// A pull payload.
pub fn pull(transaction: &str) -> Value {
    json!({"type": "transaction", "transaction": transaction})
}

/// A push payload.
pub fn push(hash: &str, signature: &str) -> Value {
    json!({"type": "signedHash", "hash": hash, "sourceSignature": signature})
}

/// The payer's binding of a pushed hash to a challenge: its signature of
/// `"{challenge id}:{lowercase hash}"`, in hex.
pub fn bind(keys: &Keypair, challenge_id: &str, hash: &str) -> String {
    to_hex(&keys.sign(format!("{challenge_id}:{}", hash.to_ascii_lowercase()).as_bytes()))
}

/// The credential `source` of a testnet account.
pub fn did(account: &str) -> Value {
    json!(format!("did:pkh:stellar:testnet:{account}"))
}

/// Fixture `envelope` with `timeBounds = (0, max_time)`, signed again by
/// `signer` (the payer's wallet does the same when it builds the
/// transaction for a challenge). Returns the envelope and its hash.
pub fn resign(envelope: &str, max_time: u64, signer: &Keypair) -> (String, String) {
    resign_at(envelope, max_time, 0, signer)
}

/// Like [`resign`], with the sequence number moved by `bump` (a wallet's
/// next transaction).
pub fn resign_at(envelope: &str, max_time: u64, bump: i64, signer: &Keypair) -> (String, String) {
    let mut env = TransactionEnvelope::from_xdr_base64(envelope, Limits::none()).unwrap();
    let TransactionEnvelope::Tx(v1) = &mut env else {
        panic!("a v1 envelope");
    };
    v1.tx.seq_num.0 += bump;
    v1.tx.cond = Preconditions::Time(TimeBounds {
        min_time: TimePoint(0),
        max_time: TimePoint(max_time),
    });
    let hash = v1.tx.hash(network_id()).unwrap();
    v1.signatures = VecM::try_from(vec![DecoratedSignature {
        hint: SignatureHint(signer.hint()),
        signature: Signature(signer.sign(&hash).to_vec().try_into().unwrap()),
    }])
    .unwrap();
    let text = env.to_xdr_base64(Limits::none()).unwrap();
    let check = Envelope::new(env, network_id()).unwrap();
    assert!(check.check_signed().is_ok());
    (text, to_hex(&hash))
}
