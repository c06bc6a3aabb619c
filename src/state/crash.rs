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
//! Who reports. The service runs as `system_user` once its ports are bound, and
//! Pacemaker's controller refuses `crm_resource --fail` from any account but root and
//! hacluster ("postgres does not have permission to fail pgsqld", while crm_resource
//! itself exits 0). So before it drops root the service starts a [`Reporter`]: this binary
//! again (`pgsql-state report-crashes`), which stays root, reads one line per crash from a
//! pipe the service holds, and does only this: report the configured resource failed on
//! this node (both from its own environment, never from the line), at most once every
//! [`REPORT_SPACING`], and answer `ok` or the error. The line can ask for nothing the
//! `postgres` account could not cause by killing its own postmaster. The reporter ends
//! with the service: the pipe's end of file, or the kernel's SIGKILL when the service dies
//! (`PR_SET_PDEATHSIG`).
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

/// The argument the service runs this binary with to start its [`Reporter`].
pub const REPORTER: &str = "report-crashes";

/// The least time between two reports the reporter makes.
pub const REPORT_SPACING: Duration = Duration::from_secs(5);

/// How long the service waits for the reporter's answer.
const REPORT_ANSWER: Duration = Duration::from_secs(15);

/// The service's end of the root reporter (see the module doc).
pub struct Reporter {
    child: std::process::Child,
    ask: std::process::ChildStdin,
    answers: std::sync::mpsc::Receiver<String>,
}

impl Reporter {
    /// Start the reporter: this binary under the name the service runs under (the agent's,
    /// which dispatches [`REPORTER`]), as root (call it before the service drops root), its
    /// stdin and stdout piped to the service, killed by the kernel if the service dies.
    pub fn spawn() -> Result<Reporter, OcfError> {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let exe = std::env::current_exe().map_err(|e| OcfError::installed(format!("cannot find this agent's binary: {e}")))?;
        let mut cmd = Command::new(exe);
        cmd.arg0(std::env::args_os().next().unwrap_or_default()).arg(REPORTER).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| OcfError::generic(format!("cannot start the crash reporter: {e}")))?;
        let (Some(ask), Some(out)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(OcfError::generic("the crash reporter has no pipes"));
        };
        let (tx, answers) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("paceline-crash-answers".into())
            .spawn(move || {
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| OcfError::generic(format!("cannot read the crash reporter: {e}")))?;
        Ok(Reporter { child, ask, answers })
    }

    /// Ask for one report (`died`: when the postmaster died, ms since the epoch, for the
    /// incident record): Ok once Pacemaker has it, Err with the reason otherwise.
    fn report(&mut self, died: u64) -> Result<(), String> {
        use std::io::Write;
        writeln!(self.ask, "crash {died}").map_err(|e| format!("the crash reporter is gone ({e})"))?;
        match self.answers.recv_timeout(REPORT_ANSWER) {
            Ok(a) if a == "ok" => Ok(()),
            Ok(a) => Err(a.strip_prefix("error: ").unwrap_or(&a).to_owned()),
            Err(_) => Err(format!("the crash reporter did not answer within {REPORT_ANSWER:?}")),
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The longest request line the reporter reads (`crash <ms>` is 26 bytes at most): a
/// longer one is hostile, and ends the reporter rather than grow its memory.
const MAX_REQUEST: u64 = 64;

/// The reporter's side (`pgsql-state report-crashes`, root): for each `crash <ms>` line on
/// stdin, report `resource` failed on this node and answer on stdout; return at end of
/// file, or at a line longer than [`MAX_REQUEST`]. Lines spaced less than
/// [`REPORT_SPACING`] apart are refused.
pub fn reporter_main(resource: &str, node: Option<String>) -> Result<(), OcfError> {
    use std::io::{BufRead, Read, Write};
    let me = match node.map(Ok).unwrap_or_else(crate::pacemaker::nodes::local_name) {
        Ok(me) => Some(me),
        Err(e) => {
            ocf_warn!("the crash reporter cannot tell this node's name ({}): it will ask again at a crash", e.reason);
            None
        }
    };
    let mut last: Option<Instant> = None;
    let stdout = std::io::stdout();
    let mut input = std::io::stdin().lock();
    loop {
        let mut raw = Vec::new();
        match (&mut input).take(MAX_REQUEST).read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) if raw.last() != Some(&b'\n') => {
                ocf_warn!("the crash reporter got a request longer than {MAX_REQUEST} bytes, or cut short: it stops (crashes are left to the monitors)");
                return Ok(());
            }
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&raw);
        let answer = match (line.trim_end().strip_prefix("crash ").and_then(|t| t.parse::<u64>().ok()), last) {
            (None, _) => format!("error: not a request: {:?}", line.trim_end()),
            (Some(_), Some(t)) if t.elapsed() < REPORT_SPACING => format!("error: a report was made {:?} ago", t.elapsed()),
            (Some(died), _) => {
                last = Some(Instant::now());
                match me.clone().map(Ok).unwrap_or_else(crate::pacemaker::nodes::local_name).and_then(|n| Report::make(resource, &n)) {
                    Ok(report) => {
                        let _ = writeln!(stdout.lock(), "ok");
                        report.settle(died);
                        continue;
                    }
                    Err(e) => format!("error: {}", e.reason),
                }
            }
        };
        let _ = writeln!(stdout.lock(), "{answer}");
    }
}

/// One crash report made: what is left to do once Pacemaker has it (the service's log
/// line, or the reporter's answer, comes first: recovery has started).
struct Report<'a> {
    resource: &'a str,
    node: String,
    /// The report's fail count before it, when it could be read.
    before: Option<u64>,
}

