//! The gate end to end with a rail defined here: 402s, paid retries,
//! receipts, multi-method offers, preconditions, configuration errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mpp_runtime::wire::{ProblemType, Receipt};
use mpp_runtime::*;
use serde_json::json;
use support::*;

#[tokio::test]
async fn unpaid_request_gets_a_signed_402() {
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let route = route(
        &gate,
        "/report",
        PaymentSpec::new()
            .amount("5.00")
            .description("Daily report"),
    );

    let response = denied(gate.admit(&route, get("/report")).await);
    assert_eq!(response.status, 402);
    assert_eq!(problem(&response), ProblemType::PaymentRequired);
    assert_eq!(
        problem_detail(&response),
        "Payment is required (Daily report)."
    );
    let challenges = assert_challenge_response(&response);
    let c = &challenges[0];
    assert_eq!(c.realm, REALM);
    assert_eq!(c.method, "test");
    assert_eq!(c.intent, "charge");
    assert_eq!(c.description.as_deref(), Some("Daily report"));
    assert_eq!(
        serde_json::Value::Object(c.request.fields().clone()),
        json!({"amount": "500", "currency": "usd", "recipient": "acct_test", "methodDetails": {"network": "test"}})
    );
    // The id is the HMAC of the fields, the opaque binds the route.
    assert!(ChallengeKey::new(SECRET).unwrap().verify_challenge(c));
    let opaque = wire::request::decode_object(c.opaque.as_deref().unwrap()).unwrap();
    assert_eq!(opaque["route"], "GET /report");
    assert_eq!(opaque["scope"], "report");
    assert_eq!(opaque["grants"], "1");
    assert!(c.expires_at().unwrap() > wire::Timestamp::now());
    // Nothing was settled, nothing stored.
    assert_eq!(rail.attempts(), 0);
}

#[tokio::test]
async fn paid_retry_is_granted_once_with_a_receipt() {
    let rail = TestRail::new("test");
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = events.clone();
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .on_event(move |e| {
            let name = match e {
                Event::ChallengeIssued { .. } => "issued",
                Event::PaymentSettled { .. } => "settled",
                Event::PaymentFailed { .. } => "failed",
                Event::SessionSpent { .. } => "spent",
                _ => "other",
            };
            log.lock().unwrap().push(name.to_owned());
        })
        .build()
        .unwrap();
    let route = route(&gate, "/report", PaymentSpec::new().amount("5.00"));
    let c = challenge(&gate, &route, "/report").await;
    let auth = pay(&c, "ok");

    let grant = granted(gate.admit(&route, with_auth("/report", &auth)).await);
    assert_eq!(grant.receipt().method, "test");
    assert_eq!(grant.receipt().reference, "test_1");
    assert!(grant.session().is_none());
    assert_eq!(grant.credential().unwrap().challenge.id, c.id);
    let headers: Vec<_> = grant.headers().collect();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, "Payment-Receipt");
    assert_eq!(Receipt::parse(headers[0].1).unwrap(), *grant.receipt());

    // The same credential again is a replay.
    let replay = denied(gate.admit(&route, with_auth("/report", &auth)).await);
    assert_eq!(problem(&replay), ProblemType::InvalidChallenge);
    assert!(problem_detail(&replay).contains("already been used"));
    assert_challenge_response(&replay);
    assert_eq!(rail.settled(), 1);
    assert_eq!(
        *events.lock().unwrap(),
        ["issued", "settled", "failed", "issued"]
    );
}

