//! The tamper matrix: every echoed field altered, cross-route reuse, forged,
//! expired and replayed credentials each get the right problem type, and the
//! rail is never asked to settle any of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use mpp_runtime::wire::{
    Challenge, PaymentRequest, ProblemType, base64url, jcs, request::decode_object,
};
use mpp_runtime::*;
use serde_json::{Value, json};
use support::*;

struct Fixture {
    gate: Gate,
    card: Arc<TestRail>,
    chain: Arc<TestRail>,
    clock: Arc<ManualClock>,
    cheap: Route,
    dear: Route,
    twin: Route,
}

fn fixture() -> Fixture {
    let card = TestRail::new("card");
    let chain = TestRail::new("chain");
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let gate = Gate::builder(config().build().unwrap())
        .rail(Shared(card.clone()))
        .rail(Shared(chain.clone()))
        .clock(clock.clone())
        .build()
        .unwrap();
    let spec = |amount: &str, scope: &str| {
        PaymentSpec::new()
            .amount(amount)
            .scope(scope)
            .method("card")
    };
    let cheap = route(&gate, "/cheap", spec("0.50", "cheap"));
    let dear = route(&gate, "/dear", spec("50.00", "dear"));
    let twin = route(&gate, "/twin", spec("0.50", "cheap"));
    Fixture {
        gate,
        card,
        chain,
        clock,
        cheap,
        dear,
        twin,
    }
}

fn with_request(
    c: &Challenge,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> Challenge {
    let mut fields = c.request.fields().clone();
    edit(&mut fields);
    let mut out = c.clone();
    out.request = PaymentRequest::from_fields(fields);
    out
}

fn with_opaque(c: &Challenge, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Challenge {
    let mut fields = decode_object(c.opaque.as_deref().unwrap()).unwrap();
    edit(&mut fields);
    let mut out = c.clone();
    out.opaque = Some(jcs::object_to_base64url(&fields));
    out
}

#[tokio::test]
async fn every_altered_field_is_refused() {
    let f = fixture();
    let original = challenge(&f.gate, &f.cheap, "/cheap").await;
    let edit = |change: &dyn Fn(&mut Challenge)| {
        let mut c = original.clone();
        change(&mut c);
        c
    };
    let cases: Vec<(&str, Challenge, ProblemType)> = vec![
        (
            "id",
            edit(&|c| {
                c.id.replace_range(0..1, if c.id.starts_with('A') { "B" } else { "A" })
            }),
            ProblemType::InvalidChallenge,
        ),
        (
            "id empty-ish",
            edit(&|c| c.id = "x".into()),
            ProblemType::InvalidChallenge,
        ),
        (
            "realm",
            edit(&|c| c.realm = "evil.example.com".into()),
            ProblemType::InvalidChallenge,
        ),
        (
            "method (other rail)",
            edit(&|c| c.method = "chain".into()),
            ProblemType::InvalidChallenge,
        ),
        (
            "method (unknown)",
            edit(&|c| c.method = "bogus".into()),
            ProblemType::InvalidChallenge,
        ),
        (
            "intent",
            edit(&|c| c.intent = "authorize".into()),
            ProblemType::InvalidChallenge,
        ),
        (
            "amount",
            with_request(&original, |r| {
                r.insert("amount".into(), "1".into());
            }),
            ProblemType::InvalidChallenge,
        ),
        (
            "currency",
            with_request(&original, |r| {
                r.insert("currency".into(), "jpy".into());
            }),
            ProblemType::InvalidChallenge,
        ),
        (
            "recipient",
            with_request(&original, |r| {
                r.insert("recipient".into(), "acct_evil".into());
            }),
            ProblemType::InvalidChallenge,
        ),
        (
            "methodDetails",
            with_request(&original, |r| {
                r.insert("methodDetails".into(), json!({"network": "other"}));
            }),
            ProblemType::InvalidChallenge,
        ),
        (
            "extra request field",
            with_request(&original, |r| {
                r.insert("externalId".into(), "x".into());
            }),
            ProblemType::InvalidChallenge,
        ),
        (
            "opaque grants",
            with_opaque(&original, |o| {
                o.insert("grants".into(), "1000".into());
            }),
            ProblemType::InvalidChallenge,
        ),
        (
            "opaque route",
            with_opaque(&original, |o| {
                o.insert("route".into(), "GET /dear".into());
            }),
            ProblemType::InvalidChallenge,
        ),
        (
            "opaque removed",
            edit(&|c| c.opaque = None),
            ProblemType::InvalidChallenge,
        ),
        (
            "expires extended",
            edit(&|c| c.expires = Some("2099-01-01T00:00:00Z".into())),
            ProblemType::InvalidChallenge,
        ),
        (
            "expires removed",
            edit(&|c| c.expires = None),
            ProblemType::InvalidChallenge,
        ),
        (
            "digest added",
            edit(&|c| c.digest = Some("sha-256=abc".into())),
            ProblemType::InvalidChallenge,
        ),
        (
            "header added",
            edit(&|c| c.header = Some("X-Pay".into())),
            ProblemType::InvalidChallenge,
        ),
    ];
    for (what, challenge, expected) in cases {
        let response = denied(
            f.gate
                .admit(&f.cheap, with_auth("/cheap", &pay(&challenge, "ok")))
                .await,
        );
        assert_eq!(
            problem(&response),
            expected,
            "{what}: {}",
            problem_detail(&response)
        );
        assert_eq!(response.status, 402, "{what}");
        assert_challenge_response(&response);
    }
    assert_eq!(f.card.attempts() + f.chain.attempts(), 0);

    // The untouched original still pays: nothing above burned it.
    granted(
        f.gate
            .admit(&f.cheap, with_auth("/cheap", &pay(&original, "ok")))
            .await,
    );
}

#[tokio::test]
async fn unbound_fields_and_equivalent_encodings_are_accepted() {
    let f = fixture();
    let original = challenge(&f.gate, &f.cheap, "/cheap").await;
    // `description` is display-only and not bound.
    let mut relabelled = original.clone();
    relabelled.description = Some("anything".into());
    granted(
        f.gate
            .admit(&f.cheap, with_auth("/cheap", &pay(&relabelled, "ok")))
            .await,
    );

    // A client that re-encodes the echoed request (standard alphabet, padded,
    // other key order) is judged on its content.
    let other = challenge(&f.gate, &f.cheap, "/cheap").await;
    let mut json = String::from("{");
    let fields = other.request.fields();
    let mut keys: Vec<_> = fields.keys().collect();
    keys.reverse();
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            "{}:{}",
            serde_json::to_string(k).unwrap(),
            fields[*k]
        ));
    }
    json.push('}');
    let padded = base64url::encode(json.as_bytes())
        .replace('-', "+")
        .replace('_', "/");
    let padded = format!("{padded}{}", "=".repeat((4 - padded.len() % 4) % 4));
    let mut reencoded = other.clone();
    reencoded.request = PaymentRequest::decode(&padded).unwrap();
    assert_ne!(reencoded.request.encoded(), other.request.encoded());
    let token = Credential {
        challenge: reencoded,
        payload: json!({"proof": "ok"}).as_object().unwrap().clone(),
        source: None,
    };
    // `to_header` would re-canonicalize; build the wire JSON by hand.
    let mut wire = token.to_json();
    wire["challenge"]["request"] = Value::String(padded);
    let header = format!("Payment {}", base64url::encode(wire.to_string()));
    granted(f.gate.admit(&f.cheap, with_auth("/cheap", &header)).await);
}

