//! Instant failure reports: the service watches the local postmaster and, when it dies
//! without shutting down, tells Pacemaker at once (`crm_resource --fail`), so recovery
//! starts now instead of at the next monitor — up to a whole monitor interval later
//! (15 s for a primary with the shipped configuration).
//!
//! Which deaths are failures. A postmaster that shuts down — smart, fast or immediate: a
//! pgsqlms stop or demote, an administrator's `pg_ctl stop` — removes its socket lock file
//! (`.s.PGSQL.<port>.lock`, which names its pid) before it exits. One that crashed or was
//! killed leaves it behind. So a death is reported only when the lock file still names the
//! dead postmaster, and only while Pacemaker has the resource active on this node (a
//! PostgreSQL started by hand is not the cluster's business). The one kill that is no
//! failure is pgsqlms's own, the last step of a hung instance's stop: it marks the pid it is
//! about to kill ([`intend_kill`]) and the watch stays silent for it. Each postmaster is
//! reported at most once.
//!
//! How it waits: a pidfd (`pidfd_open`, Linux 5.3) polled with a short timeout, so a death
//! is seen within microseconds and a SIGTERM within [`TICK`]; no signal, no child, no
//! fork. Where pidfd_open is missing, a `kill(pid, 0)` look every [`TICK`].

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::role::Snapshot;
use crate::ocf::OcfError;
use crate::{ocf_debug, ocf_info, ocf_warn};

/// How often the watch looks for a postmaster to watch, and for the service's stop.
pub const TICK: Duration = Duration::from_millis(100);

/// Crashes reported to Pacemaker since the service started (`/metrics`).
pub static REPORTS: AtomicU64 = AtomicU64::new(0);

/// What the watch needs.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The instance's socket lock file (`<socket dir>/.s.PGSQL.<port>.lock`).
    pub lock_file: PathBuf,
    /// The pgsqlms resource to report failed.
    pub resource: String,
    /// This node's name as Pacemaker knows it (None: asked from crm_node when needed).
    pub node: Option<String>,
    /// The service's snapshot, when its cluster watch runs: whether the resource is active
    /// here is known without asking (asked with crm_resource when it is stale or absent).
    pub snapshot: Option<Arc<RwLock<Snapshot>>>,
}

impl Watch {
    pub fn new(socket_dir: &Path, port: u16, resource: &str, node: Option<String>, snapshot: Option<Arc<RwLock<Snapshot>>>) -> Watch {
        Watch { lock_file: socket_dir.join(format!(".s.PGSQL.{port}.lock")), resource: resource.to_owned(), node, snapshot }
    }

    /// Whether the cluster has the resource active on `me`, from the snapshot if recent.
    fn active_here(&self, me: &str) -> Result<bool, OcfError> {
        if let Some(snap) = &self.snapshot {
            let s = snap.read().unwrap_or_else(|e| e.into_inner());
            if s.cluster_fresh(Instant::now()) {
                return Ok(s.cluster.active_here);
            }
        }
        Ok(crate::pacemaker::resource::locate(&self.resource)?.iter().any(|l| l.node == me))
    }
}

/// Where pgsqlms records the postmaster it is about to SIGKILL: `$HA_RSCTMP`, shared by
/// every agent on the node.
fn intent_path(pid: i32) -> PathBuf {
    intent_in(&crate::ocf::env::rsc_tmp(), pid)
}

fn intent_in(dir: &Path, pid: i32) -> PathBuf {
    dir.join(format!("paceline-killing-postmaster-{pid}"))
}

/// pgsqlms's stop is about to SIGKILL postmaster `pid`: its death is no crash. The mark
/// stays until [`killed`] (a reused pid would only ever be a postmaster that dies with its
/// lock file left, so at worst one report is missed and the monitor makes it).
pub fn intend_kill(pid: i32) {
    let path = intent_path(pid);
    if let Err(e) = crate::files::keep(&path, b"") {
        ocf_warn!("cannot write {} ({e}): the state service may report this kill as a crash", path.display());
    }
}

