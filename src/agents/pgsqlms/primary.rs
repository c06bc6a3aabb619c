//! The primary's monitor, carried out: rank the standbys ([`scores::rank`]) and, with
//! `synchronous_mode` on/strict, keep the synchronous set ([`sync::step`]) — reading
//! `pg_stat_replication`, writing scores through Pacemaker and the setting through
//! ALTER SYSTEM, in the order the invariants of `sync.rs` need. Also the synchronous set's
//! part of promote (its first set) and of reload-agent (releasing a set when the mode is
//! turned off).
//!
//! Why a module of its own: `scores.rs` (what a score is, how it is stored) and `sync.rs`
//! (the policy, pure) are used from here and never from each other's I/O, so neither
//! needs the other — the order of writes, which is where safety lives, is read in one
//! place.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::scores::{self, apply, local_node, rank, Replica};
use super::sync::{step, Mode, Seen, SyncSet};
use super::Config;
use crate::ocf::OcfError;
use crate::pacemaker;
use crate::pg::client::{quote_literal, Local};
use crate::pg::Lsn;
use crate::{ocf_debug, ocf_info, ocf_warn};

/// On the primary's monitor: rank the standbys and publish the scores.
///
/// The nodes ranked are those replicating now plus those we scored before: a node that
/// stops replicating drops to −1000, a node never seen has no score (so is not promotable
/// either). See [`nodes_to_rank`] for when `crm_node --partition` is asked.
pub fn update_from_primary(cfg: &Config, local: &Local) -> Result<(), OcfError> {
    let me = local_node(cfg)?;
    let known: Vec<String> = scores::read_cache(cfg).into_keys().collect();
    let (replicas, current) = replication(local, &me)?;
    let streaming: Vec<String> = replicas.iter().map(|r| r.name.clone()).collect();
    if let Err(e) = super::slots::on_primary(cfg, local, &me, &streaming) {
        ocf_warn!("cannot keep the replication slots: {}", e.reason);
    }
    let nodes = nodes_to_rank(known, &replicas, pacemaker::nodes::partition)?;
    if cfg.sync_mode != Mode::Off {
        return manage(cfg, local, &me, &nodes, &replicas, current);
    }
    let wanted = rank(&me, &nodes, &replicas, current, cfg.maxlag, None);
    ocf_debug!("scores: {wanted:?}");
    apply(cfg, &wanted).map(|_| ())
}

/// `pg_stat_replication` as the primary sees it (without itself), and its WAL position.
fn replication(local: &Local, me: &str) -> Result<(Vec<Replica>, Lsn), OcfError> {
    let rows = local.query_text(
        "SELECT application_name, state, sync_state, flush_lsn::text, pg_current_wal_lsn()::text FROM pg_stat_replication \
         UNION ALL SELECT NULL, NULL, NULL, NULL, pg_current_wal_lsn()::text",
        Duration::from_secs(5),
    )?;
    let mut current = Lsn::default();
    let mut replicas = Vec::new();
    for r in rows {
        let col = |i: usize| r.get(i).cloned().flatten();
        if let Some(c) = col(4).and_then(|v| v.parse().ok()) {
            current = c;
        }
        let Some(name) = col(0) else { continue };
        if name == me {
            ocf_warn!("streaming replication with myself: check pg_hba.conf rejects replication from this node and the VIP");
            continue;
        }
        replicas.push(Replica {
            name,
            state: col(1).unwrap_or_default(),
            sync: matches!(col(2).as_deref(), Some("sync") | Some("quorum")),
            flushed: col(3).and_then(|v| v.parse().ok()),
        });
    }
    Ok((replicas, current))
}

