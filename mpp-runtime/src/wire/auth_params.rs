//! The RFC 9110 §11 `auth-param` syntax shared by `WWW-Authenticate`,
//! the session form of `Authorization` and `Payment-Session`.
//!
//! Parsing is linear in the input (no backtracking), case-insensitive for
//! scheme and parameter names, accepts token or quoted-string values, and
//! rejects duplicate parameters and CR/LF. Quoted strings decode RFC 9110
//! quoted-pairs plus the `\u` + four-hex-digit escapes the stock mppx client and this
//! crate use for characters outside ASCII.

use std::borrow::Cow;

use thiserror::Error;

/// Largest header value the parsers accept.
pub const MAX_HEADER_LEN: usize = 32 * 1024;
/// Largest single parameter value the parsers accept.
pub const MAX_PARAM_LEN: usize = 16 * 1024;
/// Most parameters one auth scheme may carry (a challenge has ten known
/// ones); the bound keeps the duplicate check linear in the input.
pub const MAX_PARAMS: usize = 32;

/// Why an auth-param list could not be parsed or formatted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthParamError {
    /// CR or LF inside a header value (header injection).
    #[error("header value contains CR or LF")]
    LineBreak,
    /// A control character that cannot appear in a header value.
    #[error("parameter `{0}` contains a control character")]
    ControlCharacter(String),
    /// The header or a value is larger than the parser accepts.
    #[error("{what} is too large ({len} bytes, limit {limit})")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The same parameter name appears twice.
    #[error("duplicate parameter `{0}`")]
    Duplicate(String),
    /// Something other than `name=value` where a parameter was expected.
    #[error("malformed auth-param at offset {0}")]
    Malformed(usize),
}

/// One parsed `name=value` pair. Names are lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParam<'a> {
    /// Parameter name, lowercased.
    pub name: Cow<'a, str>,
    /// Value after quoted-string unescaping.
    pub value: Cow<'a, str>,
}

/// The parameters of one auth scheme.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthParams<'a> {
    /// The parameters in wire order.
    pub params: Vec<AuthParam<'a>>,
    /// Name of a trailing parameter whose quoted value never closed; it and
    /// everything after it were ignored.
    pub unterminated: Option<String>,
}

impl<'a> AuthParams<'a> {
    /// The value of parameter `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_ref())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Rejects inputs no parser here should look at: CR/LF and oversized values.
pub fn check_header(header: &str) -> Result<(), AuthParamError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(AuthParamError::TooLarge {
            what: "header",
            len: header.len(),
            limit: MAX_HEADER_LEN,
        });
    }
    if memchr::memchr2(b'\r', b'\n', header.as_bytes()).is_some() {
        return Err(AuthParamError::LineBreak);
    }
    Ok(())
}

/// Byte offsets where `scheme` begins as an auth scheme: at the start or after
/// a comma, outside quoted strings, and followed by whitespace.
pub fn scheme_starts(header: &str, scheme: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    for_each_scheme_start(header, scheme, |at| {
        starts.push(at);
        true
    });
    starts
}

/// The first offset where `scheme` begins as an auth scheme (see
/// [`scheme_starts`]), found without scanning further than needed.
pub fn first_scheme_start(header: &str, scheme: &str) -> Option<usize> {
    let b = header.as_bytes();
    // The common case: the value starts with the scheme.
    if b.len() > scheme.len()
        && b[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        && is_ows(b[scheme.len()])
    {
        return Some(0);
    }
    let mut first = None;
    for_each_scheme_start(header, scheme, |at| {
        first = Some(at);
        false
    });
    first
}

/// Calls `found` with each scheme start until it returns `false`.
fn for_each_scheme_start(header: &str, scheme: &str, mut found: impl FnMut(usize) -> bool) {
    let b = header.as_bytes();
    let mut in_quotes = false;
    let mut escaped = false;
    // Whether only whitespace has been seen since the last comma (or start).
    let mut at_boundary = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_quotes = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_quotes = true;
                at_boundary = false;
            }
            b',' => at_boundary = true,
            c if is_ows(c) => {}
            _ => {
                if at_boundary
                    && b.len() > i + scheme.len()
                    && b[i..i + scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
                    && is_ows(b[i + scheme.len()])
                    && !found(i)
                {
                    return;
                }
                at_boundary = false;
            }
        }
        i += 1;
    }
}

