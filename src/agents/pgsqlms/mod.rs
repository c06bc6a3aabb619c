//! `ocf:paceline:pgsqlms` — the promotable PostgreSQL agent (PAF-compatible).
//!
//! A Pacemaker promotable clone of this agent keeps exactly one primary among PostgreSQL
//! instances replicating by streaming. The agent's invariants:
//!
//! * `start` only ever starts a **standby** (it writes `standby.signal` first); becoming
//!   primary is Pacemaker's decision, carried out by `promote`.
//! * `monitor` tells the truth about the role: 0 standby, 8 primary, 7 cleanly stopped,
//!   9 crashed primary, 1 anything broken — judged in-process over the local socket, and
//!   from `pg_control` when the instance is down.
//! * `stop` of an instance that is already down — cleanly or crashed — succeeds, so that a
//!   crashed ex-primary never makes a stop fail (which would mean fencing, again and again).
//! * promotion scores come from replication state and are written only when they change.
//!
//! Parameters are PAF's, so a cluster migrates by changing the provider. One file per
//! action: `start.rs`, `stop.rs`, `monitor.rs`, `promote.rs`, `demote.rs`, `notify.rs`,
//! `reload.rs`, `validate.rs`; the state of the local instance is read by [`instance::state`].

mod demote;
pub mod election;
mod history;
mod instance;
pub use crate::pg::process::{alive, is_postmaster, postmaster_of, zombie};
pub use instance::identity_of;
mod monitor;
mod notify;
mod primary;
mod promote;
pub mod rebuild;
mod reload;
mod rewind;
pub use rewind::{rewind_role_name, REWIND_FUNCTIONS};
pub mod scores;
pub mod slots;
mod start;
mod stop;
pub mod sync;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use crate::ocf::{main_with, Action, ActionSpec, AgentSpec, OcfEnv, OcfError, OcfResult, Param, ParamKind, Params, Support};

/// How to reach the local instance: shared with the agents that talk to it (the state
/// service), so they take the same names and defaults as the pgsqlms resource.
pub static CONNECTION: &[Param] = &[
    Param::new("system_user", ParamKind::String, "PostgreSQL's OS user",
        "The operating-system user that owns the instance. The agent connects to PostgreSQL as this user over the local socket (peer authentication) and runs pg_ctl as this user.").default("postgres").reloadable(),
    Param::new("pghost", ParamKind::String, "Socket directory",
        "The directory of the local Unix socket the agent connects through (unix_socket_directories).").default("/var/run/postgresql").reloadable(),
    Param::new("pgport", ParamKind::Integer, "Port",
        "The port PostgreSQL listens on (it also names the local socket).").default("5432").reloadable(),
];

