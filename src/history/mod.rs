//! The incident record: one per change of primary or in-place recovery, written by the
//! agents as the steps happen, read by `paceline history`, `paceline status` and the state
//! service's `/metrics`.
//!
//! **What a record holds.** Its id is the timeline the promotion started (every change of
//! primary, and every recovery of a primary in place, is a `pg_ctl promote`: a new
//! timeline), with the database's system identifier beside it so that a cluster built
//! again from `initdb` starts a new series. Inside: the old and new primary, the kind
//! (switchover: the old primary shut down cleanly; failover; recovery in place), each
//! step with its time and the node that did it (demote, lost node, election, promote,
//! first writable moment, address moved, fencing, the old primary's return), every
//! candidate's timeline, LSN and lag at the decision and why the winner won, the
//! synchronous set the decision relied on, the last commit the new primary received from
//! the old one, the new timeline's start, and what the old primary had past it.
//!
//! **Who writes what.** A record is a union of facts, each contributed by the node that
//! saw it: the old primary's demote notes its shutdown (a *pending* step: the record does
//! not exist yet); the promoted node writes the decision and the promotion when PostgreSQL
//! first accepts writes; the post-promote notification completes it on the promoted node
//! (the other nodes' pending steps, fencing, scores) and copies it to every node; an
//! address agent adds the move; the old primary adds how it came back. [`Record::merge`]
//! is a union, so the same fact arriving twice, or in any order, changes nothing.
//!
//! **Where it is kept, and why.** Each node keeps every record it knows in its own
//! directory, [`DIR`] (one JSON file per record, root's, written atomically; the newest
//! [`KEEP`] kept, older ones roll off), so `paceline history` answers from any node that
//! survives, the old primary's node gone for good included, without asking the others.
//! Records travel between nodes as one private node attribute per node
//! (`paceline-history-<resource>`, `attrd_updater --private`: the attribute manager holds
//! it in memory on every node and never writes it to the CIB): each node publishes there
//! the newest records it knows with its pending steps, and reads the others' in the
//! post-notifications and in `paceline history`. The CIB is not the store: every CIB write
//! is replicated to every node, starts a policy-engine run and is kept in every saved
//! transition input, so a growing log there would slow every decision of the cluster; and
//! a private attribute alone would not do either, since it lives only as long as some
//! attribute manager runs (a whole-cluster restart forgets it).
//!
//! **What it costs.** No recurring monitor reads or writes anything here. On a
//! switchover's critical path: the demote's pending step (a local file, and the attribute
//! published in a thread beside the standby's start), one query and one local file in
//! promote; the rest happens in the post-promote notification, beside the address's start
//! (docs/benchmarks.md).

pub mod command;
pub mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Where each node keeps its records, one directory per pgsqlms resource.
pub const DIR: &str = "/var/lib/paceline/history";

/// How many records a node keeps (the oldest roll off): years of failovers in a few
/// hundred kilobytes.
pub const KEEP: usize = 200;

/// The largest record file or published value read: a record is a few kilobytes.
const MAX_BYTES: u64 = 256 * 1024;

/// A pending step older than this is not attached to a new record (it belonged to an
/// attempt that never promoted anything).
const PENDING_FOR_MS: u64 = 15 * 60 * 1000;

/// The last commit counts as the moment writes stopped only when it is this close to the
/// first recorded step: an idle primary's last commit says nothing of when it failed.
const BUSY_WITHIN_MS: u64 = 60 * 1000;

/// The private node attribute records travel in.
pub fn attribute(resource: &str) -> String {
    format!("paceline-history-{resource}")
}

/// The private node attribute in which the state service says when it saw the local
/// postmaster die and reported it (ms since the epoch): the crashed primary's demote takes
/// it for the detection step.
pub fn crash_attribute(resource: &str) -> String {
    format!("paceline-crash-{resource}")
}

