//! promote: check that this standby is the right one (election, switchover safety, no
//! other primary), then turn it into the primary (pg_ctl promote) and return once it
//! accepts writes.

use std::time::{Duration, Instant};

use super::election;
use super::instance::{self, State};
use super::{history, notify, primary, scores, sync, Config};
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::{ocf_info, ocf_warn};

pub fn promote(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    // The election runs in the pre-promote notification: a clone without notify=true would
    // promote without comparing standbys (PAF refuses to run so, and so do we).
    super::validate::check_clone(env)?;
    // A demote killed by its timeout leaves its mark (the state service would not say
    // primary after this promotion).
    crate::state::demoting::clear(cfg.pgport);
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
    let started = crate::history::now_ms();
    let decision = check_election(&cfg, who, env.clone_max().is_none())?;
    prepare_sync(&cfg, who)?;
    prepare_slots(&cfg, who);
    let asked = Instant::now();
    let last_commit = history::last_commit(&cfg, who);
    let asked = asked.elapsed();
    instance::pg_ctl(&cfg, who, &["promote", "-W"], cfg.timeout / 2)?;
    match instance::wait_for(&cfg, who, until, |s| *s == State::Primary)? {
        State::Primary => {
            ocf_info!("promoted");
            history::at_promote(&cfg, who, decision, started, last_commit, asked);
            scores::forget_written(&cfg);
            scores::bootstrap_done(&cfg);
            scores::set_own(&cfg, scores::PRIMARY);
            if let Ok(me) = scores::local_node(&cfg) {
                primary::after_promote(&cfg, &me);
            }
            Ok(OcfRc::Success)
        }
        other => Err(OcfError::generic(format!("PostgreSQL did not become primary in time ({other:?})"))),
    }
}

/// Before the first commit: the synchronous set this primary starts with (see `sync.rs`).
/// It cannot be skipped: with synchronous_mode on/strict a primary that started
/// asynchronously would acknowledge commits no standby has.
/// With synchronous_mode off only a leftover set is cleaned up, and a failure to do so
/// does not stop the promotion.
fn prepare_sync(cfg: &Config, who: crate::pg::client::Identity) -> Result<(), OcfError> {
    let done = instance::connect(cfg, who, Duration::from_secs(5))
        .map_err(|e| OcfError::generic(format!("cannot set the synchronous set: {}", e.message())))
        .and_then(|local| primary::at_promote(cfg, &local, &scores::local_node(cfg)?));
    match done {
        Err(e) if cfg.sync_mode == sync::Mode::Off => {
            ocf_warn!("cannot check synchronous_standby_names: {}", e.reason);
            Ok(())
        }
        other => other,
    }
}

/// Before the first commit: the other nodes' replication slots (`replication_slots`),
/// created while the instance is still in recovery. Not fatal: the monitor makes up for it.
fn prepare_slots(cfg: &Config, who: crate::pg::client::Identity) {
    if cfg.slot_ttl.is_none() {
        return;
    }
    match (instance::connect(cfg, who, Duration::from_secs(5)), scores::local_node(cfg)) {
        (Ok(local), Ok(me)) => super::slots::at_promote(cfg, &local, &me),
        (Err(e), _) => ocf_warn!("cannot create the standbys' replication slots: {}", e.message()),
        (_, Err(e)) => ocf_warn!("cannot create the standbys' replication slots: {}", e.reason),
    }
}