/// The kill of `pid` is over (the instance's files are cleaned up).
pub fn killed(pid: i32) {
    let _ = std::fs::remove_file(intent_path(pid));
}

/// The pid a PostgreSQL lock file names (its first line).
fn named_pid(lock_file: &Path) -> Option<i32> {
    match crate::pg::process::read_lock(lock_file) {
        crate::pg::process::Lock::Present(p) => Some(p.pid),
        _ => None,
    }
}

/// The live postmaster the lock file names, if any (a stale file naming a dead pid, or a
/// pid the kernel gave to another program, is none).
fn postmaster(lock_file: &Path) -> Option<i32> {
    let pid = named_pid(lock_file)?;
    crate::pg::process::is_postmaster(pid).then_some(pid)
}

/// A way to wait for a process's end.
enum Waiter {
    Pidfd(OwnedFd),
    Poll(i32),
}

impl Waiter {
    fn open(pid: i32) -> Option<Waiter> {
        // SAFETY: pidfd_open takes a pid and flags, returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            // SAFETY: the descriptor was just returned to us and is owned by nothing else.
            return Some(Waiter::Pidfd(unsafe { OwnedFd::from_raw_fd(fd as i32) }));
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ESRCH) => None,
            _ => Some(Waiter::Poll(pid)),
        }
    }

    /// Whether the process ended within `timeout`.
    fn ended_within(&self, timeout: Duration) -> bool {
        match self {
            Waiter::Pidfd(fd) => {
                use std::os::fd::AsRawFd;
                let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                let ms = timeout.as_millis().min(60_000) as libc::c_int;
                // SAFETY: one pollfd, valid for the call; the descriptor is ours and open.
                unsafe { libc::poll(&mut p, 1, ms) > 0 }
            }
            Waiter::Poll(pid) => {
                std::thread::sleep(timeout);
                !crate::pg::process::alive(*pid)
            }
        }
    }
}

/// What became of a postmaster the watch saw die.
#[derive(Debug, PartialEq, Eq)]
pub enum Death {
    /// It shut down: its lock file is gone (or names another postmaster already).
    Shutdown,
    /// pgsqlms's stop killed it on purpose.
    KilledByStop,
    /// It crashed or was killed: the lock file still names it.
    Crash,
}

/// Why `pid` is gone, from what it left behind (`rsc_tmp`: where pgsqlms marks its kills).
pub fn classify(lock_file: &Path, pid: i32, rsc_tmp: &Path) -> Death {
    if named_pid(lock_file) != Some(pid) {
        Death::Shutdown
    } else if intent_in(rsc_tmp, pid).exists() {
        Death::KilledByStop
    } else {
        Death::Crash
    }
}

/// Watch postmasters until `stop` is set: each one found through the lock file, until it
/// dies; a crash is reported to Pacemaker at once.
pub fn run(w: &Watch, stop: &AtomicBool) {
    let mut watched: Option<i32> = None;
    while !stop.load(Ordering::SeqCst) {
        let Some(pid) = postmaster(&w.lock_file) else {
            std::thread::sleep(TICK);
            continue;
        };
        if watched == Some(pid) {
            // Reported (or classified) already; its lock file lingers until the next start.
            std::thread::sleep(TICK);
            continue;
        }
        let Some(waiter) = Waiter::open(pid) else { continue };
        // The lock file may have moved on between the read and the open.
        if named_pid(&w.lock_file) != Some(pid) {
            continue;
        }
        ocf_debug!("watching the postmaster (pid {pid})");
        watched = Some(pid);
        while !stop.load(Ordering::SeqCst) {
            if waiter.ended_within(TICK) {
                let seen = Instant::now();
                match classify(&w.lock_file, pid, &crate::ocf::env::rsc_tmp()) {
                    Death::Shutdown => ocf_debug!("the postmaster (pid {pid}) shut down"),
                    Death::KilledByStop => ocf_info!("the postmaster (pid {pid}) was killed by the resource's stop: no failure to report"),
                    Death::Crash => report(w, pid, seen),
                }
                break;
            }
        }
    }
}

