//! The EVM rail (`method = "evm"`, intent `charge`): stablecoin payments on
//! any EVM chain with EIP-3009 `transferWithAuthorization`, in the wire
//! format of the stock mppx `evm.charge` method.
//!
//! The challenge asks for `{amount (base units), currency (the token),
//! recipient, methodDetails: {chainId, credentialTypes: ["authorization"],
//! decimals}}`. The payer signs an EIP-712 `TransferWithAuthorization` whose
//! `nonce` is `keccak256(challenge.id ‖ challenge.realm)` ([`challenge_nonce`])
//! and sends `{type: "authorization", from, to, value, validAfter,
//! validBefore, nonce, signature}`. The rail checks it offline (recipient,
//! exact amount, challenge binding, validity window, signature, `source`),
//! then relays it: it simulates `transferWithAuthorization` with `eth_call`,
//! sends it from its own relayer account (which pays the gas), waits for the
//! receipt and trusts only a successful transaction in which the token logged
//! `AuthorizationUsed(from, nonce)` and `Transfer(from, recipient, amount)`.
//! The receipt's reference is the transaction hash.
//!
//! A retry of a credential whose transfer already happened (the first try
//! timed out after sending) is not sent again: the rail finds the earlier
//! transaction from the token's `AuthorizationUsed` log and verifies it.
//! One authorization pays for one challenge: its nonce is bound to the
//! challenge, the token refuses to use it twice, and the rail records
//! `from:nonce` in the gate's [`Proofs`](crate::Proofs) ledger.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EVM_RECIPIENT` | the address that receives payments | none: a startup error |
//! | `EVM_RPC_URL` | the chain's JSON-RPC endpoint (http or https) | none: a startup error |
//! | `EVM_CHAIN_ID` | the chain id (checked against the endpoint's) | none: a startup error |
//! | `EVM_TOKEN` | the EIP-3009 token contract (e.g. USDC) | none: a startup error |
//! | `EVM_DECIMALS` | the token's decimals (checked against `decimals()`) | 6 |
//! | `EVM_CURRENCY` | the fiat currency the token tracks; routes priced in another currency are a startup error | `USD` |
//! | `EVM_TOKEN_NAME` | the token's EIP-712 domain name | read once from `name()` |
//! | `EVM_TOKEN_VERSION` | the token's EIP-712 domain version | read once from `version()` |
//! | `EVM_RELAYER_KEY` | `0x` private key of the account that sends the transfers and pays their gas | none: 402s are issued, settlement fails clearly |
//! | `EVM_CONFIRMATIONS` | blocks, including the transaction's own, before a payment counts | 1 |
//! | `EVM_POLL_INTERVAL_MS` | pause between two receipt polls | 500 |
//! | `EVM_POLL_ATTEMPTS` | receipt polls before settlement answers 500 (retry the same credential) | 60 |
//!
//! ```no_run
//! use mpp_runtime::rails::evm::{EvmConfig, EvmRail};
//! use mpp_runtime::{Config, Gate};
//!
//! // EVM_RPC_URL, EVM_CHAIN_ID, EVM_TOKEN and EVM_RELAYER_KEY from the
//! // environment; the recipient and confirmations set in code.
//! let rail = EvmRail::new(
//!     EvmConfig::from_env()
//!         .recipient("0x742d35Cc6634c0532925a3b844bC9e7595F8fE00")
//!         .confirmations(2),
//! )?;
//! let config = Config::builder()
//!     .secret("a-secret-of-at-least-thirty-two-bytes!")
//!     .realm("api.example.com")
//!     .build()?;
//! let gate = Gate::builder(config).rail(rail).build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod authorization;
mod settle;
mod token;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest;
use serde_json::{Map, Value};

use crate::BoxFuture;
use crate::clock::{Clock, SystemClock};
use crate::price::Currency;
use crate::rail::{Price, Rail, RailError, SettleError, SettleRequest, Settlement};
use crate::rails::chain::{Rpc, WaitPolicy, parse_address, redact_url};
use crate::rails::env::EnvVars;

/// The method name on the wire.
pub const METHOD: &str = "evm";

