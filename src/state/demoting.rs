//! A demote in progress, told by pgsqlms to the state service on the same node.
//!
//! Pacemaker records a demote only once it is over: until then `crm_resource --locate` says
//! Promoted, and PostgreSQL stays writable until the demote's shutdown. A load balancer
//! that asks during that time must already hear "not primary", or it keeps sending new
//! sessions to an instance that is going away — and, once the demote has restarted it as a
//! standby, to a read-only one. So pgsqlms marks the demote before anything else (a file
//! in `$HA_RSCTMP` named after the port, the instance's identity on the node), and the
//! service, which looks for the mark on every poll of PostgreSQL, answers "not primary"
//! while it is there. The mark goes when the demote returns; a promote removes one that a
//! demote killed by its timeout left behind (meanwhile the instance is no primary anyway).
//!
//! Saying so is not enough: a load balancer hears it at its next check, and a demote of
//! an idle instance (shutdown, restart as a standby) can be over sooner. So the demote
//! waits, a bounded moment, until the load balancers have heard it: the service knows who
//! asks whether this node is primary (each peer's last check, per name of the check: one
//! per pool), and once every one that checked in the [`RECENT`] window before the mark has
//! checked again — and so been told "no" — it writes a second file, `told`, which the
//! demote waits for ([`wait_told`]). With HAProxy checking every 200 ms that is about a
//! quarter of a second; without a service on the port (no `serving` file) the demote does
//! not wait at all.
//!
//! What is remembered is anyone's to fill — every client that asks is recorded — so it is
//! bounded (issue #26): a check is recorded by its name ([`Asked`]: which of Patroni's
//! names of the primary check, or the TCP line), never by the path as sent (`/primary/`,
//! `/primary//`, a query: one entry, not one per spelling); at most [`MAX_PEERS`] peers
//! are remembered, and a peer that has not asked for [`KEEP`] is forgotten. A peer that
//! comes while the table is full of peers still asking is not recorded (counted in
//! /metrics): the load balancers that were checking before an attack stay in, and a demote
//! does not wait for that newcomer — the answer it gets is "not primary" all the same.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A peer that checked this long before the mark is one the demote waits for.
pub const RECENT: Duration = Duration::from_secs(2);
/// The most peers remembered: load balancers are a few per cluster (one HAProxy per node,
/// or per application host), and monitoring does not ask for the primary.
pub const MAX_PEERS: usize = 256;
/// A peer that has not asked for this long is forgotten: well beyond [`RECENT`] plus the
/// longest a demote waits (1 s), so no peer a demote waits for is forgotten meanwhile.
pub const KEEP: Duration = Duration::from_secs(10);
/// How often forgotten peers are dropped (on a check, not from a timer of its own).
const PRUNE_EVERY: Duration = Duration::from_secs(1);

fn mark_in(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("paceline-demoting-{port}"))
}

fn mark(port: u16) -> PathBuf {
    mark_in(&crate::ocf::env::rsc_tmp(), port)
}

/// The demote of the instance on `port` is under way until this is dropped.
#[must_use]
pub struct Demoting {
    mark: PathBuf,
    told: PathBuf,
}

/// pgsqlms's demote begins: from now on the state service does not say primary.
pub fn begin(port: u16) -> Demoting {
    begin_at(mark(port), told_path(port))
}

fn begin_at(mark: PathBuf, told: PathBuf) -> Demoting {
    if let Err(e) = crate::files::keep(&mark, b"") {
        crate::ocf_warn!("cannot write {} ({e}): load balancers learn of this demote only when PostgreSQL stops", mark.display());
    }
    Demoting { mark, told }
}

impl Drop for Demoting {
    fn drop(&mut self) {
        // The told file is in the service's directory: unlinking never follows a link.
        let _ = std::fs::remove_file(&self.mark);
        let _ = std::fs::remove_file(&self.told);
    }
}

/// The directory the state service for the instance on `port` writes to: its own, in
/// `$HA_RSCTMP`, owned by the account it runs as once it has dropped root
/// ([`prepare_service_dir`]). What the agents (root) write stays in `$HA_RSCTMP` itself.
pub fn service_dir(port: u16) -> PathBuf {
    crate::ocf::env::rsc_tmp().join(format!("paceline-state-{port}"))
}

