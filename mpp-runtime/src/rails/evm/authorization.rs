//! The `authorization` credential: an EIP-3009 `TransferWithAuthorization`
//! signed by the payer, parsed from the payload and checked against the
//! challenge without touching the chain.

use std::borrow::Cow;

use alloy::primitives::{Address, B256, Signature, U256, keccak256};
use alloy::sol_types::{Eip712Domain, SolStruct};
use serde_json::{Map, Value};

use crate::rail::SettleError;
use crate::rails::chain::{address, field, hash32, hex_bytes, uint};

mod typed {
    #![allow(missing_docs, unreachable_pub)]

    alloy::sol! {
        /// EIP-3009's typed message (the typehash USDC and the test token use).
        struct TransferWithAuthorization {
            address from;
            address to;
            uint256 value;
            uint256 validAfter;
            uint256 validBefore;
            bytes32 nonce;
        }
    }
}

pub(crate) use typed::TransferWithAuthorization;

/// The nonce a credential must carry for a challenge:
/// `keccak256(utf8(id ‖ realm))`, the two strings concatenated without a
/// separator.
pub(crate) fn nonce_for(challenge_id: &str, realm: &str) -> B256 {
    let mut bytes = Vec::with_capacity(challenge_id.len() + realm.len());
    bytes.extend_from_slice(challenge_id.as_bytes());
    bytes.extend_from_slice(realm.as_bytes());
    keccak256(bytes)
}

/// A parsed `{type: "authorization", …}` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization {
    pub(crate) from: Address,
    pub(crate) to: Address,
    pub(crate) value: U256,
    pub(crate) valid_after: U256,
    pub(crate) valid_before: U256,
    pub(crate) nonce: B256,
    pub(crate) signature: Signature,
}

impl Authorization {
    /// Reads the payload. A `type` other than `authorization` is a
    /// verification failure (another credential type this server does not
    /// accept); a missing or malformed field is an invalid payload.
    pub(crate) fn parse(payload: &Map<String, Value>) -> Result<Self, SettleError> {
        let kind = field(payload, "type")?;
        if kind != "authorization" {
            return Err(SettleError::verification_failed(format!(
                "EVM credential type `{kind}` is not supported here; send an EIP-3009 `authorization`"
            )));
        }
        Ok(Self {
            from: address("from", field(payload, "from")?)?,
            to: address("to", field(payload, "to")?)?,
            value: uint("value", field(payload, "value")?)?,
            valid_after: uint("validAfter", field(payload, "validAfter")?)?,
            valid_before: uint("validBefore", field(payload, "validBefore")?)?,
            nonce: hash32("nonce", field(payload, "nonce")?)?,
            signature: signature(field(payload, "signature")?)?,
        })
    }

    /// The typed message the payer signed.
    pub(crate) fn message(&self) -> TransferWithAuthorization {
        TransferWithAuthorization {
            from: self.from,
            to: self.to,
            value: self.value,
            validAfter: self.valid_after,
            validBefore: self.valid_before,
            nonce: self.nonce,
        }
    }

    /// `v` as the token's `transferWithAuthorization(…, uint8 v, bytes32 r,
    /// bytes32 s)` expects it (27 or 28).
    pub(crate) fn v(&self) -> u8 {
        27 + u8::from(self.signature.v())
    }

    /// `r` as a word.
    pub(crate) fn r(&self) -> B256 {
        B256::from(self.signature.r())
    }

    /// `s` as a word.
    pub(crate) fn s(&self) -> B256 {
        B256::from(self.signature.s())
    }
}

