//! notify: the clone's notifications. Pacemaker ignores their exit code; what matters is
//! what they record for the next action.

use super::Config;
use crate::ocf::{OcfEnv, OcfRc, OcfResult};
use crate::ocf_debug;

pub fn notify(env: &OcfEnv) -> OcfResult {
    let _cfg = Config::from_env(env)?;
    let n = env.notify();
    ocf_debug!("notify {}-{}", n.kind, n.operation);
    Ok(OcfRc::Success)
}