/// Refuse the promotion if the pre-promote notification found it unsafe, or hand over to
/// a standby that has more WAL. Without its inputs (this node's name, the election's data)
/// the promotion is refused: promoting blind may pick a standby that lacks acknowledged
/// commits, while a refused promote is only retried. `by_hand` (not run as a clone, as
/// `crm_resource --force-promote` does): no notification ran, the operator chose the node.
/// What the decision rested on is returned for the incident record (`history.rs`).
fn check_election(cfg: &Config, who: crate::pg::client::Identity, by_hand: bool) -> Result<history::Decision, OcfError> {
    let me = match scores::local_node(cfg) {
        Ok(me) => me,
        Err(e) if by_hand => {
            ocf_warn!("cannot tell this node's name ({}): promoted by hand, without an election", e.reason);
            return Ok(history::Decision::by_hand());
        }
        Err(e) => return Err(OcfError::generic(format!("cannot tell this node's name ({}): no election, no promotion", e.reason))),
    };
    // The notification's attributes may reach the attribute manager a moment after the
    // notification returned: "nodes" is waited for (a little), the verdict read after it.
    let wait = if by_hand { Instant::now() } else { Instant::now() + (cfg.timeout / 4).min(Duration::from_secs(5)) };
    let nodes = election::read(&election::attr(cfg, "nodes"), &me, wait);
    if let Some(why) = election::read(&election::attr(cfg, "cancel_switchover"), &me, Instant::now()) {
        let _ = election::forget(&election::attr(cfg, "cancel_switchover"));
        return Err(OcfError::generic(why));
    }
    let Some(nodes) = nodes else {
        if by_hand {
            ocf_warn!("no election data (promoted by hand, without a pre-promote notification): promoting without comparing standbys");
            return Ok(history::Decision::by_hand());
        }
        return Err(OcfError::generic("no election data from the pre-promote notification: not promoting without comparing standbys"));
    };
    let mine = match notify::position(cfg, who)? {
        election::Standing::Candidate(p) => p,
        election::Standing::Diverged(p) => {
            return Err(OcfError::generic(format!(
                "this node's WAL ({}/{}) went past the newest timeline's fork: it is no candidate (rewind it)",
                p.timeline, p.lsn
            )))
        }
    };
    let until = Instant::now() + (cfg.timeout / 4).min(Duration::from_secs(5));
    // Synchronous replication: the set the primary recorded says who may hold an
    // acknowledged commit — every member whose position was read is a candidate, and at
    // least m − k + 1 of them must have been read (quorum commit: one of them has it).
    let recorded = if cfg.sync_mode == sync::Mode::Off {
        None
    } else {
        match primary::recorded(cfg) {
            Ok(r) => r,
            Err(e) => return Err(OcfError::generic(format!("cannot read the synchronous set the primary recorded ({}): not promoting", e.reason))),
        }
    };
    let members: Vec<String> = recorded.as_ref().map(|r| r.set.members.clone()).unwrap_or_default();
    let mut candidates = vec![(me.clone(), mine)];
    // Members known to hold nothing of the newest timeline past its fork: compared, no candidates.
    let mut diverged: Vec<String> = Vec::new();
    let mut others: Vec<(String, &'static str, Option<election::Position>)> = Vec::new();
    for node in nodes.split_whitespace().filter(|n| *n != me) {
        // Otherwise only a promotable node (a positive score) may win.
        if cfg.sync_mode != sync::Mode::Off && !members.iter().any(|m| m == node) && scores::get(cfg, node).is_none_or(|s| s <= 0) {
            ocf_info!("{node} is not a promotable member of the synchronous set: left out of the election");
            others.push((node.to_owned(), "left out", None));
            continue;
        }
        match election::read(&election::attr(cfg, "lsn_location"), node, until).and_then(|v| election::Standing::decode(&v)) {
            Some(election::Standing::Candidate(p)) => candidates.push((node.to_owned(), p)),
            Some(election::Standing::Diverged(p)) => {
                ocf_warn!("{node} diverged from the newest timeline ({}/{} past its fork): no candidate", p.timeline, p.lsn);
                diverged.push(node.to_owned());
                others.push((node.to_owned(), "diverged", Some(p)));
            }
            None => {
                ocf_warn!("{node} published no position: left out of the election");
                others.push((node.to_owned(), "absent", None));
            }
        }
    }
    match &recorded {
        Some(r) => {
            let compared: Vec<String> = candidates.iter().map(|(n, _)| n.clone()).chain(diverged.iter().cloned()).collect();
            r.set.enough_compared(&compared).map_err(|why| OcfError::generic(format!("not promoting: {why}")))?;
        }
        None if cfg.sync_mode != sync::Mode::Off => {
            ocf_warn!("no synchronous set recorded by a primary yet (first promotion, or one from an older paceline): comparing the standbys that answered")
        }
        None => {}
    }
    let (best, pos) = election::best(&me, &candidates).cloned().unwrap_or((me.clone(), mine));
    if best != me && pos > mine {
        scores::set(cfg, &best, scores::BEST_STANDBY)?;
        scores::set(cfg, &me, scores::BOOTSTRAP)?;
        return Err(OcfError::generic(format!(
            "{best} has more WAL ({}/{} vs {}/{} here): handing the promotion over",
            pos.timeline, pos.lsn, mine.timeline, mine.lsn
        )));
    }
    ocf_info!("election: this node is the best candidate ({mine:?}) among {}", candidates.len());
    let why = match &recorded {
        Some(r) if !r.set.members.is_empty() => {
            format!("most WAL of {} compared, synchronous set {} (quorum of its members compared)", candidates.len(), r.set.render())
        }
        _ if candidates.len() > 1 => format!("most WAL of {} candidates", candidates.len()),
        _ => "the only candidate".to_owned(),
    };
    Ok(history::Decision::new(&me, mine, &candidates, &others, &members, recorded.as_ref().map(|r| r.set.render()).filter(|s| !s.is_empty()), why))
}
