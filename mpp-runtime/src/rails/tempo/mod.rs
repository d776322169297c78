//! The Tempo rail (`method = "tempo"`, intent `charge`): stablecoin
//! payments on Tempo, in the wire format of the stock mppx `tempo.charge`
//! method.
//!
//! The challenge asks for `{amount (token base units), currency (the TIP-20
//! token), recipient, methodDetails: {chainId, supportedModes?}}`. The payer
//! pays with TIP-20 `transferWithMemo`, the memo binding the transfer to the
//! challenge and realm ([`memo`]), in one of two modes:
//!
//! - **pull** (`{"type": "transaction", "signature": "0x76…"}`): the payer
//!   signs a Tempo transaction and the server checks it offline (chain,
//!   calls, amount, recipient, memo, validity, no fee sponsorship),
//!   simulates it, broadcasts it, waits for its receipt and checks the
//!   transfer logs again;
//! - **push** (`{"type": "hash", "hash": "0x…"}`): the payer broadcast it
//!   already; the server fetches the receipt and checks its logs.
//!
//! Either way a transaction hash pays once ([`Proofs`](crate::Proofs)) and
//! the receipt's reference is that hash. Fee sponsorship (`feePayer`) is not
//! offered: sponsored (`0x78`) transactions are refused with a message
//! saying so.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `TEMPO_RECIPIENT` | the address that gets paid | none: startup error |
//! | `TEMPO_RPC_URL` | the chain's JSON-RPC endpoint | [`TESTNET_RPC_URL`] |
//! | `TEMPO_CHAIN_ID` | the chain id (mainnet 4217) | [`TESTNET_CHAIN_ID`] |
//! | `TEMPO_TOKEN` | the TIP-20 token prices are paid in | [`PATH_USD`] |
//! | `TEMPO_DECIMALS` | the token's decimals | 6 |
//! | `TEMPO_CURRENCY` | the currency the token is denominated in; routes must be priced in it | `USD` |
//! | `TEMPO_MODES` | modes offered, `pull,push` (omitted from challenges when both) | both |
//! | `TEMPO_CONFIRMATIONS` | blocks a payment needs, its own included | 1 |
//! | `TEMPO_POLL_INTERVAL_MS` | pause between receipt polls | 500 |
//! | `TEMPO_POLL_ATTEMPTS` | receipt polls before giving up (500, retry the same credential) | 60 |

pub mod memo;
pub mod pull;
pub mod transfer;

/// Tempo's own transaction types (`tempo-primitives`), re-exported for
/// wallets and tests that build Tempo transactions.
pub use tempo_primitives;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, U256};
use serde_json::{Map, Value};

use crate::BoxFuture;
use crate::price::Currency;
use crate::rail::{Price, Rail, RailError, SettleError, SettleRequest, Settlement};
use crate::rails::chain::{
    self, ChainReceipt, Rpc, RpcFailure, WaitPolicy, parse_address, redact_url,
};
use crate::rails::env::EnvVars;
use transfer::Expected;

/// Tempo's public testnet (Moderato).
pub const TESTNET_CHAIN_ID: u64 = 42431;
/// Tempo mainnet.
pub const MAINNET_CHAIN_ID: u64 = 4217;
/// The testnet's JSON-RPC endpoint.
pub const TESTNET_RPC_URL: &str = "https://rpc.moderato.tempo.xyz";
/// pathUSD, the USD stablecoin predeployed on Tempo networks (6 decimals).
pub const PATH_USD: &str = "0x20c0000000000000000000000000000000000000";

/// How long a consumed transaction hash is remembered.
const PROOF_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a payer may pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The payer signs, the server broadcasts (`type: "transaction"`).
    Pull,
    /// The payer broadcasts and sends the hash (`type: "hash"`).
    Push,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
        }
    }
}

/// Tempo rail settings.
#[derive(Clone)]
pub struct TempoConfig {
    recipient: Option<String>,
    rpc_url: String,
    chain_id: u64,
    token: String,
    decimals: u8,
    currency: String,
    modes: Vec<Mode>,
    wait: WaitPolicy,
    timeout: Duration,
    errors: Vec<String>,
}

