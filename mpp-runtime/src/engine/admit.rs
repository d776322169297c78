//! One request through the gate.
//!
//! 1. Preconditions (before anything is minted or settled).
//! 2. No credential: 402 with fresh challenges.
//! 3. A session token: spend one credit atomically, scope-checked.
//! 4. A credential: parse, HMAC binding, route pinning, expiry, replay check,
//!    per-challenge settlement lock, settlement by the rail, burn, session.
//!
//! Every refusal carries fresh challenges and `Cache-Control: no-store`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use super::pending::{self, PendingSession};
use super::route::RouteInner;
use super::verify::{Expected, ExpectedOpaque, is_issued_here, truncate_id, verify_echo_with};
use super::{Admission, GateInner, Grant, Route};
use crate::events::Event;
use crate::precondition::Check;
use crate::rail::{Proofs, SettleRequest, Settlement};
use crate::request::RequestView;
use crate::response::Response;
use crate::store::{
    LockToken, PaymentStatus, SessionRecord, SettlementRecord, SpendOutcome, StoreError,
};
use crate::wire::{
    Authorization, Challenge, Credential, CredentialError, EncodedReceipt, Problem, ProblemType,
    Receipt, SessionInfo, SessionToken, Timestamp, headers,
};

/// How long a used challenge id is remembered past the challenge's expiry
/// (covers clock differences between processes sharing a store).
const BURN_MARGIN: Duration = Duration::from_secs(300);

/// The request, shared only once something keeps it (a precondition's
/// `Check`, a settlement): a 402 or a session spend never allocates for it.
enum Held {
    Owned(RequestView),
    Shared(Arc<RequestView>),
}

impl Held {
    fn view(&self) -> &RequestView {
        match self {
            Held::Owned(request) => request,
            Held::Shared(request) => request,
        }
    }

    fn into_shared(self) -> Arc<RequestView> {
        match self {
            Held::Owned(request) => Arc::new(request),
            Held::Shared(request) => request,
        }
    }
}

pub(super) async fn admit(gate: &Arc<GateInner>, route: &Route, request: RequestView) -> Admission {
    let header = gate.config.credential_header();
    let request = if route.0.checks.is_empty() {
        Held::Owned(request)
    } else {
        let request = Arc::new(request);
        if let Some(rejection) = run_checks(gate, route, &request).await {
            return Admission::Denied(rejection);
        }
        Held::Shared(request)
    };
    let authorization = Authorization::from_values(request.view().header_values(header));
    decide(
        gate,
        route,
        Read::new(authorization, || request.into_shared()),
    )
    .await
}

/// What the gate read of a request's credential header, with the request
/// itself only where a settlement will keep it.
pub(crate) enum Read {
    /// No `Payment` credential: a 402.
    Missing,
    /// A `Payment` credential that does not parse.
    Malformed(CredentialError),
    /// A metered-session follow-up.
    Session(SessionToken),
    /// A paid retry, and the request it came with.
    Credential(Box<Credential>, Arc<RequestView>),
}

impl Read {
    /// Sorts a parsed credential header; `request` is asked for only when
    /// a credential is to be settled.
    pub(crate) fn new(
        authorization: Option<Result<Authorization, CredentialError>>,
        request: impl FnOnce() -> Arc<RequestView>,
    ) -> Self {
        match authorization {
            None => Self::Missing,
            Some(Err(e)) => Self::Malformed(e),
            Some(Ok(Authorization::Session(token))) => Self::Session(token),
            Some(Ok(Authorization::Credential(credential))) => {
                Self::Credential(Box::new(credential), request())
            }
        }
    }
}

