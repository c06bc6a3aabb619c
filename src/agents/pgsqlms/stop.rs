//! stop: shut the instance down within the action's time, whatever state it is in. An
//! instance that is already down — cleanly or crashed — is stopped: failing here would make
//! Pacemaker fence the node, and a crashed ex-primary would be fenced again at every restart.
//!
//! A postmaster that hangs without dying (its processes stopped by an I/O stall or a stuck
//! kernel call) would hold writes for as long as it hangs if the stop simply waited for it:
//! the demote of a hung primary would take its whole timeout, then fail, and the node would
//! be fenced. So the shutdown escalates, each step within a share of the action's deadline
//! and cut short when the postmaster does not even acknowledge the request:
//!
//! 1. **fast** (SIGINT, what `pg_ctl stop -m fast` sends): up to 60 % of the time left —
//!    the clean shutdown checkpoint that a switchover relies on;
//! 2. **immediate** (SIGQUIT): up to 60 % of what is left then — no checkpoint, crash
//!    recovery at the next start, nothing acknowledged is lost;
//! 3. **kill**: SIGKILL to the postmaster and to every process it started (each backend is
//!    its own process group, so the group of the postmaster alone would miss them), then
//!    the leftovers of the kill are removed — `postmaster.pid`, the socket lock files and
//!    the System V shared memory segment — once no process is attached to that segment any
//!    more (PostgreSQL's own interlock), so that the next start is not refused by a pid the
//!    kernel reused and two postmasters can never share the data directory. A process that
//!    even SIGKILL cannot end (stuck in the kernel) keeps the segment attached: the stop
//!    then fails and Pacemaker fences the node, the only way out.
//!
//! The acknowledgement is the postmaster writing `stopping` into `postmaster.pid`, which it
//! does as soon as it handles the signal; one that has not within [`ACK`] is hung, and
//! waiting longer only prolongs the outage. Every step and its bound are logged.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::instance::{self, State};
use super::Config;
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::pg::process::{self, Lock};
use crate::{ocf_info, ocf_warn};

/// How long a postmaster that handles signals takes to acknowledge one, at most.
pub const ACK: Duration = Duration::from_secs(1);

pub fn stop(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    // No identity needed: the shutdown signals the postmaster itself, and a node without
    // system_user (or without the data directory) runs nothing to stop.
    if instance::postmaster_alive(&cfg.datadir).is_none() {
        if let Some((pid, serves)) = instance::foreign_on_socket(&cfg) {
            return Err(instance::foreign_error(&cfg, pid, &serves));
        }
        let st = instance::stopped_state(&cfg, cfg.timeout / 4).unwrap_or(State::Stopped { as_primary: false });
        ocf_info!("PostgreSQL is not running ({st:?}): nothing to stop");
        return Ok(OcfRc::Success);
    }
    stop_instance(&cfg, instance::deadline(&cfg))?;
    Ok(OcfRc::Success)
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Fast: the shutdown checkpoint is in pg_control.
    Clean,
    /// Immediate: crash recovery at the next start.
    Immediate,
    /// Killed: crash recovery at the next start; the kill's leftovers were removed.
    Killed,
}

/// Shut the running instance down: fast, then immediate, then kill, within `until` (the
/// caller's deadline). Used by demote too.
pub fn stop_instance(cfg: &Config, until: Instant) -> Result<Shutdown, OcfError> {
    let Some(pid) = instance::postmaster_alive(&cfg.datadir) else {
        return Ok(Shutdown::Clean);
    };
    ocf_info!(
        "stopping PostgreSQL (postmaster pid {pid}): fast shutdown, then immediate, then kill, within {} ms",
        until.saturating_duration_since(Instant::now()).as_millis()
    );
    // Each step: its signal, its name, what it ends as, and what comes after it.
    let steps = [
        (Signal::SIGINT, "fast", Shutdown::Clean, "escalating to an immediate shutdown"),
        (Signal::SIGQUIT, "immediate", Shutdown::Immediate, "killing the postmaster and its processes"),
    ];
    for (sig, name, ends_as, next) in steps {
        let this_for = until.saturating_duration_since(Instant::now()).mul_f32(0.6).max(ACK);
        match step(cfg, pid, sig, name, Instant::now() + this_for) {
            Step::Gone => {
                ocf_info!("stopped ({name} shutdown{})", if ends_as == Shutdown::Clean { "" } else { ": crash recovery at the next start" });
                return Ok(ends_as);
            }
            Step::Unacknowledged(why) => {
                ocf_warn!("the postmaster did not acknowledge the {name} shutdown within {} ms ({why}): hung, {next}", ACK.as_millis())
            }
            Step::TimedOut => ocf_warn!("the {name} shutdown did not finish within {} ms: {next}", this_for.as_millis()),
        }
    }
    kill_instance(cfg, pid, until.max(Instant::now() + Duration::from_secs(2)))?;
    Ok(Shutdown::Killed)
}