/// Decimals assumed when `EVM_DECIMALS` is not set (USDC's).
pub const DEFAULT_DECIMALS: u8 = 6;

/// The nonce a payer must sign for a challenge: `keccak256` of the UTF-8
/// bytes of the challenge id immediately followed by the realm (no
/// separator), as `0x` and 64 lowercase hex digits.
///
/// ```
/// use mpp_runtime::rails::evm::challenge_nonce;
/// assert_eq!(
///     challenge_nonce("challenge-123", "api.example.com"),
///     "0x6e75bcb5df1f8022ad4eecac5da5620c2c1db72d885bca54897f41a782c65b3a"
/// );
/// ```
pub fn challenge_nonce(challenge_id: &str, realm: &str) -> String {
    format!("{:#x}", authorization::nonce_for(challenge_id, realm))
}

/// EVM rail settings.
#[derive(Clone)]
pub struct EvmConfig {
    recipient: Option<String>,
    rpc_url: Option<String>,
    chain_id: Option<u64>,
    token: Option<String>,
    decimals: u8,
    currency: Currency,
    token_name: Option<String>,
    token_version: Option<String>,
    relayer_key: Option<String>,
    confirmations: u64,
    poll_interval: Duration,
    poll_attempts: u32,
    timeout: Duration,
    /// Environment values that could not be read (reported by
    /// [`EvmRail::new`]).
    problems: Vec<String>,
}

impl fmt::Debug for EvmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmConfig")
            .field("recipient", &self.recipient)
            .field("rpc_url", &self.rpc_url.as_deref().map(redact_url))
            .field("chain_id", &self.chain_id)
            .field("token", &self.token)
            .field("decimals", &self.decimals)
            .field("currency", &self.currency)
            .field("token_name", &self.token_name)
            .field("token_version", &self.token_version)
            .field(
                "relayer_key",
                &self.relayer_key.as_ref().map(|_| "<redacted>"),
            )
            .field("confirmations", &self.confirmations)
            .field("poll_interval", &self.poll_interval)
            .field("poll_attempts", &self.poll_attempts)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for EvmConfig {
    fn default() -> Self {
        let policy = WaitPolicy::default();
        Self {
            recipient: None,
            rpc_url: None,
            chain_id: None,
            token: None,
            decimals: DEFAULT_DECIMALS,
            currency: Currency::USD,
            token_name: None,
            token_version: None,
            relayer_key: None,
            confirmations: policy.confirmations,
            poll_interval: policy.poll_interval,
            poll_attempts: policy.attempts,
            timeout: Duration::from_secs(15),
            problems: Vec::new(),
        }
    }
}

impl EvmConfig {
    /// Settings from the `EVM_*` environment variables.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings read through an environment-like function. Values that
    /// cannot be read (a chain id that is not a number, …) are reported by
    /// [`EvmRail::new`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let vars = EnvVars::new(lookup);
        let get = |name: &str| vars.text(name);
        let mut config = Self {
            recipient: get("EVM_RECIPIENT"),
            rpc_url: get("EVM_RPC_URL"),
            token: get("EVM_TOKEN"),
            token_name: get("EVM_TOKEN_NAME"),
            token_version: get("EVM_TOKEN_VERSION"),
            relayer_key: get("EVM_RELAYER_KEY"),
            ..Self::default()
        };
        let number = |name: &str, what: &str| vars.number(name, what);
        config.chain_id = number("EVM_CHAIN_ID", "a decimal chain id (e.g. 8453)");
        if let Some(decimals) = number("EVM_DECIMALS", "the token's decimals (e.g. 6)") {
            match u8::try_from(decimals) {
                Ok(d) => config.decimals = d,
                Err(_) => vars.problem(format!("EVM_DECIMALS is too large: {decimals}")),
            }
        }
        if let Some(n) = number("EVM_CONFIRMATIONS", "a number of blocks") {
            config.confirmations = n;
        }
        if let Some(ms) = number("EVM_POLL_INTERVAL_MS", "milliseconds") {
            config.poll_interval = Duration::from_millis(ms);
        }
        if let Some(n) = number("EVM_POLL_ATTEMPTS", "a number of polls") {
            config.poll_attempts = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(code) = get("EVM_CURRENCY") {
            match Currency::from_code(&code) {
                Ok(currency) => config.currency = currency,
                Err(e) => vars.problem(format!("EVM_CURRENCY: {e}")),
            }
        }
        config.problems = vars.into_problems();
        config
    }