pub static PARAMS: &[Param] = &[
    Param::new("bindir", ParamKind::String, "PostgreSQL binaries directory",
        "Directory holding pg_ctl, pg_controldata and postgres.").default("/usr/bin").reloadable(),
    Param::new("pgdata", ParamKind::String, "Configuration directory",
        "The directory holding postgresql.conf (pg_ctl -D). With Debian's layout, /etc/postgresql/<version>/<cluster>.").default("/var/lib/pgsql/data").unique(),
    Param::new("datadir", ParamKind::String, "Data directory",
        "The data directory (data_directory), where PG_VERSION, standby.signal and pg_control live, when it differs from pgdata.").unique(),
    Param::new("start_opts", ParamKind::String, "Extra postgres options",
        "Extra options given to postgres at start (pg_ctl -o), e.g. \"-c config_file=/etc/postgresql/15/main/postgresql.conf\".").reloadable(),
    Param::new("maxlag", ParamKind::Integer, "Maximum lag for promotion",
        "A standby whose received WAL lags the primary by more than this many bytes gets a negative promotion score. 0 disables the check.").default("0").reloadable(),
    Param::new("recovery_template", ParamKind::String, "recovery.conf template",
        "Only for PostgreSQL 11 and older, which paceline does not support: PostgreSQL 12 and newer use standby.signal and primary_conninfo from the configuration.").support(Support::Ignored).reloadable(),
    Param::new("auto_rewind", ParamKind::Boolean, "Rewind a diverged instance",
        "When an instance's timeline diverged from the current primary (a crashed ex-primary with writes the others never received), run pg_rewind against the primary and start it as a standby, instead of refusing to start it. Discards the diverged writes. Needs wal_log_hints=on or data checksums. Without it, an instance whose WAL past the fork holds no transaction (what an isolated primary's shutdown leaves: its checkpoint) is rewound anyway: nothing is lost.").default("false").reloadable(),
    Param::new("synchronous_mode", ParamKind::String, "Synchronous replication: off, on or strict",
        "off: asynchronous replication, synchronous_standby_names left alone (PAF's behaviour). on: the primary names the streaming standbys in synchronous_standby_names (ANY synchronous_node_count (...)), so a commit is acknowledged only once that many have flushed it, and only those standbys are promotable; with no standby left, writes go on asynchronously and no standby is promotable until one is back and caught up. strict: as on, but without a standby writes wait. The agent owns synchronous_standby_names (ALTER SYSTEM on the primary): do not set it by hand. A standby leaves the set only from a quorate partition, after it was recorded not promotable, so an isolated primary's commits wait instead of being acknowledged.").default("off").reloadable(),
    Param::new("synchronous_node_count", ParamKind::Integer, "Standbys that must confirm each commit",
        "With synchronous_mode on or strict: how many standbys must have flushed a commit before it is acknowledged (PostgreSQL's quorum commit, ANY k). At most the number of standbys (clone-max - 1).").default("1").reloadable(),
    Param::new("rewind_user", ParamKind::String, "User for pg_rewind",
        "The user the timeline check (pg_rewind --dry-run at start) and auto_rewind connect to the primary as, through primary_conninfo with database postgres. Default: the user of primary_conninfo. It needs pg_rewind's privileges on the primary (superuser, or EXECUTE on pg_ls_dir, pg_stat_file, pg_read_binary_file), and preferably pg_checkpoint: a just-promoted primary is asked for a CHECKPOINT first, so that pg_rewind does not read a stale timeline from its control file (without it, the agent waits for the primary's own).").reloadable(),
    Param::new("replication_slots", ParamKind::Boolean, "A replication slot per standby",
        "Keep a physical replication slot on the primary for every other node (paceline_<node>), created before a promotion's first commit and by the primary's monitor, and have each standby stream through its own (primary_slot_name, set by ALTER SYSTEM): a standby down longer than wal_keep_size covers rejoins without a new base backup. The agent touches only slots named paceline_*. max_slot_wal_keep_size still bounds what a slot holds. Needs max_replication_slots above the number of nodes.").default("false").reloadable(),
    Param::new("slot_ttl", ParamKind::Integer, "Seconds an unused slot is kept",
        "With replication_slots: a slot unused for this many seconds is dropped — and created anew, reserving WAL from then on, if its node is still in the cluster; a node gone from the cluster loses its slot. What an absent standby can hold on the primary is this long's WAL (Patroni's member_slots_ttl, 30 min by default).").default("1800").reloadable(),
    Param::new("incident_record", ParamKind::Boolean, "Record each change of primary (paceline history)",
        "Write the incident record of every change of primary and recovery in place as it happens: the old primary's shutdown, the election's candidates with their positions, the promotion and the first writable moment, fencing, the address's move, the old primary's return. Each node keeps the records in /var/lib/paceline/history/<resource> (the newest 200); paceline history shows them. Costs no monitor anything; false only to measure a switchover without it.").default("true").reloadable(),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "pgsqlms",
    shortdesc: "Manages a promotable PostgreSQL instance (paceline)",
    longdesc: "A promotable clone of this agent keeps one PostgreSQL primary and streaming standbys elsewhere: \
        it starts instances as standbys, promotes the one Pacemaker chooses from the promotion scores it \
        maintains from replication state, demotes with a clean shutdown, and reports each instance's role. \
        A drop-in replacement for PAF's ocf:heartbeat:pgsqlms (same parameters), that talks to PostgreSQL \
        in-process instead of forking psql and pg_isready.",
    params: &[CONNECTION, PARAMS],
    actions: &[
        ActionSpec::new("start", 60),
        ActionSpec::new("stop", 60),
        ActionSpec::new("promote", 30),
        ActionSpec::new("demote", 120),
        // Two monitors with distinct intervals, one per role (one name + interval is one
        // operation to Pacemaker); no role-less one, which pcs would have to renumber.
        ActionSpec::new("monitor", 10).interval(15).depth(0).role("Promoted"),
        ActionSpec::new("monitor", 10).interval(16).depth(0).role("Unpromoted"),
        ActionSpec::new("notify", 60),
        // OCF 1.1: Pacemaker reloads instead of restarting when only reloadable parameters
        // change; `reload` is PAF's name for the same action.
        ActionSpec::new("reload-agent", 20),
        ActionSpec::new("reload", 20),
        ActionSpec::new("methods", 5),
        ActionSpec::new("meta-data", 5),
        ActionSpec::new("validate-all", 5),
    ],
};

