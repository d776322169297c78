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
        // Session ids and scopes are header-safe by construction and are
        // copied as they are, in one pass into a buffer of the exact size.
        if !(is_plain_text(&self.id) && is_plain_text(&self.scope)) {
            return self.to_header_quoted();
        }
        let expires = self.expires_at.to_rfc3339_bytes();
        let mut digits = [0u8; 10];
        let remaining = decimal(self.remaining, &mut digits);
        let parts: [&[u8]; 9] = [
            b"id=\"",
            self.id.as_bytes(),
            b"\", remaining=\"",
            remaining,
            b"\", scope=\"",
            self.scope.as_bytes(),
            b"\", expiresAt=\"",
            &expires,
            b"\"",
        ];
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            out.extend_from_slice(part);
        }
        // Every part is ASCII.
        String::from_utf8(out).unwrap_or_default()
    }

    /// [`SessionInfo::to_header`] for an id or scope that needs quoting
    /// (a custom store returning something odd); a value that cannot be
    /// quoted is written empty rather than panicking.
    fn to_header_quoted(&self) -> String {
        let expires = self.expires_at.to_rfc3339_bytes();
        let expires = std::str::from_utf8(&expires).unwrap_or_default();
        let mut out = String::with_capacity(64 + self.id.len() + self.scope.len());
        let push = |out: &mut String, name: &str, value: &str| {
            let mark = out.len();
            if auth_params::push_param(out, name, value).is_err() {
                out.truncate(mark);
                out.push_str(name);
                out.push_str("=\"\"");
            }
        };
        push(&mut out, "id", &self.id);
        out.push_str(", remaining=\"");
        let mut digits = [0u8; 10];
        out.push_str(std::str::from_utf8(decimal(self.remaining, &mut digits)).unwrap_or("0"));
        out.push_str("\", ");
        push(&mut out, "scope", &self.scope);
        out.push_str(", expiresAt=\"");
        out.push_str(expires);
        out.push('"');
        out
    }

    /// Parses a `Payment-Session` header value. An id or scope with a
    /// control character (raw or `\u`-escaped) is refused: no session has
    /// one, and [`SessionInfo::to_header`] could not write it back.
    pub fn parse(header: &str) -> Result<Self, SessionHeaderError> {
        auth_params::check_header(header)?;
        let (params, _) = auth_params::parse_params(header)?;
        let field =
            |name: &'static str, key: &str| params.get(key).ok_or(SessionHeaderError::Field(name));
        let text = |name: &'static str| {
            field(name, name)
                .ok()
                .filter(|v| !has_control(v))
                .map(str::to_owned)
                .ok_or(SessionHeaderError::Field(name))
        };
        Ok(Self {
            id: text("id")?,
            remaining: field("remaining", "remaining")?
                .parse()
                .map_err(|_| SessionHeaderError::Field("remaining"))?,
            scope: text("scope")?,
            expires_at: Timestamp::parse_rfc3339(field("expiresAt", "expiresat")?)
                .map_err(|_| SessionHeaderError::Field("expiresAt"))?,
        })
    }
}

/// Appends `n` in decimal (without `fmt`'s machinery: this runs on every
/// session spend).
/// `n` in decimal, written at the end of `digits`.
fn decimal(mut n: u32, digits: &mut [u8; 10]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[start..]
}

/// A byte that needs no escaping inside a quoted header value: printable
/// ASCII other than `"` and `\`.
const fn is_plain(byte: u8) -> bool {
    (byte.is_ascii_graphic() && byte != b'"' && byte != b'\\') || byte == b' '
}

/// [`is_plain`] for every byte, looked up.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = is_plain(i as u8);
        i += 1;
    }
    table
};

/// Whether every byte of `value` is [`is_plain`].
fn is_plain_text(value: &str) -> bool {
    value.bytes().all(|b| PLAIN[usize::from(b)])
}

/// Whether `value` has an ASCII control character other than tab, which
/// no header value may carry (and `push_param` refuses to write).
fn has_control(value: &str) -> bool {
    value.bytes().any(|b| b.is_ascii_control() && b != b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/run.sh session`: an id with control characters parsed,
    /// and `to_header` wrote it back as `id=""`.
    #[test]
    fn control_characters_in_id_or_scope_are_refused() {
        let header = "id=\"sess_Ftqb\u{4}\0\0\", remaining=\"2\", scope=\"fuzz.metered\", expiresAt=\"2026-01-01T01:00:00Z\"";
        assert_eq!(
            SessionInfo::parse(header),
            Err(SessionHeaderError::Field("id"))
        );
        let escaped =
            r#"id="sess_1", remaining="2", scope="a\u0001b", expiresAt="2026-01-01T01:00:00Z""#;
        assert_eq!(
            SessionInfo::parse(escaped),
            Err(SessionHeaderError::Field("scope"))
        );
        let tab =
            "id=\"sess\t1\", remaining=\"2\", scope=\"a\", expiresAt=\"2026-01-01T01:00:00Z\"";
        let info = SessionInfo::parse(tab).unwrap();
        assert_eq!(SessionInfo::parse(&info.to_header()).unwrap(), info);
    }

    #[test]
    fn every_count_and_any_text_round_trips() {
        for remaining in [0, 7, 10, 999_999, u32::MAX] {
            for (id, scope) in [
                ("sess_abc-_9", "report.basic"),
                ("sess with \"quotes\" and \\", "caf\u{e9}"),
            ] {
                let info = SessionInfo {
                    id: id.into(),
                    remaining,
                    scope: scope.into(),
                    expires_at: Timestamp::from_unix(1_767_225_600),
                };
                let header = info.to_header();
                assert!(header.contains(&format!("remaining=\"{remaining}\"")));
                assert_eq!(SessionInfo::parse(&header).unwrap(), info, "{header}");
            }
        }
    }
}