/// Decides a request whose preconditions (if any) have passed.
pub(super) async fn decide(gate: &Arc<GateInner>, route: &Route, read: Read) -> Admission {
    match read {
        Read::Missing => Admission::Denied(payment_required(gate, route)),
        Read::Malformed(e) => {
            let problem = Problem::new(
                ProblemType::MalformedCredential,
                format!("Credential is malformed: {e}."),
            );
            Admission::Denied(refuse(gate, &route.0, problem, None))
        }
        Read::Session(token) => spend(gate, route, token).await,
        // Boxed: settlement's state is large, and every request's future
        // (a 402's, a session spend's) would otherwise carry it.
        Read::Credential(credential, request) => {
            Box::pin(pay(gate, route, *credential, request)).await
        }
    }
}

async fn run_checks(
    gate: &GateInner,
    route: &Route,
    request: &Arc<RequestView>,
) -> Option<Response> {
    for (name, check) in &route.0.checks {
        let ctx = Check {
            request: request.clone(),
            route: route.clone(),
            state: gate.state.clone(),
        };
        if let Some(rejection) = check.check(ctx).await {
            tracing::debug!(route = %route.0.id, precondition = %name, "precondition rejected the request");
            return Some(rejection.into_response());
        }
    }
    None
}

/// The 402 for a request without a credential.
pub(super) fn payment_required(gate: &GateInner, route: &Route) -> Response {
    challenge_response(
        gate,
        &route.0,
        ProblemType::PaymentRequired,
        &route.0.required_detail,
    )
}

/// The problem body for `kind` and `detail` with the primary challenge id:
/// the route's precomputed 402 body, or one written now.
fn problem_body(route: &RouteInner, kind: ProblemType, detail: &str, id: Option<&str>) -> String {
    match id {
        Some(id) if kind == ProblemType::PaymentRequired && detail == route.required_detail => {
            let (head, tail) = &route.required_body;
            let mut body = String::with_capacity(head.len() + id.len() + tail.len());
            body.push_str(head);
            body.push_str(id);
            body.push_str(tail);
            body
        }
        _ => crate::wire::problem::problem_json(kind, detail, id),
    }
}

/// A problem response for a refused credential, with fresh challenges.
pub(super) fn refuse(
    gate: &GateInner,
    route: &RouteInner,
    problem: Problem,
    echo: Option<&Challenge>,
) -> Response {
    gate.emit(&Event::PaymentFailed {
        route: &route.id,
        method: echo.map(|c| c.method.as_str()),
        challenge_id: echo.map(|c| truncate_id(&c.id)),
        problem: problem.kind,
        detail: &problem.detail,
    });
    tracing::debug!(route = %route.id, problem = %problem.kind, detail = %problem.detail, "payment refused");
    challenge_response(gate, route, problem.kind, &problem.detail)
}

/// Mints one fresh challenge per offered method and wraps them with a
/// problem body.
fn challenge_response(
    gate: &GateInner,
    route: &RouteInner,
    kind: ProblemType,
    detail: &str,
) -> Response {
    let expires = gate
        .clock
        .now()
        .plus(gate.config.challenge_ttl)
        .to_rfc3339_bytes();
    let expires = std::str::from_utf8(&expires).unwrap_or_default();
    // One nonce per response makes every challenge id unique, even for
    // requests in the same second. `opaque` encodes the route binding around
    // it; its constant parts were encoded when the route was prepared.
    let mut nonce = String::with_capacity(crate::random::NonceSource::LEN);
    gate.nonces.push_next(&mut nonce);
    let mut opaque = String::with_capacity(route.opaque_encoding.len(nonce.len()));
    route
        .opaque_encoding
        .encode_into(nonce.as_bytes(), &mut opaque);
    let mut headers_out: Vec<(Cow<'static, str>, Cow<'static, str>)> =
        Vec::with_capacity(route.offers.len() + 2);
    let mut primary_id = 0..0;
    for offer in &route.offers {
        let mut value = String::with_capacity(
            16 + 43
                + offer.header_middle.len()
                + expires.len()
                + offer.header_tail.len()
                + opaque.len(),
        );
        value.push_str("Payment id=\"");
        let id_start = value.len();
        offer
            .mac
            .challenge_id(&[expires, &offer.mac_middle, &opaque], &mut value);
        let id = &value[id_start..];
        if primary_id.is_empty() {
            primary_id = id_start..value.len();
        }
        gate.emit(&Event::ChallengeIssued {
            route: &route.id,
            method: &offer.method,
            challenge_id: id,
            problem: kind,
        });
        value.push_str(&offer.header_middle);
        value.push_str(expires);
        value.push_str(&offer.header_tail);
        value.push_str(&opaque);
        value.push('"');
        headers_out.push((Cow::Borrowed(headers::WWW_AUTHENTICATE), Cow::Owned(value)));
    }
    let primary = headers_out.first().and_then(|(_, v)| v.get(primary_id));
    let body = problem_body(route, kind, detail, primary).into_bytes();
    headers_out.push((
        Cow::Borrowed(headers::CACHE_CONTROL),
        Cow::Borrowed("no-store"),
    ));
    headers_out.push((
        Cow::Borrowed(headers::CONTENT_TYPE),
        Cow::Borrowed(headers::PROBLEM_JSON),
    ));
    Response {
        status: kind.status(),
        headers: headers_out,
        body,
    }
}

