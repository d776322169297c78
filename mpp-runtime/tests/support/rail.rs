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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpp_runtime::*;
use serde_json::{Map, Value, json};

/// A rail for tests. A payload `{"proof": "ok"}` settles; `"decline"` is
/// refused; `"boom"` is a provider failure; `"slow"` never answers;
/// `"short"` reports settling less than asked.
pub struct TestRail {
    pub name: &'static str,
    pub settled: AtomicUsize,
    pub attempts: AtomicUsize,
    pub delay: Mutex<Duration>,
}

impl TestRail {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            settled: AtomicUsize::new(0),
            attempts: AtomicUsize::new(0),
            delay: Mutex::new(Duration::ZERO),
        })
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
}