/// The private node attribute in which the state service says when it began answering
/// "primary" to the routing checks (ms since the epoch): the promoted node's record takes
/// it for the `routing` step.
pub fn routing_attribute(resource: &str) -> String {
    format!("paceline-routing-{resource}")
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One step, as the node that did or saw it recorded it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Step {
    /// Milliseconds since the epoch.
    pub at: u64,
    pub node: String,
    /// What: `failed` (the primary's monitor), `demote`, `shutdown`, `crashed`,
    /// `restarted`, `lost`, `election`, `promote`, `writable`, `synchronous` (a synchronous
    /// standby streams from the new primary: commits are acknowledged again), `address`,
    /// `routing` (the state service answers "primary" on the new primary), `fenced`,
    /// `rejoined`, `rewound`, `rebuilt`, `refused`.
    pub what: String,
    #[serde(default)]
    pub detail: String,
    /// A WAL position the step reports (an old primary's return: how far its WAL reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsn: Option<String>,
}

impl Step {
    /// A step now.
    pub fn new(node: &str, what: &str, detail: impl Into<String>) -> Step {
        Step::at(now_ms(), node, what, detail)
    }

    /// A step at `at` (ms since the epoch).
    pub fn at(at: u64, node: &str, what: &str, detail: impl Into<String>) -> Step {
        Step { at, node: node.to_owned(), what: what.to_owned(), detail: detail.into(), lsn: None }
    }
}

/// A standby as the election saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub node: String,
    /// `candidate`, `diverged` (past the newest timeline's fork), `absent` (published no
    /// position), `left out` (not a promotable member of the synchronous set).
    pub standing: String,
    #[serde(default)]
    pub timeline: Option<u32>,
    /// WAL received, `X/Y`.
    #[serde(default)]
    pub lsn: Option<String>,
    /// Bytes behind the chosen standby.
    #[serde(default)]
    pub lag: Option<u64>,
    /// Promotion score, as the post-promote notification read it.
    #[serde(default)]
    pub score: Option<i64>,
    /// Member of the synchronous set the old primary recorded.
    #[serde(default)]
    pub member: bool,
    #[serde(default)]
    pub chosen: bool,
}

/// The kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The old primary shut down cleanly and another node was promoted.
    Switchover,
    /// The old primary failed, was lost or fenced, and another node was promoted.
    Failover,
    /// The primary failed and was promoted again on the same node.
    Recovery,
    /// The first promotion: no primary before it that anyone knew of (a new cluster, or
    /// one whose every node had stopped).
    Start,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Switchover => "switchover",
            Kind::Failover => "failover",
            Kind::Recovery => "recovery",
            Kind::Start => "start",
        }
    }
}

/// One change of primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The timeline the promotion started.
    pub timeline: u32,
    /// The database's system identifier (a new `initdb` starts a new series).
    pub system: String,
    pub resource: String,
    pub kind: Kind,
    #[serde(default)]
    pub old_primary: Option<String>,
    pub new_primary: String,
    /// Why the new primary won, in words.
    #[serde(default)]
    pub why: String,
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// The synchronous set the old primary recorded, as `synchronous_standby_names`
    /// names it (none: asynchronous).
    #[serde(default)]
    pub sync_set: Option<String>,
    /// Where the new timeline starts (its history file's switchpoint).
    #[serde(default)]
    pub fork: Option<String>,
    /// The WAL the new primary had received from the old one at the decision.
    #[serde(default)]
    pub received: Option<String>,
    /// When the newest commit the new primary received from the old one was made.
    #[serde(default)]
    pub last_commit: Option<u64>,
    /// The old primary's last WAL position, and who knew it (`shutdown checkpoint`; on its
    /// return the position is its return step's `lsn`).
    #[serde(default)]
    pub old_end: Option<String>,
    #[serde(default)]
    pub old_end_source: Option<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

impl Record {
    /// The record's key: system identifier and timeline.
    pub fn key(&self) -> (String, u32) {
        (self.system.clone(), self.timeline)
    }

