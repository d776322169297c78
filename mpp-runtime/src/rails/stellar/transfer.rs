//! The offline checks of a Stellar payment: decoding a transaction envelope
//! (stellar-xdr), finding its single SEP-41 `transfer(from, to, amount)`
//! call on the challenged token, the payer's authorization (its structure,
//! its ed25519 signature, its expiry ledger), the envelope's signature, the
//! time bounds, and the token movements a simulation shows.
//!
//! Every refusal is the payer's to fix (402 `verification-failed`), except
//! a payload that is not a transaction at all (`invalid-payload`).

use sha2::{Digest, Sha256};
use stellar_xdr::{
    ContractEventBody, ContractEventType, DecoratedSignature, DiagnosticEvent,
    FeeBumpTransactionInnerTx, Hash, HashIdPreimage, HashIdPreimageSorobanAuthorization,
    HostFunction, Int128Parts, InvokeContractArgs, Limits, MuxedAccount, Operation, OperationBody,
    Preconditions, ReadXdr, ScAddress, ScMapEntry, ScVal, SorobanAddressCredentials,
    SorobanAuthorizationEntry, SorobanAuthorizedFunction, SorobanAuthorizedInvocation,
    SorobanCredentials, Transaction, TransactionEnvelope, TransactionResult,
    TransactionResultResult, WriteXdr,
};

use super::keys::{self, account_strkey, address_account, address_strkey, contract_strkey};
use crate::rail::SettleError;

/// The longest base64 transaction accepted in a credential (as the
/// reference SDK's schema: about 6 KB of XDR).
pub const MAX_XDR_LENGTH: usize = 8_192;

/// Nesting depth allowed when decoding XDR from a payer or the RPC.
const MAX_DEPTH: u32 = 200;

/// What a challenge asks to be paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The SEP-41 token contract (e.g. the USDC SAC).
    pub token: [u8; 32],
    /// The recipient (an account or a contract).
    pub recipient: ScAddress,
    /// The amount in the token's base units.
    pub amount: i128,
    /// The network's id (SHA-256 of its passphrase).
    pub network_id: [u8; 32],
}

/// A decoded v1 (or fee-bump) transaction envelope with its hashes.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The envelope as sent.
    pub envelope: TransactionEnvelope,
    /// The hash the network knows it by (the fee bump's, for a fee bump).
    pub hash: [u8; 32],
    /// The hash of the inner transaction (equal to `hash` without a fee
    /// bump).
    pub inner_hash: [u8; 32],
    tx: Transaction,
    signatures: Vec<DecoratedSignature>,
}

