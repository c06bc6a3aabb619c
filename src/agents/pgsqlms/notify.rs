//! notify: the clone's notifications. Pacemaker ignores their exit code; what matters is
//! what they record for the `promote` that follows (see `election.rs`).

use std::time::{Duration, Instant};

use super::election::{self, Position};
use super::instance::{self, State};
use super::{scores, Config};
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
            election::forget(&election::attr(&cfg, "shutdown_lsn"));
        }
        ("pre", "promote") => pre_promote(&cfg, &n)?,
        ("post", "promote") => {
            let names: Vec<String> = ["lsn_location", "nodes", "cancel_switchover", "shutdown_lsn"].iter().map(|w| election::attr(&cfg, w)).collect();
            election::forget_all(&names);
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
pub fn position(cfg: &Config, who: crate::pg::client::Identity) -> Result<Position, OcfError> {
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
    let lsn = row.first().cloned().flatten().and_then(|v| v.parse().ok()).ok_or_else(|| OcfError::generic("no WAL position"))?;
    let timeline = row.get(1).cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Position { timeline, lsn })
}

/// Every standby publishes its position; the promotion target also records who takes part
/// and whether a switchover is safe.
fn pre_promote(cfg: &Config, n: &Notify) -> Result<(), OcfError> {
    let who = instance::identity(cfg)?;
    let me = scores::local_node(cfg)?;
    let names: Vec<String> = ["lsn_location", "nodes", "cancel_switchover"].iter().map(|w| election::attr(cfg, w)).collect();
    election::forget_confirmed(&names, &me)?;
    let st = instance::state(cfg, who, Duration::from_secs(5))?;
    if st != State::Standby {
        return Ok(());
    }
    let mine = position(cfg, who)?;
    election::publish(&election::attr(cfg, "lsn_location"), &me, &mine.encode())?;
    ocf_info!("published my position {mine:?} for the election");
    if !n.promote_uname.contains(&me) {
        return Ok(());
    }
    // The nodes whose instances take part: active and starting, minus stopping.
    let mut nodes: Vec<String> = n.active_uname.iter().chain(&n.start_uname).filter(|x| !n.stop_uname.contains(x)).cloned().collect();
    nodes.sort();
    nodes.dedup();
    election::publish(&election::attr(cfg, "nodes"), &me, &nodes.join(" "))?;

    // Never two primaries: a primary that is not being demoted must not get a twin.
    if let Some(other) = n.promoted_uname.iter().find(|p| **p != me && !n.demote_uname.contains(p)) {
        election::publish(&election::attr(cfg, "cancel_switchover"), &me, &format!("{other} is still primary and is not being demoted"))?;
        return Ok(());
    }
    // Switchover: the demoted primary's shutdown checkpoint must have reached us. A demoted
    // node that Pacemaker knows is down (fenced, or lost) publishes nothing: no waiting for it.
    for old in n.demote_uname.iter().filter(|d| **d != me) {
        // Published already (the usual switchover): no need to ask the CIB about the node.
        let attr = election::attr(cfg, "shutdown_lsn");
        let mut published = election::read(&attr, old, Instant::now());
        if published.is_none() {
            if node_down(old) {
                ocf_info!("{old} is down (fenced or lost): a failover, no switchover check");
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
        }
    }
    Ok(())
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
