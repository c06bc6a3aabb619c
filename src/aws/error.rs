//! From an SDK failure to an OCF code that tells the truth.
//!
//! The question an OCF code answers is "what should Pacemaker do now?": retry here
//! (`OCF_ERR_GENERIC`), give up on this node (`OCF_ERR_PERM`: this node's credentials
//! lack a permission), or stop the resource everywhere (`OCF_ERR_CONFIGURED`: the
//! configuration names something that does not exist). A throttled or failed request says
//! nothing about the resource, so it is never "not running"; agents decide `7` themselves,
//! from an answer EC2 gave.

use std::fmt;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use crate::ocf::{OcfError, OcfRc};

/// A failed AWS call: its OCF code, the AWS error code when EC2 sent one, and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub rc: OcfRc,
    code: Option<String>,
    pub reason: String,
}

impl AwsError {
    pub fn new(rc: OcfRc, code: Option<String>, reason: impl Into<String>) -> AwsError {
        AwsError { rc, code, reason: reason.into() }
    }

    /// The AWS error code (`InvalidAddress.NotFound`, `RequestLimitExceeded`…), if any.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// EC2 said the named thing does not exist (`*.NotFound`).
    pub fn is_not_found(&self) -> bool {
        self.code().is_some_and(|c| c.ends_with(".NotFound"))
    }

    /// Build from an SDK error of operation `op` (e.g. `DescribeAddresses`).
    pub fn from_sdk<E, R>(op: &str, err: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + 'static,
    {
        match &err {
            SdkError::ServiceError(ctx) => {
                let e = ctx.err();
                match e.code() {
                    Some(code) => {
                        let msg = e.message().unwrap_or("no message");
                        AwsError::new(rc_for_code(code), Some(code.to_owned()), format!("EC2 {op} failed: {code}: {msg}"))
                    }
                    None => AwsError::new(OcfRc::ErrGeneric, None, format!("EC2 {op} failed with an unrecognised answer: {}", chain(&err))),
                }
            }
            SdkError::TimeoutError(_) => AwsError::new(OcfRc::ErrGeneric, None, format!("EC2 {op} did not complete in the time left (retries included)")),
            SdkError::DispatchFailure(d) => {
                let what = if d.is_timeout() {
                    "timed out connecting to"
                } else if d.is_io() {
                    "could not reach"
                } else {
                    "could not send the request to"
                };
                AwsError::new(OcfRc::ErrGeneric, None, format!("EC2 {op}: {what} the endpoint (retries included): {}", chain(&err)))
            }
            SdkError::ResponseError(_) => AwsError::new(OcfRc::ErrGeneric, None, format!("EC2 {op}: unreadable answer (retries included): {}", chain(&err))),
            _ => AwsError::new(OcfRc::ErrGeneric, None, format!("EC2 {op} failed: {}", chain(&err))),
        }
    }
}

/// An error and its sources, joined with ": " (Display only: no debug dumps in reasons).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        // Wrappers often repeat their source's text: keep each piece once.
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for AwsError {}

impl From<AwsError> for OcfError {
    fn from(e: AwsError) -> OcfError {
        OcfError::new(e.rc, e.reason)
    }
}

/// The OCF code for an AWS error code.
///
/// * Credentials refused or permission missing → `OCF_ERR_PERM`: this node cannot do it,
///   another node (another role) may.
/// * Something configured does not exist or is malformed (`*.NotFound`, `*.Malformed`,
///   invalid parameters) → `OCF_ERR_CONFIGURED`.
/// * Throttling, internal errors, unavailability, expired requests, and anything not
///   listed → `OCF_ERR_GENERIC`: try again.
pub fn rc_for_code(code: &str) -> OcfRc {
    const PERM: &[&str] = &[
        "AuthFailure",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidAccessKeyId",
        "AccessDenied",
        "AccessDeniedException",
        "OptInRequired",
        "Blocked",
        "PendingVerification",
        "UnrecognizedClientException",
    ];
    const CONFIGURED: &[&str] = &[
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "InvalidParameter",
        "MissingParameter",
        "UnknownParameter",
        "InvalidAction",
        "UnsupportedOperation",
        "InvalidInstanceID",
        "InvalidIPAddress",
    ];
    if PERM.contains(&code) || code.starts_with("AuthFailure.") || code.starts_with("UnauthorizedOperation.") {
        OcfRc::ErrPerm
    } else if CONFIGURED.contains(&code) || code.ends_with(".NotFound") || code.ends_with(".Malformed") {
        OcfRc::ErrConfigured
    } else {
        OcfRc::ErrGeneric
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_table() {
        for c in ["AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch", "OptInRequired", "AccessDenied"] {
            assert_eq!(rc_for_code(c), OcfRc::ErrPerm, "{c}");
        }
        for c in [
            "InvalidAddress.NotFound",
            "InvalidAllocationID.NotFound",
            "InvalidInstanceID.NotFound",
            "InvalidInstanceID.Malformed",
            "InvalidNetworkInterfaceID.NotFound",
            "InvalidParameterValue",
        ] {
            assert_eq!(rc_for_code(c), OcfRc::ErrConfigured, "{c}");
        }
        for c in ["RequestLimitExceeded", "Throttling", "InternalError", "ServiceUnavailable", "Unavailable", "RequestExpired", "SomethingNew"] {
            assert_eq!(rc_for_code(c), OcfRc::ErrGeneric, "{c}");
        }
    }

    #[test]
    fn not_found() {
        let e = AwsError::new(OcfRc::ErrConfigured, Some("InvalidAssociationID.NotFound".into()), "x");
        assert!(e.is_not_found());
        let o: OcfError = e.into();
        assert_eq!(o.rc, OcfRc::ErrConfigured);
        assert!(!AwsError::new(OcfRc::ErrGeneric, None, "x").is_not_found());
    }
}
