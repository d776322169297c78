//! `WWW-Authenticate: Payment …`: the challenge parser.
//!
//! Never panics; `parse` agrees with `parse_all`; whatever parses formats
//! back (or is refused only for a control character it cannot write), and
//! the formatted header parses to the same challenge and formats to the same
//! bytes; the JSON form round-trips; verifying it against a key never
//! panics and never accepts a challenge the key did not sign.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use mpp_runtime::wire::auth_params::{AuthParamError, MAX_HEADER_LEN};
use mpp_runtime::wire::{Challenge, ChallengeError};

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let first = Challenge::parse(&header);
    let all = Challenge::parse_all(&header);
    if let Ok(all) = &all {
        assert!(!all.is_empty(), "parse_all returned no challenge");
        match &first {
            Ok(first) => common::assert_same_challenge(first, &all[0], "parse vs parse_all"),
            Err(e) => panic!("parse_all accepted what parse refused: {e}"),
        }
        for challenge in all {
            round_trip(challenge);
        }
    } else if let Ok(first) = &first {
        round_trip(first);
    }
});

fn round_trip(challenge: &Challenge) {
    let key = common::key();
    let _ = key.verify_challenge(challenge);

    let json = challenge.to_json();
    let from_json = Challenge::from_json(&json).expect("to_json output is a valid challenge");
    common::assert_same_challenge(challenge, &from_json, "JSON round trip");

    let formatted = match challenge.to_header() {
        Ok(formatted) => formatted,
        Err(ChallengeError::Syntax(
            AuthParamError::ControlCharacter(_) | AuthParamError::LineBreak,
        )) => {
            assert!(
                common::challenge_has_control(challenge),
                "formatting refused a challenge without control characters"
            );
            return;
        }
        Err(e) => panic!("a parsed challenge does not format: {e}"),
    };
    assert!(formatted.is_ascii(), "formatted header is not ASCII");
    if formatted.len() > MAX_HEADER_LEN {
        // Escaping may grow a value past the parser's size limit.
        return;
    }
    let again = Challenge::parse(&formatted)
        .unwrap_or_else(|e| panic!("formatted header does not parse ({e}): {formatted}"));
    common::assert_same_challenge(challenge, &again, "header round trip");
    assert_eq!(
        again.to_header().ok().as_deref(),
        Some(formatted.as_str()),
        "formatting is not a fixpoint"
    );
    let all = Challenge::parse_all(&formatted).expect("parse_all of a formatted header");
    assert_eq!(
        all.len(),
        1,
        "one formatted challenge parsed as {}",
        all.len()
    );
}
