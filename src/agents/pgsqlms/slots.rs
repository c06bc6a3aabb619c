//! Physical replication slots, one per standby (`replication_slots=true`; issue #23.1).
//!
//! Why: without a slot, a standby down longer than `wal_keep_size` covers finds the WAL it
//! needs recycled and never rejoins on its own. A slot named after the standby's node makes
//! the primary keep that WAL. What the agent keeps true:
//!
//! * **Named after the node** ([`slot_name`]: `paceline_` and the node's name in the
//!   characters a slot name allows). The agent creates, uses and drops only slots with that
//!   prefix: the operator's own slots are never touched.
//! * **On the primary before a standby needs it.** A promotion creates one for every other
//!   node of the partition on the instance *before* `pg_ctl promote` (physical slots can be
//!   created in recovery), so that no commit of the new primary precedes them. The
//!   primary's monitor creates one for every standby it sees in `pg_stat_replication` (no
//!   fork), and, at most every [`ASK_EVERY`], for every node of the partition (one
//!   `crm_node --partition`): a node that joins later, or whose slot was dropped, gets one.
//! * **Used by each standby**: its monitor sets `primary_slot_name` to its own slot (ALTER
//!   SYSTEM and a reload, which restarts the walreceiver; PostgreSQL 13+). A standby
//!   that connects before its slot exists streams without one until the primary's next
//!   monitor creates it.
//! * **Bounded**: a slot inactive for `slot_ttl` seconds is dropped — and created anew
//!   (reserving WAL from now) if its node is still in the partition, so that its standby
//!   can still connect when it comes back: what any absent standby costs is at most
//!   `slot_ttl` of WAL, and `max_slot_wal_keep_size` (PostgreSQL's own bound) still
//!   applies. A node gone from the cluster loses its slot after `slot_ttl`. TTL drops are
//!   decided only on a monitor that asked the partition.
//! * **None left on a standby**: an ex-primary keeps its slots across a demotion, where
//!   nothing advances them and they would hold the standby's WAL forever; a standby's
//!   monitor drops the inactive slots of this agent on it.
//! * **Off means off**: with `replication_slots` turned off, a standby's reload removes the
//!   `primary_slot_name` the agent wrote and the primary's monitor drops this agent's slots
//!   once unused.
//!
//! The policy ([`plan`]) is pure; this module's I/O reads `pg_replication_slots` once per
//! monitor and writes only on a change.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::Config;
use crate::ocf::OcfError;
use crate::pg::client::{quote_literal, Local};
use crate::{ocf_debug, ocf_info, ocf_warn};

/// The prefix of every slot this agent manages.
pub const PREFIX: &str = "paceline_";
/// How often the primary's monitor asks the partition for nodes without a slot.
pub const ASK_EVERY: Duration = Duration::from_secs(60);
const SQL_TIMEOUT: Duration = Duration::from_secs(5);

/// The slot of `node`: [`PREFIX`], then the node's name lowercased with every character
/// a slot name does not allow (only `a-z`, `0-9`, `_`) written `_`, within PostgreSQL's
/// 63 bytes.
pub fn slot_name(node: &str) -> String {
    let mut s: String = PREFIX.to_owned();
    s.extend(node.chars().map(|c| c.to_ascii_lowercase()).map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' { c } else { '_' }));
    s.truncate(63);
    s
}

/// One physical slot as `pg_replication_slots` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub active: bool,
}

/// What one monitor does with the slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Slots to drop (inactive, this agent's), with why.
    pub drop: Vec<(String, String)>,
    /// Slots to create (after the drops: a dropped slot of a present node comes back).
    pub create: Vec<String>,
    /// When each inactive slot of ours was first seen inactive (the memory to keep).
    pub inactive_since: BTreeMap<String, u64>,
}

