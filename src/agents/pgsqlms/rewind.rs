//! Timeline divergence at start, and `auto_rewind`.
//!
//! Why: after a failover, the old primary may hold WAL that never reached the standby that
//! was promoted (asynchronous replication, a crash mid-flight). Its history then forks from
//! the new primary's. Started as a standby, it replays its own extra writes, can never
//! stream from the new primary, and still answers as a healthy standby — a node that looks
//! fine and is useless (PAF's behaviour; the primary merely scores it −1000). The judge
//! PostgreSQL itself provides is pg_rewind: with `--dry-run` it compares the local data
//! directory with the primary's timeline history and says whether they diverged; without
//! `--dry-run` it rewinds the local directory onto the primary's history.
//!
//! When start asks: only when another node runs the promoted role (with no primary there is
//! nothing to diverge from — a cold start, or this node recovering its own primary), and
//! only on a cleanly shut down data directory, pg_rewind's requirement: a crashed instance
//! first goes through crash recovery as a standby and is stopped again. A diverged instance
//! stays stopped and the start fails with the reason (Pacemaker then keeps the resource off
//! this node until an operator acts) — or, with `auto_rewind=true`, it is rewound from the
//! primary, keeping this node's own configuration files, and started as a standby. Without
//! `auto_rewind` an instance whose own WAL past the fork holds no transaction (what an
//! isolated primary's shutdown checkpoint leaves, read with pg_waldump) is rewound too:
//! nothing a client was told committed is discarded, and refusing it would strand the node.
//!
//! The source's control file must be current. PostgreSQL 15's pg_rewind takes the
//! primary's timeline from its pg_control, which a promoted primary rewrites only when the
//! checkpoint it requests at promotion completes — seconds to minutes later (the checkpoint
//! is spread). Until then pg_rewind compares against the old timeline: `--dry-run` can say
//! "no rewind required" of a diverged instance, and a real rewind copies a control file
//! whose minimum recovery point lies on a timeline the new history does not contain — a
//! data directory that refuses to start. So before pg_rewind runs, the primary's
//! checkpointed timeline is compared with its WAL's; when they differ, a CHECKPOINT is
//! asked for (superuser or `pg_checkpoint`), or the primary's own is awaited for a while.
//! A source still stale then makes the check unknown and refuses the rewind.
//!
//! What the check needs: `wal_log_hints=on` or data checksums, and a connection to the
//! primary: the instance's own `primary_conninfo`, with database `postgres` and, if set, the
//! user `rewind_user`, who needs pg_rewind's privileges there. When the check cannot be
//! made, start says so in the log and starts the standby: one that cannot stream endangers
//! nothing, and refusing every start of a misconfigured cluster would.

use std::time::{Duration, Instant};

use super::instance;
use super::Config;
use crate::cmd;
use crate::ocf::OcfError;
use crate::pacemaker;
use crate::pg::client::{Identity, Local};
use crate::pg::conninfo::ConnInfo;
use crate::{ocf_debug, ocf_info, ocf_warn};

/// What pg_rewind --dry-run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The local history is a prefix of the primary's: it can follow.
    Follows,
    /// The histories forked; pg_rewind's own words on where.
    Diverged(String),
    /// No answer (no source, no privileges, no wal_log_hints ...): why.
    Unknown(String),
}

/// The node other than `me` that Pacemaker reports running the promoted role, if any.
pub fn other_primary(cfg: &Config, me: &str) -> Option<String> {
    match pacemaker::resource::locate(&cfg.resource) {
        Ok(at) => pacemaker::resource::promoted_elsewhere(&at, me),
        Err(e) => {
            ocf_debug!("cannot locate {}: {}", cfg.resource, e.reason);
            None
        }
    }
}

/// Start may go on, after rewinding if allowed; or the reason it must not.
pub fn ensure_follows(cfg: &Config, who: Identity, primary: &str, until: Instant) -> Result<Followed, OcfError> {
    match compare(cfg, who, until) {
        Verdict::Follows => {
            ocf_info!("history compared with the primary on {primary}: this instance can follow it");
            Ok(Followed::AsItWas)
        }
        Verdict::Unknown(why) => {
            ocf_warn!("cannot compare this instance's history with the primary on {primary} ({why}); starting it as a standby anyway");
            Ok(Followed::Unknown(why))
        }
        Verdict::Diverged(at) if cfg.auto_rewind => {
            ocf_warn!(
                "timeline diverged from the primary on {primary} ({at}): auto_rewind=true, rewinding this instance from it (its own extra WAL is discarded)"
            );
            rewind(cfg, who, until).map(|_| Followed::Rewound(format!("{at}; auto_rewind discarded its WAL past the fork")))
        }
        Verdict::Diverged(at) => match holds_no_transaction(cfg, who, &at, until) {
            Ok(what) => {
                ocf_warn!(
                    "timeline diverged from the primary on {primary} ({at}), but this instance's WAL past the fork holds no transaction ({what}): rewinding it from the primary although auto_rewind=false — nothing is lost"
                );
                rewind(cfg, who, until).map(|_| Followed::Rewound(format!("{at}; its WAL past the fork held no transaction ({what})")))
            }
            Err(why) => {
                ocf_info!("the WAL past the fork was read for transactions: {why}");
                Err(diverged(primary, &at))
            }
        },
    }
}

