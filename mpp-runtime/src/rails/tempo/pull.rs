//! Checking a signed Tempo transaction (pull mode) before it is broadcast.
//!
//! The payer signs a Tempo transaction (type `0x76`, decoded with Tempo's
//! own `tempo-primitives`) whose calls only transfer the challenge's token,
//! one of them `transferWithMemo(recipient, amount, memo)` with the
//! challenge's attribution memo. The server checks all of that offline,
//! then simulates, broadcasts and re-checks the receipt's logs.

use alloy::consensus::transaction::SignerRecoverable;
use alloy::eips::Decodable2718;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::sol_types::SolCall;
use tempo_primitives::AASigned;

use super::memo;
use super::transfer::{Expected, Mismatch, transferCall, transferWithMemoCall};
use crate::rail::SettleError;

/// The envelope type of a fee-payer (sponsored) Tempo transaction.
const FEE_PAYER_ENVELOPE: u8 = 0x78;
/// The envelope type of a Tempo transaction.
const TEMPO_ENVELOPE: u8 = 0x76;

/// A decoded, signature-checked transaction that pays the challenge.
#[derive(Debug, Clone)]
pub struct SignedPayment {
    /// The serialized transaction, as the payer signed it.
    pub raw: Vec<u8>,
    /// Its hash (the receipt's reference).
    pub hash: B256,
    /// The recovered sender.
    pub sender: Address,
    /// The decoded transaction.
    pub signed: AASigned,
}

/// Decodes `raw` and checks, offline, that it pays `expected` on `chain_id`
/// and is still valid at `now` (Unix seconds).
pub fn check(
    raw: Vec<u8>,
    chain_id: u64,
    expected: &Expected<'_>,
    now: u64,
) -> Result<SignedPayment, SettleError> {
    match raw.first() {
        Some(&TEMPO_ENVELOPE) => {}
        Some(&FEE_PAYER_ENVELOPE) => {
            return Err(SettleError::verification_failed(
                "this server does not sponsor fees: sign a complete Tempo transaction (0x76) that pays its own fee",
            ));
        }
        _ => {
            return Err(SettleError::invalid_payload(
                "only Tempo transactions (type 0x76) are accepted",
            ));
        }
    }
    let mut rest = raw.as_slice();
    let signed = AASigned::decode_2718(&mut rest).map_err(|e| {
        SettleError::invalid_payload(format!("the Tempo transaction does not decode: {e}"))
    })?;
    if !rest.is_empty() {
        return Err(SettleError::invalid_payload(
            "the Tempo transaction has trailing bytes",
        ));
    }
    let tx = signed.tx();
    if tx.chain_id != chain_id {
        return Err(SettleError::verification_failed(format!(
            "the transaction is for chain {}, the challenge for chain {chain_id}",
            tx.chain_id
        )));
    }
    if tx.fee_payer_signature.is_some() {
        return Err(SettleError::verification_failed(
            "this server does not sponsor fees: the transaction must not carry a fee payer",
        ));
    }
    if let Some(before) = tx.valid_before
        && before.get() <= now
    {
        return Err(SettleError::verification_failed(
            "the transaction's validity window has ended (validBefore is in the past)",
        ));
    }
    check_calls(tx.calls.iter().map(|c| (c.to, c.value, &c.input)), expected).map_err(|m| {
        SettleError::verification_failed(format!("Payment verification failed: {}", m.explain()))
    })?;
    let sender = signed.recover_signer().map_err(|_| {
        SettleError::verification_failed("the transaction's signature does not recover a sender")
    })?;
    let hash = *signed.hash();
    Ok(SignedPayment {
        raw,
        hash,
        sender,
        signed,
    })
}

/// Every call must transfer the challenge's token (no value, no other
/// contract, no other function), and one must be the memo transfer that
/// pays the challenge.
fn check_calls<'a>(
    calls: impl Iterator<Item = (TxKind, U256, &'a Bytes)>,
    expected: &Expected<'_>,
) -> Result<(), Mismatch> {
    let mut closest = Mismatch::NoTransfer;
    let mut paid = false;
    for (to, value, input) in calls {
        if to != TxKind::Call(expected.token) || !value.is_zero() {
            return Err(Mismatch::ForeignCall);
        }
        if let Ok(call) = transferWithMemoCall::abi_decode(input) {
            if call.to != expected.recipient {
                continue;
            }
            if call.amount != expected.amount {
                closest = closest.max_with(Mismatch::WrongAmount);
            } else if memo::binds(&call.memo, expected.realm, expected.challenge_id) {
                paid = true;
            } else {
                closest = closest.max_with(Mismatch::ForeignMemo);
            }
        } else if let Ok(call) = transferCall::abi_decode(input) {
            if call.to == expected.recipient {
                closest = closest.max_with(if call.amount == expected.amount {
                    Mismatch::NoMemo
                } else {
                    Mismatch::WrongAmount
                });
            }
        } else {
            return Err(Mismatch::ForeignCall);
        }
    }
    if paid { Ok(()) } else { Err(closest) }
}

/// The transaction's calls, as `(contract, input)` (every call was checked
/// to call a contract).
pub fn calls(payment: &SignedPayment) -> impl Iterator<Item = (Address, Bytes)> + '_ {
    payment
        .signed
        .tx()
        .calls
        .iter()
        .filter_map(|c| c.to.to().map(|to| (*to, c.input.clone())))
}