fn unavailable(
    gate: &GateInner,
    route: &RouteInner,
    error: &StoreError,
    echo: Option<&Challenge>,
) -> Response {
    tracing::error!(route = %route.id, %error, "payment store unavailable; refusing access");
    refuse(
        gate,
        route,
        Problem::new(
            ProblemType::ServiceUnavailable,
            "The payment service is temporarily unavailable; nothing was charged by this request. Retry shortly.",
        ),
        echo,
    )
}

async fn spend(gate: &GateInner, route: &Route, token: SessionToken) -> Admission {
    let now = gate.clock.now();
    let outcome = match gate
        .store
        .spend_session(&token.id, route.scope(), now)
        .await
    {
        Ok(SpendOutcome::NotFound) if gate.pending.get(&token.id).is_some() => {
            // Boxed: rare, and kept out of every spend's future.
            match Box::pin(spend_pending(gate, route, &token.id, now)).await {
                Ok(outcome) => outcome,
                Err(e) => return Admission::Denied(unavailable(gate, &route.0, &e, None)),
            }
        }
        Ok(outcome) => outcome,
        Err(e) => return Admission::Denied(unavailable(gate, &route.0, &e, None)),
    };
    spent(gate, route, outcome)
}

/// A paid session this process could not store yet: store it, then spend.
async fn spend_pending(
    gate: &GateInner,
    route: &Route,
    id: &str,
    now: Timestamp,
) -> Result<SpendOutcome, StoreError> {
    if let Some(session) = gate.pending.get(id) {
        pending::write(gate, &session, now).await?;
        gate.pending.remove(id);
    }
    gate.store.spend_session(id, route.scope(), now).await
}

/// The answer to a session spend.
fn spent(gate: &GateInner, route: &Route, outcome: SpendOutcome) -> Admission {
    let (kind, detail) = match outcome {
        SpendOutcome::Spent(record) => {
            let info = SessionInfo {
                id: record.id,
                remaining: record.remaining,
                scope: record.scope,
                expires_at: record.expires_at,
            };
            gate.emit(&Event::SessionSpent {
                route: &route.0.id,
                session: &info,
            });
            return Admission::Granted(Box::new(Grant::new(record.receipt, None, Some(info))));
        }
        SpendOutcome::Exhausted => (
            ProblemType::SessionExhausted,
            "This session has no credits left; pay again to continue.",
        ),
        SpendOutcome::Expired => (
            ProblemType::SessionExpired,
            "This session has expired; pay again to continue.",
        ),
        SpendOutcome::NotFound => (
            ProblemType::SessionInvalid,
            "Unknown session; pay again to continue.",
        ),
        SpendOutcome::ScopeMismatch => (
            ProblemType::SessionInvalid,
            "This session was bought for another scope; pay for this one.",
        ),
    };
    Admission::Denied(refuse(gate, &route.0, Problem::new(kind, detail), None))
}

