//! Which process is a PostgreSQL instance: the one place that tells, for pgsqlms (start,
//! stop, monitor) and the state service's crash watch.
//!
//! Why it matters: "not running" from a stop or a probe makes Pacemaker start the instance
//! elsewhere, and a kill sent by root to the wrong pid ends somebody else's program. Both
//! answers are read from files the `postgres` account writes (`postmaster.pid`, the socket
//! lock) — and any database superuser can become that account (`COPY … TO PROGRAM`). So
//! nothing here believes a lock file alone:
//! - a lock file is read without following a link, only if it is a small regular file, and
//!   parsed strictly ([`PidFile::parse`]): a number where a number belongs, or nothing;
//! - the pid it names is the postmaster only if that process is alive, not a zombie, and
//!   works in the data directory (`/proc/<pid>/cwd`: the postmaster `chdir`s there and
//!   never leaves) — whatever its executable is called; where `/proc/<pid>/cwd` may not be
//!   read (not root), its name must be `postgres` or `postmaster`; a process the kernel
//!   says has no cwd any more is exiting, and no instance (a killed postmaster's pid,
//!   reused at once by another `postgres` caught exiting, is not taken for it);
//! - when the lock file is missing, a link, garbage, or names another process, the process
//!   table is searched for a PostgreSQL process working in the data directory: an instance
//!   whose `postmaster.pid` was removed or forged still runs, and is found;
//! - root signals only processes of the data directory's owner ([`owned_by`]), never its own.
//!
//! This module reads `/proc` and the lock files; it decides nothing about the cluster.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The largest lock file read: PostgreSQL's are a few hundred bytes.
const LOCK_MAX: u64 = 4096;

/// What `postmaster.pid` (or a socket's `.lock`) says, line by line (PostgreSQL's
/// `pidfile.h`): pid, data directory, start time, port, socket directory, listen address,
/// shared memory key and id, status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidFile {
    pub pid: i32,
    pub datadir: PathBuf,
    pub port: Option<u16>,
    pub sockdir: Option<PathBuf>,
    /// The System V segment's key and id.
    pub shm: Option<(u64, i32)>,
    /// `starting`, `ready`, `standby`, `stopping`.
    pub status: Option<String>,
}

impl PidFile {
    /// Parse a lock file strictly: the pid must be a positive number and the data directory
    /// an absolute path; the later lines, when present, must be what they claim (a port
    /// number, an absolute directory, two numbers) or the whole file is refused.
    pub fn parse(text: &str) -> Result<PidFile, String> {
        let lines: Vec<&str> = text.lines().collect();
        let pid = lines.first().map(|l| l.trim()).ok_or("empty")?;
        let pid: i32 = pid.parse().map_err(|_| "the first line is not a pid".to_owned())?;
        if pid <= 0 {
            return Err("the pid is not positive".into());
        }
        let datadir = lines.get(1).map(|l| l.trim()).unwrap_or_default();
        if !datadir.starts_with('/') {
            return Err("the second line is not an absolute data directory".into());
        }
        let port = match lines.get(3).map(|l| l.trim()) {
            None | Some("") => None,
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or("the port line is not a port number")?),
        };
        let sockdir = match lines.get(4).map(|l| l.trim()) {
            None | Some("") => None,
            Some(d) if d.starts_with('/') && !d.split('/').any(|c| c == "..") => Some(PathBuf::from(d)),
            Some(_) => return Err("the socket directory line is not an absolute directory".into()),
        };
        let shm = match lines.get(6).map(|l| l.trim()) {
            None | Some("") => None,
            Some(l) => {
                let mut f = l.split_whitespace();
                let key = f.next().and_then(|k| k.parse::<u64>().ok());
                let id = f.next().and_then(|i| i.parse::<i32>().ok());
                match (key, id, f.next()) {
                    (Some(k), Some(i), None) if i >= 0 => Some((k, i)),
                    _ => return Err("the shared memory line is not two numbers".into()),
                }
            }
        };
        let status = lines.get(7).map(|l| l.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(PidFile { pid, datadir: PathBuf::from(datadir), port, sockdir, shm, status })
    }
}

/// A lock file as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    Absent,
    /// There, but not to be believed: a link, not a regular file, too large, unparsable.
    Invalid(String),
    Present(PidFile),
}

