//! `Authorization: Payment <base64url(JSON)>`: the credential decoder, and
//! the gate's handling of whatever it decodes.
//!
//! Each input is tried twice: as the `Authorization` value, and as the JSON
//! inside a credential token (so the fuzzer mutates JSON, not base64).
//! Never panics; a decoded credential formats back and decodes to the same
//! credential (canonical JSON is a fixpoint); its protocol JSON round-trips;
//! and the gate (fuzz rail, memory store, fixed clock) grants access only to
//! a credential whose challenge this gate signed, that carries a settling
//! proof, once per challenge, and refuses everything else with a 402 (or a
//! 400 for an unknown method), never a 5xx.
#![no_main]

mod common;

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use mpp_runtime::wire::credential::MAX_CREDENTIAL_LEN;
use mpp_runtime::wire::{Authorization, Credential, base64url};
use mpp_runtime::*;

struct Harness {
    runtime: tokio::runtime::Runtime,
    gate: Gate,
    routes: Vec<Route>,
    key: ChallengeKey,
    granted: Mutex<HashSet<String>>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let gate = common::gate();
        let routes = vec![
            gate.route(&RouteSpec::new(
                "GET",
                "/fuzz",
                PaymentSpec::new().amount("1.00"),
            ))
            .expect("fuzz route"),
            gate.route(&RouteSpec::new(
                "GET",
                "/fuzz/metered",
                PaymentSpec::new()
                    .amount("5.00")
                    .grants(3)
                    .scope("fuzz.metered"),
            ))
            .expect("metered fuzz route"),
        ];
        Harness {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a Tokio runtime"),
            gate,
            routes,
            key: common::key(),
            granted: Mutex::new(HashSet::new()),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Authorization::parse(&text) {
        Ok(Authorization::Credential(credential)) => round_trip(&credential),
        Ok(Authorization::Session(token)) => {
            assert!(!token.id.is_empty(), "an empty session id was accepted");
        }
        Err(_) => {}
    }
    let from_values = Authorization::from_values([text.as_ref()]);
    assert_eq!(
        from_values.as_ref().map(Result::is_ok),
        match Authorization::parse(&text) {
            Err(mpp_runtime::wire::CredentialError::MissingScheme) => None,
            other => Some(other.is_ok()),
        },
        "from_values disagrees with parse"
    );
    admit(&text);

    if let Ok(credential) = Credential::from_token(&base64url::encode(data)) {
        round_trip(&credential);
        admit(&credential.to_header());
    }
});

fn round_trip(credential: &Credential) {
    let canonical = credential.to_json_string();
    let header = credential.to_header();
    if header.len() <= MAX_CREDENTIAL_LEN {
        let again = Credential::parse(&header)
            .unwrap_or_else(|e| panic!("a formatted credential does not parse: {e}"));
        common::assert_same_challenge(&credential.challenge, &again.challenge, "header round trip");
        assert_eq!(
            again.to_json_string(),
            canonical,
            "canonical JSON is not a fixpoint"
        );
        assert_eq!(again.to_header(), header, "formatting is not a fixpoint");
    }
    let protocol = Credential::from_protocol_json(&credential.to_json())
        .unwrap_or_else(|e| panic!("to_json output is not a credential: {e}"));
    common::assert_same_challenge(
        &credential.challenge,
        &protocol.challenge,
        "JSON round trip",
    );
    assert_eq!(
        protocol.to_json_string(),
        canonical,
        "protocol JSON round trip"
    );

    let h = harness();
    let signed = h.key.verify_challenge(&credential.challenge);
    for route in &h.routes {
        if h.gate.verify_credential(route, credential).is_ok() {
            assert!(
                signed,
                "verify_credential accepted a challenge this gate did not sign"
            );
        }
    }
}

/// Runs the value through the gate on every fuzz route.
fn admit(value: &str) {
    let h = harness();
    let parsed = Authorization::parse(value);
    for route in &h.routes {
        let mut request = RequestView::new("GET", "/fuzz");
        // Only what an HTTP stack can deliver: no line breaks.
        if !value.contains(['\r', '\n']) {
            request = request.with_header("Authorization", value);
        }
        match h.runtime.block_on(h.gate.admit(route, request)) {
            Admission::Granted(grant) => {
                let Ok(Authorization::Credential(credential)) = &parsed else {
                    // A session credit: only a session this gate created.
                    let Ok(Authorization::Session(token)) = &parsed else {
                        panic!("access granted without a credential or session");
                    };
                    let session = grant
                        .session()
                        .expect("a session grant carries its session");
                    assert_eq!(session.id, token.id);
                    continue;
                };
                assert!(
                    h.key.verify_challenge(&credential.challenge),
                    "access granted for a challenge this gate did not sign"
                );
                assert_eq!(
                    credential.payload.get("proof").and_then(|p| p.as_str()),
                    Some("ok"),
                    "access granted without a settling proof"
                );
                assert!(
                    h.granted
                        .lock()
                        .expect("granted set")
                        .insert(credential.challenge.id.clone()),
                    "one challenge was granted twice"
                );
            }
            Admission::Denied(response) => {
                assert!(
                    matches!(response.status, 400 | 402),
                    "a refused credential answered {}",
                    response.status
                );
                assert!(
                    response.header("www-authenticate").is_some(),
                    "a refusal without a fresh challenge"
                );
            }
        }
    }
}