fn xdr_limits(len: usize) -> Limits {
    Limits {
        depth: MAX_DEPTH,
        len,
    }
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses exactly `N` bytes of hex (either case): `2 * N` hex digits and
/// nothing else (no sign, prefix or whitespace).
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let nibble = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

impl Envelope {
    /// Decodes a base64 envelope from a credential, on `network_id`.
    pub fn decode(base64: &str, network_id: [u8; 32]) -> Result<Self, SettleError> {
        if base64.len() > MAX_XDR_LENGTH {
            return Err(SettleError::invalid_payload(format!(
                "`transaction` is longer than {MAX_XDR_LENGTH} characters"
            )));
        }
        let envelope = TransactionEnvelope::from_xdr_base64(base64, xdr_limits(MAX_XDR_LENGTH))
            .map_err(|_| {
                SettleError::invalid_payload(
                    "`transaction` is not a base64 XDR TransactionEnvelope",
                )
            })?;
        Self::new(envelope, network_id)
    }

    /// Decodes a base64 envelope the RPC returned.
    pub(crate) fn decode_trusted(base64: &str, network_id: [u8; 32]) -> Result<Self, String> {
        let envelope = TransactionEnvelope::from_xdr_base64(base64, xdr_limits(base64.len()))
            .map_err(|e| format!("unreadable envelopeXdr: {e}"))?;
        Self::new(envelope, network_id).map_err(|e| e.detail)
    }

    /// Wraps a decoded envelope.
    pub fn new(envelope: TransactionEnvelope, network_id: [u8; 32]) -> Result<Self, SettleError> {
        let unhashable = |_| SettleError::invalid_payload("the transaction cannot be hashed");
        let (hash, inner_hash, tx, signatures) = match &envelope {
            TransactionEnvelope::TxV0(_) => {
                return Err(SettleError::verification_failed(
                    "the transaction is a legacy v0 envelope; Soroban payments need a v1 transaction",
                ));
            }
            TransactionEnvelope::Tx(v1) => {
                let hash = v1.tx.hash(network_id).map_err(unhashable)?;
                (hash, hash, v1.tx.clone(), v1.signatures.to_vec())
            }
            TransactionEnvelope::TxFeeBump(bump) => {
                let FeeBumpTransactionInnerTx::Tx(inner) = &bump.tx.inner_tx;
                (
                    bump.tx.hash(network_id).map_err(unhashable)?,
                    inner.tx.hash(network_id).map_err(unhashable)?,
                    inner.tx.clone(),
                    inner.signatures.to_vec(),
                )
            }
        };
        Ok(Self {
            envelope,
            hash,
            inner_hash,
            tx,
            signatures,
        })
    }

    /// The (inner) transaction.
    pub fn transaction(&self) -> &Transaction {
        &self.tx
    }

    /// The signatures of the (inner) transaction.
    pub fn signatures(&self) -> &[DecoratedSignature] {
        &self.signatures
    }

    /// The lowercase hex hash the network knows the transaction by.
    pub fn hash_hex(&self) -> String {
        to_hex(&self.hash)
    }

    /// The envelope as base64 XDR.
    pub fn to_base64(&self) -> Result<String, String> {
        self.envelope
            .to_xdr_base64(Limits::none())
            .map_err(|e| format!("cannot encode the transaction: {e}"))
    }

    /// Checks the envelope's signatures: the transaction's source account
    /// must have signed the transaction's hash (its master key), and a fee
    /// bump's fee source the fee bump's hash.
    pub fn check_signed(&self) -> Result<(), SettleError> {
        let source = muxed_key(&self.transaction().source_account);
        if !signed_by(&self.inner_hash, self.signatures(), &source) {
            return Err(SettleError::verification_failed(format!(
                "the transaction is not signed by its source account {} for this network",
                account_strkey(&source)
            )));
        }
        if let TransactionEnvelope::TxFeeBump(bump) = &self.envelope {
            let fee_source = muxed_key(&bump.tx.fee_source);
            if !signed_by(&self.hash, &bump.signatures, &fee_source) {
                return Err(SettleError::verification_failed(format!(
                    "the fee bump is not signed by its fee source {}",
                    account_strkey(&fee_source)
                )));
            }
        }
        Ok(())
    }
}

/// The account key behind a (possibly muxed) account.
pub fn muxed_key(account: &MuxedAccount) -> [u8; 32] {
    match account {
        MuxedAccount::Ed25519(key) => key.0,
        MuxedAccount::MuxedEd25519(muxed) => muxed.ed25519.0,
    }
}

/// Whether one of `signatures` is `key`'s signature of `hash`.
pub fn signed_by(hash: &[u8; 32], signatures: &[DecoratedSignature], key: &[u8; 32]) -> bool {
    let hint = keys::hint(key);
    signatures
        .iter()
        .any(|s| s.hint.0 == hint && keys::verify(key, hash, &s.signature.0))
}

/// The single `transfer` call of a transaction.
#[derive(Debug, Clone, Copy)]
pub struct TransferCall<'a> {
    /// The payer's account key (`from`).
    pub from: [u8; 32],
    /// The operation.
    pub operation: &'a Operation,
    /// The contract call.
    pub call: &'a InvokeContractArgs,
    /// Its authorization entries.
    pub auth: &'a [SorobanAuthorizationEntry],
}

impl TransferCall<'_> {
    /// The payer's `G…` address.
    pub fn payer(&self) -> String {
        account_strkey(&self.from)
    }
}

fn refuse(detail: impl Into<String>) -> SettleError {
    SettleError::verification_failed(detail)
}

/// An `i128` argument or event value.
pub fn scval_i128(value: &ScVal) -> Option<i128> {
    match value {
        ScVal::I128(Int128Parts { hi, lo }) => Some((i128::from(*hi) << 64) | i128::from(*lo)),
        _ => None,
    }
}