/// How an instance came to follow the primary (for the incident record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Its history lies on the primary's: nothing of its own past the fork.
    AsItWas,
    /// Rewound: the fork, and what its WAL past it held.
    Rewound(String),
    /// Not compared (why).
    Unknown(String),
}

/// The refusal of a diverged instance (auto_rewind off, and its WAL past the fork may hold
/// a commit).
fn diverged(primary: &str, at: &str) -> OcfError {
    OcfError::generic(format!("timeline diverged from the primary on {primary}: left stopped; set auto_rewind=true, or rewind/rebuild it")).context(format!(
        "{at}: this instance holds WAL the primary never received, so it cannot follow it; after pg_rewind or a rebuild, clean up the resource"
    ))
}

/// The most records past the fork read to judge them; more is more than a shutdown leaves,
/// and judged as possibly holding a transaction.
const PAST_FORK_RECORDS: usize = 200;

/// Whether this instance's own WAL past the fork (`at`: pg_rewind's "servers diverged at WAL
/// location X on timeline T") holds nothing of a transaction: every record carries no
/// transaction id (a commit always does, and so does every change a transaction makes) and
/// none is a logical message. What an isolated primary's fast shutdown leaves — its
/// shutdown checkpoint, a running-transactions snapshot — qualifies; rewinding over it
/// discards nothing any client was told. Ok: the records' kinds; Err: why not (or why it
/// cannot be told, which counts as not). Read with pg_waldump from the local pg_wal, as
/// system_user, on the instance's own timeline only.
pub fn holds_no_transaction(cfg: &Config, who: Identity, at: &str, until: Instant) -> Result<String, String> {
    let (fork, fork_tli) = fork_point(at).ok_or_else(|| format!("cannot read the fork point in '{at}'"))?;
    let left = until.saturating_duration_since(Instant::now()).min(Duration::from_secs(10));
    let control = crate::pg::controldata::ControlData::read(&cfg.bindir, &cfg.datadir, left).map_err(|e| e.reason)?;
    if control.timeline != fork_tli {
        return Err(format!("this instance is on timeline {}, the fork on timeline {fork_tli}: its WAL past the fork spans timelines", control.timeline));
    }
    let mut cmd = instance::pg_tool(cfg, who, "pg_waldump");
    cmd.arg(format!("--path={}", cfg.datadir.join("pg_wal").display()))
        .arg(format!("--timeline={fork_tli}"))
        .arg(format!("--start={fork}"))
        .arg(format!("--limit={}", PAST_FORK_RECORDS + 1));
    let left = until.saturating_duration_since(Instant::now()).min(Duration::from_secs(10));
    // pg_waldump ends with an error at the end of the WAL ("invalid record length"): the
    // records printed before it are what counts.
    let done = cmd::finish(&mut cmd, left).map_err(|e| e.reason)?;
    judge_past_fork(&done.stdout)
}

/// pg_rewind's "servers diverged at WAL location 0/402FB58 on timeline 4": the LSN and the
/// timeline.
pub fn fork_point(at: &str) -> Option<(crate::pg::Lsn, u32)> {
    let rest = at.split("WAL location ").nth(1)?;
    let (lsn, rest) = rest.split_once(' ')?;
    let tli = rest.trim().strip_prefix("on timeline ")?.trim_end_matches('.').trim();
    Some((lsn.parse().ok()?, tli.parse().ok()?))
}