/// Parses `name=value` pairs from the start of `input` until the input ends or
/// a token that is not followed by `=` (the start of another auth scheme).
///
/// Returns the parameters and the offset where parsing stopped.
pub fn parse_params(input: &str) -> Result<(AuthParams<'_>, usize), AuthParamError> {
    let b = input.as_bytes();
    let mut out = AuthParams::default();
    let mut i = 0;
    loop {
        while i < b.len() && (is_ows(b[i]) || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            return Ok((out, i));
        }
        let name_start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == name_start {
            return Err(AuthParamError::Malformed(i));
        }
        let name_end = i;
        while i < b.len() && is_ows(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            // Another scheme (or token68) starts here.
            return Ok((out, name_start));
        }
        i += 1;
        while i < b.len() && is_ows(b[i]) {
            i += 1;
        }
        let name = lowercase(&input[name_start..name_end]);
        let value = if b.get(i) == Some(&b'"') {
            match read_quoted(input, i + 1)? {
                Some((value, next)) => {
                    i = next;
                    value
                }
                None => {
                    out.unterminated = Some(name.into_owned());
                    return Ok((out, b.len()));
                }
            }
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' && !is_ows(b[i]) {
                i += 1;
            }
            Cow::Borrowed(&input[start..i])
        };
        if value.len() > MAX_PARAM_LEN {
            return Err(AuthParamError::TooLarge {
                what: "parameter value",
                len: value.len(),
                limit: MAX_PARAM_LEN,
            });
        }
        if out.params.iter().any(|p| p.name == name) {
            return Err(AuthParamError::Duplicate(name.into_owned()));
        }
        if out.params.len() == MAX_PARAMS {
            return Err(AuthParamError::TooLarge {
                what: "parameter list",
                len: MAX_PARAMS + 1,
                limit: MAX_PARAMS,
            });
        }
        out.params.push(AuthParam { name, value });
    }
}

fn lowercase(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Reads a quoted-string body starting just after the opening quote.
/// Returns the unescaped value and the offset after the closing quote, or
/// `None` when the string never closes.
fn read_quoted(input: &str, start: usize) -> Result<Option<(Cow<'_, str>, usize)>, AuthParamError> {
    let b = input.as_bytes();
    let mut i = start;
    // Fast path: no escapes.
    while i < b.len() && b[i] != b'"' && b[i] != b'\\' {
        i += 1;
    }
    if i >= b.len() {
        return Ok(None);
    }
    if b[i] == b'"' {
        return Ok(Some((Cow::Borrowed(&input[start..i]), i + 1)));
    }
    let mut value = String::with_capacity(i - start + 16);
    value.push_str(&input[start..i]);
    let mut pending_high: Option<u16> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                if pending_high.take().is_some() {
                    value.push(char::REPLACEMENT_CHARACTER);
                }
                return Ok(Some((Cow::Owned(value), i + 1)));
            }
            b'\\' => {
                let Some(next) = input[i + 1..].chars().next() else {
                    return Ok(None);
                };
                if next == 'u'
                    && let Some(unit) = hex4(b.get(i + 2..i + 6))
                {
                    push_utf16_unit(&mut value, &mut pending_high, unit);
                    i += 6;
                    continue;
                }
                if pending_high.take().is_some() {
                    value.push(char::REPLACEMENT_CHARACTER);
                }
                value.push(next);
                i += 1 + next.len_utf8();
            }
            _ => {
                if pending_high.take().is_some() {
                    value.push(char::REPLACEMENT_CHARACTER);
                }
                let c = input[i..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                value.push(c);
                i += c.len_utf8();
            }
        }
        if value.len() > MAX_PARAM_LEN {
            return Err(AuthParamError::TooLarge {
                what: "parameter value",
                len: value.len(),
                limit: MAX_PARAM_LEN,
            });
        }
    }
    Ok(None)
}

fn hex4(digits: Option<&[u8]>) -> Option<u16> {
    let digits = digits?;
    digits.iter().try_fold(0u16, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc << 4 | v as u16)
    })
}

