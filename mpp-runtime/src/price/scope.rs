//! Scopes: the label a price and its metered sessions are locked to.

use std::fmt;
use std::ops::Range;

/// Longest accepted scope.
pub const MAX_SCOPE_LEN: usize = 128;

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// The scope is empty.
    Empty,
    /// The scope is longer than [`MAX_SCOPE_LEN`].
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A character outside `[A-Za-z0-9._:-]`.
    InvalidCharacter {
        /// Where.
        span: Range<usize>,
        /// What.
        found: char,
    },
}

impl ScopeError {
    /// The byte range of the offending text, if any.
    pub fn span(&self) -> Option<Range<usize>> {
        match self {
            Self::InvalidCharacter { span, .. } => Some(span.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the scope is empty"),
            Self::TooLong { len } => {
                write!(
                    f,
                    "the scope is {len} characters long; the limit is {MAX_SCOPE_LEN}"
                )
            }
            Self::InvalidCharacter { found, .. } => write!(
                f,
                "`{}` is not allowed in a scope; use letters, digits and `.` `_` `:` `-`",
                found.escape_debug()
            ),
        }
    }
}

impl std::error::Error for ScopeError {}

/// Whether a character may appear in a scope.
pub const fn is_scope_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// Checks a scope: 1 to 128 characters from `[A-Za-z0-9._:-]`.
///
/// ```
/// use mpp_runtime::price::validate_scope;
/// assert!(validate_scope("report.basic").is_ok());
/// assert_eq!(validate_scope("report basic").unwrap_err().span(), Some(6..7));
/// ```
pub fn validate_scope(scope: &str) -> Result<(), ScopeError> {
    if scope.is_empty() {
        return Err(ScopeError::Empty);
    }
    if let Some((at, found)) = scope.char_indices().find(|&(_, c)| !is_scope_char(c)) {
        return Err(ScopeError::InvalidCharacter {
            span: at..at + found.len_utf8(),
            found,
        });
    }
    if scope.len() > MAX_SCOPE_LEN {
        return Err(ScopeError::TooLong { len: scope.len() });
    }
    Ok(())
}

/// The scope used when a route names none: its path template with separators
/// turned into dots and parameter brackets dropped (`/posts/<id>` and
/// `/posts/{id}` both become `posts.id`; `/` becomes `root`).
///
/// ```
/// use mpp_runtime::price::default_scope;
/// assert_eq!(default_scope("/api/v1/report"), "api.v1.report");
/// assert_eq!(default_scope("/posts/<id>"), "posts.id");
/// assert_eq!(default_scope("/posts/{id}/comments"), "posts.id.comments");
/// assert_eq!(default_scope("/"), "root");
/// ```
pub fn default_scope(path_template: &str) -> String {
    let mut out = String::with_capacity(path_template.len());
    for c in path_template.chars() {
        let mapped = if is_scope_char(c) && c != '.' {
            Some(c)
        } else if matches!(c, '<' | '>' | '{' | '}' | '*' | '?') {
            None
        } else {
            Some('.')
        };
        match mapped {
            Some('.') if out.is_empty() || out.ends_with('.') => {}
            Some(c) => out.push(c),
            None => {}
        }
    }
    while out.ends_with('.') {
        out.pop();
    }
    out.truncate(MAX_SCOPE_LEN);
    while out.ends_with('.') {
        out.pop();
    }
    if out.is_empty() {
        "root".to_owned()
    } else {
        out
    }
}
