//! The Stellar rail (`method = "stellar"`, intent `charge`): SEP-41 token
//! payments (USDC through its Stellar Asset Contract) on Soroban, in the
//! wire format of the reference `@stellar/mpp` charge method
//! (draft-stellar-charge-00).
//!
//! The challenge asks for `{amount (base units, 7 decimals for USDC),
//! currency (the token contract, C…), recipient (G… or C…), methodDetails:
//! {network: "stellar:testnet" | "stellar:pubnet", credentialTypes,
//! feePayer?}}`. The payer calls the token's `transfer(from, recipient,
//! amount)` and pays in one of three ways:
//!
//! - **pull** (`{"type": "transaction", "transaction": "<base64 XDR>"}`):
//!   a complete transaction signed by the payer. The rail decodes it
//!   (stellar-xdr) and checks offline that its only operation is the
//!   transfer, authorized by the payer alone with no sub-invocations, signed
//!   by its source, and not valid beyond the challenge (`timeBounds`); it
//!   simulates it (`simulateTransaction`) and requires the transfer to be
//!   the only token movement, submits it unchanged (`sendTransaction`),
//!   polls `getTransaction` and claims its hash.
//! - **sponsored pull** (when `STELLAR_FEE_PAYER_SECRET` is set, the
//!   challenge says `feePayer: true`): the transaction's source is the
//!   all-zeros account and the payer signed only its authorization entry
//!   (an address credential whose expiry ledger must fall within the
//!   challenge's lifetime). The rail rebuilds the transaction with its fee
//!   account as source, simulates it, caps the fee (`STELLAR_MAX_FEE`),
//!   signs and submits it. Sponsored submissions are serialized per fee
//!   account (the network accepts one pending transaction per source).
//! - **push** (`{"type": "signedHash", "hash", "sourceSignature"}`): the
//!   payer broadcast the transaction and signs `"{challenge id}:{hash}"`
//!   with its account key; the rail fetches the transaction, checks the
//!   transfer and the signature, and claims the hash.
//!
//! A transaction hash (and a sponsored authorization) pays once
//! ([`Proofs`](crate::Proofs)); the receipt's reference is the hash. A
//! wrong payment is a 402 `verification-failed` with a fresh challenge; an
//! unreachable RPC is a 500 and the same credential can be retried. A retry
//! finds a payment that went through instead of paying again: a submitted
//! transaction by its hash; a sponsored authorization, in any server
//! process, by its nonce (spent on the network once a transaction used it)
//! and the token's `transfer` events (`getEvents`).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `STELLAR_RECIPIENT` | the account (G…) or contract (C…) that gets paid; a G account needs a trustline to the token's asset | none: startup error |
//! | `STELLAR_NETWORK` | `stellar:testnet` or `stellar:pubnet` | `stellar:testnet` |
//! | `STELLAR_RPC_URL` | the Stellar RPC endpoint | [`TESTNET_RPC_URL`] on testnet; required on pubnet |
//! | `STELLAR_TOKEN` | the SEP-41 token contract | USDC: [`USDC_TESTNET`] / [`USDC_PUBNET`] |
//! | `STELLAR_DECIMALS` | the token's decimals | 7 |
//! | `STELLAR_CURRENCY` | the currency the token is denominated in; routes must be priced in it | `USD` |
//! | `STELLAR_FEE_PAYER_SECRET` | `S…` seed of an XLM-funded account that sponsors the network fees | none: payers pay their own fees |
//! | `STELLAR_MAX_FEE` | the most a sponsored transaction may cost, in stroops | 1000000 (0.1 XLM) |
//! | `STELLAR_MODES` | `pull`, `push` or `pull,push` (push cannot be sponsored) | `pull,push`; `pull` with a fee payer |
//! | `STELLAR_POLL_INTERVAL_MS`, `STELLAR_POLL_ATTEMPTS` | how a submitted transaction is awaited before a 500 | 1000, 30 |

pub mod keys;
pub mod rpc;
mod settle;
pub mod transfer;

/// The XDR types (stellar-xdr 30), re-exported for wallets and tests that
/// build Stellar transactions.
pub use stellar_xdr as xdr;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use stellar_xdr::ScAddress;

use crate::BoxFuture;
use crate::clock::{Clock, SystemClock};
use crate::price::Currency;
use crate::rail::{Price, Rail, RailError, SettleError, SettleRequest, Settlement};
use crate::rails::env::EnvVars;
use keys::Keypair;
use rpc::StellarRpc;