/// The nodes the primary ranks: those it scored before, plus — asked from the partition
/// (`crm_node --partition`, the only fork) — every member when it has no memory yet or
/// when a replica it has never scored appears. Without the second case, a primary whose
/// memory held only itself (promoted right after a start) would never rank a standby that
/// connected later, and a standby whose self-score was lost (a `pcs` command replacing
/// the configuration with a copy read before that score was written) would stay
/// unpromotable for good. A replica whose application_name is no cluster node (a backup
/// tool) costs that fork on each monitor and is not ranked.
pub fn nodes_to_rank(known: Vec<String>, replicas: &[Replica], partition: impl FnOnce() -> Result<Vec<String>, OcfError>) -> Result<Vec<String>, OcfError> {
    if !known.is_empty() && replicas.iter().all(|r| known.contains(&r.name)) {
        return Ok(known);
    }
    let mut nodes = known;
    for n in partition()? {
        if !nodes.contains(&n) {
            nodes.push(n);
        }
    }
    Ok(nodes)
}

/// How long the primary waits between writing a leaving member's score and asking
/// whether its partition is quorate (see [`manage`]).
pub const QUORUM_SETTLE: Duration = Duration::from_millis(500);

/// Bound on each statement the agent runs to read or change the setting.
const SQL_TIMEOUT: Duration = Duration::from_secs(5);

/// The set in force on the instance (`current_setting`), or why the agent will not take
/// it over (a value it did not write).
pub fn current(local: &Local) -> Result<SyncSet, OcfError> {
    let v = shown(local)?;
    SyncSet::parse(&v)
        .map_err(|why| OcfError::configured(format!("{why}: it was set by hand, but synchronous_mode manages it; remove it from the configuration files")))
}

/// `synchronous_standby_names` as the instance has it now.
fn shown(local: &Local) -> Result<String, OcfError> {
    local.query_one("SELECT current_setting('synchronous_standby_names')", SQL_TIMEOUT)
}

/// Write `set` with ALTER SYSTEM and reload (works on a standby too, taking effect when
/// it is promoted). ALTER SYSTEM takes no bind parameter: the value goes in as the one
/// literal [`quote_literal`] writes.
pub fn write(local: &Local, set: &SyncSet) -> Result<(), OcfError> {
    let value = quote_literal(&set.render())?;
    local.execute(&format!("ALTER SYSTEM SET synchronous_standby_names = {value}"), SQL_TIMEOUT)?;
    local.query_one::<bool>("SELECT pg_reload_conf()", SQL_TIMEOUT)?;
    ocf_info!("synchronous_standby_names = '{}'", set.render());
    Ok(())
}

/// Where the join LSNs are kept between monitors (beside the scores' memory).
fn joined_path(cfg: &Config) -> PathBuf {
    scores::cache_dir().join(format!("paceline-pgsqlms-{}.sync", cfg.resource))
}

/// How long after a promotion members that have not connected yet stay named: standbys
/// reconnect within a few seconds (the demoted primary restarts as a standby first).
pub const PROMOTE_GRACE: Duration = Duration::from_secs(10);

/// What the primary remembers between monitors: the join LSNs, and when it was promoted
/// (`promoted <unix seconds>`, written by promote).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Memory {
    promoted: Option<u64>,
    joined: BTreeMap<String, Lsn>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Memory {
    fn read(cfg: &Config) -> Memory {
        let mut m = Memory::default();
        for l in std::fs::read_to_string(joined_path(cfg)).unwrap_or_default().lines() {
            let Some((k, v)) = l.split_once(' ') else { continue };
            match (k, v.trim()) {
                ("promoted", t) => m.promoted = t.parse().ok(),
                (n, lsn) => {
                    if let Ok(lsn) = lsn.parse() {
                        m.joined.insert(n.to_owned(), lsn);
                    }
                }
            }
        }
        m
    }

    fn in_grace(&self) -> bool {
        self.promoted.is_some_and(|t| unix_now().saturating_sub(t) < PROMOTE_GRACE.as_secs())
    }

    /// Written only when it changed (the steady state writes nothing).
    fn write(&self, cfg: &Config) {
        let mut text = self.promoted.map(|t| format!("promoted {t}\n")).unwrap_or_default();
        text.extend(self.joined.iter().map(|(n, l)| format!("{n} {l}\n")));
        crate::files::keep_changed(&joined_path(cfg), &text);
    }
}

/// The node attribute in which the primary records its synchronous set for the election
/// (`sync_set-<resource>`, on the primary's node, in the CIB: it outlives the primary).
pub fn recorded_attr(cfg: &Config) -> String {
    super::election::attr(cfg, "sync_set")
}