/// Read the lock file at `path` (never through a link, at most [`LOCK_MAX`] bytes).
pub fn read_lock(path: &Path) -> Lock {
    match crate::files::read_small(path, LOCK_MAX) {
        Ok(Some(text)) => match PidFile::parse(&text) {
            Ok(p) => Lock::Present(p),
            Err(why) => Lock::Invalid(format!("{}: {why}", path.display())),
        },
        Ok(None) => Lock::Absent,
        Err(why) => Lock::Invalid(format!("{}: {why}", path.display())),
    }
}

/// Whether `pid` is a live process (a zombie is dead; an unreadable /proc entry is not
/// taken for one).
pub fn alive(pid: i32) -> bool {
    pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() && zombie(pid) != Some(true)
}

/// Whether process `pid` is a zombie (a killed process its parent has not reaped yet: it is
/// dead); `None` when `/proc/<pid>/stat` cannot be read, each caller deciding what that means.
pub fn zombie(pid: i32) -> Option<bool> {
    stat_fields(pid).map(|f| f.first().is_some_and(|state| state.starts_with('Z')))
}

/// The fields of `/proc/<pid>/stat` after the command name (state, ppid, …), whatever
/// characters the name holds.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The parent of `pid`.
pub fn parent(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The directory `pid` works in (root, or the process's own user, can read it).
pub fn cwd(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// The real uid `pid` runs as.
pub fn uid(pid: i32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()
}

/// Whether `pid` runs as `owner` (and `owner` is not root: root's processes are never the
/// instance's, and never signalled on a lock file's word).
pub fn owned_by(pid: i32, owner: u32) -> bool {
    owner != 0 && uid(pid) == Some(owner)
}

/// Whether `pid`'s name is PostgreSQL's server (`postgres`, or the `postmaster` link of
/// older releases).
pub fn named_postgres(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| matches!(c.trim(), "postgres" | "postmaster"))
}

/// What the kernel says `pid` is doing (`T (stopped)`, `D (disk sleep)`…), for the log.
pub fn state_text(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("State:").map(|v| v.trim().to_owned())))
        .unwrap_or_else(|| "state unknown".into())
}

/// Every live pid, with its parent.
fn processes() -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).filter_map(|p| Some((p, parent(p)?))).collect()
}