    /// Sets the address that receives payments.
    pub fn recipient(mut self, address: impl Into<String>) -> Self {
        self.recipient = Some(address.into());
        self
    }

    /// Sets the chain's JSON-RPC endpoint.
    pub fn rpc_url(mut self, url: impl Into<String>) -> Self {
        self.rpc_url = Some(url.into());
        self
    }

    /// Sets the chain id.
    pub fn chain_id(mut self, chain_id: u64) -> Self {
        self.chain_id = Some(chain_id);
        self
    }

    /// Sets the EIP-3009 token contract.
    pub fn token(mut self, address: impl Into<String>) -> Self {
        self.token = Some(address.into());
        self
    }

    /// Sets the token's decimals.
    pub fn decimals(mut self, decimals: u8) -> Self {
        self.decimals = decimals;
        self
    }

    /// Sets the fiat currency the token is denominated in.
    pub fn currency(mut self, currency: Currency) -> Self {
        self.currency = currency;
        self
    }

    /// Sets the token's EIP-712 domain name and version (otherwise read
    /// from the token's `name()` and `version()`).
    pub fn token_domain(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.token_name = Some(name.into());
        self.token_version = Some(version.into());
        self
    }

    /// Sets the relayer's `0x` private key (it sends the transfers and pays
    /// their gas).
    pub fn relayer_key(mut self, key: impl Into<String>) -> Self {
        self.relayer_key = Some(key.into());
        self
    }

    /// Sets how many blocks, including the transaction's own, must exist
    /// before a payment counts.
    pub fn confirmations(mut self, blocks: u64) -> Self {
        self.confirmations = blocks;
        self
    }

    /// Sets the pause between two receipt polls.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets how many times the receipt is polled before settlement gives up
    /// (with a 500: the payer retries the same credential).
    pub fn poll_attempts(mut self, attempts: u32) -> Self {
        self.poll_attempts = attempts;
        self
    }

    /// Sets the timeout of each JSON-RPC call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The receipt wait policy these settings describe.
    pub fn wait_policy(&self) -> WaitPolicy {
        WaitPolicy {
            poll_interval: self.poll_interval,
            attempts: self.poll_attempts,
            confirmations: self.confirmations,
        }
    }
}

/// The relayer account.
#[derive(Clone)]
struct Relayer {
    signer: PrivateKeySigner,
    url: reqwest::Url,
    http: reqwest::Client,
}

impl Relayer {
    fn address(&self) -> Address {
        self.signer.address()
    }
}

/// The token's EIP-712 domain parts, from the settings or read once.
#[derive(Debug, Clone)]
struct TokenFacts {
    domain: alloy::sol_types::Eip712Domain,
}

/// The EVM (EIP-3009) payment rail.
///
/// ```no_run
/// use mpp_runtime::rails::evm::EvmRail;
/// let rail = EvmRail::from_env().expect("EVM configuration");
/// ```
pub struct EvmRail {
    config: EvmConfig,
    recipient: Option<Address>,
    token: Option<Address>,
    rpc: Option<Rpc>,
    relayer: Option<Relayer>,
    facts: tokio::sync::OnceCell<TokenFacts>,
    /// Transfers sent but not yet seen confirmed, by `(from, nonce)`: a
    /// retry waits for them instead of sending again.
    inflight: Mutex<HashMap<(Address, B256), B256>>,
    clock: Arc<dyn Clock>,
    warn_missing: Once,
}

impl fmt::Debug for EvmRail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmRail")
            .field("config", &self.config)
            .field("relayer", &self.relayer.as_ref().map(Relayer::address))
            .finish_non_exhaustive()
    }
}

