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
//! The other way a standby stays behind: a walreceiver whose connection attempt hangs
//! (PostgreSQL's walreceiver ignores `connect_timeout`; packets sent to a VIP that just
//! moved can vanish without a reset, and TCP takes minutes to give up). One seen
//! establishing its connection for [`STUCK_CONNECT`] is ended with SIGTERM — through a
//! pidfd, after checking it is still that walreceiver — and the standby tries again.
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
/// Short: a nudge can come too early — the old primary, shutting down for a switchover,
/// still accepts TCP on the VIP and then refuses the standby — and the next one must not
/// wait long (a 1 s first pause cost synchronous switchovers up to a second in the lab).
pub const FIRST_HOLD: Duration = Duration::from_millis(250);
pub const LAST_HOLD: Duration = Duration::from_secs(64);
/// How long a walreceiver may take to establish its connection. PostgreSQL's walreceiver
/// ignores `connect_timeout` (it polls libpq without a deadline), so one whose packets go
/// to an address that just moved — a VIP in flight, its old holder dropping them without
/// a reset — waits for TCP to give up: minutes (seen in the lab: 6 min). Past this, it is
/// ended (SIGTERM), and the standby tries again.
pub const STUCK_CONNECT: Duration = Duration::from_secs(10);

/// The addresses a standby streams from, read from `primary_conninfo`
/// ([`ConnInfo::literal_addresses`]: names and socket directories left out).
pub fn targets(primary_conninfo: &str) -> Vec<SocketAddr> {
    ConnInfo::parse(primary_conninfo).map(|c| c.literal_addresses()).unwrap_or_default()
}

/// Whether something accepts TCP connections at one of `addrs` now.
pub fn accepts(addrs: &[SocketAddr]) -> bool {
    addrs.iter().any(|a| TcpStream::connect_timeout(a, PROBE_TIMEOUT).is_ok())
}

/// The walreceiver's wait event while it connects, in lower case: `LibPQWalReceiverConnect`
/// up to PostgreSQL 16, `LibpqwalreceiverConnect` from 17 (whose wait event names are
/// generated from a list), so it is compared without case.
pub const CONNECT_WAIT_EVENT: &str = "libpqwalreceiverconnect";

/// The walreceiver, as `pg_stat_activity` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// None runs (the startup process waits, or is about to start one).
    None,
    /// It is establishing its connection ([`CONNECT_WAIT_EVENT`]); its pid.
    Connecting(i32),
    /// Connected: streaming, or waiting on its primary or for a timeline switch.
    Running,
}

/// What to do on this poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Nothing,
    /// `pg_reload_conf()`: end the startup process's retry wait.
    Nudge,
    /// End the walreceiver with this pid: its connection attempt is stuck.
    EndStuck(i32),
}

/// One standby's nudging, from poll to poll.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The addresses probed (read again after each nudge: a reload may change them).
    targets: Option<Vec<SocketAddr>>,
    next_probe: Option<Instant>,
    hold: Duration,
    held_until: Option<Instant>,
    /// The walreceiver seen connecting, and since when.
    connecting: Option<(i32, Instant)>,
}

impl Default for Follow {
    fn default() -> Self {
        Follow { targets: None, next_probe: None, hold: FIRST_HOLD, held_until: None, connecting: None }
    }
}

impl Follow {
    /// One poll. `receiver`: the standby's walreceiver (on a primary, [`Receiver::Running`]:
    /// nothing to do). `read_targets` is asked once until the next nudge, `probe` at most
    /// every [`PROBE_EVERY`].
    pub fn step(&mut self, now: Instant, receiver: Receiver, read_targets: impl FnOnce() -> Vec<SocketAddr>, probe: impl FnOnce(&[SocketAddr]) -> bool) -> Act {
        match receiver {
            Receiver::Running => {
                self.connecting = None;
                return Act::Nothing;
            }
            Receiver::Connecting(pid) => {
                let since = match self.connecting {
                    Some((p, t)) if p == pid => t,
                    _ => {
                        self.connecting = Some((pid, now));
                        now
                    }
                };
                if now.duration_since(since) >= STUCK_CONNECT {
                    self.connecting = None;
                    return Act::EndStuck(pid);
                }
                return Act::Nothing;
            }
            Receiver::None => self.connecting = None,
        }
        if self.next_probe.is_some_and(|t| now < t) || self.held_until.is_some_and(|t| now < t) {
            return Act::Nothing;
        }
        self.next_probe = Some(now + PROBE_EVERY);
        let targets = self.targets.get_or_insert_with(read_targets);
        if targets.is_empty() || !probe(targets) {
            return Act::Nothing;
        }
        self.held_until = Some(now + self.hold);
        self.hold = (self.hold * 2).min(LAST_HOLD);
        // Read again after the hold: a reload may have changed primary_conninfo.
        self.targets = None;
        Act::Nudge
    }

    /// A walreceiver streams: whatever was nudged worked, the pause starts over.
    pub fn streaming(&mut self) {
        *self = Follow::default();
    }
}

