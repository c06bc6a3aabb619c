//! Polling EC2 within an action's deadline ([`crate::ocf::Deadline`], shared by every agent).

use std::time::Duration;

pub use crate::ocf::Deadline;

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
