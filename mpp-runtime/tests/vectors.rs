//! The official MPP conformance vectors (tempoxyz/mpp-tools, see
//! `tests/data/conformance/README.md`): every scenario of challenge-id,
//! www-authenticate, authorization and base64url is a case here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use mpp_runtime::binding::{BindingFields, ChallengeKey, MIN_SECRET_LEN};
use mpp_runtime::wire::{Challenge, Credential, PaymentRequest, base64url};
use serde_json::Value;
use support::vectors::{decode_authorization, is_ok, load, name, wire};

fn expects_error(expectation: &Value) -> bool {
    expectation.get("error").is_some()
}

#[test]
fn base64url_vectors() {
    let cases = load("base64url.json");
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let encoded = case["encoded"].as_str().unwrap();
        if is_ok(&case["decode"]) {
            let decoded = case["decoded"].as_str().unwrap();
            assert_eq!(
                base64url::decode_to_string(encoded).unwrap(),
                decoded,
                "{}",
                name(case)
            );
        } else {
            assert_eq!(case["decode"]["error"], "encoding_error");
            assert!(
                base64url::decode_to_string(encoded).is_err(),
                "{}",
                name(case)
            );
        }
        if case.get("encode").is_some_and(is_ok) {
            let decoded = case["decoded"].as_str().unwrap();
            assert_eq!(base64url::encode(decoded), encoded, "{}", name(case));
        }
    }
}

#[test]
fn challenge_id_vectors() {
    let cases = load("challenge-id.json");
    assert_eq!(cases.len(), 29);
    for case in &cases {
        let input = &case["input"];
        let secret = input["secretKey"].as_str().unwrap();
        let s = |k: &str| input.get(k).and_then(Value::as_str);
        let request = PaymentRequest::from_fields(input["request"].as_object().unwrap().clone());
        let fields = BindingFields {
            realm: s("realm").unwrap(),
            method: s("method").unwrap(),
            intent: s("intent").unwrap(),
            request: request.encoded(),
            expires: s("expires"),
            digest: s("digest"),
            header: s("header"),
            opaque: s("opaque"),
        };
        match case.get("id").and_then(Value::as_str) {
            Some(expected) => {
                let key = ChallengeKey::new(secret).unwrap();
                assert_eq!(key.challenge_id(&fields), expected, "{}", name(case));
                assert!(key.verify_id(&fields, expected), "{}", name(case));
            }
            None => {
                assert_eq!(case["error"], "generation_error");
                assert!(secret.len() < MIN_SECRET_LEN);
                assert!(ChallengeKey::new(secret).is_err(), "{}", name(case));
            }
        }
    }
}

#[test]
fn www_authenticate_vectors() {
    let cases = load("www-authenticate.json");
    assert_eq!(cases.len(), 27);
    for case in &cases {
        let n = name(case);
        if let Some(expectation) = case.get("parse") {
            let wire = wire(case);
            let started = Instant::now();
            let parsed = Challenge::parse(&wire);
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{n}: parser too slow"
            );
            if is_ok(expectation) {
                let parsed = parsed.unwrap_or_else(|e| panic!("{n}: {e}"));
                assert_eq!(parsed.to_json(), case["object"], "{n}");
                // The list parser agrees on single-challenge headers.
                assert_eq!(Challenge::parse_all(&wire).unwrap(), vec![parsed], "{n}");
            } else {
                assert_eq!(expectation["error"], "parse_error", "{n}");
                assert!(parsed.is_err(), "{n}: parsed {parsed:?}");
            }
        }
        if let Some(expectation) = case.get("format") {
            let challenge = Challenge::from_json(&case["object"]).unwrap();
            let formatted = challenge.to_header();
            if is_ok(expectation) {
                assert_eq!(formatted.unwrap(), wire(case), "{n}");
            } else {
                assert!(expects_error(expectation));
                assert!(formatted.is_err(), "{n}");
            }
        }
        if case.get("roundtrip") == Some(&Value::Bool(true)) {
            let challenge = Challenge::from_json(&case["object"]).unwrap();
            let again = Challenge::parse(&challenge.to_header().unwrap()).unwrap();
            assert_eq!(again.to_json(), case["object"], "{n}");
        }
    }
}

#[test]
fn authorization_vectors() {
    let cases = load("authorization.json");
    assert_eq!(cases.len(), 9);
    for case in &cases {
        let n = name(case);
        let wire = wire(case);
        if let Some(expectation) = case.get("parse") {
            let parsed = Credential::parse(&wire);
            if is_ok(expectation) {
                let parsed = parsed.unwrap_or_else(|e| panic!("{n}: {e}"));
                assert_eq!(parsed.to_json(), case["object"], "{n}");
            } else {
                assert_eq!(expectation["error"], "parse_error", "{n}");
                assert!(parsed.is_err(), "{n}: parsed {parsed:?}");
            }
        }
        if let Some(expectation) = case.get("format") {
            assert!(is_ok(expectation));
            let credential = Credential::from_protocol_json(&case["object"]).unwrap();
            let formatted = credential.to_header();
            assert_eq!(
                decode_authorization(&formatted),
                decode_authorization(&wire),
                "{n}"
            );
            // The echoed request is the canonical encoding, byte for byte.
            assert_eq!(
                decode_authorization(&formatted)["challenge"]["request"],
                case["object"]["challenge"]["request"],
                "{n}"
            );
        }
        if case.get("roundtrip") == Some(&Value::Bool(true)) {
            let credential = Credential::from_protocol_json(&case["object"]).unwrap();
            let again = Credential::parse(&credential.to_header()).unwrap();
            assert_eq!(again.to_json(), case["object"], "{n}");
            assert_eq!(
                again.challenge.request.encoded(),
                credential.challenge.request.canonical()
            );
        }
    }
}