/// The method name.
pub const METHOD: &str = "stellar";
/// Stellar's public test network, as a CAIP-2 id.
pub const TESTNET: &str = "stellar:testnet";
/// Stellar's main network, as a CAIP-2 id.
pub const PUBNET: &str = "stellar:pubnet";
/// The test network's passphrase.
pub const TESTNET_PASSPHRASE: &str = "Test SDF Network ; September 2015";
/// The main network's passphrase.
pub const PUBNET_PASSPHRASE: &str = "Public Global Stellar Network ; September 2015";
/// SDF's public testnet RPC endpoint.
pub const TESTNET_RPC_URL: &str = "https://soroban-testnet.stellar.org";
/// Circle's USDC on testnet: its Stellar Asset Contract.
pub const USDC_TESTNET: &str = "CBIELTK6YBZJU5UP2WWQEUCYKLPU6AUNZ2BQ4WWFEIE3USCIHMXQDAMA";
/// Circle's USDC on pubnet: its Stellar Asset Contract.
pub const USDC_PUBNET: &str = "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75";
/// The all-zeros account a sponsored transaction names as its source
/// (the server substitutes its own).
pub const ALL_ZEROS_ACCOUNT: &str = "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF";

/// A Stellar network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// `stellar:testnet`.
    Testnet,
    /// `stellar:pubnet`.
    Pubnet,
}

impl Network {
    /// Parses a CAIP-2 id (`stellar:testnet`, `stellar:pubnet`).
    pub fn from_caip2(id: &str) -> Option<Self> {
        match id {
            TESTNET => Some(Self::Testnet),
            PUBNET => Some(Self::Pubnet),
            _ => None,
        }
    }

    /// Its CAIP-2 id.
    pub const fn caip2(self) -> &'static str {
        match self {
            Self::Testnet => TESTNET,
            Self::Pubnet => PUBNET,
        }
    }

    /// Its passphrase.
    pub const fn passphrase(self) -> &'static str {
        match self {
            Self::Testnet => TESTNET_PASSPHRASE,
            Self::Pubnet => PUBNET_PASSPHRASE,
        }
    }

    /// Its network id (the SHA-256 of the passphrase), which transaction
    /// hashes and authorization signatures commit to.
    pub fn id(self) -> [u8; 32] {
        keys::network_id(self.passphrase())
    }

    /// Circle's USDC contract on this network.
    pub const fn usdc(self) -> &'static str {
        match self {
            Self::Testnet => USDC_TESTNET,
            Self::Pubnet => USDC_PUBNET,
        }
    }
}

/// How a payer may pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The payer signs, the server submits (`type: "transaction"`).
    Pull,
    /// The payer submits and sends the hash (`type: "signedHash"`).
    Push,
}

/// Stellar rail settings.
#[derive(Clone)]
pub struct StellarConfig {
    recipient: Option<String>,
    network: Network,
    rpc_url: Option<String>,
    token: Option<String>,
    decimals: u8,
    currency: String,
    fee_payer_secret: Option<String>,
    max_fee: u32,
    modes: Option<Vec<Mode>>,
    poll_interval: Duration,
    poll_attempts: u32,
    timeout: Duration,
    errors: Vec<String>,
}

impl fmt::Debug for StellarConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StellarConfig")
            .field("recipient", &self.recipient)
            .field("network", &self.network)
            .field("rpc_url", &self.rpc_url.as_deref().map(rpc::redact))
            .field("token", &self.token)
            .field("decimals", &self.decimals)
            .field("currency", &self.currency)
            .field(
                "fee_payer_secret",
                &self.fee_payer_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("max_fee", &self.max_fee)
            .field("modes", &self.modes)
            .finish_non_exhaustive()
    }
}

impl Default for StellarConfig {
    fn default() -> Self {
        Self {
            recipient: None,
            network: Network::Testnet,
            rpc_url: None,
            token: None,
            decimals: 7,
            currency: "USD".to_owned(),
            fee_payer_secret: None,
            max_fee: 1_000_000,
            modes: None,
            poll_interval: Duration::from_secs(1),
            poll_attempts: 30,
            timeout: Duration::from_secs(15),
            errors: Vec::new(),
        }
    }
}