impl EvmRail {
    /// A rail with these settings. Malformed values (an address that is
    /// not one, an unreadable relayer key, …) are errors; missing required
    /// ones are reported by [`Rail::check_config`] at startup. Without a
    /// relayer key it still builds: it issues 402s and refuses to settle,
    /// saying what to set.
    pub fn new(config: EvmConfig) -> Result<Self, RailError> {
        if !config.problems.is_empty() {
            return Err(RailError::new(config.problems.join("; ")));
        }
        let recipient = config
            .recipient
            .as_deref()
            .map(|a| parse_address("EVM_RECIPIENT", a))
            .transpose()?;
        let token = config
            .token
            .as_deref()
            .map(|a| parse_address("EVM_TOKEN", a))
            .transpose()?;
        if config.chain_id == Some(0) {
            return Err(RailError::new("EVM_CHAIN_ID must not be 0"));
        }
        let rpc = config
            .rpc_url
            .as_deref()
            .map(|url| {
                Rpc::new(url, config.timeout)
                    .map_err(|e| RailError::new(format!("EVM_RPC_URL: {e}")))
            })
            .transpose()?;
        let relayer = match (&config.relayer_key, &config.rpc_url) {
            (Some(key), Some(url)) => {
                let signer = PrivateKeySigner::from_str(key.trim()).map_err(|_| {
                    RailError::new(
                        "EVM_RELAYER_KEY is not a valid 0x-prefixed secp256k1 private key (32 bytes of hex)",
                    )
                })?;
                let url = url
                    .parse()
                    .map_err(|e| RailError::new(format!("EVM_RPC_URL is not a URL: {e}")))?;
                let http = reqwest::Client::builder()
                    .timeout(config.timeout)
                    .build()
                    .map_err(|e| RailError::new(format!("cannot build the RPC client: {e}")))?;
                Some(Relayer { signer, url, http })
            }
            _ => None,
        };
        Ok(Self {
            config,
            recipient,
            token,
            rpc,
            relayer,
            facts: tokio::sync::OnceCell::new(),
            inflight: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
            warn_missing: Once::new(),
        })
    }

    /// A rail from the `EVM_*` environment variables.
    pub fn from_env() -> Result<Self, RailError> {
        Self::new(EvmConfig::from_env())
    }

    /// Uses another clock for authorization validity windows (tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The settings.
    pub fn config(&self) -> &EvmConfig {
        &self.config
    }

    /// The relayer's address, when a key is configured (fund it with the
    /// chain's gas token).
    pub fn relayer_address(&self) -> Option<String> {
        self.relayer.as_ref().map(|r| r.address().to_checksum(None))
    }

    /// The settings every challenge needs, or what to set.
    fn terms(&self) -> Result<(Address, Address, u64), RailError> {
        let mut missing = Vec::new();
        if self.recipient.is_none() {
            missing.push("EVM_RECIPIENT (the address that receives payments)");
        }
        if self.config.rpc_url.is_none() {
            missing.push("EVM_RPC_URL (the chain's JSON-RPC endpoint)");
        }
        if self.config.chain_id.is_none() {
            missing.push("EVM_CHAIN_ID (e.g. 8453 for Base)");
        }
        if self.token.is_none() {
            missing.push("EVM_TOKEN (the EIP-3009 token contract, e.g. USDC)");
        }
        match (self.recipient, self.token, self.config.chain_id) {
            (Some(recipient), Some(token), Some(chain_id)) if missing.is_empty() => {
                Ok((recipient, token, chain_id))
            }
            _ => Err(RailError::new(format!(
                "the evm rail is not configured: set {}",
                missing.join(", ")
            ))),
        }
    }

    fn relayer(&self) -> Result<&Relayer, SettleError> {
        self.relayer.as_ref().ok_or_else(|| {
            self.warn_missing.call_once(|| {
                tracing::error!(
                    "an EVM payment arrived but EVM_RELAYER_KEY is not set; it cannot settle"
                );
            });
            SettleError::internal(
                "EVM payments are not configured on this server (EVM_RELAYER_KEY is missing).",
            )
        })
    }
}

