//! What `paceline status` and `paceline check` report: a finding, how bad it is, and the
//! command that shows more or fixes it.
//!
//! A module of its own, below both: status judges the running cluster and check the
//! configuration before go-live, and neither depends on the other to say what it found —
//! one vocabulary (the same two severities, the same labels in text and JSON) without one
//! tool's changes reaching into the other.

/// How bad a finding is; ordered, so the worst of a list is its `max()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    /// As printed, in text and in JSON.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// One thing wrong, and where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub what: String,
    /// The command that shows more or fixes it.
    pub hint: String,
}

impl Finding {
    pub fn new(severity: Severity, what: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding { severity, what: what.into(), hint: hint.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_is_the_max() {
        let f = [Finding::new(Severity::Warning, "a", "x"), Finding::new(Severity::Critical, "b", "y"), Finding::new(Severity::Warning, "c", "z")];
        assert_eq!(f.iter().map(|f| f.severity).max(), Some(Severity::Critical));
        assert_eq!((Severity::Warning.label(), Severity::Critical.label()), ("WARNING", "CRITICAL"));
    }
}