fn symbol_is(value: &ScVal, name: &str) -> bool {
    matches!(value, ScVal::Symbol(s) if s.0.as_slice() == name.as_bytes())
}

/// Finds the transaction's only operation and checks it is a
/// `transfer(from, recipient, amount)` call on the challenged token, with
/// `from` a plain account.
pub fn find_transfer<'a>(
    tx: &'a Transaction,
    expected: &Expected,
) -> Result<TransferCall<'a>, SettleError> {
    let [operation] = tx.operations.as_slice() else {
        return Err(refuse(format!(
            "the transaction must contain exactly one operation (the token transfer), not {}",
            tx.operations.len()
        )));
    };
    let OperationBody::InvokeHostFunction(invoke) = &operation.body else {
        return Err(refuse(
            "the transaction's operation is not a Soroban contract invocation (invokeHostFunction)",
        ));
    };
    let HostFunction::InvokeContract(call) = &invoke.host_function else {
        return Err(refuse(
            "the transaction's host function is not a contract call",
        ));
    };
    match &call.contract_address {
        ScAddress::Contract(id) if id.0.0 == expected.token => {}
        other => {
            return Err(refuse(format!(
                "the transaction calls {} instead of the token {}",
                address_strkey(other),
                contract_strkey(&expected.token)
            )));
        }
    }
    if call.function_name.0.as_slice() != b"transfer" {
        return Err(refuse(format!(
            "the transaction calls `{}` on the token instead of `transfer`",
            String::from_utf8_lossy(call.function_name.0.as_slice())
        )));
    }
    let [from, to, amount] = call.args.as_slice() else {
        return Err(refuse(format!(
            "`transfer` takes (from, to, amount), but the call has {} arguments",
            call.args.len()
        )));
    };
    let ScVal::Address(from) = from else {
        return Err(refuse("`transfer`'s `from` is not an address"));
    };
    let Some(from) = address_account(from) else {
        return Err(refuse(format!(
            "the payer {} is not a Stellar account (G…); only accounts can pay here",
            address_strkey(from)
        )));
    };
    match to {
        ScVal::Address(to) if *to == expected.recipient => {}
        ScVal::Address(to) => {
            return Err(refuse(format!(
                "the transfer pays {} instead of the recipient {}",
                address_strkey(to),
                address_strkey(&expected.recipient)
            )));
        }
        _ => return Err(refuse("`transfer`'s `to` is not an address")),
    }
    match scval_i128(amount) {
        Some(paid) if paid == expected.amount => {}
        Some(paid) => {
            return Err(refuse(format!(
                "the transfer's amount is {paid}, but the challenge asks for {}",
                expected.amount
            )));
        }
        None => return Err(refuse("`transfer`'s amount is not an i128")),
    }
    Ok(TransferCall {
        from,
        operation,
        call,
        auth: invoke.auth.as_slice(),
    })
}

/// The payer's address authorization, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressAuth {
    /// The authorization's nonce (single use on the network).
    pub nonce: i64,
    /// The last ledger it is valid in.
    pub expiration_ledger: u32,
}

/// How a transaction is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Funding {
    /// The payer signed a complete transaction.
    Payer,
    /// The server's account is the source and pays the fees; the payer only
    /// signed its authorization entry.
    Sponsored {
        /// The sponsor's account key.
        sponsor: [u8; 32],
    },
}

