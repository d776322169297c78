//! What the on-chain rails (`tempo`, `evm`) share: a JSON-RPC client over
//! alloy, transaction receipts and their logs, and waiting for inclusion.

mod rpc;

/// The alloy the on-chain rails are built on (addresses, signers, typed
/// data), re-exported so applications use the same version.
pub use alloy;

pub use rpc::{ChainLog, ChainReceipt, Rpc, RpcFailure, WaitPolicy};

use alloy::primitives::{Address, B256, U256};

use std::str::FromStr;

use crate::rail::{RailError, SettleError};
pub(crate) use crate::wire::redact_url;

/// Parses a `0x`-prefixed hex string into bytes.
pub(crate) fn hex_bytes(field: &str, value: &str) -> Result<Vec<u8>, SettleError> {
    let digits = value.strip_prefix("0x").ok_or_else(|| {
        SettleError::invalid_payload(format!("`{field}` must be 0x-prefixed hex"))
    })?;
    alloy::hex::decode(digits)
        .map_err(|_| SettleError::invalid_payload(format!("`{field}` is not valid hex")))
}

/// Parses a 32-byte `0x` hash.
pub(crate) fn hash32(field: &str, value: &str) -> Result<B256, SettleError> {
    let bytes = hex_bytes(field, value)?;
    if bytes.len() != 32 {
        return Err(SettleError::invalid_payload(format!(
            "`{field}` must be 32 bytes"
        )));
    }
    Ok(B256::from_slice(&bytes))
}

/// Parses a 20-byte `0x` address (any letter case).
pub(crate) fn address(field: &str, value: &str) -> Result<Address, SettleError> {
    let bytes = hex_bytes(field, value)?;
    if bytes.len() != 20 {
        return Err(SettleError::invalid_payload(format!(
            "`{field}` must be a 20-byte address"
        )));
    }
    Ok(Address::from_slice(&bytes))
}

/// Parses a base-10 integer that fits 256 bits.
#[cfg_attr(not(feature = "evm"), allow(dead_code))]
pub(crate) fn uint(field: &str, value: &str) -> Result<U256, SettleError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SettleError::invalid_payload(format!(
            "`{field}` must be a base-10 integer"
        )));
    }
    U256::from_str_radix(value, 10)
        .map_err(|_| SettleError::invalid_payload(format!("`{field}` does not fit 256 bits")))
}

/// The string field `name` of a payload.
pub(crate) fn field<'a>(
    payload: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<&'a str, SettleError> {
    payload
        .get(name)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| SettleError::invalid_payload(format!("the payload has no string `{name}`")))
}

/// Parses an address setting: `0x` and 40 hex digits; mixed case must be a
/// valid EIP-55 checksum (it catches typos).
pub(crate) fn parse_address(name: &str, text: &str) -> Result<Address, RailError> {
    let digits = text.strip_prefix("0x").unwrap_or_default();
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RailError::new(format!(
            "{name} must be a 0x-prefixed 20-byte address, not `{text}`"
        )));
    }
    let mixed = digits.bytes().any(|b| b.is_ascii_uppercase())
        && digits.bytes().any(|b| b.is_ascii_lowercase());
    let address = if mixed {
        Address::parse_checksummed(text, None).map_err(|_| {
            RailError::new(format!(
                "{name} `{text}` has an invalid EIP-55 checksum; check it for typos"
            ))
        })?
    } else {
        Address::from_str(text)
            .map_err(|_| RailError::new(format!("{name} `{text}` is not an address")))?
    };
    if address.is_zero() {
        return Err(RailError::new(format!(
            "{name} is the zero address; set a real one"
        )));
    }
    Ok(address)
}