/// Entry point of the `pgsqlms` binary.
/// Where the local standby stands for an election (what its pre-promote notification
/// publishes): for tools and tests that look at it without a cluster.
pub fn standing(env: &OcfEnv) -> Result<election::Standing, OcfError> {
    let cfg = Config::from_env(env)?;
    notify::position(&cfg, instance::identity(&cfg)?)
}

pub fn main() -> ! {
    main_with(&SPEC, dispatch)
}

fn dispatch(a: &Action) -> Option<OcfResult> {
    Some(match a.name {
        "start" => start::start(a.env),
        "stop" => stop::stop(a.env),
        "monitor" => monitor::monitor(a.env),
        "promote" => promote::promote(a.env),
        "demote" => demote::demote(a.env),
        "notify" => notify::notify(a.env),
        "reload-agent" | "reload" => reload::reload_agent(a.env),
        "validate-all" => validate::validate_all(a.env),
        // Not an OCF action: the post-promote notification's detached copy of the record.
        history::RECORD => history::record_change(a.env),
        _ => return None,
    })
}

/// The checked configuration. Building it touches nothing on the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub system_user: String,
    pub bindir: PathBuf,
    pub pgdata: PathBuf,
    pub datadir: PathBuf,
    pub pghost: PathBuf,
    pub pgport: u16,
    pub start_opts: Option<String>,
    pub maxlag: u64,
    pub auto_rewind: bool,
    pub rewind_user: Option<String>,
    pub sync_mode: sync::Mode,
    /// synchronous_node_count: k of `ANY k (...)`.
    pub sync_count: usize,
    /// replication_slots: how long an unused slot is kept (`slot_ttl`); None: no slots.
    pub slot_ttl: Option<Duration>,
    /// incident_record: the actions write the incident record (`history.rs`).
    pub record: bool,
    /// The resource name (`OCF_RESOURCE_INSTANCE` without a clone suffix).
    pub resource: String,
    /// The action's time budget (Pacemaker's timeout, or a default by hand).
    pub timeout: Duration,
    /// This node's name as Pacemaker knows it (`CRM_meta_on_node`), when Pacemaker runs us.
    pub node: Option<String>,
}

fn absolute(name: &str, v: &str) -> Result<PathBuf, OcfError> {
    let p = PathBuf::from(v.trim());
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(OcfError::configured(format!("{name} '{v}' must be an absolute path")))
    }
}

/// The [`CONNECTION`] group, checked: one parser for every agent that takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub system_user: String,
    pub pghost: PathBuf,
    pub pgport: u16,
}

impl Connection {
    pub fn from_params(p: &Params) -> Result<Connection, OcfError> {
        let system_user = p.str("system_user").unwrap_or("postgres").trim().to_owned();
        if system_user.is_empty() || system_user.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
            return Err(OcfError::configured(format!("system_user '{system_user}' is not a user name")));
        }
        let port = p.int("pgport").unwrap_or(5432);
        let pgport = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| OcfError::configured(format!("pgport {port} is not a TCP port")))?;
        Ok(Connection { system_user, pghost: absolute("pghost", p.str("pghost").unwrap_or_default())?, pgport })
    }
}