/// Record `set` for the election (see [`super::sync::Recorded`]).
fn record(cfg: &Config, me: &str, set: &SyncSet) -> Result<(), OcfError> {
    let r = super::sync::Recorded { at: unix_now(), set: set.clone() };
    pacemaker::attrs::set_permanent(&recorded_attr(cfg), me, &r.encode())
}

/// The newest synchronous set any primary recorded, if one did.
pub fn recorded(cfg: &Config) -> Result<Option<super::sync::Recorded>, OcfError> {
    let all = pacemaker::cib::node_attribute(&recorded_attr(cfg))?;
    Ok(all.values().filter_map(|v| super::sync::Recorded::decode(v)).max_by_key(|r| r.at))
}

/// Change the set from `current` to `next`: first record a set covering both (a promotion
/// meanwhile compares as many members as either needs), then the setting, then `next`
/// alone. Not recorded, not changed: the set in force stays (commits wait, none is lost).
fn change_set(cfg: &Config, local: &Local, me: &str, current: &SyncSet, next: &SyncSet) -> Result<(), OcfError> {
    record(cfg, me, &current.covering(next)).map_err(|e| e.context("cannot record the synchronous set for the election: left as it is"))?;
    write(local, next)?;
    if let Err(e) = record(cfg, me, next) {
        ocf_warn!("cannot record the new synchronous set (the covering one stands, which asks more): {}", e.reason);
    }
    Ok(())
}

/// What [`super::sync::may_leave`] decides on, read after the scores that drop were
/// written: a score write that went through a membership change returns when the new
/// (maybe isolated) membership has formed, so the controller is given the moment it may lag
/// behind that before it is asked about quorum; the nodes and fencing come from crm_mon.
/// A node counts as online only if the controller's own membership (`crm_node
/// --partition`, Corosync's view, no DC needed) also has it: crm_mon reads the node states
/// the DC writes, and a partition that is still electing its DC shows a lost node online
/// — which would let the set drop a member cut off with a promotable score; such a node
/// counts as lost and unconfirmed.
fn membership() -> Result<super::sync::Membership, OcfError> {
    std::thread::sleep(QUORUM_SETTLE);
    let quorate = pacemaker::nodes::quorate(SQL_TIMEOUT)?;
    if !quorate {
        return Ok(super::sync::Membership { quorate, fencing: false, nodes: Vec::new() });
    }
    let c = pacemaker::mon::query()?;
    let partition = pacemaker::nodes::partition()?;
    let nodes = c
        .nodes
        .iter()
        .filter(|n| !n.remote)
        .map(|n| {
            let member = partition.contains(&n.name);
            // Online in the DC's last word but gone from the membership: lost, and not
            // known to be down (nothing fenced it yet).
            super::sync::Member { name: n.name.clone(), online: n.online && member, unclean: n.unclean || (n.online && !member) }
        })
        .collect();
    Ok(super::sync::Membership { quorate, fencing: c.stonith_enabled, nodes })
}

/// At promote: name every other node of the partition, so that no commit is acknowledged
/// before `k` of them have it; nobody is promotable until the monitor has seen them join.
/// With synchronous_mode off, a set this agent wrote earlier is removed.
pub fn at_promote(cfg: &Config, local: &Local, me: &str) -> Result<(), OcfError> {
    let _ = std::fs::remove_file(joined_path(cfg));
    if cfg.sync_mode == Mode::Off {
        return release(local);
    }
    Memory { promoted: Some(unix_now()), joined: BTreeMap::new() }.write(cfg);
    let others: Vec<String> = pacemaker::nodes::partition()?.into_iter().filter(|n| n != me).collect();
    let set = SyncSet::new(cfg.sync_count, others);
    if set.is_empty() && cfg.sync_mode == Mode::On {
        ocf_warn!("no other node in the partition: this primary starts asynchronously (synchronous_mode=on)");
    }
    if set.is_empty() && cfg.sync_mode == Mode::Strict {
        // Nobody to name: keep what is there (writes wait for it), never go asynchronous.
        ocf_warn!("no other node in the partition: synchronous_mode=strict keeps the set as it is");
        return Ok(());
    }
    change_set(cfg, local, me, &SyncSet::default(), &set)
}

