//! The Stripe rail (`method = "stripe"`, intent `charge`): card payments
//! through Stripe Shared Payment Tokens, in the wire format of the stock
//! mppx `stripe.charge` method.
//!
//! The challenge asks for `{amount (minor units), currency, methodDetails:
//! {networkId, paymentMethodTypes}}`; the credential carries `{spt}`. The
//! rail creates **and confirms** a PaymentIntent from the token, keyed by
//! `Idempotency-Key: mpp_<challenge id>_<spt>` under a pinned
//! `Stripe-Version`, and trusts only `status == succeeded` with the
//! challenge's amount and currency. The receipt's reference is the
//! PaymentIntent id (`pi_…`).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `STRIPE_SECRET_KEY` | the seller account's key (`sk_test_…`/`sk_live_…`) | none: 402s are issued, settlement fails clearly |
//! | `STRIPE_NETWORK_ID` | Stripe profile id advertised in the challenge (scopes the payer's SPT) | none (logged once) |
//! | `STRIPE_API_VERSION` | pinned `Stripe-Version` (SPTs are a preview API) | [`DEFAULT_API_VERSION`] |
//! | `STRIPE_API_BASE` | API base URL (point it at an emulator in tests) | `https://api.stripe.com` |
//! | `STRIPE_PAYMENT_METHOD_TYPES` | comma-separated types offered | `card` |
//! | `STRIPE_WEBHOOK_SECRET` | webhook signing secret (`whsec_…`); several, comma-separated, while rolling it | none: webhooks answer 500 |
//! | `STRIPE_WEBHOOK_TOLERANCE` | how old (in seconds) a signed delivery may be | 300 |
//!
//! With `capture = "after"` the PaymentIntent is created with
//! `capture_method=manual`: the rail trusts `requires_capture` with the
//! challenge's amount and currency before the handler runs, then captures
//! (`/capture`) on a 2xx answer or cancels (`/cancel`) otherwise. Webhooks
//! are verified by [`StripeWebhooks`].

mod client;
mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use serde_json::{Map, Value};
use stripe_client_core::{IdempotencyKey, RequestBuilder, RequestStrategy, StripeMethod};

pub use client::StripeHttpError;
use client::{Recorder, StripeHttp, error_message};
pub use webhook::{DEFAULT_TOLERANCE, SIGNATURE_HEADER, StripeWebhooks};

use crate::BoxFuture;
use crate::rail::{Price, Rail, RailError, SettleError, SettleRequest, Settlement};
use crate::rails::env::EnvVars;
use crate::rails::stripe_limits;
use crate::request::RequestView;
use crate::webhook::Webhooks;

/// The `Stripe-Version` the rail pins by default: the preview version the
/// stock mppx client uses for Shared Payment Tokens.
pub const DEFAULT_API_VERSION: &str = "2026-07-29.preview";

/// Stripe's API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// Stripe rail settings.
#[derive(Clone)]
pub struct StripeConfig {
    secret_key: Option<String>,
    network_id: Option<String>,
    api_version: String,
    api_base: String,
    payment_method_types: Vec<String>,
    webhook_secret: Option<String>,
    webhook_tolerance: Duration,
    timeout: Duration,
    problems: Vec<String>,
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("network_id", &self.network_id)
            .field("api_version", &self.api_version)
            .field("api_base", &self.api_base)
            .field("payment_method_types", &self.payment_method_types)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for StripeConfig {
    fn default() -> Self {
        Self {
            secret_key: None,
            network_id: None,
            api_version: DEFAULT_API_VERSION.to_owned(),
            api_base: DEFAULT_API_BASE.to_owned(),
            payment_method_types: vec!["card".to_owned()],
            webhook_secret: None,
            webhook_tolerance: DEFAULT_TOLERANCE,
            timeout: Duration::from_secs(30),
            problems: Vec::new(),
        }
    }
}

impl StripeConfig {
    /// Settings from the `STRIPE_*` environment variables.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings read through an environment-like function.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let vars = EnvVars::new(lookup);
        let get = |name: &str| vars.text(name);
        let mut config = Self {
            secret_key: get("STRIPE_SECRET_KEY"),
            network_id: get("STRIPE_NETWORK_ID"),
            webhook_secret: get("STRIPE_WEBHOOK_SECRET"),
            ..Self::default()
        };
        if let Some(version) = get("STRIPE_API_VERSION") {
            config.api_version = version;
        }
        if let Some(base) = get("STRIPE_API_BASE") {
            config.api_base = base;
        }
        if let Some(seconds) = vars.number("STRIPE_WEBHOOK_TOLERANCE", "a number of seconds") {
            config.webhook_tolerance = Duration::from_secs(seconds);
        }
        if let Some(types) = get("STRIPE_PAYMENT_METHOD_TYPES") {
            config.payment_method_types = types
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
        }
        config.problems = vars.into_problems();
        config
    }

