//! monitor: report the role — 0 standby, 8 primary, 7 cleanly stopped, 9 crashed primary,
//! 1 broken — and keep the promotion scores current.

use super::instance::{self, State};
use super::{scores, Config};
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::ocf_warn;

pub fn monitor(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let who = instance::identity(&cfg)?;
    let probe = env.is_probe("monitor");
    match instance::state(&cfg, who, cfg.timeout / 2)? {
        State::Primary => {
            if !probe {
                if let Err(e) = scores::update_from_primary(&cfg, who) {
                    ocf_warn!("cannot update promotion scores: {}", e.reason);
                }
            }
            Ok(OcfRc::RunningPromoted)
        }
        State::Standby => {
            if !probe {
                scores::standby_self_score(&cfg, who);
            }
            Ok(OcfRc::Success)
        }
        State::Stopped { .. } => Ok(OcfRc::NotRunning),
        State::CrashedPrimary => Err(OcfError::new(OcfRc::FailedPromoted, "PostgreSQL is not running and crashed while primary")),
        State::CrashedStandby => Err(OcfError::generic("PostgreSQL is not running and crashed while standby")),
        State::Broken(why) => Err(OcfError::generic(why)),
    }
}
