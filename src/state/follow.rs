//! Instant reconnect: a standby follows a new primary the moment it can be reached.
//!
//! Why: when a standby's walreceiver loses its primary (a switchover shuts it down, a
//! failover moves the VIP), PostgreSQL's startup process waits `wal_retrieve_retry_interval`
//! (5 s by default) before it tries to stream again — and with synchronous replication the
//! new primary's commits wait for that standby. That wait is interruptible: the startup
//! process's SIGHUP handler wakes it, and the next attempt starts at once (measured on
//! PostgreSQL 15: streaming again 22 ms after `pg_reload_conf()`, 4.5 s without). So while
//! the local instance is a standby without a walreceiver, the service probes the address
//! `primary_conninfo` names (a TCP connect, [`PROBE_TIMEOUT`], every [`PROBE_EVERY`]) and,
//! once something accepts there, calls `pg_reload_conf()` — the whole cost of the feature.
//!
//! What it never does: change a setting (a reload re-reads the files as they are), nudge a
//! standby whose walreceiver runs (connecting, streaming or waiting for a timeline switch:
//! nothing to wake), or keep nudging a target that accepts TCP but not replication (an
//! HAProxy port with no backend, a standby): each nudge that did not lead to streaming
//! doubles the pause before the next one ([`FIRST_HOLD`] up to [`LAST_HOLD`]), so a
//! standby that cannot follow costs a reload line in its log a minute, not a second.
//! Only literal addresses are probed (`hostaddr`, or a `host` that is an IP address): a
//! name would need a DNS lookup on the service's poll, which nothing bounds; with a name,
//! or a socket directory, the standby retries on PostgreSQL's own schedule.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::pg::conninfo::ConnInfo;

/// How often a standby without a walreceiver probes its primary's address.
pub const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long one probe waits for the TCP handshake (an address nobody holds yet, as a VIP
/// in flight, never answers: the probe must not hold the service's poll longer).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(50);
/// The pause after a first nudge, doubled after each nudge that did not lead to streaming.
pub const FIRST_HOLD: Duration = Duration::from_secs(1);
pub const LAST_HOLD: Duration = Duration::from_secs(64);

/// The addresses a standby streams from, read from `primary_conninfo`
/// ([`ConnInfo::literal_addresses`]: names and socket directories left out).
pub fn targets(primary_conninfo: &str) -> Vec<SocketAddr> {
    ConnInfo::parse(primary_conninfo).map(|c| c.literal_addresses()).unwrap_or_default()
}

/// Whether something accepts TCP connections at one of `addrs` now.
pub fn accepts(addrs: &[SocketAddr]) -> bool {
    addrs.iter().any(|a| TcpStream::connect_timeout(a, PROBE_TIMEOUT).is_ok())
}

/// One standby's nudging, from poll to poll.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The addresses probed (read again after each nudge: a reload may change them).
    targets: Option<Vec<SocketAddr>>,
    next_probe: Option<Instant>,
    hold: Duration,
    held_until: Option<Instant>,
}

impl Default for Follow {
    fn default() -> Self {
        Follow { targets: None, next_probe: None, hold: FIRST_HOLD, held_until: None }
    }
}

impl Follow {
    /// One poll. `without_receiver`: the instance is a standby with no walreceiver.
    /// `read_targets` is asked once until the next nudge, `probe` at most every
    /// [`PROBE_EVERY`]. Returns whether to nudge (`pg_reload_conf()`) now.
    pub fn step(
        &mut self,
        now: Instant,
        without_receiver: bool,
        read_targets: impl FnOnce() -> Vec<SocketAddr>,
        probe: impl FnOnce(&[SocketAddr]) -> bool,
    ) -> bool {
        if !without_receiver {
            // A walreceiver runs (connecting, streaming, waiting): nothing to wake.
            return false;
        }
        if self.next_probe.is_some_and(|t| now < t) || self.held_until.is_some_and(|t| now < t) {
            return false;
        }
        self.next_probe = Some(now + PROBE_EVERY);
        let targets = self.targets.get_or_insert_with(read_targets);
        if targets.is_empty() || !probe(targets) {
            return false;
        }
        self.held_until = Some(now + self.hold);
        self.hold = (self.hold * 2).min(LAST_HOLD);
        // Read again after the hold: a reload may have changed primary_conninfo.
        self.targets = None;
        true
    }

