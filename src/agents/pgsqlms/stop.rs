//! stop: a fast shutdown (immediate if that does not finish in time). An instance that is
//! already down — cleanly or crashed — is stopped: failing here would make Pacemaker fence
//! the node, and a crashed ex-primary would be fenced again at every restart.

use std::time::{Duration, Instant};

use super::instance::{self, State};
use super::Config;
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::{ocf_info, ocf_warn};

pub fn stop(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let who = instance::identity(&cfg)?;
    if instance::postmaster_alive(&cfg.datadir).is_none() {
        let st = instance::stopped_state(&cfg, cfg.timeout / 4).unwrap_or(State::Stopped { as_primary: false });
        ocf_info!("PostgreSQL is not running ({st:?}): nothing to stop");
        return Ok(OcfRc::Success);
    }
    stop_instance(&cfg, who, instance::deadline(&cfg))?;
    Ok(OcfRc::Success)
}

/// Shut the running instance down: fast, then immediate if needed. Used by demote too.
/// `until` is the caller's deadline.
pub fn stop_instance(cfg: &Config, who: crate::pg::client::Identity, until: Instant) -> Result<(), OcfError> {
    let left = || until.saturating_duration_since(Instant::now());
    let fast_budget = left().mul_f32(0.7).max(Duration::from_secs(1));
    match instance::pg_ctl(cfg, who, &["stop", "-m", "fast", "-w", "-t", &fast_budget.as_secs().max(1).to_string()], fast_budget + Duration::from_secs(1)) {
        Ok(()) => ocf_info!("stopped (fast shutdown)"),
        Err(e) => {
            ocf_warn!("fast shutdown did not finish ({}); shutting down immediately", e.reason);
            let rest = left().max(Duration::from_secs(1));
            instance::pg_ctl(cfg, who, &["stop", "-m", "immediate", "-w", "-t", &rest.as_secs().max(1).to_string()], rest)?;
        }
    }
    if let Some(pid) = instance::postmaster_alive(&cfg.datadir) {
        return Err(OcfError::generic(format!("the postmaster (pid {pid}) is still running after shutdown")));
    }
    Ok(())
}
