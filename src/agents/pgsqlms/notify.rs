//! notify: the clone's notifications. Pacemaker ignores their exit code; what matters is
//! what they record for the `promote` that follows (see `election.rs`).

use std::time::{Duration, Instant};

use super::election::{self, Position, Standing};
use super::instance::{self, State};
use super::{history, scores, Config};
use crate::ocf::env::Notify;
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::pacemaker;
use crate::{ocf_debug, ocf_info, ocf_warn};

pub fn notify(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    let n = env.notify();
    ocf_debug!("notify {}-{}", n.kind, n.operation);
    match (n.kind.as_str(), n.operation.as_str()) {
        // A shutdown checkpoint published by an earlier demote of this node must not stand in
        // for the one this demote will publish (the switchover check would pass on stale data).
        ("pre", "demote") if scores::local_node(&cfg).is_ok_and(|me| n.demote_uname.contains(&me)) => {
            let _ = election::forget(&election::attr(&cfg, "shutdown_lsn"));
        }
        ("pre", "promote") => pre_promote(&cfg, &n)?,
        ("post", "promote") => {
            let names: Vec<String> = ["lsn_location", "nodes", "cancel_switchover", "shutdown_lsn"].iter().map(|w| election::attr(&cfg, w)).collect();
            let _ = election::forget_all(&names);
            history::post_promote(&cfg, &n);
        }
        _ => {}
    }
    Ok(OcfRc::Success)
}

/// Where this standby's WAL stands: the newest timeline it knows and the most WAL it has
/// (received or replayed: after a restart nothing is "received" yet).
///
/// The timeline is the hard part: when the primary has just shut down there is no WAL
/// receiver to ask, and pg_control's checkpoint timeline lags until the next restartpoint.
/// So: a CHECKPOINT (a restartpoint on a standby) first, then the greatest of the
/// receiver's timeline, the checkpoint's, and the newest timeline history file in pg_wal
/// (fetched when the standby started following that timeline).
///
/// That newest timeline is a label, not where this node's last record is: an ex-primary
/// that fetched the new timeline's history but whose own last records (its shutdown
/// checkpoint, commits made while cut off) lie on its old timeline past the fork would
/// publish the new timeline's number with a position it does not have. So the timeline of
/// the WAL segment holding its last record is compared with the newest timeline's history
/// ([`election::on_history`]): past the fork, it stands [`Standing::Diverged`].
pub fn position(cfg: &Config, who: crate::pg::client::Identity) -> Result<Standing, OcfError> {
    let local = instance::connect(cfg, who, Duration::from_secs(5)).map_err(|e| OcfError::generic(e.message().to_owned()))?;
    if let Err(e) = local.execute("CHECKPOINT", (cfg.timeout / 4).max(Duration::from_secs(5))) {
        crate::ocf_warn!("restartpoint before publishing the position failed: {}", e.reason);
    }
    let rows = local.query_text(
        "SELECT greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text, \
         greatest((SELECT max(received_tli) FROM pg_stat_wal_receiver), (pg_control_checkpoint()).timeline_id, \
                  (SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}\\.history$'))::text",
        Duration::from_secs(5),
    )?;
    let row = rows.first().ok_or_else(|| OcfError::generic("no position returned"))?;
    let lsn: crate::pg::Lsn = row.first().cloned().flatten().and_then(|v| v.parse().ok()).ok_or_else(|| OcfError::generic("no WAL position"))?;
    let timeline = row.get(1).cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
    let position = Position { timeline, lsn };
    if timeline <= 1 {
        return Ok(Standing::Candidate(position));
    }
    // The timeline of the segment that holds the last record (the byte before `lsn`).
    let seg_size: u64 = local
        .query_one::<String>("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'", Duration::from_secs(5))?
        .trim()
        .parse()
        .map_err(|_| OcfError::generic("wal_segment_size is not a number of bytes"))?;
    let last = lsn.0.saturating_sub(1);
    let suffix = format!("{:08X}{:08X}", last >> 32, (last & 0xFFFF_FFFF) / seg_size.max(1));
    let mine: Option<u32> = local
        .query_text_with(
            "SELECT max(('x' || substr(name, 1, 8))::bit(32)::int)::text FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$' AND substr(name, 9) = $1",
            &[&suffix],
            Duration::from_secs(5),
        )?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok());
    let Some(mine) = mine.filter(|m| *m < timeline) else { return Ok(Standing::Candidate(position)) };
    let history = local
        .query_one_with::<String>("SELECT pg_read_file($1)", &[&format!("pg_wal/{timeline:08X}.history")], Duration::from_secs(5))
        .map_err(|e| e.context("cannot read the newest timeline's history: no position published"))?;
    match election::on_history(mine, lsn, timeline, &history) {
        Ok(true) => Ok(Standing::Candidate(position)),
        Ok(false) => {
            ocf_warn!("this node's last record ({lsn} on timeline {mine}) lies past where timeline {mine} ends in timeline {timeline}'s history: diverged, no candidate");
            Ok(Standing::Diverged(Position { timeline: mine, lsn }))
        }
        Err(why) => Err(OcfError::generic(format!("cannot read timeline {timeline}'s history ({why}): no position published"))),
    }
}