impl StellarConfig {
    /// Settings from the `STELLAR_*` environment variables.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings read through an environment-like function. Unreadable
    /// values are reported by [`StellarRail::new`], all at once.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let vars = EnvVars::new(lookup);
        let integer = "a non-negative integer";
        let mut config = Self {
            recipient: vars.text("STELLAR_RECIPIENT"),
            rpc_url: vars.text("STELLAR_RPC_URL"),
            token: vars.text("STELLAR_TOKEN"),
            fee_payer_secret: vars.text("STELLAR_FEE_PAYER_SECRET"),
            ..Self::default()
        };
        if let Some(network) = vars.text("STELLAR_NETWORK") {
            match Network::from_caip2(&network) {
                Some(n) => config.network = n,
                None => vars.problem(format!(
                    "STELLAR_NETWORK must be `{TESTNET}` or `{PUBNET}`, not `{network}`"
                )),
            }
        }
        if let Some(decimals) = vars.number("STELLAR_DECIMALS", integer) {
            match u8::try_from(decimals) {
                Ok(d) if d <= 18 => config.decimals = d,
                _ => vars.problem(format!(
                    "STELLAR_DECIMALS must be at most 18, not {decimals}"
                )),
            }
        }
        if let Some(currency) = vars.text("STELLAR_CURRENCY") {
            config.currency = currency;
        }
        if let Some(fee) = vars.number("STELLAR_MAX_FEE", "a number of stroops") {
            match u32::try_from(fee) {
                Ok(f) if f >= 100 => config.max_fee = f,
                _ => vars.problem(format!(
                    "STELLAR_MAX_FEE must be between 100 and 4294967295 stroops, not {fee}"
                )),
            }
        }
        if let Some(modes) = vars.text("STELLAR_MODES") {
            let mut parsed = Vec::new();
            for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                match mode {
                    "pull" => parsed.push(Mode::Pull),
                    "push" => parsed.push(Mode::Push),
                    other => vars.problem(format!(
                        "STELLAR_MODES lists `{other}`; use `pull`, `push` or `pull,push`"
                    )),
                }
            }
            config.modes = Some(parsed);
        }
        if let Some(ms) = vars.number("STELLAR_POLL_INTERVAL_MS", integer) {
            config.poll_interval = Duration::from_millis(ms);
        }
        if let Some(n) = vars.number("STELLAR_POLL_ATTEMPTS", integer) {
            config.poll_attempts = u32::try_from(n).unwrap_or(u32::MAX);
        }
        config.errors = vars.into_problems();
        config
    }

    /// Sets the account or contract that gets paid.
    pub fn recipient(mut self, address: impl Into<String>) -> Self {
        self.recipient = Some(address.into());
        self
    }

    /// Sets the network.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Sets the Stellar RPC endpoint.
    pub fn rpc_url(mut self, url: impl Into<String>) -> Self {
        self.rpc_url = Some(url.into());
        self
    }

    /// Sets the SEP-41 token contract and its decimals.
    pub fn token(mut self, contract: impl Into<String>, decimals: u8) -> Self {
        self.token = Some(contract.into());
        self.decimals = decimals;
        self
    }

    /// Sets the currency the token is denominated in.
    pub fn currency(mut self, code: impl Into<String>) -> Self {
        self.currency = code.into();
        self
    }

    /// Sponsors the network fees from the account of this `S…` seed.
    pub fn fee_payer(mut self, secret: impl Into<String>) -> Self {
        self.fee_payer_secret = Some(secret.into());
        self
    }

    /// Caps a sponsored transaction's fee (stroops).
    pub fn max_fee(mut self, stroops: u32) -> Self {
        self.max_fee = stroops;
        self
    }

    /// Sets the modes offered.
    pub fn modes(mut self, modes: impl IntoIterator<Item = Mode>) -> Self {
        self.modes = Some(modes.into_iter().collect());
        self
    }

    /// Sets how a submitted transaction is awaited.
    pub fn polling(mut self, interval: Duration, attempts: u32) -> Self {
        self.poll_interval = interval;
        self.poll_attempts = attempts;
        self
    }

    /// Sets the timeout of each RPC call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A sponsored transaction this process submitted and has not yet seen
/// settled: a retry of the same credential finds it instead of building a
/// second one.
#[derive(Debug, Clone)]
struct InFlight {
    envelope: String,
    hash: String,
    max_time: u64,
}

