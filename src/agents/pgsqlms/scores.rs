//! Promotion scores: the `master-<resource>` node attributes Pacemaker promotes by.
//!
//! The primary ranks the standbys from `pg_stat_replication`: synchronous standbys first,
//! then by how much WAL they have flushed (most first): 1000, 990, 980...; a standby
//! lagging more than `maxlag` bytes gets the negative of its rank, one not streaming −1,
//! a cluster node absent from replication −1000; the primary itself 1001 ([`rank`], pure;
//! the primary's monitor carries it out in `primary.rs`). A standby that nobody ranked yet
//! makes itself promotable (score 1) as soon as it streams, so a failure right after the
//! cluster starts has somewhere to go (PAF leaves standbys at −1000 until the primary's
//! first monitor); it never raises a score the primary gave it ([`self_score`]). Scores are written (as permanent node attributes) only when they change: the last
//! written values are kept in `$HA_RSCTMP`, and re-read from the CIB once they are a minute
//! old, so a score someone else overwrote (a standby's self-score racing the primary's
//! ranking) is corrected within a minute.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::sync::Mode;
use super::Config;
use crate::ocf::OcfError;
use crate::pacemaker;
use crate::pg::client::Local;
use crate::pg::Lsn;
use crate::{ocf_debug, ocf_info, ocf_warn};

pub const PRIMARY: i64 = 1001;
pub const BEST_STANDBY: i64 = 1000;
pub const STEP: i64 = 10;
pub const NOT_STREAMING: i64 = -1;
/// With synchronous_mode on/strict: a streaming standby outside the synchronous set (or not
/// yet caught up with it), which must not be promoted.
pub const NOT_SYNCHRONOUS: i64 = -2;
pub const ABSENT: i64 = -1000;
pub const BOOTSTRAP: i64 = 1;

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub name: String,
    pub state: String,
    pub sync: bool,
    pub flushed: Option<Lsn>,
}

/// The scores the primary `me` gives to the nodes of its partition. With `eligible` (the
/// synchronous set's promotable members), a streaming standby outside it gets
/// [`NOT_SYNCHRONOUS`].
pub fn rank(me: &str, partition: &[String], replicas: &[Replica], current: Lsn, maxlag: u64, eligible: Option<&[String]>) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = partition.iter().map(|n| (n.clone(), ABSENT)).collect();
    out.insert(me.to_owned(), PRIMARY);
    let mut streaming: Vec<&Replica> = replicas.iter().filter(|r| r.name != me && out.contains_key(&r.name)).collect();
    for r in &streaming {
        if r.state != "streaming" {
            out.insert(r.name.clone(), NOT_STREAMING);
        }
    }
    streaming.retain(|r| r.state == "streaming");
    if let Some(eligible) = eligible {
        for r in streaming.iter().filter(|r| !eligible.contains(&r.name)) {
            out.insert(r.name.clone(), NOT_SYNCHRONOUS);
        }
        streaming.retain(|r| eligible.contains(&r.name));
    }
    // Synchronous first, then most WAL flushed, then name for a stable order.
    streaming.sort_by(|a, b| b.sync.cmp(&a.sync).then(b.flushed.cmp(&a.flushed)).then(a.name.cmp(&b.name)));
    for (i, r) in streaming.iter().enumerate() {
        let score = BEST_STANDBY - STEP * i as i64;
        let lag = r.flushed.map(|f| current.0.saturating_sub(f.0));
        let too_far = maxlag > 0 && lag.is_none_or(|l| l > maxlag);
        out.insert(r.name.clone(), if too_far { -score } else { score });
    }
    out
}

/// Where the agent keeps what it remembers between actions (`$HA_RSCTMP`, a tmpfs that
/// a reboot empties).
pub fn cache_dir() -> PathBuf {
    crate::ocf::env::rsc_tmp()
}

fn cache_path(cfg: &Config) -> PathBuf {
    cache_dir().join(format!("paceline-pgsqlms-{}.scores", cfg.resource))
}

pub(super) fn read_cache(cfg: &Config) -> BTreeMap<String, i64> {
    std::fs::read_to_string(cache_path(cfg))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (n, s) = l.split_once(' ')?;
            Some((n.to_owned(), s.trim().parse().ok()?))
        })
        .collect()
}

