//! demote: a clean fast shutdown of the primary, then a start as a standby. The clean
//! shutdown writes a shutdown checkpoint that the standbys receive before the primary's
//! walsenders exit, so the standby promoted next has every acknowledged write.

use super::election::{self, Position};
use super::instance::{self, State};
use super::{start, stop, Config};
use crate::ocf::{OcfEnv, OcfRc, OcfResult};
use crate::ocf_info;

pub fn demote(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let who = instance::identity(&cfg)?;
    // One deadline for the whole demote: the stop and the restart share the op's timeout.
    let until = instance::deadline(&cfg);
    match instance::state(&cfg, who, cfg.timeout / 4)? {
        State::Standby => {
            ocf_info!("already a standby");
            return Ok(OcfRc::Success);
        }
        State::Primary => {
            stop::stop_instance(&cfg, who, until)?;
            publish_shutdown_checkpoint(&cfg);
        }
        State::Broken(_) => stop::stop_instance(&cfg, who, until)?,
        State::Stopped { .. } | State::CrashedPrimary | State::CrashedStandby => {}
    }
    start::start_standby(&cfg, who, until)?;
    Ok(OcfRc::Success)
}

/// After a clean shutdown, pg_control's latest checkpoint is the shutdown checkpoint: the
/// standby promoted next must have received it (checked in its pre-promote notification).
fn publish_shutdown_checkpoint(cfg: &Config) {
    match crate::pg::ControlData::read(&cfg.bindir, &cfg.datadir, std::time::Duration::from_secs(5)) {
        Ok(cd) if cd.state == crate::pg::ClusterState::ShutDown => {
            let p = Position { timeline: cd.timeline, lsn: cd.checkpoint };
            match election::publish(&election::attr(cfg, "shutdown_lsn"), &p.encode()) {
                Ok(()) => ocf_info!("shutdown checkpoint at {} (timeline {}) published for the switchover check", cd.checkpoint, cd.timeline),
                Err(e) => crate::ocf_warn!("cannot publish the shutdown checkpoint: {}", e.reason),
            }
        }
        Ok(cd) => crate::ocf_warn!("after demote pg_control says {:?}, not a clean shutdown", cd.state),
        Err(e) => crate::ocf_warn!("cannot read pg_control after demote: {}", e.reason),
    }
}
