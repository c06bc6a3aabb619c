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
use crate::{ocf_info, ocf_warn};

/// How long a postmaster that handles signals takes to acknowledge one, at most.
pub const ACK: Duration = Duration::from_secs(1);

pub fn stop(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    // No identity needed: the shutdown signals the postmaster itself, and a node without
    // system_user (or without the data directory) runs nothing to stop.
    if instance::postmaster_alive(&cfg.datadir).is_none() {
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
        if !instance::alive(pid) {
            return Step::Gone;
        }
        acknowledged = acknowledged || pm_status(&cfg.datadir).as_deref() == Some("stopping");
        let now = Instant::now();
        if !acknowledged && now >= sent + ACK {
            return Step::Unacknowledged(process_state(pid));
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
    let text = std::fs::read_to_string(datadir.join("postmaster.pid")).ok()?;
    text.lines().nth(7).map(|l| l.trim().to_owned()).filter(|l| !l.is_empty())
}

/// What the kernel says `pid` is doing (`T (stopped)`, `D (disk sleep)`…), for the log.
fn process_state(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("State:").map(|v| v.trim().to_owned())))
        .unwrap_or_else(|| "state unknown".into())
}

/// `pid` and every process descending from it, from /proc (parents before children).
fn tree(pid: i32) -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            if let Some(pp) = instance::stat_fields(p).and_then(|f| f.get(1)?.parse::<i32>().ok()) {
                parent_of.push((p, pp));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// SIGKILL the postmaster and its processes, wait for them to be gone, and remove what the
/// kill left behind once nothing is attached to the instance's shared memory.
fn kill_instance(cfg: &Config, pid: i32, until: Instant) -> Result<(), OcfError> {
    let pidfile = cfg.datadir.join("postmaster.pid");
    let text = std::fs::read_to_string(&pidfile).unwrap_or_default();
    // The state service watches this postmaster: its death here is the stop's, no crash.
    crate::state::crash::intend_kill(pid);
    let _mark = Done(pid);
    // The postmaster first, so that it cannot start another child meanwhile.
    let procs = tree(pid);
    for p in &procs {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    // Children forked between the listing and the kill of their parent.
    for p in tree(pid).into_iter().filter(|p| !procs.contains(p)) {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    ocf_warn!("sent SIGKILL to the postmaster (pid {pid}) and {} of its processes", procs.len() - 1);
    loop {
        let left: Vec<i32> = procs.iter().copied().filter(|p| instance::alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= until {
            let states: Vec<String> = left.iter().map(|p| format!("{p}: {}", process_state(*p))).collect();
            return Err(OcfError::generic(format!("PostgreSQL processes survive SIGKILL ({})", states.join(", ")))
                .context("stuck in the kernel: only fencing ends them"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // postmaster.pid line 7: "<shmem key> <shmem id>" of the System V segment.
    let shm_id = text.lines().nth(6).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<i32>().ok());
    if let Some(id) = shm_id {
        match shm_attached(id) {
            Some(0) => {
                // SAFETY: IPC_RMID on a segment id, with no buffer to fill.
                if unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) } == 0 {
                    ocf_info!("removed the killed instance's shared memory segment (id {id})");
                }
            }
            Some(n) => {
                return Err(OcfError::generic(format!("{n} processes are still attached to the killed instance's shared memory (id {id})"))
                    .context("left postmaster.pid in place: another postmaster may not start on this data directory"));
            }
            None => {} // already gone (or not PostgreSQL's any more): nothing to remove
        }
    }
    // The lock files name the dead postmaster: a pid the kernel reuses would block the next start.
    remove_if_names(&pidfile, pid);
    let port = text.lines().nth(3).map(str::trim).unwrap_or_default().to_owned();
    let sockdir = text.lines().nth(4).map(str::trim).filter(|d| !d.is_empty()).map(Path::new).unwrap_or(&cfg.pghost).to_owned();
    if !port.is_empty() {
        remove_if_names(&sockdir.join(format!(".s.PGSQL.{port}.lock")), pid);
    }
    ocf_info!("PostgreSQL killed; postmaster.pid and lock files removed (crash recovery at the next start)");
    Ok(())
}

/// Clears the kill's mark for the state service however the kill ends.
struct Done(i32);

impl Drop for Done {
    fn drop(&mut self) {
        crate::state::crash::killed(self.0);
    }
}

/// How many processes are attached to System V segment `id`, if it exists.
fn shm_attached(id: i32) -> Option<u64> {
    // SAFETY: shmid_ds is plain data; IPC_STAT fills it or fails.
    unsafe {
        let mut ds: libc::shmid_ds = std::mem::zeroed();
        (libc::shmctl(id, libc::IPC_STAT, &mut ds) == 0).then_some(ds.shm_nattch as u64)
    }
}

/// Remove a PostgreSQL lock file whose first line is `pid`.
fn remove_if_names(path: &Path, pid: i32) {
    let names = std::fs::read_to_string(path).ok().and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok())) == Some(pid);
    if names {
        match std::fs::remove_file(path) {
            Ok(()) => ocf_info!("removed {}", path.display()),
            Err(e) => ocf_warn!("cannot remove {}: {e}", path.display()),
        }
    }
}
