//! Finding the Stripe emulator (`tools/stripe-emulator`) from a test, and
//! form-encoding for talking to it. Shared by the runtime's and, by path,
//! the adapters' tests.
#![allow(dead_code, unreachable_pub, clippy::panic)]

/// The emulator's base URL from `MPP_TEST_STRIPE_API_BASE` (`.ci/run`
/// starts the emulator and sets it). Without it the test says it skipped,
/// unless `CI` is set, where it fails: CI must run it.
pub fn emulator() -> Option<String> {
    match std::env::var("MPP_TEST_STRIPE_API_BASE") {
        Ok(base) if !base.is_empty() => Some(base),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "MPP_TEST_STRIPE_API_BASE is not set: start tools/stripe-emulator/start.sh (as .ci/run does)"
            )
        }
        _ => {
            eprintln!(
                "skipped: MPP_TEST_STRIPE_API_BASE is not set (run tools/stripe-emulator/start.sh)"
            );
            None
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