    /// Fold `other` (the same record, as another node knows it) into this one: steps and
    /// candidates are a union; a field one side knows and the other not is kept.
    pub fn merge(&mut self, other: &Record) {
        for s in &other.steps {
            self.add_step(s.clone());
        }
        if self.candidates.is_empty() {
            self.candidates = other.candidates.clone();
        } else {
            for c in &mut self.candidates {
                if c.score.is_none() {
                    c.score = other.candidates.iter().find(|o| o.node == c.node).and_then(|o| o.score);
                }
            }
        }
        fill(&mut self.old_primary, &other.old_primary);
        fill(&mut self.sync_set, &other.sync_set);
        fill(&mut self.fork, &other.fork);
        fill(&mut self.received, &other.received);
        fill(&mut self.last_commit, &other.last_commit);
        if self.old_end.is_none() && other.old_end.is_some() {
            self.old_end.clone_from(&other.old_end);
            self.old_end_source.clone_from(&other.old_end_source);
        }
        if self.why.is_empty() {
            self.why = other.why.clone();
        }
    }

    /// Add a step unless the record has it already; steps stay in time order.
    pub fn add_step(&mut self, s: Step) {
        if !self.steps.contains(&s) {
            self.steps.push(s);
            self.steps.sort();
        }
    }

    /// The first time a step `what` was recorded.
    pub fn first(&self, what: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.what == what)
    }

    /// The moment PostgreSQL first accepted writes on the new primary.
    pub fn writable_at(&self) -> Option<u64> {
        self.first("writable").map(|s| s.at)
    }

    /// When writes stopped: the old primary's shutdown for a switchover (it refuses writes
    /// from then on); otherwise the last commit the new primary received, when the old
    /// primary was busy (that commit within [`BUSY_WITHIN_MS`] of the first step anyone
    /// recorded); otherwise that first step (an idle primary failed at some moment before
    /// anyone noticed: the outage counts from the detection).
    pub fn writes_stopped_at(&self) -> Option<u64> {
        if self.kind == Kind::Switchover {
            if let Some(s) = self.first("shutdown").or_else(|| self.first("demote")) {
                return Some(s.at);
            }
        }
        let first = self.steps.iter().filter(|s| !follows_promotion(&s.what)).map(|s| s.at).min();
        match (self.last_commit, first) {
            (Some(c), Some(f)) if c <= f && f - c <= BUSY_WITHIN_MS => Some(c),
            (Some(c), Some(f)) if c > f => Some(f),
            (_, f) => f,
        }
    }

    /// Writes down: from [`Self::writes_stopped_at`] to the first writable moment.
    pub fn outage_ms(&self) -> Option<u64> {
        Some(self.writes_back_at()?.saturating_sub(self.writes_stopped_at()?))
    }

    /// When a commit could be acknowledged again: the first writable moment or, with
    /// synchronous replication, the later moment a synchronous standby streamed from the
    /// new primary (its commits wait for one until then).
    pub fn writes_back_at(&self) -> Option<u64> {
        let w = self.writable_at()?;
        Some(self.first("synchronous").map_or(w, |s| s.at.max(w)))
    }

    /// When an address agent first placed the address on the new primary after it became
    /// writable (clients that go through the address reach it from then on).
    pub fn address_at(&self) -> Option<u64> {
        let w = self.writable_at()?;
        self.steps.iter().filter(|s| s.what == "address" && s.at >= w).map(|s| s.at).min()
    }

    /// Writes down for clients that go through the address: until both the address moved
    /// and commits were acknowledged again.
    pub fn address_outage_ms(&self) -> Option<u64> {
        Some(self.address_at()?.max(self.writes_back_at()?).saturating_sub(self.writes_stopped_at()?))
    }

    /// Whether [`Self::lost_bytes`] is a lower bound: the old primary's end as its return
    /// read it from pg_control (the WAL reached at least that far).
    pub fn lost_at_least(&self) -> bool {
        self.old_end.is_none() && self.kind != Kind::Recovery && self.return_step().is_some_and(|s| s.lsn.is_some() && s.what != "rejoined")
    }

    /// WAL of the old primary that the new one does not have, in bytes: known once the
    /// old primary's end is (its shutdown checkpoint, or what it had when it came back).
    pub fn lost_bytes(&self) -> Option<u64> {
        // Recovered in place: crash recovery replayed all of its own WAL before the promotion.
        // Rejoined as it was: its history lies on the new timeline's (nothing past the fork).
        if self.kind == Kind::Recovery || (self.old_end.is_none() && self.return_step().is_some_and(|s| s.what == "rejoined" && s.detail == REJOINED_AS_IT_WAS))
        {
            return Some(0);
        }
        let fork: crate::pg::Lsn = self.fork.as_deref()?.parse().ok()?;
        let end: crate::pg::Lsn = self.old_end.as_deref().or_else(|| self.return_step()?.lsn.as_deref())?.parse().ok()?;
        Some(end.0.saturating_sub(fork.0))
    }

    /// The old primary's return, if it came back: its step.
    pub fn return_step(&self) -> Option<&Step> {
        self.steps.iter().rev().find(|s| is_return(&s.what))
    }

    /// Attach the pending steps that belong to this change: recorded before its first
    /// writable moment, at most [`PENDING_FOR_MS`] earlier, and after `after` (the previous
    /// change's first writable moment: what came before belongs to that one). Returns
    /// whether any was new.
    ///
    /// The old primary's return (`rejoined`, `rewound`, `rebuilt`, `refused`) comes after:
    /// it is attached when its node is this change's old primary and it happened after this
    /// change's first writable moment and before `next` (the following change's).
    pub fn attach(&mut self, pending: &[Step], after: Option<u64>, next: Option<u64>) -> bool {
        let Some(w) = self.writable_at() else { return false };
        let mut added = false;
        let belongs = |s: &&Step| {
            if is_return(&s.what) {
                self.old_primary.as_deref() == Some(s.node.as_str()) && self.kind != Kind::Recovery && s.at >= w && next.is_none_or(|n| s.at < n)
            } else {
                s.at <= w && w - s.at <= PENDING_FOR_MS && after.is_none_or(|a| s.at > a)
            }
        };
        let mine: Vec<Step> = pending.iter().filter(belongs).cloned().collect();
        for s in &mine {
            if !self.steps.contains(s) {
                self.add_step(s.clone());
                added = true;
            }
        }
        if added && matches!(self.kind, Kind::Failover | Kind::Start) && self.steps.iter().any(|s| s.what == "shutdown" && s.detail.starts_with("clean")) {
            self.kind = Kind::Switchover;
        }
        added
    }
}

