//! monitor: report the role — 0 standby, 8 primary, 7 cleanly stopped, 9 crashed primary,
//! 1 broken — and keep the promotion scores current. A failure the promoted role's
//! monitor finds is the incident record's detection step (a local file, written only then:
//! a healthy monitor forks nothing and asks nothing more for the record).

use super::instance::{self, State};
use super::{primary, scores, slots, validate, Config};
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::{ocf_info, ocf_warn};

pub fn monitor(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let probe = env.is_probe("monitor");
    let found = check(&cfg, probe);
    // The promoted role's recurring monitor found the primary failed: the detection step
    // of the incident record to come (a local file, written only on a failure).
    if let Err(e) = &found {
        let promoted_role = matches!(env.meta("role"), Some("Promoted" | "Master"));
        if !probe && promoted_role {
            super::history::note_detection(&cfg, &format!("monitor: {}", e.reason));
        }
    }
    found
}

/// What the monitor finds (the OCF code), scores kept current on the way.
fn check(cfg: &Config, probe: bool) -> OcfResult {
    // Not installed on this node (no system_user, bindir, pgdata or datadir): a probe's
    // answer is "not running here" (7) — Pacemaker then simply never starts it here —
    // unless a postmaster runs on that data directory after all; a recurring monitor,
    // which runs only where the resource was started, says what is missing (5).
    let who = match validate::installed(cfg) {
        Ok(who) => who,
        Err(e) if probe && instance::postmaster_alive(&cfg.datadir).is_none() && instance::foreign_on_socket(cfg).is_none() => {
            ocf_info!("not running here: {}", e.reason);
            return Ok(OcfRc::NotRunning);
        }
        Err(e) => return Err(e),
    };
    let (state, local) = instance::state_and_connection(cfg, who, cfg.timeout / 2)?;
    match (state, local) {
        (State::Primary, Some(local)) => {
            if !probe {
                if let Err(e) = primary::update_from_primary(cfg, &local) {
                    ocf_warn!("cannot update promotion scores: {}", e.reason);
                }
            }
            Ok(OcfRc::RunningPromoted)
        }
        (State::Standby, Some(local)) => {
            if !probe {
                scores::standby_self_score(cfg, &local);
                scores::bootstrap_again(cfg);
                if cfg.slot_ttl.is_some() {
                    let slots = scores::local_node(cfg).and_then(|me| slots::on_standby(cfg, &local, &me));
                    if let Err(e) = slots {
                        ocf_warn!("cannot use this standby's replication slot: {}", e.reason);
                    }
                }
            }
            Ok(OcfRc::Success)
        }
        (State::Primary, None) => Ok(OcfRc::RunningPromoted),
        (State::Standby, None) => Ok(OcfRc::Success),
        (State::Stopped { .. }, _) => Ok(OcfRc::NotRunning),
        (State::CrashedPrimary, _) => Err(OcfError::new(OcfRc::FailedPromoted, "PostgreSQL is not running and crashed while primary")),
        // A probe's question is "does it run here?": a crashed standby does not (7); it is
        // started again as a standby. A recurring monitor expected it to run: a failure.
        (State::CrashedStandby, _) if probe => {
            ocf_info!("not running: crashed while standby");
            Ok(OcfRc::NotRunning)
        }
        (State::CrashedStandby, _) => Err(OcfError::generic("PostgreSQL is not running and crashed while standby")),
        (State::Broken(why), _) => Err(OcfError::generic(why)),
    }
}
