//! Property tests: the parsers never panic on arbitrary input, round trips
//! hold, and no arbitrary `Authorization` header is ever granted access.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use mpp_runtime::price::{Currency, parse_amount, validate_scope};
use mpp_runtime::wire::{
    Authorization, Challenge, Credential, PaymentRequest, Receipt, SessionInfo, Timestamp,
    auth_params, base64url, jcs,
};
use mpp_runtime::*;
use proptest::prelude::*;
use support::*;

/// Strings that look like header values: auth-param fragments, quotes,
/// escapes, commas, scheme names, base64 and a little of everything else.
fn headerish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("Payment ".to_owned()),
        Just("payment ".to_owned()),
        Just("Bearer ".to_owned()),
        Just(", ".to_owned()),
        Just("=".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("\\u".to_owned()),
        Just("\\ud83d".to_owned()),
        Just("id".to_owned()),
        Just("realm".to_owned()),
        Just("method".to_owned()),
        Just("intent".to_owned()),
        Just("request".to_owned()),
        Just("session".to_owned()),
        Just("e30".to_owned()),
        "[A-Za-z0-9_-]{0,12}",
        "[ -~]{0,6}",
        any::<String>().prop_map(|s| s.chars().take(4).collect()),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn challenge_parsers_never_panic(input in headerish()) {
        let _ = Challenge::parse(&input);
        let _ = Challenge::parse_all(&input);
        let _ = auth_params::parse_params(&input);
        let _ = auth_params::scheme_starts(&input, "Payment");
    }

    #[test]
    fn credential_parsers_never_panic(input in headerish(), token in "[A-Za-z0-9+/=_-]{0,200}") {
        let _ = Authorization::parse(&input);
        let _ = Authorization::parse(&format!("Payment {token}"));
        let _ = Credential::from_token(&token);
        let _ = SessionInfo::parse(&input);
        let _ = Receipt::parse(&token);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in any::<String>()) {
        let _ = Challenge::parse(&input);
        let _ = Authorization::parse(&input);
        let _ = Receipt::parse(&input);
        let _ = SessionInfo::parse(&input);
        let _ = base64url::decode(&input);
        let _ = Timestamp::parse_rfc3339(&input);
        let _ = parse_amount(&input, Currency::USD);
        let _ = validate_scope(&input);
        let _ = PaymentRequest::decode(&input);
    }

    #[test]
    fn json_tokens_never_panic(value in json_value()) {
        let token = base64url::encode(value.to_string());
        let _ = Credential::from_token(&token);
        let _ = Receipt::parse(&token);
        let _ = Challenge::from_json(&value);
        let _ = Credential::from_protocol_json(&value);
        let _ = jcs::to_string(&value);
    }

    #[test]
    fn base64url_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let encoded = base64url::encode(&bytes);
        prop_assert!(base64url::is_base64url_nopad(&encoded));
        prop_assert_eq!(base64url::decode(&encoded).unwrap(), bytes);
    }

    #[test]
    fn jcs_is_a_fixed_point(value in json_value()) {
        let once = jcs::to_string(&value);
        let reparsed: serde_json::Value = serde_json::from_str(&once).unwrap();
        prop_assert_eq!(jcs::to_string(&reparsed), once);
    }

    #[test]
    fn challenges_round_trip_through_the_header(
        id in "[A-Za-z0-9_-]{1,43}",
        realm in "[ -~]{0,40}",
        description in any::<String>().prop_filter("no controls", |s| !s.chars().any(|c| c.is_ascii_control() && c != '\t')),
        amount in "[1-9][0-9]{0,8}",
    ) {
        let mut fields = serde_json::Map::new();
        fields.insert("amount".into(), amount.into());
        let challenge = Challenge {
            id,
            realm,
            method: "tempo".into(),
            intent: "charge".into(),
            request: PaymentRequest::from_fields(fields),
            description: Some(description),
            digest: None,
            expires: Some("2030-01-01T00:00:00Z".into()),
            header: None,
            opaque: Some("e30".into()),
        };
        let header = challenge.to_header().unwrap();
        prop_assert!(header.is_ascii());
        prop_assert_eq!(Challenge::parse(&header).unwrap(), challenge);
    }

    #[test]
    fn amounts_round_trip(minor in 1u64..u64::MAX / 1000, exponent_code in prop::sample::select(vec!["USD", "JPY", "KWD", "CLF"])) {
        let currency = Currency::from_code(exponent_code).unwrap();
        let amount = Amount::from_minor_units(minor, currency).unwrap();
        prop_assert_eq!(parse_amount(&amount.to_string(), currency).unwrap(), amount);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        any::<String>().prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever an attacker sends, without a genuine challenge and proof
    /// nothing is granted and the rail is never reached.
    #[test]
    fn arbitrary_authorization_is_never_granted(header in headerish(), token in "[A-Za-z0-9_-]{0,120}") {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let rail = TestRail::new("test");
            let gate = gate_with(&rail);
            let route = route(&gate, "/r", PaymentSpec::new().amount("1.00").grants(3));
            for value in [header.clone(), format!("Payment {token}"), format!("Payment session=\"{token}\"")] {
                let response = denied(gate.admit(&route, with_auth("/r", &value)).await);
                assert!(matches!(response.status, 400 | 402), "{value:?} -> {}", response.status);
                assert_challenge_response(&response);
            }
            assert_eq!(rail.attempts(), 0);
        });
    }
}
