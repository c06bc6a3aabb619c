//! `ocf:paceline:pgsql-state` — runs the node state service (`src/state`) under Pacemaker.
//!
//! A clone of this agent keeps one service process per node: `start` launches it in its
//! own session (so it outlives the action) and returns once it runs, `monitor` says
//! whether it still does (7 when it is gone: Pacemaker restarts it), `stop` ends it with
//! SIGTERM, then SIGKILL near the stop's deadline, and returns success only once the
//! process is gone (a zombie is gone: it runs no code) — a stop that says "stopped" of a
//! live service would let a restart or reload start a second one beside it. The service
//! reads the local PostgreSQL through the same connection parameters as the pgsqlms
//! resource (system_user, pghost, pgport: one shared parameter group), so both resources
//! take the same values.
//!
//! The process is found again through a pid file in `$HA_RSCTMP` that records its pid and
//! its start time (`/proc/<pid>/stat`): the kernel reuses pids, and a (pid, start time)
//! pair names one process for good. Its executable and command line are checked too. So a
//! stale pid file naming a pid since given to another program is never taken for the
//! service, nor signalled; signals go through a pidfd opened before that check, so the
//! pid cannot change hands between the check and the kill.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::agents::pgsqlms;
use crate::ocf::{main_with, Action, ActionSpec, AgentSpec, Deadline, OcfEnv, OcfError, OcfRc, OcfResult, Param, ParamKind, Params};
use crate::state::http::Endpoints;
use crate::state::serve::{self, Settings};
use crate::{ocf_info, ocf_warn};

pub static PARAMS: &[Param] = &[Param::new(
    "sync_wait_limit",
    ParamKind::Integer,
    "Longest commit wait for absent standbys (ms)",
    "With synchronous replication (pgsqlms synchronous_mode on/strict): a session whose commit has waited this many milliseconds while the synchronous standbys did not answer is ended, so its client gets an error instead of the success PostgreSQL gives a cancelled wait (statement_timeout, pg_cancel_backend). Keep client timeouts above it. 0 disables the guard.",
)
.default("500")
.reloadable(),
Param::new("http_port", ParamKind::Integer, "Port of the HTTP routing checks and metrics (0: off)",
    "Routing checks over HTTP with Patroni's REST paths and codes (GET /primary, /replica, /replica?lag=16MB, /read-only, /health: 200 or 503), so that an HAProxy configuration written for Patroni (option httpchk, http-check expect status 200) works unchanged; /metrics in Prometheus text format. 8008 is Patroni's port. 0 disables HTTP.")
.default("8008")
.reloadable(),
Param::new("tcp_port", ParamKind::Integer, "Port of the TCP role line (0: off)",
    "A TCP port that writes one line, production or standby, and closes: the check of PAF's HAProxy demo (tcp-check expect string production), answered from the same state as HTTP (5431 in that demo). 0 disables it.")
.default("0")
.reloadable(),
Param::new("listen_address", ParamKind::String, "Address the checks listen on",
    "The local address the HTTP and TCP checks listen on: 0.0.0.0 (every IPv4 address), :: (every address), or one address of this node to keep the checks off other networks.")
.default("0.0.0.0")
.reloadable(),
Param::new("allow", ParamKind::String, "Networks the checks answer",
    "Addresses or networks (192.0.2.0/24, 2001:db8::/32), separated by spaces or commas, that the HTTP and TCP checks answer; a connection from anywhere else is closed at once, unanswered, and takes none of the service's connections. Empty: every client. Give the cluster's networks: the load balancers' addresses (and the monitoring's, for /metrics). Allowed or not, one client (an IPv4 address, an IPv6 /64) is served at most 32 connections at once, and a full pool (1024) makes room for a client that holds fewer, so that no client can crowd the load balancers out.")
.default("")
.reloadable(),
Param::new("crash_reports", ParamKind::Boolean, "Report a crashed PostgreSQL at once",
    "Watch the local postmaster and, when it dies without shutting down (killed, crashed: its lock file is left behind), report pgsql_resource failed on this node at once (crm_resource --fail), so that recovery starts now instead of at the next monitor. Shutdowns by pgsqlms or pg_ctl are never reported.")
.default("true")
.reloadable(),
Param::new("instant_reconnect", ParamKind::Boolean, "Follow a new primary at once",
    "When the local standby has lost its primary (switchover, failover), PostgreSQL retries only every wal_retrieve_retry_interval (5 s by default) and, with synchronous replication, the new primary's commits wait for it. With this on, the service probes the address primary_conninfo names (hostaddr, or a host given as an IP address) every 100 ms while the standby has no walreceiver and, once it accepts connections, calls pg_reload_conf(), which ends PostgreSQL's wait: the standby streams again within milliseconds. Nothing is changed; a target that accepts TCP but never lets the standby stream is nudged less and less often (0.25 s, 0.5 s, 1 s... up to 64 s). A walreceiver whose connection attempt hangs for 10 s (it ignores connect_timeout) is ended, and the standby tries again.")
.default("true")
.reloadable(),
Param::new("pgsql_resource", ParamKind::String, "The pgsqlms resource",
    "The name of the ocf:paceline:pgsqlms resource (the primitive, not the clone): this node answers primary only while Pacemaker has it promoted here and the partition is quorate.")
.default("pgsqld")
.reloadable()];

