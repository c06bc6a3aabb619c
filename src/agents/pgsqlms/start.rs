//! start: bring the instance up **as a standby**, and return once it accepts read-only
//! connections. Promotion is Pacemaker's decision alone. When another node is primary,
//! the instance's history must not have diverged from it (see `rewind.rs`): a diverged
//! instance is refused — or rewound, with auto_rewind=true, or when its WAL past the fork
//! holds no transaction. Demote starts a stopped or crashed instance through the same path.

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
    follow_and_start(&cfg, who, &before, until)?;
    // A primary that shut down cleanly, in a cluster where nobody is promotable yet (first
    // start): make this node promotable, so the cluster gets a primary.
    if before == (State::Stopped { as_primary: true }) {
        scores::bootstrap(&cfg);
    }
    Ok(OcfRc::Success)
}

/// Start the stopped (or crashed) instance as a standby that can follow the primary.
/// Shared with demote, which must not start a crashed primary as a standby with less care
/// than start does.
///
/// Another node is primary: this instance must be able to follow it (rewind.rs); a crashed
/// one first goes through crash recovery as a standby, so that pg_rewind can compare it.
/// (A base backup never started has nothing of its own: nothing to compare.)
///
/// The cluster's view of the primary comes from this node's CIB, which a node that has just
/// rejoined may not have received yet. When no primary showed there, PostgreSQL is the
/// last judge: a start it refuses because its history cannot follow the timeline it found
/// ("requested timeline N does not contain minimum recovery point …", "… is not a child of
/// this server's history") gets the same comparison with the primary its `primary_conninfo`
/// names, and the same rewind or refusal, instead of a failed start that bans the node.
///
/// Returns whether another node was primary (this instance was compared with it).
pub fn follow_and_start(cfg: &Config, who: Identity, before: &State, until: Instant) -> Result<bool, OcfError> {
    let fresh_backup = cfg.datadir.join("backup_label").exists();
    let primary_in_view = || scores::local_node(cfg).ok().and_then(|me| rewind::other_primary(cfg, &me));
    let primary = if fresh_backup { None } else { primary_in_view() };
    // An old primary coming back: how it does is a step of the incident record (history.rs).
    let was_primary = matches!(before, State::CrashedPrimary | State::Stopped { as_primary: true });
    // How far its WAL reached (a lower bound after a crash: the end of what crash recovery
    // replayed), read before a rewind replaces it.
    let end = || crate::pg::ControlData::read(&cfg.bindir, &cfg.datadir, Duration::from_secs(5)).ok().map(|cd| cd.checkpoint.max(cd.min_recovery_end));
    let mut reached = None;
    let returned = |followed: &Result<rewind::Followed, OcfError>, reached: Option<crate::pg::Lsn>| {
        if was_primary {
            super::history::note_return(cfg, followed, reached);
        }
    };
    let mut followed = None;
    if let Some(primary) = &primary {
        if matches!(before, State::CrashedPrimary | State::CrashedStandby) {
            ocf_info!("crash recovery first (as a standby), so that this instance's history can be compared with the primary's on {primary}");
            start_standby(cfg, who, until)?;
            stop::stop_instance(cfg, until)?;
        }
        if was_primary {
            reached = end();
        }
        let f = rewind::ensure_follows(cfg, who, primary, until);
        if f.is_err() {
            returned(&f, reached);
        }
        followed = Some(f?);
    }
    let started = match start_standby(cfg, who, until) {
        Err(e) if primary.is_none() && !fresh_backup && cannot_follow(&e.reason) => {
            ocf_warn!("{}: comparing this instance's history with the primary its primary_conninfo names", e.reason);
            // Asked again: the CIB may have caught up meanwhile, and the reason can name it.
            let primary = primary_in_view();
            if was_primary {
                reached = end();
            }
            let f = rewind::ensure_follows(cfg, who, primary.as_deref().unwrap_or("the node its primary_conninfo names"), until);
            if f.is_err() {
                returned(&f, reached);
            }
            followed = Some(f?);
            start_standby(cfg, who, until)
        }
        done => done,
    };
    if started.is_ok() {
        if let Some(f) = &followed {
            returned(&Ok(f.clone()), reached);
        }
    }
    started.map(|_| followed.is_some())
}

/// PostgreSQL's refusals of a history that cannot follow the timeline it was asked to.
fn cannot_follow(fatal: &str) -> bool {
    fatal.contains("requested timeline")
        && (fatal.contains("does not contain minimum recovery point") || fatal.contains("is not a child of this server's history"))
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
