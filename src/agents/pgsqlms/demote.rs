//! demote: a clean fast shutdown of the primary, then a start as a standby. The clean
//! shutdown writes a shutdown checkpoint that the standbys receive before the primary's
//! walsenders exit, so the standby promoted next has every acknowledged write. A primary
//! that hangs is shut down by the stop's escalation (`stop.rs`) within this demote's
//! deadline, so that a hung primary costs seconds, not the demote timeout and a fence.
//! An instance that is not running (a primary that crashed) is started as a standby the
//! way start does it, after the same comparison with the primary (`start::follow_and_start`).

use super::election::{self, Position};
use super::instance::{self, State};
use super::{history, start, stop, Config};
use crate::ocf::{OcfEnv, OcfRc, OcfResult};
use crate::ocf_info;
use std::time::Duration;

pub fn demote(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    // First of all: the state service stops saying "primary" (load balancers take this
    // node out of the primary pool while it is still writable), until this returns.
    let _demoting = crate::state::demoting::begin(cfg.pgport);
    let who = instance::identity(&cfg)?;
    // One deadline for the whole demote: the stop and the restart share the op's timeout.
    let until = instance::deadline(&cfg);
    // A local primary answers in milliseconds; one that does not within a second is treated
    // as hung. Misjudging a slow one costs nothing: both get the same shutdown, which tries
    // a clean fast one first and publishes its checkpoint when it was clean.
    let before = instance::state(&cfg, who, (cfg.timeout / 4).min(Duration::from_secs(1)))?;
    match &before {
        State::Standby => {
            ocf_info!("already a standby");
            return Ok(OcfRc::Success);
        }
        // A clean shutdown publishes its checkpoint for the switchover check; a primary
        // that had to be killed has none, and the next promotion goes by the election.
        // Hung or not answering: the same escalation, bounded by this demote's deadline.
        st @ (State::Primary | State::Broken(_)) => {
            if let State::Broken(why) = &st {
                ocf_info!("demoting an instance that does not answer ({why})");
                history::note_pending(&cfg, "demote", format!("instance does not answer ({why})"));
            } else {
                history::note_pending(&cfg, "demote", "primary answering");
                tell_load_balancers(&cfg);
            }
            let shutdown_at = crate::history::now_ms();
            let clean = stop::stop_instance(&cfg, until)? == stop::Shutdown::Clean;
            let checkpoint = if clean { publish_shutdown_checkpoint(&cfg) } else { None };
            let detail = match checkpoint {
                Some(p) => format!("clean, checkpoint {} on timeline {}", p.lsn, p.timeline),
                None if clean => "clean".to_owned(),
                None => "not clean (killed)".to_owned(),
            };
            // The shutdown step, at the moment it began (writes are refused from then on).
            history::note_pending_at(&cfg, shutdown_at, "shutdown", detail);
            // The incident record's pending steps go out beside the standby's start.
            let published = history::publish_in_background(&cfg);
            // No longer the one who ranks: what this node wrote as primary is not to be trusted.
            super::scores::forget_written(&cfg);
            let started = start::start_standby(&cfg, who, until);
            let _ = published.join();
            started?;
            history::note_pending(&cfg, "restarted", "as a standby");
        }
        // Not running (crashed while primary, typically: Pacemaker demotes what its probe
        // found failed in the promoted role): another node may be primary by now, and the
        // crash recovery would replay WAL it never received. The start's path: compared
        // with that primary first, rewound or refused (start.rs).
        State::Stopped { .. } | State::CrashedPrimary | State::CrashedStandby => {
            let found = crate::history::now_ms();
            super::scores::forget_written(&cfg);
            // Another node is primary already: this is the old primary's return, which the
            // start's comparison records. Otherwise its crash is a step of the change to come.
            if !start::follow_and_start(&cfg, who, &before, until)? && before == State::CrashedPrimary {
                history::note_crash(&cfg, found);
                history::note_pending(&cfg, "restarted", "as a standby (crash recovery)");
                // Another node may be promoted next: its record takes these steps from here.
                let _ = history::publish_in_background(&cfg).join();
            }
        }
    }
    Ok(OcfRc::Success)
}

/// A writable primary is about to go: wait, a bounded moment, until the load balancers
/// that ask the state service have heard it is no longer primary (no service: no wait),
/// so that none sends a new session to the standby this demote restarts it as.
fn tell_load_balancers(cfg: &Config) {
    let limit = (cfg.timeout / 8).min(Duration::from_secs(1));
    match crate::state::demoting::wait_told(cfg.pgport, limit) {
        Some(d) if d.is_zero() => {}
        Some(d) => ocf_info!("the load balancers heard this node is no longer primary ({} ms)", d.as_millis()),
        None => crate::ocf_warn!("not every load balancer checked the state service within {} ms; demoting anyway", limit.as_millis()),
    }
}

/// After a clean shutdown, pg_control's latest checkpoint is the shutdown checkpoint: the
/// standby promoted next must have received it (checked in its pre-promote notification).
/// Returns it (for the incident record).
fn publish_shutdown_checkpoint(cfg: &Config) -> Option<Position> {
    match crate::pg::ControlData::read(&cfg.bindir, &cfg.datadir, std::time::Duration::from_secs(5)) {
        Ok(cd) if cd.state == crate::pg::ClusterState::ShutDown => {
            let p = Position { timeline: cd.timeline, lsn: cd.checkpoint };
            let published = super::scores::local_node(cfg).and_then(|me| election::publish(&election::attr(cfg, "shutdown_lsn"), &me, &p.encode()));
            match published {
                Ok(()) => ocf_info!("shutdown checkpoint at {} (timeline {}) published for the switchover check", cd.checkpoint, cd.timeline),
                Err(e) => crate::ocf_warn!("cannot publish the shutdown checkpoint: {}", e.reason),
            }
            Some(p)
        }
        Ok(cd) => {
            crate::ocf_warn!("after demote pg_control says {:?}, not a clean shutdown", cd.state);
            None
        }
        Err(e) => {
            crate::ocf_warn!("cannot read pg_control after demote: {}", e.reason);
            None
        }
    }
}
