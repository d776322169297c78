//! RFC 9457 problem details for every 402 and every payment error.

use std::fmt;

use super::jcs;

/// Base URI of the Payment problem types.
pub const PROBLEM_BASE: &str = "https://paymentauth.org/problems/";

/// The problem types this runtime answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemType {
    /// No credential: pay the challenge.
    PaymentRequired,
    /// The credential could not be decoded.
    MalformedCredential,
    /// The echoed challenge is forged, altered, for another route, or used.
    InvalidChallenge,
    /// The challenge expired.
    PaymentExpired,
    /// The credential payload is not what the method expects.
    InvalidPayload,
    /// The method rejected the proof.
    VerificationFailed,
    /// The payment is below the price.
    PaymentInsufficient,
    /// The payer must complete an action (e.g. 3-D Secure) first.
    PaymentActionRequired,
    /// The method is not offered by this server.
    MethodUnsupported,
    /// Settlement failed inside the server or its payment provider.
    InternalPaymentError,
    /// The session or replay store is unreachable; nothing was granted.
    ServiceUnavailable,
    /// The metered session has no credits left.
    SessionExhausted,
    /// The metered session expired.
    SessionExpired,
    /// The metered session is unknown, or belongs to another scope.
    SessionInvalid,
}

impl ProblemType {
    /// The path under [`PROBLEM_BASE`].
    pub const fn slug(self) -> &'static str {
        match self {
            Self::PaymentRequired => "payment-required",
            Self::MalformedCredential => "malformed-credential",
            Self::InvalidChallenge => "invalid-challenge",
            Self::PaymentExpired => "payment-expired",
            Self::InvalidPayload => "invalid-payload",
            Self::VerificationFailed => "verification-failed",
            Self::PaymentInsufficient => "payment-insufficient",
            Self::PaymentActionRequired => "payment-action-required",
            Self::MethodUnsupported => "method-unsupported",
            Self::InternalPaymentError => "internal-payment-error",
            Self::ServiceUnavailable => "service-unavailable",
            Self::SessionExhausted => "session/exhausted",
            Self::SessionExpired => "session/expired",
            Self::SessionInvalid => "session/invalid",
        }
    }

    /// The full type URI.
    pub fn uri(self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug())
    }

    /// The short human-readable title.
    pub const fn title(self) -> &'static str {
        match self {
            Self::PaymentRequired => "Payment Required",
            Self::MalformedCredential => "Malformed Credential",
            Self::InvalidChallenge => "Invalid Challenge",
            Self::PaymentExpired => "Payment Expired",
            Self::InvalidPayload => "Invalid Payload",
            Self::VerificationFailed => "Verification Failed",
            Self::PaymentInsufficient => "Payment Insufficient",
            Self::PaymentActionRequired => "Payment Action Required",
            Self::MethodUnsupported => "Method Unsupported",
            Self::InternalPaymentError => "Internal Payment Error",
            Self::ServiceUnavailable => "Service Unavailable",
            Self::SessionExhausted => "Session Exhausted",
            Self::SessionExpired => "Session Expired",
            Self::SessionInvalid => "Invalid Session",
        }
    }

    /// The HTTP status the problem is sent with.
    pub const fn status(self) -> u16 {
        match self {
            Self::MethodUnsupported => 400,
            Self::InternalPaymentError => 500,
            Self::ServiceUnavailable => 503,
            _ => 402,
        }
    }

    /// Every problem type, for exhaustive tests and documentation.
    pub const ALL: [ProblemType; 14] = [
        Self::PaymentRequired,
        Self::MalformedCredential,
        Self::InvalidChallenge,
        Self::PaymentExpired,
        Self::InvalidPayload,
        Self::VerificationFailed,
        Self::PaymentInsufficient,
        Self::PaymentActionRequired,
        Self::MethodUnsupported,
        Self::InternalPaymentError,
        Self::ServiceUnavailable,
        Self::SessionExhausted,
        Self::SessionExpired,
        Self::SessionInvalid,
    ];

    /// The problem type for a full type URI.
    pub fn from_uri(uri: &str) -> Option<Self> {
        let slug = uri.strip_prefix(PROBLEM_BASE)?;
        Self::ALL.into_iter().find(|t| t.slug() == slug)
    }
}

impl fmt::Display for ProblemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// A problem details body: `{type, title, status, detail, challengeId}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The problem type.
    pub kind: ProblemType,
    /// What happened, for a human.
    pub detail: String,
    /// The id of the fresh (primary) challenge sent with the problem.
    pub challenge_id: Option<String>,
}

impl Problem {
    /// A problem of `kind` with `detail`.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            challenge_id: None,
        }
    }

    /// The `application/problem+json` body.
    ///
    /// ```
    /// use mpp_runtime::wire::{Problem, ProblemType};
    /// let mut p = Problem::new(ProblemType::PaymentRequired, "Payment is required.");
    /// p.challenge_id = Some("abc".into());
    /// assert_eq!(
    ///     p.to_json_string(),
    ///     r#"{"type":"https://paymentauth.org/problems/payment-required","title":"Payment Required","status":402,"detail":"Payment is required.","challengeId":"abc"}"#
    /// );
    /// ```
    pub fn to_json_string(&self) -> String {
        problem_json(self.kind, &self.detail, self.challenge_id.as_deref())
    }
}

/// The problem details body for `kind`, `detail` and the fresh challenge id.
pub fn problem_json(kind: ProblemType, detail: &str, challenge_id: Option<&str>) -> String {
    let mut out = String::with_capacity(160 + detail.len());
    out.push_str("{\"type\":\"");
    out.push_str(PROBLEM_BASE);
    out.push_str(kind.slug());
    out.push_str("\",\"title\":\"");
    out.push_str(kind.title());
    out.push_str("\",\"status\":");
    out.push_str(&kind.status().to_string());
    out.push_str(",\"detail\":");
    jcs::write_string(detail, &mut out);
    if let Some(id) = challenge_id {
        out.push_str(",\"challengeId\":");
        jcs::write_string(id, &mut out);
    }
    out.push('}');
    out
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}
