//! `paceline switchover` and `paceline failover`: move the primary role, done right.
//!
//! What `pcs resource move --promoted` leaves to the operator, done here: the target is
//! checked first (online, a streaming standby, a positive promotion score — the agent's
//! own word that it may be promoted), the move is a `cli-prefer-` constraint that is always
//! removed again (once the new primary is there, on failure, on Ctrl-C), and the command
//! waits for the result and says what the cluster saw: how long no node was a writable,
//! promoted primary, and where the floating address went.
//!
//! switchover needs a healthy primary (it is demoted cleanly: pgsqlms checks that the
//! target received its last WAL); failover is for a primary that is not healthy, and
//! refuses while it is — use switchover then, which loses nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::status::{self, NodeRow, Status};

/// Why a node cannot take the primary role, or None when it can.
pub fn ineligible(n: &NodeRow) -> Option<String> {
    if !n.online {
        return Some("is offline".into());
    }
    if n.unclean {
        return Some("is lost and not fenced yet".into());
    }
    if n.standby {
        return Some("is in standby (pcs node unstandby)".into());
    }
    if n.role != "Unpromoted" {
        return Some(format!("is not a standby of the cluster (Pacemaker: {})", n.role));
    }
    if n.pg.is_some() && n.postgres != "streaming standby" {
        return Some(format!("is not a streaming standby (PostgreSQL: {})", n.postgres));
    }
    match n.score.as_deref().map(str::parse::<i64>) {
        Some(Ok(s)) if s > 0 => None,
        Some(Ok(s)) => Some(format!("has promotion score {s}: the agent does not consider it promotable (lag, or not synchronous)")),
        _ => Some("has no promotion score".into()),
    }
}

/// What will be moved where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub clone: String,
    pub from: Option<String>,
    pub to: String,
}

/// Check the request against the cluster: the plan, or why not (a sentence for the user).
pub fn plan(st: &Status, to: Option<&str>, failover: bool) -> Result<Plan, String> {
    let verb = if failover { "failover" } else { "switchover" };
    if !st.quorate {
        return Err(format!("{verb} refused: this node's partition has no quorum (run it on a node of the majority)"));
    }
    let clone = st.clone.clone().ok_or_else(|| format!("{verb} refused: no promotable pgsqlms resource in the configuration"))?;
    let primary = st.nodes.iter().find(|n| n.role == "Promoted");
    let healthy = primary.is_some_and(|p| p.online && (p.pg.is_none() || p.postgres == "primary"));
    match (failover, primary) {
        (false, None) => return Err("switchover refused: there is no primary to switch over from (paceline failover promotes a standby)".into()),
        (false, Some(p)) if !healthy => {
            return Err(format!("switchover refused: the primary {} is not healthy (PostgreSQL: {}); use paceline failover", p.name, p.postgres))
        }
        (true, Some(p)) if healthy => {
            return Err(format!("failover refused: the primary {} is healthy; paceline switchover moves it without losing a commit", p.name))
        }
        _ => {}
    }
    let from = primary.map(|p| p.name.clone());
    let to = match to {
        Some(t) => {
            let n = st.nodes.iter().find(|n| n.name == t).ok_or_else(|| format!("{verb} refused: no node named {t} in the cluster"))?;
            if Some(t) == from.as_deref() {
                return Err(format!("{verb} refused: {t} is the primary already"));
            }
            if let Some(why) = ineligible(n) {
                return Err(format!("{verb} refused: {t} {why}"));
            }
            t.to_owned()
        }
        None => {
            let mut eligible: Vec<&NodeRow> = st.nodes.iter().filter(|n| ineligible(n).is_none()).collect();
            eligible.sort_by_key(|n| std::cmp::Reverse(n.score.as_deref().and_then(|s| s.parse::<i64>().ok()).unwrap_or(i64::MIN)));
            match eligible.first() {
                Some(n) => n.name.clone(),
                None => {
                    let why: Vec<String> = st
                        .nodes
                        .iter()
                        .filter(|n| Some(&n.name) != from.as_ref())
                        .map(|n| format!("{} {}", n.name, ineligible(n).unwrap_or_default()))
                        .collect();
                    return Err(format!("{verb} refused: no standby is eligible ({})", why.join("; ")));
                }
            }
        }
    };
    Ok(Plan { clone, from, to })
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Removes the move's constraint however the command ends (but a SIGKILL).
struct Constraint<'a>(&'a str);

impl Drop for Constraint<'_> {
    fn drop(&mut self) {
        if let Err(e) = crate::pacemaker::resource::clear(self.0) {
            eprintln!("paceline: could not remove the move's constraint: {} — run: crm_resource --clear --resource {}", e.reason, self.0);
        }
    }
}