impl fmt::Debug for TempoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempoConfig")
            .field("recipient", &self.recipient)
            .field("rpc_url", &redact_url(&self.rpc_url))
            .field("chain_id", &self.chain_id)
            .field("token", &self.token)
            .field("decimals", &self.decimals)
            .field("currency", &self.currency)
            .field("modes", &self.modes)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Default for TempoConfig {
    fn default() -> Self {
        Self {
            recipient: None,
            rpc_url: TESTNET_RPC_URL.to_owned(),
            chain_id: TESTNET_CHAIN_ID,
            token: PATH_USD.to_owned(),
            decimals: 6,
            currency: "USD".to_owned(),
            modes: vec![Mode::Pull, Mode::Push],
            wait: WaitPolicy::default(),
            timeout: Duration::from_secs(15),
            errors: Vec::new(),
        }
    }
}

impl TempoConfig {
    /// Settings from the `TEMPO_*` environment variables.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings read through an environment-like function. Unparsable
    /// values are reported by [`TempoRail::new`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let vars = EnvVars::new(lookup);
        let integer = "a non-negative integer";
        let mut config = Self {
            recipient: vars.text("TEMPO_RECIPIENT"),
            ..Self::default()
        };
        if let Some(url) = vars.text("TEMPO_RPC_URL") {
            config.rpc_url = url;
        }
        if let Some(id) = vars.number("TEMPO_CHAIN_ID", integer) {
            config.chain_id = id;
        }
        if let Some(token) = vars.text("TEMPO_TOKEN") {
            config.token = token;
        }
        if let Some(decimals) = vars.number("TEMPO_DECIMALS", integer) {
            match u8::try_from(decimals) {
                Ok(d) if d <= 36 => config.decimals = d,
                _ => vars.problem(format!("TEMPO_DECIMALS must be at most 36, not {decimals}")),
            }
        }
        if let Some(currency) = vars.text("TEMPO_CURRENCY") {
            config.currency = currency;
        }
        if let Some(modes) = vars.text("TEMPO_MODES") {
            let mut parsed = Vec::new();
            for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                match mode {
                    "pull" => parsed.push(Mode::Pull),
                    "push" => parsed.push(Mode::Push),
                    other => vars.problem(format!(
                        "TEMPO_MODES lists `{other}`; use `pull`, `push` or `pull,push`"
                    )),
                }
            }
            config.modes = parsed;
        }
        if let Some(n) = vars.number("TEMPO_CONFIRMATIONS", integer) {
            config.wait.confirmations = n;
        }
        if let Some(ms) = vars.number("TEMPO_POLL_INTERVAL_MS", integer) {
            config.wait.poll_interval = Duration::from_millis(ms);
        }
        if let Some(n) = vars.number("TEMPO_POLL_ATTEMPTS", integer) {
            config.wait.attempts = u32::try_from(n).unwrap_or(u32::MAX);
        }
        config.errors = vars.into_problems();
        config
    }

    /// Sets the address that gets paid.
    pub fn recipient(mut self, address: impl Into<String>) -> Self {
        self.recipient = Some(address.into());
        self
    }

    /// Sets the JSON-RPC endpoint.
    pub fn rpc_url(mut self, url: impl Into<String>) -> Self {
        self.rpc_url = url.into();
        self
    }

    /// Sets the chain id.
    pub fn chain_id(mut self, id: u64) -> Self {
        self.chain_id = id;
        self
    }

    /// Sets the TIP-20 token and its decimals.
    pub fn token(mut self, address: impl Into<String>, decimals: u8) -> Self {
        self.token = address.into();
        self.decimals = decimals;
        self
    }

    /// Sets the currency the token is denominated in (routes must be priced
    /// in it).
    pub fn currency(mut self, code: impl Into<String>) -> Self {
        self.currency = code.into();
        self
    }

    /// Sets the modes offered.
    pub fn modes(mut self, modes: impl IntoIterator<Item = Mode>) -> Self {
        self.modes = modes.into_iter().collect();
        self
    }

    /// Sets how receipts are awaited.
    pub fn wait(mut self, policy: WaitPolicy) -> Self {
        self.wait = policy;
        self
    }

    /// Sets the timeout of each JSON-RPC call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The Tempo payment rail.