fn session_info(record: &SessionRecord) -> SessionInfo {
    SessionInfo {
        id: record.id.clone(),
        remaining: record.remaining,
        scope: record.scope.clone(),
        expires_at: record.expires_at,
    }
}

/// Steps 2–3 of verification against this route.
pub(super) fn check_credential(
    gate: &GateInner,
    route: &RouteInner,
    echo: &Challenge,
) -> Result<usize, Problem> {
    let config = &gate.config;
    match route.offers.iter().position(|o| o.method == echo.method) {
        Some(index) => {
            let offer = &route.offers[index];
            let expected = Expected {
                realm: &config.realm,
                method: &offer.method,
                intent: &offer.intent,
                request: &offer.request,
                opaque: ExpectedOpaque::Nonced {
                    prefix: &route.opaque_prefix,
                    suffix: &route.opaque_suffix,
                },
                header: config.credential_header.as_deref(),
            };
            verify_echo_with(
                &config.key,
                Some(&offer.mac),
                &expected,
                echo,
                gate.clock.now(),
            )
            .map(|()| index)
        }
        None if !is_issued_here(&config.key, echo) => Err(Problem::new(
            ProblemType::InvalidChallenge,
            format!(
                "Challenge \"{}\" is invalid: challenge was not issued by this server.",
                truncate_id(&echo.id)
            ),
        )),
        None if !gate.rails.contains_key(&echo.method) => Err(Problem::new(
            ProblemType::MethodUnsupported,
            format!("Payment method \"{}\" is not supported.", echo.method),
        )),
        None => Err(Problem::new(
            ProblemType::InvalidChallenge,
            format!(
                "Challenge \"{}\" is invalid: method \"{}\" is not offered on this route.",
                truncate_id(&echo.id),
                echo.method
            ),
        )),
    }
}

fn used_key(id: &str) -> String {
    format!("mpp:used:{id}")
}

fn lock_key(id: &str) -> String {
    format!("mpp:lock:{id}")
}

fn replayed(echo: &Challenge) -> Problem {
    Problem::new(
        ProblemType::InvalidChallenge,
        format!(
            "Challenge \"{}\" is invalid: challenge has already been used.",
            truncate_id(&echo.id)
        ),
    )
}

async fn pay(
    gate: &Arc<GateInner>,
    route: &Route,
    credential: Credential,
    http: Arc<RequestView>,
) -> Admission {
    let echo = &credential.challenge;
    let offer_index = match check_credential(gate, &route.0, echo) {
        Ok(index) => index,
        Err(problem) => return Admission::Denied(refuse(gate, &route.0, problem, Some(echo))),
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::error!(
            "Gate::admit was called outside a Tokio runtime; settlement needs one (with timers enabled)"
        );
        let problem = Problem::new(
            ProblemType::InternalPaymentError,
            "An internal payment error occurred.",
        );
        return Admission::Denied(refuse(gate, &route.0, problem, Some(echo)));
    };
    let id = echo.id.clone();
    match gate.store.is_claimed(&used_key(&id)).await {
        Ok(false) => {}
        Ok(true) => return Admission::Denied(refuse(gate, &route.0, replayed(echo), Some(echo))),
        Err(e) => return Admission::Denied(unavailable(gate, &route.0, &e, Some(echo))),
    }
    // The lease outlives the challenge: a successful settlement keeps the
    // lock, so the credential cannot be settled again even if recording the
    // burn fails. A failed settlement releases it.
    let now = gate.clock.now();
    let expires_at = echo
        .expires_at()
        .unwrap_or_else(|| now.plus(gate.config.challenge_ttl));
    let lease = gate.lock_ttl().max(now.until(expires_at) + BURN_MARGIN);
    let lock = lock_key(&id);
    let token = match gate.store.lock(&lock, lease).await {
        Ok(Some(token)) => token,
        Ok(None) => {
            let problem = Problem::new(
                ProblemType::InvalidChallenge,
                format!(
                    "Challenge \"{}\" is invalid: a payment for this challenge is being settled or has already been used.",
                    truncate_id(&id)
                ),
            );
            return Admission::Denied(refuse(gate, &route.0, problem, Some(echo)));
        }
        Err(e) => return Admission::Denied(unavailable(gate, &route.0, &e, Some(echo))),
    };

    // Settlement runs in its own task so that a client hanging up mid-way
    // cannot leave a payment taken but unrecorded: the burn, the session and
    // the unlock always happen.
    let task = settle_locked(
        gate.clone(),
        route.clone(),
        offer_index,
        credential,
        http,
        token,
    );
    let outcome = match runtime.spawn(task).await {
        Ok(outcome) => outcome,
        Err(join_error) => {
            tracing::error!(route = %route.0.id, %join_error, "settlement task failed");
            if let Err(e) = gate.store.unlock(&lock, token).await {
                tracing::error!(%e, "could not release a settlement lock; it expires on its own");
            }
            Err(Box::new((
                Problem::new(
                    ProblemType::InternalPaymentError,
                    "An internal payment error occurred.",
                ),
                None,
            )))
        }
    };
    match outcome {
        Ok(grant) => Admission::Granted(Box::new(grant)),
        Err(failure) => {
            let (problem, echo) = *failure;
            Admission::Denied(refuse(gate, &route.0, problem, echo.as_ref()))
        }
    }
}

