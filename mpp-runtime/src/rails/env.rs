//! Reading a rail's settings from environment-like variables: trimmed,
//! empty meaning unset, and every unreadable value collected as a problem
//! that names the variable, so the rail reports them all at once.

use std::cell::RefCell;

/// Variables read through a lookup function (`std::env::var`, a map in
/// tests), with the problems found so far.
pub(crate) struct EnvVars<F> {
    lookup: F,
    problems: RefCell<Vec<String>>,
}

impl<F: Fn(&str) -> Option<String>> EnvVars<F> {
    /// Variables read through `lookup`.
    pub(crate) fn new(lookup: F) -> Self {
        Self {
            lookup,
            problems: RefCell::new(Vec::new()),
        }
    }

    /// The trimmed value of `name`; `None` when unset or blank.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name` as a non-negative integer; an unreadable value
    /// is recorded as a problem saying it must be `what`.
    pub(crate) fn number(&self, name: &str, what: &str) -> Option<u64> {
        let text = self.text(name)?;
        match text.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.problem(format!("{name} must be {what}, not `{text}`"));
                None
            }
        }
    }

    /// Records a problem.
    pub(crate) fn problem(&self, message: impl Into<String>) {
        self.problems.borrow_mut().push(message.into());
    }

    /// The problems found.
    pub(crate) fn into_problems(self) -> Vec<String> {
        self.problems.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_unset_and_bad_numbers_are_problems() {
        let vars = EnvVars::new(|name: &str| match name {
            "A" => Some("  7 ".to_owned()),
            "B" => Some("   ".to_owned()),
            "C" => Some("seven".to_owned()),
            _ => None,
        });
        assert_eq!(vars.number("A", "a count"), Some(7));
        assert_eq!(vars.text("B"), None);
        assert_eq!(vars.number("C", "a count"), None);
        assert_eq!(vars.number("D", "a count"), None);
        assert_eq!(
            vars.into_problems(),
            vec!["C must be a count, not `seven`".to_owned()]
        );
    }
}
