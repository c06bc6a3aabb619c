//! The local instance: who owns it, what state it is in, and running its control tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::Config;
use crate::ocf::OcfError;
use crate::ocf_debug;
use crate::pg::client::{ConnectError, Identity, Local};
use crate::pg::{ClusterState, ControlData};

/// What the local instance is doing, as far as the cluster cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Primary,
    Standby,
    /// Cleanly stopped; `as_primary` when its last shutdown was as a primary.
    Stopped {
        as_primary: bool,
    },
    /// Not running, and pg_control says it was in production: a primary that crashed.
    CrashedPrimary,
    /// Not running, and pg_control says it was in recovery: a standby that crashed.
    CrashedStandby,
    /// Running but not usable (not accepting connections, or an error): the reason.
    Broken(String),
}

impl State {
    /// No server runs (stopped or crashed), as read from pg_control.
    pub fn is_down(&self) -> bool {
        matches!(self, State::Stopped { .. } | State::CrashedPrimary | State::CrashedStandby)
    }
}

/// The OS identity of `system_user`.
pub fn identity(cfg: &Config) -> Result<Identity, OcfError> {
    identity_of(&cfg.system_user)
}

/// The OS identity of the user `name` (a `system_user` parameter).
pub fn identity_of(name: &str) -> Result<Identity, OcfError> {
    match Identity::lookup(name) {
        Ok(Some(who)) => Ok(who),
        Ok(None) => Err(OcfError::installed(format!("system_user '{name}' does not exist on this node (not in /etc/passwd)"))),
        Err(e) => Err(OcfError::generic(format!("cannot read /etc/passwd: {e}"))),
    }
}

/// The identity to switch to for connecting: only when running as root.
fn connect_as(who: Identity) -> Option<Identity> {
    nix::unistd::geteuid().is_root().then_some(who)
}

/// Connect to the local instance.
pub fn connect(cfg: &Config, who: Identity, timeout: Duration) -> Result<Local, ConnectError> {
    Local::connect(&cfg.pghost, cfg.pgport, &cfg.system_user, connect_as(who), timeout)
}

/// The postmaster serving the data directory, if one runs: from evidence, not from
/// `postmaster.pid` alone ([`crate::pg::process::postmaster_of`]).
pub fn postmaster_alive(datadir: &Path) -> Option<i32> {
    crate::pg::process::postmaster_of(datadir)
}

/// A PostgreSQL that serves another data directory on the socket this agent uses (its pid
/// and the directory it works in), read from the socket's lock file and checked against the
/// process. When this agent finds no postmaster on `datadir` but one serves `pghost:pgport`,
/// the parameters point at the wrong place (pgdata/datadir): "not running" would be a lie
/// that makes Pacemaker start a second instance elsewhere.
pub fn foreign_on_socket(cfg: &Config) -> Option<(i32, PathBuf)> {
    use crate::pg::process::{self, Lock};
    let Lock::Present(lock) = process::read_lock(&cfg.pghost.join(format!(".s.PGSQL.{}.lock", cfg.pgport))) else { return None };
    if !process::is_postmaster(lock.pid) {
        return None;
    }
    let serves = process::cwd(lock.pid).unwrap_or(lock.datadir);
    let ours = std::fs::canonicalize(&cfg.datadir).unwrap_or_else(|_| cfg.datadir.clone());
    (serves != ours).then_some((lock.pid, serves))
}

/// The error for [`foreign_on_socket`]'s finding.
pub fn foreign_error(cfg: &Config, pid: i32, serves: &Path) -> OcfError {
    OcfError::generic(format!(
        "PostgreSQL (pid {pid}) on port {} serves {}, not datadir {}: fix pgdata/datadir (not reporting it stopped)",
        cfg.pgport,
        serves.display(),
        cfg.datadir.display()
    ))
}

/// Refuse to go on while a postmaster runs on the data directory.
pub fn ensure_stopped(cfg: &Config) -> Result<(), OcfError> {
    match postmaster_alive(&cfg.datadir) {
        Some(pid) => Err(OcfError::generic(format!("PostgreSQL (pid {pid}) is running on {}", cfg.datadir.display()))),
        None => Ok(()),
    }
}

/// Read the local instance's state. `budget` bounds the whole look.
pub fn state(cfg: &Config, who: Identity, budget: Duration) -> Result<State, OcfError> {
    state_and_connection(cfg, who, budget).map(|(st, _)| st)
}

