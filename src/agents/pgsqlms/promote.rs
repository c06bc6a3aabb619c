//! promote: turn this standby into the primary (pg_ctl promote), and return once it
//! accepts writes.

use super::instance::{self, State};
use super::{scores, Config};
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::ocf_info;

pub fn promote(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let who = instance::identity(&cfg)?;
    let until = instance::deadline(&cfg);
    match instance::state(&cfg, who, cfg.timeout / 4)? {
        State::Primary => {
            ocf_info!("already primary");
            return Ok(OcfRc::Success);
        }
        State::Standby => {}
        other => return Err(OcfError::generic(format!("cannot promote: PostgreSQL is not a running standby ({other:?})"))),
    }
    instance::pg_ctl(&cfg, who, &["promote", "-W"], cfg.timeout / 2)?;
    match instance::wait_for(&cfg, who, until, |s| *s == State::Primary)? {
        State::Primary => {
            ocf_info!("promoted");
            scores::set_own(&cfg, scores::PRIMARY);
            Ok(OcfRc::Success)
        }
        other => Err(OcfError::generic(format!("PostgreSQL did not become primary in time ({other:?})"))),
    }
}