/// [`holds_no_transaction`]'s verdict on pg_waldump's records.
pub fn judge_past_fork(records: &str) -> Result<String, String> {
    let mut kinds: Vec<String> = Vec::new();
    let mut n = 0;
    for line in records.lines().filter(|l| l.starts_with("rmgr:")) {
        n += 1;
        if n > PAST_FORK_RECORDS {
            return Err(format!("more than {PAST_FORK_RECORDS} records past the fork"));
        }
        let field = |key: &str| line.split(key).nth(1).map(|r| r.trim_start().split([',', ' ']).next().unwrap_or("").to_owned());
        let rmgr = line.trim_start_matches("rmgr:").split_whitespace().next().unwrap_or("").to_owned();
        let tx = field("tx:").ok_or_else(|| format!("no transaction id in '{line}'"))?;
        let desc = line.split("desc: ").nth(1).and_then(|d| d.split_whitespace().next()).unwrap_or("?").to_owned();
        if tx != "0" {
            return Err(format!("a record of transaction {tx} ({rmgr} {desc}) lies past the fork"));
        }
        if rmgr == "LogicalMessage" {
            return Err("a logical message lies past the fork".into());
        }
        let kind = format!("{rmgr} {desc}");
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if n == 0 {
        return Err("pg_waldump read no record past the fork".into());
    }
    Ok(format!("{n} record{}: {}", if n == 1 { "" } else { "s" }, kinds.join(", ")))
}

/// `pg_rewind --dry-run` against the primary.
pub fn compare(cfg: &Config, who: Identity, until: Instant) -> Verdict {
    let source = match source(cfg, who, until) {
        Ok(s) => s,
        Err(why) => return Verdict::Unknown(why),
    };
    if let Err(why) = source_checkpointed(who, &source, until) {
        return Verdict::Unknown(why);
    }
    match pg_rewind(cfg, who, &source, true, until) {
        Err(e) => Verdict::Unknown(e.reason),
        Ok(done) => {
            let said = format!("{}{}", done.stdout, done.stderr);
            let line = |needle: &str| said.lines().find(|l| l.contains(needle)).map(|l| l.trim_start_matches("pg_rewind: ").trim().to_owned());
            if !done.success {
                Verdict::Unknown(line("error").unwrap_or_else(|| said.trim().to_owned()))
            } else if let Some(at) = line("servers diverged at") {
                Verdict::Diverged(at)
            } else if line("no rewind required").is_some() {
                Verdict::Follows
            } else {
                Verdict::Unknown(format!("unexpected pg_rewind output: {}", said.trim()))
            }
        }
    }
}

/// The configuration files pg_rewind (and a base backup) would overwrite with the primary's.
const OWN_FILES: &[&str] = &["postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"];

/// This node's own configuration files in the data directory, read as system_user (whose
/// files they are: a link planted among them cannot make root read a file of its own into
/// the data directory), to be put back by [`put_back_own_files`] over the primary's copies.
pub(super) fn keep_own_files(cfg: &Config, who: Identity) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    OWN_FILES
        .iter()
        .map(|f| cfg.datadir.join(f))
        .filter_map(|p| crate::pg::identity::as_user(Some(who), || std::fs::read(&p)).ok().map(|bytes| (p, bytes)))
        .collect()
}

/// Write back what [`keep_own_files`] read, as system_user; `after` names what overwrote them.
pub(super) fn put_back_own_files(kept: &[(std::path::PathBuf, Vec<u8>)], who: Identity, after: &str) {
    for (path, bytes) in kept {
        if let Err(e) = crate::pg::identity::write_as(Some(who), path, bytes) {
            ocf_warn!("cannot restore {} after {after}: {e}", path.display());
        }
    }
}

/// Rewind the (cleanly stopped) data directory from the primary, keeping this node's own
/// configuration files: pg_rewind copies the source's, and a node's pg_hba.conf or
/// primary_conninfo are its own. Only after [`compare`] said Diverged, which made sure the
/// primary's control file is current (`source_checkpointed`).
fn rewind(cfg: &Config, who: Identity, until: Instant) -> Result<(), OcfError> {
    let source = source(cfg, who, until).map_err(|why| OcfError::generic(format!("cannot rewind: {why}")))?;
    let kept = keep_own_files(cfg, who);
    let done = pg_rewind(cfg, who, &source, false, until);
    put_back_own_files(&kept, who, "pg_rewind");
    let done = done?;
    if !done.success {
        return Err(OcfError::generic(format!("pg_rewind failed: {}", done.stderr.trim())));
    }
    ocf_info!("rewound from the primary: {}", done.stderr.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("; "));
    Ok(())
}

/// The functions pg_rewind calls on the source, which a role that is not superuser needs
/// EXECUTE on (PostgreSQL's documentation of pg_rewind).
pub const REWIND_FUNCTIONS: &[&str] =
    &["pg_ls_dir(text, boolean, boolean)", "pg_stat_file(text, boolean)", "pg_read_binary_file(text)", "pg_read_binary_file(text, bigint, bigint, boolean)"];

/// The role pg_rewind connects to the primary as: `rewind_user`, else primary_conninfo's
/// user, else libpq's default, the OS user the tools run as (`system_user`). Shared with
/// `paceline check`, which judges that role's privileges.
pub fn rewind_role_name(rewind_user: Option<&str>, primary_conninfo: &ConnInfo, system_user: &str) -> String {
    rewind_user.map(str::trim).filter(|u| !u.is_empty()).or(primary_conninfo.get("user")).unwrap_or(system_user).to_owned()
}