/// The state, and the connection it was read through when the instance runs (so that the
/// caller can go on asking without connecting again).
pub fn state_and_connection(cfg: &Config, who: Identity, budget: Duration) -> Result<(State, Option<Local>), OcfError> {
    let connect_timeout = budget.min(Duration::from_secs(5));
    match connect(cfg, who, connect_timeout) {
        Ok(local) => {
            let standby = local.in_recovery(connect_timeout)?;
            Ok((if standby { State::Standby } else { State::Primary }, Some(local)))
        }
        Err(ConnectError::Rejected(msg)) => Ok((State::Broken(format!("PostgreSQL does not accept connections: {msg}")), None)),
        Err(e) => {
            if let Some(pid) = postmaster_alive(&cfg.datadir) {
                return Ok((State::Broken(format!("the postmaster (pid {pid}) runs but the agent cannot connect: {}", e.message())), None));
            }
            if let Some((pid, serves)) = foreign_on_socket(cfg) {
                return Err(foreign_error(cfg, pid, &serves));
            }
            ocf_debug!("no server ({}); reading pg_control", e.message());
            stopped_state(cfg, budget).map(|st| (st, None))
        }
    }
}

/// The state of an instance known not to run, from pg_control.
pub fn stopped_state(cfg: &Config, budget: Duration) -> Result<State, OcfError> {
    // A base backup that was never started still has its backup_label, and a pg_control
    // copied from the running primary ("in production"): it is a stopped standby.
    if cfg.datadir.join("backup_label").exists() {
        return Ok(State::Stopped { as_primary: false });
    }
    let cd = ControlData::read(&cfg.bindir, &cfg.datadir, budget)?;
    Ok(match cd.state {
        ClusterState::ShutDown => State::Stopped { as_primary: true },
        ClusterState::ShutDownInRecovery => State::Stopped { as_primary: false },
        ClusterState::InProduction => State::CrashedPrimary,
        ClusterState::InArchiveRecovery => State::CrashedStandby,
        // Stopped in the middle of a transition: PostgreSQL recovers from each at its next
        // start, and so do we — a crashed instance, of the role it was in. Only a primary
        // writes "shutting down" (its shutdown checkpoint; a standby's restartpoint ends
        // as "shut down in recovery"); crash recovery is a primary's start (a standby's is
        // archive recovery) unless standby.signal says it was starting as a standby; and
        // "starting up" says nothing of the role but standby.signal.
        ClusterState::ShuttingDown => State::CrashedPrimary,
        ClusterState::InCrashRecovery | ClusterState::Starting => {
            if cfg.datadir.join("standby.signal").exists() {
                State::CrashedStandby
            } else {
                State::CrashedPrimary
            }
        }
    })
}

/// Where pg_ctl sends the server's own output: the usual Debian log directory when it
/// exists (one file per instance: the resource and its port, so that the FATAL line a
/// failed start quotes is this instance's, whatever else runs on the node), else the data
/// directory.
pub fn server_log(cfg: &Config) -> PathBuf {
    let debian = Path::new("/var/log/postgresql");
    if debian.is_dir() {
        debian.join(format!("paceline-{}-{}.log", cfg.resource, cfg.pgport))
    } else {
        cfg.datadir.join("paceline-server.log")
    }
}

/// A PostgreSQL tool from bindir, to run as system_user (they refuse root), in the C locale.
pub fn pg_tool(cfg: &Config, who: Identity, tool: &str) -> Command {
    let mut cmd = Command::new(cfg.bindir.join(tool));
    cmd.env("LC_ALL", "C").current_dir("/");
    if nix::unistd::geteuid().is_root() {
        // With the account's groups, as its packages start it (Debian's ssl-cert).
        crate::pg::identity::command_as(&mut cmd, who);
    }
    cmd
}

/// Run `pg_ctl ARGS -D pgdata` as system_user, bounded by `timeout`.
pub fn pg_ctl(cfg: &Config, who: Identity, args: &[&str], timeout: Duration) -> Result<(), OcfError> {
    let mut cmd = pg_tool(cfg, who, "pg_ctl");
    cmd.args(args).arg("-D").arg(&cfg.pgdata);
    if args.first() == Some(&"start") {
        let log = server_log(cfg);
        // Created (never truncated) as system_user, like everything in its directories:
        // a link planted at the log's name cannot make root create or hand over a file.
        let _ = crate::pg::identity::as_user(Some(who), || std::fs::OpenOptions::new().create(true).append(true).open(&log));
        cmd.arg("-l").arg(log);
        if let Some(o) = &cfg.start_opts {
            cmd.arg("-o").arg(o);
        }
    }
    crate::cmd::run(&mut cmd, timeout).map(|_| ())
}

