//! `Payment-Session`: the balance of a metered session, sent beside the
//! receipt (`id="sess_…", remaining="9", scope="report.basic", expiresAt="…"`).

use thiserror::Error;

use super::auth_params::{self, AuthParamError};
use super::timestamp::Timestamp;

/// The state of a metered session after a request spent one credit. The id
/// is a bearer secret; `Debug` shortens it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id the client sends back as `Payment session="…"`.
    pub id: String,
    /// Credits left after this request.
    pub remaining: u32,
    /// The scope the session is locked to.
    pub scope: String,
    /// When the session stops being accepted.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionInfo")
            .field("id", &super::redacted(&self.id))
            .field("remaining", &self.remaining)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a `Payment-Session` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionHeaderError {
    /// Auth-param syntax error.
    #[error(transparent)]
    Syntax(#[from] AuthParamError),
    /// A field is missing or invalid.
    #[error("Payment-Session field `{0}` is missing or invalid")]
    Field(&'static str),
}

impl SessionInfo {
    /// Formats the `Payment-Session` header value.
    ///
    /// ```
    /// use mpp_runtime::wire::{SessionInfo, Timestamp};
    /// let info = SessionInfo {
    ///     id: "sess_abc".into(),
    ///     remaining: 9,
    ///     scope: "report.basic".into(),
    ///     expires_at: Timestamp::from_unix(1_767_225_600),
    /// };
    /// let header = info.to_header();
    /// assert_eq!(header, r#"id="sess_abc", remaining="9", scope="report.basic", expiresAt="2026-01-01T00:00:00Z""#);
    /// assert_eq!(SessionInfo::parse(&header).unwrap(), info);
    /// ```
    pub fn to_header(&self) -> String {
        let mut out = String::with_capacity(96 + self.id.len() + self.scope.len());
        // Session ids and scopes are restricted to header-safe characters by
        // construction, so quoting cannot fail; fall back to an empty value
        // rather than panic if a custom store ever returns something odd.
        let push = |out: &mut String, name: &str, value: &str| {
            if !out.is_empty() {
                out.push_str(", ");
            }
            let mark = out.len();
            if auth_params::push_param(out, name, value).is_err() {
                out.truncate(mark);
                out.push_str(name);
                out.push_str("=\"\"");
            }
        };
        push(&mut out, "id", &self.id);
        push(&mut out, "remaining", &self.remaining.to_string());
        push(&mut out, "scope", &self.scope);
        push(
            &mut out,
            "expiresAt",
            std::str::from_utf8(&self.expires_at.to_rfc3339_bytes()).unwrap_or_default(),
        );
        out
    }

    /// Parses a `Payment-Session` header value.
    pub fn parse(header: &str) -> Result<Self, SessionHeaderError> {
        auth_params::check_header(header)?;
        let (params, _) = auth_params::parse_params(header)?;
        let field =
            |name: &'static str, key: &str| params.get(key).ok_or(SessionHeaderError::Field(name));
        Ok(Self {
            id: field("id", "id")?.to_owned(),
            remaining: field("remaining", "remaining")?
                .parse()
                .map_err(|_| SessionHeaderError::Field("remaining"))?,
            scope: field("scope", "scope")?.to_owned(),
            expires_at: Timestamp::parse_rfc3339(field("expiresAt", "expiresat")?)
                .map_err(|_| SessionHeaderError::Field("expiresAt"))?,
        })
    }
}
