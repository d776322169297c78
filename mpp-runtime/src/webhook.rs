//! Provider notifications (webhooks): what a rail's verifier turns a
//! delivery into, so [`Gate::receive_webhook`](crate::Gate::receive_webhook)
//! can dedupe it and reconcile the payment it concerns.
//!
//! A verifier checks the delivery's signature **before** it parses anything;
//! a delivery that fails is answered 400 with nothing parsed or stored.

use std::fmt;

use thiserror::Error;

use crate::request::RequestView;
use crate::wire::Timestamp;

/// Verifies and decodes one provider's notifications.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a webhook verifier",
    note = "implement `mpp_runtime::webhook::Webhooks` (verify) for it"
)]
pub trait Webhooks: Send + Sync {
    /// Checks the delivery's signature, then decodes it. `now` is the gate's
    /// clock, for replay windows.
    fn verify(
        &self,
        request: &RequestView,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Notification, WebhookError>;
}

/// A verified notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The provider's event id: deliveries with the same id are processed
    /// once.
    pub id: String,
    /// The provider's event type (`payment_intent.succeeded`).
    pub kind: String,
    /// The payment it concerns (`pi_…`), if any.
    pub reference: Option<String>,
    /// What it says about that payment, if it is an event the gate
    /// reconciles.
    pub update: Option<PaymentUpdate>,
}

/// What a notification says about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentUpdate {
    /// The payment was taken.
    Succeeded,
    /// The payment failed.
    Failed {
        /// The provider's reason, if given.
        reason: Option<String>,
    },
    /// The payment (or its authorization) was canceled.
    Canceled,
    /// Some or all of the payment was refunded.
    Refunded {
        /// The total refunded so far, in the challenge's units.
        amount_refunded: String,
        /// Whether everything was refunded.
        full: bool,
    },
    /// The payer opened a dispute.
    Disputed {
        /// The provider's reason, if given.
        reason: Option<String>,
    },
}

/// Why a delivery was refused (answered 400, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// No signature header.
    #[error("the {0} header is missing")]
    MissingSignature(&'static str),
    /// The signature header cannot be read.
    #[error("the signature header is malformed: {0}")]
    MalformedSignature(String),
    /// The signed timestamp is outside the tolerance window.
    #[error(
        "the signature timestamp is {age_seconds} s from now, outside the {tolerance_seconds} s tolerance"
    )]
    Stale {
        /// How far the timestamp is from now.
        age_seconds: u64,
        /// The allowed distance.
        tolerance_seconds: u64,
    },
    /// No signature matches the payload under any configured secret.
    #[error("no signature matches the payload")]
    SignatureMismatch,
    /// The signed payload is not a notification this verifier understands.
    #[error("the payload is not a valid event: {0}")]
    MalformedPayload(String),
}

impl fmt::Display for PaymentUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Succeeded => f.write_str("succeeded"),
            Self::Failed { .. } => f.write_str("failed"),
            Self::Canceled => f.write_str("canceled"),
            Self::Refunded { full: true, .. } => f.write_str("refunded"),
            Self::Refunded { full: false, .. } => f.write_str("partially refunded"),
            Self::Disputed { .. } => f.write_str("disputed"),
        }
    }
}