impl<'a> Report<'a> {
    /// Report `resource` failed on `node` (`crm_resource --fail`, root's to make).
    fn make(resource: &'a str, node: &str) -> Result<Report<'a>, OcfError> {
        let before = crate::pacemaker::resource::report_count(resource, node);
        crate::pacemaker::resource::fail(resource, node)?;
        Ok(Report { resource, node: node.to_owned(), before })
    }

    /// The moment of the death (`died`, ms since the epoch) to this node's private
    /// attribute — the demote that recovers it names the report as the incident record's
    /// detection — and the fail count the report added, taken down to one (best effort).
    fn settle(self, died: u64) {
        if let Err(e) = crate::pacemaker::attrs::publish(&crate::history::crash_attribute(self.resource), &died.to_string()) {
            ocf_debug!("the crash report's time is not published: {}", e.reason);
        }
        if let Some(before) = self.before {
            crate::pacemaker::resource::count_report_once(self.resource, &self.node, before);
        }
    }
}

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
pub fn run(w: &Watch, mut reporter: Option<Reporter>, stop: &AtomicBool) {
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
                    Death::Crash => report(w, &mut reporter, pid, seen),
                }
                break;
            }
        }
    }
}

/// The postmaster died without shutting down: tell Pacemaker, if the resource is its here
/// — through the root reporter when the service has one, else (a service that runs as
/// root: no system_user to become) itself.
fn report(w: &Watch, reporter: &mut Option<Reporter>, pid: i32, seen: Instant) {
    use crate::pacemaker::nodes;
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
    // Through the reporter, which settles the report itself; else here, settled after the log.
    let reported = match reporter {
        Some(r) => r.report(died).map(|()| None),
        None => Report::make(&w.resource, &me).map(Some).map_err(|e| e.reason),
    };
    match reported {
        Ok(report) => {
            REPORTS.fetch_add(1, Ordering::Relaxed);
            ocf_warn!(
                "the postmaster (pid {pid}) died without shutting down (its lock file is left): reported {} failed on {me} ({} ms after the death), recovery starts now",
                w.resource,
                seen.elapsed().as_millis()
            );
            if let Some(report) = report {
                report.settle(died);
            }
        }
        Err(e) => ocf_warn!("the postmaster (pid {pid}) died; reporting it failed: {e} (the next monitor will find it)"),
    }
}

/// Start the watch on a thread of its own.
pub fn spawn(w: Watch, reporter: Option<Reporter>, stop: &'static AtomicBool) -> Result<(), OcfError> {
    std::thread::Builder::new()
        .name("paceline-crash".into())
        .spawn(move || run(&w, reporter, stop))
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
