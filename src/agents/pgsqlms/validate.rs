//! validate-all: what must hold before the agent touches anything — the configuration
//! (start_opts included: it must split into words as pg_ctl's shell splits it), the
//! installation on this node, and the clone's meta attributes.

use std::time::Duration;

use super::instance;
use super::{sync, Config};
use crate::ocf::{OcfEnv, OcfError, OcfRc, OcfResult};
use crate::pg::ControlData;

/// Oldest supported major version: 12 brought standby.signal and recovery settings in
/// postgresql.conf, which the agent relies on.
pub const MIN_VERSION: u32 = 12;

/// The binaries and directories this node needs; errors name what is missing.
pub fn check_installation(cfg: &Config) -> Result<u32, OcfError> {
    for tool in ["pg_ctl", "pg_controldata", "postgres"] {
        let p = cfg.bindir.join(tool);
        let ok = std::fs::metadata(&p).map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0).unwrap_or(false);
        if !ok {
            return Err(OcfError::installed(format!("{} is missing or not executable (check bindir)", p.display())));
        }
    }
    if !cfg.pgdata.is_dir() {
        return Err(OcfError::installed(format!("pgdata {} is not a directory on this node", cfg.pgdata.display())));
    }
    let version_file = cfg.datadir.join("PG_VERSION");
    // Never through a link, never more than a line: the file is system_user's, and what it
    // holds goes into an exit reason.
    let text = match crate::files::read_small(&version_file, 64) {
        Ok(Some(t)) => t,
        Ok(None) => return Err(OcfError::installed(format!("{} does not exist (check datadir)", version_file.display()))),
        Err(e) => return Err(OcfError::installed(format!("cannot read {}: {e} (check datadir)", version_file.display()))),
    };
    let major: u32 = text
        .trim()
        .split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| OcfError::configured(format!("{} holds '{}', not a version", version_file.display(), text.trim())))?;
    if major < MIN_VERSION {
        return Err(OcfError::configured(format!("PostgreSQL {major} is not supported (paceline needs {MIN_VERSION} or newer)")));
    }
    Ok(major)
}

/// Who runs PostgreSQL on this node, once its installation is checked: what monitor,
/// reload-agent and validate-all need first (a missing piece is OCF_ERR_INSTALLED).
pub fn installed(cfg: &Config) -> Result<crate::pg::client::Identity, OcfError> {
    let who = instance::identity(cfg)?;
    check_installation(cfg)?;
    Ok(who)
}

/// The clone must notify (the election runs in pre-promote) and have one primary.
pub fn check_clone(env: &OcfEnv) -> Result<(), OcfError> {
    if env.clone_max().is_none() {
        return Ok(()); // not run as a clone (by hand): nothing to check
    }
    if !env.notify_enabled() {
        return Err(OcfError::configured("the clone must have notify=true (pcs resource update pgsqld-clone meta notify=true)"));
    }
    let promoted_max = env.meta("promoted_max").or_else(|| env.meta("master_max")).unwrap_or("1");
    if promoted_max.trim() != "1" {
        return Err(OcfError::configured(format!("promoted-max must be 1 (one primary), not {promoted_max}")));
    }
    Ok(())
}

/// With synchronous_mode on/strict the agent owns synchronous_standby_names: a value in
/// the configuration files that it did not write (a FIRST list, `*`, names by hand) is
/// refused rather than silently overwritten. Read as the server would (`postgres -C`).
pub fn check_sync_setting(cfg: &Config) -> Result<(), OcfError> {
    if cfg.sync_mode == sync::Mode::Off {
        return Ok(());
    }
    let who = instance::identity(cfg)?;
    let value = instance::setting(cfg, who, "synchronous_standby_names", Duration::from_secs(5))?;
    sync::SyncSet::parse(&value).map(|_| ()).map_err(|why| {
        OcfError::configured(format!("{why}: synchronous_mode={} manages this setting; remove it from the configuration files", cfg.sync_mode.name()))
    })
}

pub fn validate_all(env: &OcfEnv) -> OcfResult {
    let cfg = Config::from_env(env)?;
    // start_opts as pg_ctl's shell will read it: a string it cannot split would fail start.
    cfg.start_words()?;
    // What this node lacks keeps its code (5), as in start and monitor: one fault, one code.
    installed(&cfg)?;
    check_clone(env)?;
    let cd = ControlData::read(&cfg.bindir, &cfg.datadir, Duration::from_secs(5))?;
    if !matches!(cd.wal_level.as_str(), "replica" | "logical" | "hot_standby") {
        return Err(OcfError::configured(format!("wal_level is {}: streaming replication needs replica or logical", cd.wal_level)));
    }
    check_sync_setting(&cfg)?;
    if cfg.auto_rewind && !cd.hint_bits_logged {
        return Err(OcfError::configured("auto_rewind=true needs wal_log_hints=on or data checksums; pg_control says neither is on")
            .context("pg_rewind cannot rewind without them; a changed wal_log_hints takes effect at the next restart"));
    }
    Ok(OcfRc::Success)
}
