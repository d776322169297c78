//! Configuration: a builder, `MPP_*` environment variables, and a serde
//! [`Settings`] form so each framework's own config system (Rocket's figment,
//! a TOML file, …) can feed the same fields.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MPP_SECRET_KEY` | challenge signing secret, ≥ 32 bytes | required |
//! | `MPP_REALM` | protection space (your API's host name) | required |
//! | `MPP_CHALLENGE_TTL` | challenge lifetime (`300`, `5m`) | 300 s |
//! | `MPP_SESSION_TTL` | metered session lifetime | 3600 s |
//! | `MPP_SETTLEMENT_TIMEOUT` | longest a rail may take to settle | 60 s |
//! | `MPP_CREDENTIAL_HEADER` | take credentials from this header instead of `Authorization` | `Authorization` |
//! | `MPP_DEFAULT_METHOD` | method for routes that name none | the only rail, if one |
//! | `MPP_DEFAULT_AMOUNT` | amount for routes that name none | none (routes must price themselves) |
//! | `MPP_DEFAULT_CURRENCY` | currency for amounts without one | `USD` |
//! | `MPP_DEFAULT_GRANTS` | accesses per payment | 1 |
//! | `MPP_CAPTURE` | when payments are taken: `immediate`, or `after` (only on a 2xx answer) | `immediate` |
//! | `MPP_RECORD_TTL` | how long settlement records are kept for webhook reconciliation | 30 days |
//! | `MPP_GLOBAL_PRECONDITIONS` | comma-separated checks run on every gated route | none |
//! | `MPP_PRICE_BOOK` | JSON object of named prices | none |
//! | `MPP_STORE` | where state is kept: `memory`, `sqlite://path`, `postgres://…`, `redis://…` (see [`store::open`](crate::store::open)) | `memory` |
//! | `MPP_STORE_PREFIX` | table or key prefix in a shared store | `mpp_` (SQL), `mpp:` (Redis) |

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::binding::ChallengeKey;
use crate::error::ConfigError;
use crate::price::{self, Amount, Currency};
use crate::spec::{Capture, PriceBook, PriceEntry};
use crate::wire::challenge::{is_default_credential_header, is_valid_header_name, is_valid_method};
use crate::wire::{base64url, redact_url};

/// Raw settings, as read from the environment or a framework's config file.
/// Every field is optional; [`ConfigBuilder::build`] validates them.
///
/// ```
/// let settings: mpp_runtime::Settings = serde_json::from_str(
///     r#"{"realm": "api.example.com", "default_amount": "0.50", "price_book": {"report.basic": {"amount": "5.00", "grants": 10}}}"#,
/// ).unwrap();
/// assert_eq!(settings.realm.as_deref(), Some("api.example.com"));
/// ```
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Challenge signing secret (≥ 32 bytes).
    pub secret_key: Option<String>,
    /// Protection space.
    pub realm: Option<String>,
    /// Challenge lifetime in seconds.
    pub challenge_ttl: Option<u64>,
    /// Session lifetime in seconds.
    pub session_ttl: Option<u64>,
    /// Settlement timeout in seconds.
    pub settlement_timeout: Option<u64>,
    /// Credential header name, if not `Authorization`.
    pub credential_header: Option<String>,
    /// Default method.
    pub default_method: Option<String>,
    /// Default amount.
    pub default_amount: Option<String>,
    /// Default currency.
    pub default_currency: Option<String>,
    /// Default grants.
    pub default_grants: Option<u32>,
    /// When payments are taken on routes that do not say.
    pub default_capture: Option<Capture>,
    /// How long settlement records are kept, in seconds.
    pub record_ttl: Option<u64>,
    /// Checks run on every gated route.
    pub global_preconditions: Option<Vec<String>>,
    /// Named prices.
    pub price_book: Option<PriceBook>,
    /// Where the gate keeps its state (`memory`, `sqlite://…`,
    /// `postgres://…`, `redis://…`).
    pub store: Option<String>,
    /// Table or key prefix in a shared store.
    pub store_prefix: Option<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("realm", &self.realm)
            .field("challenge_ttl", &self.challenge_ttl)
            .field("session_ttl", &self.session_ttl)
            .field("settlement_timeout", &self.settlement_timeout)
            .field("credential_header", &self.credential_header)
            .field("default_method", &self.default_method)
            .field("default_amount", &self.default_amount)
            .field("default_currency", &self.default_currency)
            .field("default_grants", &self.default_grants)
            .field("default_capture", &self.default_capture)
            .field("record_ttl", &self.record_ttl)
            .field("global_preconditions", &self.global_preconditions)
            .field("price_book", &self.price_book)
            .field("store", &self.store.as_deref().map(redact_url))
            .field("store_prefix", &self.store_prefix)
            .finish()
    }
}