/// A 65-byte `r ‖ s ‖ v` signature, `v` in {0, 1, 27, 28}.
fn signature(value: &str) -> Result<Signature, SettleError> {
    let bytes = hex_bytes("signature", value)?;
    let Ok(raw) = <[u8; 65]>::try_from(bytes.as_slice()) else {
        return Err(SettleError::invalid_payload(
            "`signature` must be 65 bytes (r ‖ s ‖ v)",
        ));
    };
    if !matches!(raw[64], 0 | 1 | 27 | 28) {
        return Err(SettleError::invalid_payload(
            "`signature` has an invalid recovery byte `v` (expected 27 or 28)",
        ));
    }
    Signature::from_raw_array(&raw)
        .map_err(|_| SettleError::invalid_payload("`signature` is not a valid secp256k1 signature"))
}

/// The EIP-712 domain of an EIP-3009 token.
pub(crate) fn domain(name: &str, version: &str, chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(Cow::Owned(name.to_owned())),
        Some(Cow::Owned(version.to_owned())),
        Some(U256::from(chain_id)),
        Some(token),
        None,
    )
}

/// What the challenge asks for, and what to check a credential against.
#[derive(Debug, Clone)]
pub(crate) struct Terms<'a> {
    /// Who must be paid.
    pub(crate) recipient: Address,
    /// Exactly how much, in base units.
    pub(crate) amount: U256,
    /// The chain.
    pub(crate) chain_id: u64,
    /// The challenge's id.
    pub(crate) challenge_id: &'a str,
    /// The challenge's realm.
    pub(crate) realm: &'a str,
    /// The token's signing domain.
    pub(crate) domain: &'a Eip712Domain,
    /// Now, in Unix seconds.
    pub(crate) now: u64,
}

/// Checks a credential against the challenge, in order: recipient, amount,
/// challenge binding (the nonce), validity window, signature, then the
/// optional `source`. Every failure is a 402 `verification-failed`.
pub(crate) fn verify(
    auth: &Authorization,
    terms: &Terms<'_>,
    source: Option<&Value>,
) -> Result<(), SettleError> {
    if auth.to != terms.recipient {
        return Err(SettleError::verification_failed(format!(
            "EVM authorization recipient mismatch: it pays {}, the challenge asks for {}",
            auth.to.to_checksum(None),
            terms.recipient.to_checksum(None)
        )));
    }
    if auth.value != terms.amount {
        return Err(SettleError::verification_failed(format!(
            "EVM authorization amount mismatch: it pays {} base units, the challenge asks for exactly {}",
            auth.value, terms.amount
        )));
    }
    let expected = nonce_for(terms.challenge_id, terms.realm);
    if auth.nonce != expected {
        return Err(SettleError::verification_failed(format!(
            "EVM authorization challenge hash mismatch: the nonce must be keccak256(challenge id ‖ realm) = {expected:#x}"
        )));
    }
    let now = U256::from(terms.now);
    if auth.valid_after > now {
        return Err(SettleError::verification_failed(format!(
            "EVM authorization is not valid yet (validAfter {} is after now, {})",
            auth.valid_after, terms.now
        )));
    }
    if auth.valid_before <= now {
        return Err(SettleError::verification_failed(format!(
            "EVM authorization has expired (validBefore {} is not after now, {})",
            auth.valid_before, terms.now
        )));
    }
    if auth.signature.normalize_s().is_some() {
        return Err(SettleError::verification_failed(
            "EVM authorization signature is not canonical (high s); sign it again",
        ));
    }
    let digest = auth.message().eip712_signing_hash(terms.domain);
    match auth.signature.recover_address_from_prehash(&digest) {
        Ok(signer) if signer == auth.from => {}
        _ => {
            return Err(SettleError::verification_failed(format!(
                "EVM authorization signature mismatch: it is not signed by {} for this token's EIP-712 domain",
                auth.from.to_checksum(None)
            )));
        }
    }
    if let Some(source) = source {
        check_source(source, auth.from, terms.chain_id)?;
    }
    Ok(())
}