/// Every standby publishes its position; the promotion target also records who takes part
/// and whether a switchover is safe.
fn pre_promote(cfg: &Config, n: &Notify) -> Result<(), OcfError> {
    let who = instance::identity(cfg)?;
    let me = scores::local_node(cfg)?;
    let names: Vec<String> = ["lsn_location", "nodes", "cancel_switchover"].iter().map(|w| election::attr(cfg, w)).collect();
    election::forget_confirmed(&names, &me);
    let st = instance::state(cfg, who, Duration::from_secs(5))?;
    if st != State::Standby {
        return Ok(());
    }
    let standing = position(cfg, who)?;
    election::publish(&election::attr(cfg, "lsn_location"), &me, &standing.encode())?;
    ocf_info!("published my position {standing:?} for the election");
    let mine = match standing {
        Standing::Candidate(p) => p,
        // A diverged node is no candidate: it records nothing more for a promotion of its own.
        Standing::Diverged(_) => return Ok(()),
    };
    if !n.promote_uname.contains(&me) {
        return Ok(());
    }
    let nodes = taking_part(n);
    election::publish(&election::attr(cfg, "nodes"), &me, &nodes)?;

    // Never two primaries: a primary that is not being demoted must not get a twin.
    if let Some(other) = n.promoted_uname.iter().find(|p| **p != me && !n.demote_uname.contains(p)) {
        election::publish(&election::attr(cfg, "cancel_switchover"), &me, &format!("{other} is still primary and is not being demoted"))?;
        return Ok(());
    }
    // Switchover: the demoted primary's shutdown checkpoint must have reached us. A demoted
    // node that Pacemaker knows is down (fenced, or lost) publishes nothing: no waiting for it.
    // What this finds is kept for the incident record (history.rs).
    let mut switchover = None;
    let mut lost = Vec::new();
    for old in n.demote_uname.iter().filter(|d| **d != me) {
        // Published already (the usual switchover): no need to ask the CIB about the node.
        let attr = election::attr(cfg, "shutdown_lsn");
        let mut published = election::read(&attr, old, Instant::now());
        if published.is_none() {
            if node_down(old) {
                ocf_info!("{old} is down (fenced or lost): a failover, no switchover check");
                lost.push(old.clone());
                continue;
            }
            published = election::read(&attr, old, Instant::now() + Duration::from_secs(5));
        }
        let Some(shutdown) = published.and_then(|v| Position::decode(&v)) else {
            ocf_warn!("{old} published no shutdown checkpoint (not a clean demote): no switchover check");
            continue;
        };
        if mine.lsn <= shutdown.lsn {
            let why = format!("switchover canceled: {old}'s shutdown checkpoint at {} was not received here (received up to {})", shutdown.lsn, mine.lsn);
            ocf_warn!("{why}");
            election::publish(&election::attr(cfg, "cancel_switchover"), &me, &why)?;
        } else {
            ocf_info!("switchover check passed: received {} > {old}'s shutdown checkpoint {}", mine.lsn, shutdown.lsn);
            switchover = Some(shutdown);
        }
    }
    history::keep_context(cfg, &me, n, switchover, &lost);
    Ok(())
}

/// The nodes whose instances take part in the election: active and starting, minus those
/// stopping for good. A node whose instance is recovered in the same transition (stopped,
/// then started again: a failed promote or monitor) is in both lists and takes part — left
/// out, a quorum election would lack it and refuse every round, and an asynchronous one
/// could pass over the node with the most WAL.
pub fn taking_part(n: &Notify) -> String {
    let mut nodes: Vec<String> =
        n.active_uname.iter().chain(&n.start_uname).filter(|x| !n.stop_uname.contains(x) || n.start_uname.contains(x)).cloned().collect();
    nodes.sort();
    nodes.dedup();
    nodes.join(" ")
}

/// Whether the CIB records `node` as down: out of the membership or its controller
/// offline — what fencing or a lost node leaves. A node Pacemaker just fenced is down
/// here before Corosync drops it from the membership.
fn node_down(node: &str) -> bool {
    match pacemaker::cib::node_state(node) {
        Ok(st) => st.is_some_and(|st| st.down()),
        Err(e) => {
            ocf_debug!("cannot read {node}'s node_state: {}", e.reason);
            false
        }
    }
}
