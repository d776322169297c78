//! Provider notifications (webhooks) through the gate: verify the signature
//! before anything is parsed, process each event once, bring the settlement
//! record up to date, end the session of a refunded or disputed payment, and
//! fire the event hooks.

use std::time::Duration;

use super::{Gate, GateInner};
use crate::events::Event;
use crate::request::RequestView;
use crate::response::{Rejection, Response};
use crate::store::{LockToken, PaymentStatus, SettlementRecord, StoreError};
use crate::webhook::{Notification, PaymentUpdate};
use crate::wire::headers;

/// How long a processed event id is remembered (providers retry for days:
/// Stripe for up to three).
const EVENT_MEMORY: Duration = Duration::from_secs(7 * 86_400);

/// How long one delivery may hold its payment's reconciliation lock.
const RECONCILE_LEASE: Duration = Duration::from_secs(30);

impl Gate {
    /// Processes a provider notification (webhook) for the rail of `method`:
    /// `request` carries its headers and `body` its raw bytes, exactly as
    /// received (the signature covers them).
    ///
    /// - The rail's verifier checks the signature first; a delivery that
    ///   fails (missing, malformed or stale signature, no matching secret)
    ///   is answered 400 and nothing is parsed or stored.
    /// - Each event id is processed once: a repeated delivery gets 200 with
    ///   `"duplicate": true` and changes nothing.
    /// - The settlement record of the payment it concerns is updated
    ///   (never moved back to an earlier stage by a late delivery); a full
    ///   refund or a dispute ends the metered session the payment bought.
    /// - [`Event::Reconciled`] fires.
    ///
    /// A store outage answers 503 and a delivery racing another for the
    /// same payment 409, so the provider delivers again later. A rail with
    /// no webhook secret configured answers 500 and logs what to set; a
    /// method with no rail answers 404.
    pub async fn receive_webhook(
        &self,
        method: &str,
        request: &RequestView,
        body: &[u8],
    ) -> Response {
        receive(&self.0, method, request, body).await
    }
}

fn json(status: u16, body: &'static str) -> Response {
    Response::new(status)
        .with_header(headers::CACHE_CONTROL, "no-store")
        .with_body("application/json", body)
}

fn problem(status: u16, title: &str, detail: &str) -> Response {
    Rejection::problem(status, title, detail)
        .into_response()
        .with_header(headers::CACHE_CONTROL, "no-store")
}

fn unavailable(error: &StoreError) -> Response {
    tracing::error!(%error, "payment store unavailable while processing a webhook; the provider will deliver it again");
    problem(
        503,
        "Service Unavailable",
        "The payment store is unavailable; deliver this event again later.",
    )
}

