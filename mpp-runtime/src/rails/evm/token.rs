//! The EIP-3009 token's ABI as the rail uses it: view calls, the
//! `transferWithAuthorization` call, and the logs that prove a settlement.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolEvent};

use super::authorization::Authorization;
use crate::rails::chain::{ChainLog, ChainReceipt};

mod abi {
    #![allow(missing_docs, unreachable_pub)]

    alloy::sol! {
        /// The token's EIP-712 domain name.
        function name() external view returns (string);
        /// The token's EIP-712 domain version.
        function version() external view returns (string);
        /// The token's decimals.
        function decimals() external view returns (uint8);
        /// Whether `authorizer` already used `nonce`.
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        /// EIP-3009 (the `v, r, s` form, selector 0xe3ee160e).
        function transferWithAuthorization(
            address from,
            address to,
            uint256 value,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 nonce,
            uint8 v,
            bytes32 r,
            bytes32 s
        ) external;
        /// ERC-20 transfer event.
        event Transfer(address indexed from, address indexed to, uint256 value);
        /// EIP-3009: emitted when an authorization is used.
        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    }
}

pub(crate) use abi::{
    AuthorizationUsed, Transfer, authorizationStateCall, decimalsCall, nameCall,
    transferWithAuthorizationCall, versionCall,
};

/// Calldata of `transferWithAuthorization(from, to, value, validAfter,
/// validBefore, nonce, v, r, s)`.
pub(crate) fn transfer_calldata(auth: &Authorization) -> Bytes {
    transferWithAuthorizationCall {
        from: auth.from,
        to: auth.to,
        value: auth.value,
        validAfter: auth.valid_after,
        validBefore: auth.valid_before,
        nonce: auth.nonce,
        v: auth.v(),
        r: auth.r(),
        s: auth.s(),
    }
    .abi_encode()
    .into()
}

/// Calldata of `authorizationState(authorizer, nonce)`.
pub(crate) fn state_calldata(authorizer: Address, nonce: B256) -> Bytes {
    authorizationStateCall { authorizer, nonce }
        .abi_encode()
        .into()
}

fn is_transfer(log: &ChainLog, token: Address, from: Address, to: Address, value: U256) -> bool {
    log.address == token
        && log.topics.len() == 3
        && log.topics[0] == Transfer::SIGNATURE_HASH
        && log.topics[1] == from.into_word()
        && log.topics[2] == to.into_word()
        && log.data.len() == 32
        && U256::from_be_slice(&log.data) == value
}

fn is_authorization_used(log: &ChainLog, token: Address, authorizer: Address, nonce: B256) -> bool {
    log.address == token
        && log.topics.len() == 3
        && log.topics[0] == AuthorizationUsed::SIGNATURE_HASH
        && log.topics[1] == authorizer.into_word()
        && log.topics[2] == nonce
}

/// Why a receipt does not prove the settlement of an authorization.
pub(crate) fn receipt_mismatch(
    receipt: &ChainReceipt,
    token: Address,
    auth: &Authorization,
) -> Option<&'static str> {
    if !receipt.succeeded() {
        return Some("the transaction reverted");
    }
    if !receipt
        .logs
        .iter()
        .any(|l| is_authorization_used(l, token, auth.from, auth.nonce))
    {
        return Some("the token did not log AuthorizationUsed for this payer and nonce");
    }
    if !receipt
        .logs
        .iter()
        .any(|l| is_transfer(l, token, auth.from, auth.to, auth.value))
    {
        return Some(
            "the token did not log a Transfer of the amount from the payer to the recipient",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use alloy::primitives::U64;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_selectors_are_eip_3009s() {
        assert_eq!(
            transferWithAuthorizationCall::SELECTOR,
            [0xe3, 0xee, 0x16, 0x0e]
        );
        assert_eq!(authorizationStateCall::SELECTOR, [0xe9, 0x4a, 0x01, 0x02]);
        assert_eq!(
            format!("{:#x}", Transfer::SIGNATURE_HASH),
            "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
        );
        assert!(format!("{:#x}", AuthorizationUsed::SIGNATURE_HASH).starts_with("0x98de5035"));
    }

    fn auth() -> Authorization {
        let payload = json!({
            "type": "authorization",
            "from": "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A",
            "to": "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00",
            "value": "1000000",
            "validAfter": "0",
            "validBefore": "1900000000",
            "nonce": "0x6e75bcb5df1f8022ad4eecac5da5620c2c1db72d885bca54897f41a782c65b3a",
            "signature": "0x771054e0546bd456045a8ac6a5c7fbc13ac2b384f6a8fad12b294615e691304604e66a68869826e0f21957c5b537eadc158d64c8e7264dfe9e86badeb470dd531c",
        });
        Authorization::parse(payload.as_object().unwrap()).unwrap()
    }

    fn receipt(token: Address, auth: &Authorization, value: U256, status: u64) -> ChainReceipt {
        ChainReceipt {
            transaction_hash: B256::repeat_byte(0x11),
            status: Some(U64::from(status)),
            from: Address::repeat_byte(0x22),
            block_number: Some(U64::from(7)),
            logs: vec![
                ChainLog {
                    address: token,
                    topics: vec![
                        AuthorizationUsed::SIGNATURE_HASH,
                        auth.from.into_word(),
                        auth.nonce,
                    ],
                    data: Bytes::new(),
                },
                ChainLog {
                    address: token,
                    topics: vec![
                        Transfer::SIGNATURE_HASH,
                        auth.from.into_word(),
                        auth.to.into_word(),
                    ],
                    data: value.to_be_bytes::<32>().to_vec().into(),
                },
            ],
        }
    }

    #[test]
    fn a_receipt_proves_the_transfer_only_with_both_logs_of_the_token() {
        let token = Address::repeat_byte(0x33);
        let a = auth();
        assert_eq!(
            receipt_mismatch(&receipt(token, &a, a.value, 1), token, &a),
            None
        );
        assert!(receipt_mismatch(&receipt(token, &a, a.value, 0), token, &a).is_some());
        assert!(
            receipt_mismatch(&receipt(token, &a, a.value - U256::from(1), 1), token, &a).is_some()
        );
        let other = Address::repeat_byte(0x44);
        assert!(receipt_mismatch(&receipt(other, &a, a.value, 1), token, &a).is_some());
        let mut only_transfer = receipt(token, &a, a.value, 1);
        only_transfer.logs.remove(0);
        assert!(receipt_mismatch(&only_transfer, token, &a).is_some());
    }

    #[test]
    fn the_calldata_carries_v_r_s() {
        let a = auth();
        let data = transfer_calldata(&a);
        assert_eq!(&data[..4], &[0xe3, 0xee, 0x16, 0x0e]);
        let decoded = transferWithAuthorizationCall::abi_decode(&data).unwrap();
        assert_eq!(decoded.v, 28);
        assert_eq!(decoded.from, a.from);
        assert_eq!(decoded.nonce, a.nonce);
    }
}