/// The detail of a `rejoined` step whose history the start compared and found on the new
/// primary's (the other `rejoined` was not compared): nothing of its own past the fork.
pub const REJOINED_AS_IT_WAS: &str = "its history lies on the new primary's: nothing of its own past the fork";

/// The steps of an old primary's return.
pub fn is_return(what: &str) -> bool {
    matches!(what, "rejoined" | "rewound" | "rebuilt" | "refused")
}

/// The steps that follow the promotion (its outcome, the moves, the old primary's
/// return): no sign of when writes stopped.
fn follows_promotion(what: &str) -> bool {
    matches!(what, "writable" | "synchronous" | "address" | "routing") || is_return(what)
}

fn fill<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
    if mine.is_none() {
        mine.clone_from(theirs);
    }
}

/// How many of the records written last the actions read ([`Store::recent`]).
pub const RECENT: usize = 8;

/// How many of its newest records a node publishes: a step may still be added to the one
/// before the newest (the old primary's restart, its return) once the next change is there.
pub const PUBLISHED: usize = 3;

/// What a node publishes for the others: the newest records it knows ([`PUBLISHED`]), and
/// its steps that wait for a record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    #[serde(default)]
    pub records: Vec<Record>,
    #[serde(default)]
    pub pending: Vec<Step>,
}