    /// Sets the secret key.
    pub fn secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_key = Some(key.into());
        self
    }

    /// Sets the profile id advertised to payers.
    pub fn network_id(mut self, id: impl Into<String>) -> Self {
        self.network_id = Some(id.into());
        self
    }

    /// Pins another `Stripe-Version`.
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// Points the rail at another API base URL (an emulator).
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into();
        self
    }

    /// Sets the payment method types offered (`card`, `link`, …).
    pub fn payment_method_types(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.payment_method_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the webhook signing secret (several, comma-separated, while
    /// rolling it).
    pub fn webhook_secret(mut self, secret: impl Into<String>) -> Self {
        self.webhook_secret = Some(secret.into());
        self
    }

    /// Sets how far a delivery's signed timestamp may be from now.
    pub fn webhook_tolerance(mut self, tolerance: Duration) -> Self {
        self.webhook_tolerance = tolerance;
        self
    }

    /// Sets the timeout of each Stripe call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The webhook signing secret, if set.
    pub fn webhook_signing_secret(&self) -> Option<&str> {
        self.webhook_secret.as_deref()
    }
}

/// Finds the seller-side Stripe customer (`cus_…`) for a paid retry that
/// carries an identity you trust (an authenticated user, an API key). Its
/// answer is attached to the PaymentIntent; `None` or an error charges as a
/// guest.
///
/// ```
/// use std::sync::Arc;
/// use mpp_runtime::RequestView;
/// use mpp_runtime::rails::stripe::CustomerResolver;
///
/// async fn by_api_key(request: Arc<RequestView>) -> Result<Option<String>, String> {
///     Ok(match request.header("x-api-key") {
///         Some("key_acme") => Some("cus_acme".to_owned()),
///         _ => None,
///     })
/// }
/// # fn assert_resolver<R: CustomerResolver>(_: R) {}
/// # assert_resolver(by_api_key);
/// ```
pub trait CustomerResolver: Send + Sync + 'static {
    /// The customer id for this request, if any.
    fn customer(
        &self,
        request: Arc<RequestView>,
    ) -> BoxFuture<'static, Result<Option<String>, String>>;
}

impl<F, Fut> CustomerResolver for F
where
    F: Fn(Arc<RequestView>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<String>, String>> + Send + 'static,
{
    fn customer(
        &self,
        request: Arc<RequestView>,
    ) -> BoxFuture<'static, Result<Option<String>, String>> {
        Box::pin(self(request))
    }
}

/// The Stripe payment rail.
///
/// ```no_run
/// use mpp_runtime::rails::stripe::{StripeConfig, StripeRail};
/// let rail = StripeRail::new(StripeConfig::from_env()).expect("Stripe configuration");
/// ```
pub struct StripeRail {
    config: StripeConfig,
    client: Option<StripeHttp>,
    webhooks: Option<StripeWebhooks>,
    resolver: Option<Arc<dyn CustomerResolver>>,
    warn_missing: Once,
}