async fn receive(gate: &GateInner, method: &str, request: &RequestView, body: &[u8]) -> Response {
    let Some(rail) = gate.rails.get(method) else {
        tracing::warn!(
            method,
            "a webhook arrived for a payment method this gate has no rail for"
        );
        return problem(
            404,
            "Not Found",
            "No webhook endpoint for this payment method.",
        );
    };
    let Some(verifier) = rail.webhooks() else {
        tracing::error!(
            method,
            "a webhook arrived but the `{method}` rail has no webhook secret configured \
             (for stripe: set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret, whsec_…)"
        );
        return problem(
            500,
            "Internal Server Error",
            "This webhook endpoint is not configured.",
        );
    };
    let notification = match verifier.verify(request, body, gate.clock.now()) {
        Ok(notification) => notification,
        Err(e) => {
            tracing::warn!(method, error = %e, "refused a webhook delivery");
            return problem(
                400,
                "Bad Request",
                "The webhook signature could not be verified.",
            );
        }
    };

    // One delivery at a time per payment, so updates to its record do not
    // race; other events are serialized by their own id.
    let subject = notification
        .reference
        .as_deref()
        .unwrap_or(&notification.id);
    let lock = format!("mpp:lock:webhook:{method}:{subject}");
    let token = match gate.store.lock(&lock, RECONCILE_LEASE).await {
        Ok(Some(token)) => token,
        Ok(None) => {
            return problem(
                409,
                "Conflict",
                "Another event for this payment is being processed; deliver this one again later.",
            );
        }
        Err(e) => return unavailable(&e),
    };
    let outcome = process(gate, method, &notification).await;
    release(gate, &lock, token).await;
    match outcome {
        Ok(Processed::Duplicate) => {
            tracing::debug!(method, event = %notification.id, "duplicate webhook delivery ignored");
            json(200, r#"{"received":true,"duplicate":true}"#)
        }
        Ok(Processed::Done(record)) => {
            tracing::info!(
                method,
                event = %notification.id,
                kind = %notification.kind,
                status = record.as_ref().map(|r| r.status.as_str()),
                "webhook processed"
            );
            gate.emit(&Event::Reconciled {
                method,
                notification: &notification,
                record: record.as_deref(),
            });
            json(200, r#"{"received":true}"#)
        }
        Err(e) => unavailable(&e),
    }
}

async fn release(gate: &GateInner, lock: &str, token: LockToken) {
    if let Err(e) = gate.store.unlock(lock, token).await {
        tracing::warn!(%e, "could not release a webhook lock; it expires on its own");
    }
}

enum Processed {
    Duplicate,
    Done(Option<Box<SettlementRecord>>),
}

async fn process(
    gate: &GateInner,
    method: &str,
    notification: &Notification,
) -> Result<Processed, StoreError> {
    let seen = format!("mpp:webhook:{method}:{}", notification.id);
    if gate.store.is_claimed(&seen).await? {
        return Ok(Processed::Duplicate);
    }
    let record = match (&notification.reference, &notification.update) {
        (Some(reference), Some(update)) => match gate.store.settlement(reference).await? {
            Some(record) => Some(Box::new(apply(gate, record, update).await?)),
            None => None,
        },
        (Some(reference), None) => gate.store.settlement(reference).await?.map(Box::new),
        (None, _) => None,
    };
    // Recorded last: a failure above leaves the event unprocessed, so the
    // provider's next delivery is processed in full.
    gate.store.claim(&seen, EVENT_MEMORY).await?;
    Ok(Processed::Done(record))
}

async fn apply(
    gate: &GateInner,
    mut record: SettlementRecord,
    update: &PaymentUpdate,
) -> Result<SettlementRecord, StoreError> {
    let status = match update {
        PaymentUpdate::Succeeded => PaymentStatus::Succeeded,
        PaymentUpdate::Failed { .. } => PaymentStatus::Failed,
        PaymentUpdate::Canceled => PaymentStatus::Canceled,
        PaymentUpdate::Refunded { full: true, .. } => PaymentStatus::Refunded,
        PaymentUpdate::Refunded { full: false, .. } => PaymentStatus::PartiallyRefunded,
        PaymentUpdate::Disputed { .. } => PaymentStatus::Disputed,
    };
    if let PaymentUpdate::Refunded {
        amount_refunded, ..
    } = update
    {
        // Refund events report the running total; a late one can be lower.
        let known = record
            .amount_refunded
            .as_deref()
            .and_then(|a| a.parse::<u128>().ok());
        match (known, amount_refunded.parse::<u128>().ok()) {
            (Some(known), Some(new)) if new <= known => {}
            _ => record.amount_refunded = Some(amount_refunded.clone()),
        }
    }
    if status.stage() >= record.status.stage() {
        record.status = status;
    }
    record.updated_at = gate.clock.now();
    let revoke = matches!(
        update,
        PaymentUpdate::Refunded { full: true, .. } | PaymentUpdate::Disputed { .. }
    );
    if revoke
        && let Some(session) = &record.session
        && gate.store.end_session(session).await?
    {
        tracing::info!(reference = %record.reference, status = %record.status, "ended the metered session of a refunded or disputed payment");
    }
    gate.store
        .put_settlement(record.clone(), gate.config.record_ttl)
        .await?;
    Ok(record)
}