#[tokio::test]
async fn a_credential_from_one_route_never_unlocks_another() {
    let f = fixture();
    let cheap = challenge(&f.gate, &f.cheap, "/cheap").await;
    // Cheap credential on the expensive route: the price differs.
    let response = denied(
        f.gate
            .admit(&f.dear, with_auth("/dear", &pay(&cheap, "ok")))
            .await,
    );
    assert_eq!(problem(&response), ProblemType::InvalidChallenge);
    assert!(problem_detail(&response).contains("does not match this route"));
    // Same price, same scope, other route: the route binding differs.
    let response = denied(
        f.gate
            .admit(&f.twin, with_auth("/twin", &pay(&cheap, "ok")))
            .await,
    );
    assert_eq!(problem(&response), ProblemType::InvalidChallenge);
    assert!(
        problem_detail(&response).contains("opaque"),
        "{}",
        problem_detail(&response)
    );
    assert_eq!(f.card.attempts(), 0);
}

#[tokio::test]
async fn method_offered_elsewhere_and_unknown_methods() {
    let f = fixture();
    // A route offering only `chain`, on the same gate.
    let chain_route = route(
        &f.gate,
        "/chain",
        PaymentSpec::new()
            .amount("0.50")
            .scope("cheap")
            .method("chain"),
    );
    let chain_challenge = challenge(&f.gate, &chain_route, "/chain").await;
    let response = denied(
        f.gate
            .admit(&f.cheap, with_auth("/cheap", &pay(&chain_challenge, "ok")))
            .await,
    );
    assert_eq!(problem(&response), ProblemType::InvalidChallenge);
    assert!(problem_detail(&response).contains("not offered on this route"));

    // A method this server issued once but no longer has (same secret).
    let old = Gate::builder(config().build().unwrap())
        .rail(Shared(TestRail::new("legacy")))
        .build()
        .unwrap();
    let old_route = route(
        &old,
        "/cheap",
        PaymentSpec::new().amount("0.50").scope("cheap"),
    );
    let legacy = challenge(&old, &old_route, "/cheap").await;
    let response = denied(
        f.gate
            .admit(&f.cheap, with_auth("/cheap", &pay(&legacy, "ok")))
            .await,
    );
    assert_eq!(response.status, 400);
    assert_eq!(problem(&response), ProblemType::MethodUnsupported);
    assert_challenge_response(&response);
}