/// The primary's decision. `me`: this node; `replicas`: the application names streaming
/// now; `partition`: the partition's nodes when asked on this monitor (TTL drops wait for
/// it); `slots`: the physical slots there are; `inactive_since`: the memory of earlier
/// monitors; `now` and `ttl` in seconds.
pub fn plan(me: &str, replicas: &[String], partition: Option<&[String]>, slots: &[Slot], inactive_since: &BTreeMap<String, u64>, now: u64, ttl: u64) -> Plan {
    let mine = slot_name(me);
    let wanted: Vec<String> = {
        let mut w: Vec<String> = replicas.iter().chain(partition.unwrap_or_default()).map(|n| slot_name(n)).filter(|s| *s != mine).collect();
        w.sort();
        w.dedup();
        w
    };
    let ours = slots.iter().filter(|s| s.name.starts_with(PREFIX));
    let mut p = Plan::default();
    for s in ours {
        if s.active {
            continue;
        }
        let since = inactive_since.get(&s.name).copied().unwrap_or(now);
        if s.name == mine {
            p.drop.push((s.name.clone(), "this node's own slot, on its primary".into()));
        } else if partition.is_some() && now.saturating_sub(since) >= ttl {
            let why = if wanted.contains(&s.name) { "renewed: inactive" } else { "its node is gone: inactive" };
            p.drop.push((s.name.clone(), format!("{why} for {} s (slot_ttl {ttl} s)", now.saturating_sub(since))));
        } else {
            p.inactive_since.insert(s.name.clone(), since);
        }
    }
    let kept = |n: &String| slots.iter().any(|s| &s.name == n) && !p.drop.iter().any(|(d, _)| d == n);
    p.create = wanted.into_iter().filter(|w| !kept(w)).collect();
    p
}