impl fmt::Debug for StripeRail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeRail")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl StripeRail {
    /// A rail with these settings. Without a secret key it still builds: it
    /// issues 402s and refuses to settle, saying what to set.
    pub fn new(config: StripeConfig) -> Result<Self, RailError> {
        if !config.problems.is_empty() {
            return Err(RailError::new(format!(
                "the Stripe rail is misconfigured: {}",
                config.problems.join("; ")
            )));
        }
        let client = match &config.secret_key {
            Some(key) => Some(
                StripeHttp::new(&config.api_base, key, &config.api_version, config.timeout)
                    .map_err(RailError::new)?,
            ),
            None => None,
        };
        if config.payment_method_types.is_empty() {
            return Err(RailError::new(
                "STRIPE_PAYMENT_METHOD_TYPES is empty; list at least one type, e.g. `card`",
            ));
        }
        let webhooks = config.webhook_secret.as_deref().map(|secrets| {
            StripeWebhooks::new(secrets.split(',').map(str::trim), config.webhook_tolerance)
        });
        Ok(Self {
            config,
            client,
            webhooks,
            resolver: None,
            warn_missing: Once::new(),
        })
    }

    /// A rail from the `STRIPE_*` environment variables.
    pub fn from_env() -> Result<Self, RailError> {
        Self::new(StripeConfig::from_env())
    }

    /// Attaches a seller-side customer to payments (see [`CustomerResolver`]).
    pub fn customer_resolver(mut self, resolver: impl CustomerResolver) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// The settings.
    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    async fn customer(&self, request: &SettleRequest) -> Option<String> {
        let resolver = self.resolver.as_ref()?;
        match resolver.customer(request.http.clone()).await {
            Ok(customer) => customer.filter(|c| !c.is_empty()),
            Err(e) => {
                tracing::warn!(error = %e, "the Stripe customer resolver failed; charging as a guest");
                None
            }
        }
    }

    fn form(
        &self,
        request: &SettleRequest,
        spt: &str,
        customer: Option<String>,
    ) -> BTreeMap<String, String> {
        let mut form = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            form.insert(k.to_owned(), v.to_owned());
        };
        put(
            "amount",
            request.request.str_field("amount").unwrap_or_default(),
        );
        put(
            "currency",
            request.request.str_field("currency").unwrap_or_default(),
        );
        put("confirm", "true");
        put("automatic_payment_methods[enabled]", "true");
        put("automatic_payment_methods[allow_redirects]", "never");
        put("shared_payment_granted_token", spt);
        put("metadata[machine_payment]", "true");
        put(
            "metadata[mpp_sdk]",
            concat!("mpp-runtime/", env!("CARGO_PKG_VERSION")),
        );
        put("metadata[mpp_intent]", "charge");
        put("metadata[mpp_challenge_id]", &request.challenge.id);
        put("metadata[mpp_scope]", &truncate(&request.price.scope, 500));
        put("metadata[mpp_route]", &truncate(&request.route, 500));
        if let Some(customer) = customer {
            put("customer", &customer);
        }
        form
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

impl Rail for StripeRail {
    fn method(&self) -> &str {
        "stripe"
    }

    fn check_config(&self) -> Result<(), RailError> {
        if self.config.secret_key.is_none() {
            tracing::warn!(
                "STRIPE_SECRET_KEY is not set: Stripe challenges are issued, but payments cannot settle until it is"
            );
        }
        if self.config.network_id.is_none() {
            tracing::warn!(
                "STRIPE_NETWORK_ID is not set: wallets cannot scope a Shared Payment Token to you; \
                 set it to your Stripe profile id (profile_…)"
            );
        }
        Ok(())
    }

    fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError> {
        if let Some(reason) = stripe_limits::below_minimum(price.amount) {
            return Err(RailError::new(reason));
        }
        let mut details = Map::new();
        if let Some(network) = &self.config.network_id {
            details.insert("networkId".into(), Value::String(network.clone()));
        }
        details.insert(
            "paymentMethodTypes".into(),
            Value::Array(
                self.config
                    .payment_method_types
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect(),
            ),
        );
        let mut request = Map::new();
        request.insert(
            "amount".into(),
            Value::String(price.amount.minor_units().to_string()),
        );
        request.insert(
            "currency".into(),
            Value::String(price.amount.currency().code().to_ascii_lowercase()),
        );
        request.insert("methodDetails".into(), Value::Object(details));
        Ok(request)
    }