/// The Stellar payment rail.
///
/// ```no_run
/// use mpp_runtime::rails::stellar::{StellarConfig, StellarRail};
/// let rail = StellarRail::new(StellarConfig::from_env()).expect("Stellar configuration");
/// ```
pub struct StellarRail {
    config: StellarConfig,
    network: Network,
    token: [u8; 32],
    token_text: String,
    recipient: ScAddress,
    recipient_text: String,
    currency: Currency,
    modes: Vec<Mode>,
    fee_payer: Option<Keypair>,
    rpc: StellarRpc,
    network_checked: tokio::sync::OnceCell<()>,
    in_flight: Mutex<HashMap<(String, i64), InFlight>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for StellarRail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StellarRail")
            .field("config", &self.config)
            .field(
                "fee_payer",
                &self.fee_payer.as_ref().map(Keypair::public_key),
            )
            .finish_non_exhaustive()
    }
}

impl StellarRail {
    /// A rail with these settings; every setting problem is reported at
    /// once, saying what to set.
    pub fn new(config: StellarConfig) -> Result<Self, RailError> {
        let mut errors = config.errors.clone();
        let network = config.network;
        let recipient = match &config.recipient {
            None => {
                errors.push(
                    "STELLAR_RECIPIENT is not set: set it to the account (G…) that receives payments (it needs a trustline to the token's asset)"
                        .to_owned(),
                );
                None
            }
            Some(text) => match keys::parse_address(text) {
                Ok(address) => Some((address, text.clone())),
                Err(e) => {
                    errors.push(format!("STELLAR_RECIPIENT: {e}"));
                    None
                }
            },
        };
        let token_text = config
            .token
            .clone()
            .unwrap_or_else(|| network.usdc().to_owned());
        let token = keys::parse_contract(&token_text)
            .map_err(|e| errors.push(format!("STELLAR_TOKEN: {e}")))
            .ok();
        let currency = Currency::from_code(&config.currency)
            .map_err(|_| {
                errors.push(format!(
                    "STELLAR_CURRENCY must be an ISO 4217 code such as USD, not `{}`",
                    config.currency
                ));
            })
            .ok();
        let fee_payer = match &config.fee_payer_secret {
            None => None,
            Some(secret) => match Keypair::from_secret(secret) {
                Ok(keys) => Some(keys),
                Err(e) => {
                    errors.push(format!("STELLAR_FEE_PAYER_SECRET: {e}"));
                    None
                }
            },
        };
        if let (Some(keys), Some((ScAddress::Account(_), text))) = (&fee_payer, &recipient)
            && keys.public_key() == *text
        {
            errors.push(
                "STELLAR_FEE_PAYER_SECRET is the recipient's own key; use a separate fee account"
                    .to_owned(),
            );
        }
        let sponsored = config.fee_payer_secret.is_some();
        let modes = config.modes.clone().unwrap_or_else(|| {
            if sponsored {
                vec![Mode::Pull]
            } else {
                vec![Mode::Pull, Mode::Push]
            }
        });
        if modes.is_empty() {
            errors.push("STELLAR_MODES is empty; offer `pull`, `push` or both".to_owned());
        }
        if sponsored && modes.contains(&Mode::Push) {
            errors.push(
                "STELLAR_MODES offers `push`, which cannot be sponsored: with STELLAR_FEE_PAYER_SECRET set, offer `pull` only"
                    .to_owned(),
            );
        }
        let rpc_url = match (&config.rpc_url, network) {
            (Some(url), _) => Some(url.clone()),
            (None, Network::Testnet) => Some(TESTNET_RPC_URL.to_owned()),
            (None, Network::Pubnet) => {
                errors.push(
                    "STELLAR_RPC_URL is not set: on stellar:pubnet set it to your Stellar RPC provider's endpoint"
                        .to_owned(),
                );
                None
            }
        };
        let rpc = rpc_url.and_then(|url| {
            StellarRpc::new(&url, config.timeout)
                .map_err(|e| errors.push(format!("STELLAR_RPC_URL: {e}")))
                .ok()
        });
        match (recipient, token, currency, rpc) {
            (Some((recipient, recipient_text)), Some(token), Some(currency), Some(rpc))
                if errors.is_empty() =>
            {
                Ok(Self {
                    config,
                    network,
                    token,
                    token_text,
                    recipient,
                    recipient_text,
                    currency,
                    modes,
                    fee_payer,
                    rpc,
                    network_checked: tokio::sync::OnceCell::new(),
                    in_flight: Mutex::new(HashMap::new()),
                    clock: Arc::new(SystemClock),
                })
            }
            _ => Err(RailError::new(format!(
                "the Stellar rail is misconfigured: {}",
                errors.join("; ")
            ))),
        }
    }

