//! Synchronous replication, managed by the primary: `synchronous_mode` off | on | strict.
//!
//! Why: with asynchronous replication a primary cut off from the others acknowledges
//! commits until it is fenced, and every one of them is lost when a standby is promoted.
//! With `synchronous_standby_names = 'ANY k (members)'` (PostgreSQL's quorum commit) a
//! commit is acknowledged only once k members have flushed it. WAL is one ordered stream,
//! so the most advanced member has every commit any member has: promoting the most
//! advanced member loses nothing. The agent owns that setting (ALTER SYSTEM + reload on
//! the primary) and keeps these invariants, stated in docs/pgsqlms.md:
//!
//! 1. Only a member of the synchronous set is promotable (positive score); a standby
//!    becomes one only once PostgreSQL counts it (`sync_state` quorum/sync) and it has
//!    flushed the WAL written up to the moment it was seen counted (its *join LSN*).
//! 2. A member leaves the set only after its score has been written non-promotable in the
//!    CIB, and only while this node's partition is quorate — checked after that write, so
//!    an isolated primary (whose CIB writes reach only itself, and whose quorum is gone by
//!    the time they return) can never relax the set for itself: its commits wait. Where
//!    quorum cannot tell a partition from a peer's death (two nodes with Corosync's
//!    `two_node`: each half stays quorate), the member must moreover be confirmed down by
//!    fencing (or a clean shutdown); without fencing the set never shrinks there
//!    ([`may_leave`]).
//! 3. `on`: when no member is left (every standby down, in a quorate cluster) the primary
//!    goes on asynchronously and nobody is promotable until a standby is back in the set
//!    and caught up; `strict`: the last k members stay named, so writes wait for them.
//!
//! This module is the decision only ([`step`]), pure: no I/O, and it imports nothing of the
//! agent's. The primary's monitor gathers what it sees and carries the decision out in the
//! order invariant 2 needs (`primary.rs`).

use std::collections::BTreeMap;

use crate::pg::Lsn;

/// `synchronous_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Asynchronous replication, the agent leaves synchronous_standby_names alone (PAF's
    /// behaviour).
    Off,
    /// Synchronous while a standby is there; asynchronous, with nobody promotable, when none is.
    On,
    /// Synchronous always: without a standby, writes wait.
    Strict,
}

impl Mode {
    /// The parameter's value.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::On => "on",
            Mode::Strict => "strict",
        }
    }

    pub fn parse(v: &str) -> Option<Mode> {
        match v.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "0" => Some(Mode::Off),
            "on" | "true" | "1" => Some(Mode::On),
            "strict" => Some(Mode::Strict),
            _ => None,
        }
    }
}

/// A standby whose flushed WAL is within this many bytes of the primary's may join the
/// set: one that is further behind would make every commit wait for its catch-up.
pub const JOIN_LAG: u64 = 16 * 1024 * 1024;

/// The synchronous set as written in `synchronous_standby_names`: `ANY k (members)`, or
/// empty (asynchronous).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSet {
    pub k: usize,
    pub members: Vec<String>,
}

impl SyncSet {
    pub fn new(k: usize, mut members: Vec<String>) -> SyncSet {
        members.sort();
        members.dedup();
        let k = if members.is_empty() { 0 } else { k.clamp(1, members.len()) };
        SyncSet { k, members }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The setting's value: `ANY k ("a", "b")`, or `''` for asynchronous.
    pub fn render(&self) -> String {
        if self.members.is_empty() {
            return String::new();
        }
        let names: Vec<String> = self.members.iter().map(|m| format!("\"{}\"", m.replace('"', "\"\""))).collect();
        format!("ANY {} ({})", self.k, names.join(", "))
    }

    /// Read a value this agent wrote; `Err` for anything else (a value set by hand: a
    /// `FIRST` list, a bare list, `*`), which the agent refuses to take over silently.
    pub fn parse(v: &str) -> Result<SyncSet, String> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(SyncSet::default());
        }
        let not_ours = || format!("synchronous_standby_names = '{v}' is not of the form the agent writes (ANY k (\"node\", ...))");
        let rest = v.strip_prefix("ANY ").ok_or_else(not_ours)?;
        let (k, list) = rest.split_once('(').ok_or_else(not_ours)?;
        let k: usize = k.trim().parse().map_err(|_| not_ours())?;
        let list = list.trim_end().strip_suffix(')').ok_or_else(not_ours)?;
        let mut members = Vec::new();
        for name in list.split(',') {
            let name = name.trim();
            let unquoted = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')).map(|n| n.replace("\"\"", "\"")).unwrap_or_else(|| name.to_owned());
            if unquoted.is_empty() || unquoted == "*" {
                return Err(not_ours());
            }
            members.push(unquoted);
        }
        if k == 0 || k > members.len() {
            return Err(not_ours());
        }
        Ok(SyncSet::new(k, members))
    }
}

