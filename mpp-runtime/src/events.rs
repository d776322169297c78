//! Event hooks for accounting and metrics: challenge issued, payment
//! authorized, settled, released or failed, session spent, provider
//! notification reconciled.
//!
//! Hooks run inline and must be quick (hand heavy work to a channel or a
//! task). A hook that panics is contained and logged; it never affects the
//! request.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::rail::Settlement;
use crate::store::SettlementRecord;
use crate::webhook::Notification;
use crate::wire::{ProblemType, Receipt, SessionInfo};

/// Something the gate did.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A fresh challenge was sent (with a 402, or with an error problem).
    ChallengeIssued {
        /// The route.
        route: &'a str,
        /// The method the challenge is for.
        method: &'a str,
        /// The challenge id.
        challenge_id: &'a str,
        /// The problem sent with it.
        problem: ProblemType,
    },
    /// A payment settled and access was granted.
    PaymentSettled {
        /// The route.
        route: &'a str,
        /// The id of the challenge that was paid.
        challenge_id: &'a str,
        /// What the rail reported.
        settlement: &'a Settlement,
        /// The receipt sent to the client.
        receipt: &'a Receipt,
    },
    /// A payment was authorized for a `capture = "after"` route; the
    /// handler runs next, and the payment is captured (then
    /// [`Event::PaymentSettled`]) or released ([`Event::PaymentReleased`]).
    PaymentAuthorized {
        /// The route.
        route: &'a str,
        /// The id of the challenge that was paid.
        challenge_id: &'a str,
        /// The authorization the rail reported.
        settlement: &'a Settlement,
    },
    /// An authorization was released instead of captured: the handler did
    /// not answer 2xx, panicked, the client went away, or the capture
    /// failed.
    PaymentReleased {
        /// The route.
        route: &'a str,
        /// The provider's reference of the authorization.
        reference: &'a str,
        /// Why.
        reason: &'a str,
        /// Whether the provider confirmed the release (if not, the
        /// authorization lapses on its own; the error is logged).
        released: bool,
    },
    /// A verified provider notification (webhook) was processed: the
    /// settlement record it concerns, if the gate has one, is updated.
    Reconciled {
        /// The payment method whose provider sent it.
        method: &'a str,
        /// The notification.
        notification: &'a Notification,
        /// The record after the update, if the payment is known here.
        record: Option<&'a SettlementRecord>,
    },
    /// A credential was refused.
    PaymentFailed {
        /// The route.
        route: &'a str,
        /// The method the credential named, if it could be read.
        method: Option<&'a str>,
        /// The echoed challenge id, if it could be read.
        challenge_id: Option<&'a str>,
        /// Why.
        problem: ProblemType,
        /// The detail sent to the client.
        detail: &'a str,
    },
    /// A payment for a metered route settled, but its session could never be
    /// stored: the payer got the accesses it used and `credits_lost` credits
    /// are owed (refund or re-issue them; the error is also logged). A
    /// session the store refuses is first kept in memory and written in the
    /// background; this fires only if it expires before the store takes it,
    /// or if too many are waiting.
    SessionNotRecorded {
        /// The route.
        route: &'a str,
        /// The receipt of the payment.
        receipt: &'a Receipt,
        /// Paid credits the payer could not get.
        credits_lost: u32,
    },
    /// A metered session credit was spent (including the first one, right
    /// after payment).
    SessionSpent {
        /// The route.
        route: &'a str,
        /// The session after spending.
        session: &'a SessionInfo,
    },
}

/// A registered hook.
pub(crate) type Hook = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// Runs every hook, containing panics.
pub(crate) fn emit(hooks: &[Hook], event: &Event<'_>) {
    for hook in hooks {
        if catch_unwind(AssertUnwindSafe(|| hook(event))).is_err() {
            tracing::error!(
                ?event,
                "an mpp event hook panicked; the request is unaffected"
            );
        }
    }
}