fn push_utf16_unit(value: &mut String, pending_high: &mut Option<u16>, unit: u16) {
    match (pending_high.take(), unit) {
        (Some(high), 0xDC00..=0xDFFF) => {
            let c = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
            value.push(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
        (previous, 0xD800..=0xDBFF) => {
            if previous.is_some() {
                value.push(char::REPLACEMENT_CHARACTER);
            }
            *pending_high = Some(unit);
        }
        (previous, _) => {
            if previous.is_some() {
                value.push(char::REPLACEMENT_CHARACTER);
            }
            value.push(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    }
}

/// Appends `name="value"` to `out`, escaping `"` and `\`, and writing every
/// character outside ASCII as a `\u` escape of its UTF-16 code units, so the header is
/// plain ASCII on every HTTP stack. Control characters other than tab are an
/// error: they cannot appear in a header value.
pub fn push_param(out: &mut String, name: &str, value: &str) -> Result<(), AuthParamError> {
    out.push_str(name);
    out.push_str("=\"");
    push_quoted_body(out, name, value)?;
    out.push('"');
    Ok(())
}

/// Appends the escaped body of a quoted string (without the quotes).
pub fn push_quoted_body(out: &mut String, name: &str, value: &str) -> Result<(), AuthParamError> {
    // Most values are printable ASCII without quotes or backslashes: copied
    // as they are.
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push_str(value);
        return Ok(());
    }
    for c in value.chars() {
        match c {
            '\r' | '\n' => return Err(AuthParamError::LineBreak),
            '\t' => out.push('\t'),
            c if c.is_control() && c.is_ascii() => {
                return Err(AuthParamError::ControlCharacter(name.to_owned()));
            }
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str("\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(char::from(
                            b"0123456789abcdef"[usize::from((*unit >> shift) & 0xf)],
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> AuthParams<'_> {
        parse_params(input).unwrap().0
    }

    #[test]
    fn parses_tokens_and_quoted_strings() {
        let p = parse(r#"a=1, B="two \"x\"" ,c = "C:\\dir""#);
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("two \"x\""));
        assert_eq!(p.get("c"), Some("C:\\dir"));
    }

    #[test]
    fn stops_at_the_next_scheme() {
        let input = r#"id="a", Bearer realm="x""#;
        let (p, end) = parse_params(input).unwrap();
        assert_eq!(p.get("id"), Some("a"));
        assert_eq!(&input[end..], r#"Bearer realm="x""#);
    }

    #[test]
    fn caps_the_number_of_parameters() {
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert!(parse_params(&many[..MAX_PARAMS].join(", ")).is_ok());
        assert!(matches!(
            parse_params(&many.join(", ")),
            Err(AuthParamError::TooLarge {
                what: "parameter list",
                ..
            })
        ));
    }

    #[test]
    fn rejects_duplicates_case_insensitively() {
        assert_eq!(
            parse_params("id=a, ID=b").unwrap_err(),
            AuthParamError::Duplicate("id".into())
        );
    }

    #[test]
    fn finds_schemes_outside_quotes_only() {
        let h = r#"Payment id="x", realm="Payment zone", Payment id="y", Bearer x"#;
        assert_eq!(scheme_starts(h, "payment"), vec![0, 38]);
        assert!(scheme_starts("Payment", "Payment").is_empty());
    }

    #[test]
    fn unicode_escapes_round_trip() {
        let mut out = String::new();
        push_param(&mut out, "description", "café ☕ \u{1F600} \"q\"").unwrap();
        assert!(out.is_ascii());
        assert_eq!(out, r#"description="caf\u00e9 \u2615 \ud83d\ude00 \"q\"""#);
        assert_eq!(
            parse(&out).get("description"),
            Some("café ☕ \u{1F600} \"q\"")
        );
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        assert_eq!(parse(r#"d="\ud83dx""#).get("d"), Some("\u{FFFD}x"));
        assert_eq!(parse(r#"d="\ude00""#).get("d"), Some("\u{FFFD}"));
    }

    #[test]
    fn refuses_to_format_line_breaks() {
        let mut out = String::new();
        assert_eq!(
            push_param(&mut out, "d", "a\r\nb"),
            Err(AuthParamError::LineBreak)
        );
        assert!(matches!(
            push_param(&mut out, "d", "a\u{0}b"),
            Err(AuthParamError::ControlCharacter(_))
        ));
    }

    #[test]
    fn unterminated_values_are_reported() {
        let (p, _) = parse_params(r#"id="a", fuzz="\\\\\\"#).unwrap();
        assert_eq!(p.get("id"), Some("a"));
        assert_eq!(p.unterminated.as_deref(), Some("fuzz"));
    }
}
