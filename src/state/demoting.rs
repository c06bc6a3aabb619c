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
//! asks whether this node is primary (each peer's last check, per path: one per pool), and
//! once every one that checked in the [`RECENT`] window before the mark has checked again — and so been told "no" — it
//! writes a second file, `told`, which the demote waits for ([`wait_told`]). With HAProxy
//! checking every 200 ms that is about a quarter of a second; without a service on the
//! port (no `serving` file) the demote does not wait at all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A peer that checked this long before the mark is one the demote waits for.
pub const RECENT: Duration = Duration::from_secs(2);

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

/// Who asked whether this node is the primary, by peer and path (one HAProxy asks once
/// per pool that sends sessions to a primary: the writers' on `/primary`, the standbys'
/// replication on `/read-write`), and when last.
static CHECKERS: Mutex<Option<Checkers>> = Mutex::new(None);

/// When each peer last asked, by path.
type Checkers = HashMap<IpAddr, HashMap<String, Instant>>;

/// A check of whether this node is the primary, from `peer` on `path`, is being answered
/// (the HTTP endpoint's primary checks; the TCP line). On the checks' path: a path is
/// allocated only the first time a peer uses it.
pub fn checked_by(peer: IpAddr, path: &str) {
    let now = Instant::now();
    let mut m = CHECKERS.lock().unwrap_or_else(|e| e.into_inner());
    let paths = m.get_or_insert_with(HashMap::new).entry(peer).or_default();
    match paths.get_mut(path) {
        Some(t) => *t = now,
        None => {
            paths.insert(path.to_owned(), now);
        }
    }
}

/// Whether every (peer, path) that checked within [`RECENT`] before `since` has checked
/// since.
fn all_told_in(checkers: &Checkers, since: Instant) -> bool {
    let window = since.checked_sub(RECENT).unwrap_or(since);
    checkers.values().flat_map(HashMap::values).filter(|t| **t >= window).all(|t| *t > since)
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
        let mut m = Checkers::new();
        let mut at = |peer: &str, path: &str, t: Instant| {
            m.entry(peer.parse::<IpAddr>().unwrap()).or_default().insert(path.to_owned(), t);
            all_told_in(&m, t0)
        };
        assert!(all_told_in(&Checkers::new(), t0), "nobody checks: nobody to wait for");
        at("192.0.2.11", "/primary", t0 - Duration::from_millis(150));
        at("192.0.2.12", "/primary", t0 - Duration::from_millis(50));
        // A checker that went quiet long before the demote is not waited for.
        assert!(!at("192.0.2.13", "/primary", t0 - RECENT - Duration::from_secs(1)));
        assert!(!at("192.0.2.11", "/primary", t0 + Duration::from_millis(50)));
        assert!(at("192.0.2.12", "/primary", t0 + Duration::from_millis(120)));
        // The same HAProxy's other pool, on its own path, is waited for too.
        assert!(!at("192.0.2.12", "/read-write", t0 - Duration::from_millis(10)));
    }
}