enum Step {
    Gone,
    /// Not acknowledged within [`ACK`]; what the process was doing.
    Unacknowledged(String),
    TimedOut,
}

/// Send `sig` to the postmaster and wait until it is gone or `until`, giving up early when
/// it does not acknowledge within [`ACK`].
fn step(cfg: &Config, pid: i32, sig: Signal, name: &str, until: Instant) -> Step {
    if let Err(e) = kill(Pid::from_raw(pid), sig) {
        if e == nix::errno::Errno::ESRCH {
            return Step::Gone;
        }
        ocf_warn!("cannot send the {name} shutdown signal to {pid}: {}", e.desc());
        return Step::Unacknowledged(format!("signal refused: {}", e.desc()));
    }
    let sent = Instant::now();
    let mut acknowledged = false;
    loop {
        if !process::alive(pid) {
            return Step::Gone;
        }
        acknowledged = acknowledged || pm_status(&cfg.datadir).as_deref() == Some("stopping");
        let now = Instant::now();
        if !acknowledged && now >= sent + ACK {
            return Step::Unacknowledged(process::state_text(pid));
        }
        if now >= until {
            return Step::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The postmaster's status line in postmaster.pid (`starting`, `ready`, `standby`,
/// `stopping`), if any.
fn pm_status(datadir: &Path) -> Option<String> {
    match process::read_lock(&datadir.join("postmaster.pid")) {
        Lock::Present(p) => p.status,
        _ => None,
    }
}

/// SIGKILL the postmaster and its processes, wait for them to be gone, and remove what the
/// kill left behind once nothing is attached to the instance's shared memory.
fn kill_instance(cfg: &Config, pid: i32, until: Instant) -> Result<(), OcfError> {
    let pidfile = cfg.datadir.join("postmaster.pid");
    let lock = match process::read_lock(&pidfile) {
        Lock::Present(p) if p.pid == pid => Some(p),
        _ => None,
    };
    // Root signals only the data directory's owner's processes: a pid the tree walk finds
    // that belongs to anybody else (a forked helper that changed user, a reused pid) is left.
    let owner = process::owner_of(&cfg.datadir).unwrap_or(0);
    if !process::owned_by(pid, owner) {
        return Err(OcfError::generic(format!("pid {pid} does not run as the data directory's owner (uid {owner}): not killing it")));
    }
    // The state service watches this postmaster: its death here is the stop's, no crash.
    crate::state::crash::intend_kill(pid);
    let _mark = Done(pid);
    // The postmaster first, so that it cannot start another child meanwhile.
    let procs: Vec<i32> = process::tree(pid).into_iter().filter(|p| process::owned_by(*p, owner)).collect();
    for p in &procs {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    // Children forked between the listing and the kill of their parent.
    for p in process::tree(pid).into_iter().filter(|p| !procs.contains(p) && process::owned_by(*p, owner)) {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    ocf_warn!("sent SIGKILL to the postmaster (pid {pid}) and {} of its processes", procs.len() - 1);
    loop {
        let left: Vec<i32> = procs.iter().copied().filter(|p| process::alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= until {
            let states: Vec<String> = left.iter().map(|p| format!("{p}: {}", process::state_text(*p))).collect();
            return Err(OcfError::generic(format!("PostgreSQL processes survive SIGKILL ({})", states.join(", ")))
                .context("stuck in the kernel: only fencing ends them"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Some(lock) = lock else {
        ocf_warn!("PostgreSQL killed; {} did not name it, so no lock file or shared memory was removed", pidfile.display());
        return Ok(());
    };
    // The System V segment postmaster.pid names is removed only if it is this instance's:
    // created by this postmaster, owned by the data directory's owner, under the key named,
    // and with nobody attached any more (PostgreSQL's own interlock).
    if let Some((key, id)) = lock.shm {
        match shm_of(id) {
            Some(seg) if seg.key != key || seg.creator != pid || seg.owner != owner => {
                ocf_warn!(
                    "shared memory segment {id} is not the killed instance's (key {}, creator {}, owner {}): left alone",
                    seg.key,
                    seg.creator,
                    seg.owner
                );
            }
            // SAFETY: IPC_RMID on a segment id, with no buffer to fill.
            Some(seg) if seg.attached == 0 && unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) } == 0 => {
                ocf_info!("removed the killed instance's shared memory segment (id {id})");
            }
            Some(seg) if seg.attached == 0 => ocf_warn!("cannot remove the killed instance's shared memory segment (id {id})"),
            Some(seg) => {
                return Err(OcfError::generic(format!("{} processes are still attached to the killed instance's shared memory (id {id})", seg.attached))
                    .context("left postmaster.pid in place: another postmaster may not start on this data directory"));
            }
            None => {} // already gone: nothing to remove
        }
    }
    // The lock files name the dead postmaster: a pid the kernel reuses would block the next
    // start. The socket's is removed only from the socket directory this agent connects to.
    let who = instance::identity(cfg).ok();
    remove_if_names(&pidfile, pid, who);
    if let Some(port) = lock.port {
        let sockdir = lock.sockdir.clone().unwrap_or_else(|| cfg.pghost.clone());
        if same_dir(&sockdir, &cfg.pghost) {
            remove_if_names(&sockdir.join(format!(".s.PGSQL.{port}.lock")), pid, who);
        } else {
            ocf_warn!("postmaster.pid names socket directory {}, not pghost {}: its lock file is left", sockdir.display(), cfg.pghost.display());
        }
    }
    ocf_info!("PostgreSQL killed; postmaster.pid and lock files removed (crash recovery at the next start)");
    Ok(())
}

/// Whether two paths name the same directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Clears the kill's mark for the state service however the kill ends.
struct Done(i32);

impl Drop for Done {
    fn drop(&mut self) {
        crate::state::crash::killed(self.0);
    }
}

/// A System V shared memory segment, as the kernel describes it.
struct Segment {
    key: u64,
    creator: i32,
    owner: u32,
    attached: u64,
}

/// Segment `id`, if it exists.
fn shm_of(id: i32) -> Option<Segment> {
    // SAFETY: shmid_ds is plain data; IPC_STAT fills it or fails.
    unsafe {
        let mut ds: libc::shmid_ds = std::mem::zeroed();
        (libc::shmctl(id, libc::IPC_STAT, &mut ds) == 0).then_some(Segment {
            key: ds.shm_perm.__key as u32 as u64,
            creator: ds.shm_cpid,
            owner: ds.shm_perm.uid,
            attached: ds.shm_nattch as u64,
        })
    }
}

/// Remove a PostgreSQL lock file whose first line is `pid`: read without following a link,
/// removed as `who` (the data directory's account: unlinking as it can remove nothing that
/// account could not).
fn remove_if_names(path: &Path, pid: i32, who: Option<crate::pg::identity::Identity>) {
    let names = matches!(process::read_lock(path), Lock::Present(p) if p.pid == pid);
    if names {
        match crate::pg::identity::as_user(who, || std::fs::remove_file(path)) {
            Ok(()) => ocf_info!("removed {}", path.display()),
            Err(e) => ocf_warn!("cannot remove {}: {e}", path.display()),
        }
    }
}
