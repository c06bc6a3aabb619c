//! The point in time by which an action must have answered: one per action, derived from
//! its timeout, for every agent (the AWS calls, pgsqlms's shutdown escalation, the tools).
//!
//! Pacemaker kills an agent that exceeds `CRM_meta_timeout` and treats that as a failure
//! of the worst kind (a stop timeout leads to fencing). An agent that gives up a little
//! earlier, with a code and a reason, lets Pacemaker recover in the ordinary way. The
//! margin covers process start and exit, and the last in-flight request.
//!
//! The deadline of the action being run is also kept for the whole process ([`start_action`],
//! set once by the dispatcher from `CRM_meta_timeout`): every bounded call — a tool through
//! [`crate::cmd`], a connection or a query through [`crate::pg::client`] — takes the smaller
//! of its own bound and what is left of the action ([`bound`]). So a chain of calls (a
//! connect, a query, three Pacemaker tools) can never add up past the action's timeout,
//! whichever of them hangs, and no call site has to remember to subtract. Run by hand
//! (no `CRM_meta_timeout`), there is no action deadline and each call keeps its own bound.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::OcfEnv;

/// An absolute deadline for one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    end: Instant,
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline { end: Instant::now() + budget }
    }

    /// The action's timeout (`OCF_RESKEY_CRM_meta_timeout`, or `default_timeout` when run by
    /// hand) minus a safety margin: 10 % of it, at least 1 s and at most 5 s (and never more
    /// than half of a very short timeout).
    pub fn for_action(env: &OcfEnv, default_timeout: Duration) -> Deadline {
        Deadline::for_timeout(env.timeout_or(default_timeout))
    }

    /// An action's `timeout` minus the same margin (for agents that read the timeout once,
    /// into their configuration).
    pub fn for_timeout(timeout: Duration) -> Deadline {
        Deadline::after(timeout.saturating_sub(margin(timeout)))
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    pub fn end(&self) -> Instant {
        self.end
    }

    /// Sleep `interval`, or until the deadline if that comes first. False when no time was
    /// left to sleep (the caller should stop polling).
    pub async fn sleep(&self, interval: Duration) -> bool {
        let left = self.remaining();
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(interval.min(left)).await;
        true
    }
}

/// The deadline of the action this process runs, once the dispatcher has set it.
static ACTION: OnceLock<Deadline> = OnceLock::new();

/// Record the running action's deadline (the first call wins: one action per process).
pub fn start_action(d: Deadline) {
    let _ = ACTION.set(d);
}

/// The running action's deadline, if Pacemaker gave the action a timeout.
pub fn action() -> Option<Deadline> {
    ACTION.get().copied()
}

/// `timeout`, cut to what is left of the running action (unchanged when no action runs).
pub fn bound(timeout: Duration) -> Duration {
    match action() {
        Some(d) => timeout.min(d.remaining()),
        None => timeout,
    }
}

/// The part of the action's timeout kept in reserve.
pub fn margin(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(5)).min(timeout / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins() {
        assert_eq!(margin(Duration::from_secs(20)), Duration::from_secs(2));
        assert_eq!(margin(Duration::from_secs(5)), Duration::from_secs(1));
        assert_eq!(margin(Duration::from_secs(120)), Duration::from_secs(5));
        assert_eq!(margin(Duration::from_secs(1)), Duration::from_millis(500));
    }

    #[test]
    fn from_pacemaker_timeout() {
        let env = OcfEnv::from_pairs([("OCF_RESKEY_CRM_meta_timeout", "10000")]);
        let d = Deadline::for_action(&env, Duration::from_secs(60));
        let left = d.remaining();
        assert!(left <= Duration::from_secs(9) && left > Duration::from_millis(8900), "{left:?}");
        let d = Deadline::for_action(&OcfEnv::default(), Duration::from_secs(30));
        assert!(d.remaining() > Duration::from_secs(26));
        assert!(!d.expired());
        assert!(Deadline::after(Duration::ZERO).expired());
    }
}