/// Checks the payer's authorization of the transfer: exactly one entry,
/// for exactly this call and nothing below it; an address credential
/// signed by the payer's key (or, when the payer signed the whole
/// transaction, a source-account credential of the payer's own account).
/// Returns the address credential's nonce and expiry, when it is one.
///
/// Source-account credentials stay accepted in unsponsored pull: the
/// reference client (`@stellar/mpp`) builds that transaction with the payer
/// as its source and takes the authorization simulation records, which for
/// the source account is always a source-account credential (the host
/// records the invoker without an address); it signs only the envelope.
/// They are safe there because the payer's envelope signature is what
/// authorizes them and the payer must be the (operation's) source. In a
/// sponsored transaction the source is the server's account, so they are
/// refused.
pub fn check_authorization(
    transfer: &TransferCall<'_>,
    tx: &Transaction,
    funding: Funding,
    network_id: [u8; 32],
) -> Result<Option<AddressAuth>, SettleError> {
    let [entry] = transfer.auth else {
        return Err(refuse(format!(
            "the transfer must carry exactly one authorization entry (the payer's), not {}",
            transfer.auth.len()
        )));
    };
    let invocation = &entry.root_invocation;
    match &invocation.function {
        SorobanAuthorizedFunction::ContractFn(args) if args == transfer.call => {}
        _ => {
            return Err(refuse(
                "the authorization entry does not authorize exactly this transfer",
            ));
        }
    }
    if !invocation.sub_invocations.is_empty() {
        return Err(refuse(
            "the authorization entry authorizes sub-invocations; only the token transfer may be authorized",
        ));
    }
    if let Funding::Sponsored { sponsor } = funding
        && transfer.from == sponsor
    {
        return Err(refuse(
            "the transfer is paid from this server's own fee account",
        ));
    }
    match &entry.credentials {
        SorobanCredentials::SourceAccount => {
            if let Funding::Sponsored { .. } = funding {
                return Err(refuse(
                    "sponsored transactions must carry address credentials signed by the payer, not source-account credentials",
                ));
            }
            let invoker = transfer
                .operation
                .source_account
                .as_ref()
                .map_or_else(|| muxed_key(&tx.source_account), muxed_key);
            if invoker != transfer.from {
                return Err(refuse(format!(
                    "the transfer is from {} but is authorized by the source account {}",
                    transfer.payer(),
                    account_strkey(&invoker)
                )));
            }
            Ok(None)
        }
        SorobanCredentials::Address(credentials) => {
            check_address_credentials(credentials, invocation, transfer, funding, network_id)
                .map(Some)
        }
        SorobanCredentials::AddressV2(_) | SorobanCredentials::AddressWithDelegates(_) => Err(
            refuse("only plain address (or source-account) authorization entries are accepted"),
        ),
    }
}

fn check_address_credentials(
    credentials: &SorobanAddressCredentials,
    invocation: &SorobanAuthorizedInvocation,
    transfer: &TransferCall<'_>,
    funding: Funding,
    network_id: [u8; 32],
) -> Result<AddressAuth, SettleError> {
    match address_account(&credentials.address) {
        Some(key) if key == transfer.from => {}
        Some(key) if matches!(funding, Funding::Sponsored { sponsor } if sponsor == key) => {
            return Err(refuse(
                "this server's own fee account appears in the authorization entry",
            ));
        }
        _ => {
            return Err(refuse(format!(
                "the authorization entry is for {}, not for the payer {}",
                address_strkey(&credentials.address),
                transfer.payer()
            )));
        }
    }
    let payload = authorization_payload(network_id, credentials, invocation)?;
    let signed = account_signatures(&credentials.signature)
        .into_iter()
        .any(|(key, signature)| key == transfer.from && keys::verify(&key, &payload, signature));
    if !signed {
        return Err(refuse(format!(
            "the authorization entry is not signed by the payer {} for this network",
            transfer.payer()
        )));
    }
    Ok(AddressAuth {
        nonce: credentials.nonce,
        expiration_ledger: credentials.signature_expiration_ledger,
    })
}

/// The hash an address credential signs:
/// `sha256(HashIdPreimage::SorobanAuthorization{network, nonce, expiry, invocation})`.
pub fn authorization_payload(
    network_id: [u8; 32],
    credentials: &SorobanAddressCredentials,
    invocation: &SorobanAuthorizedInvocation,
) -> Result<[u8; 32], SettleError> {
    let preimage = HashIdPreimage::SorobanAuthorization(HashIdPreimageSorobanAuthorization {
        network_id: Hash(network_id),
        nonce: credentials.nonce,
        signature_expiration_ledger: credentials.signature_expiration_ledger,
        invocation: invocation.clone(),
    });
    let bytes = preimage
        .to_xdr(Limits::none())
        .map_err(|_| SettleError::invalid_payload("the authorization entry cannot be encoded"))?;
    Ok(Sha256::digest(bytes).into())
}