impl SyncSet {
    /// The set to record while this one changes into `next`: every member of either, the
    /// smaller k — it asks a promotion to compare at least as many members as either would.
    pub fn covering(&self, next: &SyncSet) -> SyncSet {
        if self.is_empty() || next.is_empty() {
            return if self.is_empty() { next.clone() } else { self.clone() };
        }
        let members: Vec<String> = self.members.iter().chain(&next.members).cloned().collect();
        SyncSet::new(self.k.min(next.k), members)
    }

    /// How many members a promotion must have compared: with `ANY k` of m members a commit
    /// is on at least k of them, so any m − k + 1 members include one that has it — and
    /// WAL being one ordered stream, the most advanced of them has every acknowledged
    /// commit. (0 for an empty set: nothing was acknowledged synchronously.)
    pub fn quorum(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            self.members.len() - self.k + 1
        }
    }

    /// Whether the members `compared` (those whose positions the election read, the
    /// candidate included) are enough ([`quorum`](Self::quorum)); why not, if not.
    pub fn enough_compared(&self, compared: &[String]) -> Result<(), String> {
        let counted: Vec<&String> = self.members.iter().filter(|m| compared.contains(m)).collect();
        if counted.len() >= self.quorum() {
            return Ok(());
        }
        let missing: Vec<&str> = self.members.iter().filter(|m| !compared.contains(m)).map(String::as_str).collect();
        Err(format!(
            "only {} of the synchronous set's {} members compared (ANY {}: {} needed); a commit may be only on {}",
            counted.len(),
            self.members.len(),
            self.k,
            self.quorum(),
            missing.join(", ")
        ))
    }
}

/// The synchronous set as the primary recorded it in the CIB for the election (its
/// `postgresql.auto.conf` dies with it): when, and the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Unix seconds: the newest record is the set in force.
    pub at: u64,
    pub set: SyncSet,
}

impl Recorded {
    pub fn encode(&self) -> String {
        format!("{} {}", self.at, self.set.render())
    }

    pub fn decode(v: &str) -> Option<Recorded> {
        let (at, set) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
        Some(Recorded { at: at.parse().ok()?, set: SyncSet::parse(set).ok()? })
    }
}

/// One node as the cluster sees it, for [`may_leave`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// In this node's partition (its Pacemaker is up and sees ours).
    pub online: bool,
    /// Lost without a clean shutdown and not fenced yet.
    pub unclean: bool,
}

/// What decides whether members may leave the set: the partition's quorum, whether the
/// cluster fences, and every node known to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub quorate: bool,
    pub fencing: bool,
    pub nodes: Vec<Member>,
}

/// Why members may not leave the set now (commits wait for them meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This partition has no quorum: the others may be promoting one of the leaving members.
    NoQuorum,
    /// Quorum cannot tell a partition from the members' death here (this partition holds
    /// half of the nodes or fewer: two nodes with Corosync's `two_node`, say), and these
    /// leaving members are lost but not fenced yet: they may be alive, cut off, and about to
    /// fence this node and be promoted.
    Unconfirmed(Vec<String>),
    /// As `Unconfirmed`, in a cluster that does not fence: their death can never be
    /// confirmed, so the set never shrinks (`paceline check` says so).
    NoFencing(Vec<String>),
}