///
/// ```no_run
/// use mpp_runtime::rails::tempo::{TempoConfig, TempoRail};
/// let rail = TempoRail::new(TempoConfig::from_env()).expect("Tempo configuration");
/// ```
pub struct TempoRail {
    config: TempoConfig,
    recipient: Address,
    token: Address,
    currency: Currency,
    rpc: Rpc,
}

impl fmt::Debug for TempoRail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempoRail")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TempoRail {
    /// A rail with these settings; every setting problem is reported at
    /// once, saying what to set.
    pub fn new(config: TempoConfig) -> Result<Self, RailError> {
        let mut errors = config.errors.clone();
        let recipient = match &config.recipient {
            None => {
                errors.push(
                    "TEMPO_RECIPIENT is not set: set it to the 0x address that receives Tempo payments"
                        .to_owned(),
                );
                None
            }
            Some(r) => parse_address("TEMPO_RECIPIENT", r)
                .map_err(|e| errors.push(e.0))
                .ok(),
        };
        let token = parse_address("TEMPO_TOKEN", &config.token)
            .map_err(|e| errors.push(e.0))
            .ok();
        let currency = Currency::from_code(&config.currency)
            .map_err(|_| {
                errors.push(format!(
                    "TEMPO_CURRENCY must be an ISO 4217 code such as USD, not `{}`",
                    config.currency
                ));
            })
            .ok();
        if config.modes.is_empty() {
            errors.push("TEMPO_MODES is empty; offer `pull`, `push` or both".to_owned());
        }
        let rpc = Rpc::new(&config.rpc_url, config.timeout)
            .map_err(|e| errors.push(format!("TEMPO_RPC_URL: {}", e.0)))
            .ok();
        match (recipient, token, currency, rpc) {
            (Some(recipient), Some(token), Some(currency), Some(rpc)) if errors.is_empty() => {
                Ok(Self {
                    config,
                    recipient,
                    token,
                    currency,
                    rpc,
                })
            }
            _ => Err(RailError::new(format!(
                "the Tempo rail is misconfigured: {}",
                errors.join("; ")
            ))),
        }
    }

    /// A rail from the `TEMPO_*` environment variables.
    pub fn from_env() -> Result<Self, RailError> {
        Self::new(TempoConfig::from_env())
    }

    /// The settings.
    pub fn config(&self) -> &TempoConfig {
        &self.config
    }

    fn offers(&self, mode: Mode) -> bool {
        self.config.modes.contains(&mode)
    }

    /// What the request asks for, parsed from the request the gate issued.
    fn expected<'a>(&self, request: &'a SettleRequest) -> Result<Expected<'a>, SettleError> {
        let amount = request
            .request
            .str_field("amount")
            .ok_or_else(|| SettleError::internal("the challenge request has no amount"))?;
        Ok(Expected {
            token: self.token,
            recipient: self.recipient,
            amount: U256::from_str_radix(amount, 10)
                .map_err(|_| SettleError::internal("the challenge amount is not an integer"))?,
            realm: &request.challenge.realm,
            challenge_id: &request.challenge.id,
        })
    }

    /// The payer the credential's `source` names, if it names one on this
    /// chain; an error if it names another chain or is malformed.
    fn source_payer(&self, source: Option<&Value>) -> Result<Option<Address>, SettleError> {
        let Some(source) = source else {
            return Ok(None);
        };
        let bad = || {
            SettleError::verification_failed(format!(
                "the credential's source must be `did:pkh:eip155:{}:<address>`",
                self.config.chain_id
            ))
        };
        let text = source.as_str().ok_or_else(bad)?;
        let rest = text.strip_prefix("did:pkh:eip155:").ok_or_else(bad)?;
        let (chain, address) = rest.split_once(':').ok_or_else(bad)?;
        if chain != self.config.chain_id.to_string() {
            return Err(bad());
        }
        chain::address("source", address)
            .map(Some)
            .map_err(|_| bad())
    }

    async fn settle_pull(&self, request: &SettleRequest) -> Result<Settlement, SettleError> {
        let signature = chain::field(&request.payload, "signature")?;
        let raw = chain::hex_bytes("signature", signature)?;
        let expected = self.expected(request)?;
        let payment = pull::check(raw, self.config.chain_id, &expected, unix_now())?;
        if let Some(claimed) = self.source_payer(request.source.as_ref())?
            && claimed != payment.sender
        {
            return Err(SettleError::verification_failed(
                "the credential's source is not the transaction's signer",
            ));
        }
        let reference = format!("{:#x}", payment.hash);
        self.refuse_used(request, &reference).await?;

        // A retry of a credential whose broadcast already went through finds
        // its receipt instead of broadcasting again.
        let receipt = match self.rpc.receipt(payment.hash).await {
            Ok(Some(receipt)) => Some(receipt),
            Ok(None) => None,
            Err(e) => return Err(e.into_settle_error()),
        };
        let receipt = match receipt {
            Some(receipt) => receipt,
            None => {
                self.simulate(&payment).await?;
                match self.rpc.send_raw(&payment.raw).await {
                    Ok(_) => {}
                    Err(RpcFailure::Rejected { message, .. })
                        if message.contains("already known")
                            || message.contains("already imported") => {}
                    Err(e) => return Err(e.into_settle_error()),
                }
                self.await_receipt(payment.hash).await?
            }
        };
        self.accept(
            request,
            &expected,
            &receipt,
            Some(payment.sender),
            reference,
        )
        .await
    }

    async fn settle_push(&self, request: &SettleRequest) -> Result<Settlement, SettleError> {
        let hash = chain::hash32("hash", chain::field(&request.payload, "hash")?)?;
        let expected = self.expected(request)?;
        let claimed = self.source_payer(request.source.as_ref())?;
        let reference = format!("{hash:#x}");
        self.refuse_used(request, &reference).await?;
        let receipt = self.await_receipt(hash).await?;
        let sender = claimed.unwrap_or(receipt.from);
        self.accept(request, &expected, &receipt, Some(sender), reference)
            .await
    }

    async fn refuse_used(
        &self,
        request: &SettleRequest,
        reference: &str,
    ) -> Result<(), SettleError> {
        match request.proofs.is_used("tempo", reference).await {
            Ok(false) => Ok(()),
            Ok(true) => Err(SettleError::verification_failed(format!(
                "transaction {reference} has already paid for another request"
            ))),
            Err(e) => Err(SettleError::internal(format!(
                "the payment store is unavailable: {e}"
            ))),
        }
    }

    /// Runs each call as its sender at the latest block, so a transfer the
    /// payer cannot afford is refused before it is broadcast (and before
    /// the payer pays a fee for a reverting transaction). The calls only
    /// transfer tokens, so running them one by one is faithful enough; the
    /// receipt is checked after inclusion regardless.
    async fn simulate(&self, payment: &pull::SignedPayment) -> Result<(), SettleError> {
        for (to, input) in pull::calls(payment) {
            match self.rpc.call(payment.sender, to, input).await {
                Ok(_) => {}
                Err(RpcFailure::Rejected { message, .. }) => {
                    return Err(SettleError::verification_failed(format!(
                        "the transaction would fail: {message}"
                    )));
                }
                Err(e) => return Err(e.into_settle_error()),
            }
        }
        Ok(())
    }

    async fn await_receipt(
        &self,
        hash: alloy::primitives::B256,
    ) -> Result<ChainReceipt, SettleError> {
        match self.rpc.wait(hash, &self.config.wait).await {
            Ok(Some(receipt)) => Ok(receipt),
            Ok(None) => Err(SettleError::internal(format!(
                "transaction {hash:#x} is not confirmed yet; retry the same credential shortly"
            ))),
            Err(e) => Err(e.into_settle_error()),
        }
    }

    /// Checks a receipt pays the challenge and consumes its hash.
    async fn accept(
        &self,
        request: &SettleRequest,
        expected: &Expected<'_>,
        receipt: &ChainReceipt,
        sender: Option<Address>,
        reference: String,
    ) -> Result<Settlement, SettleError> {
        let payer = verify_receipt(
            receipt.succeeded(),
            &receipt.logs,
            expected,
            sender,
            &reference,
        )?;
        match request.proofs.consume("tempo", &reference, PROOF_TTL).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(SettleError::verification_failed(format!(
                    "transaction {reference} has already paid for another request"
                )));
            }
            // The memo binds this transfer to this challenge alone, so a
            // lost write cannot let it pay twice; the gate burns the
            // challenge.
            Err(e) => {
                tracing::warn!(%e, reference, "could not record a consumed Tempo transaction")
            }
        }
        let mut settlement = Settlement::new(
            reference,
            request.request.str_field("amount").unwrap_or_default(),
            request.request.str_field("currency").unwrap_or_default(),
        );
        settlement.payer = Some(payer.to_checksum(None));
        Ok(settlement)
    }
}

