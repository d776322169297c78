//! The rail the tests define: a payload `{"proof": "ok"}` settles, other
//! proofs fail in the ways real providers fail. Shared by the runtime's tests
//! and, by path, the adapters' tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpp_runtime::*;
use serde_json::{Map, Value, json};

/// A rail for tests. A payload `{"proof": "ok"}` settles; `"decline"` is
/// refused; `"boom"` is a provider failure; `"slow"` never answers;
/// `"short"` reports settling less than asked. It can also defer capture
/// (unless told not to): `"ok"` authorizes, and `"capture_fails"`
/// authorizes but cannot be captured.
pub struct TestRail {
    pub name: &'static str,
    pub settled: AtomicUsize,
    pub attempts: AtomicUsize,
    pub delay: Mutex<Duration>,
    pub defers: AtomicBool,
    /// Authorizations by reference: (state, proof). States: `authorized`,
    /// `captured`, `released`.
    pub authorizations: Mutex<HashMap<String, (&'static str, String)>>,
}

impl TestRail {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            settled: AtomicUsize::new(0),
            attempts: AtomicUsize::new(0),
            delay: Mutex::new(Duration::ZERO),
            defers: AtomicBool::new(true),
            authorizations: Mutex::new(HashMap::new()),
        })
    }

    /// The state of an authorization (`authorized`, `captured`, `released`).
    pub fn authorization(&self, reference: &str) -> Option<&'static str> {
        self.authorizations
            .lock()
            .unwrap()
            .get(reference)
            .map(|(state, _)| *state)
    }

    /// How many authorizations are in `state`.
    pub fn count(&self, state: &str) -> usize {
        self.authorizations
            .lock()
            .unwrap()
            .values()
            .filter(|(s, _)| *s == state)
            .count()
    }

    pub fn settled(&self) -> usize {
        self.settled.load(Ordering::SeqCst)
    }

    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }
}

/// Lets a test keep a handle on a rail it registered.
pub struct Shared(pub Arc<TestRail>);

impl Rail for Shared {
    fn method(&self) -> &str {
        self.0.name
    }

    fn challenge_request(&self, price: &Price) -> Result<Map<String, Value>, RailError> {
        let Value::Object(map) = json!({
            "amount": price.amount.minor_units().to_string(),
            "currency": price.amount.currency().code().to_lowercase(),
            "recipient": "acct_test",
            "methodDetails": {"network": self.0.name},
        }) else {
            unreachable!()
        };
        Ok(map)
    }

    fn settle(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        let rail = self.0.clone();
        Box::pin(async move {
            rail.attempts.fetch_add(1, Ordering::SeqCst);
            let delay = *rail.delay.lock().unwrap();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let amount = request.request.str_field("amount").unwrap().to_owned();
            let currency = request.request.str_field("currency").unwrap().to_owned();
            match request.payload.get("proof").and_then(Value::as_str) {
                Some("ok") => {
                    let n = rail.settled.fetch_add(1, Ordering::SeqCst) + 1;
                    let mut settlement =
                        Settlement::new(format!("{}_{n}", rail.name), amount, currency);
                    settlement.payer = request
                        .source
                        .as_ref()
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    Ok(settlement)
                }
                Some("short") => Ok(Settlement::new("short_1", "1", currency)),
                Some("decline") => Err(SettleError::verification_failed("Your card was declined.")),
                Some("boom") => Err(SettleError::internal("provider returned 503")),
                Some("slow") => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Err(SettleError::internal("unreachable"))
                }
                _ => Err(SettleError::invalid_payload("expected {\"proof\": …}")),
            }
        })
    }

    fn defers_capture(&self) -> bool {
        self.0.defers.load(Ordering::SeqCst)
    }

    fn authorize(&self, request: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
        let rail = self.0.clone();
        Box::pin(async move {
            rail.attempts.fetch_add(1, Ordering::SeqCst);
            let amount = request.request.str_field("amount").unwrap().to_owned();
            let currency = request.request.str_field("currency").unwrap().to_owned();
            match request.payload.get("proof").and_then(Value::as_str) {
                Some(proof @ ("ok" | "capture_fails")) => {
                    let mut authorizations = rail.authorizations.lock().unwrap();
                    let reference = format!("auth_{}_{}", rail.name, authorizations.len() + 1);
                    authorizations.insert(reference.clone(), ("authorized", proof.to_owned()));
                    Ok(Settlement::new(reference, amount, currency))
                }
                Some("decline") => Err(SettleError::verification_failed("Your card was declined.")),
                _ => Err(SettleError::invalid_payload("expected {\"proof\": …}")),
            }
        })
    }

    fn capture<'a>(
        &'a self,
        authorization: &'a Settlement,
    ) -> BoxFuture<'a, Result<Settlement, SettleError>> {
        Box::pin(async move {
            let mut authorizations = self.0.authorizations.lock().unwrap();
            match authorizations.get_mut(&authorization.reference) {
                Some((state @ "authorized", proof)) if proof == "ok" => {
                    *state = "captured";
                    self.0.settled.fetch_add(1, Ordering::SeqCst);
                    Ok(authorization.clone())
                }
                Some((_, proof)) if proof == "capture_fails" => Err(
                    SettleError::verification_failed("The authorization has expired."),
                ),
                Some(("captured", _)) => Ok(authorization.clone()),
                _ => Err(SettleError::verification_failed("No such authorization.")),
            }
        })
    }

    fn release<'a>(
        &'a self,
        authorization: &'a Settlement,
    ) -> BoxFuture<'a, Result<(), SettleError>> {
        Box::pin(async move {
            let mut authorizations = self.0.authorizations.lock().unwrap();
            match authorizations.get_mut(&authorization.reference) {
                Some((state @ ("authorized" | "released"), _)) => {
                    *state = "released";
                    Ok(())
                }
                Some(_) => Err(SettleError::verification_failed("Already captured.")),
                None => Err(SettleError::verification_failed("No such authorization.")),
            }
        })
    }
}