/// A settlement's result: the grant, or the problem plus the echoed
/// challenge (for the failure event).
type SettleOutcome = Result<Grant, Box<(Problem, Option<Challenge>)>>;

async fn settle_locked(
    gate: Arc<GateInner>,
    route: Route,
    offer_index: usize,
    credential: Credential,
    http: Arc<RequestView>,
    token: LockToken,
) -> SettleOutcome {
    let lock = lock_key(&credential.challenge.id);
    let outcome = settle(&gate, &route, offer_index, credential, http).await;
    if outcome.is_err()
        && let Err(e) = gate.store.unlock(&lock, token).await
    {
        tracing::error!(route = %route.0.id, %e, "could not release a settlement lock; it expires on its own");
    }
    outcome
}

async fn settle(
    gate_arc: &Arc<GateInner>,
    route: &Route,
    offer_index: usize,
    credential: Credential,
    http: Arc<RequestView>,
) -> SettleOutcome {
    let gate: &GateInner = gate_arc;
    let inner = &route.0;
    let offer = &inner.offers[offer_index];
    let id = credential.challenge.id.clone();
    let used = used_key(&id);
    let fail = |problem: Problem, credential: &Credential| {
        Err(Box::new((problem, Some(credential.challenge.clone()))))
    };

    // Re-check under the lock: another request may have settled it between
    // the first check and taking the lock.
    match gate.store.is_claimed(&used).await {
        Ok(false) => {}
        Ok(true) => return fail(replayed(&credential.challenge), &credential),
        Err(e) => {
            tracing::error!(route = %inner.id, %e, "payment store unavailable during settlement");
            return fail(
                Problem::new(
                    ProblemType::ServiceUnavailable,
                    "The payment service is temporarily unavailable; nothing was charged by this request. Retry shortly.",
                ),
                &credential,
            );
        }
    }

    // The challenge's expiry is HMAC-bound and was checked; the gate
    // issued it one challenge lifetime before that.
    let issued_at = credential
        .challenge
        .expires
        .as_deref()
        .and_then(|e| Timestamp::parse_rfc3339(e).ok())
        .map_or_else(
            || gate.clock.now(),
            |expires| {
                Timestamp::from_unix(
                    expires
                        .unix()
                        .saturating_sub(gate.config.challenge_ttl.as_secs()),
                )
            },
        );
    let request = SettleRequest {
        challenge: credential.challenge.clone(),
        payload: credential.payload.clone(),
        source: credential.source.clone(),
        request: offer.request.clone(),
        price: inner.price.clone(),
        route: inner.id.clone(),
        idempotency_key: id.clone(),
        http,
        proofs: Proofs::new(gate.store.clone()),
        issued_at,
    };
    let timeout = gate.config.settlement_timeout;
    let deferred = inner.deferred;
    let attempt = if deferred {
        offer.rail.authorize(request)
    } else {
        offer.rail.settle(request)
    };
    let settlement = match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(settlement)) => settlement,
        Ok(Err(e)) => {
            let kind = e.kind.problem();
            if kind == ProblemType::InternalPaymentError {
                tracing::error!(route = %inner.id, method = %offer.method, detail = %e.detail, "settlement failed inside the payment provider");
            }
            return fail(Problem::new(kind, e.detail), &credential);
        }
        Err(_) => {
            tracing::error!(route = %inner.id, method = %offer.method, ?timeout, "settlement timed out");
            return fail(
                Problem::new(
                    ProblemType::InternalPaymentError,
                    "The payment provider did not answer in time; the challenge was not used, retry the same credential.",
                ),
                &credential,
            );
        }
    };
    if let Some(reason) = settlement_mismatch(&offer.request, &settlement) {
        // Money may have moved: this is the server's problem to reconcile,
        // not the payer's to fix, and the challenge stays unburned.
        tracing::error!(route = %inner.id, method = %offer.method, reference = %settlement.reference, reason, "rail reported a settlement that does not match the challenge; reconcile this payment");
        return fail(
            Problem::new(
                ProblemType::InternalPaymentError,
                format!("An internal payment error occurred: {reason}."),
            ),
            &credential,
        );
    }

    let now = gate.clock.now();
    let expires_at = credential
        .challenge
        .expires_at()
        .unwrap_or_else(|| now.plus(gate.config.challenge_ttl));
    match gate
        .store
        .claim(&used, now.until(expires_at) + BURN_MARGIN)
        .await
    {
        Ok(true) => {}
        // Another settlement of this challenge already finished: only
        // possible if a store lost the lock. Serve this paid request anyway.
        Ok(false) => {
            tracing::error!(route = %inner.id, "a challenge was settled twice; check the store's lock semantics")
        }
        // The payment went through: serve it. The settlement lock, which
        // outlives the challenge, still refuses any reuse.
        Err(e) => {
            tracing::error!(route = %inner.id, %e, "could not record a used challenge after settlement")
        }
    }

    // Encoded once: the paid response and every credit of its session
    // answer with this header.
    let receipt = EncodedReceipt::from(Receipt {
        method: offer.method.clone(),
        reference: settlement.reference.clone(),
        external_id: settlement.external_id.clone(),
        timestamp: now.to_rfc3339(),
        extensions: settlement.receipt_fields.clone(),
    });
    // A session the store refused is kept and written later (see
    // `pending`): the payer gets its id now and loses no credit.
    let (mut session, unsaved) = if inner.price.grants > 1 {
        match create_session(gate, inner, &receipt, now).await {
            Ok(info) => (Some(info), None),
            Err(Some(record)) => (Some(session_info(&record)), Some(record)),
            Err(None) => (None, None),
        }
    } else {
        (None, None)
    };
    let unsaved_record = record_settlement(
        gate,
        inner,
        &offer.method,
        &id,
        &settlement,
        session.as_ref(),
        if deferred {
            PaymentStatus::Authorized
        } else {
            PaymentStatus::Succeeded
        },
        now,
    )
    .await;
    if let Some(record) = unsaved {
        let kept = pending::defer(
            gate_arc,
            PendingSession {
                session: record,
                settlement: unsaved_record,
            },
        );
        if !kept {
            session = None;
        }
    }
    if deferred {
        gate.emit(&Event::PaymentAuthorized {
            route: &inner.id,
            challenge_id: &id,
            settlement: &settlement,
        });
        let challenge = credential.challenge.clone();
        let hold = super::capture::Deferred::new(
            gate_arc.clone(),
            route.clone(),
            offer_index,
            settlement,
            challenge,
            receipt.receipt().clone(),
        );
        return Ok(Grant::new(receipt, Some(credential), None).deferred(hold));
    }
    gate.emit(&Event::PaymentSettled {
        route: &inner.id,
        challenge_id: &id,
        settlement: &settlement,
        receipt: receipt.receipt(),
    });
    if inner.price.grants > 1 && session.is_none() {
        gate.emit(&Event::SessionNotRecorded {
            route: &inner.id,
            receipt: receipt.receipt(),
            credits_lost: inner.price.grants - 1,
        });
    }
    if let Some(info) = &session {
        gate.emit(&Event::SessionSpent {
            route: &inner.id,
            session: info,
        });
    }
    Ok(Grant::new(receipt, Some(credential), session))
}