impl Settings {
    /// Reads the `MPP_*` environment variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (an environment-like function).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let seconds = |name: &str| get(name).map(|v| parse_duration(name, &v)).transpose();
        Ok(Self {
            secret_key: get("MPP_SECRET_KEY"),
            realm: get("MPP_REALM").map(|v| v.trim().to_owned()),
            challenge_ttl: seconds("MPP_CHALLENGE_TTL")?,
            session_ttl: seconds("MPP_SESSION_TTL")?,
            settlement_timeout: seconds("MPP_SETTLEMENT_TIMEOUT")?,
            credential_header: get("MPP_CREDENTIAL_HEADER").map(|v| v.trim().to_owned()),
            default_method: get("MPP_DEFAULT_METHOD").map(|v| v.trim().to_owned()),
            default_amount: get("MPP_DEFAULT_AMOUNT").map(|v| v.trim().to_owned()),
            default_currency: get("MPP_DEFAULT_CURRENCY").map(|v| v.trim().to_owned()),
            default_grants: get("MPP_DEFAULT_GRANTS")
                .map(|v| {
                    v.trim().parse::<u32>().map_err(|e| ConfigError::InvalidSetting {
                        name: "MPP_DEFAULT_GRANTS".into(),
                        value: v.clone(),
                        reason: e.to_string(),
                    })
                })
                .transpose()?,
            default_capture: get("MPP_CAPTURE")
                .map(|v| {
                    v.parse::<Capture>()
                        .map_err(|e| ConfigError::InvalidSetting {
                            name: "MPP_CAPTURE".into(),
                            value: v.clone(),
                            reason: e.to_string(),
                        })
                })
                .transpose()?,
            record_ttl: seconds("MPP_RECORD_TTL")?,
            global_preconditions: get("MPP_GLOBAL_PRECONDITIONS").map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            price_book: get("MPP_PRICE_BOOK")
                .map(|v| {
                    serde_json::from_str::<PriceBook>(&v).map_err(|e| ConfigError::InvalidSetting {
                        name: "MPP_PRICE_BOOK".into(),
                        value: v.clone(),
                        reason: format!("expected a JSON object of {{\"amount\", \"currency\", \"grants\", \"methods\", \"description\"}} entries: {e}"),
                    })
                })
                .transpose()?,
            store: get("MPP_STORE").map(|v| v.trim().to_owned()),
            store_prefix: get("MPP_STORE_PREFIX").map(|v| v.trim().to_owned()),
        })
    }

    /// These settings with every field set in `over` replaced by it.
    pub fn merge(self, over: Settings) -> Settings {
        let price_book = match (self.price_book, over.price_book) {
            (Some(mut base), Some(top)) => {
                base.extend(top);
                Some(base)
            }
            (base, top) => top.or(base),
        };
        Settings {
            secret_key: over.secret_key.or(self.secret_key),
            realm: over.realm.or(self.realm),
            challenge_ttl: over.challenge_ttl.or(self.challenge_ttl),
            session_ttl: over.session_ttl.or(self.session_ttl),
            settlement_timeout: over.settlement_timeout.or(self.settlement_timeout),
            credential_header: over.credential_header.or(self.credential_header),
            default_method: over.default_method.or(self.default_method),
            default_amount: over.default_amount.or(self.default_amount),
            default_currency: over.default_currency.or(self.default_currency),
            default_grants: over.default_grants.or(self.default_grants),
            default_capture: over.default_capture.or(self.default_capture),
            record_ttl: over.record_ttl.or(self.record_ttl),
            global_preconditions: over.global_preconditions.or(self.global_preconditions),
            price_book,
            store: over.store.or(self.store),
            store_prefix: over.store_prefix.or(self.store_prefix),
        }
    }
}