/// Where the primary remembers when its slots went inactive and when it last asked the
/// partition (beside the scores' memory).
fn memory_path(cfg: &Config) -> PathBuf {
    super::scores::cache_dir().join(format!("paceline-pgsqlms-{}.slots", cfg.resource))
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Memory {
    asked: Option<u64>,
    inactive_since: BTreeMap<String, u64>,
}

impl Memory {
    fn read(cfg: &Config) -> Memory {
        let mut m = Memory::default();
        for l in std::fs::read_to_string(memory_path(cfg)).unwrap_or_default().lines() {
            let Some((k, v)) = l.split_once(' ') else { continue };
            let Ok(t) = v.trim().parse() else { continue };
            if k == "asked" {
                m.asked = Some(t);
            } else {
                m.inactive_since.insert(k.to_owned(), t);
            }
        }
        m
    }

    fn write(&self, cfg: &Config) {
        let mut text = self.asked.map(|t| format!("asked {t}\n")).unwrap_or_default();
        text.extend(self.inactive_since.iter().map(|(n, t)| format!("{n} {t}\n")));
        crate::files::keep_changed(&memory_path(cfg), &text);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The physical slots of the instance.
fn physical(local: &Local) -> Result<Vec<Slot>, OcfError> {
    let rows = local.query_text("SELECT slot_name::text, active::text FROM pg_replication_slots WHERE slot_type = 'physical'", SQL_TIMEOUT)?;
    Ok(rows.into_iter().filter_map(|r| Some(Slot { name: r.first()?.clone()?, active: r.get(1).cloned().flatten().as_deref() == Some("true") })).collect())
}

fn create(local: &Local, name: &str, why: &str) {
    // An existing slot (created meanwhile, or the operator's of that name) is no failure.
    let sql =
        "SELECT pg_create_physical_replication_slot($1, true) FROM (SELECT 1) x WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)";
    match local.execute_with(sql, &[&name], SQL_TIMEOUT) {
        Ok(_) => ocf_info!("replication slot {name} created ({why})"),
        Err(e) => ocf_warn!("cannot create replication slot {name}: {}", e.reason),
    }
}

fn drop_slot(local: &Local, name: &str, why: &str) -> bool {
    // Only while inactive: a standby that connected meanwhile keeps it.
    let sql = "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active";
    match local.execute_with(sql, &[&name], SQL_TIMEOUT) {
        Ok(n) => {
            if n > 0 {
                ocf_info!("replication slot {name} dropped ({why})");
            }
            n > 0
        }
        Err(e) => {
            ocf_warn!("cannot drop replication slot {name}: {}", e.reason);
            false
        }
    }
}

/// The primary's monitor: create the slots the standbys need, drop the expired ones.
/// `replicas`: the application names in `pg_stat_replication`.
pub fn on_primary(cfg: &Config, local: &Local, me: &str, replicas: &[String]) -> Result<(), OcfError> {
    let Some(ttl) = cfg.slot_ttl else { return release_on_primary(cfg, local) };
    let now = unix_now();
    let mut memory = Memory::read(cfg);
    let partition = if memory.asked.is_none_or(|t| now.saturating_sub(t) >= ASK_EVERY.as_secs()) {
        match crate::pacemaker::nodes::partition() {
            Ok(p) => {
                memory.asked = Some(now);
                Some(p)
            }
            Err(e) => {
                ocf_debug!("cannot list the partition for the replication slots: {}", e.reason);
                None
            }
        }
    } else {
        None
    };
    let slots = physical(local)?;
    let p = plan(me, replicas, partition.as_deref(), &slots, &memory.inactive_since, now, ttl.as_secs());
    for (name, why) in &p.drop {
        drop_slot(local, name, why);
    }
    for name in &p.create {
        create(local, name, "for its standby");
    }
    memory.inactive_since = p.inactive_since;
    memory.write(cfg);
    Ok(())
}

/// Ask the partition on the next [`on_primary`] (reload-agent: slots just turned on must
/// exist for every node before their standbys' reloads point them at theirs).
pub fn ask_partition_next(cfg: &Config) {
    let mut m = Memory::read(cfg);
    if m.asked.take().is_some() {
        m.write(cfg);
    }
}

/// With replication_slots turned off: the slots this agent made are dropped once their
/// standbys stopped using them (their reload removes `primary_slot_name`). Only a primary
/// that managed slots (its memory file is there) asks anything: with the parameter off
/// from the start, a monitor costs no query.
fn release_on_primary(cfg: &Config, local: &Local) -> Result<(), OcfError> {
    if !memory_path(cfg).exists() {
        return Ok(());
    }
    let ours: Vec<Slot> = physical(local)?.into_iter().filter(|s| s.name.starts_with(PREFIX)).collect();
    for s in ours.iter().filter(|s| !s.active) {
        drop_slot(local, &s.name, "replication_slots=false");
    }
    if ours.iter().all(|s| !s.active) {
        let _ = std::fs::remove_file(memory_path(cfg));
    }
    Ok(())
}

/// At promote, on the instance still in recovery: a slot for every other node of the
/// partition, before the first commit. A failure is logged, not fatal: the monitor creates
/// what is missing.
pub fn at_promote(cfg: &Config, local: &Local, me: &str) {
    if cfg.slot_ttl.is_none() {
        return;
    }
    let others = match crate::pacemaker::nodes::partition() {
        Ok(p) => p,
        Err(e) => return ocf_warn!("cannot list the partition to create the standbys' replication slots: {}", e.reason),
    };
    let slots = physical(local).unwrap_or_default();
    for n in others.iter().filter(|n| n.as_str() != me) {
        let name = slot_name(n);
        if !slots.iter().any(|s| s.name == name) {
            create(local, &name, "before the promotion");
        }
    }
    let _ = std::fs::remove_file(memory_path(cfg));
}

/// The standby's monitor: use its own slot (`primary_slot_name`), and drop the slots this
/// agent left on it as a primary (inactive: nothing advances them on a standby).
pub fn on_standby(cfg: &Config, local: &Local, me: &str) -> Result<(), OcfError> {
    if cfg.slot_ttl.is_none() {
        return Ok(());
    }
    let mine = slot_name(me);
    let rows = local.query_text_with(
        "SELECT current_setting('primary_slot_name'), coalesce((SELECT string_agg(slot_name::text, ' ') FROM pg_replication_slots \
         WHERE slot_type = 'physical' AND NOT active AND starts_with(slot_name::text, $1)), '')",
        &[&PREFIX],
        SQL_TIMEOUT,
    )?;
    let row = rows.first().cloned().unwrap_or_default();
    let setting = row.first().cloned().flatten().unwrap_or_default();
    for stale in row.get(1).cloned().flatten().unwrap_or_default().split_whitespace() {
        drop_slot(local, stale, "left from when this node was primary");
    }
    if setting != mine {
        set_primary_slot_name(local, &mine)?;
    }
    Ok(())
}

/// `primary_slot_name` through ALTER SYSTEM and a reload (the walreceiver restarts with it).
fn set_primary_slot_name(local: &Local, name: &str) -> Result<(), OcfError> {
    local.execute(&format!("ALTER SYSTEM SET primary_slot_name = {}", quote_literal(name)?), SQL_TIMEOUT)?;
    local.query_one::<bool>("SELECT pg_reload_conf()", SQL_TIMEOUT)?;
    ocf_info!("primary_slot_name = '{name}'");
    Ok(())
}

/// With replication_slots off (reload-agent): a `primary_slot_name` this agent wrote (its
/// own slot's name) is removed, so that the standby streams without a slot again.
pub fn release(local: &Local, me: &str) -> Result<(), OcfError> {
    let setting: String = local.query_one("SELECT current_setting('primary_slot_name')", SQL_TIMEOUT)?;
    if setting == slot_name(me) {
        local.execute("ALTER SYSTEM RESET primary_slot_name", SQL_TIMEOUT)?;
        local.query_one::<bool>("SELECT pg_reload_conf()", SQL_TIMEOUT)?;
        ocf_info!("replication_slots=false: primary_slot_name removed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str, active: bool) -> Slot {
        Slot { name: name.into(), active }
    }
    fn names(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn slot_names_are_what_postgresql_accepts() {
        assert_eq!(slot_name("node1"), "paceline_node1");
        assert_eq!(slot_name("DB-2.example.com"), "paceline_db_2_example_com");
        assert_eq!(slot_name("nœud"), "paceline_n_ud");
        let long = slot_name(&"x".repeat(100));
        assert_eq!(long.len(), 63);
        for n in ["node1", "DB-2.example.com", "nœud", &"x".repeat(100)] {
            assert!(slot_name(n).chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
    }

    #[test]
    fn standbys_and_partition_members_get_slots_the_primary_none() {
        let p = plan("node1", &["node2".into()], Some(&["node1".into(), "node2".into(), "node3".into()]), &[], &BTreeMap::new(), 100, 1800);
        assert_eq!(names(&p.create), ["paceline_node2", "paceline_node3"]);
        assert!(p.drop.is_empty());
        // Without the partition: only the streaming ones.
        let p = plan("node1", &["node2".into()], None, &[slot("paceline_node3", false)], &BTreeMap::new(), 100, 1800);
        assert_eq!(names(&p.create), ["paceline_node2"]);
        assert_eq!(p.inactive_since.get("paceline_node3"), Some(&100), "first seen inactive now");
        // Its own slot on a primary (left from an earlier term elsewhere): dropped.
        let p = plan("node1", &[], None, &[slot("paceline_node1", false)], &BTreeMap::new(), 100, 1800);
        assert_eq!(p.drop.len(), 1);
        assert!(p.create.is_empty());
    }

    #[test]
    fn an_inactive_slot_expires_after_the_ttl_and_comes_back_for_a_present_node() {
        let since: BTreeMap<String, u64> = [("paceline_node2".to_string(), 1000), ("paceline_node4".to_string(), 1000)].into();
        let slots = [slot("paceline_node2", false), slot("paceline_node3", true), slot("paceline_node4", false), slot("backup_tool", false)];
        let partition: Vec<String> = ["node1", "node2", "node3"].iter().map(|s| s.to_string()).collect();
        // Within the TTL: kept, memory carried.
        let p = plan("node1", &["node3".into()], Some(&partition), &slots, &since, 2000, 1800);
        assert!(p.drop.is_empty() && p.create.is_empty(), "{p:?}");
        assert_eq!(p.inactive_since.len(), 2);
        // Past it: node4 (gone) dropped for good, node2 (present) renewed; never the operator's.
        let p = plan("node1", &["node3".into()], Some(&partition), &slots, &since, 2800, 1800);
        let dropped: Vec<&str> = p.drop.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(dropped, ["paceline_node2", "paceline_node4"]);
        assert!(p.drop[0].1.starts_with("renewed") && p.drop[1].1.starts_with("its node is gone"), "{:?}", p.drop);
        assert_eq!(names(&p.create), ["paceline_node2"]);
        assert!(p.inactive_since.is_empty());
        // Past it but the partition not asked on this monitor: nothing dropped yet.
        let p = plan("node1", &["node3".into()], None, &slots, &since, 2800, 1800);
        assert!(p.drop.is_empty());
        // Active again: forgotten.
        let p = plan("node1", &["node2".into()], None, &[slot("paceline_node2", true)], &since, 2800, 1800);
        assert!(p.inactive_since.is_empty() && p.drop.is_empty() && p.create.is_empty());
    }
}