fn write_cache(cfg: &Config, scores: &BTreeMap<String, i64>) {
    let text: String = scores.iter().map(|(n, s)| format!("{n} {s}\n")).collect();
    let path = cache_path(cfg);
    let _ = crate::files::keep(&path, text.as_bytes());
}

/// This node's name: Pacemaker's, or `crm_node -n`.
pub fn local_node(cfg: &Config) -> Result<String, OcfError> {
    match &cfg.node {
        Some(n) => Ok(n.clone()),
        None => pacemaker::nodes::local_name(),
    }
}

pub fn set(cfg: &Config, node: &str, score: i64) -> Result<(), OcfError> {
    pacemaker::attrs::set_permanent(&cfg.score_attribute(), node, &score.to_string())?;
    ocf_info!("promotion score of {node}: {score}");
    Ok(())
}

/// `node`'s score; `None` when it has none or Pacemaker could not be asked.
pub fn get(cfg: &Config, node: &str) -> Option<i64> {
    pacemaker::attrs::permanent(&cfg.score_attribute(), node).ok().flatten()?.trim().parse().ok()
}

/// How long the primary trusts its memory of the scores it wrote. Another writer — a
/// standby making itself promotable (score 1) at the moment the primary ranked it, an
/// operator — would otherwise go unnoticed for as long as the ranking does not change;
/// past this age one `cibadmin` query re-reads them all.
const CACHE_TRUST: Duration = Duration::from_secs(60);

/// The scores as written in the CIB's nodes section, by node name.
pub(super) fn cib_scores(cfg: &Config) -> Result<BTreeMap<String, i64>, OcfError> {
    Ok(pacemaker::cib::node_attribute(&cfg.score_attribute())?.into_iter().filter_map(|(n, v)| Some((n, v.trim().parse().ok()?))).collect())
}

/// Write the scores that differ from what we last wrote (or, when that memory is older
/// than [`CACHE_TRUST`], from what the CIB holds).
/// Returns the nodes whose score it wrote.
pub fn apply(cfg: &Config, wanted: &BTreeMap<String, i64>) -> Result<Vec<String>, OcfError> {
    let age = std::fs::metadata(cache_path(cfg)).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
    let mut cache = match age {
        Some(a) if a > CACHE_TRUST => cib_scores(cfg).unwrap_or_else(|e| {
            ocf_warn!("cannot re-read the promotion scores: {}", e.reason);
            BTreeMap::new()
        }),
        _ => read_cache(cfg),
    };
    // Rewritten only on a change or a re-read: its age is how long it has been trusted.
    let mut dirty = age.is_none_or(|a| a > CACHE_TRUST);
    let mut written = Vec::new();
    let mut outcome = Ok(());
    for (node, score) in wanted {
        if cache.get(node) != Some(score) {
            if let Err(e) = set(cfg, node, *score) {
                outcome = Err(e);
                break;
            }
            cache.insert(node.clone(), *score);
            written.push(node.clone());
            dirty = true;
        }
    }
    // What was written is remembered even when a later write failed.
    if dirty {
        write_cache(cfg, &cache);
    }
    outcome.map(|_| written)
}

/// What a standby's monitor writes as its own score, given the score it has now (`Err`:
/// Pacemaker could not be asked): [`BOOTSTRAP`] only when it has none at all — a new
/// cluster whose primary has not ranked anybody yet. A score the primary set, positive or
/// not, is the primary's verdict: a standby catching up (−1), beyond `maxlag`, or absent
/// when last seen (−1000) must not make itself promotable again; and what could not be
/// read is not taken for "none".
pub fn self_score(current: Result<Option<i64>, ()>) -> Option<i64> {
    match current {
        Ok(None) => Some(BOOTSTRAP),
        Ok(Some(_)) | Err(()) => None,
    }
}