/// Why a settlement does not match the request it settles, if it does not.
pub(super) fn settlement_mismatch(
    request: &crate::wire::PaymentRequest,
    settlement: &Settlement,
) -> Option<String> {
    if let Some(amount) = request.str_field("amount")
        && settlement.amount != amount
    {
        return Some(format!(
            "settled amount {} differs from the requested {amount}",
            settlement.amount
        ));
    }
    if let Some(currency) = request.str_field("currency")
        && !settlement.currency.eq_ignore_ascii_case(currency)
    {
        return Some(format!(
            "settled currency {} differs from the requested {currency}",
            settlement.currency
        ));
    }
    None
}

/// Remembers a payment for reconciling provider notifications. A store
/// failure is logged and the record returned (to retry with a pending
/// session); the paid request is still served.
#[allow(clippy::too_many_arguments)]
async fn record_settlement(
    gate: &GateInner,
    route: &RouteInner,
    method: &str,
    challenge_id: &str,
    settlement: &Settlement,
    session: Option<&SessionInfo>,
    status: PaymentStatus,
    now: Timestamp,
) -> Option<(SettlementRecord, Duration)> {
    let record = SettlementRecord {
        reference: settlement.reference.clone(),
        method: method.to_owned(),
        route: route.id.clone(),
        challenge_id: challenge_id.to_owned(),
        amount: settlement.amount.clone(),
        currency: settlement.currency.clone(),
        status,
        amount_refunded: None,
        session: session.map(|s| s.id.clone()),
        created_at: now,
        updated_at: now,
    };
    let ttl = gate.config.record_ttl;
    match gate.store.put_settlement(record.clone(), ttl).await {
        Ok(()) => None,
        Err(e) => {
            tracing::error!(route = %route.id, reference = %settlement.reference, %e, "could not store a settlement record; webhooks for this payment cannot be reconciled");
            Some((record, ttl))
        }
    }
}

/// Creates the metered session bought by a payment, with its first credit
/// already spent. If the store refuses it, the record is returned to be
/// kept and written later; `Err(None)` if no session id could be made (the
/// paid request is then served without a session).
async fn create_session(
    gate: &GateInner,
    route: &RouteInner,
    receipt: &EncodedReceipt,
    now: Timestamp,
) -> Result<SessionInfo, Option<SessionRecord>> {
    let id = match crate::random::session_id() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(route = %route.id, %e, "could not create a session id; serving the paid request without a session");
            return Err(None);
        }
    };
    let record = SessionRecord {
        id,
        scope: route.price.scope.clone(),
        route: route.id.clone(),
        grants: route.price.grants,
        remaining: route.price.grants - 1,
        expires_at: now.plus(gate.config.session_ttl),
        receipt: receipt.clone(),
    };
    match gate.store.create_session(record.clone(), now).await {
        Ok(()) => Ok(session_info(&record)),
        Err(e) => {
            tracing::error!(route = %route.id, %e, "could not store a paid session");
            Err(Some(record))
        }
    }
}