/// Make [`service_dir`] for `port`, owned by `who` (pgsql-state's start, as root). It is
/// made in root's `$HA_RSCTMP`, where no other account can put anything first, and changed
/// through its descriptor, opened without following a link.
pub fn prepare_service_dir(port: u16, who: crate::pg::identity::Identity) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = service_dir(port);
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let fd = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW).open(&dir)?;
    if nix::unistd::geteuid().is_root() {
        nix::unistd::fchown(std::os::fd::AsRawFd::as_raw_fd(&fd), Some(who.uid), Some(who.gid)).map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// The service's answer to a mark: every load balancer has been told.
fn told_path(port: u16) -> PathBuf {
    service_dir(port).join("told")
}

fn serving_path(port: u16) -> PathBuf {
    service_dir(port).join("serving")
}

/// A mark a demote that was killed left behind (promote calls this).
pub fn clear(port: u16) {
    let _ = std::fs::remove_file(mark(port));
    let _ = std::fs::remove_file(told_path(port));
}

/// The demote's side: wait until the state service says every load balancer has been
/// told, at most `limit`; at once when no service serves `port`. Returns how long it took,
/// or None when the limit passed first.
pub fn wait_told(port: u16, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    if !serving_path(port).exists() {
        return Some(Duration::ZERO);
    }
    while start.elapsed() < limit {
        if told_path(port).exists() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The service's side: it serves routing checks for `port` while this lives.
#[must_use]
pub struct Serving(PathBuf);

pub fn serving(port: u16) -> Serving {
    let path = serving_path(port);
    let _ = crate::files::keep(&path, b"");
    Serving(path)
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How a peer asked whether this node is the primary: the name of the check, whatever its
/// spelling (a trailing slash, a query). Patroni's names stay apart: one HAProxy may check
/// its writers' pool on `/primary` and its replication pool on `/read-write`, two checkers
/// the demote waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Root,
    Primary,
    Master,
    Leader,
    ReadWrite,
    /// The TCP line.
    Tcp,
}

impl Asked {
    const ALL: usize = 6;

    /// The name of an HTTP primary check's path (as [`super::role::check_for`] reads it),
    /// or None for a path that is not one.
    pub fn of_path(path: &str) -> Option<Asked> {
        Some(match path.trim_end_matches('/') {
            "" => Asked::Root,
            "/primary" => Asked::Primary,
            "/master" => Asked::Master,
            "/leader" => Asked::Leader,
            "/read-write" => Asked::ReadWrite,
            _ => return None,
        })
    }
}

/// Who asked whether this node is the primary, by peer and name of the check (one HAProxy
/// asks once per pool that sends sessions to a primary), and when last.
static CHECKERS: Mutex<Option<Checkers>> = Mutex::new(None);
/// Peers not recorded because [`MAX_PEERS`] were remembered and still asking.
static NOT_RECORDED: AtomicU64 = AtomicU64::new(0);
/// Peers remembered now (for /metrics, without taking the lock).
static REMEMBERED: AtomicU64 = AtomicU64::new(0);

/// When each peer last asked, by name of the check; bounded and pruned.
#[derive(Debug, Default)]
struct Checkers {
    peers: HashMap<IpAddr, [Option<Instant>; Asked::ALL]>,
    pruned: Option<Instant>,
}

impl Checkers {
    /// `peer` asked `asked` at `now`. False when it could not be recorded (full).
    fn record(&mut self, peer: IpAddr, asked: Asked, now: Instant) -> bool {
        if self.pruned.is_none_or(|t| now.saturating_duration_since(t) >= PRUNE_EVERY) {
            self.prune(now);
        }
        if let Some(times) = self.peers.get_mut(&peer) {
            times[asked as usize] = Some(now);
            return true;
        }
        if self.peers.len() >= MAX_PEERS {
            self.prune(now);
            if self.peers.len() >= MAX_PEERS {
                return false;
            }
        }
        let mut times = [None; Asked::ALL];
        times[asked as usize] = Some(now);
        self.peers.insert(peer, times);
        true
    }

    /// Forget the peers that have not asked for [`KEEP`].
    fn prune(&mut self, now: Instant) {
        self.pruned = Some(now);
        self.peers.retain(|_, times| times.iter().flatten().any(|t| now.saturating_duration_since(*t) < KEEP));
    }

    fn times(&self) -> impl Iterator<Item = &Instant> {
        self.peers.values().flat_map(|t| t.iter().flatten())
    }
}

/// A check of whether this node is the primary, from `peer`, is being answered (the HTTP
/// endpoint's primary checks; the TCP line). On the checks' path: no allocation but a new
/// peer's entry.
pub fn checked_by(peer: IpAddr, asked: Asked) {
    let now = Instant::now();
    let mut m = CHECKERS.lock().unwrap_or_else(|e| e.into_inner());
    let c = m.get_or_insert_with(Checkers::default);
    if !c.record(peer.to_canonical(), asked, now) {
        NOT_RECORDED.fetch_add(1, Ordering::Relaxed);
    }
    REMEMBERED.store(c.peers.len() as u64, Ordering::Relaxed);
}

/// The remembered peers' figures, in Prometheus text (names, types and help:
/// [`super::metrics`]).
pub fn metrics() -> String {
    use super::metrics as M;
    let mut m = String::new();
    M::STATE_CHECKERS.write(&mut m, REMEMBERED.load(Ordering::Relaxed));
    M::STATE_CHECKERS_NOT_RECORDED_TOTAL.write(&mut m, NOT_RECORDED.load(Ordering::Relaxed));
    m
}

/// Whether every (peer, check) that asked within [`RECENT`] before `since` has asked
/// since.
fn all_told_in(checkers: &Checkers, since: Instant) -> bool {
    let window = since.checked_sub(RECENT).unwrap_or(since);
    checkers.times().filter(|t| **t >= window).all(|t| *t > since)
}

/// The service's poll, while a demote is marked: `since` is when its answers became "no".
/// Writes `told` once every recent checker has heard one.
pub fn tell_if_all_told(port: u16, since: Instant) {
    let done = CHECKERS.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_none_or(|m| all_told_in(m, since));
    if done && !told_path(port).exists() {
        let _ = crate::files::keep(&told_path(port), b"");
    }
}

/// Whether a demote of the instance on `port` is under way (the service's poll).
pub fn under_way(port: u16) -> bool {
    mark(port).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_lasts_as_long_as_the_demote() {
        let dir = std::env::temp_dir().join(format!("paceline-demoting-{}", std::process::id()));
        let path = mark_in(&dir, 5432);
        assert_eq!(path, dir.join("paceline-demoting-5432"));
        let d = begin_at(path.clone(), dir.join("told"));
        assert!(path.exists() && !mark_in(&dir, 5433).exists());
        drop(d);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn told_once_every_recent_checker_asked_again() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut m = Checkers::default();
        let mut at = |peer: &str, path: &str, t: Instant| {
            let asked = if path == "tcp" { Asked::Tcp } else { Asked::of_path(path).unwrap() };
            assert!(m.record(peer.parse::<IpAddr>().unwrap(), asked, t));
            all_told_in(&m, t0)
        };
        at("192.0.2.11", "/primary", t0 - Duration::from_millis(150));
        at("192.0.2.12", "/primary", t0 - Duration::from_millis(50));
        // A checker that went quiet long before the demote is not waited for.
        assert!(!at("192.0.2.13", "/primary", t0 - RECENT - Duration::from_secs(1)));
        assert!(!at("192.0.2.11", "/primary/", t0 + Duration::from_millis(50)));
        assert!(at("192.0.2.12", "/primary", t0 + Duration::from_millis(120)));
        // The same HAProxy's other pool, on its own name of the check, is waited for too.
        assert!(!at("192.0.2.12", "/read-write", t0 - Duration::from_millis(10)));
        assert!(at("192.0.2.12", "/read-write//", t0 + Duration::from_millis(130)));
        assert!(!at("192.0.2.11", "tcp", t0 - Duration::from_millis(10)));
        assert!(all_told_in(&Checkers::default(), t0), "nobody checks: nobody to wait for");
    }

    #[test]
    fn a_check_is_recorded_by_its_name_not_its_spelling() {
        for p in ["/primary", "/primary/", "/primary///"] {
            assert_eq!(Asked::of_path(p), Some(Asked::Primary), "{p}");
        }
        assert_eq!(Asked::of_path("/"), Some(Asked::Root));
        assert_eq!(Asked::of_path("/read-write/"), Some(Asked::ReadWrite));
        for p in ["//primary", "/primary/x", "/replica", "/%70rimary"] {
            assert_eq!(Asked::of_path(p), None, "{p}");
        }
        let (mut m, t0, peer) = (Checkers::default(), Instant::now(), "192.0.2.11".parse().unwrap());
        for (i, p) in ["/primary", "/primary/", "/primary//", "/primary///"].iter().enumerate() {
            m.record(peer, Asked::of_path(p).unwrap(), t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(m.peers.len(), 1);
        assert_eq!(m.times().count(), 1);
    }

    #[test]
    fn the_peers_are_bounded_and_forgotten() {
        let t0 = Instant::now();
        let mut m = Checkers::default();
        let peer = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0xC000_0200 + i));
        // A load balancer, then a crowd: the crowd fills the table, no more.
        assert!(m.record(peer(0), Asked::Primary, t0));
        for i in 1..(MAX_PEERS as u32 * 4) {
            let recorded = m.record(peer(i), Asked::Primary, t0 + Duration::from_millis(u64::from(i)));
            assert_eq!(recorded, (i as usize) < MAX_PEERS, "{i}");
        }
        assert_eq!(m.peers.len(), MAX_PEERS);
        // The load balancer goes on asking, and stays in.
        let later = t0 + KEEP + Duration::from_secs(1);
        assert!(m.record(peer(0), Asked::Primary, later));
        // The crowd has not asked for KEEP: forgotten, room for a newcomer.
        assert!(m.record(peer(100_000), Asked::Tcp, later));
        assert_eq!(m.peers.len(), 2, "{:?}", m.peers.keys().collect::<Vec<_>>());
        // And without newcomers, a quiet table empties on the next check.
        assert!(m.record(peer(0), Asked::Primary, later + KEEP * 2));
        assert_eq!(m.peers.len(), 1);
    }
}
