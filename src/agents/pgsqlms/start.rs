//! start: bring the instance up **as a standby**, and return once it accepts read-only
//! connections. Promotion is Pacemaker's decision alone. When another node is primary,
//! the instance's history must not have diverged from it (see `rewind.rs`): a diverged
//! instance is refused — or rewound, with auto_rewind=true.

use std::time::{Duration, Instant};

use super::instance::{self, State};
use super::{rewind, scores, stop, Config};
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::pg::client::Identity;
use crate::{ocf_info, ocf_warn};

pub fn start(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let who = instance::identity(&cfg)?;
    super::validate::check_installation(&cfg).map_err(|e| OcfError::installed(e.reason))?;
    let until = instance::deadline(&cfg);
    let before = instance::state(&cfg, who, cfg.timeout / 4)?;
    match &before {
        State::Standby => {
            ocf_info!("already running as a standby");
            return Ok(OcfRc::Success);
        }
        State::Primary => return Err(OcfError::generic("PostgreSQL is already running as a primary outside Pacemaker's control: refusing to start it")),
        State::Broken(why) => return Err(OcfError::generic(why.clone())),
        State::CrashedPrimary => ocf_warn!("this instance crashed while primary; starting it as a standby (crash recovery first)"),
        State::CrashedStandby => ocf_info!("this standby crashed; starting it again (crash recovery first)"),
        State::Stopped { .. } => {}
    }
    // Another node is primary: this instance must be able to follow it (rewind.rs).
    // (A base backup never started has nothing of its own: nothing to compare.)
    let fresh_backup = cfg.datadir.join("backup_label").exists();
    if let Some(primary) = (!fresh_backup).then(|| scores::local_node(&cfg).ok().and_then(|me| rewind::other_primary(&cfg, &me))).flatten() {
        if matches!(before, State::CrashedPrimary | State::CrashedStandby) {
            ocf_info!("crash recovery first (as a standby), so that this instance's history can be compared with the primary's on {primary}");
            start_standby(&cfg, who, until)?;
            stop::stop_instance(&cfg, until)?;
        }
        rewind::ensure_follows(&cfg, who, &primary, until)?;
    }
    start_standby(&cfg, who, until)?;
    // A primary that shut down cleanly, in a cluster where nobody is promotable yet (first
    // start): make this node promotable, so the cluster gets a primary.
    if before == (State::Stopped { as_primary: true }) {
        scores::bootstrap(&cfg);
    }
    Ok(OcfRc::Success)
}

/// Start the stopped instance as a standby and wait, until `until`, for it to accept
/// read-only connections. Shared with demote, which knows the instance is down.
pub fn start_standby(cfg: &Config, who: Identity, until: Instant) -> Result<(), OcfError> {
    write_standby_signal(cfg, who)?;
    let log_from = std::fs::metadata(instance::server_log(cfg)).map(|m| m.len()).unwrap_or(0);
    let started = std::time::SystemTime::now();
    instance::pg_ctl(cfg, who, &["start", "-W"], until.saturating_duration_since(Instant::now()))?;
    // A postmaster writes postmaster.pid within milliseconds; none after 2 s: it gave up
    // (a history it cannot follow, a bad setting), and waiting out the timeout says nothing.
    let forked = Instant::now();
    let gave_up = |s: &State| s.is_down() && forked.elapsed() >= Duration::from_secs(2);
    match instance::wait_for(cfg, who, until, |s| matches!(s, State::Standby | State::Primary) || gave_up(s))? {
        State::Standby => {
            ocf_info!("started as a standby");
            Ok(())
        }
        State::Primary => Err(OcfError::generic("PostgreSQL started as a primary despite standby.signal: check the configuration")),
        s if s.is_down() => {
            let (said, log) = instance::server_fatal(cfg, log_from, started).unwrap_or_else(|| ("it logged no FATAL line".into(), instance::server_log(cfg)));
            Err(OcfError::generic(format!("PostgreSQL exited while starting as a standby: {said} (its log: {})", log.display())))
        }
        other => Err(OcfError::generic(format!("PostgreSQL did not become a usable standby in time: {other:?}"))),
    }
}

/// `standby.signal` in the data directory, written as system_user (whose directory it is:
/// a link planted there can lead the write nowhere that account could not write anyway).
fn write_standby_signal(cfg: &Config, who: Identity) -> Result<(), OcfError> {
    let path = cfg.datadir.join("standby.signal");
    crate::pg::identity::write_as(Some(who), &path, b"").map_err(|e| OcfError::generic(format!("cannot write {}: {e}", path.display())))
}