/// Parses `300`, `300s`, `5m`, `1h` or `1d` into seconds.
fn parse_duration(name: &str, value: &str) -> Result<u64, ConfigError> {
    let v = value.trim();
    let (digits, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|_| factor > 0)
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| ConfigError::InvalidSetting {
            name: name.to_owned(),
            value: value.to_owned(),
            reason: "expected a number of seconds, optionally with s, m, h or d (e.g. 300 or 5m)"
                .into(),
        })
}

/// Defaults for route terms a route leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// Method for routes that name none.
    pub method: Option<String>,
    /// Amount for routes that name none.
    pub amount: Option<Amount>,
    /// Currency for amounts given without one.
    pub currency: Currency,
    /// Accesses per payment.
    pub grants: u32,
    /// When payments are taken.
    pub capture: Capture,
}

/// A validated price-book entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedEntry {
    pub(crate) amount: Amount,
    pub(crate) grants: Option<u32>,
    pub(crate) methods: Option<Vec<String>>,
    pub(crate) description: Option<String>,
}

/// Validated runtime configuration.
#[derive(Clone)]
pub struct Config {
    pub(crate) key: ChallengeKey,
    pub(crate) realm: String,
    pub(crate) challenge_ttl: Duration,
    pub(crate) session_ttl: Duration,
    pub(crate) settlement_timeout: Duration,
    pub(crate) record_ttl: Duration,
    pub(crate) credential_header: Option<String>,
    pub(crate) defaults: Defaults,
    pub(crate) price_book: BTreeMap<String, ResolvedEntry>,
    pub(crate) global_preconditions: Vec<String>,
    pub(crate) store: Option<String>,
    pub(crate) store_prefix: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("key", &self.key)
            .field("realm", &self.realm)
            .field("challenge_ttl", &self.challenge_ttl)
            .field("session_ttl", &self.session_ttl)
            .field("settlement_timeout", &self.settlement_timeout)
            .field("record_ttl", &self.record_ttl)
            .field("credential_header", &self.credential_header)
            .field("defaults", &self.defaults)
            .field("price_book", &self.price_book.keys().collect::<Vec<_>>())
            .field("global_preconditions", &self.global_preconditions)
            .field("store", &self.store.as_deref().map(redact_url))
            .field("store_prefix", &self.store_prefix)
            .finish()
    }
}