/// Checks a receipt (its status and logs) pays `expected`, from `sender`
/// when known. Returns the payer.
pub fn verify_receipt(
    succeeded: bool,
    logs: &[chain::ChainLog],
    expected: &Expected<'_>,
    sender: Option<Address>,
    reference: &str,
) -> Result<Address, SettleError> {
    if !succeeded {
        return Err(SettleError::verification_failed(format!(
            "transaction {reference} reverted"
        )));
    }
    transfer::find_payment(logs, expected, sender).map_err(|m| {
        SettleError::verification_failed(format!("Payment verification failed: {}", m.explain()))
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Rail for TempoRail {
    fn method(&self) -> &str {
        "tempo"
    }

    fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError> {
        if price.amount.currency() != self.currency {
            return Err(RailError::new(format!(
                "the Tempo token is denominated in {}, but this route is priced in {}; price it in {} or set TEMPO_CURRENCY",
                self.currency.code(),
                price.amount.currency().code(),
                self.currency.code()
            )));
        }
        let units = price
            .amount
            .to_base_units(self.config.decimals)
            .map_err(|e| RailError::new(format!("{e}")))?;
        let mut details = Map::new();
        details.insert("chainId".into(), Value::from(self.config.chain_id));
        if self.config.modes.len() == 1 {
            details.insert(
                "supportedModes".into(),
                Value::Array(
                    self.config
                        .modes
                        .iter()
                        .map(|m| Value::from(m.name()))
                        .collect(),
                ),
            );
        }
        let mut request = Map::new();
        request.insert("amount".into(), Value::String(units.to_string()));
        request.insert(
            "currency".into(),
            Value::String(self.token.to_checksum(None)),
        );
        request.insert("methodDetails".into(), Value::Object(details));
        request.insert(
            "recipient".into(),
            Value::String(self.recipient.to_checksum(None)),
        );
        Ok(request)
    }

    fn settle(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        Box::pin(async move {
            match request.payload.get("type").and_then(Value::as_str) {
                Some("transaction") if self.offers(Mode::Pull) => self.settle_pull(&request).await,
                Some("hash") if self.offers(Mode::Push) => self.settle_push(&request).await,
                Some("transaction") => Err(SettleError::verification_failed(
                    "transaction (pull) credentials are not accepted here; broadcast the payment and send its hash",
                )),
                Some("hash") => Err(SettleError::verification_failed(
                    "hash (push) credentials are not accepted here; send the signed transaction",
                )),
                Some("proof") => Err(SettleError::invalid_payload(
                    "proof credentials are only for zero-amount challenges",
                )),
                _ => Err(SettleError::invalid_payload(
                    "expected {\"type\": \"transaction\", \"signature\": \"0x76…\"} or {\"type\": \"hash\", \"hash\": \"0x…\"}",
                )),
            }
        })
    }
}