/// `pid` and every process descending from it (parents before children).
pub fn tree(pid: i32) -> Vec<i32> {
    let all = processes();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// The data directory as the kernel names it (links resolved), to compare with a cwd.
fn canonical(datadir: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(datadir).ok()
}

/// Whether `pid` is a live process of the data directory's owner `owner` working in
/// `datadir` (its canonical path): PostgreSQL runs as the owner of its data directory and
/// never leaves it. Where the cwd may not be read (not root, or root without
/// CAP_SYS_PTRACE), the name decides. A process that has no cwd any more (the kernel says
/// ENOENT) is exiting — past the point where it released its files — or gone: it runs no
/// instance, whatever its name. That matters for a lock file a killed postmaster left: its
/// pid, reused by some other `postgres` process caught exiting, is not the instance.
fn works_in(pid: i32, datadir: &Path, owner: Option<u32>) -> bool {
    if !alive(pid) || owner.is_some_and(|o| uid(pid) != Some(o)) {
        return false;
    }
    match std::fs::read_link(format!("/proc/{pid}/cwd")) {
        Ok(c) => c == datadir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => named_postgres(pid),
    }
}

/// Whether `pid` is a live PostgreSQL process. A lock file (postmaster.pid, the socket's)
/// left by a killed instance names a pid the kernel may since have given to another
/// program — after a reboot, very likely: a live pid alone is not a running PostgreSQL.
pub fn is_postmaster(pid: i32) -> bool {
    named_postgres(pid) && alive(pid)
}

/// The postmaster serving `datadir`, found from evidence rather than from the lock file
/// alone (see the module's doc): the pid `postmaster.pid` names when that process works in
/// the data directory; else the eldest PostgreSQL process working there.
pub fn postmaster_of(datadir: &Path) -> Option<i32> {
    let dir = canonical(datadir)?;
    let owner = owner_of(&dir);
    if let Lock::Present(p) = read_lock(&datadir.join("postmaster.pid")) {
        if works_in(p.pid, &dir, owner) {
            return Some(p.pid);
        }
    }
    // The lock file is missing, forged or stale: look for the instance itself (by name:
    // among the processes working there, PostgreSQL's are the ones called postgres).
    let all = processes();
    let here: Vec<i32> = all.iter().map(|(p, _)| *p).filter(|p| named_postgres(*p) && cwd(*p).is_some() && works_in(*p, &dir, owner)).collect();
    here.iter().copied().find(|p| parent(*p).is_none_or(|pp| !here.contains(&pp)))
}

/// The owner of `datadir` (PostgreSQL refuses to run on a data directory it does not own).
pub fn owner_of(datadir: &Path) -> Option<u32> {
    std::fs::metadata(datadir).ok().map(|m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "4242\n/var/lib/postgresql/15/main\n1733500000\n5432\n/var/run/postgresql\n*\n  1234567     98304\nready   \n";

    #[test]
    fn a_lock_file_parses_strictly() {
        let p = PidFile::parse(GOOD).unwrap();
        assert_eq!(p.pid, 4242);
        assert_eq!(p.datadir, Path::new("/var/lib/postgresql/15/main"));
        assert_eq!(p.port, Some(5432));
        assert_eq!(p.sockdir.as_deref(), Some(Path::new("/var/run/postgresql")));
        assert_eq!(p.shm, Some((1234567, 98304)));
        assert_eq!(p.status.as_deref(), Some("ready"));
        // A socket's lock file has just the first lines.
        assert_eq!(PidFile::parse("4242\n/data\n").unwrap().port, None);
        for bad in [
            "",
            "x\n/data\n",
            "-1\n/data\n",
            "0\n/data\n",
            "42\nrelative\n",
            "42\n/data\n1\n5432; rm -rf /\n",
            "42\n/data\n1\n70000\n",
            "42\n/data\n1\n5432\n../../etc\n",
            "42\n/data\n1\n5432\n/run/../etc\n",
            "42\n/data\n1\n5432\n/run\n*\n12 x\n",
            "42\n/data\n1\n5432\n/run\n*\n12 -5\n",
        ] {
            assert!(PidFile::parse(bad).is_err(), "{bad:?}");
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary text: an error or a value, never a panic.
            #[test]
            fn any_text_never_panics(text in any::<String>()) {
                let _ = PidFile::parse(&text);
            }

            /// Whatever a line holds, what parses says exactly what the file says: a
            /// positive pid, an absolute directory, a port only if that line is a port.
            #[test]
            fn what_parses_is_what_it_says(pid in any::<i64>(), dir in "[ -~]{0,20}", port in "[ -~]{0,8}", sock in "[ -~]{0,12}") {
                let text = format!("{pid}\n{dir}\n1733500000\n{port}\n{sock}\n");
                if let Ok(p) = PidFile::parse(&text) {
                    prop_assert!(p.pid > 0 && i64::from(p.pid) == pid);
                    prop_assert_eq!(p.datadir.to_str(), Some(dir.trim()));
                    prop_assert!(dir.trim().starts_with('/'));
                    match p.port {
                        Some(n) => prop_assert_eq!(port.trim().parse::<u16>().ok(), Some(n)),
                        None => prop_assert!(port.trim().is_empty()),
                    }
                    if let Some(s) = &p.sockdir {
                        prop_assert!(s.is_absolute() && !s.components().any(|c| c == std::path::Component::ParentDir));
                    }
                }
            }
        }
    }

    #[test]
    fn links_and_odd_files_are_not_read() {
        let dir = std::env::temp_dir().join(format!("paceline-process-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("real");
        std::fs::write(&real, GOOD).unwrap();
        assert!(matches!(read_lock(&real), Lock::Present(_)));
        let link = dir.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(read_lock(&link), Lock::Invalid(why) if why.contains("link")));
        assert!(matches!(read_lock(&dir), Lock::Invalid(_)));
        assert_eq!(read_lock(&dir.join("none")), Lock::Absent);
        let big = dir.join("big");
        std::fs::write(&big, "1\n".repeat(4000)).unwrap();
        assert!(matches!(read_lock(&big), Lock::Invalid(why) if why.contains("too large")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn our_own_process_is_no_postmaster() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        assert!(!is_postmaster(me));
        assert!(tree(me).contains(&me));
        assert_eq!(uid(me), Some(nix::unistd::getuid().as_raw()));
        assert!(!owned_by(me, 0));
        // A data directory whose lock file names this (live, non-postgres) process: no postmaster.
        let dir = std::env::temp_dir().join(format!("paceline-process-pm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("postmaster.pid"), format!("{me}\n{}\n", dir.display())).unwrap();
        assert_eq!(postmaster_of(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
