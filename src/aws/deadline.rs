//! Polling EC2 within an action's deadline ([`crate::ocf::Deadline`], shared by every agent).
//!
//! EC2 is eventually consistent: a change it accepted shows in its answers a moment later.
//! Every agent that changes something waits until EC2 shows it, and all of them wait the
//! same way, [`wait_until`], so that the pause, the bound and the give-up are one piece of
//! code, not one per agent.

use std::time::Duration;

pub use crate::ocf::Deadline;
use crate::ocf::OcfError;

/// The pause between two looks at EC2 while waiting for a change to show: 200 ms, growing
/// by half each time up to 2 s — quick for the usual sub-second change, gentle on the API
/// (and its throttling) when it takes longer.
#[derive(Debug, Clone)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(200))
    }
}

impl Backoff {
    /// Sleep the next pause, bounded by `deadline`; false when no time was left.
    pub async fn wait(&mut self, deadline: &Deadline) -> bool {
        let slept = deadline.sleep(self.0).await;
        self.0 = (self.0 * 3 / 2).min(Duration::from_secs(2));
        slept
    }
}

/// Look at EC2 (`look`) until what it sees `shows` the change, pausing by [`Backoff`] in
/// between; what it saw then. An error of `look` ends the wait with that error; at the
/// deadline, the error is what `late` makes of the last look (the agent says what EC2
/// still shows).
pub async fn wait_until<T>(
    deadline: &Deadline,
    mut look: impl AsyncFnMut() -> Result<T, OcfError>,
    shows: impl Fn(&T) -> bool,
    late: impl FnOnce(T) -> OcfError,
) -> Result<T, OcfError> {
    let mut pause = Backoff::default();
    loop {
        let seen = look().await?;
        if shows(&seen) {
            return Ok(seen);
        }
        if !pause.wait(deadline).await {
            return Err(late(seen));
        }
    }
}