    /// A walreceiver streams: whatever was nudged worked, the pause starts over.
    pub fn streaming(&mut self) {
        *self = Follow::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_are_the_literal_addresses_libpq_would_try() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(targets("host=192.0.2.100 port=5432 user=replicator application_name=node1"), vec![a("192.0.2.100:5432")]);
        assert_eq!(targets("host=192.0.2.100 user=replicator"), vec![a("192.0.2.100:5432")]);
        assert_eq!(targets("host=db.example hostaddr=192.0.2.7 port=6432"), vec![a("192.0.2.7:6432")]);
        assert_eq!(targets("host=192.0.2.1,192.0.2.2 port=5432,5433"), vec![a("192.0.2.1:5432"), a("192.0.2.2:5433")]);
        assert_eq!(targets("host=192.0.2.1,db.example port=5433"), vec![a("192.0.2.1:5433")]);
        assert_eq!(targets("host='2001:db8::5' port=5432"), vec![a("[2001:db8::5]:5432")]);
        for none in ["", "host=/run/postgresql", "host=primary.example", "host=192.0.2.1 port=x", "host='unclosed"] {
            assert!(targets(none).is_empty(), "{none}");
        }
    }

    #[test]
    fn a_standby_without_receiver_is_nudged_once_its_primary_answers_then_backs_off() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let addr = vec!["192.0.2.100:5432".parse().unwrap()];
        let mut f = Follow::default();
        let mut reads = 0;
        // Nobody answers yet: probes every PROBE_EVERY, no nudge; the target read once.
        assert!(!f.step(
            at(0),
            true,
            || {
                reads += 1;
                addr.clone()
            },
            |_| false
        ));
        assert!(!f.step(at(50), true, || panic!("read again"), |_| panic!("probed within PROBE_EVERY")));
        assert!(!f.step(at(100), true, || panic!("read again"), |_| false));
        assert_eq!(reads, 1);
        // It answers: one nudge, then nothing for FIRST_HOLD.
        assert!(f.step(at(200), true, || panic!("read again"), |_| true));
        assert!(!f.step(at(700), true, || panic!("read again"), |_| panic!("probed while held")));
        // Still no receiver after the hold: nudged again (the target read again), then held
        // twice as long.
        assert!(f.step(at(1200), true, || addr.clone(), |_| true));
        assert!(!f.step(at(3100), true, || panic!("read while held"), |_| panic!("held 2 s")));
        assert!(f.step(at(3200), true, || addr.clone(), |_| true));
        // A receiver runs: nothing. Then it streams: the next episode starts afresh (no hold).
        assert!(!f.step(at(3300), false, || panic!("read"), |_| panic!("probed")));
        f.streaming();
        assert!(f.step(at(3400), true, || addr.clone(), |_| true));
    }

    #[test]
    fn a_receiver_that_runs_is_never_nudged_and_no_target_means_no_nudge() {
        let t0 = Instant::now();
        let mut f = Follow::default();
        assert!(!f.step(t0, false, || panic!("read"), |_| panic!("probed")));
        assert!(!f.step(t0, true, Vec::new, |_| panic!("nothing to probe")));
        let mut h = Follow::default();
        for i in 0..20 {
            h.step(t0 + Duration::from_secs(i * 100), true, || vec!["192.0.2.1:5432".parse().unwrap()], |_| true);
        }
        assert_eq!(h.hold, LAST_HOLD);
    }
}
