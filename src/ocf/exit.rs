//! OCF exit codes, and the error type that carries one.
//!
//! Every failure inside an agent is an [`OcfError`]: a code plus a one-line reason for the
//! user. The reason is what `pcs status` and `crm_mon` show after "exit-reason", so it must
//! say what is wrong and, where possible, what to do — never a Rust debug dump.

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

/// A failure with the exit code it stands for and a one-line reason for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcfError {
    pub rc: OcfRc,
    pub reason: String,
}

impl OcfError {
    pub fn new(rc: OcfRc, reason: impl Into<String>) -> Self {
        OcfError { rc, reason: reason.into() }
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

    /// Prefix the reason with what was being done, keeping the code.
    pub fn context(self, what: impl fmt::Display) -> Self {
        OcfError { rc: self.rc, reason: format!("{what}: {}", self.reason) }
    }
}

impl fmt::Display for OcfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.reason, self.rc.name())
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
    fn context_keeps_the_code() {
        let e = OcfError::installed("no such interface").context("eth9");
        assert_eq!(e.rc, OcfRc::ErrInstalled);
        assert_eq!(e.reason, "eth9: no such interface");
    }
}
