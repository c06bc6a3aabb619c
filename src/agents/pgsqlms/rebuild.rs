//! Rebuilding a standby from the primary with pg_basebackup (issue #23.4), for a node whose
//! WAL is gone (away longer than `wal_keep_size` and its slot covered) or whose rewind
//! failed: what `patronictl reinit` does. Used by `paceline reinit` (src/reinit.rs), which
//! first makes Pacemaker stop the instance here.
//!
//! What it keeps true:
//! * **Only on a stopped instance** ([`instance::ensure_stopped`]), and only from the
//!   primary this node's own `primary_conninfo` names (the password kept off the command
//!   line).
//! * **Nothing is thrown away**: the old data directory is renamed beside itself
//!   (`<datadir>.paceline-reinit-<unix time>`), not deleted; if the base backup fails, the
//!   partial copy is removed and the old directory put back where it was. Deleting the old
//!   one is the operator's decision.
//! * **The node stays itself**: its own `postgresql.conf`, `postgresql.auto.conf`,
//!   `pg_hba.conf` and `pg_ident.conf` in the data directory (its `primary_conninfo`,
//!   `application_name`, slot name) are put back over the primary's copies.
//! * **As system_user**: every file operation on the data directory's parent, which that
//!   account controls, runs under its identity, so a planted link can make root neither
//!   move nor create anything elsewhere.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{instance, Config};
use crate::ocf::OcfError;
use crate::pg::client::Identity;
use crate::pg::conninfo::ConnInfo;
use crate::{cmd, ocf_info, ocf_warn};

/// Rebuild the (stopped) instance from the primary. Returns where the old data directory
/// was moved.
pub fn rebuild(cfg: &Config, who: Identity, until: Instant) -> Result<PathBuf, OcfError> {
    instance::ensure_stopped(cfg)?;
    let left = || until.saturating_duration_since(Instant::now());
    let text = instance::setting(cfg, who, "primary_conninfo", left().min(Duration::from_secs(10)))?;
    let mut info = ConnInfo::parse(&text).map_err(|e| OcfError::configured(format!("primary_conninfo: {e}")))?;
    if info.is_empty() {
        return Err(OcfError::configured("primary_conninfo is empty: no primary to copy from"));
    }
    let password = info.take("password");
    info.set("application_name", "paceline-reinit");
    if info.get("connect_timeout").is_none() {
        info.set("connect_timeout", "10");
    }
    let as_owner = Some(who);
    let datadir = cfg.datadir.clone();
    let name = datadir.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| OcfError::configured("datadir has no name"))?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let aside = datadir.with_file_name(format!("{name}.paceline-reinit-{stamp}"));
    let kept = super::rewind::keep_own_files(cfg, who);
    crate::pg::identity::as_user(as_owner, || std::fs::rename(&datadir, &aside))
        .map_err(|e| OcfError::generic(format!("cannot move {} aside to {}: {e}", datadir.display(), aside.display())))?;
    ocf_info!("reinit: the old data directory is now {}", aside.display());
    let put_back = || {
        let _ = crate::pg::identity::as_user(as_owner, || std::fs::remove_dir_all(&datadir));
        if let Err(e) = crate::pg::identity::as_user(as_owner, || std::fs::rename(&aside, &datadir)) {
            ocf_warn!("cannot put {} back to {}: {e}", aside.display(), datadir.display());
        }
    };
    let mut bb = instance::pg_tool(cfg, who, "pg_basebackup");
    bb.arg("--pgdata").arg(&datadir).args(["--wal-method=stream", "--checkpoint=fast", "--no-password"]).arg(format!("--dbname={info}"));
    if let Some(p) = &password {
        bb.env("PGPASSWORD", p);
    }
    let t = Instant::now();
    let done = match cmd::finish(&mut bb, left()) {
        Ok(d) => d,
        Err(e) => {
            put_back();
            return Err(e.context("pg_basebackup did not finish; the old data directory is back"));
        }
    };
    if !done.success {
        put_back();
        return Err(OcfError::generic(format!("pg_basebackup failed (the old data directory is back): {}", done.stderr.trim())));
    }
    super::rewind::put_back_own_files(&kept, who, "the base backup");
    ocf_info!("reinit: base backup from the primary done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(aside)
}
