//! demote: a clean fast shutdown of the primary, then a start as a standby. The clean
//! shutdown writes a shutdown checkpoint that the standbys receive before the primary's
//! walsenders exit, so the standby promoted next has every acknowledged write.

use super::instance::{self, State};
use super::{start, stop, Config};
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::ocf_info;

pub fn demote(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let who = instance::identity(&cfg)?;
    match instance::state(&cfg, who, cfg.timeout / 4)? {
        State::Standby => {
            ocf_info!("already a standby");
            return Ok(OcfRc::Success);
        }
        State::Primary | State::Broken(_) => stop::stop_instance(&cfg, who)?,
        State::Stopped { .. } | State::CrashedPrimary | State::CrashedStandby => {}
    }
    match start::start(env)? {
        OcfRc::Success => Ok(OcfRc::Success),
        rc => Err(OcfError::generic(format!("restart as a standby returned {rc}"))),
    }
}