/// The connection pg_rewind makes to the primary, and the password kept off its argv.
struct Source {
    info: ConnInfo,
    password: Option<String>,
}

/// The primary's connection string, from the instance's own `primary_conninfo`.
fn source(cfg: &Config, who: Identity, until: Instant) -> Result<Source, String> {
    if !cfg.datadir.join("global/pg_control").exists() {
        return Err("no pg_control".into());
    }
    let left = until.saturating_duration_since(Instant::now()).min(Duration::from_secs(10));
    let text = instance::setting(cfg, who, "primary_conninfo", left).map_err(|e| e.reason)?;
    let mut info = ConnInfo::parse(&text).map_err(|e| format!("primary_conninfo: {e}"))?;
    if info.is_empty() {
        return Err("primary_conninfo is empty".into());
    }
    let password = info.take("password");
    for k in ["replication", "application_name"] {
        info.take(k);
    }
    info.set("dbname", "postgres");
    let user = rewind_role_name(cfg.rewind_user.as_deref(), &info, &cfg.system_user);
    info.set("user", &user);
    if info.get("connect_timeout").is_none() {
        info.set("connect_timeout", "5");
    }
    info.set("application_name", "paceline-pg_rewind");
    Ok(Source { info, password })
}

/// pg_rewind's unstated precondition (module docs): the primary's pg_control is on the
/// timeline its WAL is on. Ok when it is, or when it cannot be asked (a standby source, TLS,
/// missing privileges on the functions: pg_rewind then runs as it always did); the reason
/// when the source is known stale and stays so.
fn source_checkpointed(who: Identity, source: &Source, until: Instant) -> Result<(), String> {
    let left = || until.saturating_duration_since(Instant::now());
    let timeout = left().min(Duration::from_secs(5));
    let db = match Local::connect_conninfo(&source.info, source.password.as_deref(), Some(who), timeout, "paceline-pg_rewind") {
        Ok(db) => db,
        Err(e) => {
            ocf_debug!("cannot ask the primary whether its control file is current ({}): leaving it to pg_rewind", e.message());
            return Ok(());
        }
    };
    // Timelines as (checkpointed, current); None on a standby source.
    let ask = || -> Result<Option<(u32, u32)>, String> {
        let row = db
            .query_text(
                "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE (SELECT timeline_id FROM pg_control_checkpoint())::text END, \
                 CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END",
                left().min(Duration::from_secs(5)),
            )
            .map_err(|e| e.reason)?;
        match row.first().map(|r| (r[0].as_deref(), r[1].as_deref())) {
            Some((Some(done), Some(wal))) => {
                let done = done.parse().map_err(|_| format!("checkpoint timeline '{done}'"))?;
                let now = wal.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok()).ok_or_else(|| format!("WAL file name '{wal}'"))?;
                Ok(Some((done, now)))
            }
            _ => Ok(None),
        }
    };
    let (mut done, now) = match ask() {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(()),
        Err(why) => {
            ocf_debug!("cannot read the primary's timelines ({why}): leaving it to pg_rewind");
            return Ok(());
        }
    };
    if done == now {
        return Ok(());
    }
    ocf_info!("the primary's control file is still on timeline {done}, its WAL on {now} (promoted, first checkpoint not done): asking it for a CHECKPOINT");
    if let Err(e) = db.execute("CHECKPOINT", left().saturating_sub(Duration::from_secs(1)).max(Duration::from_secs(1))) {
        ocf_info!("no CHECKPOINT ({}): waiting for the primary's own", e.reason);
    }
    // Waiting longer than a third of what is left would leave too little for the rest.
    let wait_until = Instant::now() + left() / 3;
    loop {
        if let Ok(Some((d, _))) = ask() {
            done = d;
        }
        if done == now {
            return Ok(());
        }
        if Instant::now() >= wait_until {
            return Err(format!(
                "the primary's control file is still on timeline {done}, its WAL on {now}: pg_rewind would compare with a stale history; run CHECKPOINT there (or grant pg_checkpoint to the rewind user) and retry"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn pg_rewind(cfg: &Config, who: Identity, source: &Source, dry_run: bool, until: Instant) -> Result<cmd::Finished, OcfError> {
    let mut cmd = instance::pg_tool(cfg, who, "pg_rewind");
    cmd.arg("--target-pgdata").arg(&cfg.datadir).arg(format!("--source-server={}", source.info));
    if dry_run {
        cmd.arg("--dry-run");
    }
    if let Some(p) = &source.password {
        cmd.env("PGPASSWORD", p);
    }
    let left = until.saturating_duration_since(Instant::now());
    let left = if dry_run { left.min(Duration::from_secs(30)) } else { left };
    instance::ensure_stopped(cfg)?;
    cmd::finish(&mut cmd, left)
}