/// `source`, when present, must be `did:pkh:eip155:<chainId>:<from>`.
fn check_source(source: &Value, from: Address, chain_id: u64) -> Result<(), SettleError> {
    let Some(did) = source.as_str() else {
        return Err(SettleError::invalid_payload(
            "`source` must be a string `did:pkh:eip155:<chainId>:<address>`",
        ));
    };
    let expected = format!("did:pkh:eip155:{chain_id}:{}", from.to_checksum(None));
    let matches = did
        .strip_prefix("did:pkh:eip155:")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(chain, account)| {
            chain == chain_id.to_string()
                && account.len() == 42
                && account.eq_ignore_ascii_case(&format!("{from:#x}"))
        });
    if matches {
        Ok(())
    } else {
        Err(SettleError::verification_failed(format!(
            "EVM authorization source mismatch: `source` must be {expected}"
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;
    use serde_json::json;

    use super::*;
    use crate::rail::SettleErrorKind;

    // /tmp/research/tempo-evm-fixtures.json#evmAuthorization (viem 2.57.13).
    const PAYER_KEY: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";
    const PAYER: &str = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A";
    const RECIPIENT: &str = "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00";
    const TOKEN: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    const NONCE: &str = "0x6e75bcb5df1f8022ad4eecac5da5620c2c1db72d885bca54897f41a782c65b3a";
    const DIGEST: &str = "0xbf89b54be6e73a63c8f36cc52dd560b9e8c1703e4d76bc76c77273034e90a6bd";
    const SIGNATURE: &str = "0x771054e0546bd456045a8ac6a5c7fbc13ac2b384f6a8fad12b294615e691304604e66a68869826e0f21957c5b537eadc158d64c8e7264dfe9e86badeb470dd531c";
    const CHAIN: u64 = 84532;
    const NOW: u64 = 1_800_000_000;

    fn addr(s: &str) -> Address {
        s.parse().unwrap()
    }

    fn fixture_domain() -> Eip712Domain {
        domain("USDC", "2", CHAIN, addr(TOKEN))
    }

    fn fixture_payload() -> Map<String, Value> {
        json!({
            "type": "authorization",
            "from": PAYER,
            "to": RECIPIENT,
            "value": "1000000",
            "validAfter": "0",
            "validBefore": "1900000000",
            "nonce": NONCE,
            "signature": SIGNATURE,
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn terms(domain: &Eip712Domain) -> Terms<'_> {
        Terms {
            recipient: addr(RECIPIENT),
            amount: U256::from(1_000_000u64),
            chain_id: CHAIN,
            challenge_id: "challenge-123",
            realm: "api.example.com",
            domain,
            now: NOW,
        }
    }

    /// The payload of an authorization re-signed by `key` after `edit`.
    fn signed(key: &str, edit: impl FnOnce(&mut Authorization)) -> Map<String, Value> {
        let mut auth = Authorization::parse(&fixture_payload()).unwrap();
        edit(&mut auth);
        let signer: PrivateKeySigner = key.parse().unwrap();
        let digest = auth.message().eip712_signing_hash(&fixture_domain());
        let signature = signer.sign_hash_sync(&digest).unwrap();
        json!({
            "type": "authorization",
            "from": auth.from.to_checksum(None),
            "to": auth.to.to_checksum(None),
            "value": auth.value.to_string(),
            "validAfter": auth.valid_after.to_string(),
            "validBefore": auth.valid_before.to_string(),
            "nonce": format!("{:#x}", auth.nonce),
            "signature": format!("0x{}", alloy::hex::encode(signature.as_bytes())),
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn check(payload: &Map<String, Value>, source: Option<&Value>) -> Result<(), SettleError> {
        let domain = fixture_domain();
        let auth = Authorization::parse(payload)?;
        verify(&auth, &terms(&domain), source)
    }

    fn refused(result: Result<(), SettleError>, needle: &str) {
        let error = result.expect_err("expected a refusal");
        assert_eq!(
            error.kind,
            SettleErrorKind::VerificationFailed,
            "{}",
            error.detail
        );
        assert!(error.detail.contains(needle), "{}", error.detail);
    }

    #[test]
    fn the_nonce_is_the_fixture_hash_of_id_and_realm() {
        assert_eq!(
            format!("{:#x}", nonce_for("challenge-123", "api.example.com")),
            NONCE
        );
        assert_ne!(
            nonce_for("challenge-12", "3api.example.com"),
            nonce_for("challenge-123", "api.example.com.")
        );
    }

    #[test]
    fn the_fixture_digest_and_signature_verify() {
        let auth = Authorization::parse(&fixture_payload()).unwrap();
        let digest = auth.message().eip712_signing_hash(&fixture_domain());
        assert_eq!(format!("{digest:#x}"), DIGEST);
        assert_eq!(
            auth.signature
                .recover_address_from_prehash(&digest)
                .unwrap(),
            addr(PAYER)
        );
        assert_eq!(auth.v(), 28);
        check(&fixture_payload(), None).unwrap();
        let source = json!(format!("did:pkh:eip155:{CHAIN}:{PAYER}"));
        check(&fixture_payload(), Some(&source)).unwrap();
        let lower = json!(format!("did:pkh:eip155:{CHAIN}:{}", PAYER.to_lowercase()));
        check(&fixture_payload(), Some(&lower)).unwrap();
    }

    #[test]
    fn a_re_signed_fixture_verifies() {
        // Our signer agrees with viem's (RFC 6979 is deterministic).
        assert_eq!(signed(PAYER_KEY, |_| {}), fixture_payload());
    }

    #[test]
    fn another_recipient_is_refused() {
        let payload = signed(PAYER_KEY, |a| a.to = addr(TOKEN));
        refused(check(&payload, None), "recipient mismatch");
    }

    #[test]
    fn another_amount_is_refused() {
        for value in [999_999u64, 1_000_001] {
            let payload = signed(PAYER_KEY, |a| a.value = U256::from(value));
            refused(check(&payload, None), "amount mismatch");
        }
    }

    #[test]
    fn the_nonce_of_another_challenge_is_refused() {
        let payload = signed(PAYER_KEY, |a| {
            a.nonce = nonce_for("challenge-124", "api.example.com");
        });
        refused(check(&payload, None), "challenge hash mismatch");
        let payload = signed(PAYER_KEY, |a| {
            a.nonce = nonce_for("challenge-123", "other.example.com");
        });
        refused(check(&payload, None), "challenge hash mismatch");
    }

    #[test]
    fn the_validity_window_is_enforced() {
        let payload = signed(PAYER_KEY, |a| a.valid_after = U256::from(NOW + 1));
        refused(check(&payload, None), "not valid yet");
        // validAfter == now is valid.
        let payload = signed(PAYER_KEY, |a| a.valid_after = U256::from(NOW));
        check(&payload, None).unwrap();
        let payload = signed(PAYER_KEY, |a| a.valid_before = U256::from(NOW));
        refused(check(&payload, None), "expired");
        let payload = signed(PAYER_KEY, |a| a.valid_before = U256::from(NOW - 1));
        refused(check(&payload, None), "expired");
    }

    #[test]
    fn a_forged_or_tampered_signature_is_refused() {
        // Signed by someone else on the payer's behalf.
        let forged = signed(
            "0x2222222222222222222222222222222222222222222222222222222222222222",
            |_| {},
        );
        refused(check(&forged, None), "signature mismatch");
        // A field changed after signing.
        let mut tampered = fixture_payload();
        tampered.insert("validBefore".into(), json!("1900000001"));
        refused(check(&tampered, None), "signature mismatch");
        // Another token's (or chain's) domain.
        let auth = Authorization::parse(&fixture_payload()).unwrap();
        let other = domain("USD Coin", "2", CHAIN, addr(TOKEN));
        refused(verify(&auth, &terms(&other), None), "signature mismatch");
        let other = domain("USDC", "2", 8453, addr(TOKEN));
        refused(verify(&auth, &terms(&other), None), "signature mismatch");
    }

    #[test]
    fn a_high_s_signature_is_refused() {
        let auth = Authorization::parse(&fixture_payload()).unwrap();
        // The fixture's s is low: its malleable twin is (r, n - s, !v).
        assert!(auth.signature.normalize_s().is_none());
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let flipped = Signature::new(
            auth.signature.r(),
            n - auth.signature.s(),
            !auth.signature.v(),
        );
        // It recovers the same signer: only the high-s rule refuses it.
        let digest = auth.message().eip712_signing_hash(&fixture_domain());
        assert_eq!(
            flipped.recover_address_from_prehash(&digest).unwrap(),
            addr(PAYER)
        );
        let mut payload = fixture_payload();
        payload.insert(
            "signature".into(),
            json!(format!("0x{}", alloy::hex::encode(flipped.as_bytes()))),
        );
        refused(check(&payload, None), "high s");
    }

    #[test]
    fn a_source_for_another_payer_or_chain_is_refused() {
        for source in [
            format!("did:pkh:eip155:{CHAIN}:{RECIPIENT}"),
            format!("did:pkh:eip155:8453:{PAYER}"),
            format!("did:pkh:eip155:{CHAIN}:{PAYER}:extra"),
            format!("did:pkh:solana:{CHAIN}:{PAYER}"),
            PAYER.to_owned(),
        ] {
            refused(
                check(&fixture_payload(), Some(&json!(source))),
                "source mismatch",
            );
        }
        let error = check(&fixture_payload(), Some(&json!({"address": PAYER}))).unwrap_err();
        assert_eq!(error.kind, SettleErrorKind::InvalidPayload);
    }

    #[test]
    fn another_credential_type_is_refused() {
        let mut payload = fixture_payload();
        payload.insert("type".into(), json!("permit2"));
        refused(check(&payload, None), "not supported");
    }

    #[test]
    fn malformed_payloads_are_invalid_not_panics() {
        let cases: Vec<(&str, Value)> = vec![
            ("type", json!(null)),
            ("from", json!("0x1234")),
            ("from", json!(42)),
            ("to", json!("742d35Cc6634c0532925a3b844bC9e7595F8fE00")),
            ("value", json!("-1")),
            ("value", json!("1e6")),
            ("value", json!("")),
            (
                "value",
                json!(
                    "115792089237316195423570985008687907853269984665640564039457584007913129639936"
                ),
            ),
            ("validAfter", json!(0)),
            ("validBefore", json!("0x10")),
            ("nonce", json!("0x1234")),
            (
                "nonce",
                json!("0xzz75bcb5df1f8022ad4eecac5da5620c2c1db72d885bca54897f41a782c65b3a"),
            ),
            ("signature", json!("0x")),
            ("signature", json!(&SIGNATURE[..SIGNATURE.len() - 2])),
            (
                "signature",
                json!(format!("{}1d", &SIGNATURE[..SIGNATURE.len() - 2])),
            ),
            ("signature", json!(format!("{SIGNATURE}00"))),
        ];
        for (name, value) in cases {
            let mut payload = fixture_payload();
            payload.insert(name.into(), value.clone());
            let error = check(&payload, None).unwrap_err();
            assert_eq!(
                error.kind,
                SettleErrorKind::InvalidPayload,
                "{name} = {value}: {}",
                error.detail
            );
        }
        let mut payload = fixture_payload();
        payload.remove("nonce");
        assert_eq!(
            check(&payload, None).unwrap_err().kind,
            SettleErrorKind::InvalidPayload
        );
        // r = 0: parses, never recovers.
        let mut zero = [0u8; 65];
        zero[64] = 27;
        let mut payload = fixture_payload();
        payload.insert(
            "signature".into(),
            json!(format!("0x{}", alloy::hex::encode(zero))),
        );
        refused(check(&payload, None), "signature mismatch");
    }
}