/// With synchronous_mode off: remove a synchronous set this agent wrote (one it renders
/// itself), so that turning the mode off makes commits asynchronous again; anything else
/// in synchronous_standby_names is the operator's and stays.
pub fn release(local: &Local) -> Result<(), OcfError> {
    let shown = shown(local)?;
    if SyncSet::parse(&shown).is_ok_and(|s| !s.is_empty() && s.render() == shown.trim()) {
        ocf_info!("synchronous_mode=off: removing the synchronous set an earlier synchronous_mode wrote");
        write(local, &SyncSet::default())?;
    }
    Ok(())
}

/// The others' scores right after a promotion: not promotable until the new primary has
/// seen them join its set.
pub fn after_promote(cfg: &Config, me: &str) {
    if cfg.sync_mode == Mode::Off {
        return;
    }
    let others: BTreeMap<String, i64> = match pacemaker::nodes::partition() {
        Ok(p) => p.into_iter().filter(|n| n != me).map(|n| (n, scores::NOT_SYNCHRONOUS)).collect(),
        Err(e) => return ocf_warn!("cannot list the partition to reset the standbys' scores: {}", e.reason),
    };
    if let Err(e) = scores::apply(cfg, &others) {
        ocf_warn!("cannot reset the standbys' scores: {}", e.reason);
    }
}

/// The primary's monitor with synchronous_mode on/strict: decide ([`step`]) and carry it
/// out in invariant 2's order — scores that drop first, then (for a shrinking set, only
/// if the partition is quorate after those writes) the setting, then the scores that rise.
pub fn manage(cfg: &Config, local: &Local, me: &str, nodes: &[String], replicas: &[Replica], now: Lsn) -> Result<(), OcfError> {
    let current = current(local)?;
    let seen: Vec<Seen> = replicas
        .iter()
        .filter(|r| nodes.contains(&r.name))
        .map(|r| Seen { name: r.name.clone(), streaming: r.state == "streaming", counted: r.sync, flushed: r.flushed })
        .collect();
    let memory = Memory::read(cfg);
    let st = step(cfg.sync_mode, cfg.sync_count, &current, &seen, now, &memory.joined, memory.in_grace());
    let remember = Memory { promoted: memory.promoted.filter(|_| memory.in_grace()), joined: st.joined.clone() };
    let wanted = scores::rank(me, nodes, replicas, now, cfg.maxlag, Some(&st.promotable));
    ocf_debug!("synchronous set {:?} -> {:?}, scores {wanted:?}", current, st.next);
    let (rising, dropping): (BTreeMap<String, i64>, BTreeMap<String, i64>) = wanted.into_iter().partition(|(n, s)| *s > 0 || n == me);

    // 1. Not promotable, recorded in the CIB before anything else.
    let unscored = scores::apply(cfg, &dropping)?;
    for m in unscored.iter().filter(|m| st.kept_waiting.contains(m)) {
        ocf_warn!("synchronous_mode=strict: {m} is gone and no other standby can replace it; commits wait until a standby is back");
    }
    // 2. The set.
    if st.next != current {
        if !st.leaving.is_empty() {
            if let Err(why) = super::sync::may_leave(&membership()?, &st.leaving) {
                ocf_warn!("{} left replication but {}: the synchronous set stays as it is (commits wait)", st.leaving.join(", "), why);
                remember.write(cfg);
                return Ok(());
            }
        }
        change_set(cfg, local, me, &current, &st.next)?;
        if st.next.is_empty() {
            ocf_warn!("no synchronous standby left ({} gone): writes go on asynchronously (synchronous_mode=on) and no standby is promotable until one is back and caught up", st.leaving.join(", "));
        } else if current.is_empty() {
            ocf_info!("synchronous replication again: {}", st.next.render());
        }
    }
    // 3. Promotable members.
    scores::apply(cfg, &rising)?;
    remember.write(cfg);
    Ok(())
}
