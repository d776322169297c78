//! The `mpp-conformance` adapter binary, driven the way the mpp-tools harness
//! drives it: one JSON request on stdin, one JSON line on stdout, exit 0.
//! Every conformance vector (see `tests/vectors.rs` for the same vectors
//! against the library) goes through the binary, plus `server.verify` and the
//! request-envelope edge cases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use mpp_runtime::binding::{BindingFields, ChallengeKey};
use mpp_runtime::wire::{PaymentRequest, base64url};
use serde_json::{Value, json};
use support::vectors::{decode_authorization, is_ok, load, name, wire};

// --- Driving the binary -----------------------------------------------------

/// Runs the adapter with `stdin`, checks the process contract (exit 0, one
/// JSON line on stdout) and returns the response.
fn call_raw(stdin: &[u8]) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpp-conformance"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mpp-conformance");
    // Dropping the handle closes stdin once everything is written.
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    assert!(
        output.status.success(),
        "exit status {:?}; stdout {stdout:?}; stderr {:?}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("stdout is not one terminated line: {stdout:?}"));
    assert!(
        !line.contains('\n'),
        "stdout holds more than one line: {stdout:?}"
    );
    let response: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    match response["ok"] {
        Value::Bool(true) => assert!(response.get("value").is_some(), "{response}"),
        Value::Bool(false) => {
            assert!(response["error"]["type"].is_string(), "{response}");
            assert!(response["error"]["message"].is_string(), "{response}");
        }
        _ => panic!("no boolean `ok`: {response}"),
    }
    response
}

fn call(op: &str, input: &Value) -> Value {
    call_raw(
        json!({ "schema": 1, "op": op, "input": input })
            .to_string()
            .as_bytes(),
    )
}

/// The value of a successful response.
fn value(response: Value, context: &str) -> Value {
    assert_eq!(response["ok"], true, "{context}: {response}");
    response["value"].clone()
}

/// The error type of a failed response.
fn error_type(response: &Value, context: &str) -> String {
    assert_eq!(response["ok"], false, "{context}: {response}");
    response["error"]["type"].as_str().unwrap().to_owned()
}

#[test]
fn base64url_vectors() {
    let cases = load("base64url.json");
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let n = name(case);
        let encoded = &case["encoded"];
        let decoded = call("base64url.decode", &json!({ "text": encoded }));
        if is_ok(&case["decode"]) {
            assert_eq!(value(decoded, n), json!({ "text": case["decoded"] }), "{n}");
        } else {
            assert_eq!(case["decode"]["error"], "encoding_error", "{n}");
            assert_eq!(error_type(&decoded, n), "encoding_error", "{n}");
        }
        if case.get("encode").is_some_and(is_ok) {
            let response = call("base64url.encode", &json!({ "text": case["decoded"] }));
            assert_eq!(value(response, n), json!({ "text": encoded }), "{n}");
        }
    }
}

