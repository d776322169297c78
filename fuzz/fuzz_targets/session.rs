//! `Payment-Session` (the metered-session balance) and the session form of
//! `Authorization: Payment session="…"`.
//!
//! Never panics; whatever `Payment-Session` value parses formats back and
//! re-parses to the same balance (same id, credits, scope and expiry); a
//! session token's id survives being written back into a header.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use mpp_runtime::wire::auth_params::{self, MAX_HEADER_LEN};
use mpp_runtime::wire::{Authorization, SessionInfo};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(info) = SessionInfo::parse(&text) {
        let formatted = info.to_header();
        assert!(formatted.is_ascii(), "Payment-Session is not ASCII");
        if formatted.len() <= MAX_HEADER_LEN {
            let again = SessionInfo::parse(&formatted).unwrap_or_else(|e| {
                panic!("formatted Payment-Session does not parse ({e}): {formatted}")
            });
            assert_eq!(again, info, "Payment-Session round trip: {formatted}");
            assert_eq!(again.to_header(), formatted, "formatting is not a fixpoint");
        }
    }

    // The same bytes as the parameters of an `Authorization: Payment` value.
    let authorization = format!("Payment {text}");
    if let Ok(Authorization::Session(token)) = Authorization::parse(&authorization) {
        assert!(!token.id.is_empty(), "an empty session id was accepted");
        let mut header = String::from("Payment ");
        match auth_params::push_param(&mut header, "session", &token.id) {
            Ok(()) if header.len() <= MAX_HEADER_LEN => match Authorization::parse(&header) {
                Ok(Authorization::Session(again)) => assert_eq!(again.id, token.id),
                other => panic!("session header did not round-trip: {other:?}"),
            },
            Ok(()) => {}
            Err(_) => assert!(
                common::has_control(&token.id),
                "a session id without control characters could not be written back"
            ),
        }
    }
});