/// The last FATAL or PANIC line the server wrote after a start that began at `since` with
/// pg_ctl's log `from` bytes long (what it said when it gave up starting), without the log
/// line prefix: from the logging collector's file when `logging_collector` is on (the
/// startup process writes there, pg_ctl's log then holds only the redirection notice),
/// else from pg_ctl's log. With the file it was found in.
pub fn server_fatal(cfg: &Config, from: u64, since: std::time::SystemTime) -> Option<(String, PathBuf)> {
    collector_fatal(cfg, since).or_else(|| {
        let log = server_log(cfg);
        fatal_in(cfg, &log, Some(from)).map(|l| (l, log))
    })
}

/// The last server FATAL or PANIC line of the file at `path`, read from byte `from` (None:
/// its last MiB, as the opened file's size says) and at most 1 MiB, as system_user: the
/// logs are that account's, and a link there must not put a line of a file only root may
/// read into an exit reason.
fn fatal_in(cfg: &Config, path: &Path, from: Option<u64>) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let who = identity(cfg).ok();
    let mut f = crate::pg::identity::as_user(who, || std::fs::File::open(path)).ok()?;
    let from = match from {
        Some(at) => at,
        None => f.metadata().ok()?.len().saturating_sub(1 << 20),
    };
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| ["FATAL:", "PANIC:"].iter().find_map(|k| l.find(k).map(|i| l[i..].trim().to_owned())))
        .find(|l| !CLIENT_FATALS.iter().any(|c| l.contains(c)))
}

/// With `logging_collector` on: the FATAL line in the newest file of `log_directory`
/// written since `since` (the settings as the server reads them: `postgres -C`; the
/// directory listed and the file read as system_user, its last MiB).
fn collector_fatal(cfg: &Config, since: std::time::SystemTime) -> Option<(String, PathBuf)> {
    let who = identity(cfg).ok()?;
    let setting = |name: &str| setting(cfg, who, name, Duration::from_secs(5)).ok();
    if !matches!(setting("logging_collector")?.as_str(), "on" | "true" | "1") {
        return None;
    }
    let dir = PathBuf::from(setting("log_directory")?);
    let dir = if dir.is_absolute() { dir } else { cfg.datadir.join(dir) };
    let newest = crate::pg::identity::as_user(Some(who), || -> std::io::Result<Option<PathBuf>> {
        let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
        for e in std::fs::read_dir(&dir)?.take(10_000).flatten() {
            let Ok(m) = e.metadata() else { continue };
            let Ok(t) = m.modified() else { continue };
            if m.is_file() && t + Duration::from_secs(1) >= since && best.as_ref().is_none_or(|(b, _)| t > *b) {
                best = Some((t, e.path()));
            }
        }
        Ok(best.map(|(_, p)| p))
    })
    .ok()??;
    fatal_in(cfg, &newest, None).map(|l| (l, newest))
}

/// A server setting as PostgreSQL reads it for this instance (`postgres -C NAME` on
/// pgdata, with start_opts), as system_user, within `timeout`.
pub fn setting(cfg: &Config, who: Identity, name: &str, timeout: Duration) -> Result<String, OcfError> {
    let mut cmd = pg_tool(cfg, who, "postgres");
    cmd.args(["-C", name, "-D"]).arg(&cfg.pgdata).args(cfg.start_words()?);
    crate::cmd::run(&mut cmd, timeout).map(|v| v.trim().to_owned())
}

/// FATAL lines that end one client's session, not the server: the agent's own connection
/// attempts while the server starts ("the database system is starting up"), other
/// sessions' ends. The reason a server gave up is never one of these.
const CLIENT_FATALS: &[&str] = &[
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "the database system is in recovery mode",
    "terminating connection due to administrator command",
    "authentication failed",
    "no pg_hba.conf entry",
    "FATAL:  role \"",
    "FATAL:  database \"",
    "sorry, too many clients already",
    "remaining connection slots are reserved",
];

/// Poll `state` every 100 ms until `want` says yes, or `until`.
pub fn wait_for(cfg: &Config, who: Identity, until: Instant, want: impl Fn(&State) -> bool) -> Result<State, OcfError> {
    loop {
        let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(200));
        let st = state(cfg, who, left)?;
        if want(&st) || Instant::now() >= until {
            return Ok(st);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The deadline for an action: the one set when the action began (its timeout minus a
/// margin to report before Pacemaker gives up on us, [`crate::ocf::deadline`]), or, run
/// without Pacemaker's timeout, the configured one from now.
pub fn deadline(cfg: &Config) -> Instant {
    crate::ocf::deadline::action().unwrap_or_else(|| crate::ocf::Deadline::for_timeout(cfg.timeout)).end()
}
