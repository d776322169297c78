//! Deferred capture (`capture = "after"`): the payment is authorized before
//! the handler runs and captured only when the handler answers 2xx.
//!
//! A [`Deferred`] authorization is decided exactly once: captured or
//! released by [`Grant::complete`](super::Grant::complete), or, if the
//! response is never completed (the handler panicked, the client went away
//! and the framework dropped the request), released when it is dropped. Drop
//! hands the release to a background thread with its own runtime, so it
//! happens even when the request's runtime is going away (a worker thread
//! unwinding from a panic).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::admit::{refuse, settlement_mismatch};
use super::{GateInner, Route};
use crate::events::Event;
use crate::rail::{SettleErrorKind, Settlement};
use crate::response::Response;
use crate::store::PaymentStatus;
use crate::wire::{Challenge, Problem, ProblemType, Receipt};

/// How often a failed release is retried (it is idempotent), and the first
/// pause between tries (doubled each time).
const RELEASE_TRIES: u32 = 3;
const RELEASE_BACKOFF: Duration = Duration::from_millis(500);

/// An authorization waiting for the handler's answer.
pub(crate) struct Deferred {
    pub(crate) gate: Arc<GateInner>,
    pub(crate) route: Route,
    pub(crate) offer_index: usize,
    pub(crate) authorization: Settlement,
    pub(crate) challenge: Challenge,
    pub(crate) receipt: Receipt,
    /// Set once the authorization has been captured or its release started.
    decided: bool,
}

impl Deferred {
    pub(crate) fn new(
        gate: Arc<GateInner>,
        route: Route,
        offer_index: usize,
        authorization: Settlement,
        challenge: Challenge,
        receipt: Receipt,
    ) -> Self {
        Self {
            gate,
            route,
            offer_index,
            authorization,
            challenge,
            receipt,
            decided: false,
        }
    }

    /// Captures the payment. On failure the authorization is released and
    /// the response to send instead (a problem with fresh challenges) is
    /// returned.
    pub(crate) async fn capture(mut self) -> Result<(), Response> {
        self.decided = true;
        let gate = self.gate.clone();
        let route = &self.route.0;
        let offer = &route.offers[self.offer_index];
        let timeout = gate.config.settlement_timeout;
        let problem = match tokio::time::timeout(timeout, offer.rail.capture(&self.authorization))
            .await
        {
            Ok(Ok(captured)) => match settlement_mismatch(&offer.request, &captured) {
                None => {
                    update_record(&gate, &captured.reference, PaymentStatus::Succeeded).await;
                    gate.emit(&Event::PaymentSettled {
                        route: &route.id,
                        challenge_id: &self.challenge.id,
                        settlement: &captured,
                        receipt: &self.receipt,
                    });
                    return Ok(());
                }
                Some(reason) => {
                    // Money moved, but not as agreed: the server's problem.
                    tracing::error!(route = %route.id, reference = %captured.reference, reason, "the provider captured a payment that does not match the challenge; reconcile it");
                    update_record(&gate, &captured.reference, PaymentStatus::Succeeded).await;
                    return Err(refuse(
                        &gate,
                        route,
                        Problem::new(
                            ProblemType::InternalPaymentError,
                            format!("An internal payment error occurred: {reason}."),
                        ),
                        Some(&self.challenge),
                    ));
                }
            },
            Ok(Err(e)) => {
                tracing::error!(route = %route.id, reference = %self.authorization.reference, detail = %e.detail, "capturing an authorized payment failed; releasing it");
                let kind = match e.kind {
                    SettleErrorKind::Internal => ProblemType::InternalPaymentError,
                    _ => ProblemType::VerificationFailed,
                };
                Problem::new(
                    kind,
                    format!(
                        "The payment was authorized but could not be captured, and nothing was charged: {}",
                        e.detail
                    ),
                )
            }
            Err(_) => {
                tracing::error!(route = %route.id, reference = %self.authorization.reference, ?timeout, "capturing an authorized payment timed out; releasing it");
                Problem::new(
                    ProblemType::InternalPaymentError,
                    "The payment provider did not confirm the capture in time; the authorization is being released.",
                )
            }
        };
        spawn_release(
            gate.clone(),
            self.route.clone(),
            self.offer_index,
            self.authorization.clone(),
            "the capture failed".to_owned(),
        );
        Err(refuse(&gate, route, problem, Some(&self.challenge)))
    }

