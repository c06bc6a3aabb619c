//! What `pg_control` says: how the instance last stopped, on which timeline, where its
//! last checkpoint is.
//!
//! Read with `pg_controldata` under `LC_ALL=C` (its labels are translated otherwise). The
//! cluster state is the only reliable witness of a crash: "in production" on a stopped
//! instance means a primary died without a shutdown checkpoint — it may hold acknowledged
//! writes no standby received, and must never be started as a standby blindly.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::Lsn;
use crate::ocf::OcfError;

/// `Database cluster state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    Starting,
    ShutDown,
    ShutDownInRecovery,
    ShuttingDown,
    InCrashRecovery,
    InArchiveRecovery,
    InProduction,
}

impl ClusterState {
    fn parse(s: &str) -> Option<ClusterState> {
        Some(match s.trim() {
            "starting up" => ClusterState::Starting,
            "shut down" => ClusterState::ShutDown,
            "shut down in recovery" => ClusterState::ShutDownInRecovery,
            "shutting down" => ClusterState::ShuttingDown,
            "in crash recovery" => ClusterState::InCrashRecovery,
            "in archive recovery" => ClusterState::InArchiveRecovery,
            "in production" => ClusterState::InProduction,
            _ => return None,
        })
    }

    /// Stopped cleanly: as a primary (`shut down`) or as a standby (`shut down in recovery`).
    pub fn cleanly_stopped(self) -> bool {
        matches!(self, ClusterState::ShutDown | ClusterState::ShutDownInRecovery)
    }
}

/// The fields of `pg_controldata` the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlData {
    pub state: ClusterState,
    pub checkpoint: Lsn,
    pub redo: Lsn,
    pub timeline: u32,
    pub wal_level: String,
    pub system_identifier: String,
    /// `Minimum recovery ending location` (standbys).
    pub min_recovery_end: Lsn,
    /// Whether hint-bit changes reach the WAL (`wal_log_hints` on, or data checksums),
    /// which pg_rewind needs to rewind this data directory.
    pub hint_bits_logged: bool,
}

impl ControlData {
    /// Parse `pg_controldata` output (C locale).
    pub fn parse(text: &str) -> Result<ControlData, String> {
        let fields: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
        let get = |k: &str| fields.get(k).copied().ok_or_else(|| format!("pg_controldata output has no '{k}'"));
        let lsn = |k: &str| get(k).and_then(|v| v.parse::<Lsn>().map_err(|e| format!("{k}: {e}")));
        let state_text = get("Database cluster state")?;
        Ok(ControlData {
            state: ClusterState::parse(state_text).ok_or_else(|| format!("unknown cluster state '{state_text}'"))?,
            checkpoint: lsn("Latest checkpoint location")?,
            redo: lsn("Latest checkpoint's REDO location")?,
            timeline: get("Latest checkpoint's TimeLineID")?.parse().map_err(|_| "bad TimeLineID".to_string())?,
            // PostgreSQL ≥ 9.5 says "wal_level setting"; older ones "Current wal_level setting".
            wal_level: get("wal_level setting").or_else(|_| get("Current wal_level setting"))?.to_owned(),
            system_identifier: get("Database system identifier")?.to_owned(),
            min_recovery_end: lsn("Minimum recovery ending location").unwrap_or_default(),
            hint_bits_logged: fields.get("wal_log_hints setting") == Some(&"on") || fields.get("Data page checksum version").is_some_and(|v| *v != "0"),
        })
    }

    /// Run `bindir/pg_controldata -D datadir` (bounded by `timeout`) and parse it.
    pub fn read(bindir: &Path, datadir: &Path, timeout: Duration) -> Result<ControlData, OcfError> {
        let mut cmd = Command::new(bindir.join("pg_controldata"));
        cmd.arg("-D").arg(datadir).env("LC_ALL", "C").current_dir("/");
        // As the data directory's owner when that is not root: its files are that account's,
        // and a link planted among them must not make root read anything else.
        if nix::unistd::geteuid().is_root() {
            use std::os::unix::fs::MetadataExt;
            use std::os::unix::process::CommandExt;
            if let Ok(m) = std::fs::metadata(datadir) {
                if m.uid() != 0 {
                    cmd.uid(m.uid()).gid(m.gid());
                }
            }
        }
        let out = crate::cmd::run(&mut cmd, timeout)?;
        ControlData::parse(&out).map_err(|e| OcfError::generic(format!("cannot read pg_controldata output: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7711450466306815677
Database cluster state:               in production
pg_control last modified:             Mon Nov 23 19:26:15 2026
Latest checkpoint location:           0/3000060
Latest checkpoint's REDO location:    0/3000028
Latest checkpoint's REDO WAL file:    000000020000000000000003
Latest checkpoint's TimeLineID:       2
Latest checkpoint's PrevTimeLineID:   2
Minimum recovery ending location:     0/0
Min recovery ending loc's timeline:   0
wal_level setting:                    replica
wal_log_hints setting:                off
Data page checksum version:           0
";

    #[test]
    fn parses_the_fields_we_use() {
        let c = ControlData::parse(SAMPLE).unwrap();
        assert_eq!(c.state, ClusterState::InProduction);
        assert_eq!(c.checkpoint, Lsn(0x3000060));
        assert_eq!(c.redo, Lsn(0x3000028));
        assert_eq!(c.timeline, 2);
        assert_eq!(c.wal_level, "replica");
        assert_eq!(c.system_identifier, "7711450466306815677");
        assert!(!c.state.cleanly_stopped());
        assert!(!c.hint_bits_logged);
        assert!(
            ControlData::parse(&SAMPLE.replace("wal_log_hints setting:                off", "wal_log_hints setting:                on"))
                .unwrap()
                .hint_bits_logged
        );
        assert!(ControlData::parse(&SAMPLE.replace("checksum version:           0", "checksum version:           1")).unwrap().hint_bits_logged);
    }

    #[test]
    fn every_state() {
        for (text, st, clean) in [
            ("shut down", ClusterState::ShutDown, true),
            ("shut down in recovery", ClusterState::ShutDownInRecovery, true),
            ("in archive recovery", ClusterState::InArchiveRecovery, false),
            ("in crash recovery", ClusterState::InCrashRecovery, false),
            ("shutting down", ClusterState::ShuttingDown, false),
            ("starting up", ClusterState::Starting, false),
        ] {
            let c = ControlData::parse(&SAMPLE.replace("in production", text)).unwrap();
            assert_eq!(c.state, st);
            assert_eq!(c.state.cleanly_stopped(), clean);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(ControlData::parse("").is_err());
        assert!(ControlData::parse(&SAMPLE.replace("in production", "on holiday")).is_err());
        assert!(ControlData::parse(&SAMPLE.replace("0/3000060", "zz")).is_err());
        assert!(ControlData::parse(&SAMPLE.replace("TimeLineID:       2", "TimeLineID:       x")).is_err());
    }
}
