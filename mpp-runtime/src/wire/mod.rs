//! The standard MPP wire format (the IETF "Payment" HTTP authentication
//! draft, as the stock `mppx` client speaks it): challenges, credentials,
//! receipts, problem details, plus this crate's metered-session header.
//!
//! Everything here is pure data and parsing; nothing touches the network,
//! the clock or a store.

pub mod auth_params;
pub mod base64url;
pub mod challenge;
pub mod credential;
pub mod jcs;
pub mod problem;
pub mod receipt;
pub mod request;
pub mod session;
pub mod timestamp;

pub use challenge::{Challenge, ChallengeError};
pub use credential::{Authorization, Credential, CredentialError, SessionToken};
pub use problem::{Problem, ProblemType};
pub use receipt::{EncodedReceipt, Receipt, ReceiptError};
pub use request::{PaymentRequest, RequestError};
pub use session::{SessionHeaderError, SessionInfo};
pub use timestamp::{Timestamp, TimestampError};

/// A bearer secret (session id, token) shortened for `Debug` output: enough
/// to correlate log lines, not enough to use.
pub(crate) fn redacted(secret: &str) -> String {
    let shown: String = secret.chars().take(9).collect();
    format!("{shown}…")
}

/// A service URL shortened to `scheme://host/…` for logs and `Debug`: RPC
/// and database URLs often carry a password or an API key.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // `memory`, `sqlite::memory:`: nothing to hide unless it has userinfo.
        return if url.contains('@') {
            "…".to_owned()
        } else {
            url.to_owned()
        };
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if rest.len() > authority.len() {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

/// Header names the protocol uses.
pub mod headers {
    /// Carries challenges on a 402.
    pub const WWW_AUTHENTICATE: &str = "WWW-Authenticate";
    /// Carries the credential on a paid retry.
    pub const AUTHORIZATION: &str = "Authorization";
    /// Carries the receipt on a successful response.
    pub const PAYMENT_RECEIPT: &str = "Payment-Receipt";
    /// Carries the metered-session balance on a successful response.
    pub const PAYMENT_SESSION: &str = "Payment-Session";
    /// Client preference among methods and intents.
    pub const ACCEPT_PAYMENT: &str = "Accept-Payment";
    /// `no-store` on 402s, `private` on receipts.
    pub const CACHE_CONTROL: &str = "Cache-Control";
    /// The body type of problem details.
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// The media type of problem details.
    pub const PROBLEM_JSON: &str = "application/problem+json";
}