/// One node's store: the records it knows and its pending steps.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store of `resource` on this node (`$PACELINE_HISTORY_DIR` instead of [`DIR`]
    /// for tests that run without the cluster).
    pub fn open(resource: &str) -> Store {
        Store { dir: base().join(safe_name(resource)) }
    }

    pub fn at(dir: &Path) -> Store {
        Store { dir: dir.to_owned() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_dir(&self) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(&self.dir)
    }

    fn file_of(&self, system: &str, timeline: u32) -> PathBuf {
        self.dir.join(format!("{}-{timeline:08}.json", safe_name(system)))
    }

    /// The record files this node keeps (every `*.json` but the pending steps').
    fn record_files(&self) -> Vec<std::fs::DirEntry> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".json") && e.file_name() != "pending.json").collect()
    }

    /// Records in the order every reader shows them: by first writable moment, then timeline.
    fn in_order(mut records: Vec<Record>) -> Vec<Record> {
        records.sort_by_key(|r| (r.writable_at().unwrap_or(0), r.timeline));
        records
    }

    /// Every record this node keeps, oldest first (by first writable moment, then timeline).
    pub fn records(&self) -> Vec<Record> {
        Self::in_order(self.record_files().iter().filter_map(|e| self.load(&e.path())).collect())
    }

    /// The records written or changed last ([`RECENT`] of them, by file time), oldest
    /// first: what the actions need (the newest, the one an old primary's return follows,
    /// what to publish) without reading every record on the critical path.
    pub fn recent(&self) -> Vec<Record> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> =
            self.record_files().iter().filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path()))).collect();
        files.sort();
        Self::in_order(files.iter().rev().take(RECENT).filter_map(|(_, p)| self.load(p)).collect())
    }

    fn load(&self, path: &Path) -> Option<Record> {
        serde_json::from_str(&crate::files::read_small(path, MAX_BYTES).ok().flatten()?).ok()
    }

    /// The newest record.
    pub fn newest(&self) -> Option<Record> {
        self.recent().pop()
    }

    /// One record by timeline (of the newest series holding it).
    pub fn get(&self, timeline: u32) -> Option<Record> {
        self.records().into_iter().rev().find(|r| r.timeline == timeline)
    }

    /// Keep `r`, merged with what this node already has of it; the oldest records beyond
    /// [`KEEP`] roll off. Returns the record as kept.
    pub fn save(&self, r: &Record) -> std::io::Result<Record> {
        self.save_changed(r).map(|(kept, _)| kept)
    }

    /// [`Self::save`], and whether the file changed (it is written only then).
    fn save_changed(&self, r: &Record) -> std::io::Result<(Record, bool)> {
        self.ensure_dir()?;
        let path = self.file_of(&r.system, r.timeline);
        let before = crate::files::read_small(&path, MAX_BYTES).ok().flatten();
        let mut kept = match before.as_deref().and_then(|t| serde_json::from_str::<Record>(t).ok()) {
            Some(mut old) => {
                old.merge(r);
                old
            }
            None => r.clone(),
        };
        let (after, next) = self.neighbours(&kept);
        kept.attach(&self.pending(), after, next);
        let text = serde_json::to_string_pretty(&kept).map_err(std::io::Error::other)?;
        let changed = before.as_deref() != Some(text.as_str());
        if changed {
            crate::files::write_atomic(&path, text.as_bytes(), 0o644)?;
        }
        self.roll_off();
        Ok((kept, changed))
    }

    /// The first writable moments of the changes before and after `r` (same system): the
    /// records of the nearest lower and higher timelines, found by their files' names (two
    /// files read, whatever the number kept).
    pub fn neighbours(&self, r: &Record) -> (Option<u64>, Option<u64>) {
        let prefix = format!("{}-", safe_name(&r.system));
        let timelines: Vec<u32> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str()?.strip_prefix(&prefix)?.strip_suffix(".json")?.parse::<u32>().ok()).collect()
            })
            .unwrap_or_default();
        let at = |tl: Option<u32>| tl.and_then(|tl| self.load(&self.file_of(&r.system, tl))).and_then(|o| o.writable_at());
        (at(timelines.iter().copied().filter(|t| *t < r.timeline).max()), at(timelines.iter().copied().filter(|t| *t > r.timeline).min()))
    }

    fn roll_off(&self) {
        // Names are counted first: the records are parsed only when some must go.
        if self.record_files().len() <= KEEP {
            return;
        }
        let all = self.records();
        if all.len() > KEEP {
            for r in &all[..all.len() - KEEP] {
                let _ = crate::files::remove(&self.file_of(&r.system, r.timeline));
            }
        }
    }

    fn pending_file(&self) -> PathBuf {
        self.dir.join("pending.json")
    }

    /// This node's steps waiting for a record.
    pub fn pending(&self) -> Vec<Step> {
        crate::files::read_small(&self.pending_file(), MAX_BYTES).ok().flatten().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
    }

    /// Note a step that waits for the record of the next promotion (the newest 20 kept).
    pub fn note_pending(&self, s: Step) -> std::io::Result<()> {
        self.ensure_dir()?;
        let mut p = self.pending();
        let now = s.at;
        p.retain(|o| now.saturating_sub(o.at) <= PENDING_FOR_MS);
        p.push(s);
        let skip = p.len().saturating_sub(20);
        let p: Vec<Step> = p.into_iter().skip(skip).collect();
        crate::files::write_atomic(&self.pending_file(), serde_json::to_string(&p).map_err(std::io::Error::other)?.as_bytes(), 0o644)
    }

    /// Forget the pending steps some kept record holds, and those from before the newest
    /// record's first writable moment (they belonged to that change or an earlier one).
    pub fn settle_pending(&self) {
        let p = self.pending();
        if p.is_empty() {
            return;
        }
        let records = self.recent();
        let newest = records.iter().filter_map(|r| r.writable_at()).max().unwrap_or(0);
        // A return waits for the record of the change it follows (this node may learn of it
        // only later); a day at most.
        let kept = |s: &Step| if is_return(&s.what) { now_ms().saturating_sub(s.at) < 24 * 3600 * 1000 } else { s.at > newest };
        let left: Vec<Step> = p.iter().filter(|s| kept(s) && !records.iter().any(|r| r.steps.contains(s))).cloned().collect();
        if left.len() != p.len() {
            let _ = crate::files::write_atomic(&self.pending_file(), serde_json::to_string(&left).unwrap_or_else(|_| "[]".into()).as_bytes(), 0o644);
        }
    }

    /// An old primary's return (`rejoined`, `rewound`, `rebuilt`, `refused`): kept as a
    /// pending step and attached at once to the record of the change it follows when this
    /// node has it (otherwise when it learns of it: [`Self::absorb`]).
    pub fn note_return(&self, s: Step) -> std::io::Result<()> {
        let node = s.node.clone();
        self.note_pending(s)?;
        if let Some(r) = self.recent().into_iter().rev().find(|r| r.old_primary.as_deref() == Some(node.as_str())) {
            self.save(&r)?;
            self.settle_pending();
        }
        Ok(())
    }

    /// Add a step to the newest record if it is for `node` as new primary and recent
    /// (an address agent's move, right after the promotion); `false` when there is none.
    pub fn add_to_newest(&self, new_primary: &str, s: Step, within_ms: u64) -> bool {
        let Some(mut r) = self.newest() else { return false };
        let recent = r.writable_at().is_some_and(|w| s.at >= w && s.at - w <= within_ms);
        if r.new_primary != new_primary || !recent {
            return false;
        }
        r.add_step(s);
        self.save(&r).is_ok()
    }

    /// What this node publishes: its newest records and pending steps.
    pub fn outbox(&self) -> Outbox {
        let mut records = self.recent();
        let records = records.split_off(records.len().saturating_sub(PUBLISHED));
        Outbox { records, pending: self.pending() }
    }

    /// Fold other nodes' outboxes in: their records are merged with this node's copies
    /// (or kept, when new here), and every pending step is attached to the record it
    /// belongs to. Returns how many records changed.
    pub fn absorb(&self, outboxes: &[Outbox]) -> usize {
        let mut changed = 0;
        let mut by_key: BTreeMap<(String, u32), Record> = BTreeMap::new();
        for o in outboxes {
            for r in &o.records {
                by_key.entry(r.key()).and_modify(|k| k.merge(r)).or_insert_with(|| r.clone());
            }
        }
        let pending: Vec<Step> = outboxes.iter().flat_map(|o| o.pending.iter().cloned()).collect();
        let mut records = self.records();
        for r in by_key.into_values() {
            match records.iter_mut().find(|k| k.key() == r.key()) {
                Some(k) => k.merge(&r),
                None => records.push(r),
            }
        }
        let records = Self::in_order(records);
        let mut previous: BTreeMap<String, u64> = BTreeMap::new();
        let nexts: Vec<Option<u64>> =
            (0..records.len()).map(|i| records[i + 1..].iter().filter(|o| o.system == records[i].system).find_map(|o| o.writable_at())).collect();
        for (mut r, next) in records.into_iter().zip(nexts) {
            r.attach(&pending, previous.get(&r.system).copied(), next);
            if let Some(w) = r.writable_at() {
                previous.insert(r.system.clone(), w);
            }
            if let Ok((_, true)) = self.save_changed(&r) {
                changed += 1;
            }
        }
        self.settle_pending();
        changed
    }
}