/// The `(public key, signature)` pairs of a classic account's
/// authorization signature: `Vec[Map{public_key: Bytes(32), signature: Bytes(64)}]`.
pub fn account_signatures(signature: &ScVal) -> Vec<([u8; 32], &[u8])> {
    let ScVal::Vec(Some(items)) = signature else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let ScVal::Map(Some(map)) = item else {
                return None;
            };
            let field = |name: &str| {
                map.iter()
                    .find(|ScMapEntry { key, .. }| symbol_is(key, name))
                    .and_then(|entry| match &entry.val {
                        ScVal::Bytes(bytes) => Some(bytes.0.as_slice()),
                        _ => None,
                    })
            };
            let key = <[u8; 32]>::try_from(field("public_key")?).ok()?;
            Some((key, field("signature")?))
        })
        .collect()
}

/// Ledgers an authorization may outlive the challenge's lifetime by: the
/// payer computes its expiry ledger from its own RPC's latest ledger and its
/// own clock (`latest + ceil((expires - now) / 5 s)`, as this rail does),
/// and an RPC node a few ledgers ahead of ours, a payer clock up to ~45 s
/// behind ours, or a ledger closing late must not turn a correctly signed
/// authorization into a refusal. 10 ledgers (~50 s) is the reference
/// client's own margin; it bounds how long past the challenge's expiry a
/// signed authorization can still be submitted to under a minute. The lower
/// bound has no allowance: an authorization that is expired when the
/// payment lands is useless.
pub const EXPIRY_SKEW_LEDGERS: u32 = 10;

/// Checks an authorization's expiry ledger (the last ledger it is valid
/// in): still valid in the next ledger, the earliest the payment can land
/// in (`expiration > latest`), and not beyond the challenge's lifetime
/// (`max_ledger`) by more than [`EXPIRY_SKEW_LEDGERS`].
pub fn check_expiration(
    auth: &AddressAuth,
    latest_ledger: u32,
    max_ledger: u32,
) -> Result<(), SettleError> {
    if auth.expiration_ledger <= latest_ledger {
        return Err(refuse(format!(
            "the authorization expires at ledger {}, but the network is already at ledger {latest_ledger}, so it would be expired when the payment lands; sign it again to expire after ledger {latest_ledger} and by ledger {max_ledger} (the challenge's lifetime)",
            auth.expiration_ledger
        )));
    }
    let limit = max_ledger.saturating_add(EXPIRY_SKEW_LEDGERS);
    if auth.expiration_ledger > limit {
        return Err(refuse(format!(
            "the authorization is valid until ledger {}, beyond the challenge's lifetime (ledger {max_ledger}, at most {limit} accepted); sign it to expire with the challenge",
            auth.expiration_ledger
        )));
    }
    Ok(())
}

/// The last ledger a challenge expiring at `expires` allows an
/// authorization for: `latest + ceil((expires - now) / 5 s)`.
pub fn max_ledger(latest_ledger: u32, now: u64, expires: u64) -> u32 {
    let seconds = expires.saturating_sub(now);
    let ledgers = seconds.div_ceil(LEDGER_CLOSE_SECONDS);
    latest_ledger.saturating_add(u32::try_from(ledgers).unwrap_or(u32::MAX))
}

/// The spec's nominal ledger close time.
pub const LEDGER_CLOSE_SECONDS: u64 = 5;

/// Checks the transaction cannot be valid beyond the challenge:
/// `0 < timeBounds.maxTime <= expires`.
pub fn check_time_bounds(tx: &Transaction, expires: u64) -> Result<(), SettleError> {
    let bounds = match &tx.cond {
        Preconditions::Time(bounds) => Some(bounds),
        Preconditions::V2(conditions) => conditions.time_bounds.as_ref(),
        Preconditions::None => None,
    };
    let max_time = bounds.map_or(0, |b| b.max_time.0);
    if max_time == 0 {
        return Err(refuse(
            "the transaction has no upper time bound; set timeBounds.maxTime to the challenge's expiry",
        ));
    }
    if max_time > expires {
        return Err(refuse(format!(
            "the transaction is valid until {max_time}, after the challenge expires ({expires}); set timeBounds.maxTime to the challenge's expiry"
        )));
    }
    Ok(())
}

/// A token movement seen in events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// The event's topic (`transfer`, `mint`, `burn`, `clawback`).
    pub kind: String,
    /// The emitting contract.
    pub contract: Option<[u8; 32]>,
    /// The topics after the first, as strkeys where they are addresses.
    pub parties: Vec<ScAddress>,
    /// The amount, when readable.
    pub amount: Option<i128>,
}