pub static SPEC: AgentSpec = AgentSpec {
    name: "pgsql-state",
    shortdesc: "Node state service for PostgreSQL clusters (paceline)",
    longdesc: "Runs paceline's per-node state service as a clone beside ocf:paceline:pgsqlms. It guards synchronous commits: \
        when the synchronous standbys stop answering, the sessions waiting for them are ended before a client's cancel could \
        turn a commit that may be lost into a success.",
    params: &[pgsqlms::CONNECTION, PARAMS],
    actions: &[
        ActionSpec::new("start", 20),
        ActionSpec::new("stop", 20),
        ActionSpec::new("monitor", 10).interval(10).depth(0),
        // Every parameter is reloadable: the service restarts with the new values (it holds
        // no state a restart would lose), so a `pcs resource update` never stops the clone.
        ActionSpec::new("reload-agent", 20),
        ActionSpec::new("meta-data", 5),
        ActionSpec::new("validate-all", 5),
    ],
};

pub fn main() -> ! {
    main_with(&SPEC, dispatch)
}

fn dispatch(a: &Action) -> Option<OcfResult> {
    Some(match a.name {
        "start" => start(a.env),
        "stop" => stop(a.env),
        "monitor" => monitor(a.env),
        "validate-all" => Config::from_env(a.env).map(|_| OcfRc::Success),
        "reload-agent" => Config::from_env(a.env).and_then(|_| stop(a.env)).and_then(|_| start(a.env)),
        // The service itself, launched by start (not an OCF action).
        SERVE => Config::from_env(a.env).and_then(|c| serve::serve(&c.settings)).map(|_| OcfRc::Success),
        // Its root crash reporter, started by the service (src/state/crash.rs).
        crate::state::crash::REPORTER => {
            Config::from_env(a.env).and_then(|c| crate::state::crash::reporter_main(&c.settings.resource, c.settings.node.clone())).map(|_| OcfRc::Success)
        }
        _ => return None,
    })
}

/// The argument start runs this binary with to become the service.
const SERVE: &str = "serve";

struct Config {
    settings: Settings,
    pidfile: PathBuf,
    timeout: Duration,
}