impl Rail for EvmRail {
    fn method(&self) -> &str {
        METHOD
    }

    fn check_config(&self) -> Result<(), RailError> {
        self.terms()?;
        if self.relayer.is_none() {
            tracing::warn!(
                "EVM_RELAYER_KEY is not set: EVM challenges are issued, but payments cannot settle until it is"
            );
        }
        Ok(())
    }

    fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError> {
        let (recipient, token, chain_id) = self.terms()?;
        let currency = price.amount.currency();
        if currency != self.config.currency {
            return Err(RailError::new(format!(
                "the evm rail's token is denominated in {} (EVM_CURRENCY), but this route is priced in {}",
                self.config.currency, currency
            )));
        }
        let amount = price
            .amount
            .to_base_units(self.config.decimals)
            .map_err(|e| RailError::new(format!("cannot price {price} in the token: {e}")))?;
        let mut details = Map::new();
        details.insert("chainId".into(), Value::from(chain_id));
        details.insert(
            "credentialTypes".into(),
            Value::Array(vec![Value::String("authorization".into())]),
        );
        details.insert("decimals".into(), Value::from(self.config.decimals));
        let mut request = Map::new();
        request.insert("amount".into(), Value::String(amount.to_string()));
        request.insert("currency".into(), Value::String(token.to_checksum(None)));
        request.insert("methodDetails".into(), Value::Object(details));
        request.insert(
            "recipient".into(),
            Value::String(recipient.to_checksum(None)),
        );
        Ok(request)
    }