    /// Releases the authorization, waiting for the provider's answer.
    pub(crate) async fn release(mut self, reason: String) {
        self.decided = true;
        release_with_retries(
            self.gate.clone(),
            self.route.clone(),
            self.offer_index,
            self.authorization.clone(),
            reason,
        )
        .await;
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if self.decided {
            return;
        }
        tracing::warn!(route = %self.route.0.id, reference = %self.authorization.reference, "a paid response was never completed (the handler panicked or the client went away); releasing the authorization");
        spawn_release(
            self.gate.clone(),
            self.route.clone(),
            self.offer_index,
            self.authorization.clone(),
            "the response was never completed (the handler panicked or the client went away)"
                .to_owned(),
        );
    }
}

async fn update_record(gate: &GateInner, reference: &str, status: PaymentStatus) {
    let updated = async {
        let Some(mut record) = gate.store.settlement(reference).await? else {
            return Ok(());
        };
        if record.status.stage() > status.stage() {
            return Ok(());
        }
        record.status = status;
        record.updated_at = gate.clock.now();
        gate.store
            .put_settlement(record, gate.config.record_ttl)
            .await
    };
    if let Err(e) = updated.await {
        tracing::error!(%reference, %e, "could not update a settlement record");
    }
}

async fn release_with_retries(
    gate: Arc<GateInner>,
    route: Route,
    offer_index: usize,
    authorization: Settlement,
    reason: String,
) {
    let rail = route.0.offers[offer_index].rail.clone();
    let timeout = gate.config.settlement_timeout;
    let mut pause = RELEASE_BACKOFF;
    let mut released = false;
    for attempt in 1..=RELEASE_TRIES {
        match tokio::time::timeout(timeout, rail.release(&authorization)).await {
            Ok(Ok(())) => {
                released = true;
                break;
            }
            Ok(Err(e)) if e.kind != SettleErrorKind::Internal => {
                tracing::error!(route = %route.0.id, reference = %authorization.reference, detail = %e.detail, "the provider refused to release an authorization; it lapses on its own");
                break;
            }
            Ok(Err(e)) => {
                tracing::warn!(route = %route.0.id, reference = %authorization.reference, attempt, detail = %e.detail, "releasing an authorization failed");
            }
            Err(_) => {
                tracing::warn!(route = %route.0.id, reference = %authorization.reference, attempt, "releasing an authorization timed out");
            }
        }
        if attempt < RELEASE_TRIES {
            tokio::time::sleep(pause).await;
            pause *= 2;
        } else {
            tracing::error!(route = %route.0.id, reference = %authorization.reference, "could not release an authorization; it lapses on its own (reconcile it)");
        }
    }
    if released {
        update_record(&gate, &authorization.reference, PaymentStatus::Canceled).await;
    }
    gate.emit(&Event::PaymentReleased {
        route: &route.0.id,
        reference: &authorization.reference,
        reason: &reason,
        released,
    });
}

fn spawn_release(
    gate: Arc<GateInner>,
    route: Route,
    offer_index: usize,
    authorization: Settlement,
    reason: String,
) {
    background(Box::pin(release_with_retries(
        gate,
        route,
        offer_index,
        authorization,
        reason,
    )));
}

type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs `job` on the gate's background thread (started on first use), which
/// outlives any request's runtime.
fn background(job: Job) {
    static QUEUE: OnceLock<Option<tokio::sync::mpsc::UnboundedSender<Job>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(%e, "cannot start the payment background runtime");
                return None;
            }
        };
        let started = std::thread::Builder::new()
            .name("mpp-background".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = receiver.recv().await {
                        tokio::spawn(job);
                    }
                });
            });
        match started {
            Ok(_) => Some(sender),
            Err(e) => {
                tracing::error!(%e, "cannot start the payment background thread");
                None
            }
        }
    });
    let failed = match queue {
        Some(sender) => sender.send(job).err().map(|e| e.0),
        None => Some(job),
    };
    if let Some(job) = failed {
        // Last resort: the current runtime, if there is one.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(job);
            }
            Err(_) => tracing::error!(
                "cannot run a payment release: no background thread and no runtime; the authorization lapses on its own"
            ),
        }
    }
}