impl Config {
    fn from_env(env: &OcfEnv) -> Result<Config, OcfError> {
        let p = Params::parse(SPEC.params, env)?;
        let pgsqlms::Connection { system_user: user, pghost: socket_dir, pgport: port } = pgsqlms::Connection::from_params(&p)?;
        let limit = p.int("sync_wait_limit").unwrap_or(500);
        let limit = u64::try_from(limit).map_err(|_| OcfError::configured(format!("sync_wait_limit must be 0 or more milliseconds, got {limit}")))?;
        let who = pgsqlms::identity_of(&user)?;
        let instance = env.instance();
        let resource = instance.split(':').next().unwrap_or(instance);
        let pidfile = pgsqlms::scores::cache_dir().join(format!("paceline-state-{resource}.pid"));
        let addr: std::net::IpAddr = p
            .str("listen_address")
            .unwrap_or("0.0.0.0")
            .trim()
            .parse()
            .map_err(|_| OcfError::configured(format!("listen_address '{}' is not an IP address", p.str("listen_address").unwrap_or(""))))?;
        let port_of = |name: &str, default: i64| -> Result<Option<std::net::SocketAddr>, OcfError> {
            let v = p.int(name).unwrap_or(default);
            match u16::try_from(v) {
                Ok(0) => Ok(None),
                Ok(port) => Ok(Some(std::net::SocketAddr::new(addr, port))),
                Err(_) => Err(OcfError::configured(format!("{name} {v} is not a TCP port (0 disables it)"))),
            }
        };
        let allow = crate::state::http::parse_allow(p.str("allow").unwrap_or("")).map_err(|e| OcfError::configured(format!("allow: {e}")))?;
        let endpoints = Endpoints { http: port_of("http_port", 8008)?, tcp: port_of("tcp_port", 0)?, allow };
        if endpoints.http.is_some() && endpoints.http == endpoints.tcp {
            return Err(OcfError::configured("http_port and tcp_port must differ"));
        }
        let pgsql_resource = p.str("pgsql_resource").unwrap_or("pgsqld").trim().to_owned();
        if pgsql_resource.is_empty() || pgsql_resource.contains(|c: char| c.is_whitespace() || c == ':') {
            return Err(OcfError::configured(format!("pgsql_resource '{pgsql_resource}' is not a resource name (the primitive, without :N)")));
        }
        Ok(Config {
            settings: Settings {
                socket_dir,
                port,
                user,
                who: nix::unistd::geteuid().is_root().then_some(who),
                sync_wait_limit: Duration::from_millis(limit),
                endpoints,
                resource: pgsql_resource,
                node: env.on_node().map(str::to_owned),
                crash_reports: p.bool("crash_reports"),
                instant_reconnect: p.bool("instant_reconnect"),
            },
            pidfile,
            timeout: env.timeout_or(Duration::from_secs(20)),
        })
    }
}

/// The service process as the pid file records it: pid and start time (clock ticks after
/// boot; `None` in a pid file written before start times were recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Service {
    pid: i32,
    started: Option<u64>,
}

impl Service {
    /// The pid file's text.
    fn line(&self) -> String {
        match self.started {
            Some(t) => format!("{} {t}\n", self.pid),
            None => format!("{}\n", self.pid),
        }
    }

    fn parse(text: &str) -> Option<Service> {
        let mut words = text.split_whitespace();
        let pid: i32 = words.next()?.parse().ok().filter(|p| *p > 0)?;
        let started = match words.next() {
            Some(w) => Some(w.parse().ok()?),
            None => None,
        };
        Some(Service { pid, started })
    }
}

/// State letter and start time of process `pid` (fields 3 and 22 of `/proc/<pid>/stat`).
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.first()?.chars().next()?, fields.get(19)?.parse().ok()?))
}

/// The file name of an executable path, without the " (deleted)" the kernel appends once
/// the file was replaced (paceline reinstalled under a running service).
fn exe_name(path: &std::path::Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    Some(name.strip_suffix(" (deleted)").unwrap_or(name).to_owned())
}

/// Whether `svc` is a live process (not a zombie: it runs no code) that is our service:
/// the start time the pid file recorded, this agent's executable (paceline's multi-call
/// binary), and the command line start gave it (`pgsql-state serve`).
fn is_service(svc: Service) -> bool {
    let Some((state, started)) = proc_stat(svc.pid) else { return false };
    if state == 'Z' || svc.started.is_some_and(|t| t != started) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", svc.pid)) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let cmd_ours = args.get(1).is_some_and(|a| *a == SERVE.as_bytes()) && args.first().is_some_and(|a| a.ends_with(SPEC.name.as_bytes()));
    let theirs = std::fs::read_link(format!("/proc/{}/exe", svc.pid)).ok();
    let exe_ours = match (theirs.as_deref().and_then(exe_name), std::env::current_exe().ok().as_deref().and_then(exe_name)) {
        (Some(t), Some(o)) => t == o,
        _ => false,
    };
    // Read last: a process that exited meanwhile is not running.
    cmd_ours && exe_ours && proc_stat(svc.pid).is_some_and(|(s, t)| s != 'Z' && t == started)
}