/// Run it: the lines to print, or why it failed.
pub fn run(to: Option<&str>, failover: bool, timeout: Duration) -> Result<String> {
    let verb = if failover { "failover" } else { "switchover" };
    let st = status::gather().map_err(|e| anyhow::anyhow!("{}", e.exit_reason()))?;
    let p = plan(&st, to, failover).map_err(|e| anyhow::anyhow!(e))?;
    {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        let act = SigAction::new(SigHandler::Handler(on_interrupt), SaFlags::empty(), SigSet::empty());
        for sig in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only stores to an atomic.
            unsafe { sigaction(sig, &act) }.context("signal handler")?;
        }
    }
    let t0 = Instant::now();
    crate::pacemaker::resource::move_promoted(&p.clone, &p.to).map_err(|e| anyhow::anyhow!("{}", e.exit_reason()))?;
    let constraint = Constraint(&p.clone);
    let mut no_primary_since: Option<Instant> = None;
    let mut polls = 0u32;
    let (done_at, last) = loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            drop(constraint);
            bail!("{verb} interrupted: the move's constraint is removed; the cluster goes on from where it is (paceline status)");
        }
        if t0.elapsed() > timeout {
            drop(constraint);
            bail!(
                "{verb} timed out after {} s: {} is not a writable primary; the constraint is removed (paceline status, crm_mon -1rf)",
                timeout.as_secs(),
                p.to
            );
        }
        let Ok(now) = status::gather() else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        polls += 1;
        let writable_primary = |n: &NodeRow| n.role == "Promoted" && (n.pg.is_none() || n.postgres == "primary");
        if !now.nodes.iter().any(writable_primary) {
            no_primary_since.get_or_insert_with(Instant::now);
        }
        if now.nodes.iter().any(|n| n.name == p.to && writable_primary(n)) {
            break (Instant::now(), now);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(constraint);
    let mut out = format!(
        "{verb}: {} -> {} done in {:.1} s; no writable primary for {} (as the cluster saw it, {polls} looks)\n",
        p.from.as_deref().unwrap_or("(none)"),
        p.to,
        done_at.duration_since(t0).as_secs_f64(),
        no_primary_since.map(|t| format!("~{} ms", done_at.duration_since(t).as_millis())).unwrap_or_else(|| "less than a look".into()),
    );
    // The floating address follows the primary (its order constraint): say where it is.
    // Looked at again once the move is cleared: the verdict is of the cluster as left.
    let mut st = status::gather().unwrap_or(last);
    let until = Instant::now() + Duration::from_secs(10);
    while st.addresses.iter().any(|a| a.nodes != [p.to.clone()]) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(s) = status::gather() {
            st = s;
        }
    }
    for a in &st.addresses {
        out += &format!("{} ({}) on {}\n", a.resource, a.address, if a.nodes.is_empty() { "no node".into() } else { a.nodes.join(", ") });
    }
    out += &format!("constraint removed; {}\n", st.verdict());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::probe::PgNode;

    fn st() -> Status {
        let row = |n: &str, role: &str, pg: &str, score: &str| NodeRow {
            name: n.into(),
            online: true,
            role: role.into(),
            postgres: pg.into(),
            pg: Some(PgNode::default()),
            score: Some(score.into()),
            ..Default::default()
        };
        Status {
            resource: Some("pgsqld".into()),
            clone: Some("pgsqld-clone".into()),
            quorate: true,
            nodes: vec![
                row("node1", "Promoted", "primary", "1001"),
                row("node2", "Unpromoted", "streaming standby", "990"),
                row("node3", "Unpromoted", "streaming standby", "1000"),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn picks_the_best_standby_and_checks_a_named_one() {
        let s = st();
        assert_eq!(plan(&s, None, false), Ok(Plan { clone: "pgsqld-clone".into(), from: Some("node1".into()), to: "node3".into() }));
        assert_eq!(plan(&s, Some("node2"), false).unwrap().to, "node2");
        assert!(plan(&s, Some("node1"), false).unwrap_err().contains("is the primary already"));
        assert!(plan(&s, Some("node9"), false).unwrap_err().contains("no node named node9"));
        let mut lagging = st();
        lagging.nodes[1].score = Some("-1000".into());
        assert!(plan(&lagging, Some("node2"), false).unwrap_err().contains("promotion score -1000"));
        lagging.nodes[2].postgres = "standby, not streaming".into();
        let e = plan(&lagging, None, false).unwrap_err();
        assert!(e.contains("no standby is eligible") && e.contains("node3 is not a streaming standby"), "{e}");
    }

    #[test]
    fn switchover_needs_a_healthy_primary_failover_an_unhealthy_one() {
        assert!(plan(&st(), None, true).unwrap_err().contains("is healthy; paceline switchover"));
        let mut down = st();
        down.nodes[0].postgres = "stopped".into();
        assert!(plan(&down, None, false).unwrap_err().contains("use paceline failover"));
        assert_eq!(plan(&down, None, true).unwrap().to, "node3");
        let mut none = st();
        none.nodes[0].role = "Unpromoted".into();
        none.nodes[0].postgres = "streaming standby".into();
        assert!(plan(&none, None, false).unwrap_err().contains("no primary to switch over from"));
        let mut lost = st();
        lost.quorate = false;
        assert!(plan(&lost, None, false).unwrap_err().contains("no quorum"));
    }
}
