//! `ocf:paceline:pgsql-state` — runs the node state service (`src/state`) under Pacemaker.
//!
//! A clone of this agent keeps one service process per node: `start` launches it in its
//! own session (so it outlives the action) and returns once it runs, `monitor` says
//! whether it still does (7 when it is gone: Pacemaker restarts it), `stop` ends it with
//! SIGTERM, then SIGKILL at the stop's deadline. The service reads the local PostgreSQL
//! through the same connection parameters as the pgsqlms resource (system_user, pghost,
//! pgport: one shared parameter group), so both resources take the same values.
//!
//! The process is found again through a pid file in `$HA_RSCTMP`, checked against
//! `/proc/<pid>/cmdline`, so a recycled pid is never taken for the service (nor killed).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::agents::pgsqlms;
use crate::ocf::{main_with, Action, ActionSpec, AgentSpec, OcfEnv, OcfError, OcfRc, OcfResult, Param, ParamKind, Params};
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
    "Addresses or networks (192.0.2.0/24, 2001:db8::/32), separated by spaces or commas, that the HTTP and TCP checks answer; a connection from anywhere else is closed unanswered. Empty: every client. Give the load balancers' addresses (and the monitoring's, for /metrics).")
.default("")
.reloadable(),
Param::new("crash_reports", ParamKind::Boolean, "Report a crashed PostgreSQL at once",
    "Watch the local postmaster and, when it dies without shutting down (killed, crashed: its lock file is left behind), report pgsql_resource failed on this node at once (crm_resource --fail), so that recovery starts now instead of at the next monitor. Shutdowns by pgsqlms or pg_ctl are never reported.")
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
            },
            pidfile,
            timeout: env.timeout_or(Duration::from_secs(20)),
        })
    }
}

/// The service's pid, if the pid file names a live process of ours.
fn running(cfg: &Config) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(&cfg.pidfile).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let ours = args.get(1).is_some_and(|a| *a == SERVE.as_bytes()) && args.first().is_some_and(|a| a.ends_with(SPEC.name.as_bytes()));
    // Gone between the two reads counts as not running.
    (ours && pgsqlms::zombie(pid) == Some(false)).then_some(pid)
}

fn start(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    if let Some(pid) = running(&cfg) {
        ocf_info!("already running (pid {pid})");
        return Ok(OcfRc::Success);
    }
    let exe = std::env::current_exe().map_err(|e| OcfError::installed(format!("cannot find this agent's binary: {e}")))?;
    let mut cmd = std::process::Command::new(&exe);
    // Under this agent's name: the binary is paceline's multi-call one (src/install.rs), and
    // `running` knows the service by it.
    std::os::unix::process::CommandExt::arg0(&mut cmd, SPEC.name);
    cmd.arg(SERVE).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    // Its own session: not in the action's process group, which Pacemaker may signal.
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
        }
    }
    if let Some(dir) = cfg.pidfile.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut child = cmd.spawn().map_err(|e| OcfError::generic(format!("cannot start the state service: {e}")))?;
    let pid = child.id() as i32;
    std::fs::write(&cfg.pidfile, format!("{pid}\n")).map_err(|e| OcfError::generic(format!("cannot write {}: {e}", cfg.pidfile.display())))?;
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

fn stop(env: &OcfEnv) -> OcfResult {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let cfg = Config::from_env(env)?;
    let Some(pid) = running(&cfg) else {
        let _ = std::fs::remove_file(&cfg.pidfile);
        return Ok(OcfRc::Success);
    };
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let until = Instant::now() + cfg.timeout.saturating_sub(Duration::from_secs(2)).max(Duration::from_secs(1));
    while running(&cfg).is_some() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    if running(&cfg).is_some() {
        ocf_warn!("the state service (pid {pid}) did not stop on SIGTERM: killing it");
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&cfg.pidfile);
    Ok(OcfRc::Success)
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
    fn docs_show_the_parameter_table() {
        assert_eq!(crate::ocf::params::docs_block("pgsql-state").unwrap(), SPEC.markdown_table(), "regenerate with `paceline params pgsql-state`");
    }
}
