//! Stellar keys and addresses: strkeys (`G…` accounts, `C…` contracts, `S…`
//! secret seeds), ed25519 signing and verification, and network ids.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use stellar_xdr::{AccountId, ContractId, Hash, PublicKey, ScAddress, Uint256};
use thiserror::Error;

/// A strkey that is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Not a `G…` account address (or a bad checksum).
    #[error("`{0}` is not a Stellar account address (G…, 56 characters)")]
    NotAccount(String),
    /// Not a `C…` contract address (or a bad checksum).
    #[error("`{0}` is not a Stellar contract address (C…, 56 characters)")]
    NotContract(String),
    /// Neither an account nor a contract address.
    #[error("`{0}` is not a Stellar account (G…) or contract (C…) address")]
    NotAddress(String),
    /// Not an `S…` secret seed (the value itself is never echoed).
    #[error("the value is not a Stellar secret seed (S…, 56 characters)")]
    NotSecret,
}

/// An ed25519 key pair: a payer's or a fee payer's account key.
///
/// ```
/// use mpp_runtime::rails::stellar::keys::Keypair;
/// let keys = Keypair::from_seed([1; 32]);
/// assert!(keys.public_key().starts_with('G'));
/// let signature = keys.sign(b"challenge-id:hash");
/// assert!(mpp_runtime::rails::stellar::keys::verify(&keys.public_bytes(), b"challenge-id:hash", &signature));
/// ```
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// The key pair of a raw 32-byte ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The key pair of an `S…` secret seed.
    pub fn from_secret(secret: &str) -> Result<Self, KeyError> {
        let seed = stellar_strkey::ed25519::PrivateKey::from_string(secret.trim())
            .map_err(|_| KeyError::NotSecret)?;
        Ok(Self::from_seed(seed.0))
    }

    /// The raw public key.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The account address (`G…`).
    pub fn public_key(&self) -> String {
        account_strkey(&self.public_bytes())
    }

    /// The last four bytes of the public key: the `hint` of a decorated
    /// signature.
    pub fn hint(&self) -> [u8; 4] {
        hint(&self.public_bytes())
    }

    /// An ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// The signature hint of a public key: its last four bytes.
pub fn hint(public: &[u8; 32]) -> [u8; 4] {
    [public[28], public[29], public[30], public[31]]
}

/// Whether `signature` is `public`'s ed25519 signature of `message`
/// (strict verification: no malleable or small-order forms).
pub fn verify(public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(&signature))
        .is_ok()
}

/// A network's id: the SHA-256 of its passphrase.
pub fn network_id(passphrase: &str) -> [u8; 32] {
    Sha256::digest(passphrase.as_bytes()).into()
}

/// The raw key of a `G…` account address.
pub fn parse_account(text: &str) -> Result<[u8; 32], KeyError> {
    stellar_strkey::ed25519::PublicKey::from_string(text)
        .map(|k| k.0)
        .map_err(|_| KeyError::NotAccount(text.to_owned()))
}

/// The id of a `C…` contract address.
pub fn parse_contract(text: &str) -> Result<[u8; 32], KeyError> {
    stellar_strkey::Contract::from_string(text)
        .map(|c| c.0)
        .map_err(|_| KeyError::NotContract(text.to_owned()))
}

/// An account (`G…`) or contract (`C…`) address as a Soroban address.
pub fn parse_address(text: &str) -> Result<ScAddress, KeyError> {
    if text.starts_with('G') {
        parse_account(text).map(account_address)
    } else if text.starts_with('C') {
        parse_contract(text).map(|id| ScAddress::Contract(ContractId(Hash(id))))
    } else {
        Err(KeyError::NotAddress(text.to_owned()))
    }
}

/// The `G…` address of a raw account key.
pub fn account_strkey(public: &[u8; 32]) -> String {
    format!("{}", stellar_strkey::ed25519::PublicKey(*public))
}

/// The `C…` address of a contract id.
pub fn contract_strkey(id: &[u8; 32]) -> String {
    format!("{}", stellar_strkey::Contract(*id))
}

/// The Soroban address of an account key.
pub fn account_address(public: [u8; 32]) -> ScAddress {
    ScAddress::Account(AccountId(PublicKey::PublicKeyTypeEd25519(Uint256(public))))
}

/// The account key of a Soroban address, when it is a plain account.
pub fn address_account(address: &ScAddress) -> Option<[u8; 32]> {
    match address {
        ScAddress::Account(AccountId(PublicKey::PublicKeyTypeEd25519(Uint256(key)))) => Some(*key),
        _ => None,
    }
}

/// A Soroban address as a strkey (`G…`, `C…`, `M…`, …).
pub fn address_strkey(address: &ScAddress) -> String {
    address.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn strkeys_round_trip_and_checksums_catch_typos() {
        let usdc = "CBIELTK6YBZJU5UP2WWQEUCYKLPU6AUNZ2BQ4WWFEIE3USCIHMXQDAMA";
        let id = parse_contract(usdc).unwrap();
        assert_eq!(contract_strkey(&id), usdc);
        let zeros = "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF";
        assert_eq!(parse_account(zeros).unwrap(), [0; 32]);
        // One character changed: the CRC16 checksum fails.
        assert!(
            parse_contract("CBIELTK6YBZJU5UP2WWQEUCYKLPU6AUNZ2BQ4WWFEIE3USCIHMXQDAMB").is_err()
        );
        // The truncated mainnet USDC id that circulates in some SDK versions.
        assert!(parse_contract("CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI").is_err());
        assert!(parse_address(usdc).is_ok() && parse_address(zeros).is_ok());
        assert!(matches!(
            parse_address("MAAAA"),
            Err(KeyError::NotAddress(_))
        ));
        assert_eq!(address_strkey(&account_address([0; 32])), zeros.to_owned());
    }

    #[test]
    fn secrets_sign_and_signatures_verify_strictly() {
        let keys = Keypair::from_seed([7; 32]);
        let secret = stellar_strkey::ed25519::PrivateKey([7; 32]);
        let text = format!("{}", secret.as_unredacted());
        let again = Keypair::from_secret(&text).unwrap();
        assert_eq!(again.public_key(), keys.public_key());
        assert!(!format!("{again:?}").contains(&text));
        let sig = keys.sign(b"m");
        assert!(verify(&keys.public_bytes(), b"m", &sig));
        assert!(!verify(&keys.public_bytes(), b"n", &sig));
        assert!(!verify(&keys.public_bytes(), b"m", &sig[..63]));
        assert_eq!(
            Keypair::from_secret("GABC").unwrap_err(),
            KeyError::NotSecret
        );
        assert_eq!(
            hex(&network_id("Test SDF Network ; September 2015")),
            "cee0302d59844d32bdca915c8203dd44b33fbb7edc19051ea37abedf28ecd472"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
