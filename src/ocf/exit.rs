//! OCF exit codes, and the error type that carries one.
//!
//! Every failure inside an agent is an [`OcfError`]: a code plus a one-line reason for the
//! user, and the context it was met in. The reason is what `pcs status` and `crm_mon` show
//! after "exit-reason", and Pacemaker keeps only its first 128 characters (the CIB's
//! `exit-reason`): so the *cause* comes first and the context after it, in parentheses,
//! cut to fit ([`OcfError::exit_reason`]); the whole chain, outermost context first as a
//! reader follows it, goes to the log ([`OcfError::chain`]). Never a Rust debug dump.

use std::fmt;

/// Exit codes defined by the OCF resource agent API (1.1), with Pacemaker's degraded codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OcfRc {
    /// The action succeeded (monitor: running, unpromoted if promotable).
    Success = 0,
    /// Generic failure: Pacemaker recovers the resource, possibly on this node.
    ErrGeneric = 1,
    /// Wrong or missing arguments on the command line.
    ErrArgs = 2,
    /// The action is not implemented by this agent.
    ErrUnimplemented = 3,
    /// Insufficient privileges.
    ErrPerm = 4,
    /// Something required is missing on this node: Pacemaker will not run it here.
    ErrInstalled = 5,
    /// The configuration is wrong: Pacemaker stops the resource everywhere.
    ErrConfigured = 6,
    /// Cleanly stopped (monitor only; never from start or stop).
    NotRunning = 7,
    /// Running in the promoted role.
    RunningPromoted = 8,
    /// Failed in the promoted role.
    FailedPromoted = 9,
    /// Running, but degraded (Pacemaker ≥ 2.0 treats it as success and reports it).
    Degraded = 190,
    /// Running promoted, but degraded.
    DegradedPromoted = 191,
}

impl OcfRc {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The symbolic name, as the OCF shell functions spell it.
    pub fn name(self) -> &'static str {
        match self {
            OcfRc::Success => "OCF_SUCCESS",
            OcfRc::ErrGeneric => "OCF_ERR_GENERIC",
            OcfRc::ErrArgs => "OCF_ERR_ARGS",
            OcfRc::ErrUnimplemented => "OCF_ERR_UNIMPLEMENTED",
            OcfRc::ErrPerm => "OCF_ERR_PERM",
            OcfRc::ErrInstalled => "OCF_ERR_INSTALLED",
            OcfRc::ErrConfigured => "OCF_ERR_CONFIGURED",
            OcfRc::NotRunning => "OCF_NOT_RUNNING",
            OcfRc::RunningPromoted => "OCF_RUNNING_MASTER",
            OcfRc::FailedPromoted => "OCF_FAILED_MASTER",
            OcfRc::Degraded => "OCF_DEGRADED",
            OcfRc::DegradedPromoted => "OCF_DEGRADED_MASTER",
        }
    }
}

impl fmt::Display for OcfRc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// The most Pacemaker keeps of an exit reason (longer ones are cut in the CIB).
pub const EXIT_REASON_MAX: usize = 128;

/// A failure with the exit code it stands for, a one-line reason for the user (the cause),
/// and what was being done when it happened (innermost first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcfError {
    pub rc: OcfRc,
    pub reason: String,
    pub context: Vec<String>,
}

impl OcfError {
    pub fn new(rc: OcfRc, reason: impl Into<String>) -> Self {
        OcfError { rc, reason: reason.into(), context: Vec::new() }
    }
    pub fn generic(reason: impl Into<String>) -> Self {
        Self::new(OcfRc::ErrGeneric, reason)
    }
    pub fn args(reason: impl Into<String>) -> Self {
        Self::new(OcfRc::ErrArgs, reason)
    }
    pub fn unimplemented(reason: impl Into<String>) -> Self {
        Self::new(OcfRc::ErrUnimplemented, reason)
    }
    pub fn perm(reason: impl Into<String>) -> Self {
        Self::new(OcfRc::ErrPerm, reason)
    }
    pub fn installed(reason: impl Into<String>) -> Self {
        Self::new(OcfRc::ErrInstalled, reason)
    }
    pub fn configured(reason: impl Into<String>) -> Self {
        Self::new(OcfRc::ErrConfigured, reason)
    }

    /// The same failure under another code (e.g. validate-all reporting a missing
    /// installation as a configuration error).
    pub fn with_rc(mut self, rc: OcfRc) -> Self {
        self.rc = rc;
        self
    }

    /// Record what was being done (or what to do about it), keeping the code and the cause.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.context.push(what.to_string());
        self
    }

    /// The whole chain for the log: outermost context first, the cause last.
    pub fn chain(&self) -> String {
        let mut parts: Vec<&str> = self.context.iter().rev().map(String::as_str).collect();
        parts.push(&self.reason);
        parts.join(": ")
    }

    /// What Pacemaker shows: the cause first, then the context in parentheses — outermost
    /// first, since that is what the operator was doing or should do, the innermost being
    /// technical detail the cut may drop — on one line and within [`EXIT_REASON_MAX`] bytes
    /// (cut on a character boundary, with "...").
    pub fn exit_reason(&self) -> String {
        let mut s = self.reason.clone();
        if !self.context.is_empty() {
            let ctx: Vec<&str> = self.context.iter().rev().map(String::as_str).collect();
            s = format!("{s} ({})", ctx.join("; "));
        }
        fit(&s.replace(['\n', '\r'], " "), EXIT_REASON_MAX)
    }
}

/// `s` cut to at most `max` bytes on a character boundary, marked with "..." when cut.
pub fn fit(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", s[..end].trim_end())
}

impl fmt::Display for OcfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.chain(), self.rc.name())
    }
}

impl std::error::Error for OcfError {}

/// What every action returns: the code to exit with, or an error carrying one.
pub type OcfResult = Result<OcfRc, OcfError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_specification() {
        let table = [
            (OcfRc::Success, 0),
            (OcfRc::ErrGeneric, 1),
            (OcfRc::ErrArgs, 2),
            (OcfRc::ErrUnimplemented, 3),
            (OcfRc::ErrPerm, 4),
            (OcfRc::ErrInstalled, 5),
            (OcfRc::ErrConfigured, 6),
            (OcfRc::NotRunning, 7),
            (OcfRc::RunningPromoted, 8),
            (OcfRc::FailedPromoted, 9),
            (OcfRc::Degraded, 190),
            (OcfRc::DegradedPromoted, 191),
        ];
        for (rc, code) in table {
            assert_eq!(rc.code(), code, "{rc}");
        }
    }

    #[test]
    fn context_keeps_the_code_and_the_cause_first() {
        let e = OcfError::installed("no such interface").context("eth9").context("cannot place the address");
        assert_eq!(e.rc, OcfRc::ErrInstalled);
        assert_eq!(e.reason, "no such interface");
        assert_eq!(e.chain(), "cannot place the address: eth9: no such interface");
        assert_eq!(e.exit_reason(), "no such interface (cannot place the address; eth9)");
    }

    #[test]
    fn exit_reasons_fit_in_what_pacemaker_keeps() {
        let long = OcfError::generic("é".repeat(100)).context("x".repeat(300));
        let r = long.exit_reason();
        assert!(r.len() <= EXIT_REASON_MAX, "{}", r.len());
        assert!(r.starts_with("éé") && r.ends_with("..."), "{r}");
        let multi = OcfError::generic("line one\nline two");
        assert_eq!(multi.exit_reason(), "line one line two");
        assert_eq!(fit("short", 128), "short");
    }
}