    fn settle(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        Box::pin(async move { self.create_intent(&request, Step::Charge).await })
    }

    fn defers_capture(&self) -> bool {
        true
    }

    fn authorize(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        Box::pin(async move { self.create_intent(&request, Step::Authorize).await })
    }

    fn capture<'a>(
        &'a self,
        authorization: &'a Settlement,
    ) -> BoxFuture<'a, Result<Settlement, SettleError>> {
        Box::pin(async move {
            let reply = self
                .intent_action(&authorization.reference, "capture")
                .await?;
            interpret(
                &authorization.amount,
                &authorization.currency,
                Step::Capture,
                reply.status,
                reply.replayed,
                &reply.body,
            )
        })
    }

    fn release<'a>(
        &'a self,
        authorization: &'a Settlement,
    ) -> BoxFuture<'a, Result<(), SettleError>> {
        Box::pin(async move {
            let reply = self
                .intent_action(&authorization.reference, "cancel")
                .await?;
            if reply.status >= 500 || reply.status == 429 {
                return Err(SettleError::internal(format!(
                    "Stripe is unavailable ({})",
                    reply.status
                )));
            }
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            // A 2xx, or a refusal because the intent is canceled already.
            let status = if (200..300).contains(&reply.status) {
                body["status"].as_str()
            } else {
                body["error"]["payment_intent"]["status"].as_str()
            };
            match status {
                Some("canceled") => Ok(()),
                _ => Err(SettleError::verification_failed(format!(
                    "Stripe did not cancel {}: {}",
                    authorization.reference,
                    error_message(&reply.body)
                ))),
            }
        })
    }

    fn webhooks(&self) -> Option<&dyn Webhooks> {
        self.webhooks.as_ref().map(|w| w as &dyn Webhooks)
    }
}

/// Which Stripe call an answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Create and confirm, captured at once: expect `succeeded`.
    Charge,
    /// Create and confirm with manual capture: expect `requires_capture`.
    Authorize,
    /// Capture an authorization: expect `succeeded` (a replay of our own
    /// capture is fine).
    Capture,
}

impl StripeRail {
    fn client(&self) -> Result<&StripeHttp, SettleError> {
        self.client.as_ref().ok_or_else(|| {
            self.warn_missing.call_once(|| {
                tracing::error!(
                    "a Stripe payment arrived but STRIPE_SECRET_KEY is not set; it cannot settle"
                );
            });
            SettleError::internal(
                "Stripe payments are not configured on this server (STRIPE_SECRET_KEY is missing).",
            )
        })
    }

    /// Creates and confirms a PaymentIntent from the credential's token.
    async fn create_intent(
        &self,
        request: &SettleRequest,
        step: Step,
    ) -> Result<Settlement, SettleError> {
        let client = self.client()?;
        let spt = match request.payload.get("spt") {
            Some(Value::String(spt)) if !spt.is_empty() => spt.clone(),
            _ => {
                return Err(SettleError::invalid_payload(
                    "expected a Shared Payment Token: {\"spt\": \"spt_…\"}",
                ));
            }
        };
        let key = IdempotencyKey::new(format!("mpp_{}_{spt}", request.idempotency_key)).map_err(
            |_| SettleError::invalid_payload("the Shared Payment Token is not a valid token"),
        )?;
        let customer = self.customer(request).await;
        let mut form = self.form(request, &spt, customer);
        if step == Step::Authorize {
            form.insert("capture_method".to_owned(), "manual".to_owned());
        }
        let recorder = Recorder::new(client);
        let sent = RequestBuilder::new(StripeMethod::Post, "/payment_intents")
            .form(&form)
            .customize::<miniserde::json::Value>()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&recorder)
            .await;
        // The body is read from the recorder whatever its shape.
        let Some(reply) = recorder.take() else {
            let error = sent.err().map(|e| e.to_string()).unwrap_or_default();
            tracing::error!(%error, "Stripe could not be reached");
            return Err(SettleError::internal(
                "Stripe could not be reached; retry the same credential.",
            ));
        };
        interpret(
            request.request.str_field("amount").unwrap_or_default(),
            request.request.str_field("currency").unwrap_or_default(),
            step,
            reply.status,
            reply.replayed,
            &reply.body,
        )
    }

    /// `POST /payment_intents/{id}/{action}` (capture or cancel), keyed so
    /// retries are idempotent.
    async fn intent_action(&self, id: &str, action: &str) -> Result<client::Reply, SettleError> {
        let client = self.client()?;
        if !id.starts_with("pi_") || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(SettleError::internal(format!(
                "not a PaymentIntent id: {id:?}"
            )));
        }
        let key = IdempotencyKey::new(format!("mpp_{action}_{id}"))
            .map_err(|_| SettleError::internal("cannot derive an idempotency key"))?;
        let recorder = Recorder::new(client);
        let sent = RequestBuilder::new(
            StripeMethod::Post,
            format!("/payment_intents/{id}/{action}"),
        )
        .customize::<miniserde::json::Value>()
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(&recorder)
        .await;
        recorder.take().ok_or_else(|| {
            let error = sent.err().map(|e| e.to_string()).unwrap_or_default();
            tracing::error!(%error, action, "Stripe could not be reached");
            SettleError::internal(format!(
                "Stripe could not be reached to {action} the payment."
            ))
        })
    }
}

