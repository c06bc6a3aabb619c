//! Choosing the standby to promote, and refusing unsafe promotions.
//!
//! Pacemaker promotes the node with the highest score, but scores are only as fresh as
//! the primary's last monitor — and after a primary crash, nobody refreshes them. So in the
//! pre-promote notification every standby publishes where it is (timeline and WAL received)
//! as a private node attribute; the node Pacemaker chose compares them in `promote`, and
//! if another standby is ahead it hands over: it raises that node's score, lowers its own,
//! and fails its promote with the reason, so Pacemaker promotes the better one.
//!
//! A switchover (one primary demoted, another node promoted) has a stronger rule: the
//! demoted primary's clean shutdown wrote a shutdown checkpoint, which `demote` publishes;
//! the new primary must have received it, or acknowledged writes could be missing from it.

use std::time::{Duration, Instant};

use super::Config;
use crate::ocf::OcfError;
use crate::ocf_debug;
use crate::pacemaker;
use crate::pg::Lsn;

/// Where a node's WAL stands: timeline first, then position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub timeline: u32,
    pub lsn: Lsn,
}

impl Position {
    /// The attribute value, `timeline#lsn` with the LSN in decimal (as PAF writes it).
    pub fn encode(&self) -> String {
        format!("{}#{}", self.timeline, self.lsn.0)
    }
    pub fn decode(v: &str) -> Option<Position> {
        let (tl, lsn) = v.trim().split_once('#')?;
        Some(Position { timeline: tl.parse().ok()?, lsn: Lsn(lsn.parse().ok()?) })
    }
}

/// Whether a node whose last record is at `lsn` on timeline `mine` lies on the history of
/// timeline `newest`, given `newest`'s history file (PostgreSQL's `tli<TAB>switchpoint<TAB>
/// reason` lines, one per ancestor): on the newest timeline itself, or on an ancestor at or
/// before the point where that ancestor ended. A record past that point is WAL the newest
/// timeline never had — the node diverged (its own shutdown checkpoint, or commits of a
/// primary that was cut off) — and its position, however far, is no candidate's: promoting
/// it would drop every commit of the newest timeline after the fork. A timeline the history
/// does not list is a branch off it: diverged too. An unreadable history: `Err`.
pub fn on_history(mine: u32, lsn: Lsn, newest: u32, history: &str) -> Result<bool, String> {
    if mine >= newest {
        return Ok(true);
    }
    for line in history.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut f = line.split_whitespace();
        let (Some(tli), Some(at)) = (f.next(), f.next()) else { return Err(format!("history line '{line}' is not 'timeline switchpoint'")) };
        let tli: u32 = tli.parse().map_err(|_| format!("history line '{line}': '{tli}' is not a timeline"))?;
        let at: Lsn = at.parse().map_err(|e| format!("history line '{line}': {e}"))?;
        if tli == mine {
            return Ok(lsn <= at);
        }
    }
    Ok(false)
}

/// Where a standby stands for the election, as it publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// On the newest timeline's history: a candidate.
    Candidate(Position),
    /// Past the newest timeline's fork ([`on_history`]): it holds no commit of the newest
    /// timeline after the fork (so it counts as compared), and is no candidate.
    Diverged(Position),
}

impl Standing {
    /// `timeline#lsn` for a candidate (PAF's form), `diverged#timeline#lsn` otherwise (which
    /// an older reader takes for no position at all).
    pub fn encode(&self) -> String {
        match self {
            Standing::Candidate(p) => p.encode(),
            Standing::Diverged(p) => format!("diverged#{}", p.encode()),
        }
    }
    pub fn decode(v: &str) -> Option<Standing> {
        match v.trim().strip_prefix("diverged#") {
            Some(rest) => Position::decode(rest).map(Standing::Diverged),
            None => Position::decode(v).map(Standing::Candidate),
        }
    }
}

/// The best node among `candidates` (ties keep `me`, then the first by name).
pub fn best<'a>(me: &'a str, candidates: &'a [(String, Position)]) -> Option<&'a (String, Position)> {
    candidates.iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| (a.0 == me).cmp(&(b.0 == me))).then_with(|| b.0.cmp(&a.0)))
}

/// Attribute names, suffixed with the resource like PAF's.
pub fn attr(cfg: &Config, what: &str) -> String {
    format!("{what}-{}", cfg.resource)
}

/// How long a write to the attribute manager may take to be read back, at most (less when
/// the action has less left).
const CONFIRM: Duration = Duration::from_secs(5);

/// Publish a private, reboot-lifetime attribute of node `me` (this node), and read it back
/// until the attribute manager holds it: `attrd_updater --update` returns once the request
/// is sent, not applied (Pacemaker 2.1.5 has no `--wait`), and a reader that wins that race
/// — promote reading `cancel_switchover` or `nodes` — would decide on what is not there
/// yet. Not sending is an error; a value sent but not read back within [`CONFIRM`] (or the
/// action's time) is logged, not an error: the readers wait for what they need, and a
/// notification that stopped there would publish nothing more (a busy attribute manager
/// during a membership change must not cost the election the rest of its data).
pub fn publish(name: &str, me: &str, value: &str) -> Result<(), OcfError> {
    pacemaker::attrs::publish(name, value)?;
    if let Err(why) = confirm(name, me, |v| v == Some(value)) {
        crate::ocf_warn!("{name}={value} was sent but not read back from the attribute manager: {why}");
    }
    Ok(())
}

