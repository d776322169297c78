//! The HTTP client behind the Stripe rail: async-stripe's public
//! `StripeClient` trait implemented over reqwest, so requests built with
//! async-stripe's `RequestBuilder` can carry a pinned `Stripe-Version`, an
//! `Idempotency-Key` and a configurable base URL (for an emulator), none of
//! which async-stripe's bundled client lets us set.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use stripe_client_core::{CustomizedStripeRequest, StripeClient, StripeClientErr, StripeMethod};

/// A Stripe API response: status, whether it was an idempotent replay, body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) replayed: bool,
    pub(crate) body: Bytes,
}

/// Why a Stripe call failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeHttpError {
    /// Stripe could not be reached (or answered with an unreadable body).
    #[error("could not reach Stripe: {0}")]
    Transport(String),
    /// Stripe answered with an error.
    #[error("Stripe answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stripe's error message.
        message: String,
    },
}

impl StripeClientErr for StripeHttpError {
    fn deserialize_err(msg: impl fmt::Display) -> Self {
        Self::Transport(format!("unreadable response: {msg}"))
    }
}

/// One HTTP client for every Stripe call the rail makes.
#[derive(Clone)]
pub(crate) struct StripeHttp {
    http: reqwest::Client,
    base: String,
    secret: String,
    version: String,
}

impl fmt::Debug for StripeHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeHttp")
            .field("base", &self.base)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl StripeHttp {
    pub(crate) fn new(
        base: &str,
        secret: &str,
        version: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("mpp-runtime/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            secret: secret.to_owned(),
            version: version.to_owned(),
        })
    }

    /// Sends a request built with async-stripe's `RequestBuilder`. The
    /// idempotency key comes from the request's strategy.
    pub(crate) async fn send(
        &self,
        request: CustomizedStripeRequest,
    ) -> Result<Reply, StripeHttpError> {
        let (builder, overrides) = request.into_pieces();
        let mut url = format!("{}/v1{}", self.base, builder.path);
        if let Some(query) = &builder.query {
            url.push('?');
            url.push_str(query);
        }
        let method = match builder.method {
            StripeMethod::Get => reqwest::Method::GET,
            StripeMethod::Post => reqwest::Method::POST,
            StripeMethod::Delete => reqwest::Method::DELETE,
        };
        let mut http = self
            .http
            .request(method, url)
            .bearer_auth(&self.secret)
            .header("Stripe-Version", &self.version);
        if let Some(key) = overrides
            .request_strategy
            .as_ref()
            .and_then(|s| s.get_key())
        {
            http = http.header("Idempotency-Key", key.as_str());
        }
        if let Some(timeout) = overrides.timeout {
            http = http.timeout(timeout);
        }
        if let Some(body) = builder.body {
            http = http
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = http
            .send()
            .await
            .map_err(|e| StripeHttpError::Transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("Idempotent-Replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let body = response
            .bytes()
            .await
            .map_err(|e| StripeHttpError::Transport(e.without_url().to_string()))?;
        Ok(Reply {
            status,
            replayed,
            body,
        })
    }
}

/// Stripe's error message from an error body, or the body itself.
pub(crate) fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect())
}

/// A client that keeps the whole reply (status, replay flag, body) of the
/// one request it sends, whatever the status: the rail interprets Stripe's
/// answer itself.
pub(crate) struct Recorder<'a> {
    http: &'a StripeHttp,
    reply: std::sync::Mutex<Option<Reply>>,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(http: &'a StripeHttp) -> Self {
        Self {
            http,
            reply: std::sync::Mutex::new(None),
        }
    }

    /// The reply received, if the request reached Stripe.
    pub(crate) fn take(&self) -> Option<Reply> {
        match self.reply.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

impl StripeClient for Recorder<'_> {
    type Err = StripeHttpError;

    async fn execute(&self, req: CustomizedStripeRequest) -> Result<Bytes, Self::Err> {
        let reply = self.http.send(req).await?;
        let body = reply.body.clone();
        match self.reply.lock() {
            Ok(mut slot) => *slot = Some(reply),
            Err(poisoned) => *poisoned.into_inner() = Some(reply),
        }
        Ok(body)
    }
}

impl StripeClient for StripeHttp {
    type Err = StripeHttpError;

    async fn execute(&self, req: CustomizedStripeRequest) -> Result<Bytes, Self::Err> {
        let reply = self.send(req).await?;
        if (200..300).contains(&reply.status) {
            Ok(reply.body)
        } else {
            Err(StripeHttpError::Api {
                status: reply.status,
                message: error_message(&reply.body),
            })
        }
    }
}