impl Config {
    /// A builder with nothing set.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Configuration from the `MPP_*` environment variables alone.
    pub fn from_env() -> Result<Self, ConfigError> {
        ConfigBuilder::from_env()?.build()
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Challenge lifetime.
    pub fn challenge_ttl(&self) -> Duration {
        self.challenge_ttl
    }

    /// Session lifetime.
    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// Longest a rail may take to settle.
    pub fn settlement_timeout(&self) -> Duration {
        self.settlement_timeout
    }

    /// How long settlement records are kept for reconciliation.
    pub fn record_ttl(&self) -> Duration {
        self.record_ttl
    }

    /// The header credentials arrive in (`Authorization` unless configured).
    pub fn credential_header(&self) -> &str {
        self.credential_header.as_deref().unwrap_or("Authorization")
    }

    /// The defaults.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// The names of the global preconditions.
    pub fn global_preconditions(&self) -> &[String] {
        &self.global_preconditions
    }

    /// The store the settings name (`MPP_STORE`), unless it is the memory
    /// store; [`GateBuilder::open_store`](crate::GateBuilder::open_store)
    /// opens it.
    pub fn store(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// The table or key prefix for the store (`MPP_STORE_PREFIX`).
    pub fn store_prefix(&self) -> Option<&str> {
        self.store_prefix.as_deref()
    }

    /// The price-book keys.
    pub fn price_keys(&self) -> impl Iterator<Item = &str> {
        self.price_book.keys().map(String::as_str)
    }
}

/// Builds a [`Config`].
///
/// ```
/// use mpp_runtime::{Config, PriceEntry};
/// let config = Config::builder()
///     .secret("a-secret-of-at-least-thirty-two-bytes!")
///     .realm("api.example.com")
///     .default_amount("0.50")
///     .price("report.basic", PriceEntry::new("5.00").grants(10))
///     .build()
///     .unwrap();
/// assert_eq!(config.defaults().amount.unwrap().to_string(), "0.50");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConfigBuilder {
    settings: Settings,
}

impl ConfigBuilder {
    /// Starts from the `MPP_*` environment variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            settings: Settings::from_env()?,
        })
    }

    /// Starts from explicit settings.
    pub fn from_settings(settings: Settings) -> Self {
        Self { settings }
    }

    /// Overlays `settings` (fields set there win).
    pub fn merge(mut self, settings: Settings) -> Self {
        self.settings = self.settings.merge(settings);
        self
    }

    /// The settings collected so far.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Sets the challenge secret.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.settings.secret_key = Some(secret.into());
        self
    }

    /// Uses a random secret if none is set. Challenges then die with the
    /// process: for development and tests only.
    pub fn ephemeral_secret_if_unset(mut self) -> Self {
        if self.settings.secret_key.is_none() {
            let mut bytes = [0u8; 32];
            if crate::random::fill(&mut bytes).is_ok() {
                tracing::warn!(
                    "MPP_SECRET_KEY is not set: using a random secret; challenges will not survive a restart"
                );
                self.settings.secret_key = Some(base64url::encode(bytes));
            }
        }
        self
    }

    /// Sets the realm.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.settings.realm = Some(realm.into());
        self
    }

    /// Sets the challenge lifetime.
    pub fn challenge_ttl(mut self, ttl: Duration) -> Self {
        self.settings.challenge_ttl = Some(ttl.as_secs());
        self
    }

    /// Sets the session lifetime.
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.settings.session_ttl = Some(ttl.as_secs());
        self
    }

    /// Sets the settlement timeout.
    pub fn settlement_timeout(mut self, timeout: Duration) -> Self {
        self.settings.settlement_timeout = Some(timeout.as_secs());
        self
    }

    /// Takes credentials from `header` instead of `Authorization` (for apps
    /// that use `Authorization` for their own authentication); challenges
    /// then advertise it, as the draft's `header` parameter specifies.
    pub fn credential_header(mut self, header: impl Into<String>) -> Self {
        self.settings.credential_header = Some(header.into());
        self
    }

    /// Sets the default method.
    pub fn default_method(mut self, method: impl Into<String>) -> Self {
        self.settings.default_method = Some(method.into());
        self
    }

    /// Sets the default amount.
    pub fn default_amount(mut self, amount: impl Into<String>) -> Self {
        self.settings.default_amount = Some(amount.into());
        self
    }

    /// Sets the default currency.
    pub fn default_currency(mut self, currency: impl Into<String>) -> Self {
        self.settings.default_currency = Some(currency.into());
        self
    }

    /// Sets the default grants.
    pub fn default_grants(mut self, grants: u32) -> Self {
        self.settings.default_grants = Some(grants);
        self
    }

    /// Sets when payments are taken on routes that do not say.
    pub fn default_capture(mut self, capture: Capture) -> Self {
        self.settings.default_capture = Some(capture);
        self
    }

    /// Sets how long settlement records are kept for reconciliation.
    pub fn record_ttl(mut self, ttl: Duration) -> Self {
        self.settings.record_ttl = Some(ttl.as_secs());
        self
    }

    /// Adds a global precondition (registered with the gate by name).
    pub fn global_precondition(mut self, name: impl Into<String>) -> Self {
        self.settings
            .global_preconditions
            .get_or_insert_with(Vec::new)
            .push(name.into());
        self
    }

    /// Adds a price-book entry.
    pub fn price(mut self, key: impl Into<String>, entry: PriceEntry) -> Self {
        self.settings
            .price_book
            .get_or_insert_with(PriceBook::new)
            .insert(key.into(), entry);
        self
    }

    /// Validates everything and builds the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let s = self.settings;
        let secret = s.secret_key.ok_or(ConfigError::MissingSecret)?;
        let key = ChallengeKey::new(secret.as_bytes())?;
        let realm = s.realm.ok_or(ConfigError::MissingRealm)?;
        if realm.trim().is_empty() || realm.chars().any(char::is_control) {
            return Err(ConfigError::Invalid(format!(
                "MPP_REALM = {realm:?}: the realm must be non-empty and free of control characters"
            )));
        }
        let seconds = |name: &str, value: Option<u64>, default: u64, max: u64| {
            let v = value.unwrap_or(default);
            if v == 0 || v > max {
                return Err(ConfigError::InvalidSetting {
                    name: name.to_owned(),
                    value: v.to_string(),
                    reason: format!("must be between 1 and {max} seconds"),
                });
            }
            Ok(Duration::from_secs(v))
        };
        let challenge_ttl = seconds("MPP_CHALLENGE_TTL", s.challenge_ttl, 300, 86_400)?;
        let session_ttl = seconds("MPP_SESSION_TTL", s.session_ttl, 3_600, 366 * 86_400)?;
        let settlement_timeout =
            seconds("MPP_SETTLEMENT_TIMEOUT", s.settlement_timeout, 60, 3_600)?;
        let record_ttl = seconds("MPP_RECORD_TTL", s.record_ttl, 30 * 86_400, 400 * 86_400)?;
        let credential_header = match s.credential_header {
            Some(h) if is_default_credential_header(&h) => None,
            Some(h) if is_valid_header_name(&h) => Some(h),
            Some(h) => {
                return Err(ConfigError::InvalidSetting {
                    name: "MPP_CREDENTIAL_HEADER".into(),
                    value: h,
                    reason: "not an HTTP header name".into(),
                });
            }
            None => None,
        };
        let currency = match &s.default_currency {
            Some(code) => Currency::from_code(code).map_err(|source| ConfigError::Currency {
                context: "MPP_DEFAULT_CURRENCY".into(),
                source,
            })?,
            None => Currency::USD,
        };
        let amount = s
            .default_amount
            .as_deref()
            .map(|text| parse_amount("MPP_DEFAULT_AMOUNT", text, currency))
            .transpose()?;
        let default_grants = grants("MPP_DEFAULT_GRANTS", s.default_grants.unwrap_or(1))?;
        if let Some(method) = &s.default_method {
            check_method_syntax("MPP_DEFAULT_METHOD", method)?;
        }
        let mut price_book = BTreeMap::new();
        for (key, entry) in s.price_book.unwrap_or_default() {
            let context = format!("price-book entry `{key}`");
            price::validate_scope(&key).map_err(|source| ConfigError::Scope {
                context: context.clone(),
                scope: key.clone(),
                source,
            })?;
            let entry_currency = match &entry.currency {
                Some(code) => {
                    Currency::from_code(code).map_err(|source| ConfigError::Currency {
                        context: context.clone(),
                        source,
                    })?
                }
                None => currency,
            };
            let amount = parse_amount(&context, &entry.amount, entry_currency)?;
            let entry_grants = entry.grants.map(|g| grants(&context, g)).transpose()?;
            if let Some(methods) = &entry.methods {
                for m in methods {
                    check_method_syntax(&context, m)?;
                }
            }
            price_book.insert(
                key,
                ResolvedEntry {
                    amount,
                    grants: entry_grants,
                    methods: entry.methods.filter(|m| !m.is_empty()),
                    description: entry.description,
                },
            );
        }
        Ok(Config {
            key,
            realm,
            challenge_ttl,
            session_ttl,
            settlement_timeout,
            record_ttl,
            credential_header,
            defaults: Defaults {
                method: s.default_method,
                amount,
                currency,
                grants: default_grants,
                capture: s.default_capture.unwrap_or_default(),
            },
            price_book,
            global_preconditions: s.global_preconditions.unwrap_or_default(),
            store: s.store.filter(|spec| !matches!(spec.trim(), "" | "memory")),
            store_prefix: s.store_prefix,
        })
    }
}