#[tokio::test]
async fn failed_settlement_does_not_burn_the_challenge() {
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let c = challenge(&gate, &route, "/r").await;

    let declined = denied(
        gate.admit(&route, with_auth("/r", &pay(&c, "decline")))
            .await,
    );
    assert_eq!(declined.status, 402);
    assert_eq!(problem(&declined), ProblemType::VerificationFailed);
    assert_eq!(problem_detail(&declined), "Your card was declined.");
    assert_challenge_response(&declined);

    let provider_down = denied(gate.admit(&route, with_auth("/r", &pay(&c, "boom"))).await);
    assert_eq!(provider_down.status, 500);
    assert_eq!(problem(&provider_down), ProblemType::InternalPaymentError);
    assert_challenge_response(&provider_down);

    let bad_payload = denied(gate.admit(&route, with_auth("/r", &pay(&c, "?"))).await);
    assert_eq!(problem(&bad_payload), ProblemType::InvalidPayload);

    // A rail reporting another amount than asked is the server's problem.
    let short = denied(gate.admit(&route, with_auth("/r", &pay(&c, "short"))).await);
    assert_eq!(short.status, 500);
    assert_eq!(problem(&short), ProblemType::InternalPaymentError);
    assert!(problem_detail(&short).contains("differs from the requested 100"));

    // The same challenge still pays once the payer fixes the proof.
    granted(gate.admit(&route, with_auth("/r", &pay(&c, "ok"))).await);
    assert_eq!(rail.settled(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_provider_times_out_without_burning() {
    let rail = TestRail::new("test");
    let gate = Gate::builder(
        config()
            .settlement_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap(),
    )
    .rail(Shared(rail.clone()))
    .build()
    .unwrap();
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let c = challenge(&gate, &route, "/r").await;
    let slow = denied(gate.admit(&route, with_auth("/r", &pay(&c, "slow"))).await);
    assert_eq!(slow.status, 500);
    assert_eq!(problem(&slow), ProblemType::InternalPaymentError);
    assert!(problem_detail(&slow).contains("did not answer in time"));
    // The lock was released and the challenge is still usable.
    granted(gate.admit(&route, with_auth("/r", &pay(&c, "ok"))).await);
}

#[tokio::test]
async fn two_methods_offer_two_challenges_and_settle_on_the_chosen_one() {
    let card = TestRail::new("card");
    let chain = TestRail::new("chain");
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(card.clone()))
        .rail(Shared(chain.clone()))
        .build()
        .unwrap();
    let route = route(
        &gate,
        "/both",
        PaymentSpec::new()
            .amount("2.00")
            .method("chain")
            .method("card"),
    );
    let response = denied(gate.admit(&route, get("/both")).await);
    let challenges = assert_challenge_response(&response);
    assert_eq!(
        challenges
            .iter()
            .map(|c| c.method.as_str())
            .collect::<Vec<_>>(),
        ["chain", "card"]
    );
    // One header value with both challenges parses the same way.
    let joined = response
        .header_values("www-authenticate")
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(wire::Challenge::parse_all(&joined).unwrap(), challenges);

    let grant = granted(
        gate.admit(&route, with_auth("/both", &pay(&challenges[1], "ok")))
            .await,
    );
    assert_eq!(grant.receipt().method, "card");
    assert_eq!((card.settled(), chain.settled()), (1, 0));
}

#[tokio::test]
async fn malformed_credentials_get_a_fresh_challenge() {
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    for bad in [
        "Payment !!!",
        "Payment W10",
        "Payment eyJjaGFsbGVuZ2UiOnt9fQ",
        "Payment e30",
        "Payment session=\"\"",
        "Payment foo=bar",
        "Payment abc, Payment def",
    ] {
        let response = denied(gate.admit(&route, with_auth("/r", bad)).await);
        assert_eq!(response.status, 402, "{bad}");
        assert_eq!(
            problem(&response),
            ProblemType::MalformedCredential,
            "{bad}"
        );
        assert_challenge_response(&response);
    }
    // Another scheme is simply no credential.
    let response = denied(gate.admit(&route, with_auth("/r", "Bearer abc")).await);
    assert_eq!(problem(&response), ProblemType::PaymentRequired);
    // A header line break can never arrive through a framework, but the
    // parser refuses one anyway.
    let response = denied(gate.admit(&route, with_auth("/r", "Payment a\r\nb")).await);
    assert_eq!(problem(&response), ProblemType::MalformedCredential);
    let huge = format!("Payment {}", "A".repeat(40_000));
    let response = denied(gate.admit(&route, with_auth("/r", &huge)).await);
    assert_eq!(problem(&response), ProblemType::MalformedCredential);
    assert_eq!(rail.attempts(), 0);
}

#[tokio::test]
async fn a_custom_credential_header_is_advertised_and_bound() {
    let rail = TestRail::new("test");
    let gate = Gate::builder(
        config()
            .credential_header("Payment-Authorization")
            .build()
            .unwrap(),
    )
    .rail(Shared(rail.clone()))
    .build()
    .unwrap();
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let c = challenge(&gate, &route, "/r").await;
    assert_eq!(c.header.as_deref(), Some("Payment-Authorization"));
    assert!(ChallengeKey::new(SECRET).unwrap().verify_challenge(&c));
    // In `Authorization` it is not looked at (the app owns that header).
    let ignored = denied(gate.admit(&route, with_auth("/r", &pay(&c, "ok"))).await);
    assert_eq!(problem(&ignored), ProblemType::PaymentRequired);
    let paid = get("/r")
        .with_header("Authorization", "Bearer app-token")
        .with_header("Payment-Authorization", &pay(&c, "ok"));
    granted(gate.admit(&route, paid).await);
}

#[tokio::test]
async fn preconditions_run_first_in_order_and_deduplicated() {
    let rail = TestRail::new("test");
    let calls = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let (c1, c2, c3) = (calls.clone(), calls.clone(), calls.clone());
    struct Posts(Vec<&'static str>);
    let gate = Gate::builder(config().global_precondition("not_blocked").build().unwrap())
        .rail(Shared(rail.clone()))
        .state(Posts(vec!["1", "2"]))
        .precondition("not_blocked", move |check: Check| {
            let calls = c1.clone();
            async move {
                calls.lock().unwrap().push("not_blocked");
                (check.header("x-user") == Some("mallory"))
                    .then(|| Rejection::forbidden("Blocked."))
            }
        })
        .precondition("post_exists", move |check: Check| {
            let calls = c2.clone();
            async move {
                calls.lock().unwrap().push("post_exists");
                let posts = check.state::<Posts>().unwrap();
                match check.param("post") {
                    Some(id) if posts.0.contains(&id) => Ok(()),
                    _ => Err(Rejection::not_found("No such post.")),
                }
            }
        })
        .build()
        .unwrap();
    let route = gate
        .route(&RouteSpec::new(
            "GET",
            "/posts/<post>",
            PaymentSpec::new()
                .amount("1.00")
                .precondition(PreconditionRef::named("post_exists"))
                .precondition(PreconditionRef::named("not_blocked"))
                .precondition(PreconditionRef::function("inline", move |_check: Check| {
                    let calls = c3.clone();
                    async move {
                        calls.lock().unwrap().push("inline");
                        None::<Rejection>
                    }
                })),
        ))
        .unwrap();
    assert_eq!(
        route.preconditions().collect::<Vec<_>>(),
        ["not_blocked", "post_exists", "inline"]
    );

    // A missing post is a 404 before any challenge is minted.
    let missing = denied(
        gate.admit(&route, get("/posts/9").with_param("post", "9"))
            .await,
    );
    assert_eq!(missing.status, 404);
    assert!(missing.header("www-authenticate").is_none());
    assert_eq!(*calls.lock().unwrap(), ["not_blocked", "post_exists"]);

    // The global check short-circuits the route's.
    calls.lock().unwrap().clear();
    let blocked = denied(
        gate.admit(
            &route,
            get("/posts/1")
                .with_param("post", "1")
                .with_header("X-User", "mallory"),
        )
        .await,
    );
    assert_eq!(blocked.status, 403);
    assert_eq!(*calls.lock().unwrap(), ["not_blocked"]);

    // All pass: the gate answers.
    calls.lock().unwrap().clear();
    let unpaid = denied(
        gate.admit(&route, get("/posts/1").with_param("post", "1"))
            .await,
    );
    assert_eq!(unpaid.status, 402);
    assert_eq!(
        *calls.lock().unwrap(),
        ["not_blocked", "post_exists", "inline"]
    );

    // A paid retry for a post deleted meanwhile is refused before settling.
    let c = challenge_for(&gate, &route, "1").await;
    let gone = denied(gate.admit(&route, paid_post("5", &c)).await);
    assert_eq!(gone.status, 404);
    assert_eq!(rail.attempts(), 0);
    granted(gate.admit(&route, paid_post("1", &c)).await);
    assert_eq!(rail.settled(), 1);
}

async fn challenge_for(gate: &Gate, route: &Route, post: &str) -> wire::Challenge {
    let response = denied(
        gate.admit(route, get("/posts").with_param("post", post))
            .await,
    );
    assert_challenge_response(&response).remove(0)
}

fn paid_post(post: &str, c: &wire::Challenge) -> RequestView {
    get("/posts")
        .with_param("post", post)
        .with_header("Authorization", &pay(c, "ok"))
}

#[tokio::test]
async fn price_book_and_defaults_fill_the_gaps() {
    let rail = TestRail::new("test");
    let gate = Gate::builder(
        config()
            .default_amount("0.25")
            .default_grants(1)
            .price("report.basic", PriceEntry::new("5.00").grants(10))
            .price("yen", PriceEntry::new("500").currency("JPY"))
            .build()
            .unwrap(),
    )
    .rail(Shared(rail.clone()))
    .build()
    .unwrap();
    let book = route(&gate, "/report", PaymentSpec::new().price("report.basic"));
    assert_eq!(book.price().amount.to_string(), "5.00");
    assert_eq!(book.grants(), 10);
    assert_eq!(book.scope(), "report.basic");
    let yen = route(&gate, "/yen", PaymentSpec::new().price("yen"));
    assert_eq!(yen.request("test").unwrap()["amount"], "500");
    assert_eq!(yen.request("test").unwrap()["currency"], "jpy");
    let defaulted = route(&gate, "/posts/<id>", PaymentSpec::new());
    assert_eq!(defaulted.price().amount.minor_units(), 25);
    assert_eq!(defaulted.scope(), "posts.id");
    assert_eq!(defaulted.methods().collect::<Vec<_>>(), ["test"]);
}

fn build_err(config: ConfigBuilder, rails: &[&'static str]) -> ConfigError {
    let mut builder = Gate::builder(config.build().unwrap());
    for name in rails {
        builder = builder.rail(Shared(TestRail::new(name)));
    }
    builder.build().unwrap_err()
}

fn route_err(gate: &Gate, path: &str, spec: PaymentSpec) -> String {
    gate.route(&RouteSpec::new("GET", path, spec))
        .unwrap_err()
        .to_string()
}

#[test]
fn misconfiguration_fails_closed_with_what_to_set() {
    let gate = Gate::builder(
        config()
            .price("report.basic", PriceEntry::new("5.00"))
            .build()
            .unwrap(),
    )
    .rail(Shared(TestRail::new("card")))
    .rail(Shared(TestRail::new("chain")))
    .build()
    .unwrap();
    let e = route_err(&gate, "/a", PaymentSpec::new().method("card"));
    assert!(
        e.contains("no amount") && e.contains("MPP_DEFAULT_AMOUNT"),
        "{e}"
    );
    let e = route_err(&gate, "/a", PaymentSpec::new().amount("1.00"));
    assert!(
        e.contains("no payment method") && e.contains("MPP_DEFAULT_METHOD"),
        "{e}"
    );
    let e = route_err(
        &gate,
        "/a",
        PaymentSpec::new().amount("1.00").method("crad"),
    );
    assert!(
        e.contains("unknown payment method `crad`") && e.contains("did you mean `card`?"),
        "{e}"
    );
    let e = route_err(
        &gate,
        "/a",
        PaymentSpec::new().price("report.basc").method("card"),
    );
    assert!(e.contains("did you mean `report.basic`?"), "{e}");
    let e = route_err(
        &gate,
        "/a",
        PaymentSpec::new().price("report.basic").amount("1.00"),
    );
    assert!(e.contains("remove `amount`"), "{e}");
    let e = route_err(
        &gate,
        "/a",
        PaymentSpec::new().amount("1.001").method("card"),
    );
    assert!(e.contains("at most 2 digits"), "{e}");
    let e = route_err(
        &gate,
        "/a",
        PaymentSpec::new()
            .amount("1")
            .currency("USX")
            .method("card"),
    );
    assert!(e.contains("did you mean `USD`?"), "{e}");
    let e = route_err(
        &gate,
        "/a",
        PaymentSpec::new().amount("1").grants(0).method("card"),
    );
    assert!(e.contains("at least 1"), "{e}");
    let e = route_err(
        &gate,
        "/a",
        PaymentSpec::new().amount("1").scope("a b").method("card"),
    );
    assert!(e.contains("not allowed in a scope"), "{e}");
    let e = route_err(
        &gate,
        "/a",
        PaymentSpec::new()
            .amount("1")
            .method("card")
            .precondition(PreconditionRef::named("post_exist")),
    );
    assert!(e.contains("unknown precondition `post_exist`"), "{e}");
    let e = route_err(
        &gate,
        "/a",
        PaymentSpec::new()
            .amount("1")
            .method("card")
            .description("a\nb"),
    );
    assert!(e.contains("cannot be sent in a header"), "{e}");

    // Two routes sharing a scope at different prices would leak sessions.
    route(
        &gate,
        "/cheap",
        PaymentSpec::new()
            .amount("1.00")
            .grants(10)
            .scope("s")
            .method("card"),
    );
    let e = route_err(
        &gate,
        "/dear",
        PaymentSpec::new()
            .amount("9.00")
            .grants(10)
            .scope("s")
            .method("card"),
    );
    assert!(
        e.contains("scope `s`") && e.contains("different scopes"),
        "{e}"
    );
    route(
        &gate,
        "/same",
        PaymentSpec::new()
            .amount("1.00")
            .grants(10)
            .scope("s")
            .method("chain"),
    );

    let e = build_err(config().global_precondition("nope"), &["card"]);
    assert!(e.to_string().contains("unknown precondition `nope`"), "{e}");
    let e = build_err(config().default_method("stripe"), &["card"]);
    assert!(
        e.to_string().contains("unknown payment method `stripe`"),
        "{e}"
    );
    let e = build_err(config(), &["card", "card"]);
    assert!(matches!(e, ConfigError::DuplicateRail(_)), "{e}");
    let e = build_err(
        config().price("p", PriceEntry::new("1").method("nope")),
        &["card"],
    );
    assert!(e.to_string().contains("price-book entry `p`"), "{e}");
}

#[test]
fn a_rail_can_refuse_its_own_configuration() {
    struct NoRecipient;
    impl Rail for NoRecipient {
        fn method(&self) -> &str {
            "chain"
        }
        fn check_config(&self) -> Result<(), RailError> {
            Err(RailError::new("no recipient: set CHAIN_RECIPIENT"))
        }
        fn challenge_request(
            &self,
            _: &Price,
        ) -> Result<serde_json::Map<String, serde_json::Value>, RailError> {
            unreachable!()
        }
        fn settle(&self, _: SettleRequest) -> BoxFuture<'_, Result<Settlement, SettleError>> {
            unreachable!()
        }
    }
    let e = Gate::builder(config().build().unwrap())
        .rail(NoRecipient)
        .build()
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "payment method `chain` is misconfigured: no recipient: set CHAIN_RECIPIENT"
    );
}

#[tokio::test]
async fn event_hooks_cannot_break_requests() {
    let rail = TestRail::new("test");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(rail.clone()))
        .on_event(|_| panic!("a buggy hook"))
        .on_event(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let c = challenge(&gate, &route, "/r").await;
    granted(gate.admit(&route, with_auth("/r", &pay(&c, "ok"))).await);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[test]
fn outside_a_tokio_runtime_a_paid_retry_fails_closed() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    /// Polls a future that never needs a runtime to make progress.
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
    let rail = TestRail::new("test");
    let gate = gate_with(&rail);
    let route = route(&gate, "/r", PaymentSpec::new().amount("1.00"));
    let response = block_on(gate.admit(&route, get("/r")));
    let Admission::Denied(response) = response else {
        panic!()
    };
    let c = assert_challenge_response(&response).remove(0);
    let paid = denied(block_on(
        gate.admit(&route, with_auth("/r", &pay(&c, "ok"))),
    ));
    assert_eq!(paid.status, 500);
    assert_eq!(problem(&paid), ProblemType::InternalPaymentError);
    assert_eq!(rail.attempts(), 0);
}
