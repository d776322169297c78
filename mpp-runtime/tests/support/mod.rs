//! Test fixtures: a rail defined by the tests, a store that can be switched
//! off, and helpers to drive a gate like a client would.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod rail;
pub mod vectors;

pub use rail::{Shared, TestRail};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mpp_runtime::wire::{Challenge, Credential, ProblemType};
use mpp_runtime::*;
use serde_json::{Value, json};

pub const SECRET: &str = "test-secret-for-the-gate-at-least-32-bytes";
pub const REALM: &str = "api.example.com";

/// A store that delegates to a [`MemoryStore`] until switched off, wholly
/// or for `claim` or `create_session` writes only.
#[derive(Clone)]
pub struct SwitchableStore {
    pub inner: MemoryStore,
    pub down: Arc<AtomicBool>,
    pub claims_fail: Arc<AtomicBool>,
    pub sessions_fail: Arc<AtomicBool>,
}

impl SwitchableStore {
    pub fn new() -> Self {
        Self {
            inner: MemoryStore::new(),
            down: Arc::new(AtomicBool::new(false)),
            claims_fail: Arc::new(AtomicBool::new(false)),
            sessions_fail: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new("connection refused"))
        } else {
            Ok(())
        }
    }

    fn check_flag(&self, flag: &AtomicBool) -> Result<(), StoreError> {
        self.check()?;
        if flag.load(Ordering::SeqCst) {
            Err(StoreError::new("write failed"))
        } else {
            Ok(())
        }
    }
}

impl Store for SwitchableStore {
    fn claim<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.check_flag(&self.claims_fail)?;
            self.inner.claim(key, ttl).await
        })
    }
    fn is_claimed<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.check()?;
            self.inner.is_claimed(key).await
        })
    }
    fn lock<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<LockToken>, StoreError>> {
        Box::pin(async move {
            self.check()?;
            self.inner.lock(key, ttl).await
        })
    }
    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: LockToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.check()?;
            self.inner.unlock(key, token).await
        })
    }
    fn create_session(
        &self,
        session: SessionRecord,
        now: wire::Timestamp,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.check_flag(&self.sessions_fail)?;
            self.inner.create_session(session, now).await
        })
    }
    fn spend_session<'a>(
        &'a self,
        id: &'a str,
        scope: &'a str,
        now: wire::Timestamp,
    ) -> BoxFuture<'a, Result<SpendOutcome, StoreError>> {
        Box::pin(async move {
            self.check()?;
            self.inner.spend_session(id, scope, now).await
        })
    }
    fn session<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            self.check()?;
            self.inner.session(id).await
        })
    }
    fn end_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.check()?;
            self.inner.end_session(id).await
        })
    }
    fn put_settlement(
        &self,
        record: SettlementRecord,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.check()?;
            self.inner.put_settlement(record, ttl).await
        })
    }
    fn settlement<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<SettlementRecord>, StoreError>> {
        Box::pin(async move {
            self.check()?;
            self.inner.settlement(reference).await
        })
    }
}

pub fn config() -> ConfigBuilder {
    Config::builder().secret(SECRET).realm(REALM)
}

/// A gate with one test rail named `test`.
pub fn gate_with(rail: &Arc<TestRail>) -> Gate {
    Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .build()
        .unwrap()
}

pub fn route(gate: &Gate, path: &str, spec: PaymentSpec) -> Route {
    gate.route(&RouteSpec::new("GET", path, spec)).unwrap()
}

pub fn get(path: &str) -> RequestView {
    RequestView::new("GET", path)
}

pub fn with_auth(path: &str, authorization: &str) -> RequestView {
    get(path).with_header("Authorization", authorization)
}

pub fn denied(admission: Admission) -> Response {
    match admission {
        Admission::Denied(response) => response,
        Admission::Granted(grant) => {
            panic!("expected a denial, got a grant: {:?}", grant.receipt())
        }
    }
}

pub fn granted(admission: Admission) -> Box<Grant> {
    match admission {
        Admission::Granted(grant) => grant,
        Admission::Denied(response) => panic!(
            "expected a grant, got {}: {}",
            response.status,
            response.body_text()
        ),
    }
}

/// The problem type of a denial.
pub fn problem(response: &Response) -> ProblemType {
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    ProblemType::from_uri(body["type"].as_str().unwrap()).unwrap()
}

pub fn problem_detail(response: &Response) -> String {
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    body["detail"].as_str().unwrap().to_owned()
}

/// Asserts the shape every payment denial must have and returns its
/// challenges.
pub fn assert_challenge_response(response: &Response) -> Vec<Challenge> {
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let challenges: Vec<Challenge> = response
        .header_values("www-authenticate")
        .map(|h| Challenge::parse(h).unwrap())
        .collect();
    assert!(!challenges.is_empty(), "no fresh challenge");
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["challengeId"], challenges[0].id.as_str());
    assert_eq!(body["status"], response.status);
    assert!(body["title"].is_string() && body["detail"].is_string());
    assert!(response.header("payment-receipt").is_none());
    challenges
}

/// The first challenge of an unpaid request to `route`.
pub async fn challenge(gate: &Gate, route: &Route, path: &str) -> Challenge {
    let response = denied(gate.admit(route, get(path)).await);
    assert_eq!(response.status, 402);
    assert_challenge_response(&response).remove(0)
}

/// A client's paid retry for `challenge` with `proof`.
pub fn pay(challenge: &Challenge, proof: &str) -> String {
    Credential {
        challenge: challenge.clone(),
        payload: json!({"proof": proof}).as_object().unwrap().clone(),
        source: None,
    }
    .to_header()
}

pub fn session_auth(id: &str) -> String {
    format!("Payment session=\"{id}\"")
}

/// Presents `authorization` on `route` until the gate grants it, as when a
/// store comes back after an outage: every refusal meanwhile must be a 503,
/// and the gate must recover within 30 seconds.
pub async fn granted_after_recovery(
    gate: &Gate,
    route: &Route,
    path: &str,
    authorization: &str,
) -> Box<Grant> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match gate.admit(route, with_auth(path, authorization)).await {
            Admission::Granted(grant) => return grant,
            Admission::Denied(response) => {
                assert_eq!(response.status, 503, "{}", response.body_text());
                assert!(
                    std::time::Instant::now() < deadline,
                    "the gate did not recover"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