/// Send `sig` to `pid` only if `still()` — asked after a pidfd was opened on it — says it
/// is still the process meant: the pid cannot change hands between the check and the
/// signal. Where pidfd_open is missing (Linux < 5.3), nothing is sent.
pub fn signal_checked(pid: i32, sig: nix::sys::signal::Signal, still: impl FnOnce() -> bool) -> Result<bool, String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags, returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(format!("pidfd_open({pid}): {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a descriptor the kernel just gave us, owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    if !still() {
        return Ok(false);
    }
    // SAFETY: a pidfd we own, a valid signal number, no siginfo, no flags.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig as libc::c_int, std::ptr::null::<libc::siginfo_t>(), 0) };
    if r < 0 {
        return Err(format!("pidfd_send_signal({pid}): {}", std::io::Error::last_os_error()));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

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
        let none = Receiver::None;
        let mut f = Follow::default();
        let mut reads = 0;
        // Nobody answers yet: probes every PROBE_EVERY, no nudge; the target read once.
        assert_eq!(
            f.step(
                at(0),
                none,
                || {
                    reads += 1;
                    addr.clone()
                },
                |_| false
            ),
            Act::Nothing
        );
        assert_eq!(f.step(at(50), none, || panic!("read again"), |_| panic!("probed within PROBE_EVERY")), Act::Nothing);
        assert_eq!(f.step(at(100), none, || panic!("read again"), |_| false), Act::Nothing);
        assert_eq!(reads, 1);
        // It answers: one nudge, then nothing for FIRST_HOLD (250 ms).
        assert_eq!(f.step(at(200), none, || panic!("read again"), |_| true), Act::Nudge);
        assert_eq!(f.step(at(400), none, || panic!("read again"), |_| panic!("probed while held")), Act::Nothing);
        // Still no receiver after the hold: nudged again (the target read again), then held
        // twice as long.
        assert_eq!(f.step(at(450), none, || addr.clone(), |_| true), Act::Nudge);
        assert_eq!(f.step(at(900), none, || panic!("read while held"), |_| panic!("held 500 ms")), Act::Nothing);
        assert_eq!(f.step(at(950), none, || addr.clone(), |_| true), Act::Nudge);
        // A receiver runs: nothing. Then it streams: the next episode starts afresh (no hold).
        assert_eq!(f.step(at(1000), Receiver::Running, || panic!("read"), |_| panic!("probed")), Act::Nothing);
        f.streaming();
        assert_eq!(f.step(at(1100), none, || addr.clone(), |_| true), Act::Nudge);
    }

    #[test]
    fn a_receiver_that_runs_is_never_nudged_and_no_target_means_no_nudge() {
        let t0 = Instant::now();
        let mut f = Follow::default();
        assert_eq!(f.step(t0, Receiver::Running, || panic!("read"), |_| panic!("probed")), Act::Nothing);
        assert_eq!(f.step(t0, Receiver::None, Vec::new, |_| panic!("nothing to probe")), Act::Nothing);
        let mut h = Follow::default();
        for i in 0..20 {
            h.step(t0 + Duration::from_secs(i * 100), Receiver::None, || vec!["192.0.2.1:5432".parse().unwrap()], |_| true);
        }
        assert_eq!(h.hold, LAST_HOLD);
    }

    #[test]
    fn a_connection_attempt_that_hangs_is_ended_after_stuck_connect() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut f = Follow::default();
        let never = |_: &[SocketAddr]| -> bool { panic!("no probe while a receiver runs") };
        assert_eq!(f.step(at(0), Receiver::Connecting(42), Vec::new, never), Act::Nothing);
        assert_eq!(f.step(at(9), Receiver::Connecting(42), Vec::new, never), Act::Nothing);
        assert_eq!(f.step(at(10), Receiver::Connecting(42), Vec::new, never), Act::EndStuck(42));
        // Another attempt (another pid), or one that got through, starts the count afresh.
        assert_eq!(f.step(at(11), Receiver::Connecting(43), Vec::new, never), Act::Nothing);
        assert_eq!(f.step(at(20), Receiver::Running, Vec::new, never), Act::Nothing);
        assert_eq!(f.step(at(21), Receiver::Connecting(43), Vec::new, never), Act::Nothing);
        assert_eq!(f.step(at(30), Receiver::Connecting(43), Vec::new, never), Act::Nothing);
        assert_eq!(f.step(at(31), Receiver::Connecting(43), Vec::new, never), Act::EndStuck(43));
    }

    #[test]
    fn a_signal_reaches_only_the_process_still_meant() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        assert_eq!(signal_checked(pid, nix::sys::signal::Signal::SIGTERM, || false), Ok(false));
        assert!(child.try_wait().unwrap().is_none(), "not signalled when no longer meant");
        assert_eq!(signal_checked(pid, nix::sys::signal::Signal::SIGTERM, || true), Ok(true));
        assert!(child.wait().unwrap().signal().is_some());
    }
}
