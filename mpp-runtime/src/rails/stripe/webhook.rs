//! Stripe webhook verification: `Stripe-Signature: t=…,v1=…[,v1=…]` is an
//! HMAC-SHA256 of `"{t}.{raw body}"` under the endpoint's signing secret
//! (`whsec_…`), hex-encoded. The signature is checked (constant-time, every
//! `v1` against every configured secret, so secrets can be rolled) and the
//! timestamp held to a tolerance **before** the body is parsed.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::request::RequestView;
use crate::webhook::{Notification, PaymentUpdate, WebhookError, Webhooks};
use crate::wire::Timestamp;

/// The header Stripe signs deliveries with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// How far a delivery's signed timestamp may be from now by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Longest `Stripe-Signature` header read.
const MAX_HEADER: usize = 4096;

/// Verifies Stripe webhook deliveries and maps the payment events the gate
/// reconciles: `payment_intent.succeeded`, `payment_intent.payment_failed`,
/// `payment_intent.canceled`, `charge.refunded`, `charge.dispute.created`.
///
/// ```
/// use std::time::Duration;
/// use mpp_runtime::RequestView;
/// use mpp_runtime::rails::stripe::StripeWebhooks;
/// use mpp_runtime::webhook::{WebhookError, Webhooks};
/// use mpp_runtime::wire::Timestamp;
///
/// let webhooks = StripeWebhooks::new(["whsec_test"], Duration::from_secs(300));
/// let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1"}}}"#;
/// let signed = StripeWebhooks::sign("whsec_test", 1_700_000_000, body);
/// let request = RequestView::new("POST", "/stripe/webhook").with_header("Stripe-Signature", &signed);
/// let now = Timestamp::from_unix(1_700_000_060);
/// let event = webhooks.verify(&request, body, now).unwrap();
/// assert_eq!(event.reference.as_deref(), Some("pi_1"));
///
/// let forged = StripeWebhooks::sign("whsec_guess", 1_700_000_000, body);
/// let request = RequestView::new("POST", "/stripe/webhook").with_header("Stripe-Signature", &forged);
/// assert_eq!(webhooks.verify(&request, body, now), Err(WebhookError::SignatureMismatch));
/// ```
#[derive(Clone)]
pub struct StripeWebhooks {
    secrets: Vec<String>,
    tolerance: Duration,
}