/// In the log's words.
impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoQuorum => write!(f, "this partition has no quorum"),
            Refusal::Unconfirmed(n) => write!(f, "quorum cannot tell a partition from their death here and {} is not fenced yet", n.join(", ")),
            Refusal::NoFencing(n) => {
                write!(f, "quorum cannot tell a partition from their death here and without fencing nothing confirms that {} is down", n.join(", "))
            }
        }
    }
}

/// Whether `leaving` may leave the set (invariant 2). A member that leaves is one a
/// promotion no longer has to compare, so the cluster must be unable to promote it behind
/// this primary's back: quorum does that when this partition holds a majority of the nodes
/// (any promotion elsewhere needs quorum this partition denies it); otherwise — two nodes,
/// or a tie-breaker that leaves half of the cluster quorate — each leaving member must be
/// in this partition (it saw its score dropped) or down for sure: offline and clean, which
/// with fencing means fenced or shut down cleanly.
pub fn may_leave(m: &Membership, leaving: &[String]) -> Result<(), Refusal> {
    if !m.quorate {
        return Err(Refusal::NoQuorum);
    }
    let online = m.nodes.iter().filter(|n| n.online).count();
    if online * 2 > m.nodes.len() {
        return Ok(());
    }
    let lost: Vec<String> = leaving
        .iter()
        .filter(|l| !m.nodes.iter().any(|n| &n.name == *l && n.online))
        .filter(|l| !m.fencing || m.nodes.iter().find(|n| &n.name == *l).is_none_or(|n| n.unclean))
        .cloned()
        .collect();
    match (lost.is_empty(), m.fencing) {
        (true, _) => Ok(()),
        (false, true) => Err(Refusal::Unconfirmed(lost)),
        (false, false) => Err(Refusal::NoFencing(lost)),
    }
}

/// What the primary sees of one standby in `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub streaming: bool,
    /// PostgreSQL counts it for commits now (`sync_state` quorum or sync).
    pub counted: bool,
    pub flushed: Option<Lsn>,
}

/// The primary's decision at one monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// The set to run with. When it drops members, they must first be written
    /// non-promotable and the partition be quorate (invariant 2); otherwise `current` stays.
    pub next: SyncSet,
    /// Members leaving the set.
    pub leaving: Vec<String>,
    /// Standbys that may be promoted: counted members that flushed their join LSN.
    pub promotable: Vec<String>,
    /// The join LSNs to remember, by member (kept from `joined`, added for the newly counted).
    pub joined: BTreeMap<String, Lsn>,
    /// `strict`: members that are gone but stay named, so writes wait for them.
    pub kept_waiting: Vec<String>,
}