#[test]
fn challenge_id_vectors() {
    let cases = load("challenge-id.json");
    assert_eq!(cases.len(), 29);
    for case in &cases {
        let n = name(case);
        let response = call("challenge.id", &case["input"]);
        match case.get("id") {
            Some(id) => assert_eq!(value(response, n), json!({ "id": id }), "{n}"),
            None => {
                assert_eq!(case["error"], "generation_error", "{n}");
                assert_eq!(error_type(&response, n), "generation_error", "{n}");
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
            let response = call("challenge.parse", &json!({ "header": wire(case) }));
            if is_ok(expectation) {
                assert_eq!(value(response, n), case["object"], "{n}");
            } else {
                assert_eq!(expectation["error"], "parse_error", "{n}");
                assert_eq!(error_type(&response, n), "parse_error", "{n}");
            }
        }
        if let Some(expectation) = case.get("format") {
            let response = call("challenge.format", &case["object"]);
            if is_ok(expectation) {
                assert_eq!(value(response, n), json!({ "header": wire(case) }), "{n}");
            } else {
                assert_eq!(expectation["error"], "format_error", "{n}");
                assert_eq!(error_type(&response, n), "format_error", "{n}");
            }
        }
        if case.get("roundtrip") == Some(&Value::Bool(true)) {
            let header = value(call("challenge.format", &case["object"]), n)["header"].clone();
            let again = call("challenge.parse", &json!({ "header": header }));
            assert_eq!(value(again, n), case["object"], "{n}: round trip");
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
            let response = call("credential.parse", &json!({ "header": wire }));
            if is_ok(expectation) {
                assert_eq!(value(response, n), case["object"], "{n}");
            } else {
                assert_eq!(expectation["error"], "parse_error", "{n}");
                assert_eq!(error_type(&response, n), "parse_error", "{n}");
            }
        }
        if let Some(expectation) = case.get("format") {
            assert!(is_ok(expectation), "{n}");
            let formatted = value(call("credential.format", &case["object"]), n);
            let header = formatted["header"].as_str().unwrap();
            assert_eq!(
                decode_authorization(header),
                decode_authorization(&wire),
                "{n}"
            );
        }
        if case.get("roundtrip") == Some(&Value::Bool(true)) {
            let header = value(call("credential.format", &case["object"]), n)["header"].clone();
            let again = call("credential.parse", &json!({ "header": header }));
            assert_eq!(value(again, n), case["object"], "{n}: round trip");
        }
    }
}

// --- Receipts ---------------------------------------------------------------

#[test]
fn receipts_round_trip_through_the_canonical_object() {
    let minimal = json!({
        "status": "success",
        "method": "tempo",
        "timestamp": "2026-01-29T12:00:00Z",
        "reference": "ref_123",
    });
    let full = json!({
        "status": "success",
        "method": "stripe",
        "timestamp": "2026-01-29T12:00:00Z",
        "reference": "pi_123",
        "externalId": "order_42",
        "extra": { "chainId": 42431, "fee": { "amount": "1", "payer": "server" } },
    });
    for object in [minimal, full] {
        let header = value(call("receipt.format", &object), "format")["header"].clone();
        let decoded: Value =
            serde_json::from_slice(&base64url::decode(header.as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(decoded["status"], "success");
        let parsed = value(call("receipt.parse", &json!({ "header": header })), "parse");
        assert_eq!(parsed, object);
    }
}

#[test]
fn receipt_errors() {
    let object = json!({
        "status": "failed",
        "method": "tempo",
        "timestamp": "2026-01-29T12:00:00Z",
        "reference": "ref_123",
    });
    assert_eq!(
        error_type(&call("receipt.format", &object), "status"),
        "format_error"
    );
    let mut no_reference = object.clone();
    no_reference["status"] = "success".into();
    no_reference.as_object_mut().unwrap().remove("reference");
    assert_eq!(
        error_type(&call("receipt.format", &no_reference), "reference"),
        "format_error"
    );
    let mut bad_extra = object;
    bad_extra["status"] = "success".into();
    bad_extra["extra"] = json!([1]);
    assert_eq!(
        error_type(&call("receipt.format", &bad_extra), "extra"),
        "format_error"
    );
    for header in ["not-valid!!!", "W10", "eyJzdGF0dXMiOiJmYWlsZWQifQ"] {
        let response = call("receipt.parse", &json!({ "header": header }));
        assert_eq!(error_type(&response, header), "parse_error");
    }
}

// --- server.verify ----------------------------------------------------------

const SECRET: &str = "secret-key";
const REALM: &str = "api.example.com";
const FUTURE: &str = "2099-01-01T00:00:00Z";
const EXAMPLE_ID: &str = "Ip25HCkqcMaW6FT_ziOG9BT58-7_KEwkzhdUwX8tmI8";

fn route_request(amount: &str) -> Value {
    json!({ "amount": amount, "currency": "0xabc", "recipient": "0xdef" })
}

/// A challenge echo whose id this library computes for its fields.
fn signed(realm: &str, amount: &str, expires: Option<&str>, opaque: Option<&str>) -> Value {
    let request = route_request(amount);
    let encoded = PaymentRequest::from_fields(request.as_object().unwrap().clone());
    let id = ChallengeKey::with_any_length(SECRET.as_bytes()).challenge_id(&BindingFields {
        realm,
        method: "tempo",
        intent: "charge",
        request: encoded.encoded(),
        expires,
        opaque,
        ..BindingFields::default()
    });
    let mut challenge = json!({
        "id": id, "realm": realm, "method": "tempo", "intent": "charge", "request": request,
    });
    if let Some(expires) = expires {
        challenge["expires"] = expires.into();
    }
    if let Some(opaque) = opaque {
        challenge["opaque"] = opaque.into();
    }
    challenge
}

/// The `server.verify` input of the harness's example, with `challenge` as
/// the echo.
fn verify_input(challenge: Value) -> Value {
    json!({
        "realm": REALM,
        "secretKey": SECRET,
        "method": "tempo",
        "intent": "charge",
        "request": route_request("100"),
        "expires": FUTURE,
        "credential": {
            "challenge": challenge,
            "payload": { "type": "hash", "hash": "0xabc123" },
        },
    })
}

/// The semantic result of `server.verify` (the adapter call must succeed).
fn verify(input: &Value, context: &str) -> Value {
    value(call("server.verify", input), context)
}

fn rejected(error_type: &str) -> Value {
    json!({ "ok": false, "errorType": error_type })
}

#[test]
fn the_example_challenge_id_is_the_librarys() {
    assert_eq!(signed(REALM, "100", Some(FUTURE), None)["id"], EXAMPLE_ID);
    // And it is HMAC-SHA256 over the documented pipe-joined input.
    let request = PaymentRequest::from_fields(route_request("100").as_object().unwrap().clone());
    assert_eq!(
        request.encoded(),
        base64url::encode(r#"{"amount":"100","currency":"0xabc","recipient":"0xdef"}"#)
    );
}

#[test]
fn server_verify_accepts_the_harness_example() {
    let mut challenge = signed(REALM, "100", Some(FUTURE), None);
    challenge["id"] = EXAMPLE_ID.into();
    let result = verify(&verify_input(challenge), "example");
    assert_eq!(result["ok"], true, "{result}");
    let receipt = result["receipt"].as_object().unwrap();
    assert_eq!(receipt.len(), 4, "{result}");
    assert_eq!(receipt["status"], "success");
    assert_eq!(receipt["method"], "tempo");
    assert_eq!(receipt["reference"], "conformance-receipt");
    // The built-in method settles on the harness's fixture clock.
    assert_eq!(receipt["timestamp"], "2026-01-29T12:00:00Z");
}

#[test]
fn official_server_verification_cases() {
    let cases = load("server-verification.json");
    assert_eq!(cases.len(), 7);
    for case in &cases {
        let result = verify(&case["input"], name(case));
        assert_eq!(result, case["expected"], "{}", name(case));
    }
}

#[test]
fn server_verify_rejects_altered_and_foreign_challenges() {
    // Amount changed after signing: the HMAC no longer matches.
    let mut tampered = signed(REALM, "100", Some(FUTURE), None);
    tampered["request"]["amount"] = "101".into();
    // Validly signed, but not what the route charges.
    let other_amount = signed(REALM, "101", Some(FUTURE), None);
    let other_realm = signed("other.example.com", "100", Some(FUTURE), None);
    // The route sets no opaque, so an echoed one cannot match.
    let with_opaque = signed(REALM, "100", Some(FUTURE), Some("eyJyb3V0ZSI6Ii9hcGkifQ"));
    // The route requires an expiry.
    let without_expires = signed(REALM, "100", None, None);
    let mut forged = signed(REALM, "100", Some(FUTURE), None);
    forged["id"] = "invalid-challenge-id".into();
    for (context, challenge) in [
        ("tampered amount", tampered),
        ("other amount", other_amount),
        ("other realm", other_realm),
        ("echoed opaque", with_opaque),
        ("missing expires", without_expires),
        ("forged id", forged),
    ] {
        assert_eq!(
            verify(&verify_input(challenge), context),
            rejected("invalid_challenge"),
            "{context}"
        );
    }

    // The route's method differs from the (validly signed) echo.
    let mut other_method = verify_input(signed(REALM, "100", Some(FUTURE), None));
    other_method["method"] = "stripe".into();
    assert_eq!(
        verify(&other_method, "other method"),
        rejected("invalid_challenge")
    );
}

#[test]
fn server_verify_rejects_expired_challenges() {
    let past = "2020-01-01T00:00:00Z";
    let mut input = verify_input(signed(REALM, "100", Some(past), None));
    input["expires"] = past.into();
    assert_eq!(verify(&input, "expired"), rejected("payment_expired"));
    // Challenge checks come before the method's own verification.
    input["verificationError"] = "intent rejected credential".into();
    assert_eq!(
        verify(&input, "expired, method error"),
        rejected("payment_expired")
    );
}

#[test]
fn server_verify_reports_method_failures() {
    let mut input = verify_input(signed(REALM, "100", Some(FUTURE), None));
    input["verificationError"] = "intent rejected credential".into();
    assert_eq!(
        verify(&input, "verificationError"),
        rejected("verification_failed")
    );
}

/// A named change to a valid credential object.
type Mutation = (&'static str, fn(&mut Value));

#[test]
fn server_verify_reports_malformed_credentials() {
    let valid = verify_input(signed(REALM, "100", Some(FUTURE), None));
    let mutations: [Mutation; 5] = [
        ("payload not an object", |c| {
            c["payload"] = json!("0xabc123")
        }),
        ("payload missing", |c| {
            c.as_object_mut().unwrap().remove("payload");
        }),
        ("challenge missing", |c| {
            c.as_object_mut().unwrap().remove("challenge");
        }),
        ("challenge id not a string", |c| {
            c["challenge"]["id"] = json!(7)
        }),
        ("credential not an object", |c| *c = json!("Payment abc")),
    ];
    for (context, mutate) in mutations {
        let mut input = valid.clone();
        mutate(&mut input["credential"]);
        assert_eq!(
            verify(&input, context),
            rejected("malformed_credential"),
            "{context}"
        );
    }
}

#[test]
fn server_verify_input_of_the_wrong_shape_is_an_adapter_error() {
    let valid = verify_input(signed(REALM, "100", Some(FUTURE), None));
    let mut no_credential = valid.clone();
    no_credential.as_object_mut().unwrap().remove("credential");
    let mut no_secret = valid.clone();
    no_secret.as_object_mut().unwrap().remove("secretKey");
    let mut request_string = valid;
    request_string["request"] = "e30".into();
    for (context, input) in [
        ("no credential", no_credential),
        ("no secret", no_secret),
        ("request not an object", request_string),
        ("input not an object", json!([])),
    ] {
        let response = call("server.verify", &input);
        assert_eq!(
            error_type(&response, context),
            "verification_error",
            "{context}"
        );
    }
}

// --- The request envelope ---------------------------------------------------

#[test]
fn unknown_operations_are_unsupported() {
    let response = call("challenge.frobnicate", &json!({}));
    assert_eq!(error_type(&response, "unknown op"), "unsupported_operation");
    let response = call_raw(br#"{"schema":1,"input":{}}"#);
    assert_eq!(error_type(&response, "missing op"), "unsupported_operation");
}

#[test]
fn unreadable_requests_still_get_a_response() {
    for stdin in [
        &b"this is not JSON"[..],
        b"",
        b"[1, 2]",
        b"{\"schema\":1,\"op\":",
        b"\xff\xfe{}",
        br#"{"schema":2,"op":"base64url.encode","input":{"text":"a"}}"#,
    ] {
        let response = call_raw(stdin);
        let context = String::from_utf8_lossy(stdin);
        assert_eq!(
            error_type(&response, &context),
            "unknown_error",
            "{context}"
        );
    }
}

#[test]
fn missing_or_misshapen_input_uses_the_operations_error_type() {
    let cases = [
        ("challenge.parse", "parse_error"),
        ("credential.parse", "parse_error"),
        ("receipt.parse", "parse_error"),
        ("challenge.format", "format_error"),
        ("credential.format", "format_error"),
        ("receipt.format", "format_error"),
        ("base64url.encode", "encoding_error"),
        ("base64url.decode", "encoding_error"),
        ("challenge.id", "generation_error"),
        ("server.verify", "verification_error"),
    ];
    for (op, expected) in cases {
        let missing = call_raw(json!({ "schema": 1, "op": op }).to_string().as_bytes());
        assert_eq!(error_type(&missing, op), expected, "{op}: no input");
        let misshapen = call(op, &json!({ "header": 1, "text": 1 }));
        assert_eq!(error_type(&misshapen, op), expected, "{op}: wrong shape");
    }
}