/// Turns Stripe's answer about a PaymentIntent into a settlement.
fn interpret(
    expected_amount: &str,
    expected_currency: &str,
    step: Step,
    status: u16,
    replayed: bool,
    body: &[u8],
) -> Result<Settlement, SettleError> {
    // 409: a request with the same idempotency key is still in progress
    // (the gate gave up waiting on it and the payer retried): retry later.
    if status >= 500 || status == 429 || status == 409 {
        tracing::error!(status, ?step, "Stripe failed");
        return Err(SettleError::internal(format!(
            "Stripe is unavailable ({status}); retry the same credential."
        )));
    }
    if !(200..300).contains(&status) {
        return Err(SettleError::verification_failed(format!(
            "Stripe refused the payment: {}",
            error_message(body)
        )));
    }
    // A replay is Stripe's first answer for this idempotency key, which
    // names the challenge and the token: the gate only asks again when it
    // never got or recorded that answer (it timed out, or the connection
    // dropped after Stripe charged), since a recorded success burns the
    // challenge. So it is read like a first answer: the PaymentIntent it
    // names pays this challenge, once.
    if replayed {
        tracing::info!(
            ?step,
            "Stripe replayed its answer to an earlier attempt of this challenge"
        );
    }
    let intent: Value = serde_json::from_slice(body)
        .map_err(|_| SettleError::internal("Stripe returned an unreadable PaymentIntent."))?;
    let id = intent["id"].as_str().unwrap_or_default();
    let wanted = match step {
        Step::Charge | Step::Capture => "succeeded",
        Step::Authorize => "requires_capture",
    };
    match intent["status"].as_str().unwrap_or_default() {
        found if found == wanted => {
            let amount = intent["amount"]
                .as_u64()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let currency = intent["currency"].as_str().unwrap_or_default();
            if amount != expected_amount || !currency.eq_ignore_ascii_case(expected_currency) {
                tracing::error!(
                    payment_intent = id,
                    amount,
                    currency,
                    "Stripe settled another amount than asked"
                );
                return Err(SettleError::internal(format!(
                    "Stripe settled {amount} {currency} instead of {expected_amount} {expected_currency}."
                )));
            }
            let mut settlement = Settlement::new(id, amount, currency.to_ascii_lowercase());
            settlement.payer = intent["customer"].as_str().map(str::to_owned);
            Ok(settlement)
        }
        "requires_action" => Err(SettleError::action_required(
            "the payment method needs the payer's authentication (e.g. 3-D Secure) first",
        )),
        other => {
            tracing::error!(
                payment_intent = id,
                status = other,
                ?step,
                "unexpected PaymentIntent status"
            );
            Err(SettleError::internal(format!(
                "Stripe PaymentIntent status: {other}."
            )))
        }
    }
}