/// Decide the set and who is promotable. `current` is the set in force, `seen` the rows of
/// `pg_stat_replication` (cluster nodes only), `now` the primary's WAL position, `joined`
/// the join LSNs remembered from earlier monitors. `grace`: the primary was promoted a
/// moment ago, and a member that has not connected yet stays named (the standbys are
/// reconnecting to it; dropping them would make the first monitor after every switchover
/// relax the set).
pub fn step(mode: Mode, k: usize, current: &SyncSet, seen: &[Seen], now: Lsn, joined: &BTreeMap<String, Lsn>, grace: bool) -> Step {
    if mode == Mode::Off {
        return Step::default();
    }
    let row = |n: &str| seen.iter().find(|s| s.name == n);
    let healthy = |s: &Seen| s.streaming;
    let near = |s: &Seen| s.flushed.is_some_and(|f| now.0.saturating_sub(f.0) <= JOIN_LAG);

    // Members stay while they stream (or, in the grace after a promotion, until they first
    // connect); streaming standbys close enough join.
    let staying: Vec<String> = current.members.iter().filter(|m| row(m).map_or(grace, healthy)).cloned().collect();
    let gone: Vec<String> = current.members.iter().filter(|m| !staying.contains(m)).cloned().collect();
    let joining: Vec<String> = seen.iter().filter(|s| healthy(s) && near(s) && !current.members.contains(&s.name)).map(|s| s.name.clone()).collect();
    let mut members: Vec<String> = staying.iter().chain(&joining).cloned().collect();

    let mut kept_waiting = Vec::new();
    if mode == Mode::Strict && members.len() < k.max(1) {
        // Keep enough of the gone members named that k names remain: commits wait.
        for g in &gone {
            if members.len() >= k.max(1) {
                break;
            }
            members.push(g.clone());
            kept_waiting.push(g.clone());
        }
    }
    let next = SyncSet::new(k, members);
    let leaving: Vec<String> = current.members.iter().filter(|m| !next.members.contains(m)).cloned().collect();

    // Join LSNs: a member PostgreSQL counts now is remembered with the WAL position of this
    // moment; one no longer a member, or not counted, is forgotten (it joins afresh).
    let mut remembered = BTreeMap::new();
    let mut promotable = Vec::new();
    for m in &current.members {
        let Some(s) = row(m).filter(|s| healthy(s) && s.counted) else { continue };
        if !next.members.contains(m) {
            continue;
        }
        let at = *joined.get(m).unwrap_or(&now);
        remembered.insert(m.clone(), at);
        if s.flushed.is_some_and(|f| f >= at) {
            promotable.push(m.clone());
        }
    }
    promotable.sort();
    Step { next, leaving, promotable, joined: remembered, kept_waiting }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, streaming: bool, counted: bool, flushed: u64) -> Seen {
        Seen { name: name.into(), streaming, counted, flushed: Some(Lsn(flushed)) }
    }
    fn set(k: usize, m: &[&str]) -> SyncSet {
        SyncSet::new(k, m.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_promotion_compares_m_minus_k_plus_one_members() {
        let s = set(1, &["node2", "node3"]);
        assert_eq!(s.quorum(), 2);
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // node2 acknowledged first and cannot publish: node3 alone is not enough.
        let why = s.enough_compared(&names(&["node3"])).unwrap_err();
        assert!(why.contains("only 1 of the synchronous set's 2 members") && why.contains("only on node2"), "{why}");
        assert!(s.enough_compared(&names(&["node3", "node2"])).is_ok());
        // Non-members do not count.
        assert!(s.enough_compared(&names(&["node3", "node1"])).is_err());
        assert_eq!(set(2, &["a", "b", "c"]).quorum(), 2);
        assert_eq!(set(3, &["a", "b", "c"]).quorum(), 1);
        assert_eq!(SyncSet::default().quorum(), 0);
        assert!(SyncSet::default().enough_compared(&[]).is_ok());
        // While the set changes, the record covers both.
        let grown = set(1, &["node2"]).covering(&set(1, &["node2", "node3"]));
        assert_eq!(grown, set(1, &["node2", "node3"]));
        assert_eq!(set(2, &["a", "b"]).covering(&set(1, &["a", "c"])), set(1, &["a", "b", "c"]));
        assert_eq!(SyncSet::default().covering(&s), s);
        let r = Recorded { at: 1765000000, set: s.clone() };
        assert_eq!(Recorded::decode(&r.encode()), Some(r));
        assert_eq!(Recorded::decode("1765000000 "), Some(Recorded { at: 1765000000, set: SyncSet::default() }));
        assert_eq!(Recorded::decode("soon ANY 1 (a)"), None);
    }

    #[test]
    fn renders_and_parses_its_own_values_only() {
        let s = set(1, &["node3", "node2"]);
        assert_eq!(s.render(), r#"ANY 1 ("node2", "node3")"#);
        assert_eq!(SyncSet::parse(&s.render()).unwrap(), s);
        assert_eq!(SyncSet::parse("").unwrap(), SyncSet::default());
        assert_eq!(SyncSet::default().render(), "");
        assert_eq!(SyncSet::parse("ANY 2 (a, b)").unwrap(), set(2, &["a", "b"]));
        assert_eq!(set(1, &[r#"we"ird"#]).render(), r#"ANY 1 ("we""ird")"#);
        assert_eq!(SyncSet::parse(&set(1, &[r#"we"ird"#]).render()).unwrap(), set(1, &[r#"we"ird"#]));
        for hand in ["*", "node2", "FIRST 1 (node2, node3)", "node2, node3", "ANY 0 (a)", "ANY 3 (a, b)", "ANY x (a)", "ANY 1 (*)", "ANY 1 ()", "ANY 1 (a"] {
            assert!(SyncSet::parse(hand).is_err(), "{hand}");
        }
        assert_eq!(set(5, &["a", "b"]).k, 2, "k is bounded by the members");
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("off"), Some(Mode::Off));
        assert_eq!(Mode::parse(" ON "), Some(Mode::On));
        assert_eq!(Mode::parse("strict"), Some(Mode::Strict));
        for bad in ["", "sync", "quorum", "stric"] {
            assert_eq!(Mode::parse(bad), None, "{bad}");
        }
        assert_eq!(step(Mode::Off, 1, &set(1, &["a"]), &[], Lsn(0), &BTreeMap::new(), false), Step::default());
    }

    #[test]
    fn a_caught_up_standby_joins_then_becomes_promotable() {
        // Not a member yet: joins, not promotable.
        let s = step(Mode::On, 1, &SyncSet::default(), &[seen("n2", true, false, 1000)], Lsn(1000), &BTreeMap::new(), false);
        assert_eq!(s.next, set(1, &["n2"]));
        assert!(s.promotable.is_empty() && s.leaving.is_empty());
        // Counted now: its join LSN is now's position; it has flushed it.
        let s = step(Mode::On, 1, &s.next, &[seen("n2", true, true, 1500)], Lsn(1500), &s.joined, false);
        assert_eq!(s.promotable, vec!["n2"]);
        assert_eq!(s.joined.get("n2"), Some(&Lsn(1500)));
        // Join LSN kept: a member that fell behind it is not promotable (cannot happen with
        // k = members, but does with ANY 1 of 2).
        let joined = BTreeMap::from([("n2".to_string(), Lsn(2000))]);
        let s = step(Mode::On, 1, &set(1, &["n2"]), &[seen("n2", true, true, 1900)], Lsn(2500), &joined, false);
        assert!(s.promotable.is_empty());
    }

    #[test]
    fn members_not_yet_connected_stay_during_the_grace_after_a_promotion() {
        let cur = set(1, &["n1", "n3"]);
        let only3 = [seen("n3", true, true, 100)];
        let s = step(Mode::On, 1, &cur, &only3, Lsn(100), &BTreeMap::new(), true);
        assert_eq!(s.next, cur, "n1 (the demoted primary, restarting) stays named");
        assert_eq!(s.promotable, vec!["n3"]);
        let s = step(Mode::On, 1, &cur, &only3, Lsn(100), &BTreeMap::new(), false);
        assert_eq!(s.leaving, vec!["n1"], "after the grace it leaves");
        // A member that connected and stopped streaming leaves even during the grace.
        let s = step(Mode::On, 1, &cur, &[seen("n1", false, false, 50), seen("n3", true, true, 100)], Lsn(100), &BTreeMap::new(), true);
        assert_eq!(s.leaving, vec!["n1"]);
    }

    #[test]
    fn a_far_behind_standby_does_not_join() {
        let s =
            step(Mode::On, 1, &set(1, &["n2"]), &[seen("n2", true, true, 100), seen("n3", true, false, 100)], Lsn(100 + JOIN_LAG + 1), &BTreeMap::new(), false);
        assert_eq!(s.next, set(1, &["n2"]));
    }

    #[test]
    fn a_member_that_stops_streaming_leaves_and_is_not_promotable() {
        let cur = set(1, &["n2", "n3"]);
        let joined = BTreeMap::from([("n2".to_string(), Lsn(10)), ("n3".to_string(), Lsn(10))]);
        let s = step(Mode::On, 1, &cur, &[seen("n2", true, true, 500), seen("n3", false, false, 300)], Lsn(500), &joined, false);
        assert_eq!(s.next, set(1, &["n2"]));
        assert_eq!(s.leaving, vec!["n3"]);
        assert_eq!(s.promotable, vec!["n2"]);
        assert!(!s.joined.contains_key("n3"));
        // Absent from pg_stat_replication altogether: the same.
        let s = step(Mode::On, 1, &cur, &[seen("n2", true, true, 500)], Lsn(500), &joined, false);
        assert_eq!(s.leaving, vec!["n3"]);
    }

    #[test]
    fn on_goes_asynchronous_strict_keeps_waiting() {
        let cur = set(1, &["n2", "n3"]);
        let s = step(Mode::On, 1, &cur, &[], Lsn(500), &BTreeMap::new(), false);
        assert!(s.next.is_empty());
        assert_eq!(s.leaving, vec!["n2", "n3"]);
        assert!(s.promotable.is_empty());
        let s = step(Mode::Strict, 1, &cur, &[], Lsn(500), &BTreeMap::new(), false);
        assert_eq!(s.next, set(1, &["n2"]), "one name stays: commits wait for it");
        assert_eq!(s.kept_waiting, vec!["n2"]);
        assert_eq!(s.leaving, vec!["n3"]);
        assert!(s.promotable.is_empty(), "a gone member is not promotable");
        // k = 2, one standby left: strict keeps a gone one named, on runs with ANY 1.
        let seen2 = [seen("n2", true, true, 500)];
        let s = step(Mode::Strict, 2, &cur, &seen2, Lsn(500), &BTreeMap::new(), false);
        assert_eq!(s.next, set(2, &["n2", "n3"]));
        assert!(s.leaving.is_empty());
        let s = step(Mode::On, 2, &cur, &seen2, Lsn(500), &BTreeMap::new(), false);
        assert_eq!(s.next, set(1, &["n2"]));
        // A standby back after the fallback joins again.
        let s = step(Mode::On, 1, &SyncSet::default(), &[seen("n3", true, false, 500)], Lsn(500), &BTreeMap::new(), false);
        assert_eq!(s.next, set(1, &["n3"]));
    }

    #[test]
    fn members_leave_only_where_quorum_or_fencing_says_they_cannot_be_promoted() {
        let node = |name: &str, online: bool, unclean: bool| Member { name: name.into(), online, unclean };
        let leaving = vec!["n2".to_string()];
        // Three nodes, two in this partition: quorum tells, whatever n2's state.
        let three = Membership { quorate: true, fencing: false, nodes: vec![node("n1", true, false), node("n2", false, true), node("n3", true, false)] };
        assert_eq!(may_leave(&three, &leaving), Ok(()));
        assert_eq!(may_leave(&Membership { quorate: false, ..three.clone() }, &leaving), Err(Refusal::NoQuorum));
        // Two nodes (two_node: both halves quorate): n2 lost and not fenced yet — it may be
        // alive, cut off, about to fence this node and be promoted.
        let two = |fencing: bool, n2: Member| Membership { quorate: true, fencing, nodes: vec![node("n1", true, false), n2] };
        assert_eq!(may_leave(&two(true, node("n2", false, true)), &leaving), Err(Refusal::Unconfirmed(leaving.clone())));
        // Fenced (or shut down cleanly): offline and clean.
        assert_eq!(may_leave(&two(true, node("n2", false, false)), &leaving), Ok(()));
        // Without fencing, offline looks clean but proves nothing.
        assert_eq!(may_leave(&two(false, node("n2", false, false)), &leaving), Err(Refusal::NoFencing(leaving.clone())));
        // n2 in this partition (its PostgreSQL stopped, say): it saw its score dropped.
        assert_eq!(may_leave(&two(false, node("n2", true, false)), &leaving), Ok(()));
        // A name the cluster does not know is no proof of anything.
        assert_eq!(may_leave(&two(true, node("n2", false, false)), &["n9".to_string()]), Err(Refusal::Unconfirmed(vec!["n9".into()])));
        // Four nodes split two and two, one half quorate by a tie-breaker: the same rule.
        let four = Membership {
            quorate: true,
            fencing: true,
            nodes: vec![node("n1", true, false), node("n2", false, true), node("n3", true, false), node("n4", false, false)],
        };
        assert_eq!(may_leave(&four, &leaving), Err(Refusal::Unconfirmed(leaving.clone())));
        assert_eq!(may_leave(&four, &["n4".to_string()]), Ok(()));
    }
}