/// Delete private attributes of node `me` (this node) and read back until they are gone:
/// a stale value from an earlier round must not stand for this round's (a stale
/// `cancel_switchover` would cancel a good promotion, a stale position decide an election).
///
/// An attribute manager that did not take the deletions (it does not answer) would not
/// answer the reads either: nothing is read back then, and the notification goes on at once
/// (its publishing fails the same way) instead of spending seconds per attribute — the
/// promotion waiting on it learns sooner that this node has no position.
pub fn forget_confirmed(names: &[String], me: &str) {
    if let Err(e) = forget_all(names) {
        crate::ocf_warn!("the attribute manager did not take the deletion of this node's election attributes ({}): not reading them back", e.reason);
        return;
    }
    for name in names {
        if let Err(why) = confirm(name, me, |v| v.is_none()) {
            crate::ocf_warn!("{name} was deleted but still reads back: {why}");
        }
    }
}

/// Poll `me`'s private attribute `name` until `wanted` says yes of its value, within
/// [`CONFIRM`] cut to what is left of the action; why not, if it never did.
fn confirm(name: &str, me: &str, wanted: impl Fn(Option<&str>) -> bool) -> Result<(), String> {
    let until = Instant::now() + crate::ocf::deadline::bound(CONFIRM);
    loop {
        let why = match pacemaker::attrs::private(name, me) {
            Ok(v) if wanted(v.as_deref()) => return Ok(()),
            Ok(v) => format!("it reads {v:?}"),
            Err(e) => e.reason,
        };
        if Instant::now() >= until {
            return Err(why);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Delete a private attribute of this node (a failure is logged at debug level and
/// returned: a stale value is what the callers guard against, and they read it again).
pub fn forget(name: &str) -> Result<(), OcfError> {
    pacemaker::attrs::forget(name).inspect_err(|e| ocf_debug!("cannot delete {name}: {}", e.reason))
}

/// [`forget`] several attributes at once (one attrd_updater each, in parallel: the
/// post-promote notification is on the way to the VIP's start).
pub fn forget_all(names: &[String]) -> Result<(), OcfError> {
    std::thread::scope(|s| {
        let all: Vec<_> = names.iter().map(|name| s.spawn(move || forget(name))).collect();
        all.into_iter().try_for_each(|h| h.join().unwrap_or_else(|_| Err(OcfError::generic("a deletion panicked"))))
    })
}

/// Read node `node`'s private attribute, waiting until `until` for it to appear.
pub fn read(name: &str, node: &str, until: Instant) -> Option<String> {
    loop {
        match pacemaker::attrs::private(name, node) {
            Ok(Some(v)) => return Some(v),
            Ok(None) => {}
            Err(e) => ocf_debug!("{}", e.reason),
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(tl: u32, lsn: u64) -> Position {
        Position { timeline: tl, lsn: Lsn(lsn) }
    }

    #[test]
    fn a_position_past_the_fork_is_off_the_newest_history() {
        // Timeline 5 forked from 4 at 0/402FB58, 4 from 1 at 0/3000000.
        let h = "1\t0/3000000\tno recovery target specified\n\n4\t0/402FB58\tno recovery target specified\n";
        let at = |s: &str| s.parse::<Lsn>().unwrap();
        // The lab's case: the ex-primary's own shutdown checkpoint on 4, past the fork.
        assert_eq!(on_history(4, at("0/402FBD0"), 5, h), Ok(false));
        assert_eq!(on_history(4, at("0/402FB58"), 5, h), Ok(true), "up to the fork: on the history");
        assert_eq!(on_history(4, at("0/4000000"), 5, h), Ok(true));
        assert_eq!(on_history(1, at("0/3000001"), 5, h), Ok(false), "diverged by transactions on 1");
        assert_eq!(on_history(5, at("9/0"), 5, h), Ok(true), "on the newest timeline itself");
        assert_eq!(on_history(3, at("0/1"), 5, h), Ok(false), "a branch the history does not list");
        assert!(on_history(4, at("0/1"), 5, "4 nonsense").is_err());
    }

    #[test]
    fn standings_round_trip() {
        for s in [Standing::Candidate(pos(5, 42)), Standing::Diverged(pos(4, 0x402FBD0))] {
            assert_eq!(Standing::decode(&s.encode()), Some(s));
        }
        assert_eq!(Position::decode(&Standing::Diverged(pos(4, 1)).encode()), None, "an older reader sees no position");
    }

    #[test]
    fn encoding_round_trips() {
        let p = pos(3, 0x16_B374_D848);
        assert_eq!(p.encode(), "3#97500059720");
        assert_eq!(Position::decode(&p.encode()), Some(p));
        for bad in ["", "3", "#1", "3#", "x#1", "3#y"] {
            assert_eq!(Position::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn timeline_beats_position() {
        let c = vec![("n1".to_string(), pos(2, 100)), ("n2".to_string(), pos(3, 50)), ("n3".to_string(), pos(2, 900))];
        assert_eq!(best("n1", &c).unwrap().0, "n2");
    }

    #[test]
    fn ties_keep_the_designated_node() {
        let c = vec![("n1".to_string(), pos(2, 100)), ("n2".to_string(), pos(2, 100))];
        assert_eq!(best("n2", &c).unwrap().0, "n2");
        assert_eq!(best("n1", &c).unwrap().0, "n1");
        let c = vec![("n1".to_string(), pos(2, 100)), ("n2".to_string(), pos(2, 101))];
        assert_eq!(best("n1", &c).unwrap().0, "n2");
        assert!(best("n1", &[]).is_none());
    }
}