/// Where every node keeps its records: [`DIR`], or `$PACELINE_HISTORY_DIR` for tests that
/// run without the cluster.
pub fn base() -> PathBuf {
    std::env::var_os("PACELINE_HISTORY_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DIR))
}

/// A name safe as one path component: letters, digits, `-_.` (a resource name or a
/// system identifier always is; anything else is replaced, never a path).
fn safe_name(s: &str) -> String {
    let s: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// How long after a promotion an address's start still counts as part of it.
const ADDRESS_WITHIN_MS: u64 = 5 * 60 * 1000;

/// An address agent's start succeeded on this node: if a promotion to this node was
/// recorded in the last minutes, the move is one of its steps (the moment clients can
/// reach the new primary), added here and published. Costs nothing when this node keeps
/// no recent record of its own promotion (a `stat` per pgsqlms resource).
pub fn note_address(env: &crate::ocf::OcfEnv, agent: &str) {
    let Some(me) = env.meta("on_node") else { return };
    for resource in command::resources() {
        let store = Store::open(&resource);
        if store.add_to_newest(me, Step::new(me, "address", format!("{} ({agent}) started", env.instance())), ADDRESS_WITHIN_MS) {
            if let Err(why) = publish(&store, &resource) {
                crate::ocf_warn!("cannot publish the incident record: {why}");
            }
        }
    }
}

/// Decode a published outbox; `None` for anything that is not one.
pub fn decode_outbox(text: &str) -> Option<Outbox> {
    if text.len() as u64 > MAX_BYTES {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Encode an outbox for publication (compact JSON: a few kilobytes per record).
pub fn encode_outbox(o: &Outbox) -> String {
    serde_json::to_string(o).unwrap_or_default()
}

/// Publish this node's outbox (best effort: the next publication makes up for a failed one).
pub fn publish(store: &Store, resource: &str) -> Result<(), String> {
    crate::pacemaker::attrs::publish(&attribute(resource), &encode_outbox(&store.outbox())).map_err(|e| e.reason)
}

/// Read every node's outbox once and fold them into this node's store.
pub fn gather(store: &Store, resource: &str) -> Result<usize, String> {
    gather_until(store, resource, "", |_| true, std::time::Instant::now())
}

/// The same, read again (every 200 ms, until `until`) while `node`'s outbox is not what
/// `want` waits for: a copy of the record that node is about to publish.
pub fn gather_until(store: &Store, resource: &str, node: &str, want: impl Fn(&Outbox) -> bool, until: std::time::Instant) -> Result<usize, String> {
    loop {
        let all = crate::pacemaker::attrs::private_all(&attribute(resource)).map_err(|e| e.reason)?;
        let read = all.len();
        let outboxes: Vec<(String, Outbox)> = all.into_iter().filter_map(|(n, v)| Some((n, decode_outbox(&v)?))).collect();
        crate::ocf_debug!("incident records: {read} nodes' outboxes read, {} decoded", outboxes.len());
        let have = node.is_empty() || outboxes.iter().any(|(n, o)| n == node && want(o));
        if have || std::time::Instant::now() >= until {
            let list: Vec<Outbox> = outboxes.into_iter().map(|(_, o)| o).collect();
            return Ok(store.absorb(&list));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests;