pub(crate) fn parse_amount(
    context: &str,
    text: &str,
    currency: Currency,
) -> Result<Amount, ConfigError> {
    price::parse_amount(text, currency).map_err(|source| ConfigError::Amount {
        context: context.to_owned(),
        text: text.to_owned(),
        source,
    })
}

pub(crate) fn grants(context: &str, grants: u32) -> Result<u32, ConfigError> {
    price::validate_grants(u64::from(grants)).map_err(|source| ConfigError::Grants {
        context: context.to_owned(),
        source,
    })
}

pub(crate) fn check_method_syntax(context: &str, method: &str) -> Result<(), ConfigError> {
    if is_valid_method(method) {
        Ok(())
    } else {
        Err(ConfigError::InvalidSetting {
            name: context.to_owned(),
            value: method.to_owned(),
            reason: "a payment method name is lowercase letters, digits, `:`, `_` or `-`".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_every_variable() {
        let settings = Settings::from_lookup(env(&[
            ("MPP_SECRET_KEY", SECRET),
            ("MPP_REALM", "api.example.com"),
            ("MPP_CHALLENGE_TTL", "5m"),
            ("MPP_SESSION_TTL", "7200"),
            ("MPP_DEFAULT_METHOD", "stripe"),
            ("MPP_DEFAULT_AMOUNT", "0.50"),
            ("MPP_DEFAULT_CURRENCY", "eur"),
            ("MPP_DEFAULT_GRANTS", "3"),
            ("MPP_GLOBAL_PRECONDITIONS", "not_blocked, rate_ok"),
            (
                "MPP_PRICE_BOOK",
                r#"{"report.basic":{"amount":"5.00","grants":10}}"#,
            ),
        ]))
        .unwrap();
        let config = ConfigBuilder::from_settings(settings).build().unwrap();
        assert_eq!(config.challenge_ttl(), Duration::from_secs(300));
        assert_eq!(config.session_ttl(), Duration::from_secs(7200));
        assert_eq!(config.defaults().currency.code(), "EUR");
        assert_eq!(config.defaults().amount.unwrap().minor_units(), 50);
        assert_eq!(config.defaults().grants, 3);
        assert_eq!(config.global_preconditions(), ["not_blocked", "rate_ok"]);
        assert_eq!(config.price_book["report.basic"].amount.to_string(), "5.00");
        assert_eq!(
            config.price_book["report.basic"].amount.currency().code(),
            "EUR"
        );
    }

    #[test]
    fn the_store_setting_is_kept_and_its_password_never_shown() {
        let settings = Settings::from_lookup(env(&[
            ("MPP_SECRET_KEY", SECRET),
            ("MPP_REALM", "api.example.com"),
            ("MPP_STORE", " postgres://shop:hunter2@db.internal/shop "),
            ("MPP_STORE_PREFIX", "shop_"),
        ]))
        .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
        let config = ConfigBuilder::from_settings(settings).build().unwrap();
        assert_eq!(
            config.store(),
            Some("postgres://shop:hunter2@db.internal/shop")
        );
        assert_eq!(config.store_prefix(), Some("shop_"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://db.internal/…"), "{shown}");
        // `memory` is the default, not a store to open.
        let memory = ConfigBuilder::from_settings(
            Settings::from_lookup(env(&[
                ("MPP_SECRET_KEY", SECRET),
                ("MPP_REALM", "api.example.com"),
                ("MPP_STORE", "memory"),
            ]))
            .unwrap(),
        )
        .build()
        .unwrap();
        assert_eq!(memory.store(), None);
    }

    #[test]
    fn says_what_to_set() {
        let err = Config::builder().realm("x").build().unwrap_err();
        assert!(err.to_string().contains("MPP_SECRET_KEY"), "{err}");
        let err = Config::builder()
            .secret("short")
            .realm("x")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("at least 32"), "{err}");
        let err = Config::builder().secret(SECRET).build().unwrap_err();
        assert!(err.to_string().contains("MPP_REALM"), "{err}");
        let err = Settings::from_lookup(env(&[("MPP_CHALLENGE_TTL", "soon")])).unwrap_err();
        assert!(err.to_string().contains("MPP_CHALLENGE_TTL"), "{err}");
        let err = Config::builder()
            .secret(SECRET)
            .realm("x")
            .default_amount("5.001")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("at most 2 digits"), "{err}");
        let err = Config::builder()
            .secret(SECRET)
            .realm("x")
            .price("bad key", PriceEntry::new("1.00"))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("not allowed in a scope"), "{err}");
    }

    #[test]
    fn merge_prefers_the_overlay() {
        let base = Settings {
            realm: Some("a".into()),
            default_grants: Some(2),
            ..Settings::default()
        };
        let over = Settings {
            realm: Some("b".into()),
            ..Settings::default()
        };
        let merged = base.merge(over);
        assert_eq!(merged.realm.as_deref(), Some("b"));
        assert_eq!(merged.default_grants, Some(2));
    }

    #[test]
    fn debug_redacts_the_secret() {
        let s = Settings {
            secret_key: Some(SECRET.into()),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains(SECRET));
    }
}
