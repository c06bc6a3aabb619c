//! The synchronous-commit guard: which waiting sessions to end, and when.
//!
//! A commit waiting for its synchronous standbys shows `wait_event = 'SyncRep'` in
//! `pg_stat_activity`. A healthy standby answers the WAL that commit sent within
//! milliseconds (`pg_stat_replication`'s reply time and flush position change). So: a
//! session that has waited `limit` or longer while fewer than k members of the set have
//! answered since its wait began is waiting for standbys that are not there — it is ended
//! (`pg_terminate_backend`), and its client gets an error instead of the success a cancel
//! would give it. Times are this process's own clock (no comparison with the standbys'
//! clocks); a slow but alive standby keeps answering and never triggers it.
//!
//! The bound: a client whose own cancel fires before `limit` plus one poll is not
//! covered; docs/pgsqlms.md says to keep client timeouts above it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A session waiting in SyncRep: its pid and what identifies this transaction of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Waiter {
    pub pid: i32,
    pub xact: String,
}

/// A member of the synchronous set as `pg_stat_replication` shows it: its name and its
/// last reply (reply time and flush position, compared only for change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub reply: String,
}

/// What the guard remembers between polls.
#[derive(Debug, Default)]
pub struct Guard {
    limit: Duration,
    waiting_since: HashMap<Waiter, Instant>,
    /// Each member's last reply and when it was first seen.
    replies: HashMap<String, (String, Instant)>,
}

impl Guard {
    pub fn new(limit: Duration) -> Guard {
        Guard { limit, ..Guard::default() }
    }

    /// One poll at `now`: the waiters, the members, and k of `ANY k`. Returns the pids to
    /// end. A set of 0 (asynchronous) has no waiters worth watching.
    pub fn observe(&mut self, now: Instant, waiters: &[Waiter], members: &[Member], k: usize) -> Vec<i32> {
        for m in members {
            match self.replies.get(&m.name) {
                Some((reply, _)) if *reply == m.reply => {}
                _ => {
                    self.replies.insert(m.name.clone(), (m.reply.clone(), now));
                }
            }
        }
        self.replies.retain(|n, _| members.iter().any(|m| &m.name == n));
        self.waiting_since.retain(|w, _| waiters.contains(w));
        let mut end = Vec::new();
        if k == 0 || self.limit.is_zero() {
            return end;
        }
        for w in waiters {
            let since = *self.waiting_since.entry(w.clone()).or_insert(now);
            if now.duration_since(since) < self.limit {
                continue;
            }
            let answered = self.replies.values().filter(|(_, changed)| *changed > since).count();
            if answered < k {
                end.push(w.pid);
            }
        }
        end
    }
}

/// How many standbys a commit waits for under `synchronous_standby_names`: k of
/// `ANY k (...)` / `FIRST k (...)` / `k (...)`, 1 for a bare list, 0 when empty.
pub fn required_acks(setting: &str) -> usize {
    let v = setting.trim();
    if v.is_empty() {
        return 0;
    }
    let rest = v.strip_prefix("ANY ").or_else(|| v.strip_prefix("FIRST ")).or_else(|| v.strip_prefix("any ")).or_else(|| v.strip_prefix("first ")).unwrap_or(v);
    match rest.split_once('(') {
        Some((k, _)) => k.trim().parse().unwrap_or(1),
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(pid: i32, x: &str) -> Waiter {
        Waiter { pid, xact: x.into() }
    }
    fn m(name: &str, reply: &str) -> Member {
        Member { name: name.into(), reply: reply.into() }
    }
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ends_a_wait_only_when_the_standbys_stopped_answering() {
        let t0 = Instant::now();
        let mut g = Guard::new(500 * MS);
        let members = [m("n2", "r1"), m("n3", "r1")];
        assert!(g.observe(t0, &[], &members, 1).is_empty());
        // A commit starts waiting; nobody answers it.
        assert!(g.observe(t0 + 100 * MS, &[w(7, "x1")], &members, 1).is_empty(), "not before the limit");
        assert!(g.observe(t0 + 550 * MS, &[w(7, "x1")], &members, 1).is_empty(), "the limit counts from the wait's start");
        assert_eq!(g.observe(t0 + 650 * MS, &[w(7, "x1")], &members, 1), vec![7]);
    }

    #[test]
    fn a_slow_standby_that_answers_keeps_its_waiters() {
        let t0 = Instant::now();
        let mut g = Guard::new(500 * MS);
        g.observe(t0, &[w(7, "x1")], &[m("n2", "r1")], 1);
        // n2 answers (for older WAL) while the commit still waits.
        g.observe(t0 + 200 * MS, &[w(7, "x1")], &[m("n2", "r2")], 1);
        assert!(g.observe(t0 + 900 * MS, &[w(7, "x1")], &[m("n2", "r2")], 1).is_empty());
        // k = 2: one answer is not enough.
        let mut g = Guard::new(500 * MS);
        g.observe(t0, &[w(8, "x")], &[m("n2", "a"), m("n3", "a")], 2);
        g.observe(t0 + 100 * MS, &[w(8, "x")], &[m("n2", "b"), m("n3", "a")], 2);
        assert_eq!(g.observe(t0 + 600 * MS, &[w(8, "x")], &[m("n2", "b"), m("n3", "a")], 2), vec![8]);
    }

    #[test]
    fn a_new_transaction_of_the_same_session_waits_afresh() {
        let t0 = Instant::now();
        let mut g = Guard::new(500 * MS);
        g.observe(t0, &[w(7, "x1")], &[], 1);
        g.observe(t0 + 400 * MS, &[], &[], 1);
        assert!(g.observe(t0 + 600 * MS, &[w(7, "x2")], &[], 1).is_empty());
        assert_eq!(g.observe(t0 + 1200 * MS, &[w(7, "x2")], &[], 1), vec![7], "no member at all");
    }

    #[test]
    fn acks_required_by_the_setting() {
        for (v, k) in [("", 0), ("ANY 1 (\"n2\", \"n3\")", 1), ("ANY 2 (a, b, c)", 2), ("FIRST 2 (a, b)", 2), ("2 (a, b)", 2), ("a, b", 1), ("*", 1)] {
            assert_eq!(required_acks(v), k, "{v}");
        }
    }

    #[test]
    fn asynchronous_or_disabled_does_nothing() {
        let t0 = Instant::now();
        let mut g = Guard::new(500 * MS);
        g.observe(t0, &[w(7, "x")], &[], 0);
        assert!(g.observe(t0 + 5000 * MS, &[w(7, "x")], &[], 0).is_empty());
        let mut g = Guard::new(Duration::ZERO);
        g.observe(t0, &[w(7, "x")], &[], 1);
        assert!(g.observe(t0 + 5000 * MS, &[w(7, "x")], &[], 1).is_empty());
    }
}