/// The service, if the pid file names a live process that is ours (with its start time
/// filled in when the pid file is an old one without it).
fn running(cfg: &Config) -> Option<Service> {
    let mut svc = Service::parse(&std::fs::read_to_string(&cfg.pidfile).ok()?)?;
    if svc.started.is_none() {
        svc.started = proc_stat(svc.pid).map(|(_, t)| t);
    }
    is_service(svc).then_some(svc)
}

/// A handle that signals the service and nothing else: a pidfd (Linux 5.3) opened before
/// the identity check, so a pid reused after the check cannot receive the signal; `kill`
/// where pidfd_open is missing.
struct Handle {
    svc: Service,
    fd: Option<std::os::fd::OwnedFd>,
}

impl Handle {
    /// None when `svc` is not (or no longer) the service.
    fn open(svc: Service) -> Option<Handle> {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags, returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, svc.pid, 0) };
        let fd = if fd >= 0 {
            // SAFETY: the descriptor was just returned to us and is owned by nothing else.
            Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
        } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return None;
        } else {
            None
        };
        is_service(svc).then_some(Handle { svc, fd })
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        use std::os::fd::AsRawFd;
        match &self.fd {
            // SAFETY: a pidfd we own, a valid signal number, no siginfo, no flags.
            Some(fd) => unsafe {
                libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig as libc::c_int, std::ptr::null::<libc::siginfo_t>(), 0);
            },
            None => {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.svc.pid), sig);
            }
        }
    }

    /// Poll until the service is gone (exited, a zombie, or its pid another process now),
    /// or `until`: whether it is gone.
    fn gone_by(&self, until: Instant) -> bool {
        loop {
            if !is_service(self.svc) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn start(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    if let Some(svc) = running(&cfg) {
        ocf_info!("already running (pid {})", svc.pid);
        return Ok(OcfRc::Success);
    }
    // The service outlives this start, in a session of its own, under this agent's name
    // (`running` knows the service by it), not bound by the start's timeout.
    let mut cmd = crate::cmd::this_agent_detached(SPEC.name, SERVE)?;
    if let Some(dir) = cfg.pidfile.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // The service drops root once its ports are bound: the files it writes go to a
    // directory of its own, owned by the account it becomes.
    if let Some(who) = cfg.settings.who {
        crate::state::demoting::prepare_service_dir(cfg.settings.port, who)
            .map_err(|e| OcfError::generic(format!("cannot prepare {}: {e}", crate::state::demoting::service_dir(cfg.settings.port).display())))?;
    }
    let mut child = cmd.spawn().map_err(|e| OcfError::generic(format!("cannot start the state service: {e}")))?;
    let pid = child.id() as i32;
    // The child is ours and not reaped yet: its start time is readable (set at fork, kept by exec).
    let svc = Service { pid, started: proc_stat(pid).map(|(_, t)| t) };
    crate::files::keep(&cfg.pidfile, svc.line().as_bytes()).map_err(|e| OcfError::generic(format!("cannot write {}: {e}", cfg.pidfile.display())))?;
    // A service that cannot run exits at once: give it that moment to say so.
    let until = Instant::now() + Duration::from_millis(150);
    while Instant::now() < until {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_file(&cfg.pidfile);
            return Err(OcfError::generic(format!("the state service exited at once ({status}); see the log")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ocf_info!("state service started (pid {pid})");
    Ok(OcfRc::Success)
}

fn monitor(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    Ok(if running(&cfg).is_some() { OcfRc::Success } else { OcfRc::NotRunning })
}

/// stop: SIGTERM, then SIGKILL when the service has not ended a moment before the
/// deadline; success only once it is gone. Still there at the deadline (a process stuck
/// in the kernel, which no signal ends) is OCF_ERR_GENERIC, and the pid file is kept so
/// that the next monitor still sees it.
fn stop(env: &OcfEnv) -> OcfResult {
    use nix::sys::signal::Signal;
    let cfg = Config::from_env(env)?;
    let deadline = Deadline::for_timeout(cfg.timeout);
    let Some(handle) = running(&cfg).and_then(Handle::open) else {
        let _ = std::fs::remove_file(&cfg.pidfile);
        return Ok(OcfRc::Success);
    };
    end(&handle, deadline, Signal::SIGKILL)?;
    let _ = std::fs::remove_file(&cfg.pidfile);
    ocf_info!("state service stopped (pid {})", handle.svc.pid);
    Ok(OcfRc::Success)
}

/// End the service: SIGTERM, then `kill` (SIGKILL; a test passes one the process ignores
/// to stand for a process that no signal ends) when it has not ended a moment before
/// `deadline`, then wait for it to be gone until `deadline`.
fn end(handle: &Handle, deadline: Deadline, kill: nix::sys::signal::Signal) -> Result<(), OcfError> {
    let pid = handle.svc.pid;
    handle.signal(nix::sys::signal::Signal::SIGTERM);
    // Kept for the kill to take effect: a second, or half of what is left.
    let reserve = Duration::from_secs(1).min(deadline.remaining() / 2);
    let term_until = deadline.end().checked_sub(reserve).unwrap_or_else(Instant::now);
    if handle.gone_by(term_until) {
        return Ok(());
    }
    ocf_warn!("the state service (pid {pid}) did not stop on SIGTERM: sending {kill}");
    handle.signal(kill);
    if handle.gone_by(deadline.end()) {
        return Ok(());
    }
    let state = proc_stat(pid).map_or('?', |(s, _)| s);
    Err(OcfError::generic(format!("the state service (pid {pid}, state {state}) is still there after {kill}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> OcfEnv {
        OcfEnv::from_pairs(pairs.iter().map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())))
    }

    #[test]
    fn metadata_lists_the_shared_connection_group_and_its_own() {
        let xml = SPEC.metadata_xml();
        for p in SPEC.all_params() {
            assert!(xml.contains(&format!("<parameter name=\"{}\"", p.name)), "{}", p.name);
        }
        assert!(xml.contains("<parameter name=\"system_user\"") && xml.contains("<parameter name=\"sync_wait_limit\""));
    }

    #[test]
    fn bad_input_is_configured() {
        for case in [
            &[("sync_wait_limit", "-1")][..],
            &[("sync_wait_limit", "soon")],
            &[("pgport", "0")],
            &[("pghost", "relative")],
            &[("allow", "192.0.2.0/40")],
            &[("crash_reports", "maybe")],
        ] {
            let e = Config::from_env(&env(case)).err().unwrap_or_else(|| panic!("{case:?} accepted"));
            assert_eq!(e.rc, OcfRc::ErrConfigured, "{case:?}: {}", e.reason);
        }
    }

    #[test]
    fn pid_file_lines() {
        let svc = Service { pid: 42, started: Some(123456) };
        assert_eq!(Service::parse(&svc.line()), Some(svc));
        // Written by an older paceline: the pid alone.
        assert_eq!(Service::parse("42\n"), Some(Service { pid: 42, started: None }));
        for bad in ["", "x", "0", "-1", "42 soon", "  "] {
            assert_eq!(Service::parse(bad), None, "{bad:?}");
        }
    }

    /// A stand-in for the service that the tests below run as a child: this test binary
    /// (the same executable as the tests, as the agent is for the service) with the
    /// service's command line, `pgsql-state serve` — libtest takes `serve` as a name filter
    /// matching no test and runs this one — ignoring SIGTERM, as a hung service would.
    #[test]
    #[ignore = "run by other tests as a child process"]
    fn stand_in_service() {
        if std::env::var_os("PACELINE_STAND_IN").is_none() {
            return;
        }
        // SAFETY: SIG_IGN installs no handler.
        unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGTERM, nix::sys::signal::SigHandler::SigIgn) }.unwrap();
        std::thread::sleep(Duration::from_secs(60));
    }

    /// Start the stand-in; returns the child (to reap) and its recorded identity.
    fn stand_in() -> (std::process::Child, Service) {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg0("/usr/lib/ocf/resource.d/paceline/pgsql-state")
            .args([SERVE, "agents::pgsql_state::tests::stand_in_service", "--exact", "--ignored", "--test-threads=1", "-q"])
            .env("PACELINE_STAND_IN", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let svc = Service { pid, started: proc_stat(pid).map(|(_, t)| t) };
        // Until it has installed SIG_IGN: its SigIgn mask in /proc has SIGTERM (15: bit 14).
        let t = Instant::now();
        let ignores_term = || {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .is_some_and(|m| m & (1 << 14) != 0)
        };
        while !ignores_term() {
            assert!(t.elapsed() < Duration::from_secs(10), "the stand-in did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        (child, svc)
    }

    #[test]
    fn a_reused_pid_is_not_the_service_nor_signalled() {
        let (mut child, svc) = stand_in();
        assert!(is_service(svc), "the stand-in passes for the service");
        // The same pid with another start time: the pid file is older than this process.
        let stale = Service { started: svc.started.map(|t| t + 1), ..svc };
        assert!(!is_service(stale) && Handle::open(stale).is_none());
        child.kill().unwrap();
        child.wait().unwrap();
        // A live program of another executable under a pid file's pid, old format or new.
        let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = other.id() as i32;
        for svc in [Service { pid, started: None }, Service { pid, started: proc_stat(pid).map(|(_, t)| t) }] {
            assert!(!is_service(svc), "{svc:?}");
            assert!(Handle::open(svc).is_none(), "{svc:?}: would be signalled");
        }
        assert_eq!(other.try_wait().unwrap(), None, "sleep was killed");
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[test]
    fn end_waits_for_the_kill_and_takes_a_zombie_for_gone() {
        let (mut child, svc) = stand_in();
        let handle = Handle::open(svc).expect("the stand-in");
        let t = Instant::now();
        // SIGTERM is ignored: SIGKILL one second before the deadline; the child then stays a
        // zombie (this test reaps it only afterwards), which is gone.
        end(&handle, Deadline::after(Duration::from_secs(3)), nix::sys::signal::Signal::SIGKILL).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(1500), "gave SIGTERM its time: {:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        // The pidfd says "exited" as the kernel starts the exit; /proc shows the zombie a
        // moment later (it read 'R' once in CI): give it that moment.
        let until = Instant::now() + Duration::from_secs(1);
        while proc_stat(svc.pid).map(|(s, _)| s) != Some('Z') && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(proc_stat(svc.pid).map(|(s, _)| s), Some('Z'), "a zombie until reaped");
        child.wait().unwrap();
    }

    #[test]
    fn end_fails_at_the_deadline_while_the_process_is_there() {
        let (mut child, svc) = stand_in();
        let handle = Handle::open(svc).expect("the stand-in");
        let t = Instant::now();
        // A signal it ignores stands for a process that SIGKILL cannot end (stuck in the kernel).
        let e = end(&handle, Deadline::after(Duration::from_secs(2)), nix::sys::signal::Signal::SIGTERM).unwrap_err();
        assert_eq!(e.rc, OcfRc::ErrGeneric);
        assert!(e.reason.contains(&format!("pid {}", svc.pid)) && e.reason.contains("still there"), "{}", e.reason);
        assert!(t.elapsed() >= Duration::from_secs(2) && t.elapsed() < Duration::from_secs(3), "bounded by the deadline: {:?}", t.elapsed());
        assert!(is_service(svc), "still running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn docs_show_the_parameter_table() {
        assert_eq!(crate::ocf::params::docs_block("pgsql-state").unwrap(), SPEC.markdown_table(), "regenerate with `paceline params pgsql-state`");
    }
}