    /// A rail from the `STELLAR_*` environment variables.
    pub fn from_env() -> Result<Self, RailError> {
        Self::new(StellarConfig::from_env())
    }

    /// Uses another clock (tests): for the challenge lifetime in ledgers
    /// and the age of pushed transactions.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The settings.
    pub fn config(&self) -> &StellarConfig {
        &self.config
    }

    /// The fee account's address (`G…`), when fees are sponsored: fund it
    /// with XLM.
    pub fn fee_payer_address(&self) -> Option<String> {
        self.fee_payer.as_ref().map(Keypair::public_key)
    }

    fn offers(&self, mode: Mode) -> bool {
        self.modes.contains(&mode)
    }

    fn credential_types(&self) -> Vec<Value> {
        let mut types = Vec::new();
        if self.offers(Mode::Pull) {
            types.push(Value::from("transaction"));
        }
        if self.offers(Mode::Push) {
            types.push(Value::from("signedHash"));
        }
        types
    }
}

impl Rail for StellarRail {
    fn method(&self) -> &str {
        METHOD
    }

    fn check_config(&self) -> Result<(), RailError> {
        if let Some(address) = self.fee_payer_address() {
            tracing::info!(
                fee_payer = %address,
                network = self.network.caip2(),
                "Stellar fees are sponsored; keep this account funded with XLM"
            );
        }
        Ok(())
    }

    fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError> {
        if price.amount.currency() != self.currency {
            return Err(RailError::new(format!(
                "the Stellar token is denominated in {}, but this route is priced in {}; price it in {} or set STELLAR_CURRENCY",
                self.currency.code(),
                price.amount.currency().code(),
                self.currency.code()
            )));
        }
        let units = price
            .amount
            .to_base_units(self.config.decimals)
            .map_err(|e| RailError::new(format!("{e}")))?;
        if i128::try_from(units).is_err() {
            return Err(RailError::new(format!(
                "{price} does not fit the token's i128 amounts"
            )));
        }
        let mut details = Map::new();
        details.insert("network".into(), Value::from(self.network.caip2()));
        details.insert(
            "credentialTypes".into(),
            Value::Array(self.credential_types()),
        );
        if self.fee_payer.is_some() {
            details.insert("feePayer".into(), Value::Bool(true));
        }
        let mut request = Map::new();
        request.insert("amount".into(), Value::String(units.to_string()));
        request.insert("currency".into(), Value::String(self.token_text.clone()));
        request.insert("methodDetails".into(), Value::Object(details));
        request.insert(
            "recipient".into(),
            Value::String(self.recipient_text.clone()),
        );
        Ok(request)
    }

    fn settle(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        Box::pin(async move {
            match request.payload.get("type").and_then(Value::as_str) {
                Some("transaction") if self.offers(Mode::Pull) => self.settle_pull(&request).await,
                Some("signedHash") if self.offers(Mode::Push) => self.settle_push(&request).await,
                Some("transaction") => Err(SettleError::verification_failed(
                    "transaction (pull) credentials are not accepted here; submit the payment and send {\"type\": \"signedHash\"}",
                )),
                Some("signedHash") if self.fee_payer.is_some() => {
                    Err(SettleError::verification_failed(
                        "this server sponsors fees (feePayer), so it only accepts pull credentials: send {\"type\": \"transaction\"} with your signed authorization entry",
                    ))
                }
                Some("signedHash") => Err(SettleError::verification_failed(
                    "hash (push) credentials are not accepted here; send the signed transaction",
                )),
                Some("hash") => Err(SettleError::verification_failed(
                    "unsigned hash credentials are not accepted: send {\"type\": \"signedHash\", \"hash\", \"sourceSignature\"} (the payer's signature over \"{challenge id}:{hash}\")",
                )),
                _ => Err(SettleError::invalid_payload(
                    "expected {\"type\": \"transaction\", \"transaction\": \"<base64 XDR>\"} or {\"type\": \"signedHash\", \"hash\": \"<hex>\", \"sourceSignature\": \"<hex>\"}",
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_usdc_contracts_are_valid_strkeys() {
        for network in [Network::Testnet, Network::Pubnet] {
            assert!(keys::parse_contract(network.usdc()).is_ok(), "{network:?}");
            assert_eq!(Network::from_caip2(network.caip2()), Some(network));
        }
        assert_eq!(
            transfer::to_hex(&Network::Pubnet.id()),
            "7ac33997544e3175d266bd022439b22cdb16508c01163f26e5cb2a3e1045a979"
        );
    }
}