/// On a standby's monitor: promotable (score 1) as soon as it streams, if the primary has
/// never ranked it ([`self_score`]). Never with synchronous replication: there only the
/// primary makes a standby promotable, once it is a caught-up member of the synchronous set.
pub fn standby_self_score(cfg: &Config, local: &Local) {
    if cfg.sync_mode != Mode::Off {
        return;
    }
    let streaming = local
        .query_text("SELECT status FROM pg_stat_wal_receiver", Duration::from_secs(5))
        .ok()
        .is_some_and(|rows| rows.iter().any(|r| r.first().cloned().flatten().as_deref() == Some("streaming")));
    if !streaming {
        return;
    }
    let Ok(me) = local_node(cfg) else { return };
    let cached = read_cache(cfg).get(&me).copied();
    if cached.is_some_and(|s| s > 0) {
        return;
    }
    let current = pacemaker::attrs::permanent(&cfg.score_attribute(), &me).map(|v| v.map(|v| v.trim().parse::<i64>().unwrap_or(0)));
    if let Ok(Some(s)) = current {
        if s > 0 {
            // Already promotable (the primary ranked us): remember it, so the next monitors
            // need not ask Pacemaker again.
            let mut cache = read_cache(cfg);
            cache.insert(me, s);
            write_cache(cfg, &cache);
        } else {
            ocf_debug!("the primary scored this standby {s}: not raising it");
        }
        return;
    }
    if let Err(e) = &current {
        ocf_warn!("cannot read this standby's promotion score ({}): not setting it", e.reason);
    }
    if let Some(score) = self_score(current.map_err(|_| ())) {
        if let Err(e) = apply(cfg, &BTreeMap::from([(me, score)])) {
            ocf_warn!("cannot set the promotion score: {}", e.reason);
        }
    }
}

/// Set this node's own score.
/// Forget what this node wrote: on a change of role. The memory describes the scores as
/// they stood when this node last ranked them; since then another primary has ranked (this
/// node among them), so trusting it would skip the writes that matter — a new primary
/// keeping the −1000 its predecessor gave it, the old primary keeping its 1001, and
/// Pacemaker moving the role back once a switchover's constraint is cleared.
pub fn forget_written(cfg: &Config) {
    match std::fs::remove_file(cache_path(cfg)) {
        Ok(()) => ocf_debug!("forgot the promotion scores written before this change of role"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => ocf_warn!("cannot remove {}: {e}", cache_path(cfg).display()),
    }
}

pub fn set_own(cfg: &Config, score: i64) {
    let res = local_node(cfg).and_then(|me| apply(cfg, &BTreeMap::from([(me, score)])));
    if let Err(e) = res {
        ocf_warn!("cannot set the promotion score: {}", e.reason);
    }
}

/// Where start remembers that this node bootstrapped the cluster's first promotion.
fn bootstrap_path(cfg: &Config) -> PathBuf {
    cache_dir().join(format!("paceline-pgsqlms-{}.bootstrap", cfg.resource))
}

/// First start of a cluster: if no node of the partition is promotable, this one (a
/// cleanly stopped primary) becomes so — and remembers it, for [`bootstrap_again`].
pub fn bootstrap(cfg: &Config) {
    let Ok(nodes) = pacemaker::nodes::partition() else { return };
    if nodes.iter().any(|n| get(cfg, n).is_some_and(|s| s > 0)) {
        return;
    }
    ocf_info!("no promotable node yet and this instance was a primary: making it promotable");
    let _ = crate::files::keep(&bootstrap_path(cfg), b"bootstrap\n");
    set_own(cfg, BOOTSTRAP);
}

/// The score [`bootstrap`] wrote can be lost: a `pcs` command that read the configuration
/// before it was written replaces the whole `configuration` section, node attributes
/// included (seen in the lab while crm-examples' script was still adding constraints).
/// Asynchronous standbys score themselves again on their monitor; with synchronous
/// replication nobody does, and the cluster would wait for a primary for ever. So, on the
/// standby monitor of the node that bootstrapped, until some node is promoted: if no node
/// of the partition is promotable, the score is written again.
pub fn bootstrap_again(cfg: &Config) {
    let path = bootstrap_path(cfg);
    if !path.exists() {
        return;
    }
    match pacemaker::resource::locate(&cfg.resource) {
        Ok(l) if l.iter().any(|l| l.promoted) => {
            let _ = std::fs::remove_file(&path);
            return;
        }
        Ok(_) => {}
        Err(_) => return,
    }
    let Ok(nodes) = pacemaker::nodes::partition() else { return };
    if nodes.iter().any(|n| get(cfg, n).is_some_and(|s| s > 0)) {
        return;
    }
    ocf_warn!("the promotion score this node wrote at the cluster's first start is gone (a configuration replaced meanwhile?) and no node is promotable: writing it again");
    forget_written(cfg);
    set_own(cfg, BOOTSTRAP);
}

/// This node was promoted: the first start's bootstrap is over.
pub fn bootstrap_done(cfg: &Config) {
    let _ = std::fs::remove_file(bootstrap_path(cfg));
}