impl fmt::Debug for StripeWebhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeWebhooks")
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl StripeWebhooks {
    /// A verifier accepting signatures under any of `secrets` (more than
    /// one while rolling the endpoint's secret).
    pub fn new(secrets: impl IntoIterator<Item = impl Into<String>>, tolerance: Duration) -> Self {
        Self {
            secrets: secrets
                .into_iter()
                .map(Into::into)
                .filter(|s: &String| !s.is_empty())
                .collect(),
            tolerance,
        }
    }

    /// Signs `payload` at `timestamp` with `secret`, as Stripe does: the
    /// value of a `Stripe-Signature` header. For tests and local tooling.
    pub fn sign(secret: &str, timestamp: u64, payload: &[u8]) -> String {
        let mut header = format!("t={timestamp},v1=");
        for byte in mac(secret, timestamp, payload).finalize().into_bytes() {
            header.push(char::from(HEX[usize::from(byte >> 4)]));
            header.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        header
    }

    fn check(&self, header: &str, body: &[u8], now: Timestamp) -> Result<(), WebhookError> {
        let signed = Signature::parse(header)?;
        let age = now.unix().abs_diff(signed.timestamp);
        if age > self.tolerance.as_secs() {
            return Err(WebhookError::Stale {
                age_seconds: age,
                tolerance_seconds: self.tolerance.as_secs(),
            });
        }
        for secret in &self.secrets {
            let expected = mac(secret, signed.timestamp, body);
            for candidate in &signed.v1 {
                // Constant-time comparison.
                if expected.clone().verify_slice(candidate).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(WebhookError::SignatureMismatch)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn mac(secret: &str, timestamp: u64, payload: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// A parsed `Stripe-Signature` header.
struct Signature {
    timestamp: u64,
    v1: Vec<Vec<u8>>,
}

impl Signature {
    fn parse(header: &str) -> Result<Self, WebhookError> {
        let bad = |why: &str| WebhookError::MalformedSignature(why.to_owned());
        if header.len() > MAX_HEADER {
            return Err(bad("too long"));
        }
        let mut timestamp = None;
        let mut v1 = Vec::new();
        for item in header.split(',') {
            let Some((key, value)) = item.trim().split_once('=') else {
                return Err(bad("expected key=value items"));
            };
            match key {
                "t" => {
                    if timestamp.is_some() {
                        return Err(bad("more than one timestamp"));
                    }
                    timestamp = Some(value.parse::<u64>().map_err(|_| bad("bad timestamp"))?);
                }
                "v1" => v1.push(decode_hex(value).ok_or_else(|| bad("bad v1 signature"))?),
                // v0 (test-mode legacy) and future schemes are ignored.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or_else(|| bad("no timestamp"))?;
        if v1.is_empty() {
            return Err(bad("no v1 signature"));
        }
        Ok(Self { timestamp, v1 })
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

impl Webhooks for StripeWebhooks {
    fn verify(
        &self,
        request: &RequestView,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Notification, WebhookError> {
        let header = request
            .header(SIGNATURE_HEADER)
            .ok_or(WebhookError::MissingSignature(SIGNATURE_HEADER))?;
        self.check(header, body, now)?;
        decode(body)
    }
}

/// Decodes a verified event.
fn decode(body: &[u8]) -> Result<Notification, WebhookError> {
    let bad = |why: &str| WebhookError::MalformedPayload(why.to_owned());
    let event: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let id = event["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad("no event id"))?;
    let kind = event["type"]
        .as_str()
        .filter(|kind| !kind.is_empty())
        .ok_or_else(|| bad("no event type"))?;
    let object = &event["data"]["object"];
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let intent_id = || text(&object["id"]).filter(|id| id.starts_with("pi_"));
    let (reference, update) = match kind {
        "payment_intent.succeeded" => (intent_id(), Some(PaymentUpdate::Succeeded)),
        "payment_intent.payment_failed" => (
            intent_id(),
            Some(PaymentUpdate::Failed {
                reason: text(&object["last_payment_error"]["message"]),
            }),
        ),
        "payment_intent.canceled" => (intent_id(), Some(PaymentUpdate::Canceled)),
        "charge.refunded" => {
            let refunded = object["amount_refunded"]
                .as_u64()
                .ok_or_else(|| bad("charge.refunded without amount_refunded"))?;
            let full = object["refunded"].as_bool().unwrap_or(false)
                || object["amount"].as_u64().is_some_and(|a| refunded >= a);
            (
                text(&object["payment_intent"]),
                Some(PaymentUpdate::Refunded {
                    amount_refunded: refunded.to_string(),
                    full,
                }),
            )
        }
        "charge.dispute.created" => (
            text(&object["payment_intent"]),
            Some(PaymentUpdate::Disputed {
                reason: text(&object["reason"]),
            }),
        ),
        _ => (text(&object["payment_intent"]).or_else(intent_id), None),
    };
    Ok(Notification {
        id: id.to_owned(),
        kind: kind.to_owned(),
        reference,
        update,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: u64 = 1_800_000_000;

    fn verifier() -> StripeWebhooks {
        StripeWebhooks::new([SECRET], DEFAULT_TOLERANCE)
    }

    fn delivery(signature: &str) -> RequestView {
        RequestView::new("POST", "/stripe/webhook").with_header(SIGNATURE_HEADER, signature)
    }

    const SUCCEEDED: &[u8] =
        br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent"}}}"#;

    #[test]
    fn a_signed_delivery_is_decoded() {
        let header = StripeWebhooks::sign(SECRET, NOW, SUCCEEDED);
        let n = verifier()
            .verify(
                &delivery(&header),
                SUCCEEDED,
                Timestamp::from_unix(NOW + 10),
            )
            .unwrap();
        assert_eq!(n.id, "evt_1");
        assert_eq!(n.reference.as_deref(), Some("pi_1"));
        assert_eq!(n.update, Some(PaymentUpdate::Succeeded));
    }

    /// The example from Stripe's documentation of the scheme: the signature
    /// of `t.payload` with the secret, hex-encoded.
    #[test]
    fn the_signature_is_hmac_sha256_of_t_dot_payload() {
        let header = StripeWebhooks::sign("whsec_x", 1, b"{}");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"whsec_x").unwrap();
        mac.update(b"1.{}");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(header, format!("t=1,v1={hex}"));
    }

    #[test]
    fn tampering_a_wrong_secret_and_stale_timestamps_are_refused() {
        let header = StripeWebhooks::sign(SECRET, NOW, SUCCEEDED);
        let now = Timestamp::from_unix(NOW);
        let tampered = SUCCEEDED.to_vec().into_iter().rev().collect::<Vec<_>>();
        assert_eq!(
            verifier().verify(&delivery(&header), &tampered, now),
            Err(WebhookError::SignatureMismatch)
        );
        let other = StripeWebhooks::sign("whsec_other", NOW, SUCCEEDED);
        assert_eq!(
            verifier().verify(&delivery(&other), SUCCEEDED, now),
            Err(WebhookError::SignatureMismatch)
        );
        assert!(matches!(
            verifier().verify(
                &delivery(&header),
                SUCCEEDED,
                Timestamp::from_unix(NOW + 301)
            ),
            Err(WebhookError::Stale {
                age_seconds: 301,
                ..
            })
        ));
        assert!(matches!(
            verifier().verify(
                &delivery(&header),
                SUCCEEDED,
                Timestamp::from_unix(NOW - 301)
            ),
            Err(WebhookError::Stale { .. })
        ));
        assert_eq!(
            verifier().verify(&RequestView::new("POST", "/"), SUCCEEDED, now),
            Err(WebhookError::MissingSignature(SIGNATURE_HEADER))
        );
        for malformed in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,t=2,v1=00",
            "garbage",
            "t=1,v1=zz",
        ] {
            assert!(
                matches!(
                    verifier().verify(&delivery(malformed), SUCCEEDED, now),
                    Err(WebhookError::MalformedSignature(_))
                ),
                "{malformed:?}"
            );
        }
    }

    #[test]
    fn any_v1_under_any_secret_passes_while_rolling_secrets() {
        let old = StripeWebhooks::sign("whsec_old", NOW, SUCCEEDED);
        let new = StripeWebhooks::sign(SECRET, NOW, SUCCEEDED);
        let v1 = |header: &str| header.split_once("v1=").unwrap().1.to_owned();
        let both = format!("t={NOW},v1={},v1={}", v1(&old), v1(&new));
        let now = Timestamp::from_unix(NOW);
        assert!(verifier().verify(&delivery(&both), SUCCEEDED, now).is_ok());
        let rolling = StripeWebhooks::new(["whsec_old", SECRET], DEFAULT_TOLERANCE);
        assert!(rolling.verify(&delivery(&old), SUCCEEDED, now).is_ok());
        assert!(rolling.verify(&delivery(&new), SUCCEEDED, now).is_ok());
    }

    #[test]
    fn payment_events_map_to_updates() {
        let cases: [(&str, Option<&str>, Option<PaymentUpdate>); 6] = [
            (
                r#"{"id":"evt_2","type":"payment_intent.payment_failed","data":{"object":{"id":"pi_2","last_payment_error":{"message":"Your card was declined."}}}}"#,
                Some("pi_2"),
                Some(PaymentUpdate::Failed {
                    reason: Some("Your card was declined.".into()),
                }),
            ),
            (
                r#"{"id":"evt_3","type":"payment_intent.canceled","data":{"object":{"id":"pi_3"}}}"#,
                Some("pi_3"),
                Some(PaymentUpdate::Canceled),
            ),
            (
                r#"{"id":"evt_4","type":"charge.refunded","data":{"object":{"id":"ch_4","payment_intent":"pi_4","amount":500,"amount_refunded":200,"refunded":false}}}"#,
                Some("pi_4"),
                Some(PaymentUpdate::Refunded {
                    amount_refunded: "200".into(),
                    full: false,
                }),
            ),
            (
                r#"{"id":"evt_5","type":"charge.refunded","data":{"object":{"id":"ch_5","payment_intent":"pi_5","amount":500,"amount_refunded":500,"refunded":true}}}"#,
                Some("pi_5"),
                Some(PaymentUpdate::Refunded {
                    amount_refunded: "500".into(),
                    full: true,
                }),
            ),
            (
                r#"{"id":"evt_6","type":"charge.dispute.created","data":{"object":{"id":"dp_6","payment_intent":"pi_6","reason":"fraudulent"}}}"#,
                Some("pi_6"),
                Some(PaymentUpdate::Disputed {
                    reason: Some("fraudulent".into()),
                }),
            ),
            (
                r#"{"id":"evt_7","type":"customer.created","data":{"object":{"id":"cus_7"}}}"#,
                None,
                None,
            ),
        ];
        for (body, reference, update) in cases {
            let n = decode(body.as_bytes()).unwrap();
            assert_eq!(n.reference.as_deref(), reference, "{body}");
            assert_eq!(n.update, update, "{body}");
        }
        assert!(matches!(
            decode(b"[]"),
            Err(WebhookError::MalformedPayload(_))
        ));
        assert!(matches!(
            decode(b"{\"type\":\"x\"}"),
            Err(WebhookError::MalformedPayload(_))
        ));
    }
}
