//! Writes the seed corpus (`fuzz/corpus/<target>/`): the official
//! conformance vectors carried in `mpp-runtime/tests/data/conformance`, and
//! valid headers minted by the fuzz gate (same secret, realm and clock as
//! the targets, so its credentials verify there).
//!
//! ```sh
//! cd fuzz && cargo run --example make_seeds
//! ```

#[path = "../fuzz_targets/common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use mpp_runtime::wire::{Authorization, Challenge, Credential, SessionInfo, Timestamp};
use mpp_runtime::*;
use serde_json::{Value, json};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("corpus directory");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn vectors(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mpp-runtime/tests/data/conformance")
        .join(file);
    let data: Value = serde_json::from_slice(&fs::read(path).expect("vector file")).expect("JSON");
    data["cases"].as_array().cloned().unwrap_or_default()
}

fn main() {
    // Conformance vectors: every literal wire header.
    for case in vectors("www-authenticate.json") {
        if let (Some(name), Some(wire)) = (case["name"].as_str(), case["wire"].as_str()) {
            write("challenge", &format!("vector-{name}"), wire.as_bytes());
        }
    }
    for case in vectors("authorization.json") {
        if let (Some(name), Some(wire)) = (case["name"].as_str(), case["wire"].as_str()) {
            write("credential", &format!("vector-{name}"), wire.as_bytes());
            // The decoded JSON too: the target also reads inputs as JSON.
            if let Some(token) = wire.strip_prefix("Payment ")
                && let Ok(json) = mpp_runtime::wire::base64url::decode(token)
            {
                write("credential", &format!("vector-json-{name}"), &json);
            }
        }
    }

    // The fuzz gate's own 402s, credentials and sessions.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let gate = common::gate();
    let single = gate
        .route(&RouteSpec::new(
            "GET",
            "/fuzz",
            PaymentSpec::new().amount("1.00"),
        ))
        .expect("route");
    let metered = gate
        .route(&RouteSpec::new(
            "GET",
            "/fuzz/metered",
            PaymentSpec::new()
                .amount("5.00")
                .grants(3)
                .scope("fuzz.metered")
                .description("Fuzz \"metered\" café ☕"),
        ))
        .expect("route");
    for (name, route) in [("single", &single), ("metered", &metered)] {
        let response = gate.challenge(route);
        let header = response.header("www-authenticate").expect("challenge");
        write("challenge", &format!("gate-{name}"), header.as_bytes());
        let challenge = Challenge::parse(header).expect("parses");
        for (proof, source) in [
            ("ok", None),
            ("decline", Some(json!("did:pkh:eip155:1:0xabc"))),
        ] {
            let credential = Credential {
                challenge: challenge.clone(),
                payload: json!({"proof": proof})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                source,
            };
            write(
                "credential",
                &format!("gate-{name}-{proof}"),
                credential.to_header().as_bytes(),
            );
            write(
                "credential",
                &format!("gate-json-{name}-{proof}"),
                credential.to_json_string().as_bytes(),
            );
        }
    }
    // Two challenges in one header, and one among other schemes.
    let a = gate.challenge(&single);
    let b = gate.challenge(&metered);
    let (a, b) = (
        a.header("www-authenticate").expect("a"),
        b.header("www-authenticate").expect("b"),
    );
    write("challenge", "gate-two", format!("{a}, {b}").as_bytes());
    write(
        "challenge",
        "gate-among-schemes",
        format!("Bearer realm=\"x\", {a}, Basic realm=\"y\"").as_bytes(),
    );

    // A metered payment: its Payment-Session header and session credential.
    let challenge = Challenge::parse(
        gate.challenge(&metered)
            .header("www-authenticate")
            .expect("c"),
    )
    .expect("parses");
    let paid = Credential {
        challenge,
        payload: json!({"proof": "ok"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        source: None,
    };
    let request =
        RequestView::new("GET", "/fuzz/metered").with_header("Authorization", &paid.to_header());
    let Admission::Granted(grant) = runtime.block_on(gate.admit(&metered, request)) else {
        panic!("the seed payment was refused");
    };
    let session = grant
        .session()
        .expect("a metered grant has a session")
        .clone();
    write("session", "gate-session", session.to_header().as_bytes());
    write(
        "session",
        "gate-session-token",
        format!("session=\"{}\"", session.id).as_bytes(),
    );
    write(
        "credential",
        "gate-session-token",
        format!("Payment session=\"{}\"", session.id).as_bytes(),
    );
    let token = Authorization::parse(&format!("Payment session={}", session.id)).expect("token");
    assert!(matches!(token, Authorization::Session(_)));
    for (name, header) in [
        (
            "escapes",
            r#"id="sess_\"q\"", remaining="0", scope="a.b:c-d_e", expiresAt="2026-01-29T12:05:00.123+01:30""#,
        ),
        (
            "unicode",
            r#"ID=sess_x, Remaining=4294967295, scope="caf\u00e9 \ud83d\ude00", expiresat="9999-12-31T23:59:59Z""#,
        ),
        ("laravel", r#"method="stripe", session="sess_1""#),
    ] {
        write("session", name, header.as_bytes());
    }
    let far = SessionInfo {
        id: "sess_far".into(),
        remaining: u32::MAX,
        scope: "report.basic".into(),
        expires_at: Timestamp::from_unix(253_402_300_799),
    };
    write("session", "far-future", far.to_header().as_bytes());

    // Price specs: currency, amount, scope, grants, path, description.
    for (name, spec) in [
        ("usd", "USD\n5.00\nreport.basic\n10\n/report\nDaily report"),
        ("jpy", "jpy\n100\n\n1\n/posts/<id>\n"),
        ("kwd", "KWD\n1.234\nkwd:scope\n3\n/api/{id}/x"),
        ("clf", "CLF\n0.0001\na\n1000000\n/"),
        ("bad-amount", "USD\n5.001\nreport basic\n0\n/a/b\nline"),
        ("typo", "USX\n-1\n\n1000001\n//<<>>"),
        (
            "huge",
            "USD\n184467440737095516.15\nx\n18446744073709551616\n/x",
        ),
        ("unicode", "€UR\n５.00\nscopé\n2\n/café/☕\ncafé ☕"),
    ] {
        write("price", name, spec.as_bytes());
    }
    eprintln!("seeds written under {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