#[tokio::test]
async fn forged_expired_and_replayed_credentials() {
    let f = fixture();
    // Same fields, signed by someone else's secret.
    let attacker = Gate::builder(
        Config::builder()
            .secret("an-attacker-secret-also-thirty-two-bytes")
            .realm(REALM)
            .build()
            .unwrap(),
    )
    .rail(Shared(TestRail::new("card")))
    .rail(Shared(TestRail::new("chain")))
    .build()
    .unwrap();
    let attacker_route = route(
        &attacker,
        "/cheap",
        PaymentSpec::new()
            .amount("0.50")
            .scope("cheap")
            .method("card"),
    );
    let forged = challenge(&attacker, &attacker_route, "/cheap").await;
    let response = denied(
        f.gate
            .admit(&f.cheap, with_auth("/cheap", &pay(&forged, "ok")))
            .await,
    );
    assert_eq!(problem(&response), ProblemType::InvalidChallenge);
    assert!(problem_detail(&response).contains("not issued by this server"));

    // Expired: valid signature, but the clock passed `expires`.
    let stale = challenge(&f.gate, &f.cheap, "/cheap").await;
    f.clock.advance(301);
    let response = denied(
        f.gate
            .admit(&f.cheap, with_auth("/cheap", &pay(&stale, "ok")))
            .await,
    );
    assert_eq!(problem(&response), ProblemType::PaymentExpired);
    let fresh = assert_challenge_response(&response).remove(0);
    assert!(fresh.expires_at().unwrap() > f.clock.now());

    // Replayed: the first use settles, the second is refused.
    granted(
        f.gate
            .admit(&f.cheap, with_auth("/cheap", &pay(&fresh, "ok")))
            .await,
    );
    let response = denied(
        f.gate
            .admit(&f.cheap, with_auth("/cheap", &pay(&fresh, "ok")))
            .await,
    );
    assert_eq!(problem(&response), ProblemType::InvalidChallenge);
    assert_eq!(f.card.settled(), 1);
    assert_eq!(f.card.attempts(), 1);
}

#[tokio::test]
async fn other_spellings_of_a_challenge_id_are_refused() {
    let f = fixture();
    let c = challenge(&f.gate, &f.cheap, "/cheap").await;
    let mut spellings = vec![
        format!("{}=", c.id),
        c.id.replace('-', "+").replace('_', "/"),
    ];
    // The last character carries two spare bits: three other characters
    // decode to the same 32 bytes.
    let alphabet: Vec<char> = ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(['-', '_'])
        .collect();
    let last = alphabet.iter().position(|&ch| c.id.ends_with(ch)).unwrap();
    for spare in 1..4 {
        let mut id = c.id.clone();
        id.pop();
        id.push(alphabet[(last & !3) | ((last + spare) & 3)]);
        spellings.push(id);
    }
    spellings.retain(|id| *id != c.id);
    assert!(spellings.len() >= 4);
    granted(
        f.gate
            .admit(&f.cheap, with_auth("/cheap", &pay(&c, "ok")))
            .await,
    );
    for id in spellings {
        assert_eq!(
            base64url::decode(&id).unwrap(),
            base64url::decode(&c.id).unwrap(),
            "{id}"
        );
        let mut respelled = c.clone();
        respelled.id = id.clone();
        let response = denied(
            f.gate
                .admit(&f.cheap, with_auth("/cheap", &pay(&respelled, "ok")))
                .await,
        );
        assert_eq!(problem(&response), ProblemType::InvalidChallenge, "{id}");
    }
    assert_eq!(f.card.settled(), 1);
}
