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
    ///
    /// Strict, since each field steers a decision: every field read must be present once
    /// (or repeated with the same value) and well-formed — a missing, malformed or cut line
    /// is an error, never a default. The exceptions are the hint-bit witnesses, which older
    /// versions lack: without them `hint_bits_logged` is false (pg_rewind refused), the safe
    /// reading; present, they must say `on`/`off` and a number.
    pub fn parse(text: &str) -> Result<ControlData, String> {
        let mut fields: HashMap<&str, &str> = HashMap::new();
        let mut repeated = Vec::new();
        for (k, v) in text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())) {
            if fields.insert(k, v).is_some_and(|old| old != v) {
                repeated.push(k);
            }
        }
        let get = |k: &str| match fields.get(k).copied() {
            _ if repeated.contains(&k) => Err(format!("pg_controldata output has '{k}' twice, with different values")),
            Some(v) => Ok(v),
            None => Err(format!("pg_controldata output has no '{k}'")),
        };
        let lsn = |k: &str| get(k).and_then(|v| v.parse::<Lsn>().map_err(|e| format!("{k}: {e}")));
        let optional = |k: &str| if fields.contains_key(k) { get(k).map(Some) } else { Ok(None) };
        let state_text = get("Database cluster state")?;
        let system_identifier = get("Database system identifier")?;
        if system_identifier.parse::<u64>().is_err() || !system_identifier.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("Database system identifier: '{system_identifier}' is not a number"));
        }
        // PostgreSQL ≥ 9.5 says "wal_level setting"; older ones "Current wal_level setting".
        let wal_level = get("wal_level setting").or_else(|_| get("Current wal_level setting"))?;
        // The levels PostgreSQL has had (archive and hot_standby before 9.6): a cut or mangled
        // value ("rep") is an error, not a level.
        if !matches!(wal_level, "minimal" | "replica" | "logical" | "archive" | "hot_standby") {
            return Err(format!("wal_level setting: unknown level '{wal_level}'"));
        }
        let wal_log_hints = match optional("wal_log_hints setting")? {
            None | Some("off") => false,
            Some("on") => true,
            Some(v) => return Err(format!("wal_log_hints setting: '{v}' is neither on nor off")),
        };
        let checksums = match optional("Data page checksum version")? {
            None => false,
            Some(v) => v.parse::<u32>().map_err(|_| format!("Data page checksum version: '{v}' is not a number"))? != 0,
        };
        Ok(ControlData {
            state: ClusterState::parse(state_text).ok_or_else(|| format!("unknown cluster state '{state_text}'"))?,
            checkpoint: lsn("Latest checkpoint location")?,
            redo: lsn("Latest checkpoint's REDO location")?,
            timeline: get("Latest checkpoint's TimeLineID")?.parse().map_err(|_| "bad TimeLineID".to_string())?,
            wal_level: wal_level.to_owned(),
            system_identifier: system_identifier.to_owned(),
            min_recovery_end: lsn("Minimum recovery ending location")?,
            hint_bits_logged: wal_log_hints || checksums,
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
            if let Ok(m) = std::fs::metadata(datadir) {
                if m.uid() != 0 {
                    crate::pg::identity::command_as(
                        &mut cmd,
                        crate::pg::identity::Identity { uid: nix::unistd::Uid::from_raw(m.uid()), gid: nix::unistd::Gid::from_raw(m.gid()) },
                    );
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
        // Found by the properties below: each of these read as "ok" (0/0, hint bits logged).
        assert!(ControlData::parse(&SAMPLE.replace("location:     0/0", "location:     zz")).is_err());
        assert!(ControlData::parse(&SAMPLE.replace("Minimum recovery ending location:     0/0\n", "")).is_err());
        assert!(ControlData::parse(&SAMPLE.replace("checksum version:           0", "checksum version:")).is_err());
        assert!(ControlData::parse(&SAMPLE.replace("setting:                off", "setting:                of")).is_err());
        assert!(ControlData::parse(&SAMPLE.replace("7711450466306815677", "")).is_err());
        assert!(ControlData::parse(&format!("{SAMPLE}Database cluster state:               shut down\n")).is_err());
    }

    mod prop {
        use super::super::*;
        use super::SAMPLE;
        use proptest::prelude::*;

        /// The lines every parse needs (the hint-bit ones may be absent: older versions).
        const REQUIRED: &[&str] = &[
            "Database system identifier",
            "Database cluster state",
            "Latest checkpoint location",
            "Latest checkpoint's REDO location",
            "Latest checkpoint's TimeLineID",
            "Minimum recovery ending location",
            "wal_level setting",
        ];
        const STATES: &[&str] =
            &["starting up", "shut down", "shut down in recovery", "shutting down", "in crash recovery", "in archive recovery", "in production"];

        /// `SAMPLE` with the value of `label` replaced by `value`.
        fn with_value(label: &str, value: &str) -> String {
            SAMPLE
                .lines()
                .map(|l| if l.split_once(':').is_some_and(|(k, _)| k == label) { format!("{label}:   {value}\n") } else { format!("{l}\n") })
                .collect()
        }

        proptest! {
            /// Arbitrary text: an error or a value, never a panic.
            #[test]
            fn any_text_never_panics(text in any::<String>()) {
                let _ = ControlData::parse(&text);
            }

            /// Arbitrary lines in the `label: value` shape, with the real labels among them.
            #[test]
            fn random_labelled_lines_are_errors(lines in prop::collection::vec((prop::sample::select(REQUIRED), ".*"), 0..12)) {
                let text: String = lines.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
                prop_assert!(ControlData::parse(&text).is_err(), "{text:?}");
            }

            /// Output that lacks any line read is an error, not a default.
            #[test]
            fn a_missing_line_is_an_error(i in 0..REQUIRED.len()) {
                let text: String = SAMPLE.lines().filter(|l| !l.starts_with(REQUIRED[i])).map(|l| format!("{l}\n")).collect();
                prop_assert!(ControlData::parse(&text).is_err());
            }

            /// Output cut anywhere is an error or exactly what the whole says (a cut may drop
            /// the hint-bit lines: then hint bits are not logged, the safe reading).
            #[test]
            fn a_truncated_output_is_an_error_or_the_same(cut in 0..SAMPLE.len(), checksums in any::<bool>()) {
                let full = if checksums { SAMPLE.replace("checksum version:           0", "checksum version:           1") } else { SAMPLE.to_owned() };
                let whole = ControlData::parse(&full).unwrap();
                if let Ok(c) = ControlData::parse(&full[..cut]) {
                    prop_assert!(c.hint_bits_logged <= whole.hint_bits_logged);
                    prop_assert_eq!(ControlData { hint_bits_logged: whole.hint_bits_logged, ..c }, whole);
                }
            }

            /// The cluster state line with any value: one of the seven states, read as said,
            /// or an error (never a default state).
            #[test]
            fn any_state_value_is_that_state_or_an_error(value in prop_oneof![prop::sample::select(STATES).prop_map(str::to_owned), "[a-z ]{0,24}", "[^\n]*"]) {
                match ControlData::parse(&with_value("Database cluster state", &value)) {
                    Ok(c) => prop_assert_eq!(Some(c.state), ClusterState::parse(&value)),
                    Err(_) => prop_assert!(ClusterState::parse(&value).is_none(), "{value:?}"),
                }
            }

            /// Any value of a field read is an error or exactly what it says.
            #[test]
            fn any_field_value_is_what_it_says_or_an_error(i in 0..REQUIRED.len(), value in prop_oneof!["[0-9A-Fa-f/+ -]{0,20}", "[^\n]*"]) {
                let label = REQUIRED[i];
                if let Ok(c) = ControlData::parse(&with_value(label, &value)) {
                    let v = value.trim();
                    match label {
                        "Database system identifier" => prop_assert!(c.system_identifier == v && v.parse::<u64>().is_ok() && !v.starts_with('+')),
                        "Database cluster state" => prop_assert_eq!(Some(c.state), ClusterState::parse(v)),
                        "Latest checkpoint location" => prop_assert_eq!(Ok(c.checkpoint), v.parse::<Lsn>()),
                        "Latest checkpoint's REDO location" => prop_assert_eq!(Ok(c.redo), v.parse::<Lsn>()),
                        "Latest checkpoint's TimeLineID" => prop_assert_eq!(Ok(c.timeline), v.parse::<u32>()),
                        "Minimum recovery ending location" => prop_assert_eq!(Ok(c.min_recovery_end), v.parse::<Lsn>()),
                        _ => prop_assert!(c.wal_level == v && ["minimal", "replica", "logical", "archive", "hot_standby"].contains(&v)),
                    }
                }
            }

            /// The hint-bit lines: logged only when one of them says so.
            #[test]
            fn hint_bits_are_logged_only_when_said(hints in "on|off|[a-z]{0,3}", checksum in "[0-9]{1,3}|[a-z+-]{0,2}") {
                let text = with_value("wal_log_hints setting", &hints).replace("Data page checksum version:           0", &format!("Data page checksum version: {checksum}"));
                let expected = match (hints.as_str(), checksum.parse::<u32>()) {
                    ("on" | "off", Ok(n)) => Some(hints == "on" || n != 0),
                    _ => None,
                };
                prop_assert_eq!(ControlData::parse(&text).ok().map(|c| c.hint_bits_logged), expected);
            }
        }
    }
}