/// The postmaster died without shutting down: tell Pacemaker, if the resource is its here.
fn report(w: &Watch, pid: i32, seen: Instant) {
    use crate::pacemaker::{nodes, resource};
    let me = match w.node.clone().map(Ok).unwrap_or_else(nodes::local_name) {
        Ok(me) => me,
        Err(e) => return ocf_warn!("the postmaster (pid {pid}) died, but this node's name is unknown ({}): the next monitor will find it", e.reason),
    };
    match w.active_here(&me) {
        Ok(true) => {}
        Ok(false) => return ocf_info!("the postmaster (pid {pid}) died; {} is not active on {me} in the cluster's view: nothing to report", w.resource),
        Err(e) => ocf_warn!("the postmaster (pid {pid}) died; cannot see where {} runs ({}): reporting anyway", w.resource, e.reason),
    }
    let died = crate::history::now_ms().saturating_sub(seen.elapsed().as_millis() as u64);
    match resource::fail(&w.resource, &me) {
        Ok(()) => {
            REPORTS.fetch_add(1, Ordering::Relaxed);
            ocf_warn!(
            "the postmaster (pid {pid}) died without shutting down (its lock file is left): reported {} failed on {me} ({} ms after the death), recovery starts now",
            w.resource,
            seen.elapsed().as_millis()
            )
        }
        Err(e) => return ocf_warn!("the postmaster (pid {pid}) died; reporting it failed: {} (the next monitor will find it)", e.reason),
    }
    // When, for the incident record: the demote that recovers it names the report as the
    // detection (a private attribute of this node; best effort, after the report).
    if let Err(e) = crate::pacemaker::attrs::publish(&crate::history::crash_attribute(&w.resource), &died.to_string()) {
        ocf_debug!("the crash report's time is not published: {}", e.reason);
    }
}

/// Start the watch on a thread of its own.
pub fn spawn(w: Watch, stop: &'static AtomicBool) -> Result<(), OcfError> {
    std::thread::Builder::new()
        .name("paceline-crash".into())
        .spawn(move || run(&w, stop))
        .map(|_| ())
        .map_err(|e| OcfError::generic(format!("cannot start the postmaster watch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_death_is_a_crash_only_when_the_lock_file_still_names_it() {
        let dir = std::env::temp_dir().join(format!("paceline-crash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lock = dir.join(".s.PGSQL.5432.lock");
        assert_eq!(classify(&lock, 4242, &dir), Death::Shutdown);
        std::fs::write(&lock, "4243\n/var/lib/postgresql/15/main\n").unwrap();
        assert_eq!(classify(&lock, 4242, &dir), Death::Shutdown, "another postmaster's file");
        std::fs::write(&lock, "4242\n/var/lib/postgresql/15/main\n").unwrap();
        assert_eq!(classify(&lock, 4242, &dir), Death::Crash);
        std::fs::write(intent_in(&dir, 4242), b"").unwrap();
        assert_eq!(classify(&lock, 4242, &dir), Death::KilledByStop);
        std::fs::remove_file(intent_in(&dir, 4242)).unwrap();
        assert_eq!(classify(&lock, 4242, &dir), Death::Crash);
        assert_eq!(postmaster(&lock), None, "pid 4242 is no live postgres");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pidfd_sees_a_child_end() {
        let mut child = std::process::Command::new("sleep").arg("0.3").spawn().unwrap();
        let w = Waiter::open(child.id() as i32).unwrap();
        assert!(!w.ended_within(Duration::from_millis(10)));
        let t = Instant::now();
        while !w.ended_within(TICK) {
            assert!(t.elapsed() < Duration::from_secs(5));
        }
        child.wait().unwrap();
    }
}