impl Config {
    pub fn from_env(env: &OcfEnv) -> Result<Config, OcfError> {
        let p = Params::parse(SPEC.params, env)?;
        let Connection { system_user, pghost, pgport } = Connection::from_params(&p)?;
        let pgdata = absolute("pgdata", p.str("pgdata").unwrap_or_default())?;
        let datadir = match p.str("datadir") {
            Some(d) => absolute("datadir", d)?,
            None => pgdata.clone(),
        };
        let maxlag = p.int("maxlag").unwrap_or(0);
        let maxlag = u64::try_from(maxlag).map_err(|_| OcfError::configured(format!("maxlag must be 0 or more bytes, got {maxlag}")))?;
        let mode = p.str("synchronous_mode").unwrap_or("off");
        let sync_mode = sync::Mode::parse(mode).ok_or_else(|| OcfError::configured(format!("synchronous_mode '{mode}' is not off, on or strict")))?;
        let count = p.int("synchronous_node_count").unwrap_or(1);
        let sync_count = usize::try_from(count)
            .ok()
            .filter(|c| *c >= 1)
            .ok_or_else(|| OcfError::configured(format!("synchronous_node_count must be 1 or more, got {count}")))?;
        if let Some(max) = env.clone_max() {
            if sync_mode != sync::Mode::Off && sync_count as u64 >= max {
                return Err(OcfError::configured(format!(
                    "synchronous_node_count {sync_count} needs {} standbys, the clone has {} (clone-max {max})",
                    sync_count,
                    max.saturating_sub(1)
                )));
            }
        }
        let ttl = p.int("slot_ttl").unwrap_or(1800);
        let ttl = u64::try_from(ttl).ok().filter(|t| *t > 0).ok_or_else(|| OcfError::configured(format!("slot_ttl must be 1 or more seconds, got {ttl}")))?;
        let slot_ttl = p.bool("replication_slots").then(|| Duration::from_secs(ttl));
        let instance = env.instance();
        // Clone instances are named rsc:N; attributes are named after the primitive.
        let resource = instance.split(':').next().unwrap_or(instance).to_owned();
        Ok(Config {
            system_user,
            bindir: absolute("bindir", p.str("bindir").unwrap_or_default())?,
            pgdata,
            datadir,
            pghost,
            pgport,
            start_opts: p.str("start_opts").map(str::to_owned),
            maxlag,
            auto_rewind: p.bool("auto_rewind"),
            rewind_user: p.str("rewind_user").map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned),
            sync_mode,
            sync_count,
            slot_ttl,
            record: p.bool("incident_record"),
            resource,
            timeout: env.timeout_or(Duration::from_secs(60)),
            node: env.on_node().map(str::to_owned),
        })
    }

    /// `start_opts` as words, split by the shell's rules (quotes, backslashes), as the
    /// server gets them: `pg_ctl -o` pastes the string into the command line its `/bin/sh`
    /// runs. Everywhere the agent gives the options to postgres itself (`postgres -C`) it
    /// gives these words, so it reads the settings the server starts with — `-c
    /// cluster_name='pg main'` is one setting, not two words. The shell's expansions (`$X`,
    /// globs) are not made. A string the shell cannot split (an unbalanced quote: pg_ctl
    /// would fail to start the server) is `OCF_ERR_CONFIGURED`.
    pub fn start_words(&self) -> Result<Vec<String>, OcfError> {
        let Some(opts) = &self.start_opts else { return Ok(Vec::new()) };
        shlex::split(opts)
            .ok_or_else(|| OcfError::configured(format!("start_opts '{opts}' does not split into words: a quote is not closed, or it ends in a backslash")))
    }

    /// The promotion score attribute, as PAF names it.
    pub fn score_attribute(&self) -> String {
        format!("master-{}", self.resource)
    }
}

#[cfg(test)]
mod tests;