    fn settle(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        Box::pin(async move { self.settle_authorization(&request).await })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::price::{Amount, parse_amount};

    const RECIPIENT: &str = "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00";
    const TOKEN: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

    fn env(vars: &[(&str, &str)]) -> EvmConfig {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        EvmConfig::from_lookup(|name| vars.get(name).cloned())
    }

    fn full() -> Vec<(&'static str, &'static str)> {
        vec![
            ("EVM_RECIPIENT", RECIPIENT),
            ("EVM_RPC_URL", "https://rpc.example.com/v2/secret-api-key"),
            ("EVM_CHAIN_ID", "84532"),
            ("EVM_TOKEN", TOKEN),
        ]
    }

    fn price(amount: &str, currency: &str) -> Price {
        let amount: Amount = parse_amount(amount, Currency::from_code(currency).unwrap()).unwrap();
        Price {
            amount,
            grants: 1,
            scope: "test".into(),
            description: None,
        }
    }

    #[test]
    fn the_challenge_request_is_mppx_s_shape() {
        let rail = EvmRail::new(env(&full())).unwrap();
        rail.check_config().unwrap();
        let request = rail.challenge_request(&price("1.00", "USD")).unwrap();
        assert_eq!(
            Value::Object(request),
            serde_json::json!({
                "amount": "1000000",
                "currency": TOKEN,
                "methodDetails": {"chainId": 84532, "credentialTypes": ["authorization"], "decimals": 6},
                "recipient": RECIPIENT,
            })
        );
        // Lowercase settings are emitted checksummed.
        let mut vars = full();
        let lower_token = TOKEN.to_lowercase();
        let lower_recipient = RECIPIENT.to_lowercase();
        vars[0].1 = &lower_recipient;
        vars[3].1 = &lower_token;
        vars.push(("EVM_DECIMALS", "18"));
        let rail = EvmRail::new(env(&vars)).unwrap();
        let request = rail.challenge_request(&price("0.05", "usd")).unwrap();
        assert_eq!(request["amount"], "50000000000000000");
        assert_eq!(request["currency"], TOKEN);
        assert_eq!(request["recipient"], RECIPIENT);
    }

    #[test]
    fn another_currency_or_too_fine_a_price_is_a_startup_error() {
        let rail = EvmRail::new(env(&full())).unwrap();
        let error = rail.challenge_request(&price("1.00", "EUR")).unwrap_err();
        assert!(error.0.contains("EVM_CURRENCY"), "{error}");
        let mut vars = full();
        vars.push(("EVM_CURRENCY", "eur"));
        let rail = EvmRail::new(env(&vars)).unwrap();
        rail.challenge_request(&price("1.00", "EUR")).unwrap();
        let mut vars = full();
        vars.push(("EVM_DECIMALS", "0"));
        let rail = EvmRail::new(env(&vars)).unwrap();
        assert!(rail.challenge_request(&price("1.50", "USD")).is_err());
    }

    #[test]
    fn missing_settings_say_what_to_set() {
        let rail = EvmRail::new(env(&[])).unwrap();
        let error = rail.check_config().unwrap_err().0;
        for name in ["EVM_RECIPIENT", "EVM_RPC_URL", "EVM_CHAIN_ID", "EVM_TOKEN"] {
            assert!(error.contains(name), "{error}");
        }
        assert!(rail.challenge_request(&price("1.00", "USD")).is_err());
        let mut vars = full();
        vars.remove(0);
        let error = EvmRail::new(env(&vars))
            .unwrap()
            .check_config()
            .unwrap_err()
            .0;
        assert!(
            error.contains("EVM_RECIPIENT") && !error.contains("EVM_TOKEN"),
            "{error}"
        );
    }

    #[test]
    fn malformed_settings_are_refused_without_echoing_the_key() {
        for (name, value) in [
            ("EVM_RECIPIENT", "0x742d35cc6634c0532925a3b844bc9e7595f8fe"),
            (
                "EVM_RECIPIENT",
                "0x742D35Cc6634c0532925a3b844bC9e7595F8fE00",
            ),
            (
                "EVM_RECIPIENT",
                "0x0000000000000000000000000000000000000000",
            ),
            ("EVM_TOKEN", "usdc"),
            ("EVM_CHAIN_ID", "base"),
            ("EVM_CHAIN_ID", "0"),
            ("EVM_DECIMALS", "300"),
            ("EVM_CURRENCY", "USX"),
            ("EVM_RPC_URL", "ws://127.0.0.1:8545"),
            ("EVM_POLL_ATTEMPTS", "-1"),
            ("EVM_RELAYER_KEY", "0xnot-a-secret-key"),
        ] {
            let mut vars: Vec<_> = full().into_iter().filter(|(k, _)| *k != name).collect();
            vars.push((name, value));
            let error = EvmRail::new(env(&vars)).unwrap_err().0;
            assert!(error.contains(name), "{name}={value}: {error}");
            if name == "EVM_RELAYER_KEY" {
                assert!(!error.contains(value), "{error}");
            }
        }
    }

    #[test]
    fn debug_redacts_the_key_and_the_rpc_path() {
        let mut vars = full();
        vars.push((
            "EVM_RELAYER_KEY",
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        ));
        let rail = EvmRail::new(env(&vars)).unwrap();
        let shown = format!("{rail:?}");
        assert!(!shown.contains("ac0974bec"), "{shown}");
        assert!(!shown.contains("secret-api-key"), "{shown}");
        assert!(shown.contains("rpc.example.com"), "{shown}");
        assert_eq!(
            rail.relayer_address().as_deref(),
            Some("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert_eq!(redact_url("http://user:pw@host:8545"), "http://host:8545");
    }

    #[test]
    fn settings_come_from_the_environment() {
        let mut vars = full();
        vars.extend([
            ("EVM_CONFIRMATIONS", "3"),
            ("EVM_POLL_INTERVAL_MS", "250"),
            ("EVM_POLL_ATTEMPTS", "8"),
            ("EVM_TOKEN_NAME", "USDC"),
            ("EVM_TOKEN_VERSION", "2"),
        ]);
        let config = env(&vars);
        assert_eq!(
            config.wait_policy(),
            WaitPolicy {
                poll_interval: Duration::from_millis(250),
                attempts: 8,
                confirmations: 3
            }
        );
        assert_eq!(config.token_name.as_deref(), Some("USDC"));
        assert_eq!(config.chain_id, Some(84532));
        assert_eq!(
            challenge_nonce("challenge-123", "api.example.com"),
            "0x6e75bcb5df1f8022ad4eecac5da5620c2c1db72d885bca54897f41a782c65b3a"
        );
    }
}