const MOVEMENTS: [&str; 4] = ["transfer", "mint", "burn", "clawback"];

/// The token movements among a simulation's (base64) diagnostic events:
/// contract events of successful calls whose first topic is a SEP-41
/// movement.
pub fn movements(events: &[String]) -> Result<Vec<Movement>, String> {
    let mut found = Vec::new();
    for event in events {
        let event = DiagnosticEvent::from_xdr_base64(event, xdr_limits(event.len()))
            .map_err(|e| format!("the RPC returned an unreadable event: {e}"))?;
        if !event.in_successful_contract_call || event.event.type_ != ContractEventType::Contract {
            continue;
        }
        let ContractEventBody::V0(body) = &event.event.body;
        let Some(ScVal::Symbol(topic)) = body.topics.first() else {
            continue;
        };
        let kind = String::from_utf8_lossy(topic.0.as_slice()).into_owned();
        if !MOVEMENTS.contains(&kind.as_str()) {
            continue;
        }
        let parties = body
            .topics
            .iter()
            .skip(1)
            .filter_map(|t| match t {
                ScVal::Address(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        // CAP-67: a SAC transfer to a muxed account carries
        // `{amount, to_muxed_id}` instead of the bare amount.
        let amount = scval_i128(&body.data).or_else(|| match &body.data {
            ScVal::Map(Some(map)) => map
                .iter()
                .find(|entry| symbol_is(&entry.key, "amount"))
                .and_then(|entry| scval_i128(&entry.val)),
            _ => None,
        });
        found.push(Movement {
            kind,
            contract: event.event.contract_id.as_ref().map(|c| c.0.0),
            parties,
            amount,
        });
    }
    Ok(found)
}

/// Checks the only token movement is `transfer(from, recipient, amount)`
/// by the token.
pub fn check_movements(
    movements: &[Movement],
    expected: &Expected,
    from: &[u8; 32],
) -> Result<(), SettleError> {
    let wanted = Movement {
        kind: "transfer".to_owned(),
        contract: Some(expected.token),
        parties: vec![keys::account_address(*from), expected.recipient.clone()],
        amount: Some(expected.amount),
    };
    match movements {
        [only] if *only == wanted => Ok(()),
        [] => Err(refuse(
            "the simulation shows no token transfer; the payment would not move the funds",
        )),
        [only] => Err(refuse(format!(
            "the simulation shows a different token movement than the challenge asks for: {}",
            describe(only)
        ))),
        many => Err(refuse(format!(
            "the simulation shows {} token movements; only the payment may move funds: {}",
            many.len(),
            many.iter().map(describe).collect::<Vec<_>>().join("; ")
        ))),
    }
}

fn describe(movement: &Movement) -> String {
    let parties: Vec<String> = movement.parties.iter().map(address_strkey).collect();
    format!(
        "{} of {} by {} ({})",
        movement.kind,
        movement
            .amount
            .map_or_else(|| "?".to_owned(), |a| a.to_string()),
        movement
            .contract
            .map_or_else(|| "?".to_owned(), |c| contract_strkey(&c)),
        parties.join(" -> ")
    )
}

/// The result code of a base64 `TransactionResult`, in Stellar's spelling
/// (`txBAD_SEQ`, `txFAILED`, …).
pub fn result_code(result_xdr: &str) -> Option<String> {
    let result =
        TransactionResult::from_xdr_base64(result_xdr, xdr_limits(result_xdr.len())).ok()?;
    let name = match &result.result {
        TransactionResultResult::TxFeeBumpInnerFailed(pair) => {
            return Some(format!(
                "txFEE_BUMP_INNER_FAILED ({})",
                spell(pair.result.result.name())
            ));
        }
        other => other.name(),
    };
    Some(spell(name))
}

/// `TxBadSeq` → `txBAD_SEQ`.
fn spell(name: &str) -> String {
    let rest = name.strip_prefix("Tx").unwrap_or(name);
    let mut out = String::from("tx");
    for (i, c) in rest.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn result_codes_are_spelled_as_stellar_does() {
        assert_eq!(spell("TxBadSeq"), "txBAD_SEQ");
        assert_eq!(spell("TxFailed"), "txFAILED");
        assert_eq!(spell("TxInsufficientBalance"), "txINSUFFICIENT_BALANCE");
    }

    #[test]
    fn hex_round_trips() {
        let bytes: [u8; 4] = from_hex("00ffA0b1").unwrap();
        assert_eq!(bytes, [0, 255, 0xa0, 0xb1]);
        assert_eq!(to_hex(&bytes), "00ffa0b1");
        assert!(from_hex::<4>("00ffA0b").is_none());
        assert!(from_hex::<2>("zz00").is_none());
        assert!(from_hex::<2>("é0").is_none());
    }

    #[test]
    fn hex_is_digits_only() {
        // `u8::from_str_radix` takes a leading sign; hex here does not.
        assert!(from_hex::<1>("+f").is_none());
        assert!(from_hex::<2>("+f+f").is_none());
        assert!(from_hex::<2>("-0ff").is_none());
        assert!(from_hex::<2>(" fff").is_none());
        assert!(from_hex::<2>("0x00").is_none());
        assert!(from_hex::<1>("g0").is_none());
        assert_eq!(from_hex::<2>("Ff0A"), Some([0xff, 0x0a]));
        assert_eq!(from_hex::<0>(""), Some([]));
    }

    #[test]
    fn the_ledger_window_follows_the_spec() {
        // 300 s at 5 s per ledger: 60 ledgers.
        assert_eq!(
            max_ledger(1_000_000, 1_800_000_000, 1_800_000_300),
            1_000_060
        );
        assert_eq!(max_ledger(10, 100, 101), 11);
        assert_eq!(max_ledger(10, 200, 100), 10);
        let auth = AddressAuth {
            nonce: 1,
            expiration_ledger: 1_000_050,
        };
        assert!(check_expiration(&auth, 1_000_000, 1_000_060).is_ok());
        assert!(check_expiration(&auth, 1_000_051, 1_000_060).is_err());
        assert!(check_expiration(&auth, 1_000_000, 1_000_039).is_err());
    }

    #[test]
    fn an_authorization_must_outlive_the_latest_ledger() {
        let auth = |expiration_ledger| AddressAuth {
            nonce: 1,
            expiration_ledger,
        };
        let max = 1_000_060;
        // Valid in the next ledger, the earliest the payment can land in.
        assert!(check_expiration(&auth(1_000_001), 1_000_000, max).is_ok());
        // Its last ledger is the latest: expired by the time it lands.
        let e = check_expiration(&auth(1_000_000), 1_000_000, max).unwrap_err();
        assert!(e.detail.contains("already at ledger 1000000"), "{e:?}");
        assert!(check_expiration(&auth(999_999), 1_000_000, max).is_err());
    }

    #[test]
    fn an_authorization_may_outlive_the_challenge_by_the_skew_allowance_only() {
        let auth = |expiration_ledger| AddressAuth {
            nonce: 1,
            expiration_ledger,
        };
        let max = 1_000_060;
        assert_eq!(EXPIRY_SKEW_LEDGERS, 10);
        assert!(check_expiration(&auth(max), 1_000_000, max).is_ok());
        assert!(check_expiration(&auth(max + EXPIRY_SKEW_LEDGERS), 1_000_000, max).is_ok());
        let e = check_expiration(&auth(max + EXPIRY_SKEW_LEDGERS + 1), 1_000_000, max).unwrap_err();
        assert!(
            e.detail
                .contains("lifetime (ledger 1000060, at most 1000070 accepted)"),
            "{e:?}"
        );
    }

    #[test]
    fn i128_parts_are_read_signed() {
        let v = ScVal::I128(Int128Parts {
            hi: 0,
            lo: 5_000_000,
        });
        assert_eq!(scval_i128(&v), Some(5_000_000));
        let big = ScVal::I128(Int128Parts { hi: 1, lo: 0 });
        assert_eq!(scval_i128(&big), Some(1i128 << 64));
        let negative = ScVal::I128(Int128Parts {
            hi: -1,
            lo: u64::MAX,
        });
        assert_eq!(scval_i128(&negative), Some(-1));
        assert_eq!(scval_i128(&ScVal::U64(5)), None);
    }
}
